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
