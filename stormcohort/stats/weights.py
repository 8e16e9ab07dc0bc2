"""Propensity scores, balancing weights and covariate balance, as R's WeightIt and cobalt.

* **Propensity** (:func:`propensity`): ML logistic regression of the 0/1 treatment on the
  covariates (statsmodels ``Logit``, via :func:`~stormcohort.stats.firth.ml_logistic`; the
  same MLE as R ``glm(family = binomial)``). When ML is unusable (complete or quasi-complete
  separation, fitted probabilities of 0 or 1, non-convergence) it falls back to Firth's
  penalised logistic regression (:func:`~stormcohort.stats.firth.firth_logistic`), which has
  finite estimates under separation; ``method_used`` and ``note`` say so. Rows with a missing
  treatment or covariate are dropped and counted (missing data are handled upstream). Design
  problems (no rows, an empty treatment group, a constant or collinear covariate) make the
  result not estimable, with the reason, before any fit.
* **Weights** (:func:`balancing_weights`, WeightIt's ``get_w_from_ps`` for a binary treatment):
  ATE ``t/ps + (1-t)/(1-ps)``, with ``stabilize=True`` multiplied by the marginal
  ``P(T = t)`` (the sample proportion: the fitted value of R's numerator model
  ``glm(t ~ 1)``, as Hernan and Robins' chapter 12); ATT ``t + (1-t) ps/(1-ps)`` (treated
  weight 1); ATO overlap weights ``t (1-ps) + (1-t) ps`` (with a logistic propensity model they
  balance every model covariate's mean exactly). A propensity outside the open interval (0, 1)
  or a non-finite weight is a ``ValueError``: a NaN or infinite weight is never returned.
* **Balance** (:func:`balance_table`, cobalt ``bal.tab`` defaults for a binary treatment):
  covariates expanded as cobalt's ``splitfactor(drop.first = "if2")``: a factor (string,
  object, categorical) becomes one 0/1 indicator per level, except a two-level factor, which
  keeps only its second level; a numeric column with two values is binary (an indicator of
  the larger value unless it is already 0/1); missing values add a ``<var>:<NA>`` indicator.
  Binary covariates: raw difference in (weighted) proportions, treated minus control;
  continuous: standardised mean difference, the difference in weighted means divided by an SD
  computed in the *unweighted* sample: of the treated for ATT, of the controls for ATC, else
  pooled ``sqrt((s1^2 + s0^2) / 2)`` (cobalt's ``s.d.denom``). Variance ratios (continuous
  only) treated / control, unweighted and weighted, the weighted variance by cobalt's
  ``col.w.v``: ``sum(v (x - m)^2) / (1 - sum(v^2))`` with ``v = w / sum(w)`` (the usual
  ``n - 1`` variance when w = 1).
* **Effective sample size**: Kish's ``(sum w)^2 / sum w^2`` (cobalt and WeightIt), per group in
  :func:`ess_by_group` and :func:`weights_summary`.
* **Truncation** (:func:`truncate_weights`): weights below the ``lower`` and above the
  ``upper`` quantile set to those quantiles (Cole and Hernan 2008), quantiles as R's default
  ``quantile(type = 7)``, pooled or within treatment groups.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import expit

from stormcohort.stats._util import as_event, complete_rows, design_matrix, group_levels, require_columns

__all__ = [
    "PropensityResult",
    "balance_table",
    "balancing_weights",
    "effective_sample_size",
    "ess_by_group",
    "propensity",
    "truncate_weights",
    "weights_summary",
]

ESTIMANDS = ("ATE", "ATT", "ATO")
BALANCE_COLUMNS = [
    "covariate", "type", "diff_type", "mean_treated_unadj", "mean_control_unadj", "diff_unadj",
    "mean_treated_adj", "mean_control_adj", "diff_adj", "var_ratio_unadj", "var_ratio_adj",
    "sd_denominator", "note",
]
SUMMARY_COLUMNS = ["treatment", "n", "ess", "sum", "mean", "min", "max", "largest", "largest_at"]


# --------------------------------------------------------------------------- propensity


@dataclass(frozen=True)
class PropensityResult:
    """Fitted propensity scores P(T = 1 | X).

    ``ps`` and ``treat`` are aligned with ``index``, the rows of ``data`` used (complete cases);
    ``coefficients`` has ``term, coef, se`` (log-odds). ``method_used`` is ``"logistic"`` or
    ``"firth"`` (None when not estimable); ``note`` says why Firth was used and how many rows
    were dropped. ``estimable`` is False with a ``reason`` (empty arrays) when no scores exist.
    """

    estimable: bool
    reason: str | None
    ps: np.ndarray
    index: pd.Index
    treat: np.ndarray
    coefficients: pd.DataFrame
    method_used: str | None
    note: str | None
    n: int
    n_treated: int
    n_dropped: int
    warnings: tuple[str, ...] = ()


def _join(*parts) -> str | None:
    parts = [p for p in parts if p]
    return "; ".join(parts) if parts else None


def propensity(
    data: pd.DataFrame,
    treatment: str,
    covariates: Sequence[str],
    *,
    method: str = "logistic",
) -> PropensityResult:
    """Propensity scores by logistic regression of ``treatment`` (0/1) on ``covariates``.

    ``method="logistic"``: ML, falling back to Firth when ML separates or fails (see the module
    doc); ``method="firth"``: Firth from the start. Covariates enter as in
    :func:`~stormcohort.stats._util.design_matrix` (non-numeric columns treatment-coded); terms
    such as ``age^2`` are columns the caller adds. Never raises for data problems.
    """
    from stormcohort.stats.firth import firth_logistic, ml_logistic

    if method not in ("logistic", "firth"):
        raise ValueError(f"method must be 'logistic' or 'firth', got {method!r}")
    covariates = list(covariates)
    if treatment in covariates:
        raise ValueError(f"treatment {treatment!r} is also among the covariates")
    require_columns(data, [treatment, *covariates])
    d = complete_rows(data, [treatment, *covariates])
    n, n_dropped = len(d), len(data) - len(d)
    dropped = f"{n_dropped} row(s) with a missing treatment or covariate dropped" if n_dropped else None
    t = as_event(d[treatment], treatment)
    n1 = int(t.sum())

    def fail(reason, warns=()):
        empty = pd.DataFrame({"term": pd.Series(dtype=object), "coef": pd.Series(dtype=float),
                              "se": pd.Series(dtype=float)})
        return PropensityResult(False, reason, np.empty(0), d.index[:0], np.empty(0, dtype=np.int64), empty,
                                None, dropped, n, n1, n_dropped, tuple(warns))

    if n == 0:
        return fail("no complete observations")
    if n1 in (0, n):
        return fail(f"treatment group {0 if n1 == n else 1} is empty ({n1} of {n} rows treated)")
    X_df, terms = design_matrix(d, covariates)
    single = [var for var, cols in terms.items() if not cols]
    if single:
        return fail(f"covariate {single[0]!r} has a single level")
    constant = [c for c in X_df.columns if X_df[c].nunique() <= 1]
    if constant:
        return fail(f"covariate {constant[0]!r} is constant")
    X = np.column_stack([np.ones(n), X_df.to_numpy(dtype=float)])
    if np.linalg.matrix_rank(X) < X.shape[1]:
        return fail("covariates are linearly dependent (collinear design)")
    names = ["(Intercept)", *X_df.columns]

    fallback, warns = None, []
    if method == "logistic":
        ml = ml_logistic(d, treatment, covariates)
        warns += list(ml.warnings)
        if ml.estimable:
            table, used = ml.table, "logistic"
        else:
            fallback = f"ML logistic regression not usable ({ml.reason}): Firth's penalised logistic regression used"
    if method == "firth" or fallback:
        fr = firth_logistic(d, treatment, covariates, profile=False)
        warns += list(fr.warnings)
        if not fr.estimable:
            return fail(_join(fallback, f"Firth fit failed: {fr.reason}"), warns)
        table, used = fr.table, "firth"
    if list(table["term"]) != names:  # the same design_matrix on the same rows: a bug if not
        raise RuntimeError(f"design mismatch: {list(table['term'])} vs {names}")
    beta = table["coef"].to_numpy(dtype=float)
    ps = expit(X @ beta)
    if not np.all((ps > 0) & (ps < 1)):
        extreme = "fitted propensity of exactly 0 or 1 (in floating point): no finite weights (positivity fails)"
        return fail(_join(fallback, extreme), warns)
    coefs = table[["term", "coef", "se"]].reset_index(drop=True)
    return PropensityResult(True, None, ps, d.index, t, coefs, used, _join(fallback, dropped), n, n1, n_dropped,
                            tuple(warns))


# --------------------------------------------------------------------------- weights


def _treat_array(treat) -> np.ndarray:
    t = np.asarray(treat)
    if t.dtype == bool:
        return t.astype(np.int64)
    tf = np.asarray(t, dtype=float)
    if tf.ndim != 1 or not np.all(np.isin(tf, (0.0, 1.0))):
        raise ValueError("treat must be a 1-d array of 0/1 (or boolean) without missing values")
    return tf.astype(np.int64)


def _weight_array(w, n: int | None = None, name: str = "weights") -> np.ndarray:
    w = np.asarray(w, dtype=float)
    if w.ndim != 1:
        raise ValueError(f"{name} must be 1-d")
    if n is not None and len(w) != n:
        raise ValueError(f"{name} has length {len(w)}, expected {n}")
    bad = ~np.isfinite(w)
    if bad.any():
        raise ValueError(f"{name}: {int(bad.sum())} value(s) missing or infinite (first at position "
                         f"{int(np.flatnonzero(bad)[0])})")
    if (w < 0).any():
        raise ValueError(f"{name}: {int((w < 0).sum())} negative value(s)")
    return w


def balancing_weights(treat, ps, estimand: str = "ATE", *, stabilize: bool = False) -> np.ndarray:
    """Weights from propensity scores for a binary treatment (WeightIt's formulas, module doc).

    ``estimand``: ``"ATE"`` (inverse probability of treatment; ``stabilize=True`` multiplies by
    the marginal P(T = t)), ``"ATT"`` (treated 1, controls ps / (1 - ps)) or ``"ATO"`` (overlap:
    treated 1 - ps, controls ps). Raises ``ValueError`` for propensity scores outside (0, 1) or
    missing, and never returns a non-finite weight.
    """
    t = _treat_array(treat)
    ps = np.asarray(ps, dtype=float)
    if ps.shape != t.shape:
        raise ValueError(f"ps has shape {ps.shape}, treat {t.shape}")
    bad = ~(np.isfinite(ps) & (ps > 0) & (ps < 1))
    if bad.any():
        raise ValueError(f"{int(bad.sum())} propensity score(s) missing or outside the open interval (0, 1)")
    est = str(estimand).upper()
    if est not in ESTIMANDS:
        raise ValueError(f"estimand must be one of {ESTIMANDS}, got {estimand!r}")
    if stabilize and est != "ATE":
        raise ValueError("stabilize applies to ATE weights only")
    treated = t == 1
    with np.errstate(over="ignore", divide="ignore"):  # checked below
        if est == "ATE":
            w = np.where(treated, 1 / ps, 1 / (1 - ps))
            if stabilize:
                p1 = t.mean()
                w = w * np.where(treated, p1, 1 - p1)
        elif est == "ATT":
            w = np.where(treated, 1.0, ps / (1 - ps))
        else:
            w = np.where(treated, 1 - ps, ps)
    return _weight_array(w, name="weights (numeric overflow)")


def effective_sample_size(w) -> float:
    """Kish's effective sample size ``(sum w)^2 / sum w^2`` (0 for no or all-zero weights)."""
    w = _weight_array(w)
    ss = float(np.sum(w * w))
    return float(np.sum(w)) ** 2 / ss if ss > 0 else 0.0


def ess_by_group(treat, w) -> pd.Series:
    """Effective sample size of each treatment group (index 0 = control, 1 = treated)."""
    t = _treat_array(treat)
    w = _weight_array(w, len(t))
    return pd.Series({g: effective_sample_size(w[t == g]) for g in (0, 1)}, name="ess").rename_axis("treatment")


def weights_summary(treat, w, *, n_largest: int = 5) -> pd.DataFrame:
    """Per treatment group (0 = control, 1 = treated): ``n, ess, sum, mean, min, max`` of the
    weights, ``largest`` (the ``n_largest`` largest weights, descending) and ``largest_at``
    (their positions in ``w``). An empty group has n 0 and NaN statistics."""
    t = _treat_array(treat)
    w = _weight_array(w, len(t))
    rows = []
    for g in (0, 1):
        pos = np.flatnonzero(t == g)
        wg = w[pos]
        top = pos[np.argsort(-wg, kind="stable")[:n_largest]]
        empty = len(wg) == 0
        rows.append({
            "treatment": g,
            "n": len(wg),
            "ess": effective_sample_size(wg) if not empty else 0.0,
            "sum": float(wg.sum()),
            "mean": float(wg.mean()) if not empty else np.nan,
            "min": float(wg.min()) if not empty else np.nan,
            "max": float(wg.max()) if not empty else np.nan,
            "largest": tuple(float(x) for x in w[top]),
            "largest_at": tuple(int(i) for i in top),
        })
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def truncate_weights(w, lower: float | None = 0.01, upper: float | None = 0.99, *, treat=None) -> np.ndarray:
    """Percentile truncation: weights below the ``lower`` quantile raised to it, above the
    ``upper`` quantile lowered to it (None: that side untouched). Quantiles are R's default
    (type 7, numpy's ``linear``), over all weights or, with ``treat``, within each group."""
    w = _weight_array(w)
    for name, q in (("lower", lower), ("upper", upper)):
        if q is not None and not 0 <= q <= 1:
            raise ValueError(f"{name} must be in [0, 1], got {q!r}")
    if lower is not None and upper is not None and lower > upper:
        raise ValueError(f"lower ({lower}) is above upper ({upper})")
    groups = [np.arange(len(w))] if treat is None else [np.flatnonzero(_treat_array(treat) == g) for g in (0, 1)]
    if treat is not None and len(_treat_array(treat)) != len(w):
        raise ValueError("treat and w differ in length")
    out = w.copy()
    for idx in groups:
        if len(idx) == 0:
            continue
        lo = np.quantile(w[idx], lower) if lower is not None else -np.inf
        hi = np.quantile(w[idx], upper) if upper is not None else np.inf
        out[idx] = np.clip(w[idx], lo, hi)
    return out


# --------------------------------------------------------------------------- balance


def _balance_columns(data: pd.DataFrame, covariates: Sequence[str]):
    """cobalt's covariate expansion: (names, types, matrix with NaN for missing)."""
    names, types, cols = [], [], []

    def add(name, kind, values):
        names.append(name)
        types.append(kind)
        cols.append(np.asarray(values, dtype=float))

    for var in covariates:
        s = data[var]
        missing = s.isna().to_numpy()
        if pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
            x = s.astype(float).to_numpy()
            vals = np.unique(x[~missing])
            if len(vals) <= 1:
                add(var, "constant", x)
            elif len(vals) == 2:
                if vals[0] == 0 and vals[1] == 1:
                    add(var, "binary", x)
                else:
                    add(f"{var}_{vals[1]:g}", "binary", np.where(missing, np.nan, x == vals[1]))
            else:
                add(var, "continuous", x)
        else:
            levels = group_levels(s)
            if len(levels) <= 1:
                add(var if not levels else f"{var}_{levels[0]}", "constant", np.where(missing, np.nan, 1.0))
            for lvl in levels[1:] if len(levels) == 2 else (levels if len(levels) > 2 else []):
                add(f"{var}_{lvl}", "binary", np.where(missing, np.nan, (s == lvl).to_numpy()))
        if missing.any():
            add(f"{var}:<NA>", "binary", missing)
    M = np.column_stack(cols) if cols else np.empty((len(data), 0))
    return names, np.array(types, dtype=object), M


def _group_stats(M: np.ndarray, ok: np.ndarray, w: np.ndarray, rows: np.ndarray):
    """Column-wise weighted means and cobalt's weighted variances over ``rows`` (NaN-aware)."""
    W = np.where(ok & rows[:, None], w[:, None], 0.0)
    Mz = np.where(ok, M, 0.0)
    sw = W.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        v = W / sw
        mean = (v * Mz).sum(axis=0)
        var = (v * (Mz - mean) ** 2).sum(axis=0) / (1 - (v * v).sum(axis=0))
    mean = np.where(sw > 0, mean, np.nan)
    var = np.where(np.isfinite(var) & (sw > 0), var, np.nan)
    return mean, var


def balance_table(
    data: pd.DataFrame,
    treatment: str,
    covariates: Sequence[str],
    weights=None,
    *,
    estimand: str = "ATE",
    s_d_denom: str | None = None,
) -> pd.DataFrame:
    """Covariate balance before and after weighting, as cobalt ``bal.tab`` (module doc).

    ``weights``: a column of ``data``, or array-like aligned with its rows (None: unweighted, so
    adjusted equals unadjusted). ``estimand`` picks the SMD's SD as cobalt does (ATT: treated;
    ATC: control; ATE, ATO: pooled); ``s_d_denom`` (``"treated"``, ``"control"``, ``"pooled"``)
    overrides it. One row per (expanded) covariate with the columns of ``BALANCE_COLUMNS``;
    ``diff_type`` is ``"raw"`` (binary) or ``"smd"``; ``note`` explains any NaN (an empty
    group, an SD of 0). Raises ``ValueError`` for missing, infinite or negative weights.
    """
    covariates = list(covariates)
    require_columns(data, [treatment, *covariates, *([weights] if isinstance(weights, str) else [])])
    t = as_event(data[treatment], treatment)
    if weights is None:
        w = np.ones(len(data))
    elif isinstance(weights, str):
        w = _weight_array(data[weights], name=f"weights column {weights!r}")
    else:
        if isinstance(weights, pd.Series) and not weights.index.equals(data.index):
            weights = weights.reindex(data.index)
        w = _weight_array(weights, len(data))
    est = str(estimand).upper()
    if s_d_denom is None:
        s_d_denom = {"ATT": "treated", "ATC": "control"}.get(est, "pooled")
    if s_d_denom not in ("treated", "control", "pooled"):
        raise ValueError(f"s_d_denom must be 'treated', 'control' or 'pooled', got {s_d_denom!r}")

    names, types, M = _balance_columns(data, covariates)
    ok = ~np.isnan(M)
    g1, g0 = t == 1, t == 0
    ones = np.ones(len(t))
    m1u, v1u = _group_stats(M, ok, ones, g1)
    m0u, v0u = _group_stats(M, ok, ones, g0)
    m1w, v1w = _group_stats(M, ok, w, g1)
    m0w, v0w = _group_stats(M, ok, w, g0)
    sd = {"treated": np.sqrt(v1u), "control": np.sqrt(v0u), "pooled": np.sqrt((v1u + v0u) / 2)}[s_d_denom]
    cont = types == "continuous"
    const = types == "constant"  # exactly 0, not a rounding residue of the weighted means
    diff_u = np.where(const & ~np.isnan(m1u - m0u), 0.0, m1u - m0u)
    diff_w = np.where(const & ~np.isnan(m1w - m0w), 0.0, m1w - m0w)
    with np.errstate(divide="ignore", invalid="ignore"):
        usable_sd = cont & (sd > 0) & np.isfinite(sd)
        # cobalt leaves a difference of exactly 0 unstandardised
        diff_u = np.where(cont, np.where(diff_u == 0, 0.0, np.where(usable_sd, diff_u / sd, np.nan)), diff_u)
        diff_w = np.where(cont, np.where(diff_w == 0, 0.0, np.where(usable_sd, diff_w / sd, np.nan)), diff_w)
        vr_u = np.where(cont & (v0u > 0), v1u / v0u, np.nan)
        vr_w = np.where(cont & (v0w > 0), v1w / v0w, np.nan)

    notes = np.full(len(names), None, dtype=object)
    if not g1.any() or not g0.any():
        notes[:] = f"treatment group {0 if g1.all() else 1} is empty"
    else:
        empty_w = np.isnan(m1w) | np.isnan(m0w)
        notes[empty_w] = "no weight (or no observed value) in a treatment group"
        sd_zero = cont & ~usable_sd & ~empty_w
        notes[sd_zero] = f"SD of 0 in the SMD denominator ({s_d_denom}): difference not standardised"
        notes[types == "constant"] = "constant: nothing to balance"
    return pd.DataFrame(
        {
            "covariate": names,
            "type": types,
            "diff_type": np.where(cont, "smd", "raw"),
            "mean_treated_unadj": m1u,
            "mean_control_unadj": m0u,
            "diff_unadj": diff_u,
            "mean_treated_adj": m1w,
            "mean_control_adj": m0w,
            "diff_adj": diff_w,
            "var_ratio_unadj": vr_u,
            "var_ratio_adj": vr_w,
            "sd_denominator": np.where(cont, sd, np.nan),
            "note": notes,
        },
        columns=BALANCE_COLUMNS,
    )
