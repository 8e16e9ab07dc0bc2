"""Target-trial emulation of "start IV anakinra within G days" vs "stay on SC through day G" by
clone-censor-weight (CCW), with the landmark and time-varying data of the sensitivity analyses.

Input: one row per patient: ``time`` (days from time zero, the first anakinra dose, to death or
censoring), ``event`` (1 death, 0 censored), ``iv_start`` (days from time zero to the first IV
dose: 0 when the first dose is IV, missing when never IV; never after ``time``) and baseline
covariates. The grace period G (days, >= 0) defines the strategies:

* **IV**: IV started by day G (``iv_start <= G``). G = 0: the first dose is IV.
* **SC**: no IV through day G (``iv_start > G`` or never). A switch to IV after G is not a
  deviation. G = 0: the first dose is SC.

**Time convention.** Times are days; a route decision at time u (the first dose at 0, an IV
start, the end of the grace period) comes before the deaths and censorings at u. So a death on
the day IV starts is a death on IV, and a clone that deviates at u is not at risk at u.

**Cloning and artificial censoring** (:func:`clone`; Hernán 2018, BMJ 360:k182, "How to estimate
the effect of treatment duration on survival outcomes using observational data"; Maringe et al.
2020, Int J Epidemiol 49:1719, "Reflection on modern methods: trial emulation in the presence of
immortal-time bias ..."). Every patient is cloned into both arms at time zero:

* SC clone: censored at ``iv_start`` when ``iv_start <= G`` (an IV first dose: censored at 0,
  so it contributes nothing); otherwise followed to its own death or censoring, whatever happens
  after G.
* IV clone: censored at G when the patient had no IV by G and was still followed at G
  (``time >= G``); otherwise (IV by G, or death/censoring before G without IV) followed to its
  own death or censoring.
* A patient who dies or is censored before G without IV is consistent with both strategies: both
  clones are uncensored, and the death counts in both arms (the grace-period convention).

**Weights** (inverse probability of remaining uncensored, baseline covariates X; constant after
G). Each arm is weighted by the model of its own censoring:

* SC arm: censoring happens at the IV starts u_1 < ... < u_K observed in [0, G] (the decision
  days). A pooled (discrete-time) logistic model gives the hazard of starting IV at u_k among
  patients at risk of starting then (no IV before u_k, followed at u_k: ``time >= u_k``):
  ``logit h_k(X) = a_k + X b`` (one intercept per decision day, common slopes). An SC clone's
  weight for deaths at t is ``1 / prod_{u_k <= t} (1 - h_k(X))``: deaths before G are weighted
  by the probability of having stayed on SC up to them, so they are neither dropped nor
  over-counted. With G = 0 this is the propensity of an IV first dose.
* IV arm: the only censoring is at G, of the clones followed at G without IV. A logistic model
  of IV by G among the patients followed at G (``time >= G``) gives ``p(X)``; IV clones have
  weight 1 before G (no IV clone is censored before G, so deaths before G need no weight) and
  ``1 / p(X)`` from G on. With G = 0 this is the same model as the SC arm's.
* Stabilised weights (default) multiply by the same probabilities without covariates (crude
  proportions). They leave the Kaplan-Meier estimates unchanged (a constant factor in every risk
  set of an arm) and change only the reference Cox model.
* ``covariates=()`` gives the covariate-free weights (1 / crude proportion; stabilised: 1).
* Fits: ML logistic (statsmodels ``Logit``, via :func:`~stormcohort.stats.firth.ml_logistic`);
  when that is not estimable (separation, non-convergence) Firth's penalised logistic regression
  (:func:`~stormcohort.stats.firth.firth_logistic`), with a note. A decision day where no
  patient at risk started IV does not occur in the data; one where every patient at risk
  started IV has ``h = 1`` exactly (the ML limit; the SC arm is then empty after it): neither
  needs a fit. A covariate constant among the modelled rows is left out of that model (note).

**Estimates**: weighted Kaplan-Meier per arm (weighted numbers at risk and deaths at each death
time), risks ``1 - S(t)`` at the requested days (NaN for a day after an arm's last follow-up, as
R's ``summary.survfit``), risk difference IV - SC and risk ratio IV / SC; for reference, the
weighted Cox hazard ratio of the IV arm: Efron ties as R ``coxph`` with weights, the weights in
force per row (rows split at the decision days, left-truncated), robust sandwich variance
clustered on the patient (each patient appears twice) from R's Efron score residuals. It is
computed here, vectorised, for the one term (equal to lifelines ``CoxPHFitter`` with
``entry_col``/``weights_col``, and to its clustered robust se where lifelines' is valid: its
robust variance is a Python loop over rows, minutes at 100,000 patients, and ignores entry
times).

**Bootstrap**: patients (not clones) are resampled with replacement, then cloned, weighted and
estimated again; percentile intervals. A resample is the original patients with frequency
counts, so each replicate reuses the clone structure: the censoring models are fitted for a
batch of replicates at once (vectorised Newton-Raphson giving statsmodels' ML estimate, started
from the full data's) and the weighted Kaplan-Meier sums of all replicates are one sparse matrix
product. A replicate that pass flags (separation by a binary covariate, no convergence, fitted
probabilities of 0 or 1) gets what ``ml_logistic`` / ``firth_logistic`` would give it, also
vectorised (:func:`_ml_or_firth`: their rank check, statsmodels' Newton-Raphson from 0 and its
checks, then :func:`~stormcohort.stats.firth.firth_batch`), without a model fit per replicate. A
replicate where an arm is empty, has no deaths, or whose weights cannot be estimated is skipped
and counted by reason. The same ``seed`` gives byte-identical results.

**Not estimable** (``estimable = False`` with the ``reason``, never an exception for data
problems): no patients, no patient on IV by G, no patient without IV by G, no death in an arm,
or weights that cannot be estimated.

**Sensitivity analyses**: :func:`landmark` (patients followed at day G, exposure = IV by G,
time from G) and :func:`start_stop` (route as a time-varying exposure, rows split at the first
IV dose) with :func:`time_varying_cox` (lifelines ``CoxTimeVaryingFitter``, Efron ties; the
Cox model of :mod:`~stormcohort.stats.cox` has no start-stop form).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.special import expit

from stormcohort.stats._util import (
    ALL,
    as_event,
    as_time,
    complete_rows,
    design_matrix,
    group_levels,
    require_columns,
    wald_columns,
    z_value,
)

__all__ = [
    "TargetTrialResult",
    "TimeVaryingCoxResult",
    "clone",
    "clone_censor_weight",
    "landmark",
    "start_stop",
    "time_varying_cox",
    "weighted_kaplan_meier",
]

ARMS = ("IV", "SC")  # arm 0 and arm 1 internally
CLONE_COLUMNS = ["patient", "arm", "time", "event", "deviated"]
RISK_COLUMNS = ["arm", "day", "risk", "risk_lcl", "risk_ucl", "n_risk", "n_risk_weighted", "n_boot"]
CONTRAST_COLUMNS = ["day", "risk_iv", "risk_sc", "rd", "rd_lcl", "rd_ucl", "rr", "rr_lcl", "rr_ucl", "n_boot_rd",
                    "n_boot_rr"]
CURVE_COLUMNS = ["arm", "time", "n_risk", "n_event", "surv"]
COX_COLUMNS = ["term", "coef", "se", "hr", "hr_lcl", "hr_ucl", "z", "p"]
WEIGHT_COLUMNS = ["arm", "clones", "deviated", "events", "at_risk_at_grace", "weight_min", "weight_mean",
                  "weight_max", "model", "method"]
MODEL_COLUMNS = ["model", "term", "coef"]
TV_COLUMNS = ["term", "coef", "se", "hr", "hr_lcl", "hr_ucl", "z", "p"]

_SEP_LEVELS = 10  # covariates with at most this many values get ml_logistic's separation check
_CHUNK_CELLS = 4_000_000  # replicates x rows per bootstrap batch (memory ~ a few x 8 x this bytes)

NO_IV = "no patient started IV by day {g:g}"
NO_SC = "every patient started IV by day {g:g}: no patient followed the SC strategy"
NO_DEATHS = "no deaths in the {arm} arm"
NO_WEIGHTS = "weights could not be estimated: {why}"


# --------------------------------------------------------------------------- input


@dataclass(frozen=True)
class _Data:
    pos: np.ndarray  # positions of the kept rows in the input
    patient: pd.Index
    t: np.ndarray
    e: np.ndarray
    v: np.ndarray  # NaN = never IV
    X: np.ndarray  # n x p
    names: list[str]


def _prepare(data, time, event, iv_start, covariates) -> _Data:
    covariates = list(covariates)
    require_columns(data, [time, event, iv_start, *covariates])
    pos = np.flatnonzero(data[[time, event, *covariates]].notna().all(axis=1).to_numpy())
    d = data.iloc[pos]
    t = as_time(d[time], time)
    e = as_event(d[event], event)
    v = pd.to_numeric(d[iv_start], errors="coerce").to_numpy(dtype=float)
    if (d[iv_start].notna().to_numpy() & np.isnan(v)).any():
        raise ValueError(f"column {iv_start!r} must be numeric (missing = never IV)")
    if (v < 0).any():
        raise ValueError(f"column {iv_start!r} has a negative time ({v[v < 0][0]!r})")
    after = v > t
    if after.any():
        i = int(np.flatnonzero(after)[0])
        raise ValueError(f"column {iv_start!r} is after {time!r} (patient {d.index[i]!r}: IV on day {v[i]:g}, "
                         f"follow-up ends on day {t[i]:g})")
    if covariates:
        X_df, _ = design_matrix(d, covariates)
        X, names = X_df.to_numpy(dtype=float), list(X_df.columns)
    else:
        X, names = np.zeros((len(d), 0)), []
    return _Data(pos, d.index, t, e, v, X, names)


def _grace(grace) -> float:
    g = float(grace)
    if not np.isfinite(g) or g < 0:
        raise ValueError(f"grace must be a number of days >= 0, got {grace!r}")
    return g


# --------------------------------------------------------------------------- cloning


def _clone_arrays(d: _Data, g: float):
    """Per arm (IV, SC): end of follow-up, event and whether the end is a deviation."""
    iv_by_g = d.v <= g  # NaN compares False
    # IV clone: deviates at G when followed at G without IV by G
    dev_iv = ~iv_by_g & (d.t >= g)
    end_iv = np.where(dev_iv, g, d.t)
    ev_iv = np.where(dev_iv, 0, d.e)
    # SC clone: deviates at the IV start when that is by G
    dev_sc = iv_by_g
    end_sc = np.where(dev_sc, d.v, d.t)
    ev_sc = np.where(dev_sc, 0, d.e)
    return (end_iv, ev_iv, dev_iv), (end_sc, ev_sc, dev_sc)


def _clone_frame(d: _Data, arrays) -> pd.DataFrame:
    frames = [pd.DataFrame({"patient": d.patient, "arm": arm, "time": end, "event": ev.astype(np.int64),
                            "deviated": dev.astype(np.int64)}) for arm, (end, ev, dev) in zip(ARMS, arrays)]
    return pd.concat(frames, ignore_index=True)[CLONE_COLUMNS]


def clone(
    data: pd.DataFrame,
    grace: float = 2,
    *,
    time: str = "time",
    event: str = "event",
    iv_start: str = "iv_start",
) -> pd.DataFrame:
    """Clone each patient into the IV and SC strategies and censor each clone where its data
    deviate from its strategy (rules in the module docstring).

    Returns one row per clone: ``patient`` (the row label of ``data``), ``arm`` ("IV", "SC"),
    ``time`` (end of the clone's follow-up), ``event`` (1 = death counted in this arm) and
    ``deviated`` (1 = artificially censored at ``time``, before that day's deaths). Rows with a
    missing time or event are dropped.
    """
    g = _grace(grace)
    d = _prepare(data, time, event, iv_start, [])
    return _clone_frame(d, _clone_arrays(d, g))


# --------------------------------------------------------------------------- structure


class _Codes:
    """Times on an integer scale that keeps their order and puts each decision first: time x ->
    2 q(x) + 2, a decision at x -> 2 q(x) + 1 (q = rank among all distinct times), so a row
    ``(entry, exit]`` is at risk for deaths at codes in it, as R's ``Surv(start, stop)``."""

    def __init__(self, *values):
        self.times = np.unique(np.concatenate([np.asarray(x, dtype=float).ravel() for x in values]))
        self.times = self.times[np.isfinite(self.times)]

    def at(self, x):
        return 2 * np.searchsorted(self.times, x) + 2

    def before(self, x):
        return 2 * np.searchsorted(self.times, x) + 1

    def time(self, code):
        return self.times[(np.asarray(code) - 2) // 2]


@dataclass
class _Spec:
    """A censoring model: logistic rows (patient, intercept group, outcome) over a covariate matrix."""

    label: str
    pat: np.ndarray
    grp: np.ndarray
    y: np.ndarray
    groups: list[str]
    cache: dict = field(default_factory=dict, repr=False)  # design pieces built once (_levels, _design)


@dataclass
class _Arm:
    pat: np.ndarray
    seg: np.ndarray
    entry: np.ndarray
    exit: np.ndarray
    event: np.ndarray
    event_codes: np.ndarray  # distinct death codes (ascending)
    risk_t: sparse.csr_matrix  # (D + 1) x rows: +1 where a row enters the risk sets, -1 where it leaves
    death_t: sparse.csr_matrix  # D x rows
    follow_t: sparse.csr_matrix  # days x rows: followed to the day
    atrisk_t: sparse.csr_matrix  # days x rows: at risk at the day


@dataclass
class _Setup:
    d: _Data
    g: float
    u: np.ndarray  # decision days (IV starts in [0, G])
    b: np.ndarray  # segment starts: {0} + u + {G}
    iv_by_g: np.ndarray
    haz: _Spec
    lm: _Spec
    sc_ndec: np.ndarray  # per segment: decision days <= its start
    iv_post: np.ndarray  # per segment: starts at or after G
    arms: list[_Arm]
    codes: _Codes
    days: np.ndarray
    clones: tuple


def _km_matrices(entry, exit, event, codes_d, day_at, day_before):
    """Sparse maps from row weights to risk-set sums: at risk for deaths at code c when entry < c <= exit."""
    n = len(entry)
    D = len(codes_d)
    rows = np.arange(n)
    lo = np.searchsorted(codes_d, entry, side="right")
    hi = np.searchsorted(codes_d, exit, side="right")
    keep = hi > lo
    r = np.concatenate([lo[keep], hi[keep]])
    c = np.concatenate([rows[keep], rows[keep]])
    val = np.concatenate([np.ones(keep.sum()), -np.ones(keep.sum())])
    risk_t = sparse.csr_matrix((val, (r, c)), shape=(D + 1, n))
    dead = np.flatnonzero(event == 1)
    death_t = sparse.csr_matrix((np.ones(len(dead)), (np.searchsorted(codes_d, exit[dead]), dead)), shape=(D, n))
    k = len(day_at)
    fr, fc = np.nonzero(exit[None, :] >= day_before[:, None])
    follow_t = sparse.csr_matrix((np.ones(len(fr)), (fr, fc)), shape=(k, n))
    ar, ac = np.nonzero((entry[None, :] < day_at[:, None]) & (exit[None, :] >= day_at[:, None]))
    atrisk_t = sparse.csr_matrix((np.ones(len(ar)), (ar, ac)), shape=(k, n))
    return risk_t, death_t, follow_t, atrisk_t


def _setup(d: _Data, g: float, days) -> _Setup:
    days = np.asarray(days, dtype=float).ravel()
    iv_by_g = d.v <= g
    u = np.unique(d.v[iv_by_g])
    b = np.unique(np.concatenate([[0.0], u, [g]]))
    codes = _Codes(d.t, d.v, b, days)
    # SC arm model: patients at risk of starting IV at each decision day
    not_before = np.isnan(d.v)[:, None] | (d.v[:, None] >= u[None, :])
    at_risk = not_before & (d.t[:, None] >= u[None, :])
    hp, hk = np.nonzero(at_risk)
    haz = _Spec("SC arm: hazard of starting IV by decision day", hp, hk, (d.v[hp] == u[hk]).astype(float),
                [f"day {x:g}" for x in u])
    # IV arm model: IV by G among patients followed at G
    lp = np.flatnonzero(d.t >= g)
    lm = _Spec(f"IV arm: IV by day {g:g} among patients followed at day {g:g}", lp, np.zeros(len(lp), dtype=np.int64),
               iv_by_g[lp].astype(float), ["(Intercept)"])
    clones = _clone_arrays(d, g)
    seg_start = codes.before(b)
    seg_end = np.append(seg_start[1:], np.iinfo(np.int64).max)
    arms = []
    for end, ev, dev in clones:
        exit_ = np.where(dev, codes.before(end), codes.at(end))
        # one row per clone and segment it reaches: (max(entry), min(exit, segment end)]
        reach = exit_[:, None] > seg_start[None, :]
        pat, seg = np.nonzero(reach)
        r_exit = np.minimum(exit_[pat], seg_end[seg])
        r_event = ((ev[pat] == 1) & (exit_[pat] <= seg_end[seg])).astype(np.int64)
        r_entry = seg_start[seg]
        death_codes = np.unique(r_exit[r_event == 1])
        mats = _km_matrices(r_entry, r_exit, r_event, death_codes, codes.at(days), codes.before(days))
        arms.append(_Arm(pat, seg, r_entry, r_exit, r_event, death_codes, *mats))
    return _Setup(d=d, g=g, u=u, b=b, iv_by_g=iv_by_g, haz=haz, lm=lm, sc_ndec=np.searchsorted(u, b, side="right"),
                  iv_post=b >= g, arms=arms, codes=codes, days=days, clones=clones)


# --------------------------------------------------------------------------- censoring models


@dataclass
class _Fit:
    """Coefficients per replicate: group intercepts (+/-inf: probability 0/1 exactly) then covariates."""

    coef: np.ndarray  # R x (groups + p)
    ok: np.ndarray  # R
    method: np.ndarray  # R (object): "ML", "Firth", "none" (no fit needed), "failed"
    why: list  # R: reason when not ok
    notes: list
    crude: np.ndarray | None = None  # R x groups: the covariate-free probabilities, exactly


def _fit_exact(spec: _Spec, X, names, crow, fit_groups, act_cov):
    """statsmodels ML (ml_logistic), Firth when ML is not estimable, on the rows expanded by their
    counts. Returns (coef over fit groups + active covariates, method, note, reason)."""
    from stormcohort.stats.firth import firth_logistic, ml_logistic

    rows = np.flatnonzero((crow > 0) & fit_groups[spec.grp])
    rows = np.repeat(rows, crow[rows].astype(np.int64))
    gi = np.flatnonzero(fit_groups)
    gnames = [spec.groups[j] for j in gi]
    cnames = [names[j] for j in np.flatnonzero(act_cov)]
    Z = np.column_stack([spec.grp[rows][:, None] == gi[None, :], X[spec.pat[rows]][:, act_cov]]).astype(float)
    df = pd.DataFrame(Z, columns=gnames + cnames)
    df["__y__"] = spec.y[rows]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ml = ml_logistic(df, "__y__", gnames + cnames, intercept=False)
        if ml.estimable:
            return ml.table["coef"].to_numpy(), "ML", None, None
        fi = firth_logistic(df, "__y__", gnames + cnames, intercept=False, profile=False)
    if fi.estimable:
        return fi.table["coef"].to_numpy(), "Firth", f"{spec.label}: ML not estimable ({ml.reason}); Firth's " \
                                                     "penalised likelihood used", None
    return None, "failed", None, f"{spec.label}: ML: {ml.reason}; Firth: {fi.reason}"


def _levels(spec: _Spec, X):
    """Per covariate column, its distinct values among the model's rows as a sparse values x rows
    indicator (built once per model and covariate matrix)."""
    if spec.cache.get("levels_of") is not X:
        rows = len(spec.pat)
        levels = []
        for j in range(X.shape[1]):
            vals, inv = np.unique(X[spec.pat, j], return_inverse=True)
            levels.append(sparse.csr_matrix((np.ones(rows), (inv.ravel(), np.arange(rows))), shape=(len(vals), rows)))
        spec.cache.update(levels_of=X, levels=levels)
    return spec.cache["levels"]


def _design(spec: _Spec, X):
    """Z = [intercept-group indicators, covariates] over the model's rows and its column products
    (the upper triangle, for the information), built once per model and covariate matrix."""
    if spec.cache.get("design_of") is not X:
        k = len(spec.groups)
        Xr = X[spec.pat]
        Z = np.column_stack([np.eye(k)[spec.grp], Xr]) if k else Xr
        iu = np.triu_indices(Z.shape[1])
        spec.cache.update(design_of=X, Z=Z, zz=Z[:, iu[0]] * Z[:, iu[1]])
    return spec.cache["Z"], spec.cache["zz"]


def _separation_flags(levels, totals, y, cfit, act_cov):
    """ml_logistic's check, per replicate: a covariate with two values present at one of which the
    outcome does not vary (only covariates with few distinct values; others are caught by the
    fitted probabilities). ``totals``: per covariate, the counts at each of its values (R x values)."""
    R = cfit.shape[0]
    flag = np.zeros(R, dtype=bool)
    events = None
    for j, (onehot_t, tot) in enumerate(zip(levels, totals)):
        if not 2 <= onehot_t.shape[0] <= _SEP_LEVELS:
            continue
        if events is None:
            events = (cfit * y).T
        ev = np.asarray((onehot_t @ events).T)
        present = tot > 0
        const = present & ((ev == 0) | (ev == tot))
        flag |= act_cov[:, j] & (present.sum(axis=1) == 2) & const.any(axis=1)
    return flag


def _newton(Z, y, cw, act, beta0, maxiter=100, tol=1e-8, track_perfect=False, zz=None):
    """Newton-Raphson for logistic regression with frequency weights, many replicates at once
    (as statsmodels' Logit.fit: full steps until every |step| < tol, but started at ``beta0``,
    R x q: the estimate of the full data for a bootstrap). Inactive columns stay at 0. Returns
    (beta, converged, perfect): ``perfect`` flags a replicate whose fitted probabilities were all
    within 1e-8 of its outcomes after some step (statsmodels' perfect-prediction check)."""
    R, q = cw.shape[0], Z.shape[1]
    beta = np.where(act, beta0, 0.0)
    conv = np.zeros(R, dtype=bool)
    perfect = np.zeros(R, dtype=bool)
    todo = np.arange(R)
    eye = np.eye(q, dtype=bool)
    # information = w @ (z_i z_j over the upper triangle): one matrix product for all replicates
    iu = np.triu_indices(q)
    if zz is None:
        zz = Z[:, iu[0]] * Z[:, iu[1]]
    for _ in range(maxiter):
        if not len(todo):
            break
        b, c, a = beta[todo], cw[todo], act[todo]
        mu = expit(b @ Z.T)
        grad = np.where(a, (c * (y - mu)) @ Z, 0.0)
        H = np.zeros((len(todo), q, q))
        H[:, iu[0], iu[1]] = (c * mu * (1 - mu)) @ zz
        H = H + np.triu(H, 1).transpose(0, 2, 1)
        keep = a[:, :, None] & a[:, None, :]
        H = np.where(keep, H, 0.0) + (eye[None] & ~a[:, :, None])
        # a singular information (exact zero pivot: what makes solve raise) leaves that step NaN
        step = np.full_like(grad, np.nan)
        inv_ok = np.linalg.slogdet(H)[0] != 0
        if inv_ok.any():
            step[inv_ok] = np.linalg.solve(H[inv_ok], grad[inv_ok][..., None])[..., 0]
        bad = ~np.isfinite(step).all(axis=1)
        beta[todo] = np.where(bad[:, None], b, b + step)
        if track_perfect:
            fitted = expit(beta[todo] @ Z.T)
            perfect[todo] |= ((c == 0) | (np.abs(fitted - y) <= 1e-8)).all(axis=1)
        done = ~bad & (np.abs(step) < tol).all(axis=1)
        conv[todo[done]] = True
        todo = todo[~done & ~bad]
    return beta, conv, perfect


def _ml_or_firth(Z, y, cw, act, separated, zz=None):
    """For the replicates the first Newton pass could not fit (frequency counts ``cw``, R x rows;
    active columns ``act``): :func:`_fit_exact`'s answer without a model fit per replicate.

    * A design without full column rank on the data expanded by the counts (``matrix_rank``'s
      tolerance, from the singular values of the count-weighted rows): "failed", as both
      ``ml_logistic`` and ``firth_logistic`` refuse it.
    * ML where ``ml_logistic`` gives it: not ``separated`` (its binary-covariate check), and
      statsmodels' Newton-Raphson from 0 (:func:`_newton` from 0, converged in fewer than 100
      steps) ends without perfect prediction, fitted probabilities of 0 or 1 (1e-10), or a
      singular information.
    * Otherwise Firth (:func:`~stormcohort.stats.firth.firth_batch`: ``firth_logistic``'s
      estimate), or "failed" if it does not converge.

    Returns (coefficients R x q, method R)."""
    from stormcohort.stats.firth import _batch_information, firth_batch

    R, q = cw.shape[0], Z.shape[1]
    coef = np.zeros((R, q))
    method = np.full(R, "failed", dtype=object)
    full = np.zeros(R, dtype=bool)
    for i in range(R):
        rows = cw[i] > 0
        A = Z[rows][:, act[i]] * np.sqrt(cw[i, rows])[:, None]
        sv = np.linalg.svd(A, compute_uv=False)
        full[i] = len(sv) == A.shape[1] and (sv > sv.max() * max(cw[i].sum(), A.shape[1]) * np.finfo(float).eps).all()
    ml = np.flatnonzero(full & ~separated)
    if len(ml):
        beta, conv, perfect = _newton(Z, y, cw[ml], act[ml], np.zeros((len(ml), q)), maxiter=99, track_perfect=True,
                                      zz=zz)
        with np.errstate(over="ignore", invalid="ignore"):
            mu = expit(beta @ Z.T)
            extreme = ((cw[ml] > 0) & ((mu < 1e-10) | (mu > 1 - 1e-10))).any(axis=1)
            good = conv & ~perfect & ~extreme & np.isfinite(beta).all(axis=1)
        if good.any():
            iu = np.triu_indices(q)
            info = _batch_information(Z, Z[:, iu[0]] * Z[:, iu[1]] if zz is None else zz, iu,
                                      cw[ml[good]] * mu[good] * (1 - mu[good]), act[ml[good]])
            sign, _ = np.linalg.slogdet(info)
            good[np.flatnonzero(good)[sign <= 0]] = False
        coef[ml[good]] = beta[good]
        method[ml[good]] = "ML"
    fi = np.flatnonzero(full & (method != "ML"))
    if len(fi):
        beta, conv, _ = firth_batch(Z, y, cw[fi], act[fi])
        coef[fi[conv]] = beta[conv]
        method[fi[conv]] = "Firth"
    return coef, method


def _fit_spec(spec: _Spec, X, names, C, *, exact: bool, start=None) -> _Fit:
    """Fit one censoring model for each row of frequency counts C (R x n patients): by
    ml_logistic / firth_logistic (``exact``) or by the vectorised Newton-Raphson from ``start``
    (coefficients, q), the replicates it flags by :func:`_ml_or_firth` (their answer, vectorised)."""
    R, p = C.shape[0], X.shape[1]
    k = len(spec.groups)
    crow = C[:, spec.pat]
    onehot = sparse.csr_matrix((np.ones(len(spec.grp)), (np.arange(len(spec.grp)), spec.grp)),
                               shape=(len(spec.grp), k))
    tot = np.asarray((onehot.T @ crow.T).T).reshape(R, k)
    ev = np.asarray((onehot.T @ (crow * spec.y).T).T).reshape(R, k)
    none, every = ev == 0, (ev == tot) & (tot > 0)
    fitg = ~none & ~every
    coef = np.zeros((R, k + p))
    coef[:, :k] = np.where(none, -np.inf, np.where(every, np.inf, 0.0))
    cfit = crow * fitg[:, spec.grp]
    # a covariate enters a replicate's model when two of its values occur among the modelled rows
    levels = _levels(spec, X)
    totals = [np.asarray((onehot_t @ cfit.T).T) for onehot_t in levels]  # counts at each value
    act_cov = np.zeros((R, p), dtype=bool)
    for j, tot in enumerate(totals):
        act_cov[:, j] = (tot > 0).sum(axis=1) >= 2
    need = fitg.any(axis=1)
    ok = np.ones(R, dtype=bool)
    method = np.where(need, "ML", "none").astype(object)
    why: list = [None] * R
    notes: list = []
    if exact:
        todo = np.flatnonzero(need)
    else:
        Z, zz = _design(spec, X)
        act = np.column_stack([fitg, act_cov & need[:, None]])
        separated = _separation_flags(levels, totals, spec.y, cfit, act_cov) & need
        flag = separated.copy()
        run = np.flatnonzero(need & ~flag)
        if len(run):
            beta0 = np.zeros(k + p) if start is None else np.where(np.isfinite(start), start, 0.0)
            beta, conv, _ = _newton(Z, spec.y, cfit[run], act[run], np.broadcast_to(beta0, (len(run), k + p)), zz=zz)
            mu = expit(beta @ Z.T)
            extreme = ((cfit[run] > 0) & ((mu < 1e-10) | (mu > 1 - 1e-10))).any(axis=1)
            good = conv & ~extreme & np.isfinite(beta).all(axis=1)
            coef[run[good], :k] = np.where(fitg[run[good]], beta[good, :k], coef[run[good], :k])
            coef[run[good], k:] = beta[good, k:]
            flag[run[~good]] = True
        hard = np.flatnonzero(flag)
        if len(hard):  # what _fit_exact gives them, vectorised
            est, how = _ml_or_firth(Z, spec.y, cfit[hard], act[hard], separated[hard], zz)
            method[hard] = how
            fail = how == "failed"
            ok[hard[fail]] = False
            for r in hard[fail]:
                why[r] = f"{spec.label}: neither ML nor Firth's penalised likelihood estimable"
            fitted = hard[~fail]
            coef[fitted, :k] = np.where(fitg[fitted], est[~fail, :k], coef[fitted, :k])
            coef[fitted, k:] = est[~fail, k:]
        todo = ()
    for r in todo:
        est, how, note, reason = _fit_exact(spec, X, names, crow[r], fitg[r], act_cov[r])
        method[r] = how
        if est is None:
            ok[r], why[r] = False, reason
            continue
        ng = int(fitg[r].sum())
        coef[r, np.flatnonzero(fitg[r])] = est[:ng]
        coef[r, k + np.flatnonzero(act_cov[r])] = est[ng:]
        if note:
            notes.append(note)
    if exact and R == 1:
        for j in np.flatnonzero(~act_cov[0] & need[0]):
            notes.append(f"{spec.label}: covariate {names[j]!r} is constant among the modelled patients; left out")
        for j in np.flatnonzero(every[0]):
            notes.append(f"{spec.label}: every patient at risk on {spec.groups[j]} started IV (probability 1)")
    return _Fit(coef, ok, method, why, notes)


def _probabilities(fit: _Fit, X, k):
    """P(outcome | X) per replicate, patient and intercept group: R x n x k."""
    if fit.crude is not None:
        return np.broadcast_to(fit.crude[:, None, :], (fit.crude.shape[0], X.shape[0], k))
    lin = fit.coef[:, None, :k] + (X @ fit.coef[:, k:].T).T[:, :, None]
    return expit(lin)


def _crude(spec: _Spec, C):
    """Crude proportion per intercept group (the stabilising numerators): R x k."""
    crow = C[:, spec.pat]
    k = len(spec.groups)
    onehot = sparse.csr_matrix((np.ones(len(spec.grp)), (np.arange(len(spec.grp)), spec.grp)),
                               shape=(len(spec.grp), k))
    tot = np.asarray((onehot.T @ crow.T).T).reshape(C.shape[0], k)
    ev = np.asarray((onehot.T @ (crow * spec.y).T).T).reshape(C.shape[0], k)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(tot > 0, ev / tot, 0.0)


def _free_fit(spec: _Spec, C, p):
    """Covariate-free model: the crude proportions as coefficients (logits)."""
    prop = _crude(spec, C)
    with np.errstate(divide="ignore"):
        coef = np.log(prop) - np.log1p(-prop)
    coef = np.concatenate([coef, np.zeros((C.shape[0], p))], axis=1)
    R = C.shape[0]
    return _Fit(coef, np.ones(R, dtype=bool), np.full(R, "crude", dtype=object), [None] * R, [], prop)


# --------------------------------------------------------------------------- weights and KM


def _row_weights(s: _Setup, C, fits, stabilised):
    """Weights in force on each arm's rows (R x rows), frequency counts included."""
    haz, lm = fits
    X = s.d.X
    K = len(s.u)
    out = []
    # SC arm: 1 / prod_{u_k <= segment start} (1 - h_k(X))
    arm = s.arms[1]
    with np.errstate(divide="ignore"):
        if K:
            logstay = np.log1p(-_probabilities(haz, X, K))  # R x n x K
            cum = np.concatenate([np.zeros(logstay.shape[:2] + (1,)), np.cumsum(logstay, axis=2)], axis=2)
            lw = -cum[:, arm.pat, s.sc_ndec[arm.seg]]
            if stabilised:
                num = np.concatenate([np.zeros((C.shape[0], 1)), np.cumsum(np.log1p(-_crude(s.haz, C)), axis=1)],
                                     axis=1)
                lw = lw + num[:, s.sc_ndec[arm.seg]]
        else:
            lw = np.zeros((C.shape[0], len(arm.pat)))
    cnt = C[:, arm.pat]
    with np.errstate(over="ignore", invalid="ignore"):
        out.append(np.where(cnt > 0, cnt * np.exp(lw), 0.0))
    # IV arm: 1 before G, 1 / p(X) from G on
    arm = s.arms[0]
    p = _probabilities(lm, X, 1)[:, :, 0]
    post = s.iv_post[arm.seg]
    with np.errstate(divide="ignore", invalid="ignore"):
        lw = np.where(post[None, :], -np.log(p[:, arm.pat]), 0.0)
        if stabilised:
            lw = lw + np.where(post[None, :], np.log(_crude(s.lm, C)[:, :1]), 0.0)
    cnt = C[:, arm.pat]
    with np.errstate(over="ignore", invalid="ignore"):
        out.insert(0, np.where(cnt > 0, cnt * np.exp(lw), 0.0))
    return out


def _km(arm: _Arm, W):
    """Weighted numbers at risk and deaths at each death time, and S there: R x D each."""
    D = len(arm.event_codes)
    n_risk = np.cumsum(np.asarray(arm.risk_t @ W.T).T, axis=1)[:, :D]
    n_event = np.asarray(arm.death_t @ W.T).T
    with np.errstate(invalid="ignore", divide="ignore"):
        factor = np.where(n_risk > 0, 1.0 - n_event / n_risk, 1.0)
    return n_risk, n_event, np.cumprod(factor, axis=1)


def _surv_at(arm: _Arm, surv, W, day_at):
    """S at each day (deaths on the day included); NaN after the arm's last follow-up."""
    idx = np.searchsorted(arm.event_codes, day_at, side="right")
    S = np.concatenate([np.ones((surv.shape[0], 1)), surv], axis=1)[:, idx]
    followed = np.asarray(arm.follow_t @ W.T).T > 0
    return np.where(followed, S, np.nan)


# --------------------------------------------------------------------------- one estimate


def _checks(s: _Setup, C):
    """Reason a replicate (row of C) has no estimate before weighting, or None."""
    iv = C @ s.iv_by_g.astype(float)
    sc = C @ (~s.iv_by_g).astype(float)
    reasons = np.full(C.shape[0], None, dtype=object)
    reasons[sc == 0] = NO_SC.format(g=s.g)
    reasons[iv == 0] = NO_IV.format(g=s.g)
    return reasons


def _estimate(s: _Setup, C, covariates: bool, stabilised: bool, exact: bool, start=(None, None)):
    """Risks at the days per arm (R x 2 x days), reasons (None = estimated), the censoring model
    fits, the row weights and the KM pieces. ``start``: Newton starting values per model."""
    R = C.shape[0]
    reasons = _checks(s, C)
    p = s.d.X.shape[1]
    if covariates:
        fits = tuple(_fit_spec(spec, s.d.X, s.d.names, C, exact=exact, start=b)
                     for spec, b in zip((s.haz, s.lm), start))
    else:
        fits = (_free_fit(s.haz, C, p), _free_fit(s.lm, C, p))
    for f, spec in zip(fits, (s.haz, s.lm)):
        bad = ~f.ok & np.equal(reasons, None)
        for r in np.flatnonzero(bad):  # the full reason for the estimate, the model for a replicate
            reasons[r] = NO_WEIGHTS.format(why=f.why[r] if exact else spec.label)
    W = _row_weights(s, C, fits, stabilised)
    risks = np.full((R, 2, len(s.days)), np.nan)
    pieces = []
    for a, arm in enumerate(s.arms):
        n_risk, n_event, surv = _km(arm, W[a])
        dead = n_event.sum(axis=1) == 0
        for r in np.flatnonzero(dead & np.equal(reasons, None)):
            reasons[r] = NO_DEATHS.format(arm=ARMS[a])
        risks[:, a, :] = 1.0 - _surv_at(arm, surv, W[a], s.codes.at(s.days))
        pieces.append((n_risk, n_event, surv))
    risks[~np.equal(reasons, None)] = np.nan
    return risks, reasons, fits, W, pieces


# --------------------------------------------------------------------------- result


@dataclass(frozen=True)
class TargetTrialResult:
    """Clone-censor-weight emulation of IV within G days vs SC through day G.

    ``risks``: ``arm, day, risk, risk_lcl, risk_ucl, n_risk, n_risk_weighted, n_boot`` (risk =
    1 - weighted KM at the day; n_risk = clones at risk at the day; n_boot = replicates with a
    value). ``contrasts``: ``day, risk_iv, risk_sc, rd, rd_lcl, rd_ucl, rr, rr_lcl, rr_ucl,
    n_boot_rd, n_boot_rr`` (IV - SC and IV / SC; percentile bootstrap limits). ``curve``: the
    weighted KM of each arm at its death times (``arm, time, n_risk, n_event, surv``, weighted
    sums). ``cox``: the weighted Cox model of arm (``term, coef, se, hr, hr_lcl, hr_ucl, z, p``;
    robust se clustered on the patient; NaN with ``cox_reason`` when not estimable). ``weights``:
    per arm ``clones, deviated, events`` (deaths counted), ``at_risk_at_grace`` and the weights in
    force from day G (min, mean, max over those clones), the censoring ``model`` and fit
    ``method``. ``models``: the fitted censoring models (``model, term, coef``; +/-inf for a
    decision day with probability 0/1). ``clones``: :func:`clone`'s table plus ``weight``, the
    weight in force at the clone's end of follow-up. ``bootstrap``: ``outcome, replicates``:
    requested, used, and each reason for a skipped replicate. ``replicate_risks``: the risks of
    each used replicate (used x 2 arms (IV, SC) x days, the days in ``risks``' order), for
    variances (a bootstrap SD, e.g. within an imputation) beside the percentile limits.
    """

    estimable: bool
    reason: str | None
    grace: float
    n: int
    risks: pd.DataFrame
    contrasts: pd.DataFrame
    curve: pd.DataFrame
    cox: pd.DataFrame
    weights: pd.DataFrame
    models: pd.DataFrame
    clones: pd.DataFrame
    bootstrap: pd.DataFrame
    cox_reason: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)
    replicate_risks: np.ndarray = field(default_factory=lambda: np.zeros((0, 2, 0)))


def _efron_pieces(beta, R1, R0, D1, D0, m):
    """Weighted Efron log partial likelihood, score and information of one 0/1 covariate (R
    coxph: tied deaths at t share the mean death weight; denominators lose k/m of the deaths'
    weighted risk, k = 0..m-1), from the weighted numbers at risk (R1, R0) and dying (D1, D0) with
    x = 1 and x = 0, and m deaths, at each death time. Also the Efron rows' pieces for residuals."""
    r = np.exp(beta)
    jj = np.repeat(np.arange(len(m)), m)
    first = np.concatenate([[0], np.cumsum(m)[:-1]])
    f = (np.arange(len(jj)) - first[jj]) / m[jj]
    wtave = ((D1 + D0) / np.maximum(m, 1))[jj]
    den = R0[jj] + r * R1[jj] - f * (D0[jj] + r * D1[jj])
    mean = r * (R1[jj] - f * D1[jj]) / den
    loglik = beta * D1.sum() - float((wtave * np.log(den)).sum())
    score = D1.sum() - float((wtave * mean).sum())
    info = float((wtave * mean * (1 - mean)).sum())
    return loglik, score, info, (jj, f, wtave / den, mean)


def _cox(s: _Setup, W, conf_level):
    """Weighted Cox model of arm (IV = 1) on the clone rows: Efron ties, left-truncated rows
    (the weights in force per row), Newton-Raphson; robust variance clustered on the patient from
    R's Efron score residuals (coxph's ``cluster`` / ``robust``). Vectorised for the one term;
    lifelines' robust variance is a loop over rows that ignores entry times."""
    nan = pd.DataFrame([["arm[IV]", *[np.nan] * (len(COX_COLUMNS) - 1)]], columns=COX_COLUMNS)
    codes = np.unique(np.concatenate([a.event_codes for a in s.arms]))
    D = len(codes)
    at_risk, dying, deaths, parts = [], [], [], []
    for a, arm in enumerate(s.arms):
        w = W[a][0]
        keep = w > 0
        lo = np.searchsorted(codes, arm.entry[keep], side="right")
        hi = np.searchsorted(codes, arm.exit[keep], side="right")
        wk = w[keep]
        at_risk.append(np.cumsum(np.bincount(lo, wk, D + 1) - np.bincount(hi, wk, D + 1))[:D])
        dead = arm.event[keep] == 1
        j = np.searchsorted(codes, arm.exit[keep][dead])
        dying.append(np.bincount(j, wk[dead], D))
        deaths.append(np.bincount(j, minlength=D))
        parts.append((arm.pat[keep], wk, lo, hi, dead, float(a == 0)))
    R1, R0 = at_risk
    D1, D0 = dying
    m = deaths[0] + deaths[1]
    if D1.sum() == 0 or D0.sum() == 0:
        return nan, "no deaths in one arm (the hazard ratio is 0 or infinite)"
    beta, cur = 0.0, _efron_pieces(0.0, R1, R0, D1, D0, m)
    for _ in range(50):
        step = cur[1] / cur[2]
        for _ in range(30):
            new = _efron_pieces(beta + step, R1, R0, D1, D0, m)
            if new[0] >= cur[0] - 1e-12:
                break
            step /= 2
        beta, cur = beta + step, new
        if abs(step) < 1e-10:
            break
    else:
        return nan, "Newton-Raphson did not converge"
    _, _, info, (jj, f, haz, mean) = cur
    # R coxscore (Efron): A_j(x) = sum_k h_k (x - mean_k), B_j(x) = sum_k (1 - f_k) h_k (x - mean_k)
    A = [np.bincount(jj, haz * (x - mean), D) for x in (0.0, 1.0)]
    B = [np.bincount(jj, (1 - f) * haz * (x - mean), D) for x in (0.0, 1.0)]
    M = np.bincount(jj, mean, D) / np.maximum(m, 1)
    U = np.zeros(len(s.d.t))
    for pat, wk, lo, hi, dead, x in parts:
        xi = int(x)
        cum = np.concatenate([[0.0], np.cumsum(A[xi])])
        risk = np.exp(beta * x)
        resid = -risk * (cum[hi] - cum[lo])
        j = hi[dead] - 1  # the row's own death time
        resid[dead] += (x - M[j]) + risk * (A[xi][j] - B[xi][j])
        U += np.bincount(pat, wk * resid, len(U))
    se = float(np.sqrt((U**2).sum()) / info)
    if not (np.isfinite(beta) and np.isfinite(se) and se > 0):
        return nan, "estimate or variance not finite"
    w = wald_columns([beta], [se], conf_level)
    table = pd.DataFrame({"term": ["arm[IV]"], "coef": w["coef"], "se": w["se"], "hr": np.exp(w["coef"]),
                          "hr_lcl": np.exp(w["lcl"]), "hr_ucl": np.exp(w["ucl"]), "z": w["z"], "p": w["p"]})
    return table[COX_COLUMNS], None


def _percentile(values, conf_level):
    """Percentile limits over the finite replicate values (R's quantile type 7) and their number."""
    alpha = 1 - conf_level
    finite = np.isfinite(values)
    n_ok = finite.sum(axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        v = np.where(finite, values, np.nan)
        lo = np.nanquantile(v, alpha / 2, axis=0) if values.shape[0] else np.full(values.shape[1:], np.nan)
        hi = np.nanquantile(v, 1 - alpha / 2, axis=0) if values.shape[0] else np.full(values.shape[1:], np.nan)
    return lo, hi, n_ok


def _contrast(risks):
    """RD and RR from risks (... x 2 x days); RR NaN where the SC risk is 0."""
    rd = risks[..., 0, :] - risks[..., 1, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        rr = np.where(risks[..., 1, :] > 0, risks[..., 0, :] / risks[..., 1, :], np.nan)
    return rd, rr


def _bootstrap(s, replicates, seed, covariates, stabilised, start):
    """Risks of each used replicate (used x 2 x days) and the skip counts."""
    n = len(s.d.t)
    rng = np.random.default_rng(seed)
    n_rows = sum(len(a.pat) for a in s.arms) + len(s.haz.pat) + n
    chunk = int(max(1, min(replicates, _CHUNK_CELLS // max(n_rows, 1))))
    kept, skipped = [], {}
    done = 0
    while done < replicates:
        m = min(chunk, replicates - done)
        idx = rng.integers(0, n, size=(m, n))
        C = np.bincount((idx + (np.arange(m) * n)[:, None]).ravel(), minlength=m * n).reshape(m, n).astype(float)
        risks, reasons, *_ = _estimate(s, C, covariates, stabilised, exact=False, start=start)
        ok = np.equal(reasons, None)
        kept.append(risks[ok])
        for why in reasons[~ok]:
            skipped[why] = skipped.get(why, 0) + 1
        done += m
    risks = np.concatenate(kept) if kept else np.zeros((0, 2, len(s.days)))
    return risks, skipped


def _model_table(s: _Setup, fits, covariates):
    rows = []
    for spec, f in zip((s.haz, s.lm), fits):
        k = len(spec.groups)
        names = [f"{spec.groups[j]}" for j in range(k)] + (list(s.d.names) if covariates else [])
        for name, c in zip(names, f.coef[0]):
            rows.append((spec.label, name, float(c)))
    return pd.DataFrame(rows, columns=MODEL_COLUMNS)


def _weight_table(s: _Setup, W, fits, n_events):
    """Per arm: clones, deviations, deaths counted and the weights in force from day G (the last
    segment), over the clones at risk then."""
    rows = []
    last = len(s.b) - 1
    for a, (arm, clones) in enumerate(zip(s.arms, s.clones)):
        w = W[a][0]
        ww = w[(arm.seg == last) & (w > 0)]
        fit, spec = (fits[0], s.lm) if a == 0 else (fits[1], s.haz)
        stats = (float(ww.min()), float(ww.mean()), float(ww.max())) if len(ww) else (np.nan,) * 3
        rows.append((ARMS[a], len(clones[0]), int(clones[2].sum()), int(n_events[a]), int(len(ww)), *stats,
                     spec.label, str(fit.method[0])))
    return pd.DataFrame(rows, columns=WEIGHT_COLUMNS)


def clone_censor_weight(
    data: pd.DataFrame,
    grace: float = 2,
    covariates: Sequence[str] = (),
    *,
    days: Sequence[float] = (30,),
    replicates: int = 0,
    seed: int | None = None,
    stabilised: bool = True,
    conf_level: float = 0.95,
    time: str = "time",
    event: str = "event",
    iv_start: str = "iv_start",
) -> TargetTrialResult:
    """Clone-censor-weight emulation of "IV within ``grace`` days" vs "SC through day ``grace``".

    ``covariates``: baseline columns of the censoring models (numeric columns as they are,
    others treatment-coded); ``()`` for covariate-free weights. ``days``: where risks are
    reported. ``replicates`` (> 0) patient-level bootstrap resamples for percentile
    intervals at ``conf_level``, drawn with ``numpy.random.default_rng(seed)``. Rows with a
    missing time, event or covariate are dropped. Never raises for data problems: see
    ``estimable`` / ``reason`` (module docstring for all the rules).
    """
    g = _grace(grace)
    z_value(conf_level)
    if int(replicates) != replicates or replicates < 0:
        raise ValueError(f"replicates must be a whole number >= 0, got {replicates!r}")
    replicates = int(replicates)
    d = _prepare(data, time, event, iv_start, covariates)
    days = np.unique(np.asarray(days, dtype=float).ravel())
    if (days < 0).any() or not np.isfinite(days).all():
        raise ValueError(f"days must be finite and >= 0, got {list(days)}")
    n = len(d.t)
    has_cov = d.X.shape[1] > 0
    s = _setup(d, g, days)
    if n == 0:
        reason, risks, fits, W, pieces = "no patients", np.full((1, 2, len(days)), np.nan), None, None, None
    else:
        risks, reasons, fits, W, pieces = _estimate(s, np.ones((1, n)), has_cov, stabilised, exact=True)
        reason = reasons[0]
        if not all(f.ok[0] for f in fits):
            W = None  # no weights to show
    notes = list(dict.fromkeys(x for f in (fits or ()) for x in f.notes))

    boot = np.zeros((0, 2, len(days)))
    skipped: dict = {}
    if reason is None and replicates:
        boot, skipped = _bootstrap(s, replicates, seed, has_cov, stabilised, tuple(f.coef[0] for f in fits))
    lo, hi, nb = _percentile(boot, conf_level)
    rd_b, rr_b = _contrast(boot)
    rd_lo, rd_hi, nb_rd = _percentile(rd_b, conf_level)
    rr_lo, rr_hi, nb_rr = _percentile(rr_b, conf_level)

    risk_rows = []
    for a in range(2):
        if W is not None:
            nr = np.asarray(s.arms[a].atrisk_t @ (W[a][0] > 0).astype(float))
            nrw = np.asarray(s.arms[a].atrisk_t @ W[a][0])
        else:
            nr = nrw = np.zeros(len(days))
        for j, day in enumerate(days):
            risk_rows.append((ARMS[a], day, risks[0, a, j], lo[a, j], hi[a, j], int(nr[j]), float(nrw[j]),
                              int(nb[a, j])))
    risk_table = pd.DataFrame(risk_rows, columns=RISK_COLUMNS)
    rd, rr = _contrast(risks[0])
    contrasts = pd.DataFrame({"day": days, "risk_iv": risks[0, 0], "risk_sc": risks[0, 1], "rd": rd, "rd_lcl": rd_lo,
                              "rd_ucl": rd_hi, "rr": rr, "rr_lcl": rr_lo, "rr_ucl": rr_hi, "n_boot_rd": nb_rd,
                              "n_boot_rr": nb_rr})[CONTRAST_COLUMNS]
    bootstrap = pd.DataFrame([("requested", replicates), ("used", len(boot)), *sorted(skipped.items())],
                             columns=["outcome", "replicates"])
    if skipped:
        notes.append(f"bootstrap: {sum(skipped.values())} of {replicates} replicates skipped (" +
                     "; ".join(f"{k}: {v}" for k, v in sorted(skipped.items())) + ")")

    clones = _clone_frame(d, s.clones)
    curve_frames = []
    cox_nan = pd.DataFrame([["arm[IV]", *[np.nan] * (len(COX_COLUMNS) - 1)]], columns=COX_COLUMNS)
    if W is None:
        clones["weight"] = np.nan
        models = _model_table(s, fits, has_cov) if fits else pd.DataFrame(columns=MODEL_COLUMNS)
        return TargetTrialResult(False, reason, g, n, risk_table, contrasts, pd.DataFrame(columns=CURVE_COLUMNS),
                                 cox_nan, pd.DataFrame(columns=WEIGHT_COLUMNS), models, clones, bootstrap, reason,
                                 tuple(notes), boot)
    weight_end = np.full(2 * n, np.nan)
    for a, arm in enumerate(s.arms):
        # the row of each clone with the largest exit is its last
        order = np.lexsort((arm.exit, arm.pat))
        last = order[np.r_[arm.pat[order][1:] != arm.pat[order][:-1], True]] if len(order) else order
        weight_end[a * n + arm.pat[last]] = W[a][0][last]
        n_risk, n_event, surv = (x[0] for x in pieces[a])
        curve_frames.append(pd.DataFrame({"arm": ARMS[a], "time": s.codes.time(arm.event_codes), "n_risk": n_risk,
                                          "n_event": n_event, "surv": surv}))
    clones["weight"] = weight_end
    curve = pd.concat(curve_frames, ignore_index=True)[CURVE_COLUMNS]
    n_events = [int(s.arms[a].event.sum()) for a in range(2)]
    weights = _weight_table(s, W, fits, n_events)
    models = _model_table(s, fits, has_cov)
    if reason is None:
        cox, cox_reason = _cox(s, W, conf_level)
    else:
        cox, cox_reason = cox_nan, reason
    return TargetTrialResult(reason is None, reason, g, n, risk_table, contrasts, curve, cox, weights, models, clones,
                             bootstrap, cox_reason, tuple(notes), boot)


# --------------------------------------------------------------------------- weighted KM


def weighted_kaplan_meier(
    data: pd.DataFrame,
    time: str,
    event: str,
    weight: str | None = None,
    group: str | None = None,
) -> pd.DataFrame:
    """Weighted Kaplan-Meier curve(s) (R ``survfit(..., weights = w)`` point estimate), by the
    engine :func:`clone_censor_weight` uses: ``S(t) = prod (1 - d_j / n_j)`` with ``n_j``, ``d_j`` the
    weighted numbers at risk (time >= t_j) and dying at t_j.

    Returns ``group, time, n_risk, n_event, n_censor, surv`` at every distinct time (weighted
    sums; with unit weights :func:`~stormcohort.stats.survival.kaplan_meier`'s columns).
    """
    require_columns(data, [time, event, weight, group])
    d = complete_rows(data, [time, event, weight, group])
    t = as_time(d[time], time)
    e = as_event(d[event], event)
    w = np.ones(len(d)) if weight is None else pd.to_numeric(d[weight], errors="coerce").to_numpy(dtype=float)
    if not np.isfinite(w).all() or (w < 0).any():
        raise ValueError(f"column {weight!r} must hold finite weights >= 0")
    g = np.full(len(d), ALL, dtype=object) if group is None else d[group].to_numpy(dtype=object)
    levels = [ALL] if group is None else group_levels(d[group])
    codes = _Codes(t)
    frames = []
    for lvl in levels:
        m = g == lvl
        exit_ = codes.at(t[m])
        all_codes = np.unique(exit_)
        entry = np.zeros(m.sum(), dtype=np.int64)
        risk_t, death_t, _, _ = _km_matrices(entry, exit_, e[m], all_codes, np.zeros(0), np.zeros(0))
        W = w[m][None, :]
        n_risk = np.cumsum(np.asarray(risk_t @ W.T).T, axis=1)[0, :len(all_codes)]
        n_event = np.asarray(death_t @ W.T).T[0]
        n_exit = np.bincount(np.searchsorted(all_codes, exit_), weights=w[m], minlength=len(all_codes))
        with np.errstate(invalid="ignore", divide="ignore"):
            surv = np.cumprod(np.where(n_risk > 0, 1.0 - n_event / n_risk, 1.0))
        frames.append(pd.DataFrame({"group": lvl, "time": codes.time(all_codes), "n_risk": n_risk, "n_event": n_event,
                                    "n_censor": n_exit - n_event, "surv": surv}))
    cols = ["group", "time", "n_risk", "n_event", "n_censor", "surv"]
    return pd.concat(frames, ignore_index=True)[cols] if frames else pd.DataFrame(columns=cols)


# --------------------------------------------------------------------------- sensitivity analyses


def landmark(
    data: pd.DataFrame,
    day: float,
    *,
    time: str = "time",
    event: str = "event",
    iv_start: str = "iv_start",
) -> pd.DataFrame:
    """The landmark analysis frame: patients still followed at ``day`` (``time >= day``: alive at
    the start of the day, the population of the IV arm's censoring model), with ``time`` now
    counted from the landmark and ``iv`` = 1 when IV started by ``day`` (0 otherwise). Other
    columns are kept; rows with a missing time or event are dropped."""
    day = _grace(day)
    d = _prepare(data, time, event, iv_start, [])
    keep = d.t >= day
    out = data.iloc[d.pos[keep]].copy()
    out[time] = d.t[keep] - day
    out["iv"] = (d.v[keep] <= day).astype(np.int64)
    return out


def _half_gap(*values) -> float:
    x = np.unique(np.concatenate([np.asarray(v, dtype=float).ravel() for v in values]))
    x = x[np.isfinite(x)]
    gaps = np.diff(x)
    return float(gaps.min() / 2) if len(gaps) else 0.5


def start_stop(
    data: pd.DataFrame,
    covariates: Sequence[str] = (),
    *,
    time: str = "time",
    event: str = "event",
    iv_start: str = "iv_start",
) -> pd.DataFrame:
    """The route as a time-varying exposure: counting-process rows ``(start, stop]`` (R's
    ``Surv(start, stop, event)``), one SC row then one IV row for a patient who switches.

    Returns ``patient, start, stop, event, iv`` and the ``covariates``. The first dose, and the
    first IV dose, are placed delta before their day (delta = half the smallest gap between
    distinct times and IV days; 0.5 for whole days), so that follow-up starts at ``-delta`` and
    a death on the day of the first IV dose falls in the IV row (the route decision comes before
    the day's deaths, as in :func:`clone`). A first IV dose at 0 gives a single IV row; never IV
    a single SC row; the death (``event``) sits on the last row.
    """
    covariates = list(covariates)
    d = _prepare(data, time, event, iv_start, [])
    n = len(d.t)
    delta = _half_gap([0.0], d.t, d.v)
    switch = d.v > 0  # SC first, then IV
    iv_first = d.v == 0
    pos = np.arange(n)
    sc_rows = np.flatnonzero(~iv_first)
    iv_rows = np.flatnonzero(~np.isnan(d.v))
    start = np.concatenate([np.full(len(sc_rows), -delta), np.where(iv_first[iv_rows], -delta, d.v[iv_rows] - delta)])
    stop = np.concatenate([np.where(switch[sc_rows], d.v[sc_rows] - delta, d.t[sc_rows]), d.t[iv_rows]])
    ev = np.concatenate([np.where(switch[sc_rows], 0, d.e[sc_rows]), d.e[iv_rows]])
    who = np.concatenate([pos[sc_rows], pos[iv_rows]])
    iv = np.concatenate([np.zeros(len(sc_rows), dtype=np.int64), np.ones(len(iv_rows), dtype=np.int64)])
    order = np.lexsort((start, who))
    out = pd.DataFrame({"patient": d.patient[who[order]], "start": start[order], "stop": stop[order],
                        "event": ev[order].astype(np.int64), "iv": iv[order]})
    for c in covariates:
        out[c] = data[c].to_numpy()[d.pos[who[order]]]
    return out


@dataclass(frozen=True)
class TimeVaryingCoxResult:
    """Cox model with the route as a time-varying exposure (lifelines ``CoxTimeVaryingFitter``,
    Efron ties, model-based variance). ``table``: ``term, coef, se, hr, hr_lcl, hr_ucl, z, p``
    (first row ``iv``); all NaN with ``reason`` when not estimable."""

    estimable: bool
    reason: str | None
    table: pd.DataFrame
    n: int
    events: int
    rows: pd.DataFrame


def time_varying_cox(
    data: pd.DataFrame,
    covariates: Sequence[str] = (),
    *,
    conf_level: float = 0.95,
    time: str = "time",
    event: str = "event",
    iv_start: str = "iv_start",
) -> TimeVaryingCoxResult:
    """Hazard ratio of IV (from the first IV dose on) vs SC, with baseline ``covariates``, on the
    rows of :func:`start_stop`. Rows with a missing covariate are dropped."""
    from lifelines import CoxTimeVaryingFitter
    from lifelines.exceptions import ConvergenceError, ConvergenceWarning

    covariates = list(covariates)
    require_columns(data, covariates)
    d = data.loc[data[covariates].notna().all(axis=1)] if covariates else data
    rows = start_stop(d, covariates, time=time, event=event, iv_start=iv_start)
    terms = ["iv", *covariates]
    n, events = int(rows["patient"].nunique()), int(rows["event"].sum())
    nan = pd.DataFrame({c: [np.nan] * len(terms) for c in TV_COLUMNS}).assign(term=terms)[TV_COLUMNS]

    def fail(reason):
        return TimeVaryingCoxResult(False, reason, nan, n, events, rows)

    if events == 0:
        return fail("no events")
    for c in terms:
        if rows[c].nunique() < 2:
            return fail(f"{c!r} is constant")
    fit_df = rows[["start", "stop", "event", *terms]].astype(float)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ctv = CoxTimeVaryingFitter().fit(fit_df, event_col="event", start_col="start", stop_col="stop")
    except (ConvergenceError, np.linalg.LinAlgError, ValueError, FloatingPointError) as exc:
        return fail(f"fit failed: {str(exc).strip().splitlines()[0]}")
    if any(issubclass(w.category, ConvergenceWarning) and "converge" in str(w.message).lower() for w in caught):
        return fail("did not converge (possible separation)")
    b = ctv.params_[terms].to_numpy(dtype=float)
    se = ctv.standard_errors_[terms].to_numpy(dtype=float)
    if not (np.isfinite(b).all() and np.isfinite(se).all()):
        return fail("estimates not finite")
    w = wald_columns(b, se, conf_level)
    table = pd.DataFrame({"term": terms, "coef": w["coef"], "se": w["se"], "hr": np.exp(w["coef"]),
                          "hr_lcl": np.exp(w["lcl"]), "hr_ucl": np.exp(w["ucl"]), "z": w["z"], "p": w["p"]})
    return TimeVaryingCoxResult(True, None, table[TV_COLUMNS], n, events, rows)
