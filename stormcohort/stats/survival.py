"""Kaplan-Meier survival curves, medians, survival at fixed times, and the log-rank test.

Conventions follow R's ``survival`` package (survival 3.x), which is what clinical readers
compare against:

* **Estimator**: the Kaplan-Meier product-limit estimator ``S(t) = prod_{t_j <= t} (1 - d_j / n_j)``,
  where subjects censored at ``t_j`` are still at risk at ``t_j`` (R's convention). Tied times
  are handled deterministically: all events and censorings at one time form a single step.
* **Variance**: Greenwood, ``var(log S(t)) = sum_{t_j <= t} d_j / (n_j (n_j - d_j))``
  (R ``survfit``'s ``std.err`` is this standard error of ``log S``).
* **Intervals**: R's default ``conf.type = "log"``: ``S * exp(+/- z * se(log S))``, the upper
  limit truncated at 1, and no interval where ``S = 0``. ``"log-log"`` (lifelines' default,
  "exponential Greenwood") and ``"plain"`` are available but are not R's default.
* **Median and its CI**: R's ``print.survfit``/``survmean`` rule: the first time the curve
  (lower / upper confidence curve for the lower / upper limit) is ``<= 0.5`` (with a 1.5e-8
  tolerance); if the curve is exactly 0.5 on a flat stretch, the midpoint between that time
  and the first time the curve drops below 0.5.
* **Log-rank**: R ``survdiff(rho = 0)``: k-sample Mantel-Haenszel test with the
  hypergeometric variance; groups with zero expected events are dropped; df = (groups with
  expected > 0) - 1. A singular variance (e.g. zero: every death at a time when all at risk
  died) gives no test (NaN and a ``note``) where R's ``survdiff`` stops with an error.

R's ``timefix`` (merging times that differ by floating-point noise) is not applied: times are
used as given.

lifelines' ``KaplanMeierFitter`` is not used because its intervals are log(-log) only and its
median CI follows a different rule; the curve is a few vectorised lines here. The log-rank
statistic equals lifelines' ``multivariate_logrank_test`` (checked in the tests) but is computed
here to return R's per-group table (observed, expected, variance) and R's handling of groups
with no expected events.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import special

from stormcohort.stats._util import (
    ALL,
    as_event,
    as_time,
    complete_rows,
    group_levels,
    require_columns,
    time_label,
    z_value,
)

__all__ = [
    "kaplan_meier",
    "km_median",
    "survival_at",
    "km_summary",
    "numbers_at_risk",
    "logrank_test",
    "LogRankResult",
]

_CONF_TYPES = ("log", "log-log", "plain")
CURVE_COLUMNS = ["group", "time", "n_risk", "n_event", "n_censor", "surv", "std_err", "surv_lcl", "surv_ucl"]
_MEDIAN_TOL = np.sqrt(np.finfo(float).eps)  # R: .Machine$double.eps^.5


# --------------------------------------------------------------------------- input


def _prepare(data, time, event, group):
    require_columns(data, [time, event, group])
    d = complete_rows(data, [time, event, group])
    t = as_time(d[time], time)
    e = as_event(d[event], event)
    if group is None:
        g = np.full(len(d), ALL, dtype=object)
        levels = [ALL]
    else:
        g = d[group].to_numpy(dtype=object)
        levels = group_levels(d[group])
    return t, e, g, levels


def _risk_table(t: np.ndarray, e: np.ndarray):
    """Unique times with n at risk, events and censorings (one group). O(n log n)."""
    order = np.argsort(t, kind="stable")
    ts, es = t[order], e[order]
    times, first, counts = np.unique(ts, return_index=True, return_counts=True)
    n_event = np.add.reduceat(es, first) if len(ts) else np.zeros(0, dtype=np.int64)
    n_risk = len(ts) - first
    return times, n_risk, n_event, counts - n_event


def _conf_limits(surv, se_log, z, conf_type):
    """Pointwise CI from S and se(log S); NaN where S == 0 (as R)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.where(surv > 0, surv, np.nan)
        if conf_type == "log":
            lo = s * np.exp(-z * se_log)
            hi = np.minimum(s * np.exp(z * se_log), 1.0)
        elif conf_type == "log-log":
            # R: exp(-exp(log(-log S) +/- z se / log S)); se here is se(log S)
            ll = np.log(-np.log(s))
            w = z * se_log / np.log(s)
            lo = np.exp(-np.exp(ll - w))
            hi = np.exp(-np.exp(ll + w))
            one = s == 1
            lo, hi = np.where(one, np.nan, lo), np.where(one, np.nan, hi)
        elif conf_type == "plain":
            se = s * se_log
            lo = np.maximum(s - z * se, 0.0)
            hi = np.minimum(s + z * se, 1.0)
        else:
            raise ValueError(f"conf_type must be one of {_CONF_TYPES}, got {conf_type!r}")
    return lo, hi


