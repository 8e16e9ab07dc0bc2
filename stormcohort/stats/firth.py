"""Firth's penalised-likelihood logistic regression (as R ``logistf``) and ordinary ML logistic.

**Firth** (Firth 1993; Heinze & Schemper 2002): maximises the penalised log-likelihood
``l*(b) = l(b) + 1/2 log det I(b)``, ``I(b) = X' W X``, W = diag(pi (1 - pi)), by Newton-Raphson
on the modified score ``U*(b) = X' (y - pi + h (1/2 - pi))`` (h = hat diagonal) with the
Fisher information as the step matrix, step length capped at 5 and step halving (logistf's
algorithm, run to a tighter tolerance), and every step halved from the first that reverses the
previous one (a two-cycle, as when one patient holds a binary covariate's value: the penalty is
then as curved as the likelihood, see ``_reverses``). statsmodels has no Firth estimator, hence
this module.

* **Variance / se**: current logistf's covariance ``(X' diag(w (1 + h)) X)^-1`` at the
  penalised estimate: the Fisher information of Firth's pseudo-data representation (each
  observation weighted 1 + h/2 at its outcome and h/2 at the other), which reproduces the se
  logistf prints since 2021 (sex2: age 0.4149). ``covariance="fisher"`` gives the plain
  ``(X' W X)^-1`` that older logistf versions and some ports print (age 0.4237).
* **CIs**: profile penalised likelihood: the values of b_j where
  ``2 (l*(b-hat) - max_{b_-j} l*(b_j, b_-j)) = chi2_1(conf_level)`` (logistf's default
  ``pl = TRUE``; the penalty always uses the full design matrix, as logistf). When the profile
  is regular (close to quadratic, as at large n) the limits are found by a safeguarded Newton
  search (the profile's derivative is the j-th modified score at the constrained maximum),
  started from the quadratic approximation, each constrained fit warm started along the
  conditional-mean direction ``I^-1[:, j] / I^-1[j, j]``: about three constrained fits per
  limit, to 1e-10. Otherwise (skewed profiles at small n, separation, where constrained fits
  can have several local maxima and the answer depends on the search path) by outward steps
  and Brent's method, each fit warm started from the previous one.
* **Scale**: rows with the same covariate pattern are fitted once, weighted by their count
  (exact: the likelihood, information, hat values and modified score are sums over rows), so
  categorical designs cost the same at any n; hat diagonals are vectorised.
* **p-values**: penalised likelihood ratio, ``2 (l*(b-hat) - max l*(b_j = 0))`` on 1 df.
* **Global test**: penalised LR of the model against the intercept-only model, the latter's
  penalty still computed from the full design (logistf's ``fit.null``), on k - 1 df.

**ML** (:func:`ml_logistic`): statsmodels ``Logit`` (Newton, observed information, Wald CIs),
wrapped so that complete or quasi-complete separation and non-convergence give
``estimable = False`` with a reason instead of an exception or silently huge coefficients.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, special
from scipy.special import expit

from stormcohort.stats._util import (
    NOISE_WARNINGS,
    as_event,
    complete_rows,
    design_matrix,
    require_columns,
    wald_columns,
    z_value,
)

__all__ = ["FirthResult", "LogisticResult", "firth_batch", "firth_logistic", "ml_logistic"]

FIRTH_COLUMNS = ["term", "coef", "se", "lcl", "ucl", "odds_ratio", "or_lcl", "or_ucl", "p", "ci_method"]
ML_COLUMNS = ["term", "coef", "se", "odds_ratio", "or_lcl", "or_ucl", "z", "p"]


# --------------------------------------------------------------------------- data


def _prepare(data, outcome, covariates, intercept):
    if covariates is None:
        covariates = [c for c in data.columns if c != outcome]
    covariates = list(covariates)
    require_columns(data, [outcome, *covariates])
    d = complete_rows(data, [outcome, *covariates])
    y = as_event(d[outcome], outcome).astype(float)
    X_df, terms = design_matrix(d, covariates)
    if intercept:
        X_df.insert(0, "(Intercept)", 1.0)
    if X_df.shape[1] == 0:
        raise ValueError("no covariates and no intercept: nothing to estimate")
    X = X_df.to_numpy(dtype=float)
    single = [var for var, cols in terms.items() if not cols]
    if len(y) == 0:
        problem = "no complete observations"
    elif single:
        problem = f"covariate {single[0]!r} has a single level"
    elif np.linalg.matrix_rank(X) < X.shape[1]:
        problem = "covariates are linearly dependent (collinear design, or a constant covariate)"
    else:
        problem = None
    return X, y, list(X_df.columns), problem


# --------------------------------------------------------------------------- Firth engine
#
# Every function takes optional frequency weights ``m`` (rows of X that occur m times, with
# ``y`` then the number of events among them): the log-likelihood, Fisher information, hat
# values (summed over a row's copies) and modified score of the compressed data equal those of
# the full data, so a design with few distinct covariate patterns (categorical covariates)
# costs a few rows however large n is. m = None means one observation per row.


def _compress(X, y):
    """Distinct rows of X with their counts and event counts (an exact reduction, see above);
    the data unchanged (m = None) when fewer than half the rows repeat."""
    rows, inverse, counts = np.unique(X, axis=0, return_inverse=True, return_counts=True)
    if 2 * len(rows) > len(X):
        return X, y, None
    events = np.bincount(inverse.ravel(), weights=y, minlength=len(rows))
    return rows, events, counts.astype(float)


def _evaluate(X, y, beta, m=None):
    """l*(b), pi, w = m pi (1 - pi) and the Fisher information X'WX at ``beta``."""
    eta = X @ beta
    # log-likelihood written stably: y*eta - m log(1 + e^eta)
    nll = np.logaddexp(0.0, eta)
    ll = float(np.sum(y * eta - (nll if m is None else m * nll)))
    pi = expit(eta)
    w = pi * (1 - pi)
    if m is not None:
        w = w * m
    info = (X * w[:, None]).T @ X
    sign, logdet = np.linalg.slogdet(info)
    if sign <= 0:
        return -np.inf, pi, w, info
    return ll + 0.5 * logdet, pi, w, info


