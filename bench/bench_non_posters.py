"""How often "unlike the posters the model learned from" (`core.serving.novelty`) falls on images that are no posters,
and how often on real posters it never saw: at least 200 non-posters of several kinds (noise, the pictures
bundled with scikit-image, app-like screenshots, flat colours, text alone), each read as a dropped file is,
against the real posters of the temporal test years, each scored with itself and its near-identical copies
left out of the index (so a test poster counts as unseen).

The line is the one the app uses, drawn from the catalog's own posters; no non-poster tunes it. Each image is
counted as flagged by similarity, by look (`core.serving.poster_look`) and by either (what the app shows). The
similarity index's embeddings and the posters' look cues are computed once into the cache folder given
(minutes the first time).

    python bench/bench_non_posters.py --cache-dir /tmp/nonposter-cache [--data-dir DIR] [--test-from 2004]
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.config import Settings, get_settings
from core.data.catalog_build import open_catalog
from core.serving.novelty import UNLIKE_PERCENTILE, catalog_spread, likeness, novelty_line
from core.serving.poster_index import PosterEmbedder, build_index, index_poster_cues
from core.serving.poster_look import look_cues
from core.serving.uploads import UploadError, validate_upload

TARGET_FLAGGED = 0.90  # of the non-posters, at least
TARGET_FALSE_FLAGS = 0.02  # of the real unseen posters, at most

Family = Callable[[np.random.Generator], Iterator[Image.Image]]
SIZES = [(64, 64), (150, 225), (300, 300), (300, 450), (640, 480), (1000, 1500)]  # width, height in pixels


def noise(rng: np.random.Generator) -> Iterator[Image.Image]:
    """Uniform, Gaussian and salt-and-pepper noise, colour and grey, at several sizes."""
    for width, height in SIZES:
        for _ in range(4):
            shape = (height, width, 3)
            yield Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8))
            gaussian = rng.normal(rng.uniform(60, 190), rng.uniform(20, 70), shape)
            yield Image.fromarray(np.clip(gaussian, 0, 255).astype(np.uint8))
            salt = rng.choice([0, 255], size=(height, width), p=[0.5, 0.5]).astype(np.uint8)
            grey = np.full((height, width), rng.integers(60, 200), np.uint8)
            mask = rng.random((height, width)) < rng.uniform(0.05, 0.5)
            grey[mask] = salt[mask]
            yield Image.fromarray(grey).convert("RGB")


def scikit_image_pictures(rng: np.random.Generator) -> Iterator[Image.Image]:
    """Every picture bundled with scikit-image (no download), whole and as a poster-shaped crop."""
    import skimage.data

    for name in skimage.data.__all__:
        try:
            picture = getattr(skimage.data, name)()
        except Exception:  # a picture that needs a download, or a helper that is no picture
            continue
        if (
            not isinstance(picture, np.ndarray)
            or picture.ndim not in (2, 3)
            or (picture.ndim == 3 and picture.shape[2] > 4)
        ):
            continue
        if picture.dtype != np.uint8:
            picture = picture.astype(np.float64)
            picture = (255 * (picture - picture.min()) / max(float(np.ptp(picture)), 1e-9)).astype(np.uint8)
        image = Image.fromarray(picture).convert("RGB")
        if min(image.size) < 64:
            continue
        yield image
        width, height = image.size
        crop = min(width, int(height * 2 / 3))
        left = int(rng.integers(0, width - crop + 1))
        yield image.crop((left, 0, left + crop, height))
    faces = skimage.data.lfw_subset()
    for face in faces[rng.choice(len(faces), 10, replace=False)]:
        yield Image.fromarray((face * 255).astype(np.uint8)).convert("RGB").resize((150, 150))


def _font(size: int) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


WORDS = [
    "poster",
    "genre",
    "explorer",
    "training",
    "dataset",
    "predict",
    "run",
    "model",
    "accuracy",
    "gallery",
    "movie",
    "settings",
    "upload",
]


def _words(rng: np.random.Generator, count: int) -> str:
    return " ".join(rng.choice(WORDS, count))


def screenshots(rng: np.random.Generator) -> Iterator[Image.Image]:
    """App-like pages: a sidebar of links, a title, paragraphs, buttons, a table, a chart's bars."""
    for _ in range(45):
        width, height = [(1280, 800), (1440, 900), (800, 1200), (390, 844)][int(rng.integers(4))]
        dark = rng.random() < 0.3
        background, ink = ((14, 17, 23), (250, 250, 250)) if dark else ((255, 255, 255), (49, 51, 63))
        image = Image.new("RGB", (width, height), background)
        draw = ImageDraw.Draw(image)
        sidebar = int(width * 0.22) if width > 600 else 0
        if sidebar:
            draw.rectangle((0, 0, sidebar, height), fill=(38, 39, 48) if dark else (240, 242, 246))
            for row in range(8):
                draw.text((20, 60 + 40 * row), _words(rng, 1).title(), fill=ink, font=_font(16))
        x, y = sidebar + 40, 40
        draw.text((x, y), _words(rng, 2).title(), fill=ink, font=_font(36))
        y += 70
        while y < height - 60:
            element = rng.integers(4)
            if element == 0:
                for _ in range(int(rng.integers(2, 5))):
                    draw.text((x, y), _words(rng, 9), fill=ink, font=_font(15))
                    y += 22
            elif element == 1:
                accent = tuple(int(c) for c in rng.integers(0, 256, 3))
                draw.rounded_rectangle((x, y, x + 180, y + 38), radius=8, fill=accent)
                draw.text((x + 16, y + 10), _words(rng, 2), fill=(255, 255, 255), font=_font(15))
                y += 56
            elif element == 2:
                for _ in range(int(rng.integers(3, 8))):
                    draw.line((x, y, width - 40, y), fill=(200, 200, 200))
                    for column in range(4):
                        draw.text((x + column * 140, y + 5), _words(rng, 1), fill=ink, font=_font(14))
                    y += 28
            else:
                for bar in range(int(rng.integers(4, 12))):
                    length = int(rng.integers(20, max(30, width - sidebar - 200)))
                    draw.rectangle((x, y, x + length, y + 14), fill=(255, 75, 75) if bar % 2 else (0, 104, 201))
                    y += 20
            y += 20
        yield image


