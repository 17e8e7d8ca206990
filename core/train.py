"""`python -m core.train`: train one run headless, into a run folder, printing progress lines.

    python -m core.train [--mode fast|fine-tune|scratch] [--epochs N] [--image-size HxW]
                         [--learning-rate X] [--min-movies-per-genre N] [--seed N]
                         [--temporal-test-from YEAR] [--[no-]temporal-twin] [--backbone NAME]
                         [--runs-dir DIR | --run-dir DIR] [--data-dir DIR] [--cache-dir DIR]

`--help` lists every option, and the backbones by name (`core.model.backbones.BACKBONES`) with their block counts.

Exit code 0 when the run finished or was stopped cleanly (SIGTERM, Ctrl-C or a STOP file in the run
folder: it ends after the current batch and saves the best weights so far; a stop before the first epoch
ends it `stopped` with no model), 1 when it failed, 2 when the settings were invalid (the run folder then
says `failed` with the reason, before any work was done), 3 when another run is active in the same runs
folder (one at a time: the message names it, and no run folder is made).

A run that finishes (not stopped or failed) while its runs folder has no active model becomes the active
model: the first model trained is the one the app predicts with, even with no tab open.

With a `TF_CONFIG` naming several workers, the same command runs on each of them and they train one run
together (the fine-tune and scratch modes): worker 0 (or the chief task) writes the run folder, the others
keep their own files in a temporary folder. A stop asked of any of them stops all after the same batch.

The stop handling is installed first and the runs folder's lock taken next, both before TensorFlow loads,
so neither a SIGTERM nor a second run finds a window in the first seconds.
"""

from __future__ import annotations

import argparse
import dataclasses
import signal
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from core.cluster import Cluster, this_cluster
from core.config import Settings, get_settings
from core.model.backbones import BACKBONES, DEFAULT_BACKBONE, MAX_TUNED_BLOCKS
from core.training import run_folder as rf
from core.training import run_lock
from core.training.config import LOSSES, MODES, POS_WEIGHTINGS, ConfigError, make_config
from core.training.stop import StopControl

EXIT_OK, EXIT_FAILED, EXIT_BAD_CONFIG, EXIT_BUSY, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
STOPPED_EARLY = "stopped before the first epoch; no model saved"

