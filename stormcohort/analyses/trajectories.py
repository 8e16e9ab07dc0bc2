"""Laboratory trajectories over the first two weeks, IV vs SC.

Labs long table in, tidy tables out (no I/O). For each test (default ferritin, CRP, platelets,
ALT), samples taken on calendar days ``days`` from the index date (first anakinra dose; day 0
= the index date) are modelled by :func:`stormcohort.stats.lab_trajectory_lmm`:
``log(value + offset) ~ route_group * day + (1 + day | patient)`` by REML, ``day`` the
fractional time since the start of the index date, route reference SC. The terms are
``Intercept`` (log value at day 0, SC), ``day`` (SC slope per day, log scale),
``route_group[IV]`` (IV - SC difference at day 0) and ``route_group[IV]:day`` (IV - SC
difference in slope). exp(coef) is a ratio of geometric means (per day for slopes). When the
random slope cannot be estimated the stats layer refits with a random intercept only and
says why (``random_effects`` and ``note``); when nothing can be fitted the rows are NA with
the reason.

:func:`daily_summary` gives, per test, route and calendar day, the number of patients and the
median and quartiles of each patient's first sample of the day (the figure's bold lines).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from stormcohort.analyses.common import calendar_day, check_columns, check_routes, join_notes, jsonable
from stormcohort.analyses.result import AnalysisResult
from stormcohort.canonical import LAB_UNITS
from stormcohort.labels import GROUP, REFERENCE, ROUTE_TERM, ROUTES
from stormcohort.stats import lab_trajectory_lmm

TERMS = ["Intercept", "day", ROUTE_TERM, f"{ROUTE_TERM}:day"]
TABLE_COLUMNS = ["test", "term", "coef", "se", "lcl", "ucl", "p", "n_patients", "n_obs", "random_effects", "note"]
DAILY_COLUMNS = ["test", "group", "day", "n", "median", "q1", "q3"]
METHOD = ("linear mixed model of log(value + offset) on route_group * day with a random intercept and "
          "slope per patient (unstructured covariance), REML (exact, from per-patient sufficient statistics; "
          "agrees with statsmodels MixedLM run to convergence); Wald z tests and "
          "normal CIs on the log scale; random-intercept fallback when the slope variance is not estimable")


def settings(cfg: Mapping) -> dict:
    """``analyses.trajectories`` with an offset for each test (0 when not configured)."""
    s = dict(cfg)
    s["log_offset"] = {t: float(dict(s["log_offset"]).get(t, 0.0)) for t in s["tests"]}
    unknown = [t for t in s["tests"] if t not in LAB_UNITS]
    if unknown:
        raise KeyError(f"analyses.trajectories.tests: unknown lab test(s) {unknown}; known: {sorted(LAB_UNITS)}")
    return s


def trajectory_data(labs: pd.DataFrame, tests, days) -> pd.DataFrame:
    """Samples of ``tests`` on calendar days ``days`` with a numeric value: ``patient_key,
    route_group, test, day, cday, value`` (sorted)."""
    check_columns(labs, ["patient_key", GROUP, "test", "value", "day"], "labs table")
    check_routes(labs, "labs table")
    d = labs.loc[labs["test"].isin(list(tests)), ["patient_key", GROUP, "test", "day", "value"]].copy()
    d["value"] = pd.to_numeric(d["value"], errors="coerce")
    d["day"] = pd.to_numeric(d["day"], errors="coerce")
    d["cday"] = calendar_day(d["day"])
    d = d[d["value"].notna() & d[GROUP].notna() & d["cday"].between(days[0], days[1])]
    return d.sort_values(["test", "patient_key", "day"], kind="mergesort").reset_index(drop=True)


def daily_summary(data: pd.DataFrame, tests) -> pd.DataFrame:
    """Per test, route group and calendar day: patients sampled and the median / quartiles of
    their first value of the day."""
    first = data.drop_duplicates(["test", "patient_key", "cday"])
    g = first.groupby(["test", GROUP, "cday"])["value"]
    out = pd.DataFrame({"n": g.size(), "median": g.median(), "q1": g.quantile(0.25), "q3": g.quantile(0.75)})
    out = out.reset_index().rename(columns={GROUP: "group", "cday": "day"})
    out["test"] = pd.Categorical(out["test"], categories=list(tests))
    out = out.sort_values(["test", "group", "day"]).reset_index(drop=True)
    out["test"] = out["test"].astype(str)
    out["day"] = out["day"].astype(int)
    return out[DAILY_COLUMNS]


def fit_test(data: pd.DataFrame, test: str, offset: float, conf_level: float) -> tuple[pd.DataFrame, dict]:
    """One test's rows (``TERMS`` order) and its json summary."""
    d = data[data["test"].eq(test)].copy()
    d[GROUP] = pd.Categorical(d[GROUP], categories=[REFERENCE, "IV"])
    present = [g for g in ROUTES if d[GROUP].eq(g).any()]
    with np.errstate(invalid="ignore", divide="ignore"):  # NaN standard errors are reported by the fit
        res = lab_trajectory_lmm(d, "value", "day", "patient_key", GROUP, log_offset=offset, conf_level=conf_level)
    notes = []
    if not res.estimable:
        notes.append(f"not estimable: {res.reason}")
    if len(present) < 2:
        missing = [g for g in ROUTES if g not in present]
        notes.append(f"no samples in the {' and '.join(missing)} group: route terms not estimable")
    if res.fallback_reason:
        notes.append(res.fallback_reason)
    if res.n_dropped_nonpositive:
        notes.append(f"{res.n_dropped_nonpositive} non-positive value(s) dropped before taking logs")
    notes += list(res.warnings)
    fe = res.fixed_effects.set_index("term").reindex(TERMS)
    rows = pd.DataFrame({
        "test": test, "term": TERMS,
        **{c: fe[c].to_numpy(dtype=float) for c in ("coef", "se", "lcl", "ucl", "p")},
        "n_patients": res.n_patients, "n_obs": res.n_obs,
        "random_effects": res.random_effects, "note": join_notes(notes),
    })
    summary = {
        "estimable": res.estimable, "reason": res.reason, "random_effects": res.random_effects,
        "fallback_reason": res.fallback_reason, "converged": res.converged, "n_obs": res.n_obs,
        "n_patients": res.n_patients, "n_patients_by_group": {g: int(d.loc[d[GROUP].eq(g), "patient_key"].nunique())
                                                              for g in ROUTES},
        "n_dropped_nonpositive": res.n_dropped_nonpositive, "log_offset": offset,
        "unit": LAB_UNITS.get(test), "residual_var": res.residual_var,
        "random_cov": None if res.random_cov is None else res.random_cov.to_dict(),
        "warnings": list(res.warnings),
        "fixed_effects": res.fixed_effects.set_index("term").to_dict(orient="index"),
    }
    return rows, summary


