"""Table 1: baseline characteristics by route group and overall, as numbers (one column per
quantity): median and quartiles or counts and percentages, missing counts, and standardised
mean differences between the groups (Yang & Dalton 2012 for categorical variables). The
report formats them (``12 (26.1%)``, ``4.0 [2.0, 7.5]``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from stormcohort.labels import GROUP, GROUPS, ROUTES, VAR_LABELS

CONTINUOUS = {v: VAR_LABELS[v] for v in (
    "age_years", "weight_kg", "hscore", "hlh2004_count", "ferritin_baseline", "crp_baseline", "platelets_baseline",
    "alt_baseline", "days_admission_to_anakinra", "max_daily_dose_mg", "max_dose_mg_per_kg_day")}
CATEGORICAL = {v: VAR_LABELS[v] for v in ("centre", "age_group", "sex", "trigger_category", "icu", "oedema", "cns",
                                          "mas2016")}
COLUMNS = ["variable", "kind", "level", "group", "n", "count", "percent", "median", "q1", "q3", "missing", "smd"]


def smd_continuous(a: pd.Series, b: pd.Series) -> float:
    """(mean_a - mean_b) / sqrt((var_a + var_b) / 2), sample variances, missing dropped."""
    a, b = a.dropna().astype(float), b.dropna().astype(float)
    if len(a) < 2 or len(b) < 2:
        return np.nan
    pooled = np.sqrt((a.var() + b.var()) / 2)
    return float(abs(a.mean() - b.mean()) / pooled) if pooled > 0 else (0.0 if a.mean() == b.mean() else np.inf)


def smd_categorical(a: pd.Series, b: pd.Series) -> float:
    """Multivariate SMD of level proportions (Yang & Dalton 2012): sqrt(d' S^-1 d), with
    the first level dropped and S the mean of the two multinomial covariance matrices."""
    a, b = a.dropna().astype(str), b.dropna().astype(str)
    levels = sorted(set(a) | set(b))
    if len(a) == 0 or len(b) == 0 or len(levels) < 2:
        return np.nan
    pa = a.value_counts(normalize=True).reindex(levels, fill_value=0).to_numpy()[1:]
    pb = b.value_counts(normalize=True).reindex(levels, fill_value=0).to_numpy()[1:]
    cov = lambda p: np.diag(p) - np.outer(p, p)  # noqa: E731
    s = (cov(pa) + cov(pb)) / 2
    d = pa - pb
    return float(np.sqrt(d @ np.linalg.pinv(s) @ d))


def _quartiles(x: pd.Series) -> list[float]:
    x = pd.to_numeric(x, errors="coerce").dropna()
    return list(np.percentile(x.astype(float), [25, 50, 75])) if len(x) else [np.nan] * 3


def table1(dataset: pd.DataFrame) -> pd.DataFrame:
    """Tidy Table 1: ``variable, kind (count|continuous|categorical), level, group
    (overall|IV|SC), n, count, percent, median, q1, q3, missing, smd``. The first rows
    (variable ``patients``) give N per group in ``count``; ``n`` is the non-missing
    denominator, ``percent`` = 100 * count / n; ``smd`` (IV vs SC, rounded to 3 decimals)
    is on the variable's ``overall`` rows."""
    parts = {g: dataset if g == "overall" else dataset[dataset[GROUP].eq(g)] for g in GROUPS}
    frames = [pd.DataFrame({"variable": "patients", "kind": "count", "level": "", "group": list(GROUPS),
                            "n": [len(parts[g]) for g in GROUPS], "count": [len(parts[g]) for g in GROUPS]})]
    for var in CONTINUOUS:
        q = {g: _quartiles(parts[g][var]) for g in GROUPS}
        smd = smd_continuous(parts[ROUTES[0]][var], parts[ROUTES[1]][var])
        frames.append(pd.DataFrame({
            "variable": var, "kind": "continuous", "level": "", "group": list(GROUPS),
            "n": [int(parts[g][var].notna().sum()) for g in GROUPS],
            "median": [q[g][1] for g in GROUPS], "q1": [q[g][0] for g in GROUPS], "q3": [q[g][2] for g in GROUPS],
            "missing": [int(parts[g][var].isna().sum()) for g in GROUPS],
            "smd": [smd, np.nan, np.nan]}))
    for var in CATEGORICAL:
        levels = sorted(dataset[var].dropna().astype(str).unique())
        smd = smd_categorical(parts[ROUTES[0]][var], parts[ROUTES[1]][var])
        for g in GROUPS:
            x = parts[g][var].dropna().astype(str)
            counts = x.value_counts().reindex(levels, fill_value=0)
            frames.append(pd.DataFrame({
                "variable": var, "kind": "categorical", "level": levels, "group": g, "n": len(x),
                "count": counts.to_numpy(), "percent": 100 * counts.to_numpy() / len(x) if len(x) else np.nan,
                "missing": int(parts[g][var].isna().sum()), "smd": smd if g == "overall" else np.nan}))
    out = pd.concat(frames, ignore_index=True).reindex(columns=COLUMNS)
    # categorical rows: by variable, level, then group (as Table 1 reads)
    out["_v"] = pd.factorize(out["variable"])[0]
    out["_l"] = out.groupby("variable", sort=False)["level"].transform(lambda s: pd.factorize(s)[0])
    out["_g"] = out["group"].map({g: i for i, g in enumerate(GROUPS)})
    out = out.sort_values(["_v", "_l", "_g"], kind="mergesort").drop(columns=["_v", "_l", "_g"])
    for c in ("n", "count", "missing"):
        out[c] = out[c].astype("Int64")
    out["smd"] = out["smd"].round(3)
    return out.reset_index(drop=True)[COLUMNS]
