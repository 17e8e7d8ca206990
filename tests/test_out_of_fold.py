"""Labels that look wrong: out-of-fold scores that never come from a model that saw the movie, ranked by
disagreement, and the Dataset page's one-click (undoable) corrections of them."""

from __future__ import annotations

import numpy as np
import pytest

from core import corrections as cx
from core.config import Settings
from core.data.catalog_build import open_catalog
from core.evaluation import out_of_fold as oof
from core.training.config import make_config
from tests.apptest_helpers import open_page, shown_text


@pytest.mark.slow
def test_out_of_fold_scores_never_come_from_a_model_that_saw_the_movie(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    n, genres = 150, 4
    labels = rng.random((n, genres)) < 0.3
    labels[~labels.any(axis=1), 0] = True
    # Column 0 names the row, so each head's inputs say which movies it saw; the rest carry the labels.
    signal = np.tile(labels, 8) + rng.normal(0, 0.2, (n, 8 * genres))
    features = np.column_stack([np.arange(n), signal]).astype(np.float32)
    folds = oof.assign_folds(labels)
    models: list[dict[str, set[int]]] = []
    real_fit = oof.fit_head

    def recording_fit(train_x, train_y, val_x, val_y, epoch_done):
        seen = {"trained": set(train_x[:, 0].astype(int)), "validated": set(val_x[:, 0].astype(int)), "scored": set()}
        models.append(seen)
        head = real_fit(train_x, train_y, val_x, val_y, epoch_done)

        class Recorded:
            def predict(self, x, **kwargs):
                seen["scored"] |= set(x[:, 0].astype(int))
                return head.predict(x, **kwargs)

        return Recorded()

    monkeypatch.setattr(oof, "fit_head", recording_fit)
    scores = oof.out_of_fold_scores(features, labels, folds)
    assert len(models) == oof.N_FOLDS
    scored = [row for model in models for row in model["scored"]]
    assert sorted(scored) == list(range(n))  # every movie scored exactly once
    for fold, model in enumerate(models):
        assert model["scored"] == set(np.flatnonzero(folds == fold))
        assert not model["scored"] & (model["trained"] | model["validated"])
        assert model["trained"] | model["validated"] == set(np.flatnonzero(folds != fold))
    # Stratified: each fold holds about a fifth of each genre's movies.
    for genre in range(genres):
        per_fold = np.bincount(folds[labels[:, genre]], minlength=oof.N_FOLDS)
        assert per_fold.max() - per_fold.min() <= 2
    # The heads learned something: within each genre, a labelled movie outranks an unlabelled one far more often
    # than chance (the ranking of doubts rests on this order; the early-stopped heads' scores are close together).
    for genre in range(genres):
        labelled, unlabelled = scores[labels[:, genre], genre], scores[~labels[:, genre], genre]
        assert (labelled[:, None] > unlabelled[None, :]).mean() > 0.8


def result_for(ids: list[str], genres: list[str], labels: list[list[int]], scores: list[list[float]], key: str):
    return oof.OutOfFold(key, ids, genres, np.array(labels, bool), np.array(scores), np.zeros(len(ids), int), 12.0, 0)


def test_doubts_rank_by_disagreement_and_name_the_top_unlabelled_genre() -> None:
    result = result_for(
        ["tt0000001", "tt0000002"],
        ["Animation", "Comedy", "Horror"],
        [[0, 1, 0], [0, 0, 1]],
        [[0.97, 0.60, 0.10], [0.30, 0.50, 0.02]],
        "k",
    )
    ranked = oof.doubts(result)
    first, second = ranked.iloc[0], ranked.iloc[1]
    assert (first.imdb_id, first.genre, first.labelled) == ("tt0000002", "Horror", True)  # 1 - 0.02
    assert first.disagreement == pytest.approx(0.98) and first.top_genre == "Comedy"
    assert (second.imdb_id, second.genre, second.labelled) == ("tt0000001", "Animation", False)
    assert list(ranked["disagreement"]) == sorted(ranked["disagreement"], reverse=True)


@pytest.fixture
def settings(clickable_app_settings: Settings) -> Settings:
    return clickable_app_settings


def test_the_state_key_follows_the_corrections_in_force(settings: Settings) -> None:
    catalog = open_catalog(settings)
    movies = catalog.usable_movies()
    movie = movies[movies["genres"].map(len) >= 2].iloc[0]
    before = oof.state_key(catalog)
    removal = cx.correct(catalog, movie.imdb_id, movie.genres[0], cx.REMOVE)
    assert oof.state_key(catalog) != before
    cx.undo(catalog, removal.id)
    assert oof.state_key(catalog) == before  # undone: the cached scores of that state serve again


def cards(app) -> dict[str, str]:
    """Each candidate's sentence, by the key of its button."""
    return {button.key: button.label for button in app.button if str(button.key).startswith("doubt-")}


def test_a_correction_from_the_list_is_stored_and_undone(settings: Settings) -> None:
    catalog = open_catalog(settings)
    movies = catalog.usable_movies()
    single = movies[movies["genres"].map(len) == 1].iloc[0]
    several = movies[movies["genres"].map(len) >= 2].iloc[0]
    genres = sorted({genre for names in movies["genres"] for genre in names})
    other = next(genre for genre in genres if genre not in single.genres)
    labels = [[int(genre in single.genres) for genre in genres], [int(genre in several.genres) for genre in genres]]
    scores = [[0.9 if genre == other else 0.5 for genre in genres], [0.5] * len(genres)]
    scores[0][genres.index(single.genres[0])] = 0.01  # its only genre, doubted most
    scores[1][genres.index(several.genres[0])] = 0.02
    oof.save(settings, result_for([single.imdb_id, several.imdb_id], genres, labels, scores, oof.state_key(catalog)))

    app = open_page("pages/dataset.py")
    assert not app.exception
    assert "Labels that look wrong" in [header.value for header in app.header]
    captions = [shown_text(caption.value) for caption in app.caption]
    assert f"IMDb says {single.genres[0]}, the model gives it 1 %" in captions
    replace_key = f"doubt-{single.imdb_id}-{single.genres[0]}"
    assert cards(app)[replace_key] == f"Replace with {other}"  # its only genre: never a bare removal
    assert cards(app)[f"doubt-{several.imdb_id}-{several.genres[0]}"] == f"Not {several.genres[0]}"

    app.button(key=replace_key).click().run()
    assert not app.exception
    made = {(c.imdb_id, c.genre, c.action) for c in cx.active_corrections(catalog)}
    assert made == {(single.imdb_id, other, cx.ADD), (single.imdb_id, single.genres[0], cx.REMOVE)}
    assert any("Recompute" in button.label for button in app.button)  # the state changed; the list stays
    app.button(key=f"{replace_key}-undo").click().run()
    assert not app.exception
    assert cx.active_corrections(catalog) == []
    assert cards(app)[replace_key] == f"Replace with {other}"

    remove_key = f"doubt-{several.imdb_id}-{several.genres[0]}"
    app.button(key=remove_key).click().run()
    assert [(c.imdb_id, c.genre, c.action) for c in cx.active_corrections(catalog)] == [
        (several.imdb_id, several.genres[0], cx.REMOVE)
    ]


def test_a_one_click_correction_of_a_genre_too_rare_to_train_says_so(settings: Settings) -> None:
    catalog = open_catalog(settings)
    minimum = make_config("fast").min_movies_per_genre
    movies = catalog.usable_movies()
    rare, movie = next(
        (genre, movie)
        for genre, count in reversed(catalog.genre_counts().items())
        if count < minimum
        for movie in movies.itertuples()
        if genre in movie.genres and len(movie.genres) >= 2
    )
    genres = sorted({genre for names in movies["genres"] for genre in names})
    scores = [0.5] * len(genres)
    scores[genres.index(rare)] = 0.01  # "Not <rare>", the top doubt
    labels = [int(genre in movie.genres) for genre in genres]
    oof.save(settings, result_for([movie.imdb_id], genres, [labels], [scores], oof.state_key(catalog)))

    app = open_page("pages/dataset.py")
    app.button(key=f"doubt-{movie.imdb_id}-{rare}").click().run()
    assert not app.exception
    [said] = [shown_text(message.body) for message in app.success]
    assert f"removed {rare}" in said and "The next training run uses it" not in said
    assert f"{rare} itself is left out of training, though" in said and f"fewer than the {minimum}" in said
