"""Weighted outcome models with robust (sandwich) variance: the effect in a weighted pseudo-population.

The treatment effect of an inverse-probability (or ATT, overlap) weighted analysis: the
outcome regressed on the 0/1 treatment (and optional further covariates) with the balancing
weights as case weights, and a sandwich variance, which treats the weights as known (the usual
conservative choice for IPT weights, as R ``lm``/``glm`` + ``sandwich``, ``geeglm`` and
``coxph(robust = TRUE)``).

* :func:`weighted_glm`, R ``lm(y ~ t, weights = w)`` (``family="gaussian"``) or
  ``glm(y ~ t, family = binomial / poisson, weights = w)`` with ``sandwich::vcovHC(type =
  "HC0")``: statsmodels ``GLM(y, X, family, var_weights=w).fit(cov_type="HC0")``. With
  ``var_weights`` the score of row i is ``w_i x_i (y_i - mu_i) / V(mu_i)``, as R's, and HC0's
  meat sums their outer products, so it reproduces R exactly (lalonde ATT 1214.07, HC0 se
  824.05; NHEFS chapter 12 3.4405, se 0.5255). ``freq_weights`` gives the same estimate but
  not R's robust se (lalonde 730.65): it treats a weight as a count of identical rows, so its
  meat sums ``w_i s_i s_i'`` instead of ``(w_i s_i)(w_i s_i)'``. Rows of weight 0 are left
  out of the fit (they add nothing; R drops them too).
  Effects: a mean difference, or the log odds ratio / log rate ratio with ``ratio`` = exp.
  Wald CIs use the normal quantile (as the book's ``geeglm`` CI 2.4 to 4.5 kg).
* :func:`weighted_cox`, R ``coxph(Surv(time, event) ~ t, weights = w, robust = TRUE)``, Efron
  ties, computed here (vectorised): the weighted Efron partial likelihood as R's ``coxfit6``
  (each tied death's log-denominator term weighted by the mean weight of the deaths at that
  time), Newton-Raphson with step halving to 1e-10, and R's robust variance ``D'D`` with
  ``D = w_i U_i I^-1`` (the weighted "dfbeta" residuals), where ``U_i`` are the Efron score
  residuals of R's ``coxscore2`` (a death shares the tied deaths' Efron fractions
  ``(1 - k/d)``). NHEFS (chapter 17 set-up): log-HR 0.001294, robust se 0.134096, as R.
  lifelines (0.30) is not used: its weighted Efron estimate is R's once converged (its default
  stopping rules, damped steps of 0.95 and a relative log-likelihood change of 1e-9, leave
  ~3e-6 on the NHEFS log-HR: 0.0012907; ``fit_options={"precision": 1e-14, "r_precision":
  1e-15}`` reach R's 0.0012939), but its robust variance builds score residuals that ignore
  tied times (``_compute_score_within_strata``: "doesn't handle ties"; the risk set of a row
  excludes rows tied with it that sort before it), so on tied data its robust se differs from
  R's (NHEFS 0.133859 against 0.134096); on data without ties the two agree
  (tests/test_stats_weighted.py checks both). Weights must be positive (as R).
* **Not estimable** (``estimable=False`` with a ``reason``) instead of an error: no rows, an
  empty treatment group (among rows of positive weight), a constant or collinear covariate,
  missing / infinite / negative weights, a constant 0/1 outcome or separation (logistic), no
  events or a 0/1 covariate without events at one value (Cox: monotone likelihood), R's
  infinite-coefficient rule, or a fit that fails.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from stormcohort.stats._util import (
    NOISE_WARNINGS,
    as_event,
    as_time,
    design_matrix,
    require_columns,
    wald_columns,
)
from stormcohort.stats.cox import _bucket_sum

__all__ = ["WeightedFit", "weighted_cox", "weighted_glm"]

TABLE_COLUMNS = ["term", "coef", "se", "se_naive", "lcl", "ucl", "ratio", "ratio_lcl", "ratio_ucl", "z", "p"]
FAMILIES = {"gaussian": "linear", "linear": "linear", "binomial": "logistic", "logistic": "logistic",
            "poisson": "poisson"}
_EPS = 1e-9  # R coxph.control(eps)
_TOLER_INF = np.sqrt(_EPS)  # R coxph.control(toler.inf)


@dataclass(frozen=True)
class WeightedFit:
    """A weighted outcome model's treatment effect with robust variance.

    ``estimate`` is the treatment coefficient (mean difference, log-OR, log rate ratio or
    log-HR), ``se`` its robust se, ``lcl``/``ucl`` the Wald limits, ``p`` the two-sided normal
    p-value; ``ratio``/``ratio_lcl``/``ratio_ucl`` their exponentials (NaN for a linear model).
    ``table`` has every term (``TABLE_COLUMNS``; ``se_naive`` is the model-based se).
    ``variance`` names the estimator. Not estimable: NaN numbers and a ``reason``.
    """

    estimable: bool
    reason: str | None
    model: str
    term: str
    estimate: float
    se: float
    lcl: float
    ucl: float
    z: float
    p: float
    ratio: float
    ratio_lcl: float
    ratio_ucl: float
    table: pd.DataFrame
    n: int
    events: int | None
    sum_weights: float
    variance: str
    warnings: tuple[str, ...] = ()


def _first_line(obj) -> str:
    lines = str(obj).strip().splitlines()
    return lines[0].strip() if lines else ""


def _nan_fit(model, term, names, reason, n, events, sum_w, variance, warns=()) -> WeightedFit:
    table = pd.DataFrame({c: [np.nan] * len(names) for c in TABLE_COLUMNS}).assign(term=names)[TABLE_COLUMNS]
    nan = np.nan
    return WeightedFit(False, reason, model, term, nan, nan, nan, nan, nan, nan, nan, nan, nan, table, n, events,
                       sum_w, variance, tuple(warns))


def _fit_from(model, names, beta, se, se_naive, conf_level, n, events, sum_w, variance, warns) -> WeightedFit:
    w = wald_columns(beta, se, conf_level)
    log_scale = model != "linear"
    table = pd.DataFrame({
        "term": names,
        "coef": w["coef"],
        "se": w["se"],
        "se_naive": np.asarray(se_naive, dtype=float),
        "lcl": w["lcl"],
        "ucl": w["ucl"],
        "ratio": np.exp(w["coef"]) if log_scale else np.nan,
        "ratio_lcl": np.exp(w["lcl"]) if log_scale else np.nan,
        "ratio_ucl": np.exp(w["ucl"]) if log_scale else np.nan,
        "z": w["z"],
        "p": w["p"],
    })[TABLE_COLUMNS]
    j = 1 if model != "cox" else 0  # the treatment's row (after the intercept in a GLM)
    r = table.iloc[j]
    return WeightedFit(True, None, model, names[j], float(r["coef"]), float(r["se"]), float(r["lcl"]),
                       float(r["ucl"]), float(r["z"]), float(r["p"]), float(r["ratio"]), float(r["ratio_lcl"]),
                       float(r["ratio_ucl"]), table, n, events, sum_w, variance, tuple(warns))


def _prepare(data, columns, covariates, weights, treatment):
    """Complete rows, the weights for them and the design (treatment first, then covariates).

    Returns (d, w, X_df, problem): ``problem`` is a reason when the weights or design are unusable.
    """
    if treatment in covariates:
        raise ValueError(f"treatment {treatment!r} is also among the covariates")
    wcol = weights if isinstance(weights, str) else None
    require_columns(data, [*columns, treatment, *covariates, wcol])
    if wcol is None:
        if isinstance(weights, pd.Series) and not weights.index.equals(data.index):
            weights = weights.reindex(data.index)
        w_all = np.asarray(weights, dtype=float)
        if w_all.shape != (len(data),):
            raise ValueError(f"weights have shape {w_all.shape}, data has {len(data)} rows")
    else:
        w_all = pd.to_numeric(data[wcol], errors="coerce").to_numpy(dtype=float)
    keep = data[[*columns, treatment, *covariates]].notna().all(axis=1).to_numpy()
    d = data.loc[keep]
    w = w_all[keep]
    t = as_event(d[treatment], treatment)
    X_df, terms = design_matrix(d, covariates)
    X_df.insert(0, treatment, t.astype(float))
    bad = ~np.isfinite(w)
    if len(d) == 0:
        return d, w, X_df, "no complete observations"
    if bad.any():
        return d, w, X_df, f"weights missing or infinite for {int(bad.sum())} row(s)"
    if (w < 0).any():
        return d, w, X_df, f"negative weights for {int((w < 0).sum())} row(s)"
    pos = w > 0
    for g in (0, 1):
        if not (pos & (t == g)).any():
            return d, w, X_df, f"treatment group {g} is empty (no rows with a positive weight)"
    single = [var for var, cols in terms.items() if not cols]
    if single:
        return d, w, X_df, f"covariate {single[0]!r} has a single level"
    for c in X_df.columns[1:]:
        if X_df.loc[pos, c].nunique() <= 1:
            return d, w, X_df, f"covariate {c!r} is constant"
    return d, w, X_df, None


# --------------------------------------------------------------------------- GLM


def weighted_glm(
    data: pd.DataFrame,
    outcome: str,
    treatment: str,
    weights,
    *,
    covariates: Sequence[str] = (),
    family: str = "gaussian",
    conf_level: float = 0.95,
) -> WeightedFit:
    """Weighted linear / logistic / Poisson regression of ``outcome`` on ``treatment`` (0/1) and
    ``covariates``, with HC0 sandwich variance (R ``lm``/``glm(weights = w)`` + ``vcovHC(type =
    "HC0")``; see the module doc).

    ``weights``: a column of ``data`` or array-like aligned with its rows. ``family``:
    ``"gaussian"`` (``"linear"``), ``"binomial"`` (``"logistic"``) or ``"poisson"``. Rows with a
    missing outcome, treatment or covariate are dropped, and rows of weight 0 add nothing (``n``
    counts the rows of positive weight, as R's ``nobs``).
    """
    from statsmodels.genmod import families
    from statsmodels.genmod.generalized_linear_model import GLM
    from statsmodels.tools.sm_exceptions import PerfectSeparationError, PerfectSeparationWarning

    if family not in FAMILIES:
        raise ValueError(f"family must be one of {sorted(FAMILIES)}, got {family!r}")
    model = FAMILIES[family]
    covariates = list(covariates)
    variance = "HC0 sandwich (R sandwich::vcovHC type HC0)"
    d, w, X_df, problem = _prepare(data, [outcome], covariates, weights, treatment)
    names = ["(Intercept)", *X_df.columns]
    n, sum_w = len(d), float(w[np.isfinite(w)].sum())
    if model == "logistic" and n:
        y = as_event(d[outcome], outcome).astype(float)
    elif n:
        y = pd.to_numeric(d[outcome], errors="coerce").to_numpy(dtype=float)
        if np.isnan(y).any():
            raise ValueError(f"column {outcome!r} must be numeric")
        if model == "poisson" and (y < 0).any():
            raise ValueError(f"column {outcome!r} must be non-negative for a Poisson model")
    else:
        y = np.empty(0)
    pos = w > 0 if len(w) else np.zeros(0, dtype=bool)
    events = int(y[pos].sum()) if model == "logistic" and n else None

    def fail(reason, warns=()):
        return _nan_fit(model, treatment, names, reason, n, events, sum_w, variance, warns)

    if problem:
        return fail(problem)
    if model == "logistic":
        if y[pos].min() == y[pos].max():
            return fail(f"outcome is constant ({int(y[pos][0])} for every row): no variation to model")
        for c in X_df.columns:
            x = X_df[c].to_numpy()[pos]
            vals = np.unique(x)
            if len(vals) == 2:
                for v in vals:
                    yy = y[pos][x == v]
                    if yy.min() == yy.max():
                        return fail(f"separation: outcome is always {int(yy[0])} where {c} == {v:g}")
    X = np.column_stack([np.ones(n), X_df.to_numpy(dtype=float)])
    if np.linalg.matrix_rank(X[pos]) < X.shape[1]:
        return fail("covariates are linearly dependent (collinear design)")
    fam = {"linear": families.Gaussian, "logistic": families.Binomial, "poisson": families.Poisson}[model]()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            # rows of weight 0 add nothing to the estimating equations or the meat (R drops
            # them too); statsmodels' variance divides by the weights, so they are left out
            res = GLM(y[pos], X[pos], family=fam, var_weights=w[pos]).fit(cov_type="HC0", maxiter=100)
    except (PerfectSeparationError, np.linalg.LinAlgError, ValueError, FloatingPointError) as exc:
        return fail(f"fit failed: {_first_line(exc)}")
    msgs = [_first_line(c.message) for c in caught if not issubclass(c.category, NOISE_WARNINGS)]
    if any(issubclass(c.category, PerfectSeparationWarning) for c in caught):
        return fail("perfect separation detected by statsmodels", msgs)
    if not res.converged:
        return fail("IRLS did not converge", msgs)
    if model == "logistic":
        mu = res.fittedvalues[pos]
        if np.any(mu < 1e-10) or np.any(mu > 1 - 1e-10):
            return fail("fitted probabilities of 0 or 1: (quasi-)complete separation", msgs)
    beta, se = np.asarray(res.params), np.asarray(res.bse)
    if not (np.all(np.isfinite(beta)) and np.all(np.isfinite(se))):
        return fail("estimates or standard errors not finite", msgs)
    return _fit_from(model, names, beta, se, _naive_se(res), conf_level, int(pos.sum()), events, sum_w, variance,
                     msgs)


def _naive_se(res) -> np.ndarray:
    """Model-based se of a GLM fit (statsmodels' ``nonrobust`` covariance: scale * (X'WX)^-1)."""
    try:
        return np.sqrt(np.diag(res.normalized_cov_params) * res.scale)
    except (AttributeError, ValueError):
        return np.full(len(res.params), np.nan)


# --------------------------------------------------------------------------- Cox


@dataclass
class _WEfron:
    loglik: float
    score: np.ndarray
    info: np.ndarray
    resid: np.ndarray | None = None  # Efron score residuals U_i (n x p), unweighted by w_i


def _wefron(X, time, event, w, beta, residuals=False) -> _WEfron:
    """Weighted Efron log partial likelihood, score, information (as R coxfit6) and, optionally,
    the score residuals of R's coxscore2; vectorised over event-time buckets like cox._efron."""
    n, p = X.shape
    Xc = X - np.average(X, axis=0, weights=w)  # centring changes nothing but rounding
    eta = Xc @ beta
    shift = eta.max() if n else 0.0
    r = np.exp(eta - shift)  # risk scores / e^shift
    rw = w * r
    etimes = np.unique(time[event == 1])
    D = len(etimes)
    b = np.searchsorted(etimes, time, side="right")  # at risk at event times 0..b-1
    rx = rw[:, None] * Xc
    rxx = rx[:, :, None] * Xc[:, None, :]
    S0 = np.cumsum(np.bincount(b, weights=rw, minlength=D + 1)[::-1])[::-1][1:]
    S1 = np.cumsum(_bucket_sum(b, rx, D + 1)[::-1], axis=0)[::-1][1:]
    S2 = np.cumsum(_bucket_sum(b, rxx, D + 1)[::-1], axis=0)[::-1][1:]
    dead = event == 1
    j_dead = np.searchsorted(etimes, time[dead])
    d = np.bincount(j_dead, minlength=D).astype(float)
    meanwt = np.bincount(j_dead, weights=w[dead], minlength=D) / d
    D0 = np.bincount(j_dead, weights=rw[dead], minlength=D)
    D1 = _bucket_sum(j_dead, rx[dead], D)
    D2 = _bucket_sum(j_dead, rxx[dead], D)
    # Efron rows: the k-th of d tied deaths removes k/d of the deaths' risk
    row_j = np.repeat(np.arange(D), d.astype(int))
    first = np.concatenate([[0], np.cumsum(d)[:-1]]).astype(int)
    f = (np.arange(len(row_j)) - first[row_j]) / d[row_j]
    den = S0[row_j] - f * D0[row_j]
    mean = (S1[row_j] - f[:, None] * D1[row_j]) / den[:, None]
    V = (S2[row_j] - f[:, None, None] * D2[row_j]) / den[:, None, None] - mean[:, :, None] * mean[:, None, :]
    mw = meanwt[row_j]
    loglik = float(np.sum(w[dead] * (eta[dead] - shift)) - np.sum(mw * np.log(den)))
    score = (w[dead][:, None] * Xc[dead]).sum(axis=0) - (mw[:, None] * mean).sum(axis=0)
    info = (mw[:, None, None] * V).sum(axis=0)
    out = _WEfron(loglik, score, info)
    if not residuals:
        return out
    # hazard increments per Efron row (on the shifted scale: times r_i, not exp(eta_i))
    haz = mw / den
    H = np.bincount(row_j, weights=haz, minlength=D)  # censored or later: full share of each row
    HX = _bucket_sum(row_j, haz[:, None] * mean, D)
    H2 = np.bincount(row_j, weights=(1 - f) * haz, minlength=D)  # a death: (1 - k/d) of row k
    HX2 = _bucket_sum(row_j, ((1 - f) * haz)[:, None] * mean, D)
    XM = _bucket_sum(row_j, mean / d[row_j][:, None], D)  # the deaths' mean of the Efron means
    before = np.searchsorted(etimes, time, side="left")  # event times strictly before t_i
    cH = np.concatenate([[0.0], np.cumsum(H)])[before]
    cHX = np.concatenate([np.zeros((1, p)), np.cumsum(HX, axis=0)])[before]
    j = np.minimum(before, max(D - 1, 0))
    at_event = (before < D) & (etimes[j] == time)
    cH = cH + np.where(at_event, np.where(dead, H2[j], H[j]), 0.0)
    cHX = cHX + np.where(at_event[:, None], np.where(dead[:, None], HX2[j], HX[j]), 0.0)
    out.resid = np.where(dead[:, None], Xc - XM[j], 0.0) - r[:, None] * (Xc * cH[:, None] - cHX)
    return out


