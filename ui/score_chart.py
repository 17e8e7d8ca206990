"""A poster's genre scores as one chart a learner can read: bars sorted by score, each genre's own threshold
marked on its bar, and the colour saying which genres pass it.

The top-3 chips and the predicted set answer two different questions, and the chart shows why they can
disagree: the top 3 are the three highest scores, while a genre is predicted when its score reaches its
own threshold, tuned on validation for that genre's F1. A rare genre has a low threshold, so a modest score
predicts it; a common one has a high threshold, so a top-3 score may still fall short.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

PREDICTED_COLOUR = "#f5c518"  # the app's accent: the genres the model predicts
NOT_PREDICTED_COLOUR = "#6c757d"
THRESHOLD_COLOUR = "#e8590c"
ROW_HEIGHT_PX = 24

WHY_THEY_DIFFER = (
    "The top 3 are the three highest scores. A genre is predicted when its score reaches its own threshold "
    "(the orange mark on its bar), tuned on validation for that genre: rare genres have low thresholds and "
    "common ones high, so a top-3 genre can stay below its mark, and a genre outside the top 3 can pass it. "
    "A ★ marks the movie's true genres, where they are known."
)


def score_chart(
    genres: Sequence[str],
    scores: Sequence[float],
    thresholds: Sequence[float],
    true_genres: Sequence[str] | None = None,
) -> go.Figure:
    """Horizontal bars, highest score on top, with a threshold mark per bar (true genres starred if known)."""
    order = np.argsort(-np.asarray(scores, dtype=float), kind="stable")
    names = [genres[i] for i in order]
    values = [float(scores[i]) for i in order]
    cuts = [float(thresholds[i]) for i in order]
    passed = [value >= cut for value, cut in zip(values, cuts, strict=True)]
    labels = [f"★ {name}" if true_genres is not None and name in true_genres else name for name in names]
    figure = go.Figure()
    figure.add_bar(
        x=values,
        y=labels,
        orientation="h",
        name="score",
        marker_color=[PREDICTED_COLOUR if ok else NOT_PREDICTED_COLOUR for ok in passed],
        customdata=np.column_stack([cuts, ["predicted" if ok else "not predicted" for ok in passed]]),
        hovertemplate="%{y}: score %{x:.0%}, threshold %{customdata[0]:.0%} (%{customdata[1]})<extra></extra>",
        showlegend=False,
    )
    figure.add_scatter(
        x=cuts,
        y=labels,
        mode="markers",
        name="threshold",
        marker={"symbol": "line-ns", "size": 18, "line": {"width": 3, "color": THRESHOLD_COLOUR}},
        hovertemplate="%{y}: threshold %{x:.0%}<extra></extra>",
        showlegend=False,
    )
    figure.update_layout(
        height=ROW_HEIGHT_PX * len(names) + 70,
        margin={"t": 10, "b": 40, "l": 10, "r": 10},
        xaxis={"range": [0, 1], "tickformat": ".0%", "title": "score (bar) and the genre's threshold (orange mark)"},
        yaxis={"autorange": "reversed", "title": None},
        bargap=0.25,
    )
    return figure