def _pen_loglik(X, y, beta, m=None):
    """Penalised log-likelihood l* = l + 1/2 log det X'WX, with pi and w, at ``beta``."""
    lstar, pi, w, _ = _evaluate(X, y, beta, m)
    return lstar, pi, w


def _hat(X, w, info):
    """Hat diagonal h_i = w_i x_i' I^-1 x_i (full design, as the penalty), vectorised."""
    return w * np.einsum("ij,ij->i", X @ np.linalg.inv(info), X)


def _mod_score(X, y, pi, h, m=None):
    """Firth's modified score X'(y - m pi + h (1/2 - pi)): the gradient of l*."""
    return X.T @ (y - (pi if m is None else m * pi) + h * (0.5 - pi))


def _firth_solve(X, y, beta0, free, m=None, *, maxit=200, maxstep=5.0, maxhs=30, tol=1e-10):
    """Maximise l* over the ``free`` coefficients (others held at beta0).

    logistf's algorithm: Fisher-scoring steps on the modified score (free block of X'WX as
    the step matrix), step length capped at ``maxstep``, step halving while l* decreases.
    Returns (beta, l*, iterations, converged, full modified score at beta).
    """
    beta = beta0.astype(float).copy()
    lstar, pi, w, info = _evaluate(X, y, beta, m)
    if not np.isfinite(lstar):
        return beta, lstar, 0, False, None
    if not free.any():
        return beta, lstar, 0, True, None
    damp, prev = 1.0, None
    for it in range(1, maxit + 1):
        try:
            h = _hat(X, w, info)
            ustar = _mod_score(X, y, pi, h, m)[free]
            delta = np.linalg.solve(info[np.ix_(free, free)], ustar)
        except np.linalg.LinAlgError:
            return beta, lstar, it, False, None
        if damp == 1.0 and prev is not None and _reverses(delta, prev):
            damp = 0.5  # a two-cycle: the Fisher step is twice the Newton step (see _reverses)
        delta = damp * delta
        mx = np.max(np.abs(delta)) / maxstep
        if mx > 1:
            delta = delta / mx
        new = beta.copy()
        for _ in range(maxhs + 1):
            new[free] = beta[free] + delta
            l_new, pi_new, w_new, info_new = _evaluate(X, y, new, m)
            if np.isfinite(l_new) and l_new >= lstar - 1e-12:
                break
            delta = delta / 2
        change = l_new - lstar
        beta, lstar, pi, w, info, prev = new, l_new, pi_new, w_new, info_new, delta
        if (np.max(np.abs(delta)) < tol and abs(change) < tol) or np.max(np.abs(ustar)) < tol:
            try:
                score = _mod_score(X, y, pi, _hat(X, w, info), m)
            except np.linalg.LinAlgError:
                score = None
            return beta, lstar, it, True, score
    return beta, lstar, maxit, False, None