def _wcox_newton(X, t, e, w, max_iter=50, tol=1e-10):
    """Newton-Raphson with step halving from 0 on the weighted Efron likelihood (concave)."""
    beta = np.zeros(X.shape[1])
    cur = _wefron(X, t, e, w, beta)
    for _ in range(max_iter):
        try:
            step = np.linalg.solve(cur.info, cur.score)
        except np.linalg.LinAlgError:
            return beta, cur, False
        if not np.all(np.isfinite(step)):
            return beta, cur, False
        if np.max(np.abs(step)) < tol:
            return beta, cur, True
        for _ in range(30):
            new = _wefron(X, t, e, w, beta + step)
            if np.isfinite(new.loglik) and new.loglik >= cur.loglik - 1e-12 * max(1.0, abs(cur.loglik)):
                break
            step = step / 2
        else:
            return beta, cur, np.max(np.abs(step)) < 1e-8
        beta, cur = beta + step, new
    return beta, cur, False


def weighted_cox(
    data: pd.DataFrame,
    time: str,
    event: str,
    treatment: str,
    weights,
    *,
    covariates: Sequence[str] = (),
    conf_level: float = 0.95,
) -> WeightedFit:
    """Weighted Cox PH model (Efron ties) of ``time``/``event`` on ``treatment`` (0/1) and
    ``covariates`` with R's robust variance (``coxph(..., weights = w, robust = TRUE)``; module
    doc). ``weights``: a column of ``data`` or array-like aligned with its rows, all positive.
    ``table["se"]`` is robust, ``se_naive`` R's ``naive.var``; ``ratio`` is the hazard ratio.
    """
    covariates = list(covariates)
    variance = "robust sandwich D'D, D = weighted dfbeta residuals (R coxph robust = TRUE)"
    d, w, X_df, problem = _prepare(data, [time, event], covariates, weights, treatment)
    names = list(X_df.columns)
    n, sum_w = len(d), float(w[np.isfinite(w)].sum())
    t = as_time(d[time], time) if n else np.empty(0)
    e = as_event(d[event], event) if n else np.empty(0, dtype=np.int64)
    events = int(e.sum())

    def fail(reason, warns=()):
        return _nan_fit("cox", treatment, names, reason, n, events, sum_w, variance, warns)

    if problem:
        return fail(problem)
    if (w == 0).any():
        return fail(f"weights of 0 for {int((w == 0).sum())} row(s): Cox weights must be positive (as R coxph)")
    if events == 0:
        return fail("no events")
    X = X_df.to_numpy(dtype=float)
    for j, c in enumerate(names):
        vals = np.unique(X[:, j])
        if len(vals) == 2:
            for v in vals:
                if e[X[:, j] == v].sum() == 0:
                    return fail(f"no events where {c} == {v:g} (monotone likelihood: coefficient is infinite)")
    if np.linalg.matrix_rank(np.column_stack([np.ones(n), X])) < X.shape[1] + 1:
        return fail("covariates are linearly dependent (collinear design)")
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        beta, at, converged = _wcox_newton(X, t, e, w)
    if not converged:
        return fail("Newton-Raphson did not converge (possible separation)")
    try:
        var = np.linalg.inv(at.info)
    except np.linalg.LinAlgError:
        return fail("information matrix is singular at the estimate")
    infs = np.abs(var @ at.score)
    inf_flag = (infs > _EPS) & (infs > _TOLER_INF * np.abs(beta))
    if inf_flag.any():
        bad = ", ".join(c for c, flag in zip(names, inf_flag) if flag)
        return fail(f"loglik converged before {bad}; coefficient may be infinite (separation)")
    res = _wefron(X, t, e, w, beta, residuals=True)
    dfbeta = (w[:, None] * res.resid) @ var
    robust = dfbeta.T @ dfbeta
    se, naive = np.sqrt(np.diag(robust)), np.sqrt(np.diag(var))
    if not (np.all(np.isfinite(beta)) and np.all(np.isfinite(se))):
        return fail("numeric overflow in the fit")
    return _fit_from("cox", names, beta, se, naive, conf_level, n, events, sum_w, variance, ())
