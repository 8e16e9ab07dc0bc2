"""Binary outcomes by route, and Firth / ML logistic regression of each on IV vs SC.

Analysis dataset and long tables in, tidy tables out (no I/O). The estimators come from
:mod:`stormcohort.stats.firth` (Firth checked against R ``logistf`` there).

Outcomes (one 0/1 column per patient; missing = not evaluable, counted, never modelled):

* ``death_30d``: death by day 30 from the analysis dataset (missing when censored alive
  before day 30).
* ``response_day7``: all of (a) afebrile by day ``afebrile_by_day`` (``fever_outcome == 1``
  and ``time_to_fever_days <= afebrile_by_day``), (b) for each test in ``lab_falls``, the
  sample nearest day ``target_day`` within ``window_days`` (calendar days from the index
  date; ties to the earlier day, then the earlier sample) has fallen by at least the given
  fraction from the patient's baseline (``<test>_baseline``; a censored ``<x``/``>x`` result on
  either side decides only when every value it stands for does). A component is *met*, *failed*
  or *unknown*: fever fails when it resolved after the day or never did (death before
  resolution, or still febrile when censored on or after the day), is met for a patient afebrile
  at index (``fever_not_evaluable`` ``afebrile_at_index``: no fever to resolve), and is unknown
  when censored earlier or without a resolution date (``no_resolution_date``); a lab component
  is unknown without a baseline or without a sample in the window. Response is 1 when every
  component is met, 0 when any component failed (so a patient who died febrile before day 7 is
  a non-responder, not "not evaluable"), and not evaluable otherwise.
* ``ae_grade3plus``: at least one adverse event of CTCAE grade >= ``ae_min_grade`` on days
  ``ae_window_days`` (every cohort patient is evaluable; AEs with a missing grade do not count).
* ``hepatotox_<k>xuln``: read from the hepatotoxicity rule's patient table
  (:mod:`stormcohort.analyses.hepatotoxicity`); not evaluable where it is missing.

Models, per outcome: ``unadjusted`` (``route_group``, reference SC, so the route term is
``route_group[IV]``) and ``adjusted`` (+ ``adjust_for``; text covariates treatment-coded
against ``reference_levels``, else their first sorted level; a covariate without variation
among the complete cases is dropped with a note). Complete cases only. Each is fitted by Firth's penalised likelihood
(profile-likelihood CIs, penalised LR p; method ``firth``) and by ordinary ML (Wald; method
``ml``) when ML exists: under separation or non-convergence the ML rows carry the reason in
``note``. No events, every patient an event, or an empty route group: not estimable, with
the reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from stormcohort.analyses.common import (
    calendar_day,
    check_columns,
    check_routes,
    join_notes,
    jsonable,
    outcome_counts,
    reference_first,
)
from stormcohort.analyses.hepatotoxicity import outcome_names
from stormcohort.analyses.result import AnalysisResult
from stormcohort.labels import GROUP, REFERENCE, ROUTE_TERM, ROUTES
from stormcohort.stats import firth_logistic, ml_logistic

INTERCEPT = "(Intercept)"

LOGISTIC_COLUMNS = [
    "outcome", "model", "method", "term", "coef", "se", "or", "or_lcl", "or_ucl", "p", "n", "events", "note",
]
MODELS = ("unadjusted", "adjusted")
METHODS = ("firth", "ml")

METHOD_TEXT = {
    "firth": "Firth penalised-likelihood logistic regression (R logistf): se from (X'W(1+h)X)^-1, "
    "profile penalised-likelihood CIs, penalised likelihood-ratio p",
    "ml": "maximum-likelihood logistic regression (statsmodels Logit): Wald se, CIs and p; "
    "not estimable under (quasi-)complete separation or non-convergence",
}


# --------------------------------------------------------------------------- outcome definitions


def _nearest_sample(labs: pd.DataFrame, test: str, target: float, window: Sequence[float]) -> pd.DataFrame:
    """Per patient, the ``value`` and ``qualifier`` of ``test`` nearest calendar day ``target`` within ``window``."""
    d = labs.loc[labs["test"].eq(test), ["patient_key", "day", "value"]].copy()
    d["qualifier"] = labs.loc[d.index, "qualifier"].fillna("") if "qualifier" in labs else ""
    d["value"] = pd.to_numeric(d["value"], errors="coerce")
    d["cday"] = calendar_day(d["day"])
    d = d[d["value"].notna() & d["cday"].between(window[0], window[1])]
    d["distance"] = (d["cday"] - target).abs()
    d = d.sort_values(["patient_key", "distance", "cday", "day"], kind="mergesort")
    return d.drop_duplicates("patient_key").set_index("patient_key")[["value", "qualifier"]]


def _bounds(value: pd.Series, qualifier: pd.Series) -> tuple[pd.Series, pd.Series]:
    """The range of true values a result stands for: ``<x`` is [0, x], ``>x`` is [x, inf)."""
    q = qualifier.fillna("")
    return value.where(q.ne("<"), 0.0), value.where(q.ne(">"), np.inf)


def fell_by(base: pd.Series, base_qualifier: pd.Series, value: pd.Series, value_qualifier: pd.Series,
            fall: float) -> pd.Series:
    """1 when the value fell from baseline by at least ``fall`` for every true value the (possibly
    censored, ``<x``/``>x``) results stand for, 0 when it did for none, <NA> when it depends."""
    base_lo, base_hi = _bounds(base, base_qualifier)
    value_lo, value_hi = _bounds(value, value_qualifier)
    met = value_hi.le((1 - fall) * base_lo)
    failed = value_lo.gt((1 - fall) * base_hi)
    return pd.Series(np.where(met, 1, np.where(failed, 0, -1)), index=base.index)


def response_components(dataset: pd.DataFrame, labs: pd.DataFrame, cfg: Mapping) -> pd.DataFrame:
    """Per patient (dataset order): each response component as 1 met / 0 failed / <NA> unknown,
    and the composite ``response_day7``."""
    r = cfg["response"]
    check_columns(dataset, ["patient_key", "fever_outcome", "time_to_fever_days"], "analysis dataset")
    by = float(r["afebrile_by_day"])
    outcome = pd.to_numeric(dataset["fever_outcome"], errors="coerce")
    t = pd.to_numeric(dataset["time_to_fever_days"], errors="coerce")
    afebrile_at_index = dataset.get("fever_not_evaluable", pd.Series("", index=dataset.index)).eq(
        "afebrile_at_index")
    met = (outcome.eq(1) & t.le(by)) | afebrile_at_index
    failed = (outcome.eq(1) & t.gt(by)) | outcome.eq(2) | (outcome.eq(0) & t.ge(by))
    comp = pd.DataFrame({"patient_key": dataset["patient_key"].to_numpy()}, index=dataset.index)
    comp["afebrile"] = pd.Series(np.where(met, 1, np.where(failed, 0, -1)), index=dataset.index)
    for test, fall in dict(r["lab_falls"]).items():
        base_col = f"{test}_baseline"
        check_columns(dataset, [base_col], "analysis dataset (response definition)")
        base = pd.to_numeric(dataset[base_col], errors="coerce")
        base_qualifier = dataset.get(f"{base_col}_qualifier", pd.Series("", index=dataset.index))
        sample = _nearest_sample(labs, test, float(r["target_day"]), r["window_days"]).reindex(dataset["patient_key"])
        value = pd.Series(sample["value"].to_numpy(), index=dataset.index)
        qualifier = pd.Series(sample["qualifier"].to_numpy(), index=dataset.index)
        ok = base.gt(0) & value.notna()
        fell = fell_by(base, base_qualifier, value, qualifier, float(fall))
        comp[f"{test}_fall"] = np.where(ok, fell, -1)
    parts = comp.drop(columns="patient_key")
    composite = np.where(parts.eq(0).any(axis=1), 0, np.where(parts.eq(1).all(axis=1), 1, -1))
    comp["response_day7"] = composite
    for c in comp.columns[1:]:
        comp[c] = comp[c].astype("Int64").mask(comp[c].eq(-1))
    return comp


def any_severe_ae(dataset: pd.DataFrame, adverse_events: pd.DataFrame, min_grade: int,
                  window: Sequence[float]) -> pd.Series:
    """0/1 per patient (dataset order): an AE of grade >= ``min_grade`` on calendar days ``window``."""
    ae = adverse_events
    grade = pd.to_numeric(ae["grade"], errors="coerce")
    hit = grade.ge(min_grade) & calendar_day(ae["day"]).between(window[0], window[1])
    keys = set(ae.loc[hit, "patient_key"])
    return dataset["patient_key"].isin(keys).astype("Int64")


def binary_outcomes(dataset: pd.DataFrame, labs: pd.DataFrame, adverse_events: pd.DataFrame,
                    hepatotoxicity: pd.DataFrame, cfg: Mapping) -> tuple[pd.DataFrame, list[str], dict]:
    """The dataset with one 0/1/<NA> column per outcome; the outcome names; definition details.
    ``hepatotoxicity``: the patient table ``patient_key, max_uln_ratio, hepatotox_<k>xuln``."""
    check_columns(dataset, ["patient_key", GROUP, "death_30d"], "analysis dataset")
    check_routes(dataset, "analysis dataset")
    check_columns(labs, ["patient_key", "test", "value", "day"], "labs table")
    check_columns(adverse_events, ["patient_key", "grade", "day"], "adverse events table")
    check_columns(hepatotoxicity, ["patient_key", "max_uln_ratio"], "hepatotoxicity table")
    out = dataset.copy()
    out["death_30d"] = pd.to_numeric(out["death_30d"], errors="coerce").astype("Int64")
    comp = response_components(dataset, labs, cfg)
    out["response_day7"] = comp["response_day7"]
    out["ae_grade3plus"] = any_severe_ae(dataset, adverse_events, int(cfg["ae_min_grade"]), cfg["ae_window_days"])
    hep = hepatotoxicity.set_index("patient_key")
    hep_names = outcome_names(hepatotoxicity)
    for name in hep_names:
        out[name] = dataset["patient_key"].map(hep[name]).astype("Int64")
    ratio = pd.to_numeric(dataset["patient_key"].map(hep["max_uln_ratio"]), errors="coerce")
    outcomes = ["death_30d", "response_day7", "ae_grade3plus", *hep_names]
    comp_cols = [c for c in comp.columns if c not in ("patient_key", "response_day7")]
    details = {
        "response_components": {
            c: {"met": int(comp[c].eq(1).sum()), "failed": int(comp[c].eq(0).sum()),
                "unknown": int(comp[c].isna().sum())} for c in comp_cols
        },
        "ae_with_missing_grade": int(pd.to_numeric(adverse_events["grade"], errors="coerce").isna().sum()),
        "hepatotoxicity_max_uln_ratio_median": float(ratio.median()) if ratio.notna().any() else None,
    }
    return out, outcomes, details


# --------------------------------------------------------------------------- models


def _prepare(data: pd.DataFrame, outcome: str, covariates: Sequence[str], reference_levels: Mapping | None = None
             ) -> tuple[pd.DataFrame, list[str], list[str]]:
    """Complete cases for the model; covariates kept (text ones as categoricals with the
    configured reference level first, else sorted) and notes on those dropped."""
    cols = [outcome, GROUP, *covariates]
    d = data.loc[data[cols].notna().all(axis=1), cols].copy()
    d[outcome] = d[outcome].astype(int)
    d[GROUP] = pd.Categorical(d[GROUP], categories=[REFERENCE, "IV"])
    kept, notes = [], []
    for var in covariates:
        if d[var].nunique() < 2:
            notes.append(f"covariate {var!r} dropped: no variation among the complete cases")
            continue
        if not pd.api.types.is_numeric_dtype(d[var]):
            d[var] = reference_first(d[var], (reference_levels or {}).get(var))
        kept.append(var)
    return d, kept, notes


def _problem(d: pd.DataFrame, outcome: str) -> str | None:
    n, events = len(d), int(d[outcome].sum())
    counts = d[GROUP].value_counts()
    empty = [g for g in ROUTES if counts.get(g, 0) == 0]
    if n == 0:
        return "no evaluable patients with complete data"
    if empty:
        return f"no evaluable patients in the {' and '.join(empty)} group"
    if events == 0:
        return f"no events among {n} evaluable patients"
    if events == n:
        return f"every one of {n} evaluable patients had the outcome"
    return None


def _separation_note(d: pd.DataFrame, outcome: str) -> str | None:
    by = d.groupby(GROUP, observed=True)[outcome].agg(["sum", "size"])
    for g in ROUTES:
        if g in by.index and by.loc[g, "sum"] in (0, by.loc[g, "size"]):
            what = "no events" if by.loc[g, "sum"] == 0 else "only events"
            return f"separation: {what} in the {g} group (Firth estimate finite, ML infinite)"
    return None


def _rows(outcome, model, method, terms, table, n, events, note, term_notes=None) -> pd.DataFrame:
    t = table.set_index("term").reindex(terms)
    out = pd.DataFrame({
        "outcome": outcome, "model": model, "method": method, "term": terms,
        "coef": t["coef"].to_numpy(dtype=float), "se": t["se"].to_numpy(dtype=float),
        "or": t["odds_ratio"].to_numpy(dtype=float), "or_lcl": t["or_lcl"].to_numpy(dtype=float),
        "or_ucl": t["or_ucl"].to_numpy(dtype=float), "p": t["p"].to_numpy(dtype=float),
        "n": n, "events": events, "note": note,
    })
    if term_notes:
        for term, extra in term_notes.items():
            sel = out["term"].eq(term)
            out.loc[sel, "note"] = out.loc[sel, "note"].map(lambda v, e=extra: join_notes([v, e]))
    return out


def fit_outcome(data: pd.DataFrame, outcome: str, model: str, covariates: Sequence[str],
                conf_level: float = 0.95, reference_levels: Mapping | None = None) -> tuple[pd.DataFrame, dict]:
    """Firth and ML rows for one outcome and one model, and its json summary."""
    d, kept, notes = _prepare(data, outcome, covariates, reference_levels)
    n, events = len(d), int(d[outcome].sum())
    covs = [GROUP, *kept]
    problem = _problem(d, outcome)
    summary: dict = {"covariates": covs, "dropped_covariates": notes, "n": n, "events": events,
                     "events_by_group": {g: int(d.loc[d[GROUP].eq(g), outcome].sum()) for g in ROUTES},
                     "n_by_group": {g: int(d[GROUP].eq(g).sum()) for g in ROUTES}}
    if problem:
        terms = [INTERCEPT, ROUTE_TERM]
        nan = pd.DataFrame({"term": terms, "coef": np.nan, "se": np.nan, "odds_ratio": np.nan,
                            "or_lcl": np.nan, "or_ucl": np.nan, "p": np.nan})
        note = join_notes([f"not estimable: {problem}", *notes])
        rows = [_rows(outcome, model, m, terms, nan, n, events, note) for m in METHODS]
        summary |= {m: {"estimable": False, "reason": problem} for m in METHODS}
        return pd.concat(rows, ignore_index=True), summary

    firth = firth_logistic(d, outcome, covs, conf_level=conf_level)
    ml = ml_logistic(d, outcome, covs, conf_level=conf_level)
    terms = list(firth.table["term"])
    if ROUTE_TERM not in terms:
        terms.append(ROUTE_TERM)
    sep = _separation_note(d, outcome)
    firth_note = join_notes([None if firth.estimable else f"not estimable: {firth.reason}", *notes,
                             *firth.warnings])
    rows = [_rows(outcome, model, "firth", terms, firth.table, n, events, firth_note,
                  {ROUTE_TERM: sep} if sep and firth.estimable else None)]
    ml_note = join_notes([None if ml.estimable else f"not estimable: {ml.reason}", *notes, *ml.warnings])
    rows.append(_rows(outcome, model, "ml", terms, ml.table, n, events, ml_note))
    summary["firth"] = {
        "estimable": firth.estimable, "reason": firth.reason, "converged": firth.converged,
        "iterations": firth.iterations, "loglik_penalised": firth.loglik,
        "loglik_penalised_null": firth.loglik_null, "lr_statistic": firth.lr_statistic, "lr_df": firth.lr_df,
        "lr_p": firth.lr_p, "warnings": list(firth.warnings),
        "coefficients": firth.table.set_index("term").drop(columns="ci_method").to_dict(orient="index"),
    }
    summary["ml"] = {
        "estimable": ml.estimable, "reason": ml.reason, "loglik": ml.loglik, "warnings": list(ml.warnings),
        "coefficients": ml.table.set_index("term").to_dict(orient="index") if ml.estimable else {},
    }
    return pd.concat(rows, ignore_index=True), summary


def logistic_models(data: pd.DataFrame, outcomes: Sequence[str], covariates: Sequence[str],
                    conf_level: float = 0.95, reference_levels: Mapping | None = None) -> tuple[pd.DataFrame, dict]:
    """``tables/logistic.csv`` rows (outcome, model, method, term order) and per-model summaries."""
    check_columns(data, list(covariates), "adjustment covariates (analyses.binary.adjust_for)")
    tables, summaries = [], {}
    for outcome in outcomes:
        for model in MODELS:
            covs = [] if model == "unadjusted" else [c for c in covariates if c != GROUP]
            table, summary = fit_outcome(data, outcome, model, covs, conf_level, reference_levels)
            tables.append(table)
            summaries.setdefault(outcome, {})[model] = summary
    out = pd.concat(tables, ignore_index=True)[LOGISTIC_COLUMNS]
    return out, summaries


def binary_analysis(dataset: pd.DataFrame, labs: pd.DataFrame, adverse_events: pd.DataFrame,
                    hepatotoxicity: pd.DataFrame, cfg: Mapping) -> AnalysisResult:
    """Everything the ``binary_outcomes`` rule writes: tables ``counts`` and ``logistic``, the model."""
    s = dict(cfg)
    data, outcomes, details = binary_outcomes(dataset, labs, adverse_events, hepatotoxicity, s)
    counts = outcome_counts(data, outcomes)
    table, summaries = logistic_models(data, outcomes, s["adjust_for"], s["conf_level"], s["reference_levels"])
    model = {
        "settings": {"binary": s},
        "methods": METHOD_TEXT,
        "reference": {"route_group": REFERENCE, "term": ROUTE_TERM},
        "outcomes": outcomes,
        "definitions": details,
        "counts": counts,
        "models": summaries,
    }
    route = table.loc[table["term"].eq(ROUTE_TERM) & table["note"].notna(), ["outcome", "model", "method", "note"]]
    notes = tuple(f"{o} {m} {me}: {n}" for o, m, me, n in route.itertuples(index=False))
    return AnalysisResult(tables={"counts": counts, "logistic": table}, model=jsonable(model), notes=notes)
