"""Comparing cumulative incidence between groups: Gray's test, the Fine-Gray subdistribution
hazard model and the cause-specific Cox model, as R ``cmprsk`` and ``survival``.

* **Gray's test** (:func:`gray_test`; Gray 1988, R ``cmprsk::cuminc``'s ``Tests``, Fortran
  ``crstm``): K-sample test of equal CIFs of one cause. Score ``s_g = sum_t W(t) (d_g1(t) -
  d_1(t) R_g(t) / sum_h R_h(t))`` with ``R_g = Y_g (1 - F_g(t-)) / S_g(t-)`` and weight
  ``W = (1 - F(t-))^rho`` (``rho = 0``, R's default: the log-rank analogue for
  subdistributions), on the first K - 1 groups; its variance is cmprsk's own estimator, term
  for term (including its tie corrections); ``s' V^-1 s`` on K - 1 df. Strata add their scores
  and variances (``cuminc(strata=)``). The recursion over distinct times is written as
  cumulative sums over (times x groups x groups) arrays: no loop over times.
* **Fine-Gray** (:func:`fine_gray`; R ``cmprsk::crr``): proportional subdistribution hazards.
  Subjects who had the competing event stay in the risk set after their time with the weight
  ``G(u-) / G(T_i-)``, G the Kaplan-Meier of the censoring distribution (censorings as events,
  all failures as censored, one censoring group) read just before each time, as ``crr``.
  Tied failure times: Breslow (``crr``'s only rule). Newton-Raphson with step halving from 0 to
  full convergence (``crr`` stops at its ``gtol = 1e-6``; its estimates agree to ~1e-7).
  Variance: ``crr``'s sandwich ``I^-1 (sum_i (eta_i + psi_i)(eta_i + psi_i)') I^-1`` with
  ``eta_i`` the subject's score residual and ``psi_i`` the subject's effect on the score through
  the estimated G (Fine and Gray 1999, section 3); vectorised with cumulative sums (crr's
  Fortran is O(n^2)). Wald CIs ``exp(coef +/- z se)``.
* **Case weights** (``weights=``, e.g. the target-trial weights): each subject's terms are
  multiplied by its weight; G stays the *unweighted* censoring KM and the case weight
  multiplies the censoring weight, as R ``survival::finegray(weights=)`` followed by
  ``coxph(..., weights = fgwt, ties = "breslow")``, which gives the same coefficients. The
  variance is the same sandwich with ``w_i eta_i + psi_i`` (psi_i with weighted sums, G's
  influence unweighted), treating the weights as known (not re-estimated): robust to the
  weighting, and equal to crr's when all weights are equal. R's ``coxph(robust = TRUE)`` on the
  ``finegray`` data omits ``psi`` (the uncertainty in G) and is slightly different.
* **Cause-specific Cox** (:func:`cause_specific_cox`): the event of interest as the event and
  every other outcome as censoring. Unweighted: :func:`stormcohort.stats.cox.cox_ph` (Efron,
  R ``coxph``). Weighted: the weighted Efron partial likelihood as R ``coxph(weights = w)``,
  with R's robust sandwich variance ``I^-1 (sum_i w_i^2 r_i r_i') I^-1`` from Efron score
  residuals r_i (R ``coxph(..., weights = w, robust = TRUE)``), by the same code as
  :func:`stormcohort.stats.weighted.weighted_cox` (``weighted._wefron``). lifelines'
  ``robust=True`` is not used: it ignores ties in the residuals (off from R by ~3e-5 in the
  se on mgus2).
* **Not estimable** with a reason instead of a crash: no observations, fewer than two groups,
  no events of the cause, a constant covariate, a 0/1 covariate with no events of the cause at
  one of its values (the (sub)distribution hazard ratio is infinite), collinear covariates, a
  singular variance, non-convergence. Gray's test itself is valid when one group has no
  events of the cause (its CIF is 0) and is then reported.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import special

from stormcohort.stats._util import (
    as_time,
    complete_rows,
    design_matrix,
    group_levels,
    require_columns,
    wald_columns,
)

__all__ = ["GrayTest", "FineGrayResult", "gray_test", "fine_gray", "cause_specific_cox"]

TABLE_COLUMNS = ["term", "coef", "se", "hr", "hr_lcl", "hr_ucl", "z", "p", "n", "events"]
_EPS = 1e-9  # R coxph.control(eps): the infinite-coefficient rule
_TOL = 1e-10  # Newton: stop when the largest step is below this
_MAX_ITER = 50


def _chisq_sf(x: float, df: int) -> float:
    return float(special.chdtrc(df, x))


def _codes(ev: np.ndarray, cause, censored) -> np.ndarray:
    """0 censored, 1 the cause of interest, 2 any other event."""
    return np.where(ev == censored, 0, np.where(ev == cause, 1, 2)).astype(np.int64)


# --------------------------------------------------------------------------- Gray's test


@dataclass(frozen=True)
class GrayTest:
    """Gray's K-sample test of equal cumulative incidence of ``cause`` across ``groups``.

    ``statistic`` is chi-square on ``df`` = K - 1 (NaN when not estimable, with ``reason``);
    ``score`` and ``variance`` are for the first K - 1 groups (cmprsk's ``crstm`` output).
    ``events`` counts the cause's events per group; ``n`` patients per group.
    """

    cause: object
    estimable: bool
    reason: str | None
    statistic: float
    df: int
    p: float
    groups: tuple
    n: dict
    events: dict
    rho: float
    score: np.ndarray = field(repr=False, default=None)
    variance: np.ndarray = field(repr=False, default=None)


def _crst(t: np.ndarray, m: np.ndarray, g: np.ndarray, ng: int, rho: float):
    """cmprsk's ``crst`` for one stratum: score (ng-1) and variance ((ng-1) x (ng-1)).

    ``m``: 0 censored, 1 cause, 2 other; ``g``: 0..ng-1. Every per-time quantity of the Fortran
    recursion is an array over (distinct time, group); the running sums are cumulative sums.
    """
    ng1 = ng - 1
    times, inv = np.unique(t, return_inverse=True)
    T = len(times)
    cnt = np.zeros((T, ng, 3))
    np.add.at(cnt, (inv, g, m), 1.0)
    d1, d2 = cnt[:, :, 1], cnt[:, :, 2]
    n_out = cnt.sum(axis=2)
    rs = np.cumsum(n_out[::-1], axis=0)[::-1]  # at risk (time >= t) per group
    at = rs > 0
    safe_rs = np.where(at, rs, 1.0)
    skm = np.cumprod(np.where(at, 1.0 - (d1 + d2) / safe_rs, 1.0), axis=0)  # right-continuous KM
    skmm = np.vstack([np.ones((1, ng)), skm[:-1]])  # left-continuous
    f1 = np.cumsum(np.where(at, skmm * d1 / safe_rs, 0.0), axis=0)  # CIF of the cause
    f1m = np.vstack([np.zeros((1, ng)), f1[:-1]])
    nd1, nd2 = d1.sum(axis=1), d2.sum(axis=1)
    active = (nd1 + nd2) > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        t1 = np.where(at, rs / skmm, 0.0)  # R_g-hat in the paper's notation
        tr = t1.sum(axis=1)
        tq = np.where(at, rs * (1.0 - f1m) / skmm, 0.0).sum(axis=1)
        f_inc = np.where(active & (tr > 0), nd1 / tr, 0.0)
    f = np.cumsum(f_inc)  # pooled CIF of the cause
    fm = np.concatenate([[0.0], f[:-1]])
    fb = np.where(active, (1.0 - fm) ** rho, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        a = fb[:, None, None] * (t1[:, :, None] * (np.eye(ng)[None] - t1[:, None, :] / tr[:, None, None]))
        a = np.where(np.isfinite(a), a, 0.0)
        scale = np.where(active & (nd1 > 0), nd1 / (tr * (1.0 - fm)), 0.0)
        c_inc = np.where(a != 0, a * scale[:, None, None], 0.0)
    C = np.cumsum(c_inc, axis=0)  # c(i, k) after each time
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = nd1[:, None] * rs * (1.0 - f1m) / (skmm * tq[:, None])
        s_t = np.where(at & active[:, None], fb[:, None] * (d1 - expected), 0.0)
    s = s_t[:, :ng1].sum(axis=0)

    a1, C1 = a[:, :ng1, :], C[:, :ng1, :]
    # failures from the cause (nd1 > 0), groups at risk
    with np.errstate(divide="ignore", invalid="ignore"):
        on1 = (nd1 > 0)[:, None] & at
        t4 = np.where(skm > 0, 1.0 - (1.0 - f[:, None]) / skm, 1.0)
        t5 = np.where((nd1 > 1)[:, None], 1.0 - (nd1[:, None] - 1.0) / (tr[:, None] * skmm - 1.0), 1.0)
        t3 = np.where(on1, t5 * skmm * nd1[:, None] / (tr[:, None] * safe_rs), 0.0)
    t4 = np.where(on1, t4, 0.0)
    v3 = (t4**2 * t3).sum(axis=0)
    B = a1 - t4[:, None, :] * C1  # (T, ng1, ng)
    v2 = (B * (t4 * t3)[:, None, :]).sum(axis=0)
    v = np.einsum("tik,tjk,tk->ij", B, B, t3)
    # failures from other causes (nd2 > 0), groups with skm > 0 and such failures
    with np.errstate(divide="ignore", invalid="ignore"):
        on2 = (nd2 > 0)[:, None] & (skm > 0) & (d2 > 0)
        u4 = np.where(on2, (1.0 - f[:, None]) / skm, 0.0)
        u5 = np.where(d2 > 1, 1.0 - (d2 - 1.0) / (safe_rs - 1.0), 1.0)
        u3 = np.where(on2, u5 * skmm**2 * d2 / safe_rs**2, 0.0)
    v3 = v3 + (u4**2 * u3).sum(axis=0)
    v2 = v2 - (C1 * (u4**2 * u3)[:, None, :]).sum(axis=0)
    v = v + np.einsum("tik,tjk,tk->ij", C1, C1, u4**2 * u3)
    Cend = C1[-1]
    v = v + (Cend * v3[None, :]) @ Cend.T + Cend @ v2.T + v2 @ Cend.T
    return s, v


def gray_test(
    data: pd.DataFrame,
    time: str,
    event: str,
    group: str,
    cause,
    *,
    strata: str | None = None,
    rho: float = 0.0,
    censored=0,
) -> GrayTest:
    """Gray's test of equal CIFs of ``cause`` across the levels of ``group`` (R ``cuminc``).

    ``event`` holds ``censored`` (default 0) or an event value; every value other than ``cause``
    is a competing event. Groups in R factor order (levels with no rows are dropped, as
    ``cuminc``); rows with a missing time, event, group or stratum are dropped. Not estimable
    (NaN, with the reason) with fewer than two non-empty groups, no events of ``cause`` or a
    singular variance (R returns -1 there).
    """
    require_columns(data, [time, event, group, strata])
    d = complete_rows(data, [time, event, group, strata])
    t = as_time(d[time], time)
    ev = d[event].to_numpy()
    m = _codes(ev, cause, censored)
    levels = group_levels(d[group])
    gvals = d[group].to_numpy(dtype=object)
    g = np.zeros(len(d), dtype=np.int64)
    for i, lvl in enumerate(levels):
        g[gvals == lvl] = i
    n = {lvl: int((gvals == lvl).sum()) for lvl in levels}
    events = {lvl: int(((gvals == lvl) & (m == 1)).sum()) for lvl in levels}
    ng = len(levels)

    def out(reason, stat=np.nan, s=None, v=None):
        df = max(ng - 1, 1)
        p = _chisq_sf(stat, df) if np.isfinite(stat) else np.nan
        return GrayTest(cause=cause, estimable=reason is None, reason=reason, statistic=float(stat), df=df, p=p,
                        groups=tuple(levels), n=n, events=events, rho=float(rho), score=s, variance=v)

    if len(d) == 0:
        return out("no complete observations")
    if ng < 2:
        return out(f"only one group ({levels[0]}) has patients" if ng else "no groups")
    if int((m == 1).sum()) == 0:
        return out(f"no events of cause {cause!r} in any group")
    s = np.zeros(ng - 1)
    v = np.zeros((ng - 1, ng - 1))
    if strata is None:
        s, v = _crst(t, m, g, ng, rho)
    else:
        st = d[strata].to_numpy(dtype=object)
        for lvl in group_levels(d[strata]):
            k = st == lvl
            sk, vk = _crst(t[k], m[k], g[k], ng, rho)
            s, v = s + sk, v + vk
    # R: qr(v); statistic only when of full rank
    if not np.all(np.isfinite(v)) or np.linalg.matrix_rank(v) < ng - 1:
        return out("variance matrix of the scores is singular", s=s, v=v)
    stat = float(s @ np.linalg.solve(v, s))
    return out(None, stat, s, v)


# --------------------------------------------------------------------------- shared checks


def _design_problem(X: np.ndarray, columns: list[str], terms: dict, e: np.ndarray, what: str) -> str | None:
    """Why the design cannot give a finite estimate, or None (the checks of stats.cox.cox_ph)."""
    single = [var for var, cols in terms.items() if not cols]
    if single:
        return f"covariate {single[0]!r} has a single level"
    for j, c in enumerate(columns):
        vals = np.unique(X[:, j])
        if len(vals) == 1:
            return f"covariate {c!r} is constant"
        if len(vals) == 2:
            for val in vals:
                if e[X[:, j] == val].sum() == 0:
                    return f"no {what} where {c} == {val:g} (monotone likelihood: coefficient is infinite)"
    if np.linalg.matrix_rank(np.column_stack([np.ones(len(X)), X])) < len(columns) + 1:
        return "covariates are linearly dependent (collinear design)"
    return None


def _weights(d: pd.DataFrame, weights: str | None) -> np.ndarray:
    if weights is None:
        return np.ones(len(d))
    w = pd.to_numeric(d[weights], errors="coerce").to_numpy(dtype=float)
    if not np.all(np.isfinite(w)) or (w < 0).any():
        raise ValueError(f"column {weights!r} must hold finite non-negative weights")
    return w


def _newton(fun, p: int):
    """Maximise a concave log-likelihood ``fun(b) -> (loglik, score, info)`` from 0 by Newton
    steps with step halving; returns ``(b, (loglik, score, info), converged, iterations)``."""
    b = np.zeros(p)
    cur = fun(b)
    for it in range(1, _MAX_ITER + 1):
        try:
            step = np.linalg.solve(cur[2], cur[1])
        except np.linalg.LinAlgError:
            return b, cur, False, it
        if not np.all(np.isfinite(step)):
            return b, cur, False, it
        for _ in range(30):
            new = fun(b + step)
            if np.isfinite(new[0]) and new[0] >= cur[0] - 1e-12 * max(1.0, abs(cur[0])):
                break
            step = step / 2
        else:
            return b, cur, False, it
        b, cur = b + step, new
        if np.max(np.abs(step)) < _TOL:
            return b, cur, True, it
    return b, cur, False, _MAX_ITER


def _table(columns, beta, var, conf_level, n, events) -> pd.DataFrame:
    w = wald_columns(beta, np.sqrt(np.diag(var)), conf_level)
    return pd.DataFrame({"term": columns, "coef": w["coef"], "se": w["se"], "hr": np.exp(w["coef"]),
                         "hr_lcl": np.exp(w["lcl"]), "hr_ucl": np.exp(w["ucl"]), "z": w["z"], "p": w["p"],
                         "n": n, "events": events})[TABLE_COLUMNS]


def _empty_table(columns, n, events) -> pd.DataFrame:
    table = pd.DataFrame({c: [np.nan] * len(columns) for c in TABLE_COLUMNS})
    table["term"] = list(columns)
    table["n"], table["events"] = n, events
    return table[TABLE_COLUMNS]


# --------------------------------------------------------------------------- Fine-Gray


@dataclass(frozen=True)
class FineGrayResult:
    """A Fine-Gray fit of the subdistribution hazard of ``cause``.

    ``table``: ``term, coef, se, hr, hr_lcl, hr_ucl, z, p, n, events`` (``hr`` = subdistribution
    hazard ratio; all NaN but n/events when not estimable). ``events``: events of the cause,
    ``competing``: other events, ``censored``: censorings (counts of rows, not weights).
    ``weighted``: case weights were given (variance: see the module doc). ``loglik`` is the
    log pseudo-partial likelihood (crr's ``loglik``; unweighted fits only comparable).
    """

    cause: object
    estimable: bool
    reason: str | None
    table: pd.DataFrame
    n: int
    events: int
    competing: int
    censored: int
    weighted: bool
    loglik: float = np.nan
    loglik_null: float = np.nan
    iterations: int = 0
    variance: np.ndarray | None = field(default=None, repr=False)
    terms: dict[str, list[str]] = field(default_factory=dict)


def _censoring_km_left(t: np.ndarray, code: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Kaplan-Meier of the censoring distribution (censorings are the events, every failure is
    censored; censorings and failures at one time share the risk set) as a left-continuous
    function: returns the distinct times and G(time-) there (crr's ``uuu``)."""
    times, inv = np.unique(t, return_inverse=True)
    n_out = np.bincount(inv, minlength=len(times)).astype(float)
    n_cens = np.bincount(inv, weights=(code == 0).astype(float), minlength=len(times))
    at_risk = np.cumsum(n_out[::-1])[::-1]
    G = np.cumprod(1.0 - n_cens / at_risk)
    left = np.concatenate([[1.0], G[:-1]])
    if len(times) and times[0] == 0:
        # crr reads G at time * (1 - 100 eps), which for time 0 is 0 itself: G(0), not G(0-)
        left[0] = G[0]
    return times, left


class _FG:
    """Fine-Gray pieces on one data set: risk sets, likelihood, score, information, variance."""

    def __init__(self, X, t, code, w):
        self.X = X - X.mean(axis=0)  # centring changes nothing but the rounding
        self.t, self.code, self.w = t, code, w
        times, G_left = _censoring_km_left(t, code)
        self.G_i = G_left[np.searchsorted(times, t)]  # G(t_i-)
        fail = code == 1
        self.uft = np.unique(t[fail])
        D = len(self.uft)
        self.D = D
        self.G_u = G_left[np.searchsorted(times, self.uft)]  # G(u_j-)
        # bucket: number of failure times <= t_i; at risk with weight 1 at failure times j < b_i
        self.b = np.searchsorted(self.uft, t, side="right")
        self.j_fail = np.searchsorted(self.uft, t[fail])
        self.fail = fail
        self.comp = code == 2
        self.dw = np.bincount(self.j_fail, weights=w[fail], minlength=D)

    def sums(self, beta):
        """S0 (D), S1 (D x p), S2 (D x p x p) over the weighted subdistribution risk sets."""
        X, w, b, D = self.X, self.w, self.b, self.D
        eta = X @ beta
        r = np.exp(eta)
        wr = w * r
        base = [wr, wr[:, None] * X, (wr[:, None] * X)[:, :, None] * X[:, None, :]]
        comp = self.comp
        out = []
        for v in base:
            flat = v.reshape(len(v), -1)
            tot = np.empty((D + 1, flat.shape[1]))
            extra = np.empty((D + 1, flat.shape[1]))
            wc = flat[comp] / self.G_i[comp][:, None]
            for k in range(flat.shape[1]):
                tot[:, k] = np.bincount(b, weights=flat[:, k], minlength=D + 1)
                extra[:, k] = np.bincount(b[comp], weights=wc[:, k], minlength=D + 1)
            risk = np.cumsum(tot[::-1], axis=0)[::-1][1:]  # time >= u_j: buckets j+1..D
            late = np.cumsum(extra, axis=0)[:D]  # competing failures before u_j: buckets 0..j
            out.append((risk + self.G_u[:, None] * late).reshape((D, *v.shape[1:])))
        S0, S1, S2 = out[0], out[1], out[2]
        return eta, r, S0, S1, S2

    def fit_pieces(self, beta):
        eta, r, S0, S1, S2 = self.sums(beta)
        fail, dw = self.fail, self.dw
        wf = self.w[fail]
        loglik = float((wf * eta[fail]).sum() - (dw * np.log(S0)).sum())
        xbar = S1 / S0[:, None]
        score = (wf[:, None] * self.X[fail]).sum(axis=0) - (dw[:, None] * xbar).sum(axis=0)
        V = S2 / S0[:, None, None] - xbar[:, :, None] * xbar[:, None, :]
        info = (dw[:, None, None] * V).sum(axis=0)
        return loglik, score, info

    def influence(self, beta, with_psi=True):
        """Each subject's term ``w_i eta_i + psi_i`` of the score (n x p), crr's ``crrvv``;
        ``with_psi=False``: ``w_i eta_i`` only (G taken as known: R coxph's robust variance on
        ``finegray`` data, used in the tests)."""
        X, t, code, w = self.X, self.t, self.code, self.w
        eta, r, S0, S1, _ = self.sums(beta)
        xbar = S1 / S0[:, None]
        a = self.dw / S0  # dLambda-hat at each failure time (weighted)
        Bv = a[:, None] * xbar
        # eta_i: dN part + compensator over the subdistribution risk set
        res = np.zeros_like(X)
        res[self.fail] = X[self.fail] - xbar[self.j_fail]
        A = np.concatenate([[0.0], np.cumsum(a)])  # sum over j < k
        Bc = np.vstack([np.zeros((1, X.shape[1])), np.cumsum(Bv, axis=0)])
        res -= r[:, None] * (X * A[self.b][:, None] - Bc[self.b])
        aG, BG = a * self.G_u, Bv * self.G_u[:, None]
        AGt = np.concatenate([np.cumsum(aG[::-1])[::-1], [0.0]])  # sum over j >= k
        BGt = np.vstack([np.cumsum(BG[::-1], axis=0)[::-1], np.zeros((1, X.shape[1]))])
        comp = self.comp
        rc = r[comp] / self.G_i[comp]
        res[comp] -= rc[:, None] * (X[comp] * AGt[self.b[comp]][:, None] - BGt[self.b[comp]])
        total = w[:, None] * res
        # psi_i: effect through the censoring KM. q(c) at each distinct censoring time c
        cens = code == 0
        if with_psi and cens.any() and comp.any():
            ctimes, n_c = np.unique(t[cens], return_counts=True)
            Y = len(t) - np.searchsorted(np.sort(t), ctimes, side="left")  # time >= c
            order = np.argsort(t[comp], kind="stable")
            tc = t[comp][order]
            e0 = (w[comp] * rc)[order]
            E0 = np.concatenate([[0.0], np.cumsum(e0)])
            E1 = np.vstack([np.zeros((1, X.shape[1])), np.cumsum(e0[:, None] * X[comp][order], axis=0)])
            kc = np.searchsorted(tc, ctimes, side="left")  # competing failures with t < c
            jc = np.searchsorted(self.uft, ctimes, side="left")  # failure times u >= c
            q = E1[kc] * AGt[jc][:, None] - E0[kc][:, None] * BGt[jc]
            step = n_c[:, None] * q / (Y**2)[:, None]
            cum = np.cumsum(step, axis=0)
            ci = np.searchsorted(ctimes, t, side="right")  # censoring times <= t_i
            psi = -np.vstack([np.zeros((1, X.shape[1])), cum])[ci]
            own = np.searchsorted(ctimes, t[cens])
            psi[cens] += q[own] / Y[own][:, None]
            total = total + psi
        return total


def fine_gray(
    data: pd.DataFrame,
    time: str,
    event: str,
    covariates: Sequence[str],
    cause,
    weights: str | None = None,
    *,
    censored=0,
    conf_level: float = 0.95,
) -> FineGrayResult:
    """Fine-Gray model of the subdistribution hazard of ``cause`` (R ``cmprsk::crr``).

    ``event`` holds ``censored`` (default 0) or an event value; values other than ``cause`` are
    competing events. ``covariates`` as :func:`stats.cox.cox_ph` (numeric as is, others
    treatment-coded, first level the reference). ``weights``: optional column of non-negative
    case weights (module doc: G unweighted, sandwich variance treating the weights as known).
    Rows with a missing value are dropped. Never raises for data problems: not estimable with a
    reason instead.
    """
    covariates = list(covariates)
    if not covariates:
        raise ValueError("fine_gray needs at least one covariate")
    require_columns(data, [time, event, *covariates, weights])
    d = complete_rows(data, [time, event, *covariates, weights])
    X_df, terms = design_matrix(d, covariates)
    columns = list(X_df.columns)
    t = as_time(d[time], time)
    ev = d[event].to_numpy()
    if cause == censored:
        raise ValueError(f"cause {cause!r} is the censoring code")
    code = _codes(ev, cause, censored)
    w = _weights(d, weights)
    X = X_df.to_numpy(dtype=float)
    n, events = len(d), int((code == 1).sum())
    counts = dict(n=n, events=events, competing=int((code == 2).sum()), censored=int((code == 0).sum()))

    def not_estimable(reason, **extra):
        return FineGrayResult(cause=cause, estimable=False, reason=reason, table=_empty_table(columns, n, events),
                              weighted=weights is not None, terms=terms, **counts, **extra)

    if n == 0:
        return not_estimable("no complete observations")
    if events == 0:
        return not_estimable(f"no events of cause {cause!r}")
    problem = _design_problem(X, columns, terms, (code == 1).astype(int), f"events of cause {cause!r}")
    if problem:
        return not_estimable(problem)
    fg = _FG(X, t, code, w)
    if fg.dw.sum() <= 0:
        return not_estimable(f"every event of cause {cause!r} has weight 0")
    null = fg.fit_pieces(np.zeros(len(columns)))
    beta, (loglik, score, info), converged, it = _newton(fg.fit_pieces, len(columns))
    if not converged:
        return not_estimable("did not converge (possible separation)", loglik_null=null[0], iterations=it)
    try:
        inv = np.linalg.inv(info)
    except np.linalg.LinAlgError:
        return not_estimable("information matrix is singular at the estimate", loglik_null=null[0])
    infs = np.abs(inv @ score)
    if ((infs > _EPS) & (infs > np.sqrt(_EPS) * np.abs(beta))).any():
        return not_estimable("coefficient may be infinite (separation)", loglik_null=null[0])
    U = fg.influence(beta)
    var = inv @ (U.T @ U) @ inv
    if not (np.all(np.isfinite(beta)) and np.all(np.isfinite(var))):
        return not_estimable("numeric overflow in the fit", loglik_null=null[0])
    return FineGrayResult(cause=cause, estimable=True, reason=None,
                          table=_table(columns, beta, var, conf_level, n, events), weighted=weights is not None,
                          loglik=loglik, loglik_null=null[0], iterations=it, variance=var, terms=terms, **counts)


# --------------------------------------------------------------------------- cause-specific Cox


def cause_specific_cox(
    data: pd.DataFrame,
    time: str,
    event: str,
    covariates: Sequence[str],
    cause,
    weights: str | None = None,
    *,
    censored=0,
    conf_level: float = 0.95,
):
    """Cause-specific Cox model of ``cause`` (other events and censoring censored).

    Unweighted: :func:`stats.cox.cox_ph` (Efron; model variance; R ``coxph(Surv(time, event ==
    cause) ~ ...)``). With ``weights``: weighted Efron fit and R's robust sandwich variance
    (R ``coxph(..., weights = w, robust = TRUE)``); its ``tests`` hold the robust Wald test
    only, and ``concordance`` is NaN. Returns a :class:`stats.cox.CoxResult`.
    """
    from stormcohort.stats.cox import CoxResult, cox_ph
    from stormcohort.stats.weighted import _wefron

    covariates = list(covariates)
    if cause == censored:
        raise ValueError(f"cause {cause!r} is the censoring code")
    require_columns(data, [time, event, *covariates, weights])
    flag = "__cause_event"
    while flag in data.columns:
        flag += "_"
    d = complete_rows(data, [time, event, *covariates, weights]).copy()
    d[flag] = (d[event].to_numpy() == cause).astype(np.int64)
    if weights is None:
        return cox_ph(d, time, flag, covariates, conf_level=conf_level)

    if not covariates:
        raise ValueError("cause_specific_cox needs at least one covariate")
    X_df, terms = design_matrix(d, covariates)
    columns = list(X_df.columns)
    t = as_time(d[time], time)
    e = d[flag].to_numpy()
    w = _weights(d, weights)
    X = X_df.to_numpy(dtype=float)
    n, events = len(d), int(e.sum())
    p = len(columns)
    tests = pd.DataFrame({"test": ["likelihood_ratio", "wald", "score"], "statistic": np.nan, "df": p, "p": np.nan})

    def result(reason, table=None, tests=tests, loglik=np.nan, loglik_null=np.nan):
        return CoxResult(estimable=reason is None, reason=reason,
                         table=table if table is not None else _empty_table(columns, n, events), tests=tests,
                         concordance=np.nan, n=n, events=events, n_parameters=p,
                         events_per_variable=events / p if p else np.nan, loglik=loglik, loglik_null=loglik_null,
                         warnings=("weighted fit: robust (sandwich) variance",) if reason is None else (),
                         terms=terms)

    if n == 0:
        return result("no complete observations")
    if events == 0:
        return result("no events")
    if not (w[e == 1] > 0).any():
        return result("no events with a positive weight")
    problem = _design_problem(X, columns, terms, e, "events")
    if problem:
        return result(problem)

    def fun(beta):
        pieces = _wefron(X, t, e, w, beta)
        return pieces.loglik, pieces.score, pieces.info

    null = fun(np.zeros(p))
    beta, (loglik, score, info), converged, _ = _newton(fun, p)
    if not converged:
        return result("did not converge (possible separation)", loglik_null=null[0])
    try:
        inv = np.linalg.inv(info)
    except np.linalg.LinAlgError:
        return result("information matrix is singular at the estimate", loglik_null=null[0])
    infs = np.abs(inv @ score)
    if ((infs > _EPS) & (infs > np.sqrt(_EPS) * np.abs(beta))).any():
        return result("loglik converged before a coefficient; coefficient may be infinite (separation)",
                      loglik_null=null[0])
    res = _wefron(X, t, e, w, beta, residuals=True).resid * w[:, None]
    var = inv @ (res.T @ res) @ inv
    wald = float(beta @ np.linalg.solve(var, beta))
    tests = tests.copy()
    tests.loc[tests["test"] == "wald", ["statistic", "p"]] = [wald, _chisq_sf(wald, p)]
    return result(None, _table(columns, beta, var, conf_level, n, events), tests, loglik, null[0])
