"""`streamlit run` that appends one JSON line per script run to a file: the server's own share of a page's time.

    python bench/timed_server.py TIMINGS.jsonl app.py [streamlit run options...]

Streamlit does not time its script runs, so the benchmarks start the app through this wrapper, which times
`ScriptRunner._run_script` (one call serves a browser's request from start to idle, `st.rerun`s included):
wall seconds, the script thread's CPU seconds, the session, the page's query string and whether it was a
fragment's run. The app itself is unchanged; only the benchmarks start it this way.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _install(path: str) -> None:
    from streamlit.runtime.scriptrunner import script_runner

    original = script_runner.ScriptRunner._run_script
    lock = threading.Lock()

    def timed(self, rerun_data) -> None:
        started, wall, cpu = time.time(), time.perf_counter(), time.thread_time()
        try:
            original(self, rerun_data)
        finally:
            record = {
                "started": started,
                "seconds": time.perf_counter() - wall,
                "cpu_seconds": time.thread_time() - cpu,
                "session": self._session_id,
                "query": rerun_data.query_string,
                "page": rerun_data.page_name,
                "fragment": bool(rerun_data.fragment_id_queue),
            }
            with lock, open(path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")

    script_runner.ScriptRunner._run_script = timed


@contextmanager
def running(
    tree: Path, environment: dict[str, str], timings: Path, port: int, cpu: int | None = None
) -> Iterator[subprocess.Popen]:
    """The app of the checkout `tree` served by this wrapper on 127.0.0.1:`port`, pinned to `cpu` if given
    (`taskset`); its script runs go to `timings`, its output beside it (`.log`). Stopped on exit."""
    command = [sys.executable, str(Path(__file__).resolve()), str(timings), "app.py", "--server.port", str(port)]
    command += ["--server.address", "127.0.0.1", "--server.headless", "true"]
    command += ["--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"]
    if cpu is not None:
        command = ["taskset", "-c", str(cpu), *command]
    with open(timings.with_suffix(".log"), "wb") as log:
        process = subprocess.Popen(command, cwd=tree, env=environment, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as answer:
                    if answer.read() == b"ok":
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the app in {tree} did not start: see {timings.with_suffix('.log')}")
            time.sleep(0.3)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def read_timings(path: Path, skip: int = 0) -> list[dict]:
    """The script runs recorded in `path`, from the `skip`-th on."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in lines[skip:]]


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process `pid` and its children so far (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(value) for value in fields[11:15])  # utime, stime, cutime, cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def main() -> None:
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    _install(sys.argv[1])
    from streamlit.web import cli

    sys.argv = ["streamlit", "run", *sys.argv[2:]]
    sys.exit(cli.main())


if __name__ == "__main__":
    main()
