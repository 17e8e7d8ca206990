"""A synthetic raw dataset of any size in the authors' layout, for measuring how the app's costs grow.

`Movie_Poster_Dataset/<year>/<imdbID>.jpg` and `Movie_Poster_Metadata/groundtruth/<year>.txt`, as the
real copy has them: posters of about 300×440 pixels and 20–40 KB, metadata files in UTF-16 LE with a BOM
and CRLF endings (two in ASCII, like the real 1980 and 1981), records with every field IMDb gives, and
the real copy's faults at its rates (records without a poster, duplicate records, movies without a genre,
series and games).

Encoding 100,000 JPEGs would cost minutes of CPU, so a pool of distinct posters is encoded once and each
file is one of them with its own JPEG comment segment (its IMDb id) inserted after the start marker: every
file has its own bytes and decodes exactly like the pool poster it came from. The years are written in
parallel, each by a process at a low priority, so the generation does not starve other work.
"""

from __future__ import annotations

import io
import json
import os
import random
import struct
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

YEARS = tuple(range(1980, 2016))  # the real copy's metadata years
ASCII_YEARS = (1980, 1981)  # the real copy's two metadata files that are not UTF-16
POOL_SIZE = 120
# The real copy's usable movies per genre (5,745 usable movies): genres are drawn with these weights.
GENRE_WEIGHTS = {
    "Drama": 2950, "Comedy": 2420, "Romance": 1123, "Action": 1035, "Crime": 1012, "Thriller": 729,
    "Adventure": 698, "Horror": 407, "Mystery": 373, "Fantasy": 372, "Documentary": 360, "Family": 358,
    "Biography": 313, "Sci-Fi": 311, "Music": 259, "Sport": 191, "Animation": 169, "History": 165,
    "War": 130, "Musical": 93, "Western": 44, "Short": 18,
}  # fmt: skip
# The real copy's fault rates, per unique movie: 522 of 6,275 records have no poster, 9 are duplicates,
# 22 have no genre, 43 are series or games.
NO_POSTER_RATE = 522 / 6275
DUPLICATE_RATE = 9 / 6275
NO_GENRE_RATE = 22 / 6275
NOT_MOVIE_RATE = 43 / 6275
MARKER = "synthetic-dataset.json"


@dataclass(frozen=True)
class Spec:
    """What a generated dataset holds; stored beside it, so a kept dataset is reused only if it matches."""

    posters: int
    seed: int = 11
    version: int = 1
    # Posters of 60×88 px and about 2 KB instead of the real ones' 300×440 and 20–40 KB: a million of them
    # fit in 2 GB of disk, and the catalog's cost per record is what a million-record run measures.
    small_posters: bool = False


def _pool_poster(number: int, small: bool = False) -> bytes:
    """One distinct poster, 300 px wide and 430–450 px high, of 20–40 KB as JPEG (real ones are); `small`:
    60 px wide and 86–90 px high, of about 2 KB."""
    if small:
        return _small_pool_poster(number)
    rng = np.random.default_rng(number)
    height = 430 + number % 21
    coarse = rng.integers(0, 256, size=(6, 4, 3), dtype=np.uint8)
    base = np.asarray(Image.fromarray(coarse).resize((300, height), Image.Resampling.BICUBIC), dtype=np.float32)
    noise = rng.normal(0.0, 6.0 + (number % 5) * 2.5, size=base.shape)
    image = Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(6):
        x, y = int(rng.integers(0, 260)), int(rng.integers(0, height - 40))
        colour = tuple(int(c) for c in rng.integers(0, 256, size=3))
        draw.rectangle((x, y, x + int(rng.integers(20, 120)), y + int(rng.integers(10, 60))), fill=colour)
    draw.text((20, height - 60), f"POSTER {number}", fill=(255, 255, 255))
    for quality in (85, 75, 65, 55, 45):
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=quality)
        if buffer.tell() <= 40_000:
            return buffer.getvalue()
    return buffer.getvalue()


def _small_pool_poster(number: int) -> bytes:
    rng = np.random.default_rng(number)
    height = 86 + number % 5
    coarse = rng.integers(0, 256, size=(6, 4, 3), dtype=np.uint8)
    base = np.asarray(Image.fromarray(coarse).resize((60, height), Image.Resampling.BICUBIC), dtype=np.float32)
    noise = rng.normal(0.0, 4.0 + (number % 5), size=base.shape)
    image = Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8))
    for quality in (85, 75, 65, 55, 45, 35):
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=quality)
        if buffer.tell() <= 2_500:
            return buffer.getvalue()
    return buffer.getvalue()


def _with_comment(jpeg: bytes, text: str) -> bytes:
    """The JPEG with a comment segment (COM, 0xFFFE) right after its start marker."""
    payload = text.encode("ascii")
    return jpeg[:2] + b"\xff\xfe" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


def _genres(rng: random.Random) -> list[str]:
    names, weights = list(GENRE_WEIGHTS), list(GENRE_WEIGHTS.values())
    count = rng.choices((1, 2, 3), weights=(30, 35, 35))[0]
    chosen: list[str] = []
    while len(chosen) < count:
        genre = rng.choices(names, weights=weights)[0]
        if genre not in chosen:
            chosen.append(genre)
    return sorted(chosen)