# --------------------------------------------------------------------------- curve


def kaplan_meier(
    data: pd.DataFrame,
    time: str,
    event: str,
    group: str | None = None,
    *,
    conf_level: float = 0.95,
    conf_type: str = "log",
) -> pd.DataFrame:
    """Kaplan-Meier curve(s) at every distinct observed time (events and censorings).

    Estimator: product-limit; variance: Greenwood; CI: ``conf_type`` ("log" = R's default).

    Returns one row per group and distinct time, sorted by group then time, with columns
    ``group, time, n_risk, n_event, n_censor, surv, std_err, surv_lcl, surv_ucl`` where
    ``std_err`` is the standard error of S (``S * se(log S)``, as R's ``summary.survfit``).
    Rows with a missing time, event or group are dropped.
    """
    z = z_value(conf_level)
    t, e, g, levels = _prepare(data, time, event, group)
    frames = []
    for lvl in levels:
        m = g == lvl
        times, n_risk, n_event, n_censor = _risk_table(t[m], e[m])
        with np.errstate(divide="ignore", invalid="ignore"):
            surv = np.cumprod(1.0 - n_event / n_risk)
            gw = np.cumsum(np.where(n_event > 0, n_event / (n_risk * (n_risk - n_event)), 0.0))
        se_log = np.sqrt(gw)
        lo, hi = _conf_limits(surv, se_log, z, conf_type)
        with np.errstate(invalid="ignore"):
            std_err = np.where(surv > 0, surv * se_log, np.nan)
        frames.append(
            pd.DataFrame(
                {
                    "group": lvl,
                    "time": times,
                    "n_risk": n_risk.astype(np.int64),
                    "n_event": n_event.astype(np.int64),
                    "n_censor": n_censor.astype(np.int64),
                    "surv": surv,
                    "std_err": std_err,
                    "surv_lcl": lo,
                    "surv_ucl": hi,
                }
            )
        )
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=CURVE_COLUMNS)


def _minmin(y: np.ndarray, x: np.ndarray) -> float:
    """R survmean's ``minmin``: first x where y <= .5, with the half-way rule at exactly .5."""
    keep = ~np.isnan(y) & (y < 0.5 + _MEDIAN_TOL)
    if not keep.any():
        return np.nan
    x, y = x[keep], y[keep]
    if abs(y[0] - 0.5) < _MEDIAN_TOL and (y < y[0]).any():
        return float((x[0] + x[np.argmax(y < y[0])]) / 2)
    return float(x[0])


def km_median(curve: pd.DataFrame) -> pd.DataFrame:
    """Median survival and its CI from a :func:`kaplan_meier` curve, by R's ``print.survfit`` rule.

    The lower limit is where the lower confidence curve first reaches <= 0.5, the upper limit
    where the upper curve does; NaN (R's NA) when a curve never reaches 0.5.
    Returns ``group, n, events, median, median_lcl, median_ucl``.
    """
    rows = []
    for lvl, c in curve.groupby("group", sort=False):
        x = c["time"].to_numpy()
        rows.append(
            {
                "group": lvl,
                "n": int(c["n_risk"].iloc[0]) if len(c) else 0,
                "events": int(c["n_event"].sum()),
                "median": _minmin(c["surv"].to_numpy(), x),
                "median_lcl": _minmin(c["surv_lcl"].to_numpy(), x),
                "median_ucl": _minmin(c["surv_ucl"].to_numpy(), x),
            }
        )
    return pd.DataFrame(rows, columns=["group", "n", "events", "median", "median_lcl", "median_ucl"])


def _step_at(curve: pd.DataFrame, times: np.ndarray) -> pd.DataFrame:
    """Right-continuous step-function lookup of one group's curve at ``times`` (as summary.survfit)."""
    ct = curve["time"].to_numpy()
    idx = np.searchsorted(ct, times, side="right") - 1  # last curve time <= t
    before, beyond = idx < 0, times > ct[-1]
    j = np.clip(idx, 0, len(ct) - 1)
    out = {}
    for col, start in (("surv", 1.0), ("std_err", 0.0), ("surv_lcl", 1.0), ("surv_ucl", 1.0)):
        v = np.where(before, start, curve[col].to_numpy(dtype=float)[j])
        out[col] = np.where(beyond, np.nan, v)
    # at risk at t: still under observation at t (time >= t) == n_risk at the next curve time
    nxt = np.searchsorted(ct, times, side="left")
    n_risk = curve["n_risk"].to_numpy()[np.minimum(nxt, len(ct) - 1)]
    out["n_risk"] = np.where(nxt < len(ct), n_risk, 0).astype(np.int64)
    return pd.DataFrame(out)


