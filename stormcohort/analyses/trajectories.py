"""Laboratory trajectories over the first two weeks, IV vs SC.

Labs long table in, tidy tables out (no I/O). For each test (default ferritin, CRP, platelets,
ALT), samples taken on calendar days ``days`` from the index date (first anakinra dose; day 0
= the index date) are modelled by :func:`stormcohort.stats.lab_trajectory_lmm`:
``log(value + offset) ~ route_group * day + (1 + day | patient)`` by REML, ``day`` the
fractional time since the start of the index date, route reference SC. The terms are
``Intercept`` (log value at day 0, SC), ``day`` (SC slope per day, log scale),
``route_group[IV]`` (IV - SC difference at day 0) and ``route_group[IV]:day`` (IV - SC
difference in slope). exp(coef) is a ratio of geometric means (per day for slopes). Standard
errors are lme4's, tests and intervals t-based on Satterthwaite degrees of freedom (``df``).
The random slope is kept also when its variance is estimated at 0 (a singular fit, noted); the
stats layer drops it only when lme4 would refuse the model or the fit fails, and says why
(``random_effects`` and ``note``); when nothing can be fitted the rows are NA with the reason.

The model uses every available sample and so assumes they are missing at random; deaths cut
series short. With the analysis dataset, each test's model JSON counts by route the patients
whose series ends with death (``deaths_in_window``: a recorded death on a calendar day up to
the window's last day, among the patients with a sample).

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
from stormcohort.labels import GROUP, REFERENCE, ROUTE_TERM, ROUTES, death_outcome
from stormcohort.stats import lab_trajectory_lmm

TERMS = ["Intercept", "day", ROUTE_TERM, f"{ROUTE_TERM}:day"]
TABLE_COLUMNS = ["test", "term", "coef", "se", "df", "lcl", "ucl", "p", "n_patients", "n_obs", "random_effects",
                 "note"]
DAILY_COLUMNS = ["test", "group", "day", "n", "median", "q1", "q3"]
METHOD = ("linear mixed model of log(value + offset) on route_group * day with a random intercept and "
          "slope per patient (unstructured covariance), REML as R lme4 (exact, from per-patient sufficient "
          "statistics; a covariance estimated on the boundary, a singular fit, is kept); t tests and t "
          "intervals on the log scale with Satterthwaite degrees of freedom (as R lmerTest); the random slope "
          "is dropped only when the model is not identifiable (no more samples than random effects) or the "
          "fit fails")


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
        **{c: fe[c].to_numpy(dtype=float) for c in ("coef", "se", "df", "lcl", "ucl", "p")},
        "n_patients": res.n_patients, "n_obs": res.n_obs,
        "random_effects": res.random_effects, "note": join_notes(notes),
    })
    summary = {
        "estimable": res.estimable, "reason": res.reason, "random_effects": res.random_effects,
        "fallback_reason": res.fallback_reason, "singular": res.singular, "converged": res.converged,
        "theta": list(res.theta), "reml_criterion": res.reml_criterion, "df_method": res.df_method,
        "n_obs": res.n_obs,
        "n_patients": res.n_patients, "n_patients_by_group": {g: int(d.loc[d[GROUP].eq(g), "patient_key"].nunique())
                                                              for g in ROUTES},
        "n_dropped_nonpositive": res.n_dropped_nonpositive, "log_offset": offset,
        "unit": LAB_UNITS.get(test), "residual_var": res.residual_var,
        "random_cov": None if res.random_cov is None else res.random_cov.to_dict(),
        "warnings": list(res.warnings),
        "fixed_effects": res.fixed_effects.set_index("term").to_dict(orient="index"),
    }
    return rows, summary


def deaths_in_window(data: pd.DataFrame, dataset: pd.DataFrame, follow_up_days: int, days) -> dict:
    """Per test and route: patients with a sample whose series ends with death, i.e. with a recorded
    death on a calendar day up to the window's last day (``{test: {"IV": k, "SC": m}}``)."""
    event = death_outcome(follow_up_days)
    check_columns(dataset, ["patient_key", "time_to_death_days", event], "analysis dataset")
    dead = pd.to_numeric(dataset[event], errors="coerce").eq(1) & calendar_day(
        dataset["time_to_death_days"]).le(days[1])
    died = set(dataset.loc[dead, "patient_key"])
    per = data[data["patient_key"].isin(died)].drop_duplicates(["test", "patient_key"])
    counts = per.groupby(["test", GROUP]).size()
    return {t: {g: int(counts.get((t, g), 0)) for g in ROUTES} for t in data["test"].unique()}


def trajectories_analysis(labs: pd.DataFrame, cfg: Mapping, *, dataset: pd.DataFrame | None = None,
                          follow_up_days: int | None = None, synthetic: bool = False) -> AnalysisResult:
    """Tables ``table`` (``tables/trajectories.csv``) and ``daily``, the figure and the model.

    With the analysis ``dataset`` (and ``follow_up_days``, which names its death column), each
    test's model gains ``deaths_in_window``: by route, the patients whose series ends with death."""
    s = settings(cfg)
    data = trajectory_data(labs, s["tests"], s["days"])
    if dataset is not None and follow_up_days is None:
        raise ValueError("trajectories_analysis: follow_up_days is needed with the dataset (its death column)")
    deaths = None if dataset is None else deaths_in_window(data, dataset, follow_up_days, s["days"])
    tables, summaries = [], {}
    for test in s["tests"]:
        rows, summary = fit_test(data, test, s["log_offset"][test], s["conf_level"])
        tables.append(rows)
        summary["deaths_in_window"] = None if deaths is None else deaths.get(test, dict.fromkeys(ROUTES, 0))
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
