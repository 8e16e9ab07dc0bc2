"""What changed between two runs (an older delivery and an updated one).

Works on the runs' output tables only (pseudonymous keys, no identifiers): patients added,
removed and changed, cleaning-ledger counts, attrition step by step, Table 1 cells and SMDs,
and every IV-vs-SC effect estimate with a flag where the conclusion moved (the 95% CI
excluded 1 and no longer does, or the reverse).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

KEY = "patient_key"
EFFECT_KEYS = ["source", "outcome", "model", "term"]


def _same(a: pd.Series, b: pd.Series) -> pd.Series:
    """Element-wise equality with missing == missing and floats equal to 1e-9 (relative)."""
    both_missing = a.isna() & b.isna()
    num_a, num_b = pd.to_numeric(a, errors="coerce"), pd.to_numeric(b, errors="coerce")
    numeric = num_a.notna() & num_b.notna()
    close = pd.Series(np.isclose(num_a.fillna(0), num_b.fillna(0), rtol=1e-9, atol=1e-12), index=a.index)
    return both_missing | (numeric & close) | (~numeric & (a.astype(str) == b.astype(str)))


def diff_patients(old: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """One row per patient added, removed or changed: `patient_key, change, fields_changed`."""
    merged = old.merge(new, on=KEY, how="outer", suffixes=("_old", "_new"), indicator=True)
    columns = [c for c in old.columns if c != KEY and c in new.columns]
    fields = pd.Series("", index=merged.index)
    for c in columns:
        fields += np.where(_same(merged[f"{c}_old"], merged[f"{c}_new"]), "", c + ";")
    fields = fields.str.rstrip(";")
    out = pd.DataFrame({
        KEY: merged[KEY],
        "change": merged["_merge"].map({"left_only": "removed", "right_only": "added", "both": "changed"}),
        "fields_changed": fields,
    })
    out.loc[out["change"] != "changed", "fields_changed"] = ""
    out = out[(out["change"] != "changed") | (out["fields_changed"] != "")]
    return out.sort_values(["change", KEY]).reset_index(drop=True)


def diff_counts(old: pd.DataFrame, new: pd.DataFrame, keys: list[str], value: str) -> pd.DataFrame:
    """Side-by-side `value` of two tables keyed by `keys`, with the difference."""
    merged = old[keys + [value]].merge(new[keys + [value]], on=keys, how="outer", suffixes=("_old", "_new"))
    merged[[f"{value}_old", f"{value}_new"]] = merged[[f"{value}_old", f"{value}_new"]].fillna(0)
    merged["change"] = merged[f"{value}_new"] - merged[f"{value}_old"]
    return merged


def diff_ledger(old: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """Ledger entries counted by centre, file, rule, column and scope; rows may renumber."""
    keys = ["centre", "file", "rule", "column", "scope"]
    count = lambda d: d.groupby(keys, dropna=False).size().rename("entries").reset_index()  # noqa: E731
    out = diff_counts(count(old), count(new), keys, "entries")
    return out.sort_values(keys).reset_index(drop=True)


def diff_attrition(old: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    out = old[["step", "description", "n_remaining"]].merge(
        new[["step", "n_remaining"]], on="step", how="outer", suffixes=("_old", "_new"), sort=False)
    out["change"] = out["n_remaining_new"] - out["n_remaining_old"]
    return out


def diff_table1(old: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """Every Table 1 cell (overall, IV, SC, missing, smd) that differs."""
    keys = ["variable", "level"]
    cells = ["overall", "IV", "SC", "missing", "smd"]
    long = lambda d: d[keys + cells].astype({c: str for c in cells}).melt(keys, var_name="column")  # noqa: E731
    merged = long(old).merge(long(new), on=keys + ["column"], how="outer", suffixes=("_old", "_new"))
    differs = ~_same(merged["value_old"], merged["value_new"])
    return merged[differs].sort_values(keys + ["column"]).reset_index(drop=True)


def effect_estimates(cox: pd.DataFrame | None, logistic: pd.DataFrame | None,
                     rate_ratios: pd.DataFrame | None) -> pd.DataFrame:
    """The IV-vs-SC estimates of one run in one long table: source, outcome, model, term, estimate, lcl, ucl."""
    parts = []
    if cox is not None:
        parts.append(cox.assign(source="cox", outcome="death_90d").rename(
            columns={"hr": "estimate", "hr_lcl": "lcl", "hr_ucl": "ucl"}))
    if logistic is not None:
        firth = logistic[logistic["method"] == "firth"] if "method" in logistic else logistic
        parts.append(firth.assign(source="logistic_firth").rename(
            columns={"or": "estimate", "or_lcl": "lcl", "or_ucl": "ucl"}))
    if rate_ratios is not None:
        parts.append(rate_ratios.assign(source="rate_ratio").rename(
            columns={"irr": "estimate", "rate_ratio": "estimate", "irr_lcl": "lcl", "irr_ucl": "ucl"}))
    if not parts:
        return pd.DataFrame(columns=EFFECT_KEYS + ["estimate", "lcl", "ucl"])
    est = pd.concat([p.reindex(columns=EFFECT_KEYS + ["estimate", "lcl", "ucl"]) for p in parts], ignore_index=True)
    return est[est["term"] == "route_group[IV]"].reset_index(drop=True)


def _excludes_one(lcl: pd.Series, ucl: pd.Series) -> pd.Series:
    return ((lcl > 1) | (ucl < 1)).where(lcl.notna() & ucl.notna())


def diff_effects(old: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """Old vs new estimates with `conclusion_moved` where the CI's relation to 1 flipped."""
    merged = old.merge(new, on=EFFECT_KEYS, how="outer", suffixes=("_old", "_new"))
    merged["ratio_change"] = merged["estimate_new"] / merged["estimate_old"]
    was = _excludes_one(merged["lcl_old"], merged["ucl_old"])
    now = _excludes_one(merged["lcl_new"], merged["ucl_new"])
    merged["ci_excluded_1_old"] = was
    merged["ci_excluded_1_new"] = now
    merged["conclusion_moved"] = (was.notna() & now.notna() & (was != now)).astype(int)
    return merged.sort_values(EFFECT_KEYS).reset_index(drop=True)
