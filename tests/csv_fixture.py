"""Small generated datasets in the two CSV layouts, with every fault the year-folder fixture has.

`build_manifest_dataset(DIR)` writes `posters.csv` (with a BOM) and its posters; `build_moviegenre_dataset(DIR)`
writes `MovieGenre.csv` (some rows in Windows-1252, as Kaggle's file has) and `posters/`. Each returns what an
honest ingest must report, counted from its own construction. The posters are the year-folder fixture's
synthetic ones (each genre paints its colour and shape), so a tiny model learns from them too.

    python -m tests.csv_fixture manifest DIR    or    python -m tests.csv_fixture moviegenre DIR
"""

from __future__ import annotations

import io
import random
import shutil
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from tests.raw_fixture import FIGURES, GENRE_STYLE, Expected, FixtureMovie, _poster_bytes

GENRES = list(GENRE_STYLE)


# A CSV layout's report counts its rows without an id too.
CSV_FIGURES = (*FIGURES, "records_without_id")


@dataclass(kw_only=True)
class CsvExpected(Expected):
    """The report's figures for a generated CSV dataset (the folder layout's, and the CSV's own), and the line
    of each faulty row."""

    layout: str
    records_without_id: int
    rows_not_utf8: int
    fault_lines: dict[str, list[int]] = field(default_factory=dict)
    usable_ids: list[str] = field(default_factory=list)


def _movies(count: int, seed: int) -> list[FixtureMovie]:
    rng = random.Random(seed)
    movies = []
    for number in range(count):
        genres = sorted(rng.sample(GENRES, rng.choice((1, 1, 2))))
        movies.append(FixtureMovie(f"m{number:03d}", f"Poster number {number}", 1990 + number % 25, genres))
    return movies


def _jpeg(movie: FixtureMovie, seed: int, kind: str = "jpeg") -> bytes:
    return _poster_bytes(FixtureMovie(movie.imdb_id, movie.title, movie.year, movie.genres, poster=kind), seed)


def _csv_line(values: list[str]) -> str:
    quoted = ['"' + value.replace('"', '""') + '"' if any(c in value for c in ',"\n') else value for value in values]
    return ",".join(quoted)


def build_manifest_dataset(root: Path, count: int = 40) -> CsvExpected:
    """A folder with `posters.csv` (UTF-8 with BOM) naming posters in `images/`, with every fault once or more."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "images").mkdir()
    movies = _movies(count, seed=5)
    lines = ["id,title,year,genres,poster,director,studio"]
    usable: list[FixtureMovie] = []
    faults: dict[str, list[int]] = {}

    def add(values: list[str], fault: str | None = None) -> None:
        start = 1 + sum(text.count("\n") + 1 for text in lines)  # a quoted field may span lines
        lines.append(_csv_line(values))
        if fault:
            faults.setdefault(fault, []).append(start)

    for number, movie in enumerate(movies):
        (root / "images" / f"{movie.imdb_id}.jpg").write_bytes(_jpeg(movie, number))
        title = 'A "quoted", multi-line\ntitle' if number == 3 else movie.title
        add(
            [
                movie.imdb_id,
                title,
                str(movie.year),
                "|".join(movie.genres),
                f"images/{movie.imdb_id}.jpg",
                "Ann Lee",
                "X",
            ]
        )
        usable.append(movie)
    first = movies[0]
    # The faults, each as the year-folder reader has it.
    add([first.imdb_id, "Again", "2001", "Drama", f"images/{first.imdb_id}.jpg", "", ""], "duplicate record")
    add(["gone", "No poster file", "2002", "Comedy", "images/gone.jpg", "", ""], "record without poster")
    add(["escape", "Leaves the folder", "2002", "Comedy", "../outside.jpg", "", ""], "record without poster")
    (root / "images" / "nogenre.jpg").write_bytes(_jpeg(first, 90))
    add(["nogenre", "No genres", "2003", "", "images/nogenre.jpg", "", ""], "record without genre")
    (root / "images" / "broken.jpg").write_bytes(_jpeg(first, 91, "truncated"))
    add(
        ["broken", "Truncated poster", "2004", "Horror", "images/broken.jpg", "", ""]
    )  # its finding names the poster file
    add(["bad id!", "Spaces in its id", "2004", "Horror", "images/x.jpg", "", ""], "record without id")
    add(["", "No id", "2004", "Horror", "images/y.jpg", "", ""], "record without id")
    add(["short", "Too few fields"], "unparseable record")
    (root / "images" / "orphan.jpg").write_bytes(_jpeg(first, 92))
    (root / "images" / "notes.txt").write_text("not a poster")
    text = "\r\n".join(lines) + "\r\n"
    (root / "posters.csv").write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    genre_counts = Counter(genre for movie in usable for genre in movie.genres)
    return CsvExpected(
        layout="manifest-csv",
        records=count + 5,  # every row with a usable id: the movies, the duplicate and four faulty rows
        unique_movies=count + 4,
        duplicate_records=1,
        posters=count + 3,  # the movies' posters, nogenre, broken and the orphan
        posters_without_record=1,
        records_without_poster=2,
        records_without_genre=1,
        records_without_id=2,
        unreadable_posters=1,
        unparseable_records=1,
        rows_not_utf8=0,
        usable_movies=count,
        genres=dict(genre_counts),
        fault_lines=faults,
        usable_ids=[movie.imdb_id for movie in usable],
    )


# The README's example manifest, line for line: no `imdb_rating` column, ids of both kinds.
README_MANIFEST = """id,title,year,genres,poster,director
poster-0001,Personal Services,1987,Comedy,img/poster-0001.jpg,Terry Jones
tt0114709,Toy Story,1995,Animation|Comedy|Family,img/tt0114709.jpg,John Lasseter
"""


def build_readme_manifest(root: Path) -> list[FixtureMovie]:
    """The README's example `my-posters/` folder (its `posters.csv` and two posters); returns its movies."""
    (root / "img").mkdir(parents=True)
    (root / "posters.csv").write_text(README_MANIFEST, encoding="utf-8")
    movies = []
    for number, line in enumerate(README_MANIFEST.splitlines()[1:]):
        movie_id, title, year, genres, poster, _ = line.split(",")
        movie = FixtureMovie(movie_id, title, int(year), genres.split("|"))
        (root / poster).write_bytes(_jpeg(movie, number))
        movies.append(movie)
    return movies


