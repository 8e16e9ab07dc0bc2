"""Cox proportional-hazards regression (Efron ties) and the Schoenfeld/score test of PH.

* **Estimator**: maximum partial likelihood with Efron's approximation for tied event times,
  fitted by lifelines' ``CoxPHFitter`` (Newton-Raphson; lifelines uses Efron ties, which is
  also R ``coxph``'s default; checked against R on lung and rossi in the tests), then
  finished with a few Newton steps on the same Efron likelihood (:func:`_newton_polish`)
  because lifelines' stopping rule leaves ~1e-6 on the coefficients.
* **Variance**: inverse of the observed information (negative Hessian of the Efron log
  partial likelihood) at the estimate; Wald CIs ``exp(coef +/- z se)``.
* **Global tests**: likelihood ratio ``2 (l(b) - l(0))``, Wald ``b' V^-1 b`` and score
  ``U(0)' I(0)^-1 U(0)``, each chi-square on p df, as printed by R's ``summary.coxph``.
  lifelines reports only the LR test, so the score test (and the information at 0 and at the
  estimate) come from a vectorised Efron computation here (:func:`_efron`).
* **Concordance**: Harrell's C of the linear predictor (lifelines ``concordance_index_``;
  ties in the predictor count 1/2, as R's ``concordance``); NaN with a warning when no pair is
  comparable (e.g. every death at one time with all then at risk dying), where lifelines raises.
* **Not estimable** instead of a crash: no observations, no events, a constant covariate,
  a linearly dependent design, a 0/1 covariate with no events at one of its values (monotone
  likelihood: the coefficient is infinite), a fit that fails or does not converge, or R's
  own "Loglik converged before variable ...; coefficient may be infinite" rule
  (``|I^-1 U| > 1e-9`` and ``> sqrt(1e-9) |b|`` at the estimate).

:func:`cox_zph` is the proportional-hazards test of R survival >= 3.0 ``cox.zph``: a score
test, at the fitted ``b``, of adding ``x * g(t)`` for each term (``g`` = centred transform of
time, default ``"km"`` = 1 - left-continuous KM), using the full 2p x 2p information matrix.
It is *not* the survival < 3.0 / lifelines ``proportional_hazard_test`` statistic (a
regression of scaled Schoenfeld residuals on g(t) with an approximate variance), which gives
somewhat different numbers.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from stormcohort.stats._util import (
    as_event,
    as_time,
    complete_rows,
    design_matrix,
    require_columns,
    wald_columns,
)

__all__ = ["CoxResult", "cox_ph", "cox_zph"]

_EPS = 1e-9  # R coxph.control(eps)
_TOLER_INF = np.sqrt(_EPS)  # R coxph.control(toler.inf)
_NOISE_STEP = 1e-7  # Newton steps below this may be rounding noise (_newton_polish)

TABLE_COLUMNS = ["term", "coef", "se", "hr", "hr_lcl", "hr_ucl", "z", "p", "n", "events"]
TEST_COLUMNS = ["test", "statistic", "df", "p"]


# --------------------------------------------------------------------------- Efron pieces


@dataclass
class _EfronPieces:
    loglik: float
    score: np.ndarray  # U(b), p
    info: np.ndarray  # I(b), p x p
    score_g: np.ndarray | None = None  # sum g(t) (x - xbar) over deaths, p
    info_bg: np.ndarray | None = None  # sum g V, p x p
    info_gg: np.ndarray | None = None  # sum g^2 V, p x p


def _bucket_sum(index: np.ndarray, values: np.ndarray, size: int) -> np.ndarray:
    """``out[k] = sum of values[i] over i with index[i] == k``: what ``np.add.at`` computes, in
    the same summation order (so bit for bit the same), by one ``np.bincount`` per trailing
    element: O(n) each instead of add.at's slow unbuffered loop."""
    n, tail = values.shape[0], values.shape[1:]
    flat = values.reshape(n, -1)
    out = np.empty((size, flat.shape[1]))
    for k in range(flat.shape[1]):
        out[:, k] = np.bincount(index, weights=flat[:, k], minlength=size)
    return out.reshape((size, *tail))


