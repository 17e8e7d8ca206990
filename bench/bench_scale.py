"""How the app's costs grow with the dataset: synthetic datasets of 6,000, 25,000 and 100,000 posters.

For each size: a cold catalog build (time and peak memory of its process), the catalog's size on disk, the
check the app makes that the catalog is still fresh, the server-side time of the Dataset page and of the
largest genre's gallery (a first run, then warm reruns, under Streamlit's AppTest), a similarity query
over the poster embeddings and the memory of the similarity index. The embeddings are synthetic (random
vectors of the backbone's size): embedding 100,000 posters with the backbone would take hours on a CPU,
and a query's cost depends only on the number of vectors and their size. The last columns say how each
cost grew from one size to the next, as the exponent of the growth: 1.0 is linear, above is worse.

    python bench/bench_scale.py [--sizes 6000,25000,100000] [--work-dir DIR] [--keep] [--repeats N]
    python bench/bench_scale.py --sizes 100000,1000000 --small-posters    # a million records, about 4 GB

With `--small-posters` the posters are 60×88 px JPEGs of about 2 KB (the catalog's cost is per record and per
file; a million real-sized posters would take 30 GB). Above 140,000 posters the app searches an approximate
index, which `bench_ann.py` measures; the exact index is not measured there.

The datasets are generated under the work folder (a temporary one unless --work-dir is given; removed
afterwards unless --keep) and reused when a kept one matches. 100,000 posters take about 3.3 GB.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import scale_dataset  # noqa: E402
from core.config import Settings  # noqa: E402
from core.data.catalog_build import open_catalog, open_existing_catalog  # noqa: E402
from core.data.ingest.layout import FolderStamps  # noqa: E402
from core.serving.similar import SimilarityIndex  # noqa: E402

# The backbone's pooled embedding size (core.model.backbone.EMBEDDING_DIM; not imported, since that loads Keras).
EMBEDDING_DIM = 1280
# The targets at the largest size measured: at 100,000 posters, and at a million records (their similarity
# search is the approximate index's, measured by bench_ann.py).
TARGETS = {
    100_000: {"ingest_s": 60.0, "dataset_warm_ms": 500.0, "gallery_warm_ms": 500.0, "query_ms": 30.0},
    1_000_000: {"ingest_s": 600.0, "dataset_warm_ms": 500.0, "gallery_warm_ms": 500.0, "fresh_check_ms": 2000.0},
}
# Above this many posters the app searches an approximate index (core.serving.similar.APPROXIMATE_FROM):
# the exact one is not measured there (a million float32 vectors would take 5 GB).
EXACT_INDEX_UP_TO = 140_000


def targets_for(posters: int) -> dict[str, float]:
    """The targets of the largest listed size not above `posters`."""
    sizes = [size for size in TARGETS if size <= posters]
    return TARGETS[max(sizes)] if sizes else {}


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _cpu_s() -> float:
    """CPU seconds of this process so far, all its threads: on a shared machine, less noisy than wall time."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _settings(data: Path, work: Path) -> Settings:
    return Settings(data, work / "cache", work / "runs")