def _reverses(delta, prev) -> bool:
    """The step undoes the previous one (at least half its length, pointing back within 8
    degrees): the iterates swing between two points on either side of the maximum.

    That is what happens when the penalty is as curved as the likelihood in some direction, as for
    a binary covariate value held by one patient (hat value 1) once ML has separated: there the
    Hessian of l* is twice the Fisher information, so each Fisher step lands on the mirror image
    of the current point, where l* is the same, step halving never starts, and the iterates
    alternate forever ~ a constant distance apart. Halving every later step then gives Newton's
    step in that direction (and at worst linear convergence, factor 1/2, in the others). A fit
    that converges (steps shrinking) never reverses like this, so its path is unchanged."""
    dot = float(delta @ prev)
    nd, npv = float(np.sqrt(delta @ delta)), float(np.sqrt(prev @ prev))
    return nd >= 0.5 * npv > 0 and dot < -0.99 * nd * npv


def _firth_fit(X, y, beta0, free, m=None, **kw):
    """Maximise l* over the ``free`` coefficients (others held at beta0). Returns (beta, l*, iters, converged)."""
    return _firth_solve(X, y, beta0, free, m, **kw)[:4]


# --------------------------------------------------------------------------- many fits at once


def _batch_information(Z, zz, iu, w, act):
    """X'WX per fit (R x q x q) from the row weights w (R x rows); an inactive column gets 1 on
    the diagonal and 0 elsewhere, so it adds nothing to log det and stays at 0 in every step."""
    R, q = w.shape[0], Z.shape[1]
    info = np.zeros((R, q, q))
    info[:, iu[0], iu[1]] = w @ zz
    info = info + np.triu(info, 1).transpose(0, 2, 1)
    keep = act[:, :, None] & act[:, None, :]
    return np.where(keep, info, 0.0) + (np.eye(q, dtype=bool)[None] & ~act[:, :, None])