def _efron(X: np.ndarray, time: np.ndarray, event: np.ndarray, beta: np.ndarray, g_event=None) -> _EfronPieces:
    """Efron log partial likelihood, score and information at ``beta`` (no loops over subjects).

    ``g_event``: optional value of g(t) for each distinct event time (ascending), giving the
    extra pieces of R's zph1.c (score and information of the x * g(t) terms at gamma = 0).
    Risk-set sums are accumulated over event-time buckets (memory D x p x p, D = distinct
    event times); each event time with d deaths expands into d Efron rows with the deaths'
    risk weight reduced by r/d, r = 0..d-1.
    """
    Xc = X - X.mean(axis=0)  # as R: centring stabilises, changes nothing
    eta = Xc @ beta
    eta_shift = eta.max() if len(eta) else 0.0
    r = np.exp(eta - eta_shift)
    etimes = np.unique(time[event == 1])
    D = len(etimes)
    # bucket b(i) = number of event times <= time_i; subject is at risk at event times 0..b-1
    b = np.searchsorted(etimes, time, side="right")
    rx = r[:, None] * Xc
    rxx = rx[:, :, None] * Xc[:, None, :]
    S0 = np.bincount(b, weights=r, minlength=D + 1)
    S1 = _bucket_sum(b, rx, D + 1)
    S2 = _bucket_sum(b, rxx, D + 1)
    # risk set at event time j = buckets j+1..D  (time >= etimes[j])
    S0 = np.cumsum(S0[::-1])[::-1][1:]
    S1 = np.cumsum(S1[::-1], axis=0)[::-1][1:]
    S2 = np.cumsum(S2[::-1], axis=0)[::-1][1:]
    # death sums per event time
    dead = event == 1
    j_dead = np.searchsorted(etimes, time[dead])
    d = np.bincount(j_dead, minlength=D).astype(float)
    D0 = np.bincount(j_dead, weights=r[dead], minlength=D)
    D1 = _bucket_sum(j_dead, rx[dead], D)
    D2 = _bucket_sum(j_dead, rxx[dead], D)
    # Efron rows
    row_j = np.repeat(np.arange(D), d.astype(int))
    first = np.concatenate([[0], np.cumsum(d)[:-1]]).astype(int)
    rr = np.arange(len(row_j)) - first[row_j]
    f = rr / d[row_j]
    den = S0[row_j] - f * D0[row_j]
    num1 = S1[row_j] - f[:, None] * D1[row_j]
    num2 = S2[row_j] - f[:, None, None] * D2[row_j]
    mean = num1 / den[:, None]
    V = num2 / den[:, None, None] - mean[:, :, None] * mean[:, None, :]
    loglik = float((eta[dead] - eta_shift).sum() - np.log(den).sum())
    score = Xc[dead].sum(axis=0) - mean.sum(axis=0)
    info = V.sum(axis=0)
    out = _EfronPieces(loglik=loglik, score=score, info=info)
    if g_event is not None:
        gr = np.asarray(g_event, dtype=float)[row_j]
        gd = np.asarray(g_event, dtype=float)[j_dead]
        out.score_g = (gd[:, None] * Xc[dead]).sum(axis=0) - (gr[:, None] * mean).sum(axis=0)
        out.info_bg = (gr[:, None, None] * V).sum(axis=0)
        out.info_gg = ((gr**2)[:, None, None] * V).sum(axis=0)
    return out


