"""Incidence rates with exact Poisson intervals, and rate ratios with exact conditional tests.

* **Rate**: events / exposure, scaled ``per`` units of exposure (default 100 patient-days).
* **Rate CI**: exact (Garwood 1936) Poisson limits via the chi-square / gamma relation, as R
  ``poisson.test``: lower ``qgamma(alpha/2, x) / T`` (0 when x = 0), upper
  ``qgamma(1 - alpha/2, x + 1) / T``.
* **Rate ratio**: ``(x1/T1) / (x2/T2)`` with R ``poisson.test(c(x1, x2), c(T1, T2))``'s exact
  conditional method: given x1 + x2, x1 is binomial with p = T1 / (T1 + T2) under H0; the
  Clopper-Pearson interval for p is mapped to ``p / (1 - p) * T2 / T1`` and the p-value is the
  two-sided exact binomial p-value (R ``binom.test``'s rule, which scipy's ``binomtest``
  implements).

Zero events give a lower limit of 0 (and an infinite rate-ratio upper limit when the
reference group has none); zero exposure, or no events in either group for a ratio, gives
``estimable = False`` with a reason rather than an error.

The exact conditional ratio treats every event as independent, though one patient may have
several. **Patient-clustered rate ratio** (:func:`clustered_rate_ratio`): Poisson regression of
each patient's event count on the group, log of the patient's exposure as offset, with the
sandwich variance clustered on the patient (one row per patient, so each row is its own
cluster) and the small-sample factor ``G/(G-1) * (N-1)/(N-K)``: statsmodels
``GLM(..., offset=log(T)).fit(cov_type="cluster", cov_kwds={"groups": patient})``, and R
``sandwich::vcovCL(fit, cluster = ~id, type = "HC1")``. With the group as the only covariate
the model is saturated, so both have a closed form, computed here in O(n) (statsmodels takes
0.4 s per term at 100,000 patients; tests/test_stats_rates.py checks the two agree, and R):
the MLE of each group's rate is ``Y_g / T_g``, so the estimate is the crude ratio
``(x1/T1)/(x2/T2)``, and ``var(log ratio) = c * sum_g S_g / Y_g^2`` with ``S_g = sum_i (y_i -
Y_g/T_g t_i)^2`` over the group's patients, ``c = G/(G-1) * (N-1)/(N-2)``. Wald interval
``exp(b -/+ z se)`` and p from ``b / se``: wider than the exact one when events bunch in a few
patients (over-dispersion).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import special

from stormcohort.stats._util import ALL, complete_rows, group_levels, require_columns

__all__ = ["poisson_rate_ci", "incidence_rates", "rate_ratio", "RateRatio", "clustered_rate_ratio",
           "ClusteredRateRatio"]

RATE_COLUMNS = ["group", "events", "exposure", "rate", "rate_lcl", "rate_ucl", "estimable", "reason"]


def poisson_rate_ci(events, exposure, *, per: float = 1.0, conf_level: float = 0.95) -> pd.DataFrame:
    """Vectorised exact Poisson rate and CI for arrays of event counts and exposures.

    Returns ``events, exposure, rate, rate_lcl, rate_ucl, estimable, reason``; rows with zero
    exposure are not estimable (NaN rate). ``per`` rescales (100 -> per 100 units of exposure).
    """
    x = np.atleast_1d(np.asarray(events, dtype=float))
    T = np.atleast_1d(np.asarray(exposure, dtype=float))
    x, T = np.broadcast_arrays(x, T)
    if np.any(x < 0) or np.any(np.isnan(x)) or np.any(x != np.round(x)):
        raise ValueError("events must be non-negative whole numbers")
    if np.any(T < 0) or np.any(np.isnan(T)):
        raise ValueError("exposure must be non-negative")
    alpha = 1 - conf_level
    ok = T > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        lo = np.where(x > 0, special.gammaincinv(np.maximum(x, 1), alpha / 2), 0.0)
        hi = special.gammaincinv(x + 1, 1 - alpha / 2)  # gamma.ppf(q, a)
        rate = np.where(ok, x / T * per, np.nan)
        rate_lcl = np.where(ok, lo / T * per, np.nan)
        rate_ucl = np.where(ok, hi / T * per, np.nan)
    return pd.DataFrame(
        {
            "events": x.astype(np.int64),
            "exposure": T,
            "rate": rate,
            "rate_lcl": rate_lcl,
            "rate_ucl": rate_ucl,
            "estimable": ok,
            "reason": np.where(ok, None, "zero exposure"),
        }
    )


def incidence_rates(
    data: pd.DataFrame,
    events: str,
    exposure: str,
    group: str | None = None,
    *,
    per: float = 100.0,
    conf_level: float = 0.95,
) -> pd.DataFrame:
    """Incidence rate per ``per`` units of exposure (default per 100 patient-days) by group.

    ``events`` is a per-row event count (or 0/1), ``exposure`` the per-row time at risk; both are
    summed within group. Exact Poisson (Garwood) CI. Columns: ``group, events, exposure, rate,
    rate_lcl, rate_ucl, estimable, reason``.
    """
    require_columns(data, [events, exposure, group])
    d = complete_rows(data, [events, exposure, group])
    if group is None:
        sums = pd.DataFrame({"group": [ALL], "x": [d[events].sum()], "T": [d[exposure].sum()]})
    else:
        levels = group_levels(d[group])
        agg = d.groupby(group, observed=True)[[events, exposure]].sum().reindex(levels)
        sums = pd.DataFrame({"group": levels, "x": agg[events].to_numpy(), "T": agg[exposure].to_numpy()})
    out = poisson_rate_ci(sums["x"], sums["T"], per=per, conf_level=conf_level)
    out.insert(0, "group", sums["group"].to_numpy())
    return out[RATE_COLUMNS]


@dataclass(frozen=True)
class RateRatio:
    """Rate ratio (group 1 over group 2) with exact conditional CI and two-sided p-value."""

    rate_ratio: float
    lcl: float
    ucl: float
    p: float
    events1: int
    exposure1: float
    events2: int
    exposure2: float
    estimable: bool
    reason: str | None = None


def rate_ratio(
    events1: int, exposure1: float, events2: int, exposure2: float, *, conf_level: float = 0.95
) -> RateRatio:
    """Exact conditional rate ratio, as R ``poisson.test(c(x1, x2), c(T1, T2))``.

    Estimator ``(x1/T1)/(x2/T2)``; CI from the Clopper-Pearson interval of the binomial
    proportion x1 / (x1 + x2); p from the exact binomial test of p = T1 / (T1 + T2).
    """
    x1, x2 = int(events1), int(events2)
    T1, T2 = float(exposure1), float(exposure2)
    if min(x1, x2) < 0 or min(T1, T2) < 0:
        raise ValueError("events and exposures must be non-negative")
    base = dict(events1=x1, exposure1=T1, events2=x2, exposure2=T2)
    if T1 == 0 or T2 == 0:
        return RateRatio(np.nan, np.nan, np.nan, np.nan, estimable=False, reason="zero exposure", **base)
    n = x1 + x2
    if n == 0:
        return RateRatio(np.nan, np.nan, np.nan, np.nan, estimable=False, reason="no events in either group", **base)
    p0 = T1 / (T1 + T2)
    from scipy.stats import binomtest  # 0.5 s to import: only here

    test = binomtest(x1, n, p0)
    ci = test.proportion_ci(confidence_level=conf_level, method="exact")

    def to_ratio(p: float) -> float:
        return p / (1 - p) * T2 / T1 if p < 1 else np.inf

    rr = (x1 / T1) / (x2 / T2) if x2 > 0 else np.inf
    return RateRatio(float(rr), to_ratio(ci.low), to_ratio(ci.high), float(test.pvalue), estimable=True, **base)


CLUSTERED_METHOD = "poisson_glm_cluster_hc1"


@dataclass(frozen=True)
class ClusteredRateRatio:
    """Rate ratio (group 1 over group 2) from Poisson regression with a patient-clustered
    sandwich variance: estimate, Wald CI and p, and the standard error of its log."""

    rate_ratio: float
    lcl: float
    ucl: float
    p: float
    se: float  # of log(rate_ratio)
    patients1: int
    patients2: int
    estimable: bool
    reason: str | None = None
    method: str = CLUSTERED_METHOD


def clustered_rate_ratio(events, exposure, in_group1, *, conf_level: float = 0.95) -> ClusteredRateRatio:
    """Group 1 vs group 2 rate ratio from one row per patient: ``events`` (count), ``exposure``
    (> 0; rows with none are left out: no time at risk) and ``in_group1`` (bool). Poisson GLM
    ``events ~ group1 + offset(log(exposure))`` with the patient-clustered sandwich variance (R
    ``sandwich::vcovCL(fit, cluster = ~id, type = "HC1")``, statsmodels ``cov_type="cluster"``), in
    its closed form (module docstring). Not estimable (with the reason) when a
    group has no patient or no events, or with fewer than 3 patients (N - K = 0)."""
    y = np.asarray(events, dtype=float)
    T = np.asarray(exposure, dtype=float)
    g1 = np.asarray(in_group1, dtype=bool)
    if np.any(y < 0) or np.any(np.isnan(y)) or np.any(y != np.round(y)):
        raise ValueError("events must be non-negative whole numbers")
    at_risk = T > 0
    y, T, g1 = y[at_risk], T[at_risk], g1[at_risk]
    n1, n2 = int(g1.sum()), int((~g1).sum())
    x1, x2 = y[g1].sum(), y[~g1].sum()
    reason = ("no patient with exposure in a group" if min(n1, n2) == 0 else
              "no events in either group" if x1 + x2 == 0 else
              "no events in group 1" if x1 == 0 else "no events in group 2" if x2 == 0 else
              "fewer than 3 patients with exposure" if n1 + n2 < 3 else None)
    if reason:
        return ClusteredRateRatio(np.nan, np.nan, np.nan, np.nan, np.nan, n1, n2, estimable=False, reason=reason)
    n = n1 + n2
    var = 0.0
    for sel, x in ((g1, x1), (~g1, x2)):
        residual = y[sel] - x / T[sel].sum() * T[sel]
        var += float(residual @ residual) / x**2
    var *= n / (n - 1) * (n - 1) / (n - 2)
    b, se = float(np.log((x1 / T[g1].sum()) / (x2 / T[~g1].sum()))), float(np.sqrt(var))
    if not se > 0:  # every patient's events exactly in proportion to their exposure
        return ClusteredRateRatio(np.nan, np.nan, np.nan, np.nan, np.nan, n1, n2, estimable=False,
                                  reason="no variation of the event rate between patients")
    z = special.ndtri(1 - (1 - conf_level) / 2)
    p = float(2 * special.ndtr(-abs(b / se)))
    return ClusteredRateRatio(float(np.exp(b)), float(np.exp(b - z * se)), float(np.exp(b + z * se)), p, se,
                              n1, n2, estimable=True)