def firth_batch(Z, y, C, act, *, maxit=200, maxstep=5.0, maxhs=30, tol=1e-10):
    """Firth fits of one design under many sets of frequency weights at once (a bootstrap's
    resamples): for each row r of ``C`` (R x rows: how many times each row of ``Z``, rows x q,
    occurs), the penalised ML estimate over the columns ``act[r]`` (others held at 0), no
    intercept added. Each fit follows :func:`_firth_solve` step for step from 0 (Fisher-scoring
    steps on the modified score, capped at ``maxstep``, step halving, halved steps after a
    reversal, the same convergence rule), so it is :func:`firth_logistic`'s estimate on the
    data expanded by the counts (to rounding: the sums are ordered differently); the design must
    have full rank on the active columns. Returns (beta R x q, converged R, iterations R)."""
    R, q = C.shape[0], Z.shape[1]
    iu = np.triu_indices(q)
    zz = Z[:, iu[0]] * Z[:, iu[1]]
    twice = np.where(iu[0] == iu[1], 1.0, 2.0)  # z' A z from the packed upper triangle of A
    Cy = C * y

    def evaluate(idx, b):
        eta = b @ Z.T
        c = C[idx]
        ll = (Cy[idx] * eta - c * np.logaddexp(0.0, eta)).sum(axis=1)
        pi = expit(eta)
        w = c * pi * (1 - pi)
        info = _batch_information(Z, zz, iu, w, act[idx])
        sign, logdet = np.linalg.slogdet(info)
        return np.where(sign > 0, ll + 0.5 * logdet, -np.inf), pi, w, info

    beta = np.zeros((R, q))
    conv = np.zeros(R, dtype=bool)
    iters = np.zeros(R, dtype=np.int64)
    lstar, pi, w, info = evaluate(np.arange(R), beta)
    todo = np.flatnonzero(np.isfinite(lstar))
    lstar, pi, w, info = lstar[todo], pi[todo], w[todo], info[todo]
    damp, prev = np.ones(R), np.zeros((R, q))
    for it in range(1, maxit + 1):
        if not len(todo):
            break
        a = act[todo]
        try:
            inv = np.linalg.inv(info)
        except np.linalg.LinAlgError:  # singular for some fit: drop those (not converged)
            inv = np.full_like(info, np.nan)
            for i in range(len(todo)):
                try:
                    inv[i] = np.linalg.inv(info[i])
                except np.linalg.LinAlgError:
                    pass
        inv = np.where(a[:, :, None] & a[:, None, :], inv, 0.0)
        h = w * ((inv[:, iu[0], iu[1]] * twice) @ zz.T)
        ustar = np.where(a, (Cy[todo] - C[todo] * pi + h * (0.5 - pi)) @ Z, 0.0)
        delta = np.einsum("rij,rj->ri", inv, ustar)
        ok = np.isfinite(delta).all(axis=1)
        # the step reverses the previous one: halve this and every later step (see _reverses)
        nd, npv = np.linalg.norm(delta, axis=1), np.linalg.norm(prev[todo], axis=1)
        rev = (it > 1) & (nd >= 0.5 * npv) & (npv > 0) & (np.einsum("ri,ri->r", delta, prev[todo]) < -0.99 * nd * npv)
        damp[todo[rev & (damp[todo] == 1.0)]] = 0.5
        delta = damp[todo][:, None] * delta
        mx = np.max(np.abs(delta), axis=1) / maxstep
        delta = np.where((mx > 1)[:, None], delta / np.maximum(mx, 1)[:, None], delta)
        b = beta[todo]
        new = b.copy()
        l_new, pi_new, w_new, info_new = lstar.copy(), pi.copy(), w.copy(), info.copy()
        pend = np.flatnonzero(ok)
        for _ in range(maxhs + 1):  # step halving while l* falls (the last try is kept, as _firth_solve)
            if not len(pend):
                break
            new[pend] = b[pend] + delta[pend]
            ln, pn, wn, inn = evaluate(todo[pend], new[pend])
            l_new[pend], pi_new[pend], w_new[pend], info_new[pend] = ln, pn, wn, inn
            up = np.isfinite(ln) & (ln >= lstar[pend] - 1e-12)
            pend = pend[~up]
            delta[pend] = delta[pend] / 2
        change = l_new - lstar
        beta[todo] = new
        prev[todo] = delta
        iters[todo] = it
        with np.errstate(invalid="ignore"):
            done = ok & (((np.max(np.abs(delta), axis=1) < tol) & (np.abs(change) < tol))
                         | (np.max(np.abs(ustar), axis=1) < tol))
        conv[todo[done]] = True
        stay = ok & ~done
        todo = todo[stay]
        lstar, pi, w, info = l_new[stay], pi_new[stay], w_new[stay], info_new[stay]
    return beta, conv, iters


# --------------------------------------------------------------------------- Firth API


