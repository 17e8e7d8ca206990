"""How a bench prints its figures: a heading, then one aligned `label  value` line per figure."""

from __future__ import annotations


def print_table(heading: str, rows: list[tuple[str, str]], value_width: int) -> None:
    """The labels padded to the longest, the values right-aligned in `value_width` characters."""
    width = max(len(label) for label, _ in rows)
    print(heading)
    for label, value in rows:
        print(f"  {label:<{width}}  {value:>{value_width}}")
