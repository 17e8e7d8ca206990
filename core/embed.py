"""`python -m core.embed`: fill the embeddings store with the catalog's posters, on this machine or shared out
among the workers of `TF_CONFIG` (`core.model.embedding_shards`).

Run it once per machine with the same `--shard-dir` (a folder every machine reaches) and each machine's own
`TF_CONFIG`; the chief (worker 0) waits for the others, merges their vectors into its store and embeds
whatever one of them left. Without `TF_CONFIG` it embeds everything here, as a training run would.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from core.config import get_settings
from core.model.backbones import BACKBONES, DEFAULT_BACKBONE


def _parser() -> argparse.ArgumentParser:
    from core.model.embedding_shards import STALE_AFTER_S

    parser = argparse.ArgumentParser(prog="python -m core.embed", description=__doc__.splitlines()[0])
    parser.add_argument("--image-size", default="384x256", help="height x width (default 384x256, the fast run's)")
    parser.add_argument("--backbone", default=DEFAULT_BACKBONE, choices=list(BACKBONES))
    parser.add_argument("--view", default="plain", choices=["plain", "flip"], help="the poster as is, or mirrored")
    parser.add_argument("--shard-dir", type=Path, help="a folder every worker reaches (needed with TF_CONFIG)")
    parser.add_argument(
        "--stale-after", type=float, default=STALE_AFTER_S, help="seconds of silence after which a worker is gone"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from core.cluster import this_cluster
    from core.data.catalog_build import open_catalog
    from core.model.embedding_shards import embed_on_workers, embed_share
    from core.model.embeddings import embed_posters
    from core.training.config import ConfigError, parse_image_size

    try:
        size = parse_image_size(args.image_size)
        cluster = this_cluster()
    except (ConfigError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if cluster.count > 1 and args.shard_dir is None:
        print("error: TF_CONFIG names several workers: give them a --shard-dir they all reach", file=sys.stderr)
        return 2
    settings = get_settings()
    catalog = open_catalog(settings)
    paths = sorted(catalog.usable_movies()["poster_path"])  # the same order on every machine
    options = {"view": args.view, "backbone": args.backbone, "data_root": catalog.data_root}
    started = time.monotonic()
    if cluster.count == 1:
        result = embed_posters(paths, size, settings.embeddings_dir, settings.weights_dir, **options)
        print(f"{len(paths)} posters: {result.computed} embedded, {result.reused} already stored")
    elif not cluster.is_chief:
        count = embed_share(paths, cluster, args.shard_dir, size, settings.weights_dir, **options)
        print(f"worker {cluster.index} of {cluster.count}: {count} posters embedded into {args.shard_dir}")
    else:
        report = embed_on_workers(paths, cluster, args.shard_dir, settings.embeddings_dir, size, settings.weights_dir,
                                  stale_after_s=args.stale_after, **options)  # fmt: skip
        print(
            f"chief of {cluster.count}: its share of {report.here} posters stored; "
            f"{sum(report.taken.values())} vectors merged "
            + ", ".join(f"(worker {index}: {count})" for index, count in report.taken.items())
            + f"; {report.redone} embedded here for workers gone: {report.gone or 'none'}"
        )
    print(f"{time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
