"""Label corrections made in the app: a gallery card's "Not <genre>?", the movie page's add and undo, the
Dataset page's account and undo, the Training form's setting, and a tiny run that learns from them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core import corrections as cx
from core.config import Settings
from core.data.catalog import Catalog
from core.data.catalog_build import open_catalog
from core.training import run_folder as rf
from core.training.config import make_config
from core.training.trainer import project_split, train
from tests.apptest_helpers import open_page, open_sections, shown_text, texts

TINY = {"image_size": (64, 48), "epochs": 2, "min_movies_per_genre": 5, "seed": 3, "batch_size": 16}


@pytest.fixture
def settings(clickable_app_settings: Settings) -> Settings:
    return clickable_app_settings


def a_training_movie_on_the_first_gallery_page(catalog: Catalog, settings: Settings) -> tuple[str, str]:
    """A (genre, movie) pair: the movie is on the genre gallery's first page, in the training part of the
    split, and has another genre besides this one (so this one may be removed)."""
    train_ids = set(project_split(catalog, settings).ids("train"))
    for genre in catalog.genre_counts():
        for movie in catalog.genre_gallery(genre).head(24).itertuples():
            if movie.imdb_id in train_ids and len(movie.genres) >= 2:
                return genre, movie.imdb_id
    raise AssertionError("no training movie with two genres on a first gallery page")


def metrics(app) -> dict[str, str]:
    return {metric.label: metric.value for metric in app.metric}


@pytest.mark.slow
def test_a_gallery_correction_is_stored_shown_used_by_training_and_undone(settings: Settings, tmp_path: Path) -> None:
    catalog = open_catalog(settings)
    genre, movie_id = a_training_movie_on_the_first_gallery_page(catalog, settings)
    title = catalog.movie(movie_id)["title"]

    app = open_page("pages/dataset.py")
    assert not app.exception and "No label corrections yet" in " ".join(c.value for c in app.caption)

    # The gallery card's "Not <genre>?" stores the correction and turns into an Undo.
    app = open_page("pages/genre.py", genre=genre)
    app.button(key=f"not_{movie_id}").click().run()
    assert not app.exception, app.exception[0].value
    assert any(f"{genre} removed from" in message.body for message in app.success)
    stored = cx.active_corrections(catalog)
    assert [(c.imdb_id, c.genre, c.action) for c in stored] == [(movie_id, genre, cx.REMOVE)]
    assert not [b for b in app.button if b.key == f"not_{movie_id}"]
    assert any(f"marked not {genre}" in caption.value for caption in app.caption)

    # The Dataset page counts it and lists it, with a CSV download.
    app = open_page("pages/dataset.py")
    assert not app.exception, app.exception[0].value
    assert metrics(app)["Corrections in force"] == "1" and metrics(app)["Movies corrected"] == "1"
    assert not [frame for frame in app.dataframe if "made_at" in frame.value.columns]  # listed once opened
    listed = [
        frame.value for frame in open_sections(app, "section_corrections").dataframe if "made_at" in frame.value.columns
    ]
    assert len(listed) == 1 and list(listed[0][["imdb_id", "genre", "action", "state"]].iloc[0]) == [
        movie_id,
        genre,
        "remove",
        "active",
    ]
    assert listed[0]["title"].iloc[0] == title
    assert "Download the 1 correction (CSV)" in [button.label for button in app.get("download_button")]

    # The Training form offers it, on by default; a tiny run learns from it and records it.
    app = open_page("pages/training.py")
    assert not app.exception, app.exception[0].value
    offer = [box for box in app.checkbox if "label correction" in box.label]
    assert len(offer) == 1 and offer[0].label == "Train on your 1 label correction" and offer[0].value
    result = train(make_config("fast", **TINY), settings, tmp_path / "run")
    assert result.state == "finished", result.error
    record = json.loads((tmp_path / "run" / rf.CORRECTIONS_FILE).read_text())
    assert record["used"] == 1 and record["per_part"]["train"] == 1
    assert [(row["imdb_id"], row["genre"], row["applied"]) for row in record["corrections"]] == [
        (movie_id, genre, True)
    ]

    # Undone from the Dataset page: nothing in force any more, the history keeps it.
    app = open_page("pages/dataset.py")
    app.selectbox(key="undo_choice").select(stored[0].id).run()
    app.button(key="undo_chosen").click().run()
    assert not app.exception, app.exception[0].value
    assert any("undone" in message.body for message in app.success)
    assert metrics(app)["Corrections in force"] == "0" and metrics(app)["Undone"] == "1"
    assert cx.active_corrections(catalog) == []
    app = open_page("pages/genre.py", genre=genre)
    assert [b for b in app.button if b.key == f"not_{movie_id}"]


def test_the_movie_page_adds_a_missing_genre_refuses_an_empty_choice_and_undoes(settings: Settings) -> None:
    catalog = open_catalog(settings)
    movie = catalog.usable_movies().iloc[0]
    missing = next(genre for genre in cx.known_genres(catalog) if genre not in movie["genres"])

    app = open_page("pages/movie.py", movie=movie["imdb_id"])
    app.button(key="add_genre_button").click().run()
    assert any("choose the genre to add first" in message.body for message in app.error)
    assert cx.active_corrections(catalog) == []

    app.selectbox(key="add_genre").select(missing).run()
    app.button(key="add_genre_button").click().run()
    assert not app.exception, app.exception[0].value
    assert [(c.genre, c.action) for c in cx.active_corrections(catalog, movie["imdb_id"])] == [(missing, cx.ADD)]
    chips = [link.label for link in app.get("page_link") if "genre=" in link.proto.query_string]
    assert any(missing in label for label in chips), chips
    assert "the dataset says" in " ".join(caption.value for caption in app.caption)

    correction = cx.active_corrections(catalog)[0]
    app.button(key=f"undo_{correction.id}").click().run()
    assert not app.exception, app.exception[0].value
    assert cx.active_corrections(catalog) == []
    assert "undone" in texts(app) or any("undone" in message.body for message in app.success)


def test_a_stale_page_cannot_store_a_correction_twice(settings: Settings) -> None:
    """Two tabs show the same gallery; the second "Not <genre>?" click gets the reason and stores nothing."""
    catalog = open_catalog(settings)
    genre, movie_id = a_training_movie_on_the_first_gallery_page(catalog, settings)
    first_tab = open_page("pages/genre.py", genre=genre)
    second_tab = open_page("pages/genre.py", genre=genre)
    first_tab.button(key=f"not_{movie_id}").click().run()
    second_tab.button(key=f"not_{movie_id}").click().run()
    assert not second_tab.exception, second_tab.exception[0].value
    refusals = [message.body for message in second_tab.error]
    assert len(refusals) == 1 and "Not stored" in refusals[0] and "You already removed" in refusals[0]
    assert len(cx.corrections_table(catalog)) == 1


def test_a_damaged_corrections_store_is_announced_with_its_files_until_dismissed(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog = open_catalog(settings)
    movie = catalog.usable_movies().query("genres.str.len() >= 2").iloc[0]
    made = cx.correct(catalog, movie["imdb_id"], movie["genres"][0], cx.REMOVE)
    settings.corrections_path.write_bytes(b"\0" * 4096)  # the file's header gone: not a database any more
    monkeypatch.setattr("core.corrections.store._checked", set())  # as after a restart of the app

    app = open_page("pages/dataset.py")
    assert not app.exception, app.exception
    warning = next(shown_text(w.body) for w in app.warning if "label corrections file was damaged" in w.body)
    aside = next(settings.state_dir.glob("corrections.damaged-*.sqlite3"))
    assert aside.name in warning and "corrections-" in warning  # which file went where, which backup came back
    assert cx.active_corrections(catalog) == [made]  # the backup, taken after that first write, came back
    app.button(key="dismiss_corrections_notice").click().run()
    assert not any("was damaged" in w.body for w in app.warning)
