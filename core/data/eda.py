"""The Dataset page's numbers, computed from the catalog's tables as plain data frames.

Kept apart from the page so that each chart's figures can be tested against an independent count and the
page only draws them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def genre_imbalance(genre_counts: dict[str, int], usable_movies: int) -> pd.DataFrame:
    """Usable movies per genre with their share of all usable movies, most frequent first."""
    frame = pd.DataFrame({"genre": list(genre_counts), "movies": list(genre_counts.values())})
    frame["share_pct"] = 100.0 * frame["movies"] / max(1, usable_movies)
    return frame.sort_values(["movies", "genre"], ascending=[False, True], ignore_index=True)


def records_and_posters_per_year(movies: pd.DataFrame) -> pd.DataFrame:
    """Per metadata year: records (unique movies), those with a poster, and those usable."""
    frame = movies.assign(
        has_poster=movies["poster"].notna(),
        usable=movies["usable"].astype(bool),
    )
    per_year = (
        frame.groupby("year", dropna=True)
        .agg(records=("imdb_id", "size"), with_poster=("has_poster", "sum"), usable=("usable", "sum"))
        .reset_index()
    )
    per_year["without_poster"] = per_year["records"] - per_year["with_poster"]
    return per_year.astype({"year": int, "with_poster": int, "usable": int})


def labels_per_movie(usable: pd.DataFrame) -> pd.DataFrame:
    """How many usable movies carry 1, 2, 3, … genres."""
    counts = usable["genres"].map(len).value_counts().sort_index()
    return pd.DataFrame({"genres_per_movie": counts.index.astype(int), "movies": counts.to_numpy()})


def co_occurrence(usable: pd.DataFrame, genres: list[str]) -> pd.DataFrame:
    """Square table: how many usable movies carry both genres (the diagonal is each genre's count)."""
    index = {genre: i for i, genre in enumerate(genres)}
    hot = np.zeros((len(usable), len(genres)), dtype=np.int32)
    for row, movie_genres in enumerate(usable["genres"]):
        for genre in movie_genres:
            if genre in index:
                hot[row, index[genre]] = 1
    return pd.DataFrame(hot.T @ hot, index=genres, columns=genres)


def genres_over_years(usable: pd.DataFrame) -> pd.DataFrame:
    """Long table (year, genre, movies, share of that year's usable movies in %)."""
    exploded = usable[["year", "genres", "imdb_id"]].explode("genres").rename(columns={"genres": "genre"})
    counts = exploded.groupby(["year", "genre"]).size().rename("movies").reset_index()
    totals = usable.groupby("year").size().rename("year_total")
    counts = counts.join(totals, on="year")
    counts["share_pct"] = 100.0 * counts["movies"] / counts["year_total"]
    return counts.drop(columns="year_total")


def poster_sizes(movies: pd.DataFrame) -> pd.DataFrame:
    """Width, height and aspect ratio (height / width) of every readable poster."""
    frame = movies.loc[movies["poster_readable"].astype(bool), ["imdb_id", "poster_width", "poster_height"]].copy()
    frame["aspect"] = frame["poster_height"] / frame["poster_width"]
    return frame.reset_index(drop=True)
