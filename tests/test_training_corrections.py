"""Runs on corrected labels: training and validation learn from them, the test part keeps the labels the split
was drawn with, and the run records what it used and reports its test metrics both ways."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core import corrections as cx
from core.app import run_reports, runs
from core.config import Settings
from core.data.catalog import Catalog
from core.data.catalog_build import open_catalog
from core.training import run_folder as rf
from core.training.config import make_config
from core.training.trainer import prepare_data, project_split, train
from tests.conftest import FixtureData, make_settings

TINY = {"image_size": (64, 48), "epochs": 2, "min_movies_per_genre": 5, "seed": 7, "batch_size": 16}
LONG_AGO = "2000-01-01T00:00:00+00:00"  # before any split was drawn


@pytest.fixture(scope="module")
def settings(fixture_data: FixtureData, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return make_settings(fixture_data.settings.data_dir, tmp_path_factory.mktemp("corrected"))


@pytest.fixture(scope="module")
def catalog(settings: Settings) -> Catalog:
    return open_catalog(settings)


def movies_with_two_kept_genres(catalog: Catalog, settings: Settings, part: str) -> list[tuple[str, list[str]]]:
    """The movies of the split's `part` with two kept genres or more (one can be removed), with those genres."""
    split = project_split(catalog, settings)
    kept = set(prepare_data(make_config("fast", **TINY), settings).vocabulary.genres)
    movies = catalog.usable_movies().set_index("imdb_id")
    found = [
        (imdb_id, [genre for genre in movies.loc[imdb_id, "genres"] if genre in kept])
        for imdb_id in split.ids(part)
        if imdb_id in movies.index and len(kept.intersection(movies.loc[imdb_id, "genres"])) >= 2
    ]
    assert found, f"the fixture's {part} part has no movie with two kept genres"
    return found


@pytest.fixture(scope="module")
def corrected(catalog: Catalog, settings: Settings) -> dict[str, cx.Correction]:
    """One correction of a training movie, one of a test movie made before the split, one after it."""
    (train_id, train_genres), *_ = movies_with_two_kept_genres(catalog, settings, "train")
    (early_id, early_genres), (late_id, late_genres), *_ = movies_with_two_kept_genres(catalog, settings, "test")
    return {
        "train": cx.correct(catalog, train_id, train_genres[0], cx.REMOVE),
        "test, before the split": cx.correct(catalog, early_id, early_genres[0], cx.REMOVE, made_at=LONG_AGO),
        "test, after the split": cx.correct(catalog, late_id, late_genres[0], cx.REMOVE),
    }


def labels_of(data, part: str, imdb_id: str) -> list[str]:
    row = data.parts[part].ids.index(imdb_id)
    return data.vocabulary.decode(data.parts[part].labels[row])


def test_training_learns_corrected_labels_and_the_test_part_keeps_those_of_the_split(
    settings: Settings, corrected: dict[str, cx.Correction]
) -> None:
    with_them = prepare_data(make_config("fast", **TINY), settings)
    without = prepare_data(make_config("fast", **TINY, use_corrections=False), settings)
    train_fix, early, late = corrected.values()

    assert train_fix.genre not in labels_of(with_them, "train", train_fix.imdb_id)
    assert train_fix.genre in labels_of(without, "train", train_fix.imdb_id)
    assert early.genre not in labels_of(with_them, "test", early.imdb_id)  # made before the split was drawn
    assert late.genre in labels_of(with_them, "test", late.imdb_id)  # made after: held back from the test part
    record = with_them.corrections
    assert record["enabled"] and record["available"] == 3 and record["used"] == 2
    assert record["per_part"] == {"train": 1, "val": 0, "test": 1}
    assert record["test_movies_held_back"] == [late.imdb_id]
    assert [row["id"] for row in record["test_held_back"]] == [late.id]
    assert without.corrections["used"] == 0 and not without.corrections["enabled"]
    assert without.corrections["available"] == 3


@pytest.mark.slow
def test_a_run_records_the_corrections_it_used_and_reports_its_test_metrics_both_ways(
    settings: Settings, corrected: dict[str, cx.Correction], tmp_path: Path
) -> None:
    run_dir = rf.create_run_dir(settings.runs_dir, "fast")
    result = train(make_config("fast", **TINY), settings, run_dir)
    assert result.state == "finished", result.error
    view = runs.read_run(settings, run_dir.name)
    assert run_reports.runs_table([view]).iloc[0]["corrections"] == 2  # the Training page's runs table
    assert run_reports.baselines_table(view, "test_with_corrections").iloc[0]["mAP"] is not None
    record = json.loads((run_dir / rf.CORRECTIONS_FILE).read_text())
    assert record["used"] == 2 and record["test_movies_held_back"] == [corrected["test, after the split"].imdb_id]
    report = json.loads((run_dir / rf.METRICS_FILE).read_text())
    assert report["corrections"]["used"] == 2
    # The held-back correction removes a true genre of one test movie: with it, that movie has one positive
    # less, so the two reports count different positives.
    assert report["test"]["summary"] != report["test_with_corrections"]["summary"]
    log = (run_dir / rf.LOG_FILE).read_text()
    assert "Label corrections: 2 of 3 used" in log and "came after the split was drawn" in log

    plain = train(make_config("fast", **TINY, use_corrections=False), settings, tmp_path / "plain")
    assert plain.state == "finished", plain.error
    plain_report = json.loads((tmp_path / "plain" / rf.METRICS_FILE).read_text())
    assert plain_report["corrections"]["used"] == 0 and "test_with_corrections" not in plain_report
    assert "not used (--no-corrections)" in (tmp_path / "plain" / rf.LOG_FILE).read_text()
