"""The user's label corrections: the one thing in the app a user makes by hand, so not derived data. They
live in their own store in the state folder (`store`: transactions, ids never reused, daily backups, a
damaged file moved aside), and the rules (`rules`: what may be corrected, how a movie's genres read after
its corrections) check them against the catalog. This package offers the rules' names directly
(`from core import corrections as cx; cx.correct(...)`).

May import: `core.data` (the catalog a correction is checked against) and the foundation. The store itself
imports only the standard library and the foundation, so the catalog never needs the corrections' code.
"""

from core.corrections.rules import *  # noqa: F403  (the package is the rules' public face)
from core.corrections.rules import __all__  # noqa: F401
