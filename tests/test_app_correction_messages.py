"""What a correction's confirmation promises about training is true: a genre too rare for a run says so."""

from __future__ import annotations

import pytest

from core import corrections as cx
from core.config import Settings
from core.data.catalog_build import open_catalog
from core.training.config import make_config
from tests.apptest_helpers import open_page, shown_text


@pytest.fixture
def settings(clickable_app_settings: Settings) -> Settings:
    return clickable_app_settings


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
