"""Which labels a run learns from and which it is tested on, once users have corrected some.

Training and validation use every correction in force when the run starts: better labels make a better
model, and the validation part only chooses things (epochs, thresholds), so it should see the best labels.
The test part is different: it is the yardstick that makes runs comparable, so it keeps the labels it had
when the split was drawn, and corrections made after that do not move it. A run records the test movies
whose corrections it held back and reports its test metrics a second time with them, so a user sees both
how the model compares with earlier runs and how it does against the labels as they now stand.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd

from core.corrections import Correction, apply_corrections


def _moment(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None


def made_before(corrections: Sequence[Correction], moment: str) -> list[Correction]:
    """The corrections made before `moment` (ISO 8601); none if the moment is unknown (an old split file)."""
    limit = _moment(moment)
    if limit is None:
        return []
    return [c for c in corrections if (made := _moment(c.made_at)) is not None and made < limit]


@dataclass(frozen=True)
class RunLabels:
    """A run's movies twice over: with every correction, and with the corrections its test part may use."""

    enabled: bool
    corrections: list[Correction]  # in force when the run started (empty when the run does not use them)
    split_drawn_at: str
    corrected: pd.DataFrame  # train and validation labels; also the test part's "with corrections" labels
    as_drawn: pd.DataFrame  # the test part's labels: only corrections made before the split was drawn

    @classmethod
    def make(
        cls, movies: pd.DataFrame, corrections: Sequence[Correction], split_drawn_at: str, enabled: bool
    ) -> RunLabels:
        used = list(corrections) if enabled else []
        return cls(
            enabled=enabled,
            corrections=used,
            split_drawn_at=split_drawn_at,
            corrected=apply_corrections(movies, used),
            as_drawn=apply_corrections(movies, made_before(used, split_drawn_at)),
        )

    def record(self, part_of: dict[str, str], available: int) -> dict[str, Any]:
        """What `corrections.json` says: each correction with its part and whether the run applied it.

        `part_of` maps the run's movies (those with a kept genre) to their part; `available` is how many
        corrections were in force, used or not.
        """
        before = {c.id for c in made_before(self.corrections, self.split_drawn_at)}
        rows = []
        for c in self.corrections:
            part = part_of.get(c.imdb_id)
            applied = part in ("train", "val") or (part == "test" and c.id in before)
            rows.append(
                {
                    "id": c.id,
                    "imdb_id": c.imdb_id,
                    "genre": c.genre,
                    "action": c.action,
                    "made_at": c.made_at,
                    "part": part,
                    "applied": applied,
                }
            )
        per_part = {
            part: sum(1 for row in rows if row["applied"] and row["part"] == part) for part in ("train", "val", "test")
        }
        held_back = [row for row in rows if row["part"] == "test" and not row["applied"]]
        return {
            "enabled": self.enabled,
            "available": available,
            "used": sum(per_part.values()),
            "per_part": per_part,
            "split_drawn_at": self.split_drawn_at,
            "test_held_back": held_back,
            "test_movies_held_back": sorted({row["imdb_id"] for row in held_back}),
            "corrections": rows,
        }
