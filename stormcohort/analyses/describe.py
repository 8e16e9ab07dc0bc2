"""The descriptive tables: Table 1, anakinra exposure, follow-up, and the data dictionary of
every result table. Analysis dataset and anakinra table in, numeric tidy tables out (no I/O);
the report only formats them."""

from __future__ import annotations

import numpy as np
import pandas as pd

from stormcohort.analyses.common import check_columns, check_routes
from stormcohort.analyses.dictionary import dictionary_table
from stormcohort.analyses.result import AnalysisResult
from stormcohort.labels import GROUP, GROUPS, death_outcome
from stormcohort.table1 import table1

EXPOSURE_COLUMNS = ["variable", "group", "n", "count", "median", "q1", "q3", "missing"]
FOLLOW_UP_COLUMNS = ["group", "patients", "median", "q1", "q3", "person_days", "ended_alive_before_horizon"]
TIME = "time_to_death_days"


def exposure_summary(dataset: pd.DataFrame, anakinra: pd.DataFrame) -> pd.DataFrame:
    """Anakinra exposure by route group: tidy rows ``variable, group, n, count, median, q1, q3, missing``.

    ``n`` = patients with a value; binary variables give ``count`` (patients with 1),
    continuous ones the median and quartiles.
    """
    d = dataset.copy()
    cont = anakinra.groupby("patient_key")["continuous"].apply(lambda s: s.astype(str).str.lower().eq("true").any())
    d["continuous_infusion"] = d["patient_key"].map(cont).fillna(False).astype(int)
    d["regimens"] = d["patient_key"].map(anakinra.groupby("patient_key").size()).fillna(0)
    d["first_dose_iv"] = d["first_route"].eq("IV").astype(int)
    spec = [("max_daily_dose_mg", "median"), ("max_dose_mg_per_kg_day", "median"),
            ("days_admission_to_anakinra", "median"), ("days_on_anakinra", "median"), ("regimens", "median"),
            ("first_dose_iv", "count"), ("route_switch", "count"), ("continuous_infusion", "count")]
    rows = []
    for var, kind in spec:
        for g in GROUPS:
            x = pd.to_numeric((d if g == "overall" else d[d[GROUP].eq(g)])[var], errors="coerce")
            v = x.dropna()
            q = np.percentile(v, [25, 50, 75]) if len(v) else [np.nan] * 3
            rows.append({"variable": var, "group": g, "n": len(v), "count": int(v.sum()) if kind == "count" else np.nan,
                         "median": q[1] if kind == "median" else np.nan, "q1": q[0] if kind == "median" else np.nan,
                         "q3": q[2] if kind == "median" else np.nan, "missing": int(x.isna().sum())})
    return pd.DataFrame(rows, columns=EXPOSURE_COLUMNS)


def follow_up(dataset: pd.DataFrame, follow_up_days: int) -> pd.DataFrame:
    """Follow-up from the index date to death or censoring (capped at H = ``follow_up_days``), by
    route group and overall: ``group, patients, median, q1, q3`` (days), ``person_days`` (missing
    when no patient has a time) and ``ended_alive_before_horizon`` (censored alive before day H)."""
    died = pd.to_numeric(dataset[death_outcome(follow_up_days)], errors="coerce").eq(1)
    early = ~died & pd.to_numeric(dataset[TIME], errors="coerce").lt(follow_up_days)
    rows = []
    for g in GROUPS:
        d = dataset if g == "overall" else dataset[dataset[GROUP].eq(g)]
        t = pd.to_numeric(d[TIME], errors="coerce").dropna()
        q = np.percentile(t, [25, 50, 75]) if len(t) else [np.nan] * 3
        rows.append({"group": g, "patients": len(d), "median": q[1], "q1": q[0], "q3": q[2],
                     "person_days": int(t.sum()) if len(t) else pd.NA,
                     "ended_alive_before_horizon": int(early.loc[d.index].sum())})
    out = pd.DataFrame(rows, columns=FOLLOW_UP_COLUMNS)
    out["person_days"] = out["person_days"].astype("Int64")
    return out


def describe_analysis(dataset: pd.DataFrame, anakinra: pd.DataFrame, attrition: pd.DataFrame | None = None, *,
                      follow_up_days: int = 90, synthetic: bool = False) -> AnalysisResult:
    """The ``describe`` rule: tables ``table1``, ``exposure``, ``follow_up`` and ``dictionary``, and
    the flow diagram of the ``attrition`` (one job for the STROBE participants and baseline: a
    job of its own would cost its interpreter and imports for one figure)."""
    check_columns(dataset, ["patient_key", GROUP, "first_route", TIME], "analysis dataset")
    check_routes(dataset, "analysis dataset")
    check_columns(anakinra, ["patient_key", "continuous"], "anakinra table")

    def flow():
        from stormcohort.figures import flow_diagram

        return flow_diagram(attrition, synthetic)

    return AnalysisResult(tables={"table1": table1(dataset), "exposure": exposure_summary(dataset, anakinra),
                                  "follow_up": follow_up(dataset, follow_up_days), "dictionary": dictionary_table()},
                          figures={"flow": flow} if attrition is not None else {})
