"""Metrics a learner can read: which way is better on every column, a dash for a figure that does not apply,
why the model's Hamming loss can lose to predicting nothing, and per-epoch curves with losses apart from
scores, in words rather than history keys."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

# Display name -> whether a higher value is better.
DIRECTIONS = {
    "micro-F1": True,
    "macro-F1": True,
    "mAP": True,
    "hit@3": True,
    "P@3": True,
    "Hamming loss": False,
}
MISSING = "—"  # a figure that does not apply (predicting nothing ranks nothing: no mAP, P@3 or hit@3)

# History keys -> what a person calls them; losses and scores go on separate axes (their scales differ).
CURVE_LABELS = {
    "loss": "training loss",
    "val_loss": "validation loss",
    "val_map": "validation mAP",
    "val_hit_at_3": "validation hit@3",
    "val_micro_f1": "validation micro-F1",
    "val_macro_f1": "validation macro-F1",
}
LOSS_PANEL, SCORE_PANEL = "loss (lower is better)", "scores (higher is better)"
CURVE_COLOURS = px.colors.qualitative.Safe  # colour-blind-safe, no two near-identical blues

HAMMING_EXPLAINED = (
    'Hamming loss counts wrong yes/no answers over every genre of every movie. Most genres are "no" for most '
    "movies, so predicting nothing already scores low; the thresholds are tuned for each genre's F1, which "
    "predicts more genres to find more of the right ones, at the price of some wrong yeses. Judge the model "
    "by mAP, F1 and hit@3 beside their baselines."
)


def every_label(labels: Sequence[str]) -> dict[str, object]:
    """Axis settings that name every category: Plotly thins crowded category labels to every other one."""
    return {"tickmode": "array", "tickvals": list(labels), "ticktext": list(labels)}


def with_direction(name: str) -> str:
    """A column name with its arrow: "mAP ↑", "Hamming loss ↓" (unchanged for names without a direction)."""
    if name not in DIRECTIONS:
        return name
    return f"{name} {'↑' if DIRECTIONS[name] else '↓'}"


def shown_figure(value: object) -> str:
    """A figure as the tables show it: three decimals, or a dash where it does not apply."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    if isinstance(value, int | float):
        return f"{value:.3f}"
    return str(value)


def readable_figures(table: pd.DataFrame) -> pd.DataFrame:
    """The table with arrows on its metric columns and its figures written as shown (three decimals, "—")."""
    shown = table.copy()
    for column in shown.columns:
        if column in DIRECTIONS:
            shown[column] = shown[column].map(shown_figure)
    return shown.rename(columns=with_direction)


def hamming_note(table: pd.DataFrame) -> str | None:
    """A sentence when the model's Hamming loss is worse than predicting nothing (rows as in
    `core.app.run_reports.baselines_table`: the run first, "predict nothing" second)."""
    if "Hamming loss" not in table or len(table) < 2:
        return None
    model, nothing = table["Hamming loss"].iloc[0], table["Hamming loss"].iloc[1]
    if not all(isinstance(value, int | float) and not math.isnan(value) for value in (model, nothing)):
        return None
    if model <= nothing:
        return None
    return f"This model's Hamming loss ({model:.3f}) is worse than predicting nothing ({nothing:.3f}). " + (
        HAMMING_EXPLAINED
    )


def curves_chart(curves: pd.DataFrame, title: str = "Per epoch") -> go.Figure:
    """Per-epoch curves of one run: losses on the top panel, validation scores below, each with its own axis."""
    frame = curves.assign(
        metric=curves["metric"].map(lambda key: CURVE_LABELS.get(key, key)),
        panel=curves["metric"].map(lambda key: LOSS_PANEL if key.endswith("loss") else SCORE_PANEL),
    )
    figure = px.line(
        frame,
        x="epoch",
        y="value",
        color="metric",
        facet_row="panel",
        category_orders={"panel": [LOSS_PANEL, SCORE_PANEL], "metric": list(CURVE_LABELS.values())},
        color_discrete_sequence=CURVE_COLOURS,
        markers=True,
        title=title,
        labels={"value": "", "metric": ""},
    )
    figure.update_yaxes(matches=None, showticklabels=True)
    figure.for_each_annotation(lambda note: note.update(text=note.text.split("=", 1)[-1]))
    figure.update_layout(height=520)
    return figure