def trajectories_analysis(labs: pd.DataFrame, cfg: Mapping, *, synthetic: bool = False) -> AnalysisResult:
    """Tables ``table`` (``tables/trajectories.csv``) and ``daily``, the figure and the model."""
    s = settings(cfg)
    data = trajectory_data(labs, s["tests"], s["days"])
    tables, summaries = [], {}
    for test in s["tests"]:
        rows, summary = fit_test(data, test, s["log_offset"][test], s["conf_level"])
        tables.append(rows)
        summaries[test] = summary
    table = pd.concat(tables, ignore_index=True)[TABLE_COLUMNS]
    daily = daily_summary(data, s["tests"])
    model = {"settings": s, "method": METHOD, "reference": {"route_group": REFERENCE, "term": ROUTE_TERM},
             "models": summaries}
    notes = tuple(f"{test}: {note}" for test, m in summaries.items()
                  for note in filter(None, [m["reason"], m["fallback_reason"], *m["warnings"]]))

    def figure():
        from stormcohort.plots.trajectories import trajectories_figure

        return trajectories_figure(data, daily, tests=s["tests"], days=s["days"], synthetic=synthetic,
                                   max_patients=s["max_lines_per_group"], table=table)

    return AnalysisResult(tables={"table": table, "daily": daily}, model=jsonable(model),
                          figures={"trajectories": figure}, notes=notes)
