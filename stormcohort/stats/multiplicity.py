"""Multiplicity: Holm's step-down adjustment of a family of p values (R ``p.adjust(p, "holm")``).

Holm (1979): with the m non-missing p values sorted ascending, p_(1) <= ... <= p_(m), the adjusted
value of p_(i) is ``min(1, max_{j <= i} (m - j + 1) p_(j))``; it controls the family-wise error rate
under any dependence. As R, missing values stay missing and do not count in m (``p.adjust``'s
default ``n = length(p[!is.na(p)])``); ties get the same adjusted value whatever their order.
"""

from __future__ import annotations

import numpy as np


def holm(p) -> np.ndarray:
    """Holm-adjusted p values, in the order given; NaN where ``p`` is missing (R ``p.adjust(p, "holm")``)."""
    p = np.asarray(p, dtype=float)
    if p.ndim != 1:
        raise ValueError(f"holm: p must be one-dimensional, got shape {p.shape}")
    if np.any((p < 0) | (p > 1)):
        raise ValueError("holm: p values must lie in [0, 1]")
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    m = len(ok)
    if m == 0:
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    steps = (m - np.arange(m)) * p[order]
    out[order] = np.minimum(1.0, np.maximum.accumulate(steps))
    return out