@dataclass(frozen=True)
class FirthResult:
    """Firth logistic fit: ``table`` (``term, coef, se, lcl, ucl, odds_ratio, or_lcl, or_ucl, p,
    ci_method``), the global penalised LR test, penalised log-likelihoods, counts, convergence.
    ``estimable`` is False (with ``reason``, NaN table) for an unusable design or a failed fit."""

    estimable: bool
    reason: str | None
    table: pd.DataFrame
    lr_statistic: float
    lr_df: int
    lr_p: float
    loglik: float
    loglik_null: float
    n: int
    events: int
    converged: bool
    iterations: int
    warnings: tuple[str, ...] = ()


def firth_logistic(
    data: pd.DataFrame,
    outcome: str,
    covariates: Sequence[str] | None = None,
    *,
    intercept: bool = True,
    conf_level: float = 0.95,
    profile: bool = True,
    covariance: str = "logistf",
) -> FirthResult:
    """Firth-penalised logistic regression of ``outcome`` (0/1) on ``covariates``.

    Estimator: penalised ML (Jeffreys-prior penalty); se from current logistf's
    ``(X' W (1+h) X)^-1`` (``covariance="fisher"``: ``(X'WX)^-1``); CIs and p-values by profile
    penalised likelihood (Wald with ``profile=False``). ``covariates`` defaults to every
    other column; non-numeric columns are treatment-coded. Rows with missing values are dropped.
    Finite estimates exist under complete separation, which is the point of the method.
    """
    if covariance not in ("logistf", "fisher"):
        raise ValueError(f"covariance must be 'logistf' or 'fisher', got {covariance!r}")
    X, y, names, problem = _prepare(data, outcome, covariates, intercept)
    n, k = X.shape
    n_events, m = int(y.sum()), None
    if not problem:
        X, y, m = _compress(X, y)  # exact (see the engine notes); fast for categorical designs
    all_free = np.ones(k, dtype=bool)
    beta, lstar, iters, conv = (None, np.nan, 0, False) if problem else _firth_fit(X, y, np.zeros(k), all_free, m)
    if problem or not conv:
        reason = problem or f"penalised ML did not converge in {iters} iterations"
        table = pd.DataFrame({c: [np.nan] * k for c in FIRTH_COLUMNS}).assign(term=names, ci_method=None)
        return FirthResult(
            estimable=False,
            reason=reason,
            table=table[FIRTH_COLUMNS],
            lr_statistic=np.nan,
            lr_df=k - int(intercept),
            lr_p=np.nan,
            loglik=np.nan,
            loglik_null=np.nan,
            n=int(n),
            events=n_events,
            converged=False,
            iterations=int(iters),
        )
    warns: list[str] = []
    _, pi, w, info = _evaluate(X, y, beta, m)
    fisher_cov = np.linalg.inv(info)
    if covariance == "logistf":
        h = _hat(X, w, info)  # summed over a row's copies: w (1 + h) per observation
        w = w * (1 + (h if m is None else h / m))
        cov = np.linalg.inv((X * w[:, None]).T @ X)
    else:
        cov = fisher_cov
    se = np.sqrt(np.diag(cov))
    q = 2 * special.gammaincinv(0.5, conf_level)  # chi2.ppf(conf_level, 1)
    z = z_value(conf_level)

    lcl, ucl, pval = np.empty(k), np.empty(k), np.empty(k)
    target = lstar - q / 2  # profile limits: 2 (l*(b-hat) - l*_profile) = chi2_1(conf_level)
    for j in range(k):
        if not profile:
            lcl[j], ucl[j] = beta[j] - z * se[j], beta[j] + z * se[j]
            pval[j] = special.chdtrc(1, (beta[j] / se[j]) ** 2)
            continue
        # the profile of b_j is close to quadratic with curvature 1 / [I^-1]_jj, and the other
        # coefficients move along I^-1[:, j] / [I^-1]_jj: the starting points of every profile fit
        direction = fisher_cov[:, j] / fisher_cov[j, j]
        guess = np.sqrt(q * fisher_cov[j, j])  # the quadratic approximation's limits: b-hat +/- guess
        far = 1.25 * guess  # a regular profile's limits lie within this distance of b-hat
        prof = _Profile(X, y, m, beta, j, direction if abs(beta[j]) <= far else None, warns, names)
        pval[j] = special.chdtrc(1, max(2 * (lstar - prof(0.0)[0]), 0.0))
        for side, out in ((-1, lcl), (+1, ucl)):
            trial: list[str] = []
            prof = _Profile(X, y, m, beta, j, direction, trial, names)  # warm starts from b-hat
            limit = _newton_limit(prof, target, beta[j], side, guess, far)
            if limit is None:  # not a regular profile: the bracketing search, warm started from b-hat
                prof = _Profile(X, y, m, beta, j, None, warns, names)
                limit = _profile_limit(lambda b, prof=prof: prof(b)[0] - target, beta[j], side, se[j])
            if limit is None:  # that search's profile was not monotone: Newton, unrestricted
                warns.append(f"profile likelihood of {names[j]} is irregular (separation?): limit by Newton's method")
                trial = []
                prof = _Profile(X, y, m, beta, j, direction, trial, names)
                limit = _safeguarded_limit(prof, target, beta[j], side, guess, se[j])
            warns += trial
            out[j] = limit

    # global penalised LR test vs intercept-only (penalty on the full design, as logistf)
    df = k - 1 if intercept else k
    if intercept and k > 1:
        free0 = np.zeros(k, dtype=bool)
        free0[0] = True
        _, lnull, _, okn = _firth_fit(X, y, np.zeros(k), free0, m)
    elif not intercept:
        lnull, okn = _pen_loglik(X, y, np.zeros(k), m)[0], True
    else:
        lnull, okn = lstar, True
    if not okn:
        warns.append("null model did not converge")
    lr = 2 * (lstar - lnull)
    table = pd.DataFrame(
        {
            "term": names,
            "coef": beta,
            "se": se,
            "lcl": lcl,
            "ucl": ucl,
            "odds_ratio": np.exp(beta),
            "or_lcl": np.exp(lcl),
            "or_ucl": np.exp(ucl),
            "p": pval,
            "ci_method": "profile penalised likelihood" if profile else "Wald",
        }
    )
    return FirthResult(
        estimable=True,
        reason=None,
        table=table[FIRTH_COLUMNS],
        lr_statistic=float(lr),
        lr_df=int(df),
        lr_p=float(special.chdtrc(df, lr)) if df > 0 else np.nan,
        loglik=float(lstar),
        loglik_null=float(lnull),
        n=int(n),
        events=n_events,
        converged=bool(conv),
        iterations=int(iters),
        warnings=tuple(dict.fromkeys(warns)),
    )


