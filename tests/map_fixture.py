"""A poster map saved as the background job would save it, so a page can show one without computing it."""

from __future__ import annotations

import numpy as np

from core.config import Settings
from core.data.catalog import Catalog
from core.serving import projection


def save_line_map(settings: Settings, catalog: Catalog) -> list[str]:
    """A map of every usable poster on a line from (0, 0) to (1, 1), in both layouts; the posters' ids in order."""
    ids = catalog.usable_movies()["imdb_id"].tolist()
    along = np.linspace(0.0, 1.0, len(ids))
    line = np.column_stack([along, along])
    poster_map = projection.PosterMap(
        ids, line, line, np.zeros(1280), np.eye(2, 1280), np.array([0.6, 0.2]), umap_seconds=0.5, pca_seconds=0.1
    )
    projection.save_map(settings, projection.map_key(catalog), poster_map)
    return ids


def without_umap(ids: list[str], vectors: np.ndarray) -> projection.PosterMap:
    """A map as the job saves it, but with the UMAP layout stood in for by the PCA one turned a quarter and
    stretched, so that a test tells which layout a page draws, without fitting UMAP (and compiling numba:
    half a minute on a bare machine). Fitting UMAP itself is tested once, in the map job's test."""
    pca_xy, mean, components, explained, seconds = projection.fit_pca(vectors)
    umap_xy = pca_xy[:, ::-1] * np.array([-10.0, 10.0])
    return projection.PosterMap(ids, umap_xy, pca_xy, mean, components, explained, 0.5, seconds)