def _newton_polish(X, t, e, beta, max_steps=25, tol=1e-10):
    """Newton-Raphson steps (with step halving) on the exact Efron likelihood from ``beta``.

    lifelines stops once its Newton decrement is below 1e-7, which leaves coefficients about
    1e-6 from the maximum (lung ~ age + sex + ph.ecog: sex -0.5526104 vs R's -0.552612); a few
    full steps reach R's precision. A diverging coefficient keeps moving, which the
    infinite-coefficient check then reports. At large n the score's rounding noise can exceed
    ``tol``: steps below ``_NOISE_STEP`` that no longer shrink (or that lower the
    log-likelihood) end the polish instead of cycling through noise.
    """
    cur = _efron(X, t, e, beta)
    previous = np.inf
    for _ in range(max_steps):
        try:
            step = np.linalg.solve(cur.info, cur.score)
        except np.linalg.LinAlgError:
            break
        if not np.all(np.isfinite(step)) or np.max(np.abs(step)) < tol:
            break
        size = np.max(np.abs(step))
        # Near the maximum Newton steps shrink quadratically; once they stop shrinking they are
        # rounding noise (large n: the score's noise exceeds tol and the log-likelihood's exceeds
        # 1e-12), and stepping or halving further only burns evaluations.
        noise = size < _NOISE_STEP
        if noise and size > 0.5 * previous:
            break
        for _ in range(20):
            new = _efron(X, t, e, beta + step)
            if new.loglik >= cur.loglik - 1e-12:
                break
            if noise:
                new = None
                break
            step = step / 2
        else:
            break
        if new is None:
            break
        previous = size
        beta, cur = beta + step, new
    return beta, cur


# --------------------------------------------------------------------------- result


@dataclass(frozen=True)
class CoxResult:
    """A Cox PH fit (Efron ties; variance = inverse observed information).

    ``table``: ``term, coef, se, hr, hr_lcl, hr_ucl, z, p, n, events`` (one row per design
    column; all NaN but n/events when not estimable). ``tests``: ``test, statistic, df, p`` for
    ``likelihood_ratio``, ``wald``, ``score``. ``events_per_variable`` = events / parameters.
    ``estimable`` is False with a ``reason`` whenever the model cannot be trusted.
    """

    estimable: bool
    reason: str | None
    table: pd.DataFrame
    tests: pd.DataFrame
    concordance: float
    n: int
    events: int
    n_parameters: int
    events_per_variable: float
    loglik: float
    loglik_null: float
    warnings: tuple[str, ...] = ()
    terms: dict[str, list[str]] = field(default_factory=dict)
    # design kept for cox_zph (not part of the tidy output)
    _X: np.ndarray | None = field(default=None, repr=False)
    _time: np.ndarray | None = field(default=None, repr=False)
    _event: np.ndarray | None = field(default=None, repr=False)
    _beta: np.ndarray | None = field(default=None, repr=False)


def _first_line(obj) -> str:
    lines = str(obj).strip().splitlines()
    return lines[0].strip() if lines else ""


def _not_estimable(reason, columns, n, events, terms, warns=(), loglik_null=np.nan) -> CoxResult:
    p = len(columns)
    table = pd.DataFrame({c: [np.nan] * p for c in TABLE_COLUMNS})
    table["term"] = list(columns)
    table["n"] = n
    table["events"] = events
    tests = pd.DataFrame({"test": ["likelihood_ratio", "wald", "score"], "statistic": np.nan, "df": p, "p": np.nan})
    return CoxResult(
        estimable=False,
        reason=reason,
        table=table[TABLE_COLUMNS],
        tests=tests[TEST_COLUMNS],
        concordance=np.nan,
        n=n,
        events=events,
        n_parameters=p,
        events_per_variable=events / p if p else np.nan,
        loglik=np.nan,
        loglik_null=loglik_null,
        warnings=tuple(warns),
        terms=terms,
    )