def survival_at(
    data: pd.DataFrame,
    time: str,
    event: str,
    times: Sequence[float],
    group: str | None = None,
    *,
    conf_level: float = 0.95,
    conf_type: str = "log",
) -> pd.DataFrame:
    """Kaplan-Meier survival (Greenwood variance, R "log" CI by default) at given times.

    The curve is a right-continuous step function: S(t) is the estimate at the last distinct
    time <= t (1 before the first). Times after the group's last observation give NaN, as R's
    ``summary(fit, times = ...)`` (``extend = FALSE``) omits them.
    Returns ``group, time, n_risk, surv, std_err, surv_lcl, surv_ucl``.
    """
    curve = kaplan_meier(data, time, event, group, conf_level=conf_level, conf_type=conf_type)
    return _survival_at_curve(curve, times)


def _survival_at_curve(curve: pd.DataFrame, times: Sequence[float]) -> pd.DataFrame:
    tt = np.asarray(times, dtype=float).ravel()
    frames = []
    for lvl, c in curve.groupby("group", sort=False):
        s = _step_at(c, tt)
        s.insert(0, "time", tt)
        s.insert(0, "group", lvl)
        frames.append(s)
    cols = ["group", "time", "n_risk", "surv", "std_err", "surv_lcl", "surv_ucl"]
    if not frames:
        return pd.DataFrame(columns=cols)
    return pd.concat(frames, ignore_index=True)[cols]


def km_summary(
    data: pd.DataFrame,
    time: str,
    event: str,
    group: str | None = None,
    *,
    times: Sequence[float] = (),
    conf_level: float = 0.95,
    conf_type: str = "log",
) -> pd.DataFrame:
    """One row per group: n, events, median (R rule) with CI, and S(t) with CI at each of ``times``.

    Kaplan-Meier estimator, Greenwood variance, R's default "log" intervals.
    Columns: ``group, n, events, median, median_lcl, median_ucl`` then, for each t,
    ``surv_<t>, surv_<t>_lcl, surv_<t>_ucl`` (t formatted with ``%g``, e.g. ``surv_365.25``).
    """
    curve = kaplan_meier(data, time, event, group, conf_level=conf_level, conf_type=conf_type)
    out = km_median(curve)
    if len(times):
        at = _survival_at_curve(curve, times)
        for t in np.asarray(times, dtype=float).ravel():
            lab = time_label(t)
            sub = at.loc[at["time"] == t].set_index("group")
            for src, dst in (("surv", f"surv_{lab}"), ("surv_lcl", f"surv_{lab}_lcl"), ("surv_ucl", f"surv_{lab}_ucl")):
                out[dst] = out["group"].map(sub[src]).astype(float)
    return out


def numbers_at_risk(
    data: pd.DataFrame,
    time: str,
    event: str,
    times: Sequence[float],
    group: str | None = None,
) -> pd.DataFrame:
    """Risk table for a survival figure: per group and time, subjects still at risk (time >= t)
    and the cumulative numbers of events and censorings up to and including t.

    Returns ``group, time, n_risk, n_event_cum, n_censor_cum`` (the survminer / R
    ``summary.survfit`` convention for n.risk).
    """
    t, e, g, levels = _prepare(data, time, event, group)
    tt = np.asarray(times, dtype=float).ravel()
    frames = []
    for lvl in levels:
        m = g == lvl
        ts = np.sort(t[m])
        te = np.sort(t[m][e[m] == 1])
        n_before = np.searchsorted(ts, tt, side="left")
        n_upto = np.searchsorted(ts, tt, side="right")
        ev_upto = np.searchsorted(te, tt, side="right")
        frames.append(
            pd.DataFrame(
                {
                    "group": lvl,
                    "time": tt,
                    "n_risk": (len(ts) - n_before).astype(np.int64),
                    "n_event_cum": ev_upto.astype(np.int64),
                    "n_censor_cum": (n_upto - ev_upto).astype(np.int64),
                }
            )
        )
    cols = ["group", "time", "n_risk", "n_event_cum", "n_censor_cum"]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=cols)


