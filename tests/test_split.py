"""The saved split: drawn once, stratified, reproducible, reused as is and written atomically."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.training import split as split_module
from core.training import stratified_split
from core.training.genre_support import genres_with_min_support
from core.training.split import (
    PARTS,
    Split,
    SplitError,
    SplitFileError,
    SplitMismatchError,
    load_split,
    save_split,
)
from core.training.stratified_split import draw_split, load_or_draw_split

# Genre shares loosely shaped like IMDb's: one dominant genre, a long tail, and genres that go together.
BASE_SHARES = {
    "Drama": 0.45,
    "Comedy": 0.30,
    "Action": 0.15,
    "Crime": 0.10,
    "Horror": 0.08,
    "Adventure": 0.08,
    "Documentary": 0.05,
    "Animation": 0.04,
    "Fantasy": 0.04,
    "Western": 0.02,
}


def synthetic_movies(n: int = 2000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        genres = [genre for genre, share in BASE_SHARES.items() if rng.random() < share]
        if ("Drama" in genres or "Comedy" in genres) and rng.random() < 0.3:
            genres.append("Romance")
        if ("Crime" in genres or "Horror" in genres) and rng.random() < 0.6:
            genres.append("Thriller")
        if "Animation" in genres and rng.random() < 0.7:
            genres.append("Family")
        rows.append({"imdb_id": f"tt{i:07d}", "genres": genres})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def movies() -> pd.DataFrame:
    return synthetic_movies()


@pytest.fixture(scope="module")
def drawn(movies: pd.DataFrame) -> Split:
    return draw_split(movies, seed=7, catalog_fingerprint="catalog-v1")


def _genre_shares(movies: pd.DataFrame, ids: list[str] | None = None) -> pd.Series:
    part = movies if ids is None else movies[movies["imdb_id"].isin(set(ids))]
    return part["genres"].explode().value_counts() / len(part)


def test_every_movie_is_in_exactly_one_part_of_about_the_asked_size(movies: pd.DataFrame, drawn: Split) -> None:
    assert set(drawn.assignments) == set(movies["imdb_id"])
    assert set(drawn.assignments.values()) == set(PARTS)
    counts = drawn.counts()
    assert sum(counts.values()) == len(movies)
    for part, fraction in zip(PARTS, (0.70, 0.15, 0.15), strict=True):
        assert counts[part] / len(movies) == pytest.approx(fraction, abs=0.02)


def test_stratification_keeps_each_genre_share_across_parts(movies: pd.DataFrame, drawn: Split) -> None:
    overall = _genre_shares(movies)
    for part in PARTS:
        shares = _genre_shares(movies, drawn.ids(part)).reindex(overall.index, fill_value=0.0)
        # A plain random 15% part of these movies misses some genre's share by about 3 points.
        assert (shares - overall).abs().max() < 0.015, part


def test_the_same_seed_draws_the_same_split_whatever_the_row_order(movies: pd.DataFrame, drawn: Split) -> None:
    again = draw_split(movies.sample(frac=1.0, random_state=3), seed=7)
    assert again.assignments == drawn.assignments
    assert again.split_id == drawn.split_id


def test_another_seed_draws_another_split(movies: pd.DataFrame, drawn: Split) -> None:
    other = draw_split(movies, seed=8)
    assert other.split_id != drawn.split_id
    assert other.ids("test") != drawn.ids("test")


def test_the_test_part_depends_only_on_the_test_fraction(movies: pd.DataFrame, drawn: Split) -> None:
    # Test is taken off first, so moving movies between train and validation leaves it as it was.
    other = draw_split(movies, seed=7, fractions=(0.75, 0.10, 0.15))
    assert other.ids("test") == drawn.ids("test")
    assert other.ids("val") != drawn.ids("val")


def test_a_single_genre_catalog_can_be_split() -> None:
    movies = pd.DataFrame({"imdb_id": [f"tt{i}" for i in range(40)], "genres": [["Drama"]] * 20 + [[]] * 20})
    result = draw_split(movies, seed=1)
    assert all(count > 0 for count in result.counts().values())


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (pd.DataFrame({"imdb_id": ["tt1", "tt2"]}), "genres"),
        (pd.DataFrame({"imdb_id": ["tt1", "tt1", "tt2"], "genres": [["A"], ["A"], ["B"]]}), "twice"),
        (pd.DataFrame({"imdb_id": ["tt1", "tt2", "tt3"], "genres": ["Drama, Comedy", ["A"], ["B"]]}), "list"),
        (pd.DataFrame({"imdb_id": ["tt1", "", "tt3"], "genres": [["A"], ["A"], ["B"]]}), "imdb_id"),
        (pd.DataFrame({"imdb_id": ["tt1", "tt2"], "genres": [["A"], ["B"]]}), "cannot fill"),
    ],
)
def test_bad_movies_raise_a_clear_error(frame: pd.DataFrame, message: str) -> None:
    with pytest.raises(SplitError, match=message):
        draw_split(frame)


@pytest.mark.parametrize("fractions", [(0.7, 0.2, 0.2), (0.8, 0.2, 0.0), (0.7, 0.3), ("a", 0.5, 0.5)])
def test_bad_fractions_raise_a_clear_error(movies: pd.DataFrame, fractions: tuple) -> None:
    with pytest.raises(SplitError, match="fractions"):
        draw_split(movies, fractions=fractions)


def test_too_few_movies_for_a_part_is_an_error() -> None:
    frame = pd.DataFrame({"imdb_id": ["tt1", "tt2", "tt3", "tt4"], "genres": [["A"]] * 4})
    with pytest.raises(SplitError, match="too few"):
        draw_split(frame, fractions=(0.9, 0.05, 0.05))


def test_save_and_load_round_trip(tmp_path: Path, drawn: Split) -> None:
    path = tmp_path / "splits" / "split.json"
    save_split(drawn, path)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert set(data) == {"split_id", "seed", "fractions", "created_at", "catalog_fingerprint", "assignments"}
    assert data["fractions"] == {"train": 0.7, "val": 0.15, "test": 0.15}
    assert data["catalog_fingerprint"] == "catalog-v1"
    assert len(data["split_id"]) == 12
    loaded = load_split(path)
    assert loaded == drawn


def test_a_hand_edited_split_is_refused(tmp_path: Path, drawn: Split) -> None:
    path = tmp_path / "split.json"
    save_split(drawn, path)
    data = json.loads(path.read_text(encoding="utf-8"))
    data["assignments"]["tt9999999"] = "train"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(SplitFileError, match="edited"):
        load_split(path)


def test_missing_or_broken_files_raise_split_file_error(tmp_path: Path) -> None:
    with pytest.raises(SplitFileError, match="no saved split"):
        load_split(tmp_path / "absent.json")
    broken = tmp_path / "broken.json"
    broken.write_text('{"split_id": ', encoding="utf-8")
    with pytest.raises(SplitFileError, match="not valid JSON"):
        load_split(broken)
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"split_id": "x", "seed": 1}), encoding="utf-8")
    with pytest.raises(SplitFileError, match="lacks"):
        load_split(wrong)


def test_load_or_draw_draws_and_saves_once_then_reuses(
    tmp_path: Path, movies: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "split.json"
    first = load_or_draw_split(movies, path, seed=7, catalog_fingerprint="catalog-v1")
    assert path.exists()
    saved_bytes = path.read_bytes()

    def no_redraw(*args: object, **kwargs: object) -> Split:
        raise AssertionError("the saved split must be reused, not redrawn")

    monkeypatch.setattr(stratified_split, "draw_split", no_redraw)
    second = load_or_draw_split(movies, path, seed=7, catalog_fingerprint="catalog-v1")
    assert second.assignments == first.assignments
    assert second.created_at == first.created_at
    assert second.changes.is_empty
    assert path.read_bytes() == saved_bytes


def test_new_movies_are_reported_and_put_in_no_part(tmp_path: Path, movies: pd.DataFrame) -> None:
    path = tmp_path / "split.json"
    first = load_or_draw_split(movies, path, seed=7, catalog_fingerprint="catalog-v1")
    saved_bytes = path.read_bytes()
    grown = pd.concat([movies, synthetic_movies(50, seed=1).assign(imdb_id=lambda f: "new" + f["imdb_id"])])
    result = load_or_draw_split(grown, path, seed=7, catalog_fingerprint="catalog-v2")
    assert len(result.changes.new_ids) == 50
    assert all(result.part_of(imdb_id) is None for imdb_id in result.changes.new_ids)
    assert result.assignments == first.assignments
    assert result.changes.fingerprint_changed
    assert any("50 movies appeared" in line for line in result.changes.describe())
    assert path.read_bytes() == saved_bytes


def test_vanished_movies_are_dropped_with_a_count(tmp_path: Path, movies: pd.DataFrame) -> None:
    path = tmp_path / "split.json"
    first = load_or_draw_split(movies, path, seed=7)
    gone = [first.ids("test")[0], first.ids("test")[1], first.ids("train")[0]]
    shrunk = movies[~movies["imdb_id"].isin(gone)]
    result = load_or_draw_split(shrunk, path, seed=7)
    assert result.changes.vanished_ids == tuple(sorted(gone))
    assert result.changes.vanished_by_part == {"train": 1, "val": 0, "test": 2}
    assert result.counts() == {
        "train": first.counts()["train"] - 1,
        "val": first.counts()["val"],
        "test": first.counts()["test"] - 2,
    }
    assert result.ids("test") == first.ids("test")[2:]
    assert any("3 movies" in line and "test 2" in line for line in result.changes.describe())


def test_the_test_part_never_changes_as_the_catalog_changes(tmp_path: Path, movies: pd.DataFrame) -> None:
    path = tmp_path / "split.json"
    test_ids = set(load_or_draw_split(movies, path, seed=7).ids("test"))
    doubled = pd.concat([movies, synthetic_movies(2000, seed=5).assign(imdb_id=lambda f: "x" + f["imdb_id"])])
    assert set(load_or_draw_split(doubled, path, seed=7).ids("test")) == test_ids


def test_other_settings_than_the_saved_ones_raise_and_keep_the_file(tmp_path: Path, movies: pd.DataFrame) -> None:
    path = tmp_path / "split.json"
    load_or_draw_split(movies, path, seed=7)
    saved_bytes = path.read_bytes()
    with pytest.raises(SplitMismatchError, match="seed 7"):
        load_or_draw_split(movies, path, seed=8)
    with pytest.raises(SplitMismatchError, match="fractions"):
        load_or_draw_split(movies, path, seed=7, fractions=(0.8, 0.1, 0.1))
    assert path.read_bytes() == saved_bytes


def test_a_reconciled_split_cannot_be_saved_over_the_drawn_one(tmp_path: Path, movies: pd.DataFrame) -> None:
    path = tmp_path / "split.json"
    load_or_draw_split(movies, path, seed=7)
    reconciled = load_or_draw_split(movies.iloc[10:], path, seed=7)
    with pytest.raises(SplitError, match="as drawn"):
        save_split(reconciled, path)


def _failing_dump(obj: object, handle: object, **kwargs: object) -> None:
    handle.write('{"split_id": "half')  # type: ignore[attr-defined]
    raise OSError("disk full")


def test_a_crash_mid_write_leaves_no_partial_file(
    tmp_path: Path, drawn: Split, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "split.json"
    monkeypatch.setattr(split_module.json, "dump", _failing_dump)
    with pytest.raises(OSError, match="disk full"):
        save_split(drawn, path)
    assert list(tmp_path.iterdir()) == []


def test_a_crash_mid_write_keeps_the_previous_file(
    tmp_path: Path, drawn: Split, movies: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "split.json"
    save_split(drawn, path)
    before = path.read_bytes()
    monkeypatch.setattr(split_module.json, "dump", _failing_dump)
    with pytest.raises(OSError, match="disk full"):
        save_split(draw_split(movies, seed=9), path)
    assert path.read_bytes() == before
    assert list(tmp_path.iterdir()) == [path]
    monkeypatch.undo()
    assert load_split(path) == drawn


def _hand_split(assignments: dict[str, str]) -> Split:
    return Split("hand", 0, (0.7, 0.15, 0.15), "", None, assignments)


def test_genres_with_min_support_keeps_only_genres_in_every_part_with_enough_movies() -> None:
    movies = pd.DataFrame(
        {
            "imdb_id": ["m1", "m2", "m3", "m4", "m5", "m6"],
            "genres": [
                ["Drama", "Horror"],
                ["Drama", "Horror"],
                ["Drama", "Western"],
                ["Drama"],
                ["Comedy"],
                ["Horror", "Musical"],  # m6 appeared after the split: counted nowhere
            ],
        }
    )
    split = _hand_split({"m1": "train", "m2": "train", "m3": "val", "m4": "test", "m5": "train"})
    kept, left_out = genres_with_min_support(movies, split, min_movies=2)
    # Drama: 4 movies, in train (m1, m2), val (m3), test (m4) -> kept.
    assert kept == ["Drama"]
    assert left_out == {
        "Comedy": (
            "only 1 movies in the split have it (at least 2 needed); no movie of the validation part has it; "
            "no movie of the test part has it"
        ),
        "Horror": "no movie of the validation part has it; no movie of the test part has it",
        "Musical": (
            "only 0 movies in the split have it (at least 2 needed); no movie of the training part has it; "
            "no movie of the validation part has it; no movie of the test part has it"
        ),
        "Western": (
            "only 1 movies in the split have it (at least 2 needed); no movie of the training part has it; "
            "no movie of the test part has it"
        ),
    }
    # A higher minimum drops Drama too, for that reason alone, and never touches the split.
    kept, left_out = genres_with_min_support(movies, split, min_movies=5)
    assert kept == []
    assert left_out["Drama"] == "only 4 movies in the split have it (at least 5 needed)"
    assert split.assignments["m4"] == "test"


def test_genres_with_min_support_on_the_synthetic_catalog(movies: pd.DataFrame, drawn: Split) -> None:
    kept, left_out = genres_with_min_support(movies, drawn, min_movies=100)
    counts = movies["genres"].explode().value_counts()
    assert kept == sorted(counts[counts >= 100].index)
    assert set(left_out) == set(counts[counts < 100].index)


def test_genres_with_min_support_needs_a_positive_minimum(movies: pd.DataFrame, drawn: Split) -> None:
    with pytest.raises(SplitError, match="minimum"):
        genres_with_min_support(movies, drawn, min_movies=0)
