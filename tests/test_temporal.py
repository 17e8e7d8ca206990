"""The temporal yardstick: a split cut by year, and the twin every fast run trains on it."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from core.config import Settings
from core.training import run_folder as rf
from core.training.config import ConfigError, make_config
from core.training.split import SplitError, load_split
from core.training.temporal_split import cut_by_year, default_test_from, load_or_cut_split, temporal_split_path


def _movies(years: list[int | None]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "imdb_id": [f"tt{1000000 + i}" for i in range(len(years))],
            "year": years,
            "genres": [["Drama"] for _ in years],
        }
    )


def test_the_temporal_split_never_trains_on_a_later_year_and_counts_movies_without_one():
    years = [1990, 1995, 1999, 2000, 2001, 2002, 2003, 2004, 2008, None, None]
    movies = _movies(years)
    split = cut_by_year(movies, test_from=2002)
    year_of = dict(zip(movies["imdb_id"], years, strict=True))
    by_part = {part: sorted(year_of[i] for i in split.ids(part)) for part in ("train", "val", "test")}
    assert by_part == {"train": [1990, 1995, 1999], "val": [2000, 2001], "test": [2002, 2003, 2004, 2008]}
    assert split.without_year == 2 and len(split.assignments) == 9
    assert max(by_part["train"]) < min(by_part["val"]) <= max(by_part["val"]) < min(by_part["test"])


def test_the_default_cut_is_the_last_year_minus_four_and_an_empty_part_is_refused():
    assert default_test_from(_movies([1980, 2008, None])) == 2004
    with pytest.raises(SplitError, match="validation part empty"):
        cut_by_year(_movies([1990, 2004]), test_from=2004)


def test_the_temporal_split_is_saved_and_a_movie_added_later_joins_no_part(tmp_path):
    movies = _movies([1990, 2000, 2001, 2004, 2006])
    path = temporal_split_path(tmp_path, 2002)
    first = load_or_cut_split(movies, path, 2002)
    assert load_split(path).split_id == first.split_id
    later = pd.concat([movies, _movies([2007] * 6).iloc[5:].assign(imdb_id="tt9999999")], ignore_index=True)
    again = load_or_cut_split(later, path, 2002)
    assert again.split_id == first.split_id and again.part_of("tt9999999") is None
    assert again.changes.new_ids == ("tt9999999",)


def test_a_bad_temporal_year_is_a_config_error():
    with pytest.raises(ConfigError, match="temporal_test_from"):
        make_config("fast", temporal_test_from=20004)
    assert make_config("fast").temporal_twin and not make_config("scratch").temporal_twin


@pytest.mark.slow
def test_a_fast_run_reports_the_test_and_the_temporal_test_each_beside_its_baselines(fixture_data, tmp_path):
    from core.training.trainer import train

    settings = Settings(fixture_data.settings.data_dir, tmp_path / "cache", tmp_path / "runs")
    # The fixture's movies are of 2001, 2002 and 2004: train on 2001, validate on 2002, test on 2004.
    config = make_config("fast", image_size=(64, 48), epochs=2, min_movies_per_genre=5, seed=7, temporal_test_from=2004)
    result = train(config, settings, tmp_path / "run")
    assert result.state == "finished", result.error
    report = json.loads((tmp_path / "run" / rf.METRICS_FILE).read_text())
    for part in ("test", "temporal_test", "temporal_validation"):
        assert report[part]["summary"]["map"] is not None
        assert set(report[part]["baselines"]) >= {"top3_frequent", "chance_map"}
    temporal = report["temporal"]
    assert temporal["test_from"] == 2004 and temporal["validation_years"] == [2002, 2003]
    years = {movie.imdb_id: movie.year for movie in fixture_data.expected.movies}
    split = load_split(temporal_split_path(settings.cache_dir, 2004))
    assert {years[i] for i in split.ids("train")} == {2001} and {years[i] for i in split.ids("test")} == {2004}
    assert "temporal test: mAP" in (tmp_path / "run" / rf.LOG_FILE).read_text()