def _child(mode: str, settings: Settings, repeats: int) -> dict:
    """Run one measurement in a fresh Python process (its memory is its own), and read back its JSON."""
    env = {
        **os.environ,
        **settings.as_environment(),
    }
    command = [sys.executable, str(Path(__file__).resolve()), f"--child={mode}", f"--repeats={repeats}"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False, cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"the {mode} measurement failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _child_ingest(settings: Settings) -> dict:
    """A cold build: no catalog file, every metadata file read and every poster decoded."""
    base = _peak_rss_mb()
    started, cpu = time.perf_counter(), _cpu_s()
    catalog = open_catalog(settings, rebuild=True)
    seconds, cpu = time.perf_counter() - started, _cpu_s() - cpu
    return {
        "seconds": seconds,
        "cpu_s": cpu,
        "peak_rss_mb": _peak_rss_mb(),
        "base_rss_mb": base,
        "summary": catalog.summary(),
    }


def _child_pages(settings: Settings, repeats: int) -> dict:
    """Server-side time of one script run of each page, the first (caches cold) and warm reruns: the
    script thread's wall time and CPU time, timed around Streamlit's own script run (it does not time it)."""
    from streamlit.runtime.scriptrunner import script_runner
    from streamlit.testing.v1 import AppTest

    runs: list[tuple[float, float]] = []
    original = script_runner.ScriptRunner._run_script

    def timed(self, rerun_data) -> None:
        started, cpu = time.perf_counter(), time.thread_time()
        try:
            original(self, rerun_data)
        finally:
            runs.append((time.perf_counter() - started, time.thread_time() - cpu))

    script_runner.ScriptRunner._run_script = timed
    catalog = open_existing_catalog(settings)
    if catalog is None:
        raise RuntimeError("no catalog to run the pages on")
    largest = next(iter(catalog.genre_counts()))
    result: dict[str, object] = {"genre": largest}
    for name, script, params in (
        ("dataset", "pages/dataset.py", {}),
        ("gallery", "pages/genre.py", {"genre": largest}),
    ):
        app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=900)
        app.switch_page(script)
        for key, value in params.items():
            app.query_params[key] = value
        timings = []
        for _ in range(1 + repeats):
            runs.clear()
            app.run()
            if app.exception:
                raise RuntimeError(f"{script} failed: {app.exception[0].message}")
            timings.append((sum(wall for wall, _ in runs), sum(cpu for _, cpu in runs)))
        result[f"{name}_first_ms"], result[f"{name}_first_cpu_ms"] = (value * 1000 for value in timings[0])
        result[f"{name}_warm_ms"] = statistics.median(wall for wall, _ in timings[1:]) * 1000
        result[f"{name}_warm_cpu_ms"] = statistics.median(cpu for _, cpu in timings[1:]) * 1000
    result["peak_rss_mb"] = _peak_rss_mb()
    return result


def _freshness_check_ms(settings: Settings, repeats: int) -> tuple[float, float]:
    """The check a server makes once a minute that the raw files did not change: reading every file's stamp
    (a server's first check), then as a server checks with its memory of the year folders (`FolderStamps`:
    a folder read again when its time moved, the others in turn)."""
    full, remembered = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        open_existing_catalog(settings)
        full.append(time.perf_counter() - started)
    memory = FolderStamps()
    open_existing_catalog(settings, memory)  # the server's first check reads everything
    for _ in range(max(repeats, memory.rotation)):  # a whole round of the folders read in turn
        started = time.perf_counter()
        open_existing_catalog(settings, memory)
        remembered.append(time.perf_counter() - started)
    return statistics.median(full) * 1000, statistics.median(remembered) * 1000


def _similarity(settings: Settings, repeats: int) -> dict:
    """A synthetic index of the usable movies: its memory, a nearest-neighbour query and a gallery's ranking."""
    catalog = open_existing_catalog(settings)
    assert catalog is not None
    movies = catalog.usable_movies(include_non_movies=True)
    ids = list(movies["imdb_id"])
    largest = next(iter(catalog.genre_counts()))
    genre_ids = [imdb_id for imdb_id, genres in zip(ids, movies["genres"], strict=True) if largest in genres]
    rng = np.random.default_rng(0)
    # Pooled activations after a swish are mostly positive: |normal| keeps the cosines realistic (not ~0).
    vectors = np.abs(rng.standard_normal((len(ids), EMBEDDING_DIM), dtype=np.float32))
    tracemalloc.start()
    index = SimilarityIndex(ids, vectors)
    retained, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del vectors
    queries = [index.vector(imdb_id) for imdb_id in random.Random(0).sample(ids, min(len(ids), 20))]
    nearest, nearest_cpu, ranked = [], [], []
    for round_ in range(max(3, repeats)):
        for query in queries:
            started, cpu = time.perf_counter(), time.process_time()
            index.nearest(query, k=12, exclude=ids[:1])
            nearest.append(time.perf_counter() - started)
            nearest_cpu.append(time.process_time() - cpu)
        started = time.perf_counter()
        index.rank(queries[round_ % len(queries)], genre_ids)
        ranked.append(time.perf_counter() - started)
    return {
        "vectors": len(ids),
        "index_mb": retained / 2**20,
        "index_peak_mb": peak / 2**20,
        "query_ms": statistics.median(nearest) * 1000,
        "query_cpu_ms": statistics.median(nearest_cpu) * 1000,
        "rank_ms": statistics.median(ranked) * 1000,
        "rank_count": len(genre_ids),
    }


