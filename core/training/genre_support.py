"""Which genres a run can learn and evaluate on a given split, and why each of the others is left out.

A genre that the test part never shows cannot be evaluated, and one with a handful of movies cannot be
learnt; rather than redraw the split to rescue it (which would change the test part), the run leaves it out
and says why in plain words, in the run's `genres.json` and in its log.
"""

from __future__ import annotations

import pandas as pd

from core.training.split import PART_NAMES, PARTS, Split, SplitError, check_movies


def genres_with_min_support(movies: pd.DataFrame, split: Split, min_movies: int) -> tuple[list[str], dict[str, str]]:
    """The genres a run can learn and evaluate, and the others with the reason in plain words.

    A genre is kept when at least `min_movies` movies of the split have it and each of the training,
    validation and test parts holds at least one of them. Movies in no part are not counted. The split is
    never redrawn to rescue a genre.
    """
    if isinstance(min_movies, bool) or not isinstance(min_movies, int) or min_movies < 1:
        raise SplitError(f"the minimum number of movies per genre must be a whole number ≥ 1, got {min_movies!r}")
    catalog = check_movies(movies)
    per_part: dict[str, dict[str, int]] = {}
    for imdb_id, genres in catalog.items():
        part = split.part_of(imdb_id)
        for genre in genres:
            counts = per_part.setdefault(genre, dict.fromkeys(PARTS, 0))
            if part is not None:
                counts[part] += 1
    kept: list[str] = []
    left_out: dict[str, str] = {}
    for genre in sorted(per_part):
        counts = per_part[genre]
        total = sum(counts.values())
        reasons: list[str] = []
        if total < min_movies:
            reasons.append(f"only {total} movies in the split have it (at least {min_movies} needed)")
        reasons += [f"no movie of the {PART_NAMES[part]} part has it" for part in PARTS if counts[part] == 0]
        if reasons:
            left_out[genre] = "; ".join(reasons)
        else:
            kept.append(genre)
    return kept, left_out