def cox_ph(
    data: pd.DataFrame,
    time: str,
    event: str,
    covariates: Sequence[str],
    *,
    conf_level: float = 0.95,
) -> CoxResult:
    """Fit a Cox PH model with Efron ties; never raises for data problems (see module doc).

    ``covariates``: column names; numeric/boolean columns enter as is, others are
    treatment-coded (first level = reference). Rows with any missing value in time, event or a
    covariate are dropped (R's na.omit), so ``n`` may be below ``len(data)``.
    """
    from lifelines import CoxPHFitter
    from lifelines.exceptions import (
        ConvergenceError,
        ConvergenceWarning,
        StatisticalWarning,
    )
    from lifelines.utils import concordance_index

    covariates = list(covariates)
    if not covariates:
        raise ValueError("cox_ph needs at least one covariate")
    require_columns(data, [time, event, *covariates])
    d = complete_rows(data, [time, event, *covariates])
    X_df, terms = design_matrix(d, covariates)
    columns = list(X_df.columns)
    t = as_time(d[time], time)
    e = as_event(d[event], event)
    n, events = len(d), int(e.sum())
    X = X_df.to_numpy(dtype=float)

    if n == 0:
        return _not_estimable("no complete observations", columns, n, events, terms)
    if events == 0:
        return _not_estimable("no events", columns, n, events, terms)
    single = [var for var, cols in terms.items() if not cols]
    if single:
        return _not_estimable(f"covariate {single[0]!r} has a single level", columns, n, events, terms)
    for j, c in enumerate(columns):
        vals = np.unique(X[:, j])
        if len(vals) == 1:
            return _not_estimable(f"covariate {c!r} is constant", columns, n, events, terms)
        if len(vals) == 2:
            for v in vals:
                if e[X[:, j] == v].sum() == 0:
                    return _not_estimable(
                        f"no events where {c} == {v:g} (monotone likelihood: coefficient is infinite)",
                        columns,
                        n,
                        events,
                        terms,
                    )
    if np.linalg.matrix_rank(np.column_stack([np.ones(n), X])) < len(columns) + 1:
        return _not_estimable("covariates are linearly dependent (collinear design)", columns, n, events, terms)

    null = _efron(X, t, e, np.zeros(len(columns)))
    fit_df = pd.DataFrame(X, columns=columns)
    fit_df["__time"], fit_df["__event"] = t, e
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            cph = CoxPHFitter().fit(fit_df, duration_col="__time", event_col="__event")
    except (ConvergenceError, np.linalg.LinAlgError, ValueError, FloatingPointError) as exc:
        return _not_estimable(f"fit failed: {_first_line(exc)}", columns, n, events, terms, (), null.loglik)
    msgs = [_first_line(w.message) for w in caught if issubclass(w.category, (ConvergenceWarning, StatisticalWarning))]
    # lifelines' Newton loop reports non-convergence with these messages; its other
    # ConvergenceWarnings (low variance, correlation with time) are hints kept in `warnings`.
    failed = [m for m in msgs if m.startswith(("Newton-Raphson", "The log-likelihood is getting suspiciously"))]
    warns = [m for m in msgs if m not in failed]
    if failed:
        return _not_estimable(
            f"did not converge (possible separation): {failed[0]}", columns, n, events, terms, msgs, null.loglik
        )

    beta, at = _newton_polish(X, t, e, cph.params_.to_numpy(dtype=float))
    try:
        var = np.linalg.inv(at.info)
    except np.linalg.LinAlgError:
        reason = "information matrix is singular at the estimate"
        return _not_estimable(reason, columns, n, events, terms, warns, null.loglik)
    if not (np.all(np.isfinite(beta)) and np.all(np.isfinite(var))):
        return _not_estimable("numeric overflow in the fit", columns, n, events, terms, warns, null.loglik)
    infs = np.abs(var @ at.score)
    inf_flag = (infs > _EPS) & (infs > _TOLER_INF * np.abs(beta))
    if inf_flag.any():
        bad = ", ".join(c for c, f in zip(columns, inf_flag) if f)
        return _not_estimable(
            f"loglik converged before {bad}; coefficient may be infinite (separation)",
            columns,
            n,
            events,
            terms,
            warns,
            null.loglik,
        )

    w = wald_columns(beta, np.sqrt(np.diag(var)), conf_level)
    table = pd.DataFrame(
        {
            "term": columns,
            "coef": w["coef"],
            "se": w["se"],
            "hr": np.exp(w["coef"]),
            "hr_lcl": np.exp(w["lcl"]),
            "hr_ucl": np.exp(w["ucl"]),
            "z": w["z"],
            "p": w["p"],
            "n": n,
            "events": events,
        }
    )
    p = len(columns)
    lr = 2 * (at.loglik - null.loglik)
    wald = float(beta @ np.linalg.solve(var, beta))
    score = float(null.score @ np.linalg.solve(null.info, null.score))
    tests = pd.DataFrame(
        {
            "test": ["likelihood_ratio", "wald", "score"],
            "statistic": [lr, wald, score],
            "df": p,
            "p": stats.chi2.sf([lr, wald, score], p),
        }
    )
    try:
        concordance = float(concordance_index(t, -(X @ beta), e))
    except ZeroDivisionError:  # lifelines: "No admissable pairs in the dataset."
        concordance = np.nan
        warns.append("concordance not defined: no comparable pairs "
                     "(no death before another patient's end of follow-up)")
    return CoxResult(
        estimable=True,
        reason=None,
        table=table[TABLE_COLUMNS],
        tests=tests[TEST_COLUMNS],
        concordance=concordance,
        n=n,
        events=events,
        n_parameters=p,
        events_per_variable=events / p,
        loglik=at.loglik,
        loglik_null=null.loglik,
        warnings=tuple(warns),
        terms=terms,
        _X=X,
        _time=t,
        _event=e,
        _beta=beta,
    )