class _Profile:
    """Profile penalised log-likelihood of coefficient j: value -> (max over the others of l*,
    its derivative). The derivative is the j-th modified score at the constrained maximum
    (envelope theorem), so the limits can be found by Newton's method.

    Each evaluation starts from the previous solution, moved along ``direction`` (the
    conditional-mean direction of the other coefficients) when one is given; the penalty uses
    the full design, as logistf's ``logistpl``.
    """

    def __init__(self, X, y, m, beta, j, direction, warns, names):
        self.X, self.y, self.m, self.j, self.dir = X, y, m, j, direction
        self.warns, self.names = warns, names
        self.free = np.ones(len(beta), dtype=bool)
        self.free[j] = False
        self.start = beta.astype(float).copy()

    def __call__(self, value: float) -> tuple[float, float]:
        start = self.start.copy() if self.dir is None else self.start + (value - self.start[self.j]) * self.dir
        start[self.j] = value
        b, lstar, _, ok, score = _firth_solve(self.X, self.y, start, self.free, self.m)
        if not ok:
            self.warns.append(f"profile fit for {self.names[self.j]} at {value:.4g} did not converge")
        if np.isfinite(lstar) and np.all(np.isfinite(b)):
            self.start = b
        return lstar, (np.nan if score is None else float(score[self.j]))


