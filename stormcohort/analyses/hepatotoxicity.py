"""Laboratory-defined hepatotoxicity, computed once for the binary outcomes and the safety tables.

Per patient: the largest ALT or AST after the index (calendar days ``window_days``) divided by
the upper limit of normal (``uln``, per centre and test) of the centre that measured it
(``max_uln_ratio``), and for each multiple k in ``multiples`` the 0/1 flag
``hepatotox_<k>xuln`` (ratio above k). Without such a sample both are missing: not evaluable.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from stormcohort.analyses.common import calendar_day, check_columns, check_routes, outcome_counts
from stormcohort.analyses.result import AnalysisResult
from stormcohort.labels import GROUP, hepatotox_outcome


def outcome_names(patients: pd.DataFrame) -> list[str]:
    """The ``hepatotox_<k>xuln`` columns of the patient table, in its order."""
    return [c for c in patients.columns if c.startswith("hepatotox_")]


def hepatotoxicity(dataset: pd.DataFrame, labs: pd.DataFrame, cfg: Mapping) -> pd.DataFrame:
    """Per patient (dataset order): ``max_uln_ratio`` (largest ALT/AST over its centre's ULN in
    the window) and ``hepatotox_<k>xuln`` 0/1 (<NA> when no sample)."""
    tests = list(cfg["tests"])
    lo, hi = cfg["window_days"]
    d = labs.loc[labs["test"].isin(tests), ["patient_key", "centre", "test", "day", "value"]].copy()
    d["value"] = pd.to_numeric(d["value"], errors="coerce")
    cday = calendar_day(d["day"])
    d = d[d["value"].notna() & cday.between(lo, hi)]
    uln = pd.DataFrame(
        [(str(c), str(t), float(v)) for c, per_test in cfg["uln"].items() for t, v in per_test.items()],
        columns=["centre", "test", "uln"],
    )
    d = d.astype({"centre": str, "test": str}).merge(uln, on=["centre", "test"], how="left", validate="m:1")
    if d["uln"].isna().any():
        missing = sorted(set(map(tuple, d.loc[d["uln"].isna(), ["centre", "test"]].to_numpy().tolist())))
        raise KeyError(f"analyses.hepatotoxicity.uln: no upper limit of normal for (centre, test) {missing}")
    d["ratio"] = d["value"] / d["uln"]
    best = d.groupby("patient_key")["ratio"].max()
    out = pd.DataFrame({"patient_key": dataset["patient_key"].to_numpy()}, index=dataset.index)
    out["max_uln_ratio"] = dataset["patient_key"].map(best).astype(float)
    for k in cfg["multiples"]:
        out[hepatotox_outcome(k)] = out["max_uln_ratio"].gt(float(k)).astype("Int64").mask(
            out["max_uln_ratio"].isna())
    return out


def hepatotoxicity_analysis(dataset: pd.DataFrame, labs: pd.DataFrame, cfg: Mapping) -> AnalysisResult:
    """Tables ``patients`` (``cohort/hepatotoxicity.csv``: ``patient_key, max_uln_ratio,
    hepatotox_<k>xuln``) and ``summary`` (``tables/hepatotoxicity.csv``: counts by route)."""
    check_columns(dataset, ["patient_key", GROUP], "analysis dataset")
    check_routes(dataset, "analysis dataset")
    check_columns(labs, ["patient_key", "centre", "test", "value", "day"], "labs table")
    patients = hepatotoxicity(dataset, labs, cfg)
    names = outcome_names(patients)
    summary = outcome_counts(dataset[["patient_key", GROUP]].join(patients[names]), names)
    n_missing = int(patients["max_uln_ratio"].isna().sum())
    notes = ((f"hepatotoxicity: {n_missing} patient(s) without ALT/AST in the window: not evaluable",)
             if n_missing else ())
    return AnalysisResult(tables={"patients": patients, "summary": summary}, notes=notes)
