"""Cumulative incidence with competing risks: the Aalen-Johansen estimator, as R ``survfit``.

* **Estimator**: Aalen-Johansen for one initial state ("event-free") and K absorbing event
  states: ``P0(t) = prod (1 - d_j / Y_j)`` (the all-cause Kaplan-Meier) and
  ``CIF_k(t) = sum_{t_j <= t} P0(t_j-) d_kj / Y_j``. Tied times are handled deterministically
  and exactly as R's multi-state ``survfit``: all event types (and censorings, which stay at
  risk at their own time) at one time form one transition matrix. lifelines'
  ``AalenJohansenFitter`` instead jitters ties of different types at random, so it is not used.
* **Variance**: infinitesimal jackknife (R's default for multi-state ``survfit``): for each
  subject the derivative of the estimate with respect to its case weight, U_i(t), and
  ``var = sum_i U_i(t)^2``. U_i is piecewise simple (common to everyone still at risk; fixed
  after a subject's exit up to a multiple of CIF_k(t)), so the sum is built with cumulative
  sums in O(n log n), never an n x T matrix.
* **Intervals**: R's default ``conf.type = "log"``: ``p * exp(+/- z se / p)``, upper limit
  truncated at 1, none where p = 0.

Comparing CIFs between groups (Gray's test, Fine-Gray, cause-specific Cox): :mod:`stormcohort.stats.finegray`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from stormcohort.stats._util import (
    ALL,
    as_time,
    complete_rows,
    group_levels,
    require_columns,
    z_value,
)

__all__ = ["aalen_johansen", "state_probabilities_at", "cumulative_incidence"]

EVENT_FREE = "event-free"

CURVE_COLUMNS = ["group", "time", "state", "n_risk", "n_event", "estimate", "std_err", "lcl", "ucl"]


def _aj_one_group(t: np.ndarray, cause: np.ndarray, causes: list, z: float) -> pd.DataFrame:
    """AJ estimates with IJ standard errors at every distinct time, for one group.

    ``cause`` holds 0 for censored and 1..K (index into ``causes``) for event types.
    """
    K = len(causes)
    times, inv = np.unique(t, return_inverse=True)
    m = len(times)
    exits = np.zeros((m, K + 1))  # exits[j, c]: subjects leaving at t_j with cause c (0 = censored)
    np.add.at(exits, (inv, cause), 1.0)
    n_out = exits.sum(axis=1)
    Y = np.cumsum(n_out[::-1])[::-1]  # at risk at t_j (time >= t_j)
    dk = exits[:, 1:]  # events by type
    d = dk.sum(axis=1)
    after = Y - n_out  # still at risk after t_j

    S = np.cumprod(1.0 - d / Y)
    S_prev = np.concatenate([[1.0], S[:-1]])
    F = np.cumsum(S_prev[:, None] * dk / Y[:, None], axis=0)  # m x K
    alive = Y > d
    with np.errstate(divide="ignore", invalid="ignore"):
        h_inc = np.where(alive, d / (Y * (Y - d)), 0.0)
    H = np.cumsum(h_inc)
    H_prev = np.concatenate([[0.0], H[:-1]])
    # IF on CIF_k for everyone at risk through t_j without leaving: A_k(t_j)
    A = np.cumsum(S_prev[:, None] * H_prev[:, None] * dk / Y[:, None] - S_prev[:, None] * dk / Y[:, None] ** 2, axis=0)
    # G = g_i(t_j) = IF_i P0(t_j) / P0(t_j) for a subject leaving at t_j: censored (c=0) or any event
    with np.errstate(divide="ignore", invalid="ignore"):
        G_cens = np.where(alive, H, 0.0)
        G_event = np.where(alive, H - 1.0 / (Y - d), 0.0)
    G = np.column_stack([G_cens] + [G_event] * K)  # m x (K+1): by exit cause

    var = np.zeros((m, K + 1))  # column 0 = P0, 1..K = CIF_k
    # P0: everyone still at risk has IF = S H; leavers IF = S(t) G_i
    sumG2 = np.cumsum((exits * G**2).sum(axis=1))
    var[:, 0] = S**2 * (after * H**2 + sumG2)
    for k in range(K):
        own = np.zeros((m, K + 1))
        own[:, k + 1] = S_prev / Y  # leaving with event k at t_j adds P0(t_j-) / Y_j
        C = A[:, [k]] + own - G * F[:, [k]]  # m x (K+1)
        sC2 = np.cumsum((exits * C**2).sum(axis=1))
        sCG = np.cumsum((exits * C * G).sum(axis=1))
        sG2 = np.cumsum((exits * G**2).sum(axis=1))
        Fk = F[:, k]
        var[:, k + 1] = after * A[:, k] ** 2 + sC2 + 2 * Fk * sCG + Fk**2 * sG2

    est = np.column_stack([S, F])
    se = np.sqrt(np.maximum(var, 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(est > 0, est, np.nan)
        lcl = p * np.exp(-z * se / p)
        ucl = np.minimum(p * np.exp(z * se / p), 1.0)
    states = [EVENT_FREE, *causes]
    n_event = np.column_stack([d, dk])
    frames = [
        pd.DataFrame(
            {
                "time": times,
                "state": s,
                "n_risk": Y.astype(np.int64),
                "n_event": n_event[:, i].astype(np.int64),
                "estimate": est[:, i],
                "std_err": se[:, i],
                "lcl": lcl[:, i],
                "ucl": ucl[:, i],
            }
        )
        for i, s in enumerate(states)
    ]
    return pd.concat(frames, ignore_index=True)


def _prepare(data, time, event, group, censored):
    require_columns(data, [time, event, group])
    d = complete_rows(data, [time, event, group])
    t = as_time(d[time], time)
    ev = d[event].to_numpy()
    is_cens = ev == censored
    causes = sorted(pd.unique(ev[~is_cens]).tolist())
    code = np.zeros(len(ev), dtype=np.int64)
    for i, c in enumerate(causes, start=1):
        code[ev == c] = i
    if group is None:
        g = np.full(len(d), ALL, dtype=object)
        levels = [ALL]
    else:
        g = d[group].to_numpy(dtype=object)
        levels = group_levels(d[group])
    return t, code, causes, g, levels


def aalen_johansen(
    data: pd.DataFrame,
    time: str,
    event: str,
    group: str | None = None,
    *,
    censored=0,
    conf_level: float = 0.95,
) -> pd.DataFrame:
    """Aalen-Johansen state probabilities at every distinct time, by group.

    ``event`` holds ``censored`` (default 0) for censoring and any other value for an event type
    (e.g. 1 = progression, 2 = death). Estimator: Aalen-Johansen; variance: infinitesimal
    jackknife; CI: log (R ``survfit(Surv(time, factor(event)) ~ group)`` defaults).

    Returns long format ``group, time, state, n_risk, n_event, estimate, std_err, lcl, ucl`` with
    ``state`` = ``"event-free"`` (P0, R's ``(s0)``) or the event value (its CIF).
    """
    z = z_value(conf_level)
    t, code, causes, g, levels = _prepare(data, time, event, group, censored)
    frames = []
    for lvl in levels:
        m = g == lvl
        f = _aj_one_group(t[m], code[m], causes, z)
        f.insert(0, "group", lvl)
        frames.append(f)
    if not frames:
        return pd.DataFrame(columns=CURVE_COLUMNS)
    out = pd.concat(frames, ignore_index=True)
    return out[CURVE_COLUMNS]


def state_probabilities_at(
    data: pd.DataFrame,
    time: str,
    event: str,
    times: Sequence[float],
    group: str | None = None,
    *,
    censored=0,
    conf_level: float = 0.95,
) -> pd.DataFrame:
    """Aalen-Johansen state probabilities at given times (right-continuous step function).

    Returns ``group, time, state, estimate, std_err, lcl, ucl``. Times after a group's last
    observation give NaN (R ``summary(fit, times=)`` omits them); before the first, the
    event-free probability is 1 and every CIF 0 (CI NaN for a zero CIF).
    """
    curve = aalen_johansen(data, time, event, group, censored=censored, conf_level=conf_level)
    return _at(curve, times)


def _at(curve: pd.DataFrame, times: Sequence[float]) -> pd.DataFrame:
    tt = np.asarray(times, dtype=float).ravel()
    frames = []
    for (lvl, state), c in curve.groupby(["group", "state"], sort=False):
        ct = c["time"].to_numpy()
        idx = np.searchsorted(ct, tt, side="right") - 1
        j = np.clip(idx, 0, len(ct) - 1)
        before, beyond = idx < 0, tt > ct[-1]
        start = 1.0 if state == EVENT_FREE else 0.0
        row = {"group": lvl, "time": tt, "state": state}
        for col, fill in (("estimate", start), ("std_err", 0.0), ("lcl", start or np.nan), ("ucl", start or np.nan)):
            v = np.where(before, fill, c[col].to_numpy()[j])
            row[col] = np.where(beyond, np.nan, v)
        frames.append(pd.DataFrame(row))
    cols = ["group", "time", "state", "estimate", "std_err", "lcl", "ucl"]
    return pd.concat(frames, ignore_index=True)[cols] if frames else pd.DataFrame(columns=cols)


def cumulative_incidence(
    data: pd.DataFrame,
    time: str,
    event: str,
    cause,
    group: str | None = None,
    *,
    times: Sequence[float] | None = None,
    censored=0,
    conf_level: float = 0.95,
) -> pd.DataFrame:
    """Tidy cumulative incidence of one ``cause``: ``group, time, n_risk, cif, cif_se, cif_lcl, cif_ucl``.

    Aalen-Johansen estimator, infinitesimal-jackknife variance, log CI (R survfit defaults).
    With ``times=None`` one row per distinct event time (of any type) per group; otherwise one
    row per requested time (step function; NaN after the group's last observation;
    ``n_risk`` is then the number still at risk at that time, time >= t).
    """
    curve = aalen_johansen(data, time, event, group, censored=censored, conf_level=conf_level)
    if cause not in set(curve["state"]) - {EVENT_FREE}:
        raise ValueError(f"cause {cause!r} not among the event values of column {event!r}")
    mine = curve.loc[curve["state"] == cause]
    if times is None:
        any_event = curve.loc[curve["state"] == EVENT_FREE, "n_event"].to_numpy() > 0
        out = mine.loc[any_event].copy()
    else:
        out = _at(mine, times)
        tt = out["time"].to_numpy()
        n_risk = np.zeros(len(out), dtype=np.int64)
        for lvl, c in mine.groupby("group", sort=False):
            sel = (out["group"] == lvl).to_numpy()
            ct, cn = c["time"].to_numpy(), c["n_risk"].to_numpy()
            nxt = np.searchsorted(ct, tt[sel], side="left")
            n_risk[sel] = np.where(nxt < len(ct), cn[np.minimum(nxt, len(ct) - 1)], 0)
        out["n_risk"] = n_risk
    out = out.rename(columns={"estimate": "cif", "std_err": "cif_se", "lcl": "cif_lcl", "ucl": "cif_ucl"})
    return out[["group", "time", "n_risk", "cif", "cif_se", "cif_lcl", "cif_ucl"]].reset_index(drop=True)