# --------------------------------------------------------------------------- log-rank


@dataclass(frozen=True)
class LogRankResult:
    """k-sample log-rank test (R ``survdiff``, rho = 0).

    ``table`` has ``group, n, observed, expected, oe2_e, oe2_v`` (the last two R's
    ``(O-E)^2/E`` and ``(O-E)^2/V`` columns). ``df`` is 0 and ``p`` NaN when fewer than two
    groups have expected events (no test possible: ``chisq`` 0, as R). When the variance
    matrix is singular ``chisq``, ``p`` are NaN, ``df`` 0 and ``note`` says why; ``note`` is
    None otherwise.
    """

    chisq: float
    df: int
    p: float
    table: pd.DataFrame
    note: str | None = None


ZERO_VARIANCE = ("the variance of observed minus expected deaths is zero (every death at a time when all "
                 "at risk died or one group alone was at risk)")
SINGULAR_VARIANCE = "the variance matrix of observed minus expected deaths is singular"


def logrank_test(data: pd.DataFrame, time: str, event: str, group: str) -> LogRankResult:
    """Log-rank (Mantel-Haenszel) test of equal survival across the levels of ``group``.

    Statistic: ``(O-E)' V^- (O-E)`` over all groups but the first among those with E > 0, with
    V the hypergeometric covariance ``sum_t d_t (n_t-d_t)/(n_t-1) * n_kt/n_t (delta_kl - n_lt/n_t)``
    (R ``survdiff``); chi-square with (groups with E > 0) - 1 df. Vectorised over all distinct
    times (a T x k matrix).

    Degenerate data: a time where everyone at risk dies (``d_t = n_t``) or where one group
    alone is at risk adds nothing to V. When every death time is such a time (e.g. the last
    two at risk, one per group, die on the same day and nobody died before), two groups can
    have E > 0 while V is 0, so the test is undefined: ``chisq``/``p`` NaN, ``df`` 0 and the
    reason in ``note``; likewise for any V that is singular (reciprocal condition number
    below machine epsilon, the threshold of R's ``solve``). R: ``survdiff`` computes
    ``sum(solve(vv, temp2) * temp2)`` with no guard (survival's R/survdiff.R), and base R's
    ``solve`` stops on an exactly or computationally singular matrix, so ``survdiff`` ends with
    an error rather than returning 0 or NaN (read from the source, not run here).
    """
    t, e, g, levels = _prepare(data, time, event, group)
    k = len(levels)
    code = pd.Categorical(g, categories=levels).codes
    times, inv = np.unique(t, return_inverse=True)
    count = np.zeros((len(times), k))
    died = np.zeros((len(times), k))
    np.add.at(count, (inv, code), 1.0)
    np.add.at(died, (inv, code), e.astype(float))
    at_risk = np.cumsum(count[::-1], axis=0)[::-1]  # n_kt: time >= t
    n = at_risk.sum(axis=1)
    d = died.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = at_risk / n[:, None]
        expected = (frac * d[:, None]).sum(axis=0)
        w = np.where(n > 1, d * (n - d) / (n - 1), 0.0)
    var = np.diag((w[:, None] * frac).sum(axis=0)) - (frac * w[:, None]).T @ frac
    observed = died.sum(axis=0)
    keep = expected > 0
    note = None
    if keep.sum() < 2:
        chisq, df, p = 0.0, 0, np.nan
    else:
        idx = np.flatnonzero(keep)[1:]
        diff = (observed - expected)[idx]
        vv = var[np.ix_(idx, idx)]
        if not vv.any():
            note = ZERO_VARIANCE
        elif 1.0 / np.linalg.cond(vv, 1) < np.finfo(float).eps:  # inf for an exactly singular vv
            note = SINGULAR_VARIANCE
        if note is None:
            chisq = float(diff @ np.linalg.solve(vv, diff))
            df = int(keep.sum() - 1)
            p = float(special.chdtrc(df, chisq))  # chi2.sf
        else:
            chisq, df, p = np.nan, 0, np.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        table = pd.DataFrame(
            {
                "group": levels,
                "n": count.sum(axis=0).astype(np.int64),
                "observed": observed,
                "expected": expected,
                "oe2_e": (observed - expected) ** 2 / expected,
                "oe2_v": (observed - expected) ** 2 / np.diag(var),
            }
        )
    return LogRankResult(chisq=chisq, df=df, p=p, table=table, note=note)