def measure(posters: int, work: Path, repeats: int, ingest_repeats: int, workers: int, small: bool = False) -> dict:
    data = work / f"posters-{posters}"
    row: dict[str, object] = {"posters": posters}
    started = time.perf_counter()
    generated = scale_dataset.ensure(data, scale_dataset.Spec(posters, small_posters=small), workers)
    row["generated_s"] = time.perf_counter() - started if generated else None
    settings = _settings(data, work / f"state-{posters}")
    shutil.rmtree(settings.cache_dir, ignore_errors=True)
    ingests = []
    for _ in range(ingest_repeats):
        load = os.getloadavg()[0]
        ingests.append((_child("ingest", settings, repeats), load))
    row["ingest_s"] = statistics.median(result["seconds"] for result, _ in ingests)
    row["ingest_cpu_s"] = statistics.median(result["cpu_s"] for result, _ in ingests)
    row["ingest_rss_mb"] = max(result["peak_rss_mb"] for result, _ in ingests)
    row["ingest_base_rss_mb"] = ingests[0][0]["base_rss_mb"]
    row["ingest_load"] = statistics.mean(load for _, load in ingests)
    summary = ingests[0][0]["summary"]
    row["usable"] = summary["usable_movies"]
    row["findings"] = sum(summary["findings"].values())
    row["catalog_mb"] = (
        sum(path.stat().st_size for path in settings.cache_dir.glob("catalog.sqlite3*") if path.is_file()) / 2**20
    )
    row["fresh_full_ms"], row["fresh_check_ms"] = _freshness_check_ms(settings, repeats)
    row["pages_load"] = os.getloadavg()[0]
    pages = _child("pages", settings, repeats)
    row.update({key: value for key, value in pages.items() if key != "peak_rss_mb"}, pages_rss_mb=pages["peak_rss_mb"])
    row["similarity_load"] = os.getloadavg()[0]
    if posters <= EXACT_INDEX_UP_TO:
        row.update(_similarity(settings, repeats))
    return row


LINES = [  # key, label, format, growth checked
    ("generated_s", "dataset generated (s; blank: reused)", "{:.1f}", False),
    ("usable", "usable movies", "{:,.0f}", False),
    ("findings", "findings", "{:,.0f}", False),
    ("ingest_s", "cold ingest (s)", "{:.1f}", True),
    ("ingest_cpu_s", "  CPU time of it, all threads (s)", "{:.1f}", True),
    ("ingest_rss_mb", "  peak memory of its process (MB)", "{:.0f}", True),
    ("ingest_base_rss_mb", "  of which imports, before reading (MB)", "{:.0f}", False),
    ("ingest_load", "  load average (1 min) meanwhile", "{:.1f}", False),
    ("catalog_mb", "catalog on disk (MB)", "{:.1f}", True),
    ("fresh_check_ms", "catalog freshness check (ms, once a minute)", "{:.0f}", True),
    ("fresh_full_ms", "  reading every file's stamp (ms; a server's first check)", "{:.0f}", True),
    ("dataset_first_ms", "Dataset page, first run (ms)", "{:.0f}", True),
    ("dataset_first_cpu_ms", "  CPU time of its script thread (ms)", "{:.0f}", True),
    ("dataset_warm_ms", "Dataset page, warm rerun (ms)", "{:.0f}", True),
    ("dataset_warm_cpu_ms", "  CPU time of its script thread (ms)", "{:.0f}", True),
    ("gallery_first_ms", "largest genre's gallery, first run (ms)", "{:.0f}", True),
    ("gallery_first_cpu_ms", "  CPU time of its script thread (ms)", "{:.0f}", True),
    ("gallery_warm_ms", "largest genre's gallery, warm rerun (ms)", "{:.0f}", True),
    ("gallery_warm_cpu_ms", "  CPU time of its script thread (ms)", "{:.0f}", True),
    ("pages_rss_mb", "  peak memory of the pages' process (MB)", "{:.0f}", True),
    ("pages_load", "  load average (1 min) before", "{:.1f}", False),
    ("index_mb", "similarity index, memory held (MB; synthetic vectors)", "{:.0f}", True),
    ("index_peak_mb", "  peak while building it (MB)", "{:.0f}", True),
    ("query_ms", "similarity query, 12 nearest of all (ms)", "{:.1f}", True),
    ("query_cpu_ms", "  CPU time of it (ms)", "{:.1f}", True),
    ("rank_ms", "gallery's similarity order, largest genre (ms)", "{:.1f}", True),
    ("similarity_load", "  load average (1 min) before", "{:.1f}", False),
]


