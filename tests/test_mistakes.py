"""A run's mistake galleries: exactly the posters its saved test predictions and thresholds make false
positives, false negatives and true positives, the most confident first, reached from every count of the
run's page and from its URL; and a movie's predicted genres judged against its (corrected) labels."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from core import corrections as cx
from core.app.urls import parse_mistakes_params
from core.data.catalog_build import open_catalog
from core.evaluation.mistakes import (
    OUTCOMES,
    MistakesError,
    check_prediction,
    load_test_predictions,
    outcomes,
    saved_test_parts,
)
from tests.apptest_helpers import html_blocks, open_sections, shown_text, use_settings
from tests.model_fixture import TinyModel, as_on_a_warm_server, open_app
from ui.mistakes import per_genre_html


@pytest.fixture(autouse=True)
def warm_server(monkeypatch: pytest.MonkeyPatch) -> None:
    as_on_a_warm_server(monkeypatch)


def saved(run_dir: Path) -> tuple[list[str], list[str], np.ndarray, np.ndarray, dict[str, float]]:
    """The run's files read directly: genres, test ids, labels, scores and thresholds."""
    with np.load(run_dir / "predictions.npz") as npz:
        genres, ids = npz["genres"].tolist(), npz["test_ids"].tolist()
        labels, scores = npz["test_labels"].astype(bool), npz["test_scores"]
    return genres, ids, labels, scores, json.loads((run_dir / "thresholds.json").read_text())


def expected_ids(run_dir: Path, genre: str, outcome: str, labelled: str | None = None) -> set[str]:
    genres, ids, labels, scores, thresholds = saved(run_dir)
    g = genres.index(genre)
    found = set()
    for row, imdb_id in enumerate(ids):
        has, said = bool(labels[row, g]), bool(scores[row, g] >= thresholds[genre])
        if labelled is not None and not labels[row, genres.index(labelled)]:
            continue
        if {"fp": said and not has, "fn": has and not said, "tp": has and said}[outcome]:
            found.add(imdb_id)
    return found


def busiest(run_dir: Path, outcome: str) -> str:
    """The genre with the most posters of this outcome (so the gallery shows something)."""
    genres = saved(run_dir)[0]
    return max(genres, key=lambda genre: len(expected_ids(run_dir, genre, outcome)))


def test_the_galleries_hold_exactly_the_runs_outcomes_most_confident_first(tiny_model: TinyModel) -> None:
    run_dir = tiny_model.run_dir
    predictions = load_test_predictions(run_dir)
    per_genre = {row["genre"]: row for row in json.loads((run_dir / "metrics.json").read_text())["test"]["per_genre"]}
    scores = dict(zip(saved(run_dir)[1], saved(run_dir)[3], strict=True))
    for genre in predictions.genres:
        column = predictions.column(genre)
        for outcome in OUTCOMES:
            found = outcomes(predictions, genre, outcome)
            assert {item.imdb_id for item in found} == expected_ids(run_dir, genre, outcome)
            assert len(found) == per_genre[genre][outcome]  # the counts on the run's page
            shown = [item.score for item in found]
            assert shown == [pytest.approx(float(scores[item.imdb_id][column])) for item in found]
            assert shown == sorted(shown, reverse=outcome != "fn")
    genre = busiest(run_dir, "fp")
    labelled = next(
        other for other in predictions.genres if other != genre and expected_ids(run_dir, genre, "fp", other)
    )
    cell = outcomes(predictions, genre, "fp", labelled)
    assert {item.imdb_id for item in cell} == expected_ids(run_dir, genre, "fp", labelled)
    assert all(labelled in item.labels and genre not in item.labels for item in cell)


def test_a_run_without_saved_predictions_says_so(tmp_path: Path) -> None:
    assert saved_test_parts(tmp_path) == []
    with pytest.raises(MistakesError, match="has not finished"):
        load_test_predictions(tmp_path)


def test_mistake_urls_are_validated_with_a_message_for_each_bad_value() -> None:
    genres, parts = ["Comedy", "Drama", "Horror"], ["random"]
    view = parse_mistakes_params({"genre": "Horror", "errors": "fp", "labelled": "Drama"}, genres, parts, OUTCOMES)
    assert (view.genre, view.errors, view.labelled, view.part, view.messages) == ("Horror", "fp", "Drama", "random", ())
    assert view.to_params("r1") == {"run": "r1", "genre": "Horror", "errors": "fp", "labelled": "Drama"}
    bad_genre = parse_mistakes_params({"genre": "<b>", "errors": "fp"}, genres, parts, OUTCOMES)
    assert bad_genre.genre is None and "no genre '<b>'" in bad_genre.messages[0]
    bad_errors = parse_mistakes_params({"genre": "Horror", "errors": "all"}, genres, parts, OUTCOMES)
    assert bad_errors.genre is None and "errors must be one of fp, fn, tp" in bad_errors.messages[0]
    fn_labelled = parse_mistakes_params(
        {"genre": "Horror", "errors": "fn", "labelled": "Drama"}, genres, parts, OUTCOMES
    )
    assert fn_labelled.labelled is None and fn_labelled.errors == "fn" and fn_labelled.messages
    temporal = parse_mistakes_params({"genre": "Horror", "errors": "tp", "part": "temporal"}, genres, parts, OUTCOMES)
    assert temporal.part == "random" and "no test part 'temporal'" in temporal.messages[0]
    assert parse_mistakes_params({}, genres, parts, OUTCOMES).genre is None