def _record(imdb_id: str, year: int, number: int, rng: random.Random) -> str:
    """One record as the MongoDB shell printed it, with the fields (and their order) of the real files."""
    genre = "N/A" if rng.random() < NO_GENRE_RATE else ", ".join(_genres(rng))
    kind = rng.choice(("series", "game")) if rng.random() < NOT_MOVIE_RATE else "movie"
    fields = {
        "Type": kind,
        "Genre": genre,
        "Runtime": f"{rng.randint(70, 180)} min",
        "Response": "True",
        "Metascore": str(rng.randint(20, 95)),
        "Released": f"{rng.randint(1, 28):02d} May {year}",
        "Rated": rng.choice(("G", "PG", "PG-13", "R", "N/A")),
        "Title": f"Synthetic Movie {number:06d}: The {rng.choice(('Return', 'Night', 'Road', 'Game'))}",
        "imdbVotes": f"{rng.randint(100, 900_000):,}",
        "Country": "USA",
        "Awards": "Nominated for 1 Oscar. Another 22 wins & 49 nominations.",
        "imdbRating": f"{rng.randint(15, 95) / 10:.1f}",
        "Box_office": f"{rng.randint(1, 400_000_000):,}",
        "Poster": f"http://ia.media-imdb.com/images/M/{imdb_id}._V1_SX300.jpg",
        "Language": "English",
        "Actors": "First Actor, Second Actor, Third Actor, Fourth Actor",
        "Director": "A. Director",
        "Writer": "A. Writer, Another Writer",
        "imdbID": imdb_id,
    }
    lines = [f'  "_id" : ObjectId("{number:024x}")']
    lines += [f"  {json.dumps(key)} : {json.dumps(value)}" for key, value in fields.items()]
    return "{\n" + ",\n".join(lines) + "\n}\n"


_POOL: list[bytes] = []


def _start_worker(pool: list[bytes]) -> None:
    """In each worker process: a low priority (the machine is shared) and the pool of posters."""
    os.nice(10)
    _POOL[:] = pool


def _write_year(root: str, year: int, first: int, count: int, posters: int, seed: int) -> int:
    """Write one year: `count` records, the first `posters` of them with a poster file. Runs in a worker."""
    rng = random.Random(seed * 10_000 + year)
    pool = _POOL
    folder = Path(root) / "Movie_Poster_Dataset" / str(year)
    folder.mkdir(parents=True, exist_ok=True)
    records = []
    written = 0
    for offset in range(count):
        number = first + offset
        imdb_id = f"tt{1_000_000 + number:07d}"
        records.append(_record(imdb_id, year, number, rng))
        if rng.random() < DUPLICATE_RATE:
            records.append(records[-1])
        if offset < posters:
            data = _with_comment(pool[number % POOL_SIZE], f"synthetic poster {imdb_id}")
            (folder / f"{imdb_id}.jpg").write_bytes(data)
            written += 1
    rng.shuffle(records)
    text = "".join(records)
    path = Path(root) / "Movie_Poster_Metadata" / "groundtruth" / f"{year}.txt"
    if year in ASCII_YEARS:
        path.write_bytes(text.replace("\n", "\r\n").encode("ascii"))
    else:
        path.write_bytes(b"\xff\xfe" + text.replace("\n", "\r\n").encode("utf-16-le"))
    return written


def build(root: Path, spec: Spec, workers: int = 2) -> None:
    """Write the dataset of `spec` under `root` (which must not exist yet), years in parallel processes."""
    (root / "Movie_Poster_Metadata" / "groundtruth").mkdir(parents=True)
    records = round(spec.posters / (1 - NO_POSTER_RATE))
    per_year_records = np.diff(np.linspace(0, records, len(YEARS) + 1).round().astype(int))
    per_year_posters = np.diff(np.linspace(0, spec.posters, len(YEARS) + 1).round().astype(int))
    starts = np.concatenate([[0], np.cumsum(per_year_records)[:-1]])
    posters = [_pool_poster(spec.seed * 1000 + number, spec.small_posters) for number in range(POOL_SIZE)]
    with ProcessPoolExecutor(max_workers=workers, initializer=_start_worker, initargs=(posters,)) as pool:
        jobs = [
            pool.submit(_write_year, str(root), year, int(start), int(count), int(posters), spec.seed)
            for year, start, count, posters in zip(YEARS, starts, per_year_records, per_year_posters, strict=True)
        ]
        written = sum(job.result() for job in jobs)
    if written != spec.posters:
        raise RuntimeError(f"wrote {written} posters instead of {spec.posters}")
    (root / MARKER).write_text(json.dumps(asdict(spec)))


def ensure(root: Path, spec: Spec, workers: int = 2) -> bool:
    """The dataset of `spec` at `root`, generated unless a matching one is there; True if it was generated."""
    marker = root / MARKER
    if marker.is_file() and json.loads(marker.read_text()) == asdict(spec):
        return False
    if root.exists():
        raise FileExistsError(f"{root} exists but holds no dataset of {spec}: remove it or choose another folder")
    build(root, spec, workers)
    return True
