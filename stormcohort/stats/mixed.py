"""Linear mixed model of a log-transformed laboratory value over time, by group.

Model: ``log(value + offset) ~ group * day`` with a random intercept and a random slope on
``day`` per patient (unstructured 2 x 2 covariance), fitted by REML as R's
``lme4::lmer(y ~ group * day + (day | patient))`` and tested as ``lmerTest`` does (Satterthwaite
degrees of freedom), with the exact, vectorised engine below, which scales to 10^5 patients:

* each patient enters through its sufficient statistics ``Z_i'Z_i``, ``Z_i'X_i``, ``Z_i'r_i``
  (2 x 2, 2 x p, 2), so the cost of one likelihood evaluation is O(patients) numpy array
  operations (Woodbury identity ``H_i^-1 = I - Z_i L (I + L'Z_i'Z_i L)^-1 L'Z_i'``, Sylvester
  ``det H_i = det(I + L'Z_i'Z_i L)``), never a loop over patients;
* the REML criterion with the residual variance and the fixed effects profiled out is minimised
  over lme4's ``theta``, the lower-triangular Cholesky factor ``L`` of the relative covariance
  ``Psi = L L'`` (random-effects covariance / residual variance; start ``L = I`` as lme4), by
  L-BFGS-B with the analytic gradient and lme4's bounds (diagonal of L >= 0, so the covariance
  may reach the boundary: a zero variance or a correlation of +/-1, a *singular* fit), then
  polished by projected Newton steps; fixed effects by GLS;
* fixed-effect covariance as lme4's ``vcov``: ``sigma^2 (X'V^-1 X)^-1`` at the REML estimate
  (V = I + Z Psi Z'), not the inverse of the Hessian in (fixed effects, covariance);
* Satterthwaite degrees of freedom for each coefficient as lmerTest:
  ``df = 2 (c'Vc)^2 / (g' A g)``, with ``A = 2 h^+`` the asymptotic covariance of the variance
  parameters ``(theta, sigma)`` (``h``: Hessian of the REML deviance in them, by central
  differences of its analytic gradient; Moore-Penrose inverse over eigenvalues > 1e-8, as
  lmerTest) and ``g`` the analytic gradient of ``c'V c`` in them; t tests and t intervals on
  those df.

``day`` is divided by its standard deviation for the fit (conditioning only) and every
estimate is transformed back to the per-day scale; ``theta`` and the REML criterion are
reported on lme4's (per-day) scale.

A singular fit is kept, as lme4 keeps it (``singular`` and a warning say so; lme4's
``isSingular``: a diagonal element of theta below 1e-4): there is no variance threshold. The
random slope is dropped only when lme4 refuses the model (no more observations than random
effects) or the fit fails (non-finite criterion or estimates); ``fallback_reason`` says why.
When nothing fits (too few patients or observations, no variation), the result is
``estimable = False`` with a reason: never an exception for data problems.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, special

from stormcohort.stats._util import (
    complete_rows,
    design_matrix,
    require_columns,
)

__all__ = ["MixedResult", "lab_trajectory_lmm"]

# ``t = coef / se`` on ``df`` Satterthwaite degrees of freedom; lcl/ucl are t intervals
FIXED_COLUMNS = ["term", "coef", "se", "df", "lcl", "ucl", "t", "p"]
SINGULAR_TOL = 1e-4  # lme4's isSingular(tol = 1e-4) on theta
EIGEN_TOL = 1e-8  # lmerTest: eigenvalues of the deviance Hessian counted as zero


@dataclass(frozen=True)
class MixedResult:
    """Fixed effects (``term, coef, se, df, lcl, ucl, t, p``) of a log-lab trajectory LMM.

    ``df`` are Satterthwaite degrees of freedom, ``t = coef / se``, ``p`` and the interval from
    the t distribution on ``df``. ``random_effects`` is ``"intercept+slope"`` or ``"intercept"``
    (after a fallback, with ``fallback_reason``), ``random_cov`` the estimated random-effects
    covariance, ``residual_var`` the residual variance (log scale), ``theta`` lme4's relative
    Cholesky factor (lower triangle, column by column, per day), ``singular`` lme4's
    ``isSingular`` and ``reml_criterion`` lme4's ``REMLcrit``. ``warnings`` keeps the fit's
    messages. ``estimable`` is False (with ``reason``) when no model could be fitted.
    """

    estimable: bool
    reason: str | None
    fixed_effects: pd.DataFrame
    random_effects: str | None
    fallback_reason: str | None
    random_cov: pd.DataFrame | None
    residual_var: float
    converged: bool
    n_obs: int
    n_patients: int
    n_dropped_nonpositive: int
    warnings: tuple[str, ...] = ()
    singular: bool = False
    theta: tuple[float, ...] = ()
    reml_criterion: float = np.nan
    df_method: str = "Satterthwaite"


# --------------------------------------------------------------------------- REML engine


class _Suff:
    """Per-patient sufficient statistics of ``y = X b + Z u_i + e`` (Z: q random-effect columns).

    ``S = Z_i'Z_i`` (q x q x G), ``R = Z_i'X_i`` (q x p x G), ``u = Z_i'e_i`` (q x G), the patient
    axis last so that every small-matrix product is a handful of contiguous vector operations;
    and the totals ``X'X``, ``X'e``, ``e'e``, with ``e = y - X b_ols`` (OLS residuals: GLS of e on
    X gives b - b_ols exactly, and the cancellations in the Woodbury sums stay small).
    """

    def __init__(self, y, X, Z, codes, n_groups):
        self.n, self.p = X.shape
        self.q = Z.shape[1]
        self.b_ols = np.linalg.lstsq(X, y, rcond=None)[0]
        e = y - X @ self.b_ols
        q, p, G = self.q, self.p, n_groups
        cols = [Z[:, j] for j in range(q)] + [X[:, j] for j in range(p)] + [e]
        blocks = np.empty((q, q + p + 1, G))
        for i in range(q):
            for j, col in enumerate(cols):
                if j < i:  # Z'Z is symmetric
                    blocks[i, j] = blocks[j, i]
                else:
                    blocks[i, j] = np.bincount(codes, weights=Z[:, i] * col, minlength=G)
        self.S = np.ascontiguousarray(blocks[:, :q])
        self.R = np.ascontiguousarray(blocks[:, q:q + p])
        self.u = np.ascontiguousarray(blocks[:, q + p])
        self.XtX = X.T @ X
        self.Xte = X.T @ e
        self.ete = float(e @ e)
        self.fac = self.n - p  # REML: N - p
        self.tril = np.tril_indices(q)
        self.diag = np.array([i == j for i, j in zip(*self.tril)])  # theta entries on L's diagonal


def _inv_batch(M):
    """Inverse and log-determinant of a batch (last axis) of small SPD matrices, closed form for
    1 x 1 and 2 x 2."""
    q = M.shape[0]
    if q == 1:
        return 1.0 / M, np.log(M[0, 0])
    if q == 2:
        a, b, d = M[0, 0], M[0, 1], M[1, 1]
        det = a * d - b * b
        inv = np.empty_like(M)
        inv[0, 0], inv[1, 1] = d / det, a / det
        inv[0, 1] = inv[1, 0] = -b / det
        return inv, np.log(det)
    Mg = np.moveaxis(M, -1, 0)
    return np.moveaxis(np.linalg.inv(Mg), 0, -1), np.linalg.slogdet(Mg)[1]


def _unpack(st, theta):
    L = np.zeros((st.q, st.q))
    L[st.tril] = theta
    return L


def _core(st, L):
    """Everything at one relative covariance ``Psi = L L'`` (L: any square root, may be singular).

    Returns a dict with ``ldM = sum log det H_i`` (H_i = I + Z_i Psi Z_i'; = log det M_i,
    M_i = I + L'Z_i'Z_i L, Sylvester), ``ldA = log det X'H^-1 X``, ``Q = r'H^-1 r`` (lme4's
    penalised RSS), the profiled REML objective ``f = (ldM + ldA + (N - p) log Q) / 2``, the GLS
    fixed effects ``b`` (of the residual e), ``A = X'H^-1 X`` and the per-patient blocks
    ``W = Z'H^-1 Z``, ``B = Z'H^-1 X``, ``s = Z'H^-1 r`` (patient axis last).
    """
    q = st.q
    T = np.tensordot(L.T, st.S, axes=1)  # L'S
    M = np.einsum("abg,bc->acg", T, L) + np.eye(q)[:, :, None]
    Minv, logdetM = _inv_batch(M)
    TR = np.tensordot(L.T, st.R, axes=1)  # L'R
    Tu = L.T @ st.u  # L'u
    MTR = np.einsum("abg,bpg->apg", Minv, TR)
    MTu = np.einsum("abg,bg->ag", Minv, Tu)
    A = st.XtX - np.einsum("apg,arg->pr", TR, MTR)
    c = st.Xte - np.einsum("apg,ag->p", TR, MTu)
    d = st.ete - float(np.sum(Tu * MTu))
    sign, logdetA = np.linalg.slogdet(A)
    if sign <= 0:
        return {"f": np.inf}
    b = np.linalg.solve(A, c)
    Q = d - float(c @ b)
    if not Q > 0:
        return {"f": np.inf}
    TtM = np.einsum("bag,bcg->acg", T, Minv)  # S L M^-1
    W = st.S - np.einsum("abg,bcg->acg", TtM, T)
    B = st.R - np.einsum("abg,bpg->apg", TtM, TR)
    s = st.u - np.einsum("abg,bg->ag", TtM, Tu) - np.einsum("apg,p->ag", B, b)
    ldM = float(logdetM.sum())
    f = 0.5 * (ldM + logdetA + st.fac * np.log(Q))
    return {"f": f, "ldM": ldM, "ldA": float(logdetA), "b": b, "Q": Q, "A": A, "W": W, "B": B, "s": s}


def _psi_gradients(c):
    """Derivatives in Psi (symmetric G with d = tr(G dPsi)) of ``ldM`` (sum W), ``ldA``
    (- sum B A^-1 B') and ``Q`` (- sum s s')."""
    BA = np.einsum("apg,pr->arg", c["B"], np.linalg.inv(c["A"]))
    BAB = np.einsum("arg,brg->ab", BA, c["B"])
    return c["W"].sum(axis=2), -BAB, -(c["s"] @ c["s"].T)


def _profiled(st, theta):
    """Profiled REML objective f(theta) and its gradient (d/dL = 2 G L for Psi = L L')."""
    L = _unpack(st, theta)
    c = _core(st, L)
    if not np.isfinite(c["f"]):
        return np.inf, np.zeros_like(theta), c
    dM, dA, dQ = _psi_gradients(c)
    G = 0.5 * (dM + dA + st.fac / c["Q"] * dQ)
    return c["f"], (2 * G @ L)[st.tril], c


def _deviance_gradient(st, varpar):
    """Gradient of lmerTest's REML deviance in ``(theta, sigma)`` (sigma not profiled):
    ``ldM + ldA + Q / sigma^2 + (N - p) log(2 pi sigma^2)``."""
    theta, sigma = varpar[:-1], varpar[-1]
    L = _unpack(st, theta)
    c = _core(st, L)
    if not np.isfinite(c["f"]):
        return np.full_like(varpar, np.nan)
    dM, dA, dQ = _psi_gradients(c)
    G = dM + dA + dQ / sigma**2
    return np.append((2 * G @ L)[st.tril], -2 * c["Q"] / sigma**3 + 2 * st.fac / sigma)


def _fd_hessian(grad, x, step):
    """Symmetrised central-difference Jacobian of an analytic gradient (error O(step^2))."""
    k = len(x)
    h = np.empty((k, k))
    for j in range(k):  # k <= 4 evaluations pairs, each vectorised over patients
        e = np.zeros(k)
        e[j] = step[j]
        h[:, j] = (grad(x + e) - grad(x - e)) / (2 * step[j])
    return (h + h.T) / 2


def _theta_step(st, theta):
    return np.full(len(theta), 1e-4 * max(float(np.max(np.abs(theta))), 1e-3))


def _reml_optimum(st, *, maxiter=1000):
    """Minimise the profiled REML objective over theta (lme4's bounds: diagonal >= 0; start
    L = I), then polish by projected Newton steps. Returns (theta, core dict, converged, message)."""
    scale = max(st.fac, 1)
    lower = np.where(st.diag, 0.0, -np.inf)

    def fun(theta):
        f, g, _ = _profiled(st, theta)
        return f / scale, g / scale

    start = np.where(st.diag, 1.0, 0.0)
    bounds = [(0.0, None) if d else (None, None) for d in st.diag]
    f = np.inf
    for _ in range(5):
        res = optimize.minimize(fun, start, jac=True, method="L-BFGS-B", bounds=bounds,
                                options={"ftol": 1e-15, "gtol": 1e-10, "maxiter": maxiter})
        theta = np.maximum(res.x, lower)
        f, g, cur = _profiled(st, theta)
        if not np.isfinite(f):
            break
        # A diagonal element of L that lands on 0 can be a saddle, not a minimum: the objective is
        # even in the last column's diagonal, so its gradient there is exactly 0 whichever way the
        # curvature goes and the projected gradient stops the search. Step off the bound; restart
        # if that is lower.
        size = max(float(np.max(np.abs(theta))), 1e-3)
        trials = [theta + np.eye(len(theta))[j] * size * r for j in np.flatnonzero(st.diag & (theta <= 0))
                  for r in (1e-3, 1e-2, 1e-1)]
        better = [(ft, tr) for tr in trials if (ft := _profiled(st, tr)[0]) < f - 1e-12 * abs(f)]
        if not better:
            break
        start = min(better, key=lambda x: x[0])[1]
    if not np.isfinite(f):
        return theta, cur, False, "REML objective not finite at the optimum"
    # Newton steps on the coordinates not held at a bound, with the Hessian at the L-BFGS-B
    # solution (a chord method: one Hessian, 2k gradient evaluations, for the whole polish)
    free = ~(st.diag & (theta <= 0) & (g >= 0))
    h = _fd_hessian(lambda t: _profiled(st, t)[1], theta, _theta_step(st, theta))[np.ix_(free, free)]
    usable = free.any() and np.all(np.isfinite(h)) and np.linalg.eigvalsh(h)[0] > 0
    for _ in range(10 if usable else 0):
        step = np.zeros_like(theta)
        step[free] = -np.linalg.solve(h, g[free])
        new = np.maximum(theta + step, lower)
        f_new, g_new, c_new = _profiled(st, new)
        if not f_new <= f:
            break
        theta, f, g, cur = new, f_new, g_new, c_new
        if np.max(np.abs(step)) <= 1e-10 * max(float(np.max(np.abs(theta))), 1e-3):
            break
    projected = np.where(st.diag & (theta <= 0) & (g > 0), 0.0, g)
    converged = bool(np.max(np.abs(projected)) / scale < 1e-6)
    return theta, cur, converged, str(res.message)


def _satterthwaite(st, theta, cur):
    """lmerTest's Satterthwaite df of each fixed effect, vectorised over the coefficients."""
    sigma = float(np.sqrt(cur["Q"] / st.fac))
    varpar = np.append(theta, sigma)
    step = np.append(_theta_step(st, theta), 1e-4 * sigma)
    h = _fd_hessian(lambda v: _deviance_gradient(st, v), varpar, step)
    if not np.all(np.isfinite(h)):
        return np.full(st.p, np.nan), ["Satterthwaite df not computable: non-finite deviance Hessian"]
    w, U = np.linalg.eigh(h)
    msgs = []
    if (w < -EIGEN_TOL).any():
        msgs.append(f"Model failed to converge with {int((w < -EIGEN_TOL).sum())} negative eigenvalue(s) "
                    "of the deviance Hessian (lmerTest)")
    pos = w > EIGEN_TOL
    cov_varpar = 2 * (U[:, pos] / w[pos]) @ U[:, pos].T
    # d vcov(beta) / d varpar, vcov(beta) = sigma^2 A^-1: dA = - sum B' dPsi B, dPsi = E L' + L E'
    Ainv = np.linalg.inv(cur["A"])
    L = _unpack(st, theta)
    BB = np.tensordot(cur["B"], cur["B"], axes=([2], [2]))  # [a, p, b, r] = sum_g B_ap B_br
    grads = []
    for k in range(len(theta)):
        E = np.zeros((st.q, st.q))
        E[st.tril[0][k], st.tril[1][k]] = 1.0
        dPsi = E @ L.T + L @ E.T
        dA = -np.einsum("apbr,ab->pr", BB, dPsi)
        grads.append(np.diag(-sigma**2 * Ainv @ dA @ Ainv))
    grads.append(np.diag(2 * sigma * Ainv))
    g = np.array(grads)  # (varpar, coefficient)
    var = sigma**2 * np.diag(Ainv)
    denom = np.einsum("kj,kl,lj->j", g, cov_varpar, g)
    with np.errstate(divide="ignore", invalid="ignore"):
        return 2 * var**2 / denom, msgs


@dataclass(frozen=True)
class _Fit:
    """One REML fit, in the (scaled) parametrisation it was fitted in."""

    fe_params: np.ndarray
    bse_fe: np.ndarray
    df: np.ndarray
    cov_re: np.ndarray  # residual variance x Psi
    scale: float
    theta: np.ndarray
    reml_criterion: float  # of the scaled design (log det X'V^-1X changes with column scaling)
    converged: bool


def _fit(y, X, codes, n_groups, Z):
    """One REML fit. Returns (result or None, problem-or-None, messages)."""
    msgs: list[str] = []
    try:
        with np.errstate(all="ignore"):
            st = _Suff(y, X, Z, codes, n_groups)
            theta, cur, converged, message = _reml_optimum(st)
            if not np.isfinite(cur["f"]):
                return None, f"fit failed: {message}", msgs
            fe = st.b_ols + cur["b"]
            scale = cur["Q"] / st.fac
            L = _unpack(st, theta)
            bse = np.sqrt(scale * np.diag(np.linalg.inv(cur["A"])))
            df, df_msgs = _satterthwaite(st, theta, cur)
            msgs += df_msgs
            crit = cur["ldM"] + cur["ldA"] + st.fac * (1 + np.log(2 * np.pi * scale))
    except (np.linalg.LinAlgError, ValueError, ZeroDivisionError, FloatingPointError) as exc:
        return None, f"fit failed: {str(exc).splitlines()[0]}", msgs
    if not converged:
        msgs.append(f"REML optimisation may not have converged: {message}")
    if not np.all(np.isfinite(bse)) or not np.all(np.isfinite(fe)):
        return None, "non-finite fixed-effect estimates or standard errors", msgs
    res = _Fit(fe_params=fe, bse_fe=bse, df=np.asarray(df, dtype=float), cov_re=scale * L @ L.T,
               scale=float(scale), theta=theta, reml_criterion=float(crit), converged=converged)
    return res, None, msgs


def _t_columns(coef, se, df, conf_level):
    """coef, se, df, t interval, t statistic and two-sided p on ``df`` degrees of freedom."""
    if not 0 < conf_level < 1:
        raise ValueError(f"conf_level must be in (0, 1), got {conf_level!r}")
    q = special.stdtrit(df, 1 - (1 - conf_level) / 2)
    t = coef / se
    return {"coef": coef, "se": se, "df": df, "lcl": coef - q * se, "ucl": coef + q * se, "t": t,
            "p": 2 * special.stdtr(df, -np.abs(t))}


def lab_trajectory_lmm(
    data: pd.DataFrame,
    value: str,
    day: str,
    patient: str,
    group: str | None = None,
    *,
    log_offset: float = 0.0,
    conf_level: float = 0.95,
    log: bool = True,
) -> MixedResult:
    """Fit ``log(value + log_offset) ~ group * day + (1 + day | patient)`` by REML (lme4's
    ``lmer``), with Satterthwaite t tests and intervals (lmerTest).

    Rows with a missing value/day/patient/group are dropped; rows with ``value + log_offset
    <= 0`` cannot be logged and are dropped and counted (``n_dropped_nonpositive``). Fixed-effect
    terms are named ``Intercept``, ``day``, ``<group>[<level>]`` and ``<group>[<level>]:day``
    (the group x day interaction: the difference in log-scale slope against the reference level).
    ``log=False`` models ``value + log_offset`` as it is (no rows dropped), e.g. lme4's sleepstudy.
    """
    require_columns(data, [value, day, patient, group])
    d = complete_rows(data, [value, day, patient, group])
    v = pd.to_numeric(d[value], errors="coerce").to_numpy(dtype=float) + log_offset
    t_all = pd.to_numeric(d[day], errors="coerce").to_numpy(dtype=float)
    for name, arr in ((value, v), (day, t_all)):
        if np.isnan(arr).any():
            raise ValueError(f"column {name!r} must be numeric")
    ok = v > 0 if log else np.ones(len(v), dtype=bool)
    dropped = int((~ok).sum())
    d, y, t = d.loc[ok], np.log(v[ok]) if log else v, t_all[ok]
    X = pd.DataFrame({"Intercept": 1.0, "day": t}, index=d.index)
    if group is not None:
        G, _ = design_matrix(d.assign(**{group: d[group].astype("category")}), [group])
        for c in G.columns:
            X[c] = G[c]
            X[f"{c}:day"] = G[c] * t
    codes, uniques = pd.factorize(d[patient], sort=False)
    n_obs, n_pat = len(d), len(uniques)

    def empty(reason, warns=()):
        table = pd.DataFrame({c: [np.nan] * X.shape[1] for c in FIXED_COLUMNS}).assign(term=list(X.columns))
        return MixedResult(
            estimable=False,
            reason=reason,
            fixed_effects=table[FIXED_COLUMNS],
            random_effects=None,
            fallback_reason=None,
            random_cov=None,
            residual_var=np.nan,
            converged=False,
            n_obs=n_obs,
            n_patients=n_pat,
            n_dropped_nonpositive=dropped,
            warnings=tuple(warns),
        )

    if n_pat < 2:
        return empty(f"need at least 2 patients, have {n_pat}")
    if n_obs <= X.shape[1] + 1:
        return empty(f"too few observations ({n_obs}) for {X.shape[1]} fixed effects")
    if np.linalg.matrix_rank(X.to_numpy()) < X.shape[1]:
        return empty("fixed-effects design is rank deficient (e.g. a single day or an empty group)")
    if np.ptp(y) == 0:
        return empty("the outcome does not vary")

    # fit on day / sd(day), report per day (see module doc)
    scale = float(np.std(t)) or 1.0
    per_day = np.array([1.0 / scale if c == "day" or c.endswith(":day") else 1.0 for c in X.columns])
    Xs = X.to_numpy() * per_day
    all_msgs: list[str] = []
    fallback_reason = None
    structure, names_re = "intercept+slope", ["Intercept", "day"]
    if n_obs <= 2 * n_pat:
        # lme4's check: more random effects than observations leaves the random-effects
        # covariance and the residual variance unidentifiable
        res, problem = None, f"not identifiable: {n_obs} observations <= {2 * n_pat} random effects"
    else:
        res, problem, msgs = _fit(y, Xs, codes, n_pat, np.column_stack([np.ones(n_obs), t / scale]))
        all_msgs += msgs
    if problem is not None:
        fallback_reason = f"random slope dropped: {problem}"
        if n_obs <= n_pat:
            return empty(f"{fallback_reason}; random intercept not identifiable: one observation per patient")
        res, problem, msgs = _fit(y, Xs, codes, n_pat, np.ones((n_obs, 1)))
        all_msgs += msgs
        structure, names_re = "intercept", ["Intercept"]
        if problem is not None:
            return empty(f"{fallback_reason}; random-intercept fit also failed: {problem}", all_msgs)

    back = np.array([1.0, 1.0 / scale])[: len(names_re)]
    L = np.zeros((len(names_re), len(names_re)))
    L[np.tril_indices(len(names_re))] = res.theta
    theta = (back[:, None] * L)[np.tril_indices(len(names_re))]  # lme4's theta, per day
    singular = bool(np.any(np.diag(back[:, None] * L) < SINGULAR_TOL))
    if singular:
        all_msgs.append("boundary (singular) fit: the random-effects covariance is singular (a variance of 0 "
                        "or a correlation of +/-1); kept, as lme4 keeps it")
    coef = np.asarray(res.fe_params, dtype=float) * per_day
    se = np.asarray(res.bse_fe, dtype=float) * per_day
    table = pd.DataFrame({"term": list(X.columns), **_t_columns(coef, se, res.df, conf_level)})
    cov_re = pd.DataFrame(np.asarray(res.cov_re) * np.outer(back, back), index=names_re, columns=names_re)
    return MixedResult(
        estimable=True,
        reason=None,
        fixed_effects=table[FIXED_COLUMNS],
        random_effects=structure,
        fallback_reason=fallback_reason,
        random_cov=cov_re,
        residual_var=float(res.scale),
        converged=bool(res.converged),
        n_obs=n_obs,
        n_patients=n_pat,
        n_dropped_nonpositive=dropped,
        warnings=tuple(dict.fromkeys(all_msgs)),
        singular=singular,
        theta=tuple(float(x) for x in theta),
        # log det X'V^-1X of the per-day design: the scaled one less 2 sum log(per_day)
        reml_criterion=res.reml_criterion - 2 * float(np.sum(np.log(per_day))),
    )
