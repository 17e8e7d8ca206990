"""A small raw dataset in the authors' layout, generated on the fly, with every fault the real one has.

The posters are synthetic (no real poster may enter the repository): each genre paints its own colour and
shape, so that a tiny model can learn something from them in seconds. The builder also returns what an
honest ingest must find, counted from its own construction rather than by reading the files back.

Run `python -m tests.raw_fixture DIR` to write one to DIR (for screenshots or a try-out of the app).
"""

from __future__ import annotations

import codecs
import io
import json
import random
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageDraw

GENRE_STYLE = {  # colour of the background and shape painted for each genre
    "Action": ((200, 40, 30), "diagonal"),
    "Comedy": ((250, 210, 40), "circle"),
    "Drama": ((40, 60, 140), "bar"),
    "Horror": ((20, 20, 20), "triangle"),
    "Romance": ((230, 120, 170), "heart"),
}
TRICKY_TITLES = [
    "$9.99",
    "*batteries not included",
    "The First $20 Million Is Always the Hardest",
    "<script>alert('x')</script> & <img src=x onerror=alert(1)>",
    "[click me](https://example.com) and $x^2$",
]
POSTER_SIZE = (60, 90)  # width, height: posters are portrait, about 2:3


@dataclass
class FixtureMovie:
    imdb_id: str
    title: str
    year: int
    genres: list[str]
    kind: str = "movie"
    rating: str = "6.5"
    poster: str = "jpeg"  # jpeg, png (named .jpg), truncated, empty, none
    genre_field: str | None = None  # overrides the Genre text (e.g. "N/A")


@dataclass
class Expected:
    """What a correct ingest reports for the generated dataset."""

    records: int
    unique_movies: int
    duplicate_records: int
    posters: int
    posters_without_record: int
    records_without_poster: int
    records_without_genre: int
    unreadable_posters: int
    unparseable_records: int
    usable_movies: int
    genres: dict[str, int]
    findings: dict[str, int] = field(default_factory=dict)
    tricky_titles: list[str] = field(default_factory=list)
    movies: list[FixtureMovie] = field(default_factory=list)


# The ingest report's counts that `Expected` predicts, as the summary names them.
FIGURES = (
    "records",
    "unique_movies",
    "duplicate_records",
    "posters",
    "posters_without_record",
    "records_without_poster",
    "records_without_genre",
    "unreadable_posters",
    "unparseable_records",
    "usable_movies",
)


