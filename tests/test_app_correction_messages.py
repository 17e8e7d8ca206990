"""What a correction's confirmation promises about training is true: a genre too rare for a run says so."""

from __future__ import annotations

from pathlib import Path

import pytest

from core import corrections as cx
from core.config import Settings
from core.data.catalog_build import open_catalog
from core.training.config import make_config
from tests.apptest_helpers import open_page, shown_text, use_settings
from tests.conftest import FixtureData, make_settings
from tests.model_fixture import as_on_a_warm_server


@pytest.fixture
def settings(fixture_data: FixtureData, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The generated dataset with a catalog and corrections of this test's own, buttons clickable."""
    settings = make_settings(fixture_data.settings.data_dir, tmp_path)
    use_settings(monkeypatch, settings)
    as_on_a_warm_server(monkeypatch)
    return settings


def test_not_genre_on_a_card_says_the_genre_is_left_out_of_training_when_too_few_movies_have_it(
    settings: Settings,
) -> None:
    catalog = open_catalog(settings)
    minimum = make_config("fast").min_movies_per_genre
    genre, movie_id = next(
        (genre, movie.imdb_id)
        for genre, count in reversed(catalog.genre_counts().items())
        if count < minimum
        for movie in catalog.genre_gallery(genre).head(24).itertuples()
        if len(movie.genres) >= 2
    )
    app = open_page("pages/genre.py", genre=genre)
    app.button(key=f"not_{movie_id}").click().run()
    assert not app.exception
    corrected = cx.apply_corrections(catalog.usable_movies(), cx.active_corrections(catalog))
    left = sum(genre in genres for genres in corrected["genres"])
    messages = [shown_text(message.body) for message in app.success]
    assert len(messages) == 1 and f"{genre} removed from" in messages[0]
    assert "The next training run uses it" not in messages[0]
    assert f"left out of training, though: {left} movies have it, fewer than the {minimum}" in messages[0]