# --------------------------------------------------------------------------- PH test


def _km_left(time: np.ndarray, event: np.ndarray) -> np.ndarray:
    """Left-continuous KM S(t-) at each subject's own time (R cox.zph's 'km' transform)."""
    times, first, counts = np.unique(np.sort(time), return_index=True, return_counts=True)
    order = np.argsort(time, kind="stable")
    ev = np.add.reduceat(event[order], first)
    n_risk = len(time) - first
    surv = np.cumprod(1.0 - ev / n_risk)
    idx = np.searchsorted(times, time, side="left")  # number of curve times strictly < t
    return np.concatenate([[1.0], surv])[idx]


def cox_zph(fit: CoxResult, transform: str = "km") -> pd.DataFrame:
    """Test of proportional hazards per term and globally (R survival >= 3.0 ``cox.zph``).

    For each term, the score test at (b-hat, gamma = 0) of adding ``x * g(t)`` to the model,
    with g the chosen transform of time centred at its mean over events: ``"km"`` (default:
    1 - left-continuous Kaplan-Meier), ``"identity"``, ``"rank"`` or ``"log"``; the information
    is the full 2p x 2p Efron information (the beta block is not dropped). Global: all terms
    at once on p df. Multi-column (factor) terms are tested jointly (R ``terms = TRUE``).
    Returns ``term, chisq, df, p`` with a final ``GLOBAL`` row; empty when the fit is not estimable.
    """
    cols = ["term", "chisq", "df", "p"]
    if not fit.estimable or fit._X is None:
        return pd.DataFrame(columns=cols)
    X, t, e, beta = fit._X, fit._time, fit._event, fit._beta
    if transform == "km":
        tt = 1.0 - _km_left(t, e)
    elif transform == "identity":
        tt = t.astype(float)
    elif transform == "rank":
        tt = stats.rankdata(t)
    elif transform == "log":
        tt = np.log(t)
    else:
        raise ValueError(f"transform must be 'km', 'identity', 'rank' or 'log', got {transform!r}")
    g = tt - tt[e == 1].mean()
    g_event = g[e == 1][np.unique(t[e == 1], return_index=True)[1]]  # g at each distinct event time
    pcs = _efron(X, t, e, beta, g_event=g_event)
    p = X.shape[1]
    imat = np.block([[pcs.info, pcs.info_bg], [pcs.info_bg.T, pcs.info_gg]])
    u_full = np.concatenate([np.zeros(p), pcs.score_g])
    col_index = {c: j for j, c in enumerate(fit.table["term"])}
    rows = []
    for term, term_cols in fit.terms.items():
        jj = [col_index[c] for c in term_cols]
        kk = list(range(p)) + [p + j for j in jj]
        u = u_full[kk]
        chisq = float(u @ np.linalg.solve(imat[np.ix_(kk, kk)], u))
        rows.append((term, chisq, len(jj)))
    chisq = float(u_full @ np.linalg.solve(imat, u_full))
    rows.append(("GLOBAL", chisq, p))
    out = pd.DataFrame(rows, columns=["term", "chisq", "df"])
    out["p"] = stats.chi2.sf(out["chisq"], out["df"])
    return out[cols]