def build_readme_manifest_with(root: Path, title: str, genres: str) -> None:
    """The README's manifest with one more movie, `hostile`, of this title and these genres (`|` between them);
    its poster is a copy of the first movie's."""
    build_readme_manifest(root)
    shutil.copy(root / "img" / "poster-0001.jpg", root / "img" / "hostile.jpg")
    with (root / "posters.csv").open("a", encoding="utf-8") as manifest:
        manifest.write(f"hostile,{title},1999,{genres},img/hostile.jpg,\n")


def build_moviegenre_dataset(root: Path, count: int = 40) -> CsvExpected:
    """A folder as Kaggle's "Movie Genre from its Poster" ships: `MovieGenre.csv` beside `posters/`."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "posters").mkdir()
    movies = _movies(count, seed=9)
    out = io.BytesIO()
    out.write(b"imdbId,Imdb Link,Title,IMDB Score,Genre,Poster\n")
    line = 1
    faults: dict[str, list[int]] = {}
    usable_ids = []

    def add(values: list[str], fault: str | None = None, encoding: str = "utf-8") -> None:
        nonlocal line
        out.write((_csv_line(values) + "\n").encode(encoding))
        line += 1
        if fault:
            faults.setdefault(fault, []).append(line)

    for number, movie in enumerate(movies):
        imdb_number = 114709 + number
        name = f"tt{imdb_number:07d}.jpg" if number % 2 else f"{imdb_number}.jpg"  # both names are accepted
        (root / "posters" / name).write_bytes(_jpeg(movie, number))
        title = f"Café number {number} ({movie.year})" if number == 1 else f"{movie.title} ({movie.year})"
        values = [
            str(imdb_number),
            f"http://www.imdb.com/title/tt{imdb_number:07d}",
            title,
            "6.1",
            "|".join(movie.genres),
        ]
        values.append(f"https://images.example/{imdb_number}.jpg")
        add(values, "row not UTF-8" if number == 1 else None, "cp1252" if number == 1 else "utf-8")
        usable_ids.append(f"tt{imdb_number:07d}")
    add(["114709", "", "Toy Story again (1995)", "8.3", "Comedy", ""], "duplicate record")
    add(["999001", "", "Lost poster (2000)", "5.0", "Drama", ""], "record without poster")
    (root / "posters" / "999002.jpg").write_bytes(_jpeg(movies[0], 90))
    add(["999002", "", "No genre (2001)", "5.0", "", ""], "record without genre")
    (root / "posters" / "999003.jpg").write_bytes(_jpeg(movies[0], 91, "empty"))
    add(["999003", "", "Empty poster (2002)", "5.0", "Horror", ""])  # its finding names the poster file
    add(["not-a-number", "", "Bad id (2003)", "5.0", "Horror", ""], "record without id")
    out.write(b'999004,,"Broken \x81 bytes (2004)",5.0,Horror,\n')  # 0x81: no Windows-1252 character either
    line += 1
    faults["unparseable record"] = [line]
    add(["999005", "", "Too few fields"], "unparseable record")
    (root / "posters" / "888888.jpg").write_bytes(_jpeg(movies[0], 92))
    (root / "posters" / "cover.jpg").write_bytes(_jpeg(movies[0], 93))
    (root / "MovieGenre.csv").write_bytes(out.getvalue())
    genre_counts = Counter(genre for movie in movies for genre in movie.genres)
    return CsvExpected(
        layout="moviegenre-csv",
        records=count + 4,
        unique_movies=count + 3,
        duplicate_records=1,
        posters=count + 4,  # the movies', 999002, 999003, and two without a row
        posters_without_record=2,
        records_without_poster=1,
        records_without_genre=1,
        records_without_id=1,
        unreadable_posters=1,
        unparseable_records=2,
        rows_not_utf8=1,
        usable_movies=count,
        genres=dict(genre_counts),
        fault_lines=faults,
        usable_ids=usable_ids,
    )


if __name__ == "__main__":
    builders = {"manifest": build_manifest_dataset, "moviegenre": build_moviegenre_dataset}
    if len(sys.argv) != 3 or sys.argv[1] not in builders:
        sys.exit("usage: python -m tests.csv_fixture manifest|moviegenre DIR")
    expected = builders[sys.argv[1]](Path(sys.argv[2]))
    print(f"wrote a {expected.layout} dataset of {expected.usable_movies} usable movies to {sys.argv[2]}")