def _newton_limit(prof, target, bhat, direction, guess, far, xtol=1e-10, maxit=60):
    """Root of ``g(b) = profile(b) - target`` on one side of bhat (g(bhat) > 0) by safeguarded
    Newton's method (the profile's derivative is exact), starting at the quadratic
    approximation ``bhat +/- guess``: a few constrained fits when the profile is regular.

    Returns None unless the profile is regular: g(bhat +/- guess) within 0.1 of the quadratic
    approximation's 0, the profile falling outwards, and the root within ``far`` of bhat.
    Elsewhere (strongly skewed profiles, separation) constrained fits can have several local
    maxima, so the result depends on the search path; the caller then keeps the bracketing
    search.
    """
    inner, outer = bhat, None
    x = bhat + direction * guess
    for it in range(maxit):
        if abs(x - bhat) > far:
            return None
        g, dg = prof(x)
        g -= target
        if not (np.isfinite(g) and np.isfinite(dg) and dg * direction < 0) or (it == 0 and abs(g) > 0.1):
            return None
        if g < 0:
            outer = x
        else:
            inner = x
        new = x - g / dg
        if abs(new - x) < xtol:  # Newton has converged
            return None if abs(new - bhat) > far else float(new)
        if outer is not None:
            lo, hi = sorted((inner, outer))
            if not lo < new < hi:
                new = 0.5 * (lo + hi)
            if hi - lo < xtol:
                return float(new)
        x = new
    return None


def _safeguarded_limit(prof, target, bhat, direction, guess, se, max_expand=60, xtol=1e-10):
    """Last resort for an irregular profile on which the bracketing search failed: Newton's
    method safeguarded by a growing outward cap (``max(se, 0.1) * 1.6^k``) until the root is
    bracketed, then by bisection; +/-inf if the profile never falls to the target, NaN if no
    root is found."""
    inner, outer = bhat, None
    x = bhat + direction * guess
    cap = max(se, 0.1)
    for _ in range(max_expand + 100):
        g, dg = prof(x)
        g -= target
        if not np.isfinite(g):
            g, dg = -np.inf, np.nan  # l* = -inf: beyond the root
        if g == 0:
            return float(x)
        if g < 0:
            outer = x
        else:
            inner = x
        step = -g / dg if np.isfinite(dg) and dg != 0 and np.isfinite(g) else np.nan
        if outer is None:
            if not (np.isfinite(step) and step * direction > 0):
                step = direction * cap  # the profile does not fall yet: expand
            elif abs(step) < xtol:
                return float(x + step)  # converged from inside
            elif abs(step) > cap:
                step = direction * cap
            cap *= 1.6
            if abs(x - bhat) > max(se, 0.1) * (1.6**max_expand - 1) / 0.6:
                return float(direction * np.inf)
            x = x + step
            continue
        lo, hi = sorted((inner, outer))
        new = x + step if np.isfinite(step) else np.nan
        if not lo < new < hi:
            new = 0.5 * (lo + hi)
        if abs(new - x) < xtol or hi - lo < xtol:
            return float(new)
        x = new
    return float(np.nan)


def _profile_limit(f, bhat, direction, se, max_expand=60):
    """Root of the profile function on one side of bhat (f(bhat) > 0); inf if none is found:
    outward steps ``max(se, 0.1) * 1.6^k`` until f < 0, then Brent's method. None when Brent's
    method finds no sign change (the warm-started profile is path dependent under separation)."""
    step = max(se, 0.1)
    inner = bhat
    for _ in range(max_expand):
        outer = inner + direction * step
        if f(outer) < 0:
            lo, hi = sorted((inner, outer))
            try:
                return float(optimize.brentq(f, lo, hi, xtol=1e-10, rtol=1e-12))
            except ValueError:
                return None
        inner = outer
        step *= 1.6
    return float(direction * np.inf)


