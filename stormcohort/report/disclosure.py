"""Statistical disclosure control for a report shared outside the care team.

Off by default (``Policy()`` shows every count as it is). With ``disclosure: {min_count: N,
round_to: M}`` in the config: a count from 1 to N-1 is shown as ``<N``; any other count is
rounded to the nearest multiple of M (halves up), and never shown below N (a count of at least
N rounds to at least the first multiple of M that is N or more, so no shown number is a
"small count"). Zero stays zero. Percentages, rates and their intervals are then computed from
the disclosed counts, so no unrounded count can be recovered from them; a quantity built on a
suppressed count is not shown.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

SUPPRESSED = "suppressed"


@dataclass(frozen=True)
class Policy:
    min_count: int | None = None
    round_to: int | None = None

    @classmethod
    def from_config(cls, cfg: Mapping | None) -> "Policy":
        cfg = dict(cfg or {})
        return cls(cfg.get("min_count"), cfg.get("round_to"))

    @property
    def active(self) -> bool:
        return bool(self.min_count or self.round_to)

    @property
    def small_label(self) -> str:
        return f"<{self.min_count}"

    def count(self, n) -> int | str | None:
        """A count as it may be shown: the int, ``SUPPRESSED`` or None (missing)."""
        if n is None or (isinstance(n, float) and math.isnan(n)):
            return None
        n = int(round(float(n)))
        if not self.active or n == 0:
            return n
        if self.min_count and 0 < n < self.min_count:
            return SUPPRESSED
        m = self.round_to or 1
        shown = m * math.floor(n / m + 0.5)
        floor = m * math.ceil((self.min_count or 0) / m)
        return max(shown, floor)

    def describe(self) -> str:
        if not self.active:
            return "none: every count is shown as counted"
        parts = []
        if self.min_count:
            parts.append(f"counts from 1 to {self.min_count - 1} are shown as <{self.min_count}")
        if self.round_to:
            parts.append(f"other counts are rounded to the nearest multiple of {self.round_to}"
                         + (f" (and to at least {self.count(self.min_count)})" if self.min_count else ""))
        parts.append("percentages, rates and their intervals are computed from the rounded counts; "
                     "a quantity built on a suppressed count is not shown")
        return "; ".join(parts)


def is_suppressed(value) -> bool:
    return value == SUPPRESSED
