"""Titles file as a reader expects: leading punctuation and a leading The / A / An do not count."""

from __future__ import annotations

import pandas as pd

from core.data.titles import title_sort_key, title_with_year


def test_a_title_list_files_as_a_library_does() -> None:
    titles = ["'Til There Was You", "*batteries not included", "The Matrix", "A Beautiful Mind", "An American Tail"]
    titles += ["Zoolander", "$9.99", "...And Justice for All", "Theater Camp", "Anastasia", "the abyss", "The"]
    assert sorted(titles, key=title_sort_key) == [
        "$9.99",
        "the abyss",
        "An American Tail",
        "Anastasia",
        "...And Justice for All",
        "*batteries not included",
        "A Beautiful Mind",
        "The Matrix",
        "The",
        "Theater Camp",
        "'Til There Was You",
        "Zoolander",
    ]


def test_a_movie_without_a_year_is_listed_by_its_title_alone() -> None:
    """A CSV dataset may leave a year out; pandas then reads the column as floats with NaN for it."""
    years = pd.Series([2001, None], dtype="float64")
    assert [title_with_year(title, year) for title, year in zip(["Amélie", "Untitled"], years, strict=True)] == [
        "Amélie (2001)",
        "Untitled",
    ]
    assert title_with_year("Heat", 1995) == "Heat (1995)"
    assert title_with_year("Heat", None) == "Heat"
