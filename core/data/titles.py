"""How a title files in an alphabetical list: the way libraries and IMDb's own lists file it.

A leading English article and any leading punctuation are skipped ("The Matrix" files under M,
"'Til There Was You" under T, "*batteries not included" under B), and case does not count. Digits stay
where they are, before the letters, as in every sorted list a reader knows.
"""

from __future__ import annotations

import re
import unicodedata

_LEADING_PUNCTUATION = re.compile(r"^[\W_]+")
_LEADING_ARTICLE = re.compile(r"^(the|a|an)\s+(?=\w)", re.IGNORECASE)


def title_sort_key(title: str) -> str:
    """The text a title is sorted by: no leading punctuation, no leading The / A / An, case folded."""
    text = unicodedata.normalize("NFKD", str(title)).strip()
    text = _LEADING_PUNCTUATION.sub("", text)
    stripped = _LEADING_ARTICLE.sub("", text)
    text = _LEADING_PUNCTUATION.sub("", stripped) or text  # a title that is only "The" keeps it
    return text.casefold() or str(title).casefold()


def title_with_year(title: object, year: object) -> str:
    """ "Title (year)" as lists show a movie; just the title when the year is unknown (None or NaN: a CSV row
    may have none), and a year read as a float (2001.0, beside a missing one) is written as 2001."""
    try:
        return f"{title} ({int(year)})"  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return str(title)