def flat_colours(rng: np.random.Generator) -> Iterator[Image.Image]:
    """One colour filling the image, including black, white and grey."""
    fixed = [(0, 0, 0), (255, 255, 255), (128, 128, 128)]
    for number in range(36):
        colour = fixed[number] if number < len(fixed) else tuple(int(c) for c in rng.integers(0, 256, 3))
        yield Image.new("RGB", SIZES[number % len(SIZES)], colour)


def text_only(rng: np.random.Generator) -> Iterator[Image.Image]:
    """Words on a plain background, from one big line to a page of small ones."""
    for number in range(40):
        width, height = SIZES[1:][number % (len(SIZES) - 1)]
        background = tuple(int(c) for c in rng.integers(0, 256, 3))
        ink = tuple(255 - c for c in background) if number % 2 else (0, 0, 0)
        image = Image.new("RGB", (width, height), background)
        draw = ImageDraw.Draw(image)
        size = int(rng.choice([12, 18, 28, 48]))
        y = int(rng.integers(5, 30))
        lines = 1 if number % 4 == 0 else 100
        for _ in range(lines):
            if y > height - size:
                break
            draw.text((10, y), _words(rng, 8), fill=ink, font=_font(size))
            y += int(size * 1.4)
        yield image


FAMILIES: dict[str, Family] = {
    "noise": noise,
    "scikit-image pictures": scikit_image_pictures,
    "app-like screenshots": screenshots,
    "flat colours": flat_colours,
    "text only": text_only,
}


