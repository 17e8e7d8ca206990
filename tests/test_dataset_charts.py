"""The Dataset page's charts as a reader sees them: every genre named, the pairs rather than the diagonal,
whole numbers where only whole numbers exist, shares legible beside their bars, sizes told apart."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pandas as pd
import pytest

from core.data import eda
from core.data.catalog import Catalog
from ui import dataset_charts as charts


def test_the_co_occurrence_map_shows_shares_of_each_genres_movies_without_the_diagonal(
    fixture_catalog: Catalog,
) -> None:
    counts = pd.DataFrame([[10, 4, 0], [4, 5, 5], [0, 5, 20]], index=list("ABC"), columns=list("ABC"))
    shares = charts.co_occurrence_shares(counts)
    assert np.isnan(np.diag(shares.to_numpy())).all()
    assert shares.loc["A", "B"] == 0.4 and shares.loc["B", "A"] == 0.8  # of A's 10, 4 are B; of B's 5, 4 are A
    order = tuple(fixture_catalog.genre_counts())
    figure = charts.co_occurrence_chart(fixture_catalog, fixture_catalog.fingerprint, order)
    heat = figure.data[0]
    assert list(figure.layout.xaxis.tickvals) == list(order) == list(figure.layout.yaxis.tickvals)
    values = np.array(heat.z, dtype=float)
    assert np.isnan(np.diag(values)).all() and np.nanmax(values) <= 1.0
    usable = charts._usable(fixture_catalog, fixture_catalog.fingerprint)  # what the page counts
    assert np.array_equal(np.array(heat.customdata), eda.co_occurrence(usable, list(order)))


def test_the_co_occurrence_maps_genre_names_stand_upright_with_room_below(fixture_catalog: Catalog) -> None:
    order = ("Drama", "Documentary", "Science Fiction", "War")
    figure = charts.co_occurrence_chart(fixture_catalog, fixture_catalog.fingerprint, order)
    assert figure.layout.xaxis.tickangle == -90  # one line's height per column: neighbours cannot overlap
    assert figure.layout.margin.b >= charts.LABEL_CHARACTER_PX * len("Science Fiction")
    assert figure.layout.height - figure.layout.margin.b >= 28 * len(order)  # the cells keep their room


def test_genres_per_movie_has_whole_ticks_and_a_worded_axis(fixture_catalog: Catalog) -> None:
    figure = charts.labels_per_movie_chart(fixture_catalog, fixture_catalog.fingerprint)
    assert figure.layout.xaxis.dtick == 1 and figure.layout.xaxis.title.text == "genres per movie"


def test_the_imbalance_bars_link_each_genre_to_its_gallery_with_lengths_in_proportion() -> None:
    imbalance = pd.DataFrame(
        {"genre": ["Drama", "Sci-Fi & <b>", "War"], "movies": [50, 40, 2], "share_pct": [54.3, 43.5, 2.2]}
    )

    class Bars(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.links: list[str] = []
            self.widths: list[float] = []
            self.texts: list[str] = []

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            values = dict(attrs)
            if tag == "a":
                self.links.append(values["href"] or "")
                assert values["target"] == "_self"  # the same tab: one history entry, Back returns
            width = re.search(r"width:([\d.]+)%", values.get("style") or "")
            if width:
                self.widths.append(float(width.group(1)))

        def handle_data(self, data: str) -> None:
            self.texts.append(data)

    linear, log = Bars(), Bars()
    linear.feed(charts.imbalance_bars(imbalance, log_scale=False))
    log.feed(charts.imbalance_bars(imbalance, log_scale=True))
    assert [parse_qs(urlsplit(link).query)["genre"] for link in linear.links] == [["Drama"], ["Sci-Fi & <b>"], ["War"]]
    assert all(urlsplit(link).path == "genre" for link in linear.links)
    assert "Sci-Fi & <b>" in linear.texts and "50 · 54.3 %" in linear.texts  # the name as text, never as HTML
    assert linear.widths == pytest.approx([100.0, 80.0, 4.0])
    assert log.widths[0] == pytest.approx(100.0) and log.widths[2] > 4 * linear.widths[2]  # rare genres show


def test_the_poster_size_map_uses_a_log_scale_so_rare_sizes_are_visible(fixture_catalog: Catalog) -> None:
    size_map, _ = charts.poster_size_charts(fixture_catalog, fixture_catalog.fingerprint)
    heat = size_map.data[0]
    counts = np.array(heat.customdata, dtype=float)
    shown = np.array(heat.z, dtype=float)
    filled = counts > 0
    assert np.allclose(shown[filled], np.log10(counts[filled]))
    assert list(heat.colorbar.ticktext)[:3] == ["1", "10", "100"]
