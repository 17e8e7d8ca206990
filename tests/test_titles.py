"""Titles file as a reader expects: leading punctuation and a leading The / A / An do not count."""

from __future__ import annotations

from core.titles import title_sort_key


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