# Numeric options are read as text and checked by the config, so a bad value still leaves a failed run
# folder with the reason (argparse would only print usage and exit).
_WHOLE = ("epochs", "min_movies_per_genre", "seed", "batch_size", "head_hidden_units", "unfreeze_blocks")
_WHOLE += ("head_epochs", "patience", "temporal_test_from", "head_ensemble", "tune_top_blocks", "tune_epochs")
_NUMBER = ("learning_rate", "head_learning_rate", "dropout", "pos_weight_cap", "tune_learning_rate")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m core.train",
        description="Train a poster → genres model into a run folder (config, metrics, model.keras, status).",
    )
    parser.add_argument("--mode", default="fast", help=f"one of {', '.join(MODES)} (default fast)")
    parser.add_argument("--epochs", help="epochs (fast: head epochs; fine-tune: epochs on images after the head)")
    parser.add_argument("--image-size", help="height x width in pixels, e.g. 320x224 (default: the mode's)")
    parser.add_argument("--learning-rate", help="learning rate (fine-tune: of the unfrozen backbone phase)")
    parser.add_argument("--min-movies-per-genre", help="leave out genres with fewer movies in the split (50)")
    parser.add_argument("--seed", help="seed of weights, shuffles and augmentation (42)")
    parser.add_argument("--batch-size", help="posters per step and device")
    parser.add_argument("--head-hidden-units", help="a hidden layer of this width in the head (0: none)")
    parser.add_argument("--dropout", help="dropout of the head (0..1)")
    parser.add_argument("--pos-weighting", help=f"positive-class weights: {', '.join(POS_WEIGHTINGS)}")
    parser.add_argument("--loss", help=f"the training loss: {', '.join(LOSSES)} (default bce, binary cross-entropy)")
    parser.add_argument(
        "--backbone",
        metavar="NAME",
        help="the pretrained EfficientNet-Lite backbone: "
        + ", ".join(
            f"{entry.name} ({entry.block_count} blocks, {entry.native_size} px native)" for entry in BACKBONES.values()
        )
        + f" (default {DEFAULT_BACKBONE})",
    )
    parser.add_argument(
        "--extra-backbones",
        metavar="NAMES",
        help="fast: other backbones whose features go beside the backbone's, e.g. lite1,lite2",
    )
    parser.add_argument("--pos-weight-cap", help="largest positive-class weight")
    parser.add_argument("--head-epochs", help="fine-tune: head epochs on cached features before unfreezing")
    parser.add_argument("--head-learning-rate", help="fine-tune: learning rate of the head epochs")
    parser.add_argument(
        "--unfreeze-blocks",
        help="fine-tune: top backbone blocks to train, from 0 to the backbone's block count (see --backbone)",
    )
    parser.add_argument("--patience", help="epochs without a better validation mAP before stopping (0: never)")
    _add_switch(parser, "--flip-tta", "average with the mirrored poster")
    parser.add_argument(
        "--multi-scale",
        help="fast: also see the poster at this smaller size, e.g. 224x160, and average the two embeddings",
    )
    parser.add_argument("--head-ensemble", help="fast: average this many heads, each from its own seed")
    _add_switch(parser, "--refit", "fast: train the heads again on training + validation for their chosen epochs")
    parser.add_argument(
        "--tune-top-blocks",
        metavar="K",
        help=f"fast: after the heads, tune the backbone's last K blocks (1 to {MAX_TUNED_BLOCKS}) with them on "
        "cached maps (default 0: frozen)",
    )
    parser.add_argument("--tune-epochs", help="fast, with --tune-top-blocks: most epochs of tuning (15)")
    parser.add_argument(
        "--tune-learning-rate",
        help="fast, with --tune-top-blocks: the blocks' learning rate (1e-4; the heads a tenth of it)",
    )
    parser.add_argument(
        "--temporal-test-from", help="first year of the temporal test part (default: the catalog's last year - 4)"
    )
    _add_switch(
        parser,
        "--temporal-twin",
        "also train a twin on the temporal split and report its temporal test (default: on in fast mode)",
    )
    _add_switch(parser, "--include-non-movies", "train on series and games")
    _add_switch(
        parser, "--corrections", "train on the label corrections made in the app (default: on)", dest="use_corrections"
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--runs-dir", type=Path, help="make a new run folder in DIR (default: the settings' runs dir)")
    where.add_argument("--run-dir", type=Path, help="train into exactly this folder (new, or made by the app)")
    parser.add_argument("--data-dir", type=Path, help="the dataset folder (default: POSTER_DATA_DIR)")
    parser.add_argument(
        "--cache-dir", type=Path, help="catalog, split and embeddings cache (default: POSTER_CACHE_DIR)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress lines on the terminal (train.log keeps them)")
    return parser


def _add_switch(parser: argparse.ArgumentParser, flag: str, help_text: str, dest: str | None = None) -> None:
    """A `--flag/--no-flag` pair that is None when neither is given, so the config's default decides."""
    names = {"dest": dest} if dest else {}
    parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=help_text, **names)


def _settings(args: argparse.Namespace) -> Settings:
    settings = get_settings()
    changes = {
        name: Path(value).expanduser().resolve()
        for name, value in (("data_dir", args.data_dir), ("cache_dir", args.cache_dir), ("runs_dir", args.runs_dir))
        if value is not None
    }
    return dataclasses.replace(settings, **changes)


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The settings given on the command line, converted, with ConfigError naming a bad one."""
    values: dict[str, Any] = {}
    for name in _WHOLE + _NUMBER:
        text = getattr(args, name)
        if text is None:
            continue
        try:
            values[name] = int(text) if name in _WHOLE else float(text)
        except ValueError:
            kind = "a whole number" if name in _WHOLE else "a number"
            raise ConfigError(f"--{name.replace('_', '-')} must be {kind}, got {text!r}") from None
    for name in (
        "image_size",
        "pos_weighting",
        "loss",
        "backbone",
        "extra_backbones",
        "flip_tta",
        "multi_scale",
        "include_non_movies",
        "use_corrections",
        "temporal_twin",
        "refit",
    ):
        if getattr(args, name) is not None:
            values[name] = getattr(args, name)
    return values


def main(argv: Sequence[str] | None = None) -> int:
    stop = StopControl(interruptible=False)  # first thing: from here on a SIGTERM stops the run cleanly
    previous_handlers = stop.install_signal_handlers()
    try:
        return _main(argv, stop)
    finally:
        for number, handler in previous_handlers.items():
            signal.signal(number, handler)


def _main(argv: Sequence[str] | None, stop: StopControl) -> int:
    args = build_parser().parse_args(argv)
    settings = _settings(args)
    try:
        cluster = this_cluster()
    except ValueError as error:
        print(f"error: TF_CONFIG: {error}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    if not cluster.is_chief:
        return _work_beside_the_chief(args, settings, cluster, stop)
    run_dir_given = args.run_dir.expanduser().resolve() if args.run_dir is not None else None
    runs_dir = run_dir_given.parent if run_dir_given is not None else settings.runs_dir
    try:
        lock = run_lock.hold(runs_dir)
    except run_lock.RunLockBusy as busy:
        print(f"error: {busy}", file=sys.stderr)
        return EXIT_BUSY
    except OSError as error:
        print(f"error: cannot use the runs folder {runs_dir}: {error}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    with lock:
        try:
            if run_dir_given is not None:
                run_dir = rf.claim_run_dir(run_dir_given)
            else:
                run_dir = rf.create_run_dir(runs_dir, args.mode if args.mode in MODES else "run")
        except (rf.RunFolderError, OSError) as error:
            print(f"error: {error}", file=sys.stderr)
            return EXIT_BAD_CONFIG
        lock.record(run_dir.name)
        stop.attach(run_dir)
        return _run(args, settings, run_dir, stop)


def _work_beside_the_chief(args: argparse.Namespace, settings: Settings, cluster: Cluster, stop: StopControl) -> int:
    """A worker other than the chief trains the same run in step with it (`core.training.worker_loop`); the
    chief writes the run folder and holds its runs folder's lock, so this worker's own files go to a
    temporary folder, removed at the end."""
    with tempfile.TemporaryDirectory(prefix=f"poster-genres-worker-{cluster.index}-") as scratch:
        run_dir = rf.create_run_dir(Path(scratch), args.mode if args.mode in MODES else "run")
        stop.attach(run_dir)
        print(
            f"Worker {cluster.index} of {cluster.count}: training in step with the chief (worker 0), which writes "
            "the run folder.",
            flush=True,
        )
        return _run(args, settings, run_dir, stop, chief=False)


def _run(args: argparse.Namespace, settings: Settings, run_dir: Path, stop: StopControl, chief: bool = True) -> int:
    status = rf.StatusWriter(run_dir)
    log = rf.RunLog(run_dir, echo=not args.quiet)
    try:
        config = make_config(args.mode, **_overrides(args))
    except ConfigError as error:
        log.write(f"FAILED: invalid settings: {error}")
        status.finish("failed", error=f"invalid settings: {error}")
        log.close()
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    if stop.requested():
        return _stopped_early(stop, status, log)
    # TensorFlow loads only now: a bad command line fails in a fraction of a second.
    from core.training.trainer import train

    if stop.requested():  # asked while TensorFlow loaded
        return _stopped_early(stop, status, log)
    stop.interruptible = True  # training begins: a second signal now stops at once, not after the batch
    try:
        result = train(config, settings, run_dir, status=status, log=log, stop=stop)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    if result.state == "failed":
        print(f"error: {result.error}", file=sys.stderr)
        return EXIT_BAD_CONFIG if result.invalid_settings else EXIT_FAILED
    if result.state == "finished" and chief:
        _adopt_if_first(settings, run_dir)
    return EXIT_OK


def _adopt_if_first(settings: Settings, run_dir: Path) -> None:
    """A finished run becomes the active model of its runs folder when that folder has none (see
    `core.app.model_choice.adopt_first_model`); a folder it cannot write leaves the run finished, with a line
    saying so."""
    from core.app import model_choice, runs

    try:
        adopted = model_choice.adopt_first_model(dataclasses.replace(settings, runs_dir=run_dir.parent), run_dir.name)
    except (OSError, runs.RunError) as error:
        print(f"warning: the run finished but could not be made the active model: {error}", file=sys.stderr)
        return
    if adopted:
        print(f"There was no active model: this run's model is now the active model (run {run_dir.name}).")


def _stopped_early(stop: StopControl, status: rf.StatusWriter, log: rf.RunLog) -> int:
    """End a run asked to stop before training began: `stopped`, nothing saved, exit code 0."""
    log.write(f"Stop requested ({stop.reason()}): {STOPPED_EARLY}.")
    status.finish("stopped", error=STOPPED_EARLY)
    log.close()
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