def _poster_image(genres: list[str], seed: int) -> Image.Image:
    rng = random.Random(seed)
    width, height = POSTER_SIZE
    main = GENRE_STYLE.get(genres[0] if genres else "", ((128, 128, 128), "none"))
    jitter = [max(0, min(255, c + rng.randint(-25, 25))) for c in main[0]]
    image = Image.new("RGB", POSTER_SIZE, tuple(jitter))
    draw = ImageDraw.Draw(image)
    for genre in genres:
        colour, shape = GENRE_STYLE.get(genre, ((128, 128, 128), "none"))
        inverse = tuple(255 - c for c in colour)
        x, y = rng.randint(5, 20), rng.randint(10, 50)
        if shape == "diagonal":
            draw.line((0, height, width, 0), fill=inverse, width=8)
        elif shape == "circle":
            draw.ellipse((x, y, x + 30, y + 30), fill=inverse)
        elif shape == "bar":
            draw.rectangle((0, y, width, y + 12), fill=inverse)
        elif shape == "triangle":
            draw.polygon([(width // 2, 5), (5, height - 5), (width - 5, height - 5)], outline=inverse, width=3)
        elif shape == "heart":
            draw.ellipse((x, y, x + 15, y + 15), fill=inverse)
            draw.ellipse((x + 12, y, x + 27, y + 15), fill=inverse)
    return image


def _poster_bytes(movie: FixtureMovie, seed: int) -> bytes:
    buffer = io.BytesIO()
    image = _poster_image(movie.genres, seed)
    if movie.poster == "png":
        image.save(buffer, format="PNG")
        return buffer.getvalue()
    image.save(buffer, format="JPEG", quality=90)
    data = buffer.getvalue()
    if movie.poster == "truncated":
        return data[: len(data) // 2]
    if movie.poster == "empty":
        return b""
    return data


def _record_text(movie: FixtureMovie, object_id: int, votes: str = "1,234") -> str:
    genre = movie.genre_field if movie.genre_field is not None else ", ".join(movie.genres)
    fields = {
        "Title": movie.title,
        "imdbID": movie.imdb_id,
        "Genre": genre,
        "Type": movie.kind,
        "imdbRating": movie.rating,
        "imdbVotes": votes,
        "Runtime": "101 min",
        "Director": "A. Director",
        "Actors": "First Actor, Second Actor",
        "Released": f"01 Jan {movie.year}",
        "Response": "True",
    }
    lines = [f'  "_id" : ObjectId("{object_id:024x}")']
    lines += [f"  {json.dumps(key)} : {json.dumps(value, ensure_ascii=False)}" for key, value in fields.items()]
    return "{\n" + ",\n".join(lines) + "\n}\n"


def _movies() -> list[FixtureMovie]:
    names = list(GENRE_STYLE)
    movies = []
    for number in range(72):
        first = names[number % len(names)]
        second = names[(number * 3 + 1) % len(names)]
        genres = [first] if number % 3 == 0 or second == first else [first, second]
        year = (2001, 2002, 2004)[number % 3]
        title = TRICKY_TITLES[number] if number < len(TRICKY_TITLES) else f"Movie {number:03d}"
        rating = "N/A" if number % 11 == 0 else f"{4 + (number * 7) % 50 / 10:.1f}"
        movies.append(FixtureMovie(f"tt{100001 + number:07d}", title, year, genres, rating=rating))
    movies += [
        FixtureMovie("tt0200001", "Lost Poster One", 2001, ["Drama"], poster="none"),
        FixtureMovie("tt0200002", "Lost Poster Two", 2002, ["Comedy"], poster="none"),
        FixtureMovie("tt0200003", "A Year Without Posters", 2003, ["Action"], poster="none"),
        FixtureMovie("tt0200004", "No Genre At All", 2001, [], genre_field="N/A"),
        FixtureMovie("tt0200005", "No Genre Nor Poster", 2002, [], genre_field="N/A", poster="none"),
        FixtureMovie("tt0200006", "Half a Poster", 2001, ["Horror"], poster="truncated"),
        FixtureMovie("tt0200007", "A PNG in Disguise", 2002, ["Romance", "Drama"], poster="png"),
        FixtureMovie("tt0200008", "An Empty File", 2004, ["Comedy"], poster="empty"),
        FixtureMovie("tt0200009", "The Series", 2001, ["Drama"], kind="series"),
        FixtureMovie("tt0200010", "The Game", 2002, ["Action"], kind="game"),
    ]
    return movies


def _encode(text: str, encoding: str, newline: str) -> bytes:
    text = text.replace("\n", newline)
    if encoding == "utf-16-le-bom":
        return codecs.BOM_UTF16_LE + text.encode("utf-16-le")
    if encoding == "utf-16-be-bom":
        return codecs.BOM_UTF16_BE + text.encode("utf-16-be")
    if encoding == "utf-8-bom":
        return codecs.BOM_UTF8 + text.encode("utf-8")
    return text.encode(encoding)


# year -> (encoding, line ending): every encoding and line ending a user's copy may have
FILE_FORMATS = {
    2001: ("utf-16-le-bom", "\r\n"),
    2002: ("utf-8", "\n"),
    2003: ("utf-8-bom", "\r"),
    2004: ("utf-16-be-bom", "\r\n"),
}
UNREADABLE_METADATA_YEAR = 2005


def build_raw_dataset(root: Path, seed: int = 7) -> Expected:
    """Write the layout under `root` (posters and metadata) and return what ingest must report."""
    poster_root = root / "Movie_Poster_Dataset"
    metadata_dir = root / "Movie_Poster_Metadata" / "groundtruth"
    metadata_dir.mkdir(parents=True, exist_ok=True)
    movies = _movies()
    texts: dict[int, list[str]] = {year: [] for year in FILE_FORMATS}
    for number, movie in enumerate(movies):
        texts[movie.year].append(_record_text(movie, number))
        if movie.poster == "none":
            continue
        folder = poster_root / str(movie.year)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{movie.imdb_id}.jpg").write_bytes(_poster_bytes(movie, seed * 1000 + number))

    # Faults that live in the metadata: duplicates (identical and changed), a broken record, no id.
    texts[2001].append(_record_text(movies[3], 3))
    texts[2002].append(_record_text(movies[1], 1, votes="9,999"))
    texts[2002].insert(3, '{\n  "Title" : "Broken Record",\n  "imdbID" : "tt0300001"\n  "Genre" : "Drama"\n}\n')
    texts[2004].append('{\n  "Title" : "Nobody Knows My Id",\n  "Genre" : "Comedy",\n  "Type" : "movie"\n}\n')
    for year, (encoding, newline) in FILE_FORMATS.items():
        (metadata_dir / f"{year}.txt").write_bytes(_encode("".join(texts[year]), encoding, newline))
    # A file no encoding can read: binary noise with NUL bytes scattered unevenly.
    noise = random.Random(seed).randbytes(600) + b"\x00\x01\x02" * 3
    (metadata_dir / f"{UNREADABLE_METADATA_YEAR}.txt").write_bytes(noise)

    # Faults that live among the posters: one without a record, and a stray non-poster file.
    orphan = FixtureMovie("tt0400001", "", 2001, ["Action"])
    (poster_root / "2001" / "tt0400001.jpg").write_bytes(_poster_bytes(orphan, seed))
    (poster_root / "2002" / "Thumbs.db").write_bytes(b"\x00thumbnail cache")

    with_poster = [m for m in movies if m.poster != "none"]
    readable = [m for m in with_poster if m.poster in ("jpeg", "png")]
    usable = [m for m in readable if m.genres]
    genre_counts = Counter(genre for movie in usable for genre in movie.genres)
    findings = {
        "duplicate record": 2,
        "record without poster": sum(1 for m in movies if m.poster == "none"),
        "poster without record": 1,
        "record without genre": sum(1 for m in movies if not m.genres),
        "unreadable poster": sum(1 for m in with_poster if m.poster in ("truncated", "empty")),
        "poster not a JPEG": sum(1 for m in with_poster if m.poster == "png"),
        "duplicate poster": 0,
        "unparseable record": 1,
        "record without id": 1,
        "unreadable metadata file": 1,
        "metadata file too large": 0,
        "record too large": 0,
        "not a movie": sum(1 for m in movies if m.kind != "movie"),
        "stray file": 1,
        "row not UTF-8": 0,  # a CSV layout's finding; metadata files decode whole
        "year out of range": 0,
    }
    return Expected(
        records=len(movies) + 2,
        unique_movies=len(movies),
        duplicate_records=2,
        posters=len(with_poster) + 1,
        posters_without_record=1,
        records_without_poster=findings["record without poster"],
        records_without_genre=findings["record without genre"],
        unreadable_posters=findings["unreadable poster"],
        unparseable_records=1,
        usable_movies=len(usable),
        genres=dict(genre_counts),
        findings=findings,
        tricky_titles=list(TRICKY_TITLES),
        movies=movies,
    )


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "fixture-dataset")
    expected = build_raw_dataset(target)
    print(f"Wrote a fixture dataset to {target}: {expected.usable_movies} usable movies of {expected.unique_movies}")
