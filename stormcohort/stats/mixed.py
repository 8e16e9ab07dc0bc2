"""Linear mixed model of a log-transformed laboratory value over time, by group.

Model: ``log(value + offset) ~ group * day`` with a random intercept and a random slope on
``day`` per patient (unstructured 2 x 2 covariance), fitted by statsmodels ``MixedLM`` with
REML (lme4's default). ``day`` is divided by its standard deviation for the optimiser
(statsmodels' MixedLM often fails to converge when the slope variance is orders of magnitude
below the intercept variance) and every estimate is transformed back to the per-day scale,
which leaves the fit itself unchanged. Fixed-effect standard errors are model-based (inverse of the REML
information); Wald z tests and normal CIs, as statsmodels reports them.

If there are no more observations than random effects (lme4's identifiability check), or
the random-slope fit raises, does not converge, lands on the boundary (a singular
random-effects covariance: slope variance ~0 or correlation +/-1) or gives non-finite
standard errors, the model is refitted with a random intercept only, and ``fallback_reason``
says why. When neither fits (too few patients or observations, no variation), the result is
``estimable = False`` with a reason: never an exception for data problems.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from stormcohort.stats._util import (
    NOISE_WARNINGS,
    complete_rows,
    design_matrix,
    require_columns,
    z_value,
)

__all__ = ["MixedResult", "lab_trajectory_lmm"]

FIXED_COLUMNS = ["term", "coef", "se", "lcl", "ucl", "z", "p"]


@dataclass(frozen=True)
class MixedResult:
    """Fixed effects (``term, coef, se, lcl, ucl, z, p``) of a log-lab trajectory LMM.

    ``random_effects`` is ``"intercept+slope"`` or ``"intercept"`` (after a fallback, with
    ``fallback_reason``), ``random_cov`` the estimated random-effects covariance and
    ``residual_var`` the residual variance (log scale). ``warnings`` keeps the optimiser's
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


def _fit(y, X, groups, Z, names_re):
    """One REML fit. Returns (result, problem-or-None, warning messages)."""
    from statsmodels.regression.mixed_linear_model import MixedLM

    msgs: list[str] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = MixedLM(y, X, groups=groups, exog_re=Z)
            res = model.fit(reml=True, method=["lbfgs", "bfgs", "cg"])
        msgs = [str(w.message).splitlines()[0] for w in caught if not issubclass(w.category, NOISE_WARNINGS)]
    except (np.linalg.LinAlgError, ValueError, ZeroDivisionError, IndexError) as exc:
        return None, f"fit failed: {str(exc).splitlines()[0]}", msgs
    if not getattr(res, "converged", False):
        return res, "optimiser did not converge", msgs
    bse = np.asarray(res.bse_fe)
    if not np.all(np.isfinite(bse)) or not np.all(np.isfinite(res.fe_params)):
        return res, "non-finite fixed-effect estimates or standard errors", msgs
    cov = np.asarray(res.cov_re)
    if len(names_re) > 1:
        sd = np.sqrt(np.clip(np.diag(cov), 0, None))
        small = sd < 1e-6 * max(np.sqrt(res.scale), 1e-12)
        corr = cov[0, 1] / (sd[0] * sd[1]) if np.all(sd > 0) else np.nan
        if small.any() or not np.isfinite(corr) or abs(corr) > 0.999:
            return res, "singular random-effects covariance (boundary fit)", msgs
    if any("boundary" in m.lower() or "not positive definite" in m.lower() for m in msgs):
        return res, f"boundary / non-positive-definite fit: {msgs[0]}", msgs
    return res, None, msgs


def lab_trajectory_lmm(
    data: pd.DataFrame,
    value: str,
    day: str,
    patient: str,
    group: str | None = None,
    *,
    log_offset: float = 0.0,
    conf_level: float = 0.95,
) -> MixedResult:
    """Fit ``log(value + log_offset) ~ group * day + (1 + day | patient)`` by REML (statsmodels).

    Rows with a missing value/day/patient/group are dropped; rows with ``value + log_offset
    <= 0`` cannot be logged and are dropped and counted (``n_dropped_nonpositive``). Fixed-effect
    terms are named ``Intercept``, ``day``, ``<group>[<level>]`` and ``<group>[<level>]:day``
    (the group x day interaction: the difference in log-scale slope against the reference level).
    """
    require_columns(data, [value, day, patient, group])
    d = complete_rows(data, [value, day, patient, group])
    v = pd.to_numeric(d[value], errors="coerce").to_numpy(dtype=float) + log_offset
    t_all = pd.to_numeric(d[day], errors="coerce").to_numpy(dtype=float)
    for name, arr in ((value, v), (day, t_all)):
        if np.isnan(arr).any():
            raise ValueError(f"column {name!r} must be numeric")
    ok = v > 0
    dropped = int((~ok).sum())
    d, y, t = d.loc[ok], np.log(v[ok]), t_all[ok]
    X = pd.DataFrame({"Intercept": 1.0, "day": t}, index=d.index)
    if group is not None:
        G, _ = design_matrix(d.assign(**{group: d[group].astype("category")}), [group])
        for c in G.columns:
            X[c] = G[c]
            X[f"{c}:day"] = G[c] * t
    groups = d[patient].to_numpy()
    n_obs, n_pat = len(d), int(pd.unique(groups).size)

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
    Z2 = np.column_stack([np.ones(n_obs), t / scale])
    if n_obs <= 2 * n_pat:
        # lme4's check: more random effects than observations leaves the random-effects
        # covariance and the residual variance unidentifiable
        res, problem, msgs = None, f"not identifiable: {n_obs} observations <= {2 * n_pat} random effects", []
    else:
        res, problem, msgs = _fit(y, Xs, groups, Z2, ["Intercept", "day"])
    all_msgs += msgs
    structure = "intercept+slope"
    names_re = ["Intercept", "day"]
    if problem is not None:
        fallback_reason = f"random slope dropped: {problem}"
        if n_obs <= n_pat:
            return empty(f"{fallback_reason}; random intercept not identifiable: one observation per patient")
        res, problem, msgs = _fit(y, Xs, groups, np.ones((n_obs, 1)), ["Intercept"])
        all_msgs += msgs
        structure = "intercept"
        names_re = ["Intercept"]
        if res is None or (problem is not None and not problem.startswith(("singular", "boundary"))):
            return empty(f"{fallback_reason}; random-intercept fit also failed: {problem}", all_msgs)
        if problem is not None:  # intercept variance ~0: estimates equal ordinary least squares
            all_msgs.append(f"random intercept: {problem}")

    z = z_value(conf_level)
    coef = np.asarray(res.fe_params, dtype=float) * per_day
    se = np.asarray(res.bse_fe, dtype=float) * per_day
    table = pd.DataFrame(
        {
            "term": list(X.columns),
            "coef": coef,
            "se": se,
            "lcl": coef - z * se,
            "ucl": coef + z * se,
            "z": coef / se,
            "p": 2 * stats.norm.sf(np.abs(coef / se)),
        }
    )
    back = np.array([1.0, 1.0 / scale])[: len(names_re)]
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
    )
