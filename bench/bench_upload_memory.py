"""The server's memory while one browser tab drops 50 huge posters: what a tab may hold is bounded.

    python bench/bench_upload_memory.py [--posters 50] [--batch 5] [--side 6000x6600]

A real `streamlit run` of the app on the generated dataset with a tiny active model, driven by Chromium.
After a warm-up drop (TensorFlow and the model loaded), one tab drops `--posters` one-colour PNGs of
6000×6600 pixels (about 16 KB each on disk, 40 megapixels and about 120 MB each once decoded), a batch at a
time, and waits for each batch's chips. The server's RSS (its whole process tree) is read before, sampled
during (the peak) and read after. Target: at most 200 MB above where it started, once the drops are done.

For scale, the same posters kept at full resolution (as uploads were once kept) would hold the figure
printed as "kept whole": the bound is what the tab keeps (at most 1,024 px on the long side, the scores and
the embedding), and the cap of 50 posters / 200 MB per tab with the oldest forgotten first.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # so `core`, `bench` and `tests` import

from PIL import Image
from playwright.sync_api import expect, sync_playwright

from bench.bench_load import MemorySampler, content_hash, prepare, tree_rss_mib
from bench.timed_server import running
from core.config import PROJECT_ROOT
from tests.browser.helpers import CHROMIUM_ARGS, CHROMIUM_PATH, EXCEPTION_BOX, free_port

TARGET_MIB = 200
CHIPS_TIMEOUT_MS = 300_000  # a batch of 40-megapixel posters: decode, scale down, score


def make_huge_posters(folder: Path, count: int, width: int, height: int) -> list[Path]:
    """`count` one-colour PNGs, each of its own colour (so each is a poster of its own to the app)."""
    folder.mkdir(parents=True, exist_ok=True)
    posters = []
    for number in range(count):
        colour = (40 + 4 * number % 200, 200 - 3 * number % 180, 17 * number % 256)
        path = folder / f"huge-{number:02d}.png"
        Image.new("RGB", (width, height), colour).save(path, optimize=True)
        posters.append(path)
    return posters


def wait_for_chips(page, paths: list[Path]) -> None:
    """Every poster of the batch has its three genre chips on the page."""
    for path in paths:
        chips = page.locator(f'div[class*="st-key-chips-{content_hash(path.read_bytes())}"] a')
        expect(chips).to_have_count(3, timeout=CHIPS_TIMEOUT_MS)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posters", type=int, default=50, help="huge posters dropped in the tab")
    parser.add_argument("--batch", type=int, default=5, help="posters per drop")
    parser.add_argument("--side", default="6000x6600", help="WIDTHxHEIGHT of each poster")
    args = parser.parse_args()
    width, height = (int(side) for side in args.side.split("x"))
    if not CHROMIUM_PATH.is_file():
        print(f"Chromium is not at {CHROMIUM_PATH}: apt-get install chromium", file=sys.stderr)
        return 2

    work = Path(tempfile.mkdtemp(prefix="bench-upload-memory-"))
    settings, small_posters = prepare(work)
    huge = make_huge_posters(work / "huge", args.posters, width, height)
    on_disk = sum(path.stat().st_size for path in huge)
    print(f"{len(huge)} posters of {width}×{height} px, {on_disk / 1024:.0f} KB on disk in all.")
    environment = {
        **os.environ,
        **settings.as_environment(),
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    port = free_port()
    with running(PROJECT_ROOT, environment, work / "timings.jsonl", port, None) as server, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM_PATH), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"http://127.0.0.1:{port}/predict", wait_until="domcontentloaded")
        uploader = page.get_by_test_id("stFileUploader").locator('input[type="file"]')
        uploader.wait_for(state="attached", timeout=CHIPS_TIMEOUT_MS)
        uploader.set_input_files(str(small_posters[0]))  # warm-up: TensorFlow and the model loaded
        wait_for_chips(page, small_posters[:1])
        time.sleep(3)
        start = tree_rss_mib(server.pid)
        print(f"Server RSS after the warm-up drop: {start:.0f} MiB\n")
        print(f"{'dropped':>7}  {'RSS MiB':>8}  {'above start':>11}  {'seconds':>7}")
        started = time.perf_counter()
        with MemorySampler(server.pid) as memory:
            for first in range(0, len(huge), args.batch):
                batch = huge[first : first + args.batch]
                uploader.set_input_files([str(path) for path in batch])
                wait_for_chips(page, batch)
                rss = tree_rss_mib(server.pid)
                print(
                    f"{first + len(batch):>7}  {rss:>8.0f}  {rss - start:>+11.0f}  {time.perf_counter() - started:>7.1f}"
                )
        time.sleep(3)
        after = tree_rss_mib(server.pid)
        exceptions = page.locator(EXCEPTION_BOX).count()
        browser.close()

    kept_whole_mib = len(huge) * width * height * 3 / 2**20
    print()
    print(f"Server RSS at start:         {start:8.0f} MiB")
    print(f"Peak while dropping:         {memory.peak:8.0f} MiB ({memory.peak - start:+.0f})")
    print(f"After the {len(huge)} drops:          {after:8.0f} MiB ({after - start:+.0f})")
    print(f"Kept whole, for scale:       {kept_whole_mib:8.0f} MiB of RGB pixels")
    verdict = "met" if after - start <= TARGET_MIB else "MISSED"
    print(f"Target: at most {TARGET_MIB} MiB above the start after the drops: {after - start:+.0f} MiB, {verdict}.")
    if exceptions:
        print(f"{exceptions} exception box(es) on the page", file=sys.stderr)
        return 1
    return 0 if verdict == "met" else 1


if __name__ == "__main__":
    sys.exit(main())