def _cell(value: object, form: str) -> str:
    return "" if value is None else form.format(value)


def report(rows: list[dict]) -> str:
    """The table: one column per size, the target at the largest, and the growth exponent between sizes."""
    sizes = [row["posters"] for row in rows]
    growth = [f"growth {a // 1000}k→{b // 1000}k" for a, b in itertools.pairwise(sizes)]
    header = ["", *(f"{size:,} posters" for size in sizes), "target (largest)", *growth]
    table = [header]
    for key, label, form, checked in LINES:
        cells = [label, *(_cell(row.get(key), form) for row in rows), ""]
        targets = targets_for(rows[-1]["posters"])
        if key in targets:
            last = rows[-1].get(key)
            met = last is not None and last <= targets[key]
            cells[-1] = f"≤ {targets[key]:g} {'met' if met else 'MISSED'}"
        for before, after in itertools.pairwise(rows):
            a, b = before.get(key), after.get(key)
            if not checked or not a or not b or a <= 0 or b <= 0:
                cells.append("")
                continue
            exponent = math.log(b / a) / math.log(after["posters"] / before["posters"])
            cells.append(f"×{b / a:.2f} (exp {exponent:.2f})")
        table.append(cells)
    widths = [max(len(line[column]) for line in table) for column in range(len(header))]
    text = []
    for number, line in enumerate(table):
        text.append(
            "  ".join(cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(line))
        )
        if number == 0:
            text.append("-" * len(text[0]))
    return "\n".join(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="6000,25000,100000", help="poster counts, comma-separated")
    parser.add_argument(
        "--work-dir", type=Path, help="where the datasets and catalogs go (default: a temporary folder)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the work folder (reused by the next run)")
    parser.add_argument("--repeats", type=int, default=5, help="warm reruns and query rounds per size (median)")
    parser.add_argument("--ingest-repeats", type=int, default=1, help="cold ingests per size (median)")
    parser.add_argument("--workers", type=int, default=2, help="processes generating a dataset")
    parser.add_argument(
        "--small-posters", action="store_true", help="60×88 px posters of about 2 KB (for a million records)"
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        from core.config import get_settings

        settings = get_settings()
        result = _child_ingest(settings) if args.child == "ingest" else _child_pages(settings, args.repeats)
        print(json.dumps(result))
        return

    sizes = sorted(int(size.replace("_", "")) for size in args.sizes.split(","))
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="bench-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"Scale benchmark: {', '.join(f'{size:,}' for size in sizes)} synthetic posters under {work}")
    print(f"({os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the start)")
    rows = []
    try:
        for size in sizes:
            rows.append(measure(size, work, args.repeats, args.ingest_repeats, args.workers, args.small_posters))
            print(f"  {size:,} posters measured (load average {os.getloadavg()[0]:.1f})", flush=True)
            if args.json:  # after each size, so that a long run's figures so far survive an interruption
                args.json.write_text(json.dumps(rows, indent=2))
    finally:
        if not args.keep:  # the temporary folder, or the sizes' datasets and catalogs in --work-dir
            made = (
                [work]
                if args.work_dir is None
                else [work / f"{kind}-{size}" for size in sizes for kind in ("posters", "state")]
            )
            for path in made:
                shutil.rmtree(path, ignore_errors=True)
    print()
    print(report(rows))
    print(
        f"\nMedians: {args.ingest_repeats} cold ingest(s), {args.repeats} warm reruns per page, "
        f"{max(3, args.repeats) * 20} similarity queries. The similarity index holds synthetic vectors "
        f"({EMBEDDING_DIM} floats per poster, as the backbone gives), not the backbone's embeddings. "
        "Page times are the server's script runs (AppTest), not what a browser shows; CPU times are less "
        "disturbed by other work on the machine than wall times."
    )


if __name__ == "__main__":
    main()
