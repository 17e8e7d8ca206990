"""The catalog's tables as the pages get them: one shared table per catalog, never a copy per rerun."""

from __future__ import annotations

import ui.data
from tests.apptest_helpers import open_page, use_settings
from tests.conftest import make_settings
from tests.csv_fixture import build_manifest_dataset
from ui.data import findings_table, gallery_table, movies_table, usable_titles


def test_a_rerun_gets_the_same_tables_without_copying_them(fixture_catalog) -> None:
    key = fixture_catalog.fingerprint
    assert movies_table(fixture_catalog, key) is movies_table(fixture_catalog, key)
    assert findings_table(fixture_catalog, key) is findings_table(fixture_catalog, key)
    genre = next(iter(fixture_catalog.genre_counts()))
    assert gallery_table(fixture_catalog, key, genre, "title", None, None) is gallery_table(
        fixture_catalog, key, genre, "title", None, None
    )
    assert usable_titles(fixture_catalog, key) is usable_titles(fixture_catalog, key)


def test_the_predict_pick_list_names_every_usable_movie_with_its_year(fixture_catalog) -> None:
    usable = fixture_catalog.usable_movies(include_non_movies=True)
    titles = usable_titles(fixture_catalog, fixture_catalog.fingerprint)
    assert list(titles) == list(usable["imdb_id"])
    first = usable.iloc[0]
    assert titles[first["imdb_id"]] == f"{first['title']} ({first['year']})"


def test_a_frame_a_page_derives_from_a_shared_table_cannot_change_it(fixture_catalog) -> None:
    movies = movies_table(fixture_catalog, fixture_catalog.fingerprint)
    titles = list(movies["title"])
    usable = movies[movies["usable"]]
    usable["title"] = "changed by one page"
    indexed = movies.set_index("imdb_id")
    indexed.loc[indexed.index[0], "title"] = "changed by another"
    assert list(movies_table(fixture_catalog, fixture_catalog.fingerprint)["title"]) == titles


def test_a_reader_fault_is_a_message_on_the_page_not_a_traceback(tmp_path, monkeypatch) -> None:
    settings = make_settings(tmp_path / "data", tmp_path)
    build_manifest_dataset(settings.data_dir, count=4)
    use_settings(monkeypatch, settings)

    def trips(*args, **kwargs):
        raise ValueError("a row the reader did not expect")

    monkeypatch.setattr(ui.data, "open_catalog", trips)

    app = open_page("pages/dataset.py")

    assert not app.exception
    [error] = app.error
    assert "The dataset could not be read: a row the reader did not expect" in error.body
