"""The corrections store under load: writer processes correcting and undoing without pause while the catalog
is rebuilt and the caches cleared, on the configured (real) dataset; prints what was confirmed and lost.

    python -m bench.bench_corrections_soak [--rebuilds 10] [--clears 2] [--writers 2] [--seconds 120]

The dataset is only read; the catalog, caches and corrections go to a temporary folder of their own.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from core.config import Settings, get_settings
from tests.corrections_soak import run_soak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rebuilds", type=int, default=10)
    parser.add_argument("--clears", type=int, default=2)
    parser.add_argument("--writers", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=120.0, help="spread the rebuilds over at least this long")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="corrections-soak-") as folder:
        work = Path(folder)
        settings = Settings(data_dir=get_settings().data_dir, cache_dir=work / "cache", runs_dir=work / "runs")
        result = run_soak(
            settings, work / "soak", arguments.rebuilds, arguments.clears, arguments.writers, arguments.seconds
        )
    print(f"dataset            {settings.data_dir}")
    print(f"duration           {result.seconds:.1f} s ({result.rebuilds} rebuilds, {result.clears} cache clears)")
    print(f"writers            {arguments.writers} processes")
    print(f"confirmed          {result.confirmed} corrections, {result.undone} undos")
    print(f"refused (a reason) {result.refused}")
    print(f"lost               {result.lost}   (target 0)")
    print(f"ids given twice    {result.ids_reused}   (target 0)")


if __name__ == "__main__":
    main()
