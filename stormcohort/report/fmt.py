"""Every number in the report is formatted here, through one disclosure policy.

A ``Formatter`` with the default ``Policy()`` writes counts as counted (the full report); with
an active policy (the shareable report) every count passes through
:meth:`stormcohort.disclosure.Policy.count` and every percentage or rate is computed
from the disclosed counts.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

from stormcohort.disclosure import SUPPRESSED, Policy

DASH = "\u2013"
MISSING = "\u2014"


def _finite(x) -> bool:
    try:
        return x is not None and math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


class Formatter:
    """Numbers through the disclosure ``policy``; ``labels``: the config's label overrides."""

    def __init__(self, policy: Policy | None = None, labels: Mapping | None = None):
        self.policy = policy or Policy()
        self.labels = dict(labels or {})

    # ---------------------------------------------------------------- counts
    def n(self, value):
        """The disclosed count (int), ``SUPPRESSED`` or None."""
        return self.policy.count(value)

    def count(self, value) -> str:
        shown = self.n(value)
        if shown is None:
            return MISSING
        if shown == SUPPRESSED:
            return self.policy.small_label
        return f"{shown:,}"

    def pct(self, num, den, digits: int = 0) -> str:
        """num/den as a percentage, both disclosed first; blank when either is suppressed."""
        a, b = self.n(num), self.n(den)
        if a is None or b is None or SUPPRESSED in (a, b) or b == 0:
            return ""
        return f"{100 * a / b:.{digits}f}%"

    def n_pct(self, num, den) -> str:
        p = self.pct(num, den)
        return f"{self.count(num)} ({p})" if p else self.count(num)

    def rate(self, events, exposure, per: float) -> str:
        """Events per ``per`` units of exposure, from the disclosed event count."""
        e = self.n(events)
        if e is None or e == SUPPRESSED or not _finite(exposure) or float(exposure) <= 0:
            return MISSING
        return self.number(per * e / float(exposure), 2)

    def suppressed(self, *counts) -> bool:
        """Whether any of ``counts`` is shown as a small count (so what is built on it is withheld)."""
        return any(self.n(c) == SUPPRESSED for c in counts)

    def unless_small(self, counts, text: str) -> str:
        """``text`` (an estimate), or a placeholder when a count it rests on is suppressed."""
        return f"not shown ({self.policy.small_label} events)" if self.suppressed(*counts) else text

    def note(self, text) -> str:
        """A free-text note of an analysis table; left out of a disclosed report when it holds digits
        (notes quote counts)."""
        if text is None or (isinstance(text, float) and math.isnan(text)):
            return ""
        text = str(text)
        return "" if self.policy.active and re.search(r"\d", text) else text

    # ---------------------------------------------------------------- estimates
    @staticmethod
    def number(x, digits: int = 1) -> str:
        if not _finite(x):
            return MISSING
        return f"{float(x):,.{digits}f}"

    @staticmethod
    def ratio(x) -> str:
        """HR, OR, IRR: two decimals, no decimals from 100 up, the infinite limits by name."""
        if x is None or (isinstance(x, float) and math.isnan(x)):
            return MISSING
        x = float(x)
        if math.isinf(x):
            return "\u221e"
        return f"{x:.2f}" if x < 100 else f"{x:.0f}"

    def est_ci(self, est, lcl, ucl, digits: int | None = None) -> str:
        """``est (lcl–ucl)``: ratios by :meth:`ratio`, other estimates with ``digits`` decimals."""
        f = self.ratio if digits is None else (lambda v: self.number(v, digits))
        e, lo, hi = f(est), f(lcl), f(ucl)
        if e == MISSING:
            return MISSING
        return e if lo == hi == MISSING else f"{e} ({lo}{DASH}{hi})"

    # ---------------------------------------------------------------- risks (proportions) and their differences
    @staticmethod
    def risk(x, digits: int = 0) -> str:
        """A proportion as a percentage: ``0.25`` -> ``25%``."""
        if not _finite(x):
            return MISSING
        return f"{100 * float(x):.{digits}f}%"

    def risk_ci(self, est, lcl, ucl, level: str | None = None) -> str:
        """``25% (95% CI 12% to 40%)`` (``level``: ``95%``), or ``25% (12%–40%)`` without a level."""
        e, lo, hi = self.risk(est), self.risk(lcl), self.risk(ucl)
        if e == MISSING:
            return MISSING
        if lo == hi == MISSING:
            return e
        return f"{e} ({level} CI {lo} to {hi})" if level else f"{e} ({lo}{DASH}{hi})"

    @staticmethod
    def points(x) -> str:
        """A difference of proportions in percentage points, one decimal, a true minus sign:
        ``-0.05`` -> ``\u22125.0``."""
        if not _finite(x):
            return MISSING
        v = round(100 * float(x), 1)
        return f"{abs(v):.1f}" if v == 0 else f"{v:.1f}".replace("-", "\u2212")

    def points_ci(self, est, lcl, ucl, level: str | None = None, unit: str = "") -> str:
        """``\u22125.0 percentage points (95% CI \u221220.0 to 10.0)`` (``unit``: `` percentage points``)."""
        e, lo, hi = self.points(est), self.points(lcl), self.points(ucl)
        if e == MISSING:
            return MISSING
        if lo == hi == MISSING:
            return f"{e}{unit}"
        return f"{e}{unit} ({level + ' CI ' if level else ''}{lo} to {hi})"

    def ess(self, x) -> str:
        """An effective sample size: one decimal, or a disclosed count under an active policy (it is
        a number of patients when the weights are equal)."""
        if self.policy.active:
            return self.count(x)
        return self.number(x, 1)

    @staticmethod
    def p(p) -> str:
        if not _finite(p):
            return MISSING
        p = float(p)
        return "<0.001" if p < 0.001 else f"{p:.3f}"

    @staticmethod
    def days(x) -> str:
        if not _finite(x):
            return MISSING
        x = float(x)
        return f"{x:g}" if x == int(x) else f"{x:.1f}"

    @staticmethod
    def median_iqr(med, q1, q3, digits: int = 1) -> str:
        if not _finite(med):
            return MISSING
        return f"{float(med):.{digits}f} [{float(q1):.{digits}f}, {float(q3):.{digits}f}]"

    @staticmethod
    def size(nbytes) -> str:
        n = float(nbytes)
        for unit in ("B", "kB", "MB", "GB"):
            if n < 1000 or unit == "GB":
                return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
            n /= 1000
        return f"{n:.1f} GB"
