"""Rubin's rules: pooling estimates over multiply imputed data sets, as R mice ``pool.scalar`` / ``pool``.

For m completed data sets, each giving an estimate ``Q_i`` with variance ``U_i`` (the squared
standard error), R mice 3.15 (``pool.scalar(Q, U, n, k)``, and ``pool()``'s ``pool.fitlist``,
``rule = "rubin1987"``) computes

* pooled estimate ``qbar = mean(Q)``; within-imputation variance ``ubar = mean(U)``;
  between-imputation variance ``b = var(Q)`` (``m - 1`` denominator);
  total variance ``t = ubar + (1 + 1/m) b``; pooled se ``sqrt(t)``;
* relative increase in variance due to nonresponse ``riv = (1 + 1/m) b / ubar``, and the
  proportion of the total variance due to missingness ``lambda = (1 + 1/m) b / t``;
* degrees of freedom of Barnard and Rubin (1999), mice's ``barnard.rubin``: with
  ``dfcom = n - k`` (the complete-data residual df), ``lambda`` floored at 1e-4 in this
  formula only, ``dfold = (m - 1) / lambda^2``, ``dfobs = (dfcom + 1) / (dfcom + 3) dfcom
  (1 - lambda)``, ``df = dfold dfobs / (dfold + dfobs)``; ``df = dfold`` (Rubin 1987) when
  ``dfcom`` is infinite (``n = inf``);
* fraction of missing information ``fmi = (riv + 2 / (df + 3)) / (riv + 1)`` (mice's ``fmi``,
  computed with the Barnard-Rubin df);
* a t-based confidence interval ``qbar -+ qt(1 - alpha/2, df) sqrt(t)`` and two-sided p of
  ``qbar / sqrt(t)`` on ``df`` (mice's ``summary(pool(fit), conf.int = TRUE)``).

mice's ``pool()`` takes ``dfcom`` from the fitted model: ``df.residual`` of ``lm``/``glm``
(n minus the number of coefficients), the number of events minus the number of coefficients
for ``coxph``, else ``nobs - k``; pass ``n`` (observations, or events for a Cox model) and
``k`` (coefficients, intercept included) accordingly; ``n = inf`` gives Rubin's large-sample df.

Reference (mice ``pool.scalar`` documentation, /work/shared/reference/README.md): Q = (-1.5457,
-1.428), U = (0.9723^2, 1.041^2), n = 25, k = 2 give qbar -1.48685, ubar 1.014524145,
b 0.006926645, t 1.0249141125, df 20.97025484, riv 0.0102412225, fmi 0.0927283145 (matched
to 1e-10 in tests/test_stats_pooling.py, with mice ``pool()`` on this package's imputations).

Ratios (odds, hazard, rate ratios) are pooled on the log scale, as mice does with model
coefficients: the estimate is the log ratio and the variance its squared se
(:func:`pool_log_ratios`, or ``exponentiate=True``), and the pooled estimate and limits are
exponentiated at the end (``ratio``, ``ratio_lcl``, ``ratio_ucl``).

Vectorised: :func:`pool_scalar` takes arrays of shape ``(m,)`` (one estimate) or ``(m, p)``
(p estimates pooled at once); :func:`pool_table` pools a long table of per-imputation model
coefficients (``imputation, term, coef, se``) by term. An estimate that is missing, infinite or
has a negative variance in any imputation (a fit that was not estimable there), or has zero
total variance, is pooled as not estimable (NaN) with the reason, never an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import special

__all__ = ["POOLED_COLUMNS", "PooledScalar", "pool_log_ratios", "pool_scalar", "pool_table"]

# one row per pooled estimate (pool_table; PooledScalar.to_frame), mice pool()'s names
POOLED_COLUMNS = ["estimate", "se", "lcl", "ucl", "statistic", "df", "p", "m", "ubar", "b", "t", "dfcom", "riv",
                  "lambda", "fmi", "estimable", "reason"]
RATIO_COLUMNS = ["ratio", "ratio_lcl", "ratio_ucl"]
LAMBDA_FLOOR = 1e-4  # mice barnard.rubin


@dataclass(frozen=True)
class PooledScalar:
    """Rubin's rules for one estimate (floats) or p estimates (arrays of length p).

    ``qbar`` is the pooled estimate (log scale for ratios), ``se = sqrt(t)``, ``lcl``/``ucl``
    the t-based limits on ``df`` degrees of freedom, ``statistic = qbar / se`` and ``p`` its
    two-sided p on ``df``. ``riv`` is the relative increase in variance, ``lambda_`` the
    proportion of variance due to missingness, ``fmi`` the fraction of missing information.
    ``ratio``/``ratio_lcl``/``ratio_ucl`` are the exponentiated estimate and limits when pooled on
    the log scale (else None). ``estimable`` is False with a ``reason`` where the estimate could
    not be pooled (every number NaN there).
    """

    m: int
    qbar: np.ndarray | float
    ubar: np.ndarray | float
    b: np.ndarray | float
    t: np.ndarray | float
    se: np.ndarray | float
    df: np.ndarray | float
    riv: np.ndarray | float
    lambda_: np.ndarray | float
    fmi: np.ndarray | float
    statistic: np.ndarray | float
    p: np.ndarray | float
    lcl: np.ndarray | float
    ucl: np.ndarray | float
    dfcom: np.ndarray | float
    conf_level: float
    estimable: np.ndarray | bool
    reason: np.ndarray | str
    ratio: np.ndarray | float | None = None
    ratio_lcl: np.ndarray | float | None = None
    ratio_ucl: np.ndarray | float | None = None

    def to_frame(self, terms: Sequence[str] | None = None) -> pd.DataFrame:
        """One row per estimate: ``term`` (if given) and :data:`POOLED_COLUMNS` (+ ratio columns)."""
        cols = {"estimate": self.qbar, "se": self.se, "lcl": self.lcl, "ucl": self.ucl,
                "statistic": self.statistic, "df": self.df, "p": self.p, "m": self.m, "ubar": self.ubar,
                "b": self.b, "t": self.t, "dfcom": self.dfcom, "riv": self.riv, "lambda": self.lambda_,
                "fmi": self.fmi, "estimable": self.estimable, "reason": self.reason}
        if self.ratio is not None:
            cols.update(ratio=self.ratio, ratio_lcl=self.ratio_lcl, ratio_ucl=self.ratio_ucl)
        frame = pd.DataFrame({k: np.atleast_1d(v) if k not in ("m", "dfcom") else v for k, v in cols.items()})
        if terms is not None:
            terms = list(terms)
            if len(terms) != len(frame):
                raise ValueError(f"{len(terms)} term names for {len(frame)} pooled estimates")
            frame.insert(0, "term", terms)
        return frame


def _as_draws(values, name: str) -> np.ndarray:
    a = np.asarray(values, dtype=float)
    if a.ndim not in (1, 2):
        raise ValueError(f"{name} must have shape (m,) or (m, p), got {a.shape}")
    return a


def pool_scalar(estimates, variances, n: float = np.inf, k: int = 1, *, conf_level: float = 0.95,
                exponentiate: bool = False) -> PooledScalar:
    """Pool m estimates and their variances by Rubin's rules (R mice ``pool.scalar(Q, U, n, k)``).

    ``estimates`` and ``variances`` (squared standard errors) have shape ``(m,)`` for one
    estimate or ``(m, p)`` for p estimates pooled at once (imputations down the rows). ``n - k``
    is the complete-data degrees of freedom of the Barnard-Rubin df (``n = inf``: Rubin's); ``n``
    and ``k`` may be arrays of length p, one per estimate.
    ``exponentiate=True`` treats the estimates as log ratios and adds the exponentiated
    estimate and limits. Needs m >= 2. Returns floats for 1-D input, arrays of length p else.
    """
    Q, U = _as_draws(estimates, "estimates"), _as_draws(variances, "variances")
    if Q.shape != U.shape:
        raise ValueError(f"estimates {Q.shape} and variances {U.shape} must have the same shape")
    m = Q.shape[0]
    if m < 2:
        raise ValueError(f"Rubin's rules need at least 2 imputations, got {m}")
    if not 0 < conf_level < 1:
        raise ValueError(f"conf_level must be in (0, 1), got {conf_level!r}")
    dfcom = np.asarray(n, dtype=float) - np.asarray(k, dtype=float)  # one per estimate, or one for all
    if np.isnan(dfcom).any() or (dfcom < 1).any():
        raise ValueError(f"complete-data df n - k must be at least 1, got n = {n!r}, k = {k!r}")
    scalar = Q.ndim == 1
    Q2, U2 = (Q[:, None], U[:, None]) if scalar else (Q, U)

    bad_q = ~np.isfinite(Q2) | ~np.isfinite(U2)
    neg_u = np.isfinite(U2) & (U2 < 0)
    n_bad, n_neg = bad_q.sum(axis=0), neg_u.sum(axis=0)
    ok = (n_bad == 0) & (n_neg == 0)
    Qs, Us = np.where(ok, Q2, 0.0), np.where(ok, U2, 0.0)

    qbar = Qs.mean(axis=0)
    ubar = Us.mean(axis=0)
    b = Qs.var(axis=0, ddof=1)
    t = ubar + (1 + 1 / m) * b
    zero_t = ok & ~(t > 0)
    ok &= ~zero_t
    t_safe = np.where(ok, t, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        riv = (1 + 1 / m) * b / ubar  # inf when ubar = 0 < b, as R
    lam = (1 + 1 / m) * b / t_safe
    lam_df = np.maximum(lam, LAMBDA_FLOOR)
    dfold = (m - 1) / lam_df**2
    with np.errstate(invalid="ignore"):
        dfobs = (dfcom + 1) / (dfcom + 3) * dfcom * (1 - lam_df)
        df = np.where(np.isinf(dfcom), dfold, dfold * dfobs / (dfold + dfobs))
    with np.errstate(divide="ignore", invalid="ignore"):
        fmi = np.where(np.isinf(riv), 1.0, (riv + 2 / (df + 3)) / (riv + 1))
    se = np.sqrt(t_safe)
    stat = qbar / se
    p = 2 * special.stdtr(df, -np.abs(stat))
    q = special.stdtrit(df, 1 - (1 - conf_level) / 2)
    lcl, ucl = qbar - q * se, qbar + q * se

    reason = np.full(qbar.shape, "", dtype=object)
    reason[n_bad > 0] = [f"estimate or variance missing or infinite in {int(c)} of {m} imputations"
                         for c in n_bad[n_bad > 0]]
    reason[(n_bad == 0) & (n_neg > 0)] = [f"negative variance in {int(c)} of {m} imputations"
                                          for c in n_neg[(n_bad == 0) & (n_neg > 0)]]
    reason[zero_t] = "zero total variance (every estimate identical with zero variance)"

    def out(x):
        x = np.where(ok, x, np.nan)
        return float(x[0]) if scalar else x

    ratios = {}
    if exponentiate:
        ratios = {"ratio": out(np.exp(qbar)), "ratio_lcl": out(np.exp(lcl)), "ratio_ucl": out(np.exp(ucl))}
    return PooledScalar(
        m=m, qbar=out(qbar), ubar=out(ubar), b=out(b), t=out(t), se=out(se), df=out(df), riv=out(riv),
        lambda_=out(lam), fmi=out(fmi), statistic=out(stat), p=out(p), lcl=out(lcl), ucl=out(ucl),
        dfcom=float(dfcom) if dfcom.ndim == 0 else np.broadcast_to(dfcom, qbar.shape).copy(),
        conf_level=conf_level, estimable=bool(ok[0]) if scalar else ok, reason=str(reason[0]) if scalar else reason,
        **ratios,
    )


def pool_log_ratios(log_ratios, se, n: float = np.inf, k: int = 1, *, conf_level: float = 0.95) -> PooledScalar:
    """Pool ratios (OR, HR, RR) on the log scale: estimates ``log(ratio)``, variances ``se^2``.

    ``log_ratios`` and ``se`` (the standard errors of the log ratios, as a model reports them)
    have shape ``(m,)`` or ``(m, p)``; the pooled ``ratio``, ``ratio_lcl``, ``ratio_ucl`` are the
    exponentiated pooled log ratio and its t-based limits (mice ``summary(pool(fit),
    exponentiate = TRUE)``).
    """
    se = np.asarray(se, dtype=float)
    return pool_scalar(log_ratios, se**2, n, k, conf_level=conf_level, exponentiate=True)


def pool_table(results: pd.DataFrame, *, n: float = np.inf, k: int = 1, estimate: str = "coef", se: str = "se",
               term: str = "term", imputation: str = "imputation", exponentiate: bool = False,
               conf_level: float = 0.95) -> pd.DataFrame:
    """Pool a long table of per-imputation estimates by term (mice ``pool()`` on a fit list).

    ``results`` has one row per (imputation, term) with the estimate and its standard error
    (columns named by ``imputation``, ``term``, ``estimate``, ``se``). Returns one row per term,
    in order of first appearance: ``term`` and :data:`POOLED_COLUMNS` (+ ``ratio``,
    ``ratio_lcl``, ``ratio_ucl`` with ``exponentiate=True``, for log ratios). A term absent or
    NaN in some imputation (its fit not estimable there) is not estimable, with the reason.
    """
    for c in (imputation, term, estimate, se):
        if c not in results.columns:
            raise KeyError(f"column {c!r} not in results; have {list(results.columns)}")
    if results.duplicated([imputation, term]).any():
        raise ValueError(f"results have more than one row per ({imputation}, {term})")
    terms = list(pd.unique(results[term]))
    imps = list(pd.unique(results[imputation]))
    wide_q = results.pivot(index=imputation, columns=term, values=estimate).reindex(index=imps, columns=terms)
    wide_s = results.pivot(index=imputation, columns=term, values=se).reindex(index=imps, columns=terms)
    Q = wide_q.to_numpy(dtype=float)
    U = wide_s.to_numpy(dtype=float) ** 2
    pooled = pool_scalar(Q, U, n, k, conf_level=conf_level, exponentiate=exponentiate)
    return pooled.to_frame(terms).rename(columns={"term": term})
