"""The report on the real dataset agrees with itself and with a count made here, independently of core."""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path

import pytest

pytestmark = pytest.mark.real_data


def _independent_count(root: Path) -> dict[str, object]:
    """Count records and posters with nothing but regular expressions and the BOM."""
    records: list[tuple[str, str]] = []
    for path in sorted((root / "Movie_Poster_Metadata" / "groundtruth").glob("*.txt")):
        raw = path.read_bytes()
        text = raw.decode("utf-16") if raw[:2] in (b"\xff\xfe", b"\xfe\xff") else raw.decode("utf-8-sig")
        for block in re.split(r"\n(?=\{)", text.replace("\r\n", "\n")):
            found_id = re.search(r'"imdbID"\s*:\s*"([^"]*)"', block)
            found_genre = re.search(r'"Genre"\s*:\s*"([^"]*)"', block)
            if found_id:
                records.append((found_id.group(1), found_genre.group(1) if found_genre else ""))
    posters = {
        name[:-4] for _, _, names in os.walk(root / "Movie_Poster_Dataset") for name in names if name.endswith(".jpg")
    }
    first_genre: dict[str, str] = {}
    for imdb_id, genre in records:
        first_genre.setdefault(imdb_id, genre)
    has_genre = {i for i, g in first_genre.items() if g not in ("", "N/A")}
    usable = has_genre & posters
    genres = Counter(g.strip() for i in usable for g in first_genre[i].split(","))
    return {
        "records": len(records),
        "unique_movies": len(first_genre),
        "posters": len(posters),
        "records_without_poster": len(set(first_genre) - posters),
        "posters_without_record": len(posters - set(first_genre)),
        "records_without_genre": len(set(first_genre) - has_genre),
        "usable_movies": len(usable),
        "genres": dict(genres),
    }


def test_report_agrees_with_an_independent_count(real_catalog, real_data_dir: Path) -> None:
    summary = real_catalog.summary()
    counted = _independent_count(real_data_dir)
    assert summary["unreadable_posters"] == 0  # every real poster decodes, so usable needs no decoding here
    for key, value in counted.items():
        assert summary[key] == value, key


def test_report_figures_add_up_on_the_real_data(real_catalog) -> None:
    summary = real_catalog.summary()
    assert summary["posters"] == summary["posters_with_record"] + summary["posters_without_record"]
    assert summary["records"] == summary["unique_movies"] + summary["duplicate_records"]
    assert summary["duplicate_records"] == summary["findings"]["duplicate record"] > 0
    assert summary["records_without_poster"] > 0 and summary["records_without_genre"] > 0
    assert summary["not_movies"] == summary["findings"]["not a movie"] > 0
    assert sum(summary["findings"].values()) == len(real_catalog.findings())
    assert "N/A" not in summary["genres"]
    files = real_catalog.metadata_files()
    assert {"UTF-8", "UTF-16 LE with BOM"} <= set(files["encoding"])  # the real files mix encodings
    per_year = real_catalog.movies().groupby("year")["poster"].count()
    assert (per_year == 0).any()  # a year with records but no poster folder


def test_tricky_real_titles_are_kept_verbatim(real_catalog) -> None:
    titles = set(real_catalog.movies()["title"])
    assert {"$9.99", "*batteries not included", "The First $20 Million Is Always the Hardest"} <= titles