def as_dropped(image: Image.Image, number: int) -> np.ndarray | None:
    """The image's pixels as the app reads a dropped file (PNG bytes through `validate_upload`), or None when
    the app would refuse the file (then no score is shown at all)."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    try:
        return validate_upload(buffer.getvalue(), f"image-{number}.png").pixels
    except UploadError:
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache-dir", type=Path, required=True, help="where the catalog's embeddings are kept")
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--test-from", type=int, default=2004, help="first year of the temporal test posters")
    args = parser.parse_args()
    defaults = get_settings()
    settings = Settings(args.data_dir or defaults.data_dir, args.cache_dir, args.cache_dir / "runs")

    catalog = open_catalog(settings)
    print("Building the similarity index (cached embeddings are reused)…", flush=True)
    index = build_index(catalog, settings)
    started = time.perf_counter()
    cues = index_poster_cues(catalog, index.ids, settings)
    measured = time.perf_counter() - started
    started = time.perf_counter()
    line = novelty_line(index, cues)
    drawn = time.perf_counter() - started
    assert line is not None
    print(
        f"Catalog: {len(index):,} posters; look cues {measured:.1f} s (cached after the first time), "
        f"line {drawn:.1f} s; flagged at rarity ≤ {line.threshold:.4f} (percentile {UNLIKE_PERCENTILE:g})\n"
    )

    years = catalog.usable_movies(include_non_movies=True).set_index("imdb_id").loc[index.ids, "year"].to_numpy()
    test_rows = np.flatnonzero(years >= args.test_from)
    # Each catalog poster measured against the others, without itself and its copies: an unseen poster.
    spread = catalog_spread(index, cues)
    nearest, look = spread.nearest_similarities[test_rows], spread.look_distances[test_rows]
    real = {
        "similarity": line.similarity_rarity(nearest) <= line.threshold,
        "look": line.look_rarity(look) <= line.threshold,
    }

    embedder = PosterEmbedder(settings.weights_dir)
    rng = np.random.default_rng(0)
    print(f"{'non-posters':<24}{'count':>7}{'refused':>9}{'by similarity':>15}{'by look':>9}{'flagged':>9}")
    flags: list[np.ndarray] = []
    for family, make in FAMILIES.items():
        pixels = [as_dropped(image, number) for number, image in enumerate(make(rng))]
        kept = [p for p in pixels if p is not None]
        seen = [
            likeness(index, line, vector, look_cues(picture))
            for vector, picture in zip(embedder.embed(kept), kept, strict=True)
        ]
        by_similarity = np.array([s.similarity_rarity <= s.threshold for s in seen])
        by_look = np.array([s.look_rarity <= s.threshold for s in seen])
        flagged = np.array([s.unlike_posters for s in seen])
        flags.append(flagged)
        print(
            f"{family:<24}{len(kept):>7}{len(pixels) - len(kept):>9}{100 * by_similarity.mean():>14.1f}%"
            f"{100 * by_look.mean():>8.1f}%{100 * flagged.mean():>8.1f}%"
        )
    share = float(np.concatenate(flags).mean())
    print(f"{'all non-posters':<24}{sum(map(len, flags)):>7}{'':>33}{100 * share:>8.1f}%")
    false_flags = float(np.mean(real["similarity"] | real["look"]))
    print(
        f"\nReal posters of {args.test_from} and later: {len(test_rows):,}, flagged {100 * false_flags:.2f}% "
        f"(by similarity {100 * real['similarity'].mean():.2f}%, by look {100 * real['look'].mean():.2f}%)"
    )
    met = share >= TARGET_FLAGGED and false_flags <= TARGET_FALSE_FLAGS
    print(
        f"Targets: ≥{100 * TARGET_FLAGGED:.0f}% of non-posters flagged, ≤{100 * TARGET_FALSE_FLAGS:.0f}% of posters: "
        + ("met" if met else "NOT met")
    )


if __name__ == "__main__":
    main()