# --------------------------------------------------------------------------- ML logistic


@dataclass(frozen=True)
class LogisticResult:
    """Ordinary ML logistic fit (statsmodels ``Logit``; Wald se from the observed information).

    ``estimable`` is False, with a ``reason``, under separation or non-convergence; the table
    then holds NaN estimates."""

    estimable: bool
    reason: str | None
    table: pd.DataFrame
    n: int
    events: int
    loglik: float
    warnings: tuple[str, ...] = ()


def _separation_reason(X, y, names) -> str | None:
    """Detect complete / quasi-complete separation by 0/1 covariates and all-same outcome."""
    if y.min() == y.max():
        return f"outcome is constant ({int(y[0])} for every row): no variation to model"
    for j, c in enumerate(names):
        vals = np.unique(X[:, j])
        if len(vals) == 2:
            for v in vals:
                yy = y[X[:, j] == v]
                if yy.min() == yy.max():
                    return f"separation: outcome is always {int(yy[0])} where {c} == {v:g}"
    return None


def ml_logistic(
    data: pd.DataFrame,
    outcome: str,
    covariates: Sequence[str] | None = None,
    *,
    intercept: bool = True,
    conf_level: float = 0.95,
) -> LogisticResult:
    """Maximum-likelihood logistic regression via statsmodels, never raising on separation.

    Not estimable when: the outcome does not vary; a 0/1 covariate separates the outcome
    (quasi-complete separation: an infinite MLE); statsmodels reports perfect separation or
    fails; the optimiser does not converge; or fitted probabilities hit 0/1 (complete
    separation by a combination of covariates). Use :func:`firth_logistic` then.
    """
    from statsmodels.discrete.discrete_model import Logit  # not statsmodels.api: 1 s less to import
    from statsmodels.tools.sm_exceptions import (
        PerfectSeparationError,
        PerfectSeparationWarning,
    )

    X, y, names, problem = _prepare(data, outcome, covariates, intercept)
    n, events = len(y), int(y.sum())
    nan_table = pd.DataFrame({c: [np.nan] * len(names) for c in ML_COLUMNS}).assign(term=names)[ML_COLUMNS]

    def fail(reason, warns=()):
        return LogisticResult(False, reason, nan_table, n, events, np.nan, tuple(warns))

    if problem:
        return fail(problem)
    reason = _separation_reason(X, y, names)
    if reason:
        return fail(reason)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            res = Logit(y, X).fit(disp=0, maxiter=100)
    except (PerfectSeparationError, np.linalg.LinAlgError, ValueError) as exc:
        return fail(f"fit failed: {str(exc).splitlines()[0]}")
    msgs = [str(w.message).splitlines()[0] for w in caught if not issubclass(w.category, NOISE_WARNINGS)]
    if any(issubclass(w.category, PerfectSeparationWarning) for w in caught):
        return fail("perfect separation detected by statsmodels", msgs)
    if not res.mle_retvals.get("converged", False):
        return fail("maximum likelihood did not converge (possible separation)", msgs)
    fitted = res.predict()
    if np.any(fitted < 1e-10) or np.any(fitted > 1 - 1e-10):
        return fail("fitted probabilities of 0 or 1: (quasi-)complete separation", msgs)
    beta, se = np.asarray(res.params), np.asarray(res.bse)
    if not np.all(np.isfinite(se)):
        return fail("standard errors not finite (singular information)", msgs)
    w = wald_columns(beta, se, conf_level)
    table = pd.DataFrame(
        {
            "term": names,
            "coef": w["coef"],
            "se": w["se"],
            "odds_ratio": np.exp(w["coef"]),
            "or_lcl": np.exp(w["lcl"]),
            "or_ucl": np.exp(w["ucl"]),
            "z": w["z"],
            "p": w["p"],
        }
    )
    return LogisticResult(True, None, table[ML_COLUMNS], n, events, float(res.llf), tuple(msgs))
