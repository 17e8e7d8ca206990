"""Can this project's Keras and TensorFlow train on several workers with `MultiWorkerMirroredStrategy`?

Two worker processes on 127.0.0.1 (CPU only, `TF_CONFIG` set for each) train one small multi-label model for
three epochs, twice: with Keras's `model.fit`, and with a custom loop that runs each step through
`strategy.run` and sums the replicas' losses. A single process runs the custom loop with the same seed and
global batch as the reference. Prints each way's outcome: its error, or its losses per epoch on both workers
beside the single process's.

    python bench/multi_worker_spike.py
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

EPOCHS = 3
GLOBAL_BATCH = 64
TIMEOUT_S = 300


def _worker(way: str, index: int, ports: list[int]) -> None:
    """One worker (or the single process, `ports` empty): train, print one JSON line with the losses."""
    if ports:
        cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
        os.environ["TF_CONFIG"] = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
    os.environ["CUDA_VISIBLE_DEVICES"] = ""
    import keras
    import numpy as np
    import tensorflow as tf

    strategy = tf.distribute.MultiWorkerMirroredStrategy() if ports else tf.distribute.get_strategy()
    rng = np.random.default_rng(0)
    features = rng.normal(size=(512, 16)).astype("float32")
    labels = (features[:, :4] > 0).astype("float32")
    with strategy.scope():
        keras.utils.set_random_seed(1)
        model = keras.Sequential(
            [keras.Input((16,)), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(4, activation="sigmoid")]
        )
        optimizer = keras.optimizers.Adam(1e-2)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    dataset = tf.data.Dataset.from_tensor_slices((features, labels)).batch(GLOBAL_BATCH).with_options(options)
    if way == "fit":
        with strategy.scope():
            model.compile(optimizer=optimizer, loss="binary_crossentropy")
        losses = model.fit(dataset, epochs=EPOCHS, verbose=0).history["loss"]
    else:
        with strategy.scope():
            optimizer.build(model.trainable_variables)
        loss_of = keras.losses.BinaryCrossentropy(reduction="none")

        @tf.function
        def step(batch):
            def replica_step(inputs, targets):
                with tf.GradientTape() as tape:
                    # Summed over the replica's posters and divided by the global batch: the replicas' sum is
                    # the mean over the global batch, as one process computes it.
                    loss = tf.reduce_sum(loss_of(targets, model(inputs, training=True))) / GLOBAL_BATCH
                gradients = tape.gradient(loss, model.trainable_variables)
                optimizer.apply_gradients(zip(gradients, model.trainable_variables, strict=True))
                return loss

            return strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(replica_step, args=batch), axis=None)

        distributed = strategy.experimental_distribute_dataset(dataset)
        losses = []
        for _ in range(EPOCHS):
            values = [float(step(batch)) for batch in distributed]
            losses.append(sum(values) / len(values))
    print(json.dumps({"losses": losses}), flush=True)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _run(way: str, workers: int) -> list[dict]:
    """Start `workers` processes (0: one process without a cluster) and collect each one's result."""
    ports = [_free_port() for _ in range(workers)]
    processes = [
        subprocess.Popen(
            [sys.executable, __file__, "--worker", way, str(index), *map(str, ports)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        )
        for index in range(max(workers, 1))
    ]
    results = []
    for process in processes:
        out, err = process.communicate(timeout=TIMEOUT_S)
        lines = [line for line in out.splitlines() if line.startswith("{")]
        if process.returncode == 0 and lines:
            results.append(json.loads(lines[-1]))
        else:
            # The error's first line, and its last one (a long value printed between them is left out).
            lines = err.splitlines()
            first = next((n for n, line in enumerate(lines) if line.startswith(("ValueError", "TypeError"))), None)
            if first is None:
                results.append({"error": err.strip()[-300:]})
            else:
                tail = next((line for line in lines[first + 1 :] if "unsupported type" in line), "")
                results.append({"error": f"{lines[first][:120]} … {tail.strip()[:160]}"})
    return results


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        _worker(sys.argv[2], int(sys.argv[3]), [int(port) for port in sys.argv[4:]])
        return
    import keras
    import tensorflow as tf

    print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}; 2 workers on 127.0.0.1, CPU\n")
    single = _run("loop", 0)[0]["losses"]
    print(f"{'one process, custom loop':<36}" + "  ".join(f"{loss:.8f}" for loss in single))
    for way, name in (("fit", "2 workers, model.fit"), ("loop", "2 workers, custom loop")):
        for index, result in enumerate(_run(way, 2)):
            if "error" in result:
                print(f"{name + f', worker {index}':<36}FAILED: {result['error']}")
            else:
                gap = max(abs(a - b) for a, b in zip(result["losses"], single, strict=True))
                print(
                    f"{name + f', worker {index}':<36}"
                    + "  ".join(f"{loss:.8f}" for loss in result["losses"])
                    + f"  (largest gap to one process {gap:.1e})"
                )


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    main()
