"""The command: a finished run's model as one artifact with its model card (`core.serving.export`).

    python -m core.export --run runs/<id> --format keras|savedmodel|tflite --out DIR

The destination is checked before the model is loaded; a refusal is one `error:` line and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from core.serving.export import FORMATS, ExportError, export_run


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m core.export", description="Export a finished run's model with its model card."
    )
    parser.add_argument("--run", required=True, type=Path, help="a finished run folder, e.g. runs/<id>")
    parser.add_argument("--format", required=True, choices=FORMATS, help="keras, savedmodel or tflite")
    parser.add_argument("--out", required=True, type=Path, help="a new or empty folder for the export")
    args = parser.parse_args(argv)
    try:
        exported = export_run(args.run, args.format, args.out)
    except ExportError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    height, width = exported.image_size
    print(f"exported {args.run} as {exported.format}: {len(exported.genres)} genres, input {height}x{width} RGB")
    for path in exported.files:
        print(f"  {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