def test_a_prediction_is_judged_against_the_labels() -> None:
    check = check_prediction(
        ["Action", "Comedy", "Drama", "Horror"], [0.9, 0.2, 0.6, 0.7], [0.5, 0.5, 0.5, 0.8], ["Drama", "Horror", "War"]
    )
    assert check.right == [("Drama", pytest.approx(0.6))]
    assert check.wrong == [("Action", pytest.approx(0.9))]
    assert check.missed == [("Horror", pytest.approx(0.7))]  # 0.7 is under Horror's threshold
    assert check.not_modelled == ["War"]


# --- On the pages -----------------------------------------------------------------------------------------


def links(app: AppTest) -> list[dict[str, str]]:
    """The query parameters of every page link on the page."""
    return [
        {key: values[0] for key, values in parse_qs(link.proto.query_string).items()} for link in app.get("page_link")
    ]


def gallery_ids(app: AppTest) -> list[str]:
    """The movies the mistake gallery shows, in order (its cards link to their movie)."""
    return [params["movie"] for params in links(app) if set(params) == {"movie"}]


class _Anchors(HTMLParser):
    """The links of an HTML fragment: (href, target, text)."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, str, str]] = []
        self._open: dict[str, str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._open = {name: value or "" for name, value in attrs}

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self.found.append((self._open.get("href", ""), self._open.get("target", ""), data))
            self._open = None


def count_links(app: AppTest) -> list[tuple[dict[str, str], str, str]]:
    """The per-genre table's count links: (query parameters, target, the count shown)."""
    [table] = [block for block in html_blocks(app) if block.startswith("<table>") and "errors=" in block]
    parser = _Anchors()
    parser.feed(table)
    return [
        ({key: values[0] for key, values in parse_qs(urlsplit(href).query).items()}, target, text)
        for href, target, text in parser.found
    ]


def test_every_count_on_the_runs_page_links_to_its_gallery(monkeypatch: pytest.MonkeyPatch, tiny_model) -> None:
    use_settings(monkeypatch, tiny_model.settings)
    app = open_app("pages/training.py", run=tiny_model.run_id)
    assert not app.exception
    per_genre = json.loads((tiny_model.run_dir / "metrics.json").read_text())["test"]["per_genre"]
    found = count_links(app)
    by_cell = {(params["genre"], params["errors"]): params for params, _, _ in found}
    # Every non-zero count is a link of this page, in the same tab (one history entry, Back returns here).
    assert set(by_cell) == {(row["genre"], outcome) for row in per_genre for outcome in OUTCOMES if row[outcome]}
    assert all(params["run"] == tiny_model.run_id and "labelled" not in params for params in by_cell.values())
    assert {target for _, target, _ in found} == {"_self"}
    assert sorted(int(text) for _, _, text in found) == sorted(
        row[outcome] for row in per_genre for outcome in OUTCOMES if row[outcome]
    )
    # The "mistaken for" matrix names every genre on both axes (Plotly would thin them to every other one).
    open_sections(app, "section_confusion")
    matrix = next(json.loads(c.proto.spec) for c in app.get("plotly_chart") if "Mistaken for" in c.proto.spec)
    genres = [row["genre"] for row in per_genre]
    assert matrix["layout"]["xaxis"]["tickvals"] == genres == matrix["layout"]["yaxis"]["tickvals"]
    # Its colours run from 0 up, even for a model without a mistake (an empty cell is white, not mid-red).
    assert matrix["data"][0]["zmin"] == 0 and matrix["data"][0].get("zmax", 0) > 0


def test_the_fp_gallery_url_shows_exactly_its_posters(monkeypatch: pytest.MonkeyPatch, tiny_model) -> None:
    use_settings(monkeypatch, tiny_model.settings)
    genre = busiest(tiny_model.run_dir, "fp")
    app = open_app("pages/training.py", run=tiny_model.run_id, genre=genre, errors="fp")
    assert not app.exception and not app.warning
    wanted = expected_ids(tiny_model.run_dir, genre, "fp")
    shown = gallery_ids(app)
    assert set(shown) <= wanted and len(shown) == min(24, len(wanted)) > 0
    assert [item.imdb_id for item in outcomes(load_test_predictions(tiny_model.run_dir), genre, "fp")][:24] == shown
    assert f"{genre}: false positives (random test part)" in [header.value for header in app.subheader]
    captions = [caption.value for caption in app.caption if caption.value.startswith("score ")]
    assert len(captions) == len(shown)

    bad = open_app("pages/training.py", run=tiny_model.run_id, genre="Nope", errors="fp")
    assert not bad.exception
    assert any("no genre 'Nope'" in shown_text(warning.body) for warning in bad.warning)
    assert not gallery_ids(bad)


def test_a_movie_page_marks_the_predictions_against_the_corrected_labels(
    monkeypatch: pytest.MonkeyPatch, tiny_model: TinyModel
) -> None:
    use_settings(monkeypatch, tiny_model.settings)
    catalog = open_catalog(tiny_model.settings)
    movie = next(m for m in tiny_model.usable_movies() if len(m.genres) == 2 and m.poster == "jpeg")
    removed = cx.correct(catalog, movie.imdb_id, movie.genres[0], cx.REMOVE)
    try:
        app = open_app("pages/movie.py", movie=movie.imdb_id)
        assert not app.exception
        lines = [shown_text(md.body) for md in app.markdown if md.body[:1] in "✓✗○"]
        marked = {line.split(" · ")[0][2:]: line for line in lines}
        assert lines, "no verdict on the movie page"
        # The removed genre counts as not labelled: predicted, it is a mistake; never a miss.
        assert movie.genres[0] not in {g for g, line in marked.items() if line.startswith(("✓", "○"))}
        assert "Compared with your corrected genres." in [caption.value for caption in app.caption]
    finally:
        cx.undo(catalog, removed.id)


def test_the_temporal_test_part_has_galleries_of_its_own(monkeypatch: pytest.MonkeyPatch, tiny_model) -> None:
    """The run's temporal twin saved its test part's scores and thresholds: `part=temporal` shows those."""
    run_dir = tiny_model.run_dir
    assert saved_test_parts(run_dir) == ["random", "temporal"]
    with np.load(run_dir / "predictions.npz") as npz:
        genres, ids = npz["temporal_test_genres"].tolist(), npz["temporal_test_ids"].tolist()
        labels, scores, thresholds = (
            npz["temporal_test_labels"].astype(bool),
            npz["temporal_test_scores"],
            npz["temporal_test_thresholds"],
        )
    per_genre = json.loads((run_dir / "metrics.json").read_text())["temporal_test"]["per_genre"]
    predictions = load_test_predictions(run_dir, "temporal")
    for row in per_genre:
        g = genres.index(row["genre"])
        fp = {ids[i] for i in range(len(ids)) if scores[i, g] >= thresholds[g] and not labels[i, g]}
        assert {item.imdb_id for item in outcomes(predictions, row["genre"], "fp")} == fp
        assert len(fp) == row["fp"]
    use_settings(monkeypatch, tiny_model.settings)
    app = open_app("pages/training.py", run=tiny_model.run_id, part="temporal")
    assert not app.exception and not app.warning
    assert "Per genre (temporal test part)" in [header.value for header in app.subheader]
    found = [params for params, _, _ in count_links(app)]
    assert found and all(params["part"] == "temporal" for params in found)


def test_the_per_genre_table_shows_any_genre_name_as_text_and_links_to_exactly_its_gallery() -> None:
    hostile = 'Sci-Fi <img src=x onerror="alert(1)"> & "Co"\n\n*not emphasis*'
    table = pd.DataFrame([{"genre": hostile, "support": 4, "tp": 3, "fp": 0, "fn": 1, "threshold": 0.5}])
    fragment = per_genre_html("20200101-000000-fast-beef", table, part="temporal")
    assert "\n" not in fragment  # one HTML block from start to end: no Markdown is read inside it

    class Cells(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.tags: set[str] = set()
            self.texts: list[str] = []
            self.links: list[dict[str, str | None]] = []

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            self.tags.add(tag)
            if tag == "a":
                self.links.append(dict(attrs))

        def handle_data(self, data: str) -> None:
            self.texts.append(data)

    cells = Cells()
    cells.feed(fragment)
    assert cells.tags == {"table", "thead", "tbody", "tr", "th", "td", "a"}
    assert " ".join(hostile.splitlines()) in cells.texts
    assert [parse_qs(urlsplit(link["href"] or "").query) for link in cells.links] == [
        {"run": ["20200101-000000-fast-beef"], "genre": [hostile], "errors": [outcome], "part": ["temporal"]}
        for outcome in ("tp", "fn")  # a count of 0 opens nothing
    ]
