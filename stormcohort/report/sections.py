"""The report's tables, section by section: result tables in, display tables out.

Each function takes the pipeline's result tables (DataFrames) and a
:class:`~stormcohort.report.fmt.Formatter`, and returns :class:`Table` objects whose cells are
final strings: every count went through the formatter, so the shareable report (an active
disclosure policy) and the full report come out of the same code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from stormcohort.labels import (
    GROUP_LABELS,
    GROUPS,
    PRIMARY_COUNTERPART_NOTE,
    ROUTE_TERM,
    lab_label,
    outcome_label,
    term_label,
    var_label,
)
from stormcohort.report.fmt import MISSING, Formatter

# baseline features that describe severity: what differs between the routes where no reason is recorded
SEVERITY = ("icu", "platelets_baseline", "oedema", "cns")
# multiplicity (Methods, "Multiplicity"): the note of a table whose every IV-vs-SC estimate is exploratory
EXPLORATORY = "Exploratory: p values unadjusted for multiplicity (Methods, Multiplicity)."


@dataclass
class Table:
    id: str
    caption: str
    columns: list[str]
    rows: list[list[str]]
    sources: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    header_rows: set[int] = field(default_factory=set)  # rows drawn as a sub-heading
    groups: list[tuple[str, int]] = field(default_factory=list)  # header cells spanning columns


def lower_first(label: str) -> str:
    """A label inside a sentence: ``Weight, kg`` -> ``weight, kg``; acronyms (``CNS``, ``ALT``) kept."""
    first = label.split(" ")[0]
    return label if sum(ch.isupper() for ch in first) > 1 else label[:1].lower() + label[1:]


def _f(x):
    return None if x is None or (isinstance(x, float) and np.isnan(x)) or x is pd.NA else x


def _notes(f: Formatter, values) -> list[str]:
    return [t for t in dict.fromkeys(f.note(v) for v in values) if t]


# --------------------------------------------------------------------------- data sources

def files_table(files: Sequence[Mapping], accounting: pd.DataFrame, extract_date: str, f: Formatter) -> Table:
    """Each delivered file: centre, extract date, data rows read, size and SHA-256."""
    rows_in = (accounting.assign(base=accounting["file"].str.split(":").str[0])
               .groupby(["centre", "base"])["rows_in"].sum())
    rows = []
    for rec in files:
        centre, name = rec["centre"], rec["name"]
        n = rows_in.get((centre, name))
        rows.append([centre, name, extract_date, f.count(n) if n is not None else "not a data table",
                     f.size(rec["bytes"]), rec["sha256"]])
    return Table("files", "Files delivered, as received",
                 ["Centre", "File", "Extract date", "Data rows", "Size", "SHA-256"],
                 rows, notes=["Data rows: rows read from the file's data tables (all sheets of a workbook)."])


def cleaning_table(accounting: pd.DataFrame, f: Formatter) -> Table:
    rows = [[r.centre, r.file, f.count(r.rows_in), f.count(r.rows_kept), f.count(r.rows_excluded)]
            for r in accounting.itertuples()]
    return Table("cleaning", "Cleaning: every input row kept or excluded",
                 ["Centre", "Table (file or sheet)", "Rows in", "Kept", "Excluded"], rows,
                 sources=[f"clean/{c}/accounting.csv" for c in dict.fromkeys(accounting["centre"])])


def conflicts_table(ledger: pd.DataFrame, cohort: pd.DataFrame, f: Formatter) -> Table:
    """Data conflicts by centre and rule: each ledger rule (rows or values of a file, from each
    centre's ledger summary) and each cohort rule (patients, from the cohort's conflicts summary),
    with how it was handled."""
    rows = [[r.centre, "cleaning", str(r.rule).replace("_", " "),
             f"{r.file}: {r.columns}" if isinstance(r.columns, str) and r.columns else r.file,
             f"{f.count(r.entries)} {'rows' if r.scope == 'row' else 'values'}", r.handling]
            for r in ledger.itertuples()]
    rows += [[r.centre, "cohort", str(r.rule).replace("_", " "), "analysis dataset", f"{f.count(r.patients)} patients",
              r.handling] for r in cohort.itertuples()]
    centres = list(dict.fromkeys(ledger["centre"]))
    return Table("conflicts", "Data conflicts: values and rows cleaning changed or excluded, and patients a cohort "
                 "rule handled, by centre and rule",
                 ["Centre", "Stage", "Rule", "Where", "Affected", "How it was handled"], rows,
                 sources=[*(f"clean/{c}/exclusions.csv" for c in centres), "cohort/data_conflicts.csv"],
                 notes=[] if rows else ["No value, row or patient was affected."])


def link_table(link: pd.DataFrame, f: Formatter) -> Table:
    rows = [[r.centre, f.count(r.people), f.count(r.people_also_at_another_centre), f.count(r.sex_conflicts),
             f.count(r.admissions)] for r in link.itertuples()]
    return Table("linkage", "Linkage across centres (pseudonymous keys)",
                 ["Centre", "People", "Also at another centre", "Sex conflicts", "Admissions"], rows,
                 sources=["linked/link_summary.csv"])


# --------------------------------------------------------------------------- participants

def attrition_table(attrition: pd.DataFrame, f: Formatter) -> Table:
    rows = []
    for r in attrition.itertuples():
        rows.append([r.description, f.count(r.n_remaining),
                     f.count(_f(r.n_excluded)) if _f(r.n_excluded) is not None else ""])
    return Table("attrition", "Attrition: admissions to patients",
                 ["Step", "Remaining", "Left at this step"], rows, sources=["cohort/attrition.csv"])


def flow_boxes(attrition: pd.DataFrame, f: Formatter) -> dict:
    """The flow diagram as data (drawn in HTML in the shareable report): each box holds what remains,
    its side box what leaves at the next step; then the final cohort and the route groups."""
    main = attrition[~attrition["step"].str.startswith("route_")].reset_index(drop=True)
    final = main.iloc[-1]
    steps = []
    for i in range(len(main) - 2):
        here, nxt = main.iloc[i], main.iloc[i + 1]
        steps.append({"description": here["description"] if i == 0 else "", "remaining": f.count(here["n_remaining"]),
                      "left": f"{'Merged' if nxt['step'] == 'transfer_merged' else 'Excluded'}: {nxt['description']}",
                      "n_left": f.count(nxt["n_excluded"])})
    groups = [{"label": r.description, "n": f.n_pct(r.n_remaining, final.n_remaining)}
              for r in attrition[attrition["step"].str.startswith("route_")].itertuples()]
    return {"steps": steps, "final": {"description": final.description, "n": f.count(final.n_remaining)},
            "groups": groups}


def cohort_summary(attrition: pd.DataFrame, f: Formatter) -> dict:
    a = attrition.set_index("step")["n_remaining"]
    n = a.get("final_cohort")
    return {"n": f.count(n), "iv": f.count(a.get("route_IV")), "sc": f.count(a.get("route_SC")),
            "iv_pct": f.pct(a.get("route_IV"), n), "sc_pct": f.pct(a.get("route_SC"), n)}


def follow_up_table(follow_up: pd.DataFrame, horizon: int, f: Formatter) -> Table:
    """Follow-up (index to death or censoring, capped at the horizon) by route, and how many
    patients' follow-up ended alive before it."""
    rows = [[GROUP_LABELS.get(r.group, r.group), f.count(r.patients), f.median_iqr(r.median, r.q1, r.q3),
             f.count(r.person_days), f.count(r.ended_alive_before_horizon)] for r in follow_up.itertuples()]
    return Table("follow-up", "Follow-up from the first anakinra dose",
                 ["Group", "Patients", "Days of follow-up, median [IQR]", "Person-days",
                  f"Alive, follow-up ended before day {horizon}"], rows, sources=["tables/follow_up.csv"],
                 notes=["Follow-up ends at death, the last date a record shows the patient alive (last seen, "
                        "discharge, a dose, a laboratory sample or an adverse event), day "
                        f"{horizon} or the extract date, whichever comes first."])


# --------------------------------------------------------------------------- baseline

def _level(values: pd.Series) -> pd.Series:
    """Table 1 levels as text, whatever type the CSV gave them (``1.0`` -> ``1``; missing -> ``""``)."""
    num = pd.to_numeric(values, errors="coerce")
    whole = num.notna() & num.eq(num.round())
    return values.astype(str).where(~whole, num.astype("Int64").astype(str)).where(values.notna(), "")


def _table1_cell(r, f: Formatter) -> str:
    """One Table 1 cell: median [IQR] of a continuous variable, n (%) of a level."""
    if r["kind"] == "continuous":
        return f.median_iqr(r["median"], r["q1"], r["q3"])
    return f.n_pct(r["count"], r["n"])


def _table1_by_variable(table1: pd.DataFrame, f: Formatter):
    """(variable, kind, smd, missing, [(level, {group: cell})]) for each variable after the N row."""
    t = table1.assign(level=_level(table1["level"]))
    for var, d in t[t["kind"].ne("count")].groupby("variable", sort=False):
        levels = []
        for level, g in d.groupby("level", sort=False):
            cells = g.set_index("group")
            levels.append((level, {grp: _table1_cell(cells.loc[grp], f) for grp in GROUPS}))
        overall = d[d["group"].eq("overall")].iloc[0]
        yield var, overall["kind"], overall["smd"], overall["missing"], levels


def table1_table(table1: pd.DataFrame, f: Formatter) -> Table:
    """gtsummary layout: a 0/1 variable on one row (the 1s), other categorical variables as a
    heading row (missing, SMD) with one row per level."""
    n = table1[table1["kind"].eq("count")].set_index("group")["count"]
    rows, heads = [], set()
    for var, kind, smd, missing, levels in _table1_by_variable(table1, f):
        label, smd, missing = var_label(var, f.labels), (f.number(smd, 2) if pd.notna(smd) else ""), f.count(missing)
        if kind == "continuous":
            rows.append([f"{label}, median [IQR]", *levels[0][1].values(), missing, smd])
        elif {lv for lv, _ in levels} == {"0", "1"}:
            rows.append([f"{label}, n (%)", *dict(levels)["1"].values(), missing, smd])
        else:
            heads.add(len(rows))
            rows.append([f"{label}, n (%)", "", "", "", missing, smd])
            rows.extend([f"\u2003{level}", *cells.values(), "", ""] for level, cells in levels)
    return Table("table1", "Table 1. Baseline characteristics by route of anakinra",
                 ["Characteristic", *[f"{GROUP_LABELS[g]} (N = {f.count(n.get(g))})" for g in GROUPS],
                  "Missing", "SMD"], rows, sources=["tables/table1.csv"], header_rows=heads,
                 notes=["Percentages of the non-missing values. SMD: standardised mean difference IV vs SC "
                        "(categorical variables: Yang & Dalton 2012); above 0.1 is usually read as imbalance.",
                        "Laboratory values, and the scores' laboratory items, are from baseline samples taken "
                        "before the first anakinra dose (rule in Methods); the scores' peak temperature is per "
                        "admission. A result reported below or above a limit (<x, >x) enters the medians as x."])


def severity_table(table1: pd.DataFrame, f: Formatter) -> tuple[Table, list[dict]]:
    """The severity features (ICU, platelets, oedema, CNS) by route, most imbalanced first."""
    items = []
    for var, kind, smd, _, levels in _table1_by_variable(table1, f):
        if var not in SEVERITY:
            continue
        cells = dict(levels).get("1", levels[0][1])
        items.append({"variable": var, "label": var_label(var, f.labels), "iv": cells["IV"], "sc": cells["SC"],
                      "smd": float(smd) if pd.notna(smd) else np.nan,
                      "statistic": "median [IQR]" if kind == "continuous" else "n (%)"})
    items.sort(key=lambda d: -np.nan_to_num(d["smd"], nan=-1))
    rows = [[f"{d['label']}, {d['statistic']}", d["iv"], d["sc"], f.number(d["smd"], 2)] for d in items]
    return Table("severity", "Baseline severity by route (the reasons for IV are not recorded)",
                 ["Feature", "IV", "SC", "SMD"], rows, sources=["tables/table1.csv"]), items



def exposure_table(summary: pd.DataFrame, f: Formatter) -> Table:
    rows = []
    for var, d in summary.groupby("variable", sort=False):
        d = d.set_index("group")
        cells = []
        for g in GROUPS:
            r = d.loc[g]
            cells.append(f.n_pct(r["count"], r["n"]) if pd.notna(r["count"])
                         else f.median_iqr(r["median"], r["q1"], r["q3"]))
        stat = "n (%)" if pd.notna(d["count"]).any() else "median [IQR]"
        rows.append([f"{var_label(var, f.labels)}, {stat}", *cells, f.count(d.loc["overall", "missing"])])
    return Table("exposure", "Anakinra exposure by route",
                 ["", "Overall", "IV", "SC", "Missing"], rows, sources=["tables/exposure.csv"],
                 notes=["mg/kg/day needs a weight at admission (missing otherwise). A regimen is one row of the "
                        "dosing record (one route, dose and frequency)."])


# --------------------------------------------------------------------------- outcomes

def km_table(km: pd.DataFrame, logrank: pd.DataFrame, f: Formatter) -> Table:
    """Patients, deaths, median and survival at each landmark day (the ``surv_<day>`` columns)."""
    days = [int(c[len("surv_"):]) for c in km.columns if c.startswith("surv_") and c[len("surv_"):].isdigit()]
    rows = []
    for _, r in km.iterrows():
        median = f.days(r["median"]) if pd.notna(r["median"]) else "not reached"
        landmarks = [f.est_ci(r[f"surv_{d}"], r[f"surv_{d}_lcl"], r[f"surv_{d}_ucl"], 2) for d in days]
        rows.append([GROUP_LABELS.get(r["group"], r["group"]), f.count(r["n"]), f.count(r["events"]),
                     *[f.unless_small([r["events"]], x) for x in (median, *landmarks)]])
    lr = logrank.iloc[0]
    group_events = km.set_index("group")["events"].reindex(["IV", "SC"]).tolist()
    test = (f"chi-square {f.number(lr['statistic'], 2)} on {lr['df']} df, p = {f.p(lr['p'])}."
            if pd.notna(lr["statistic"]) else f"{f.note(lr['note']) or 'not estimable'}.")
    notes = ["Log-rank test IV vs SC: " + f.unless_small(group_events, test)]
    return Table("km", "Survival (Kaplan-Meier)", ["Group", "Patients", "Deaths", "Median survival, days",
                                                   *[f"Survival at day {d} (CI)" for d in days]],
                 rows, sources=["tables/km.csv", "tables/logrank.csv"], notes=notes + _notes(f, km["note"]))


def risk_table(risk: pd.DataFrame, f: Formatter, table_id: str, caption: str, source: str) -> Table:
    """Numbers at risk by route on the days of the analysis's risk table, disclosed like every count."""
    days = sorted(risk["day"].unique())
    at = risk.set_index(["group", "day"])["n_risk"]
    rows = [[g, *[f.count(at.get((g, t), 0)) for t in days]] for g in ("IV", "SC")]
    return Table(table_id, caption, ["Day", *[f.days(t) for t in days]], rows, sources=[source])


def cox_table(cox: pd.DataFrame, group_events: Sequence, f: Formatter) -> Table:
    """``group_events``: deaths in the IV and SC groups (an estimate resting on a suppressed one is withheld)."""
    rows, heads = [], set()
    for model, d in cox.groupby("model", sort=False):
        first = d.iloc[0]
        heads.add(len(rows))
        rows.append([f"{model.capitalize()} model: {f.count(first['n'])} patients, {f.count(first['events'])} deaths",
                     "", ""])
        for r in d.itertuples():
            rows.append([f"\u2003{term_label(r.term, f.labels)}",
                         f.unless_small(group_events, f.est_ci(r.hr, r.hr_lcl, r.hr_ucl)),
                         f.unless_small(group_events, f.p(r.p))])
    return Table("cox", "Cox proportional hazards: death by the end of follow-up (exploratory)",
                 ["Term", "Hazard ratio (CI)", "p"], rows, header_rows=heads, sources=["tables/cox.csv"],
                 notes=["Exploratory: these hazard ratios compare the descriptive route groups (Methods, Exposure), "
                        "the counterpart of the primary outcome, not its primary estimate (the target trial's); p "
                        "values unadjusted for multiplicity (Methods, Multiplicity)."]
                 + _notes(f, cox["note"]))


def ph_table(ph: pd.DataFrame, alpha: float, group_events: Sequence, f: Formatter) -> Table:
    """``group_events`` as for :func:`cox_table`: the tests of a withheld model are withheld too."""
    rows = [[r.model.capitalize(), "Global" if r.term == "GLOBAL" else term_label(r.term, f.labels),
             f.unless_small(group_events, f.number(r.statistic, 2)), str(r.df), f.unless_small(group_events, f.p(r.p)),
             "yes" if pd.notna(r.p) and r.p < alpha and not f.suppressed(*group_events) else ""]
            for r in ph.itertuples()]
    return Table("ph", "Proportional hazards test (cox.zph)", ["Model", "Term", "Chi-square", "df", "p",
                                                                f"p < {alpha:g}"],
                 rows, sources=["tables/ph_test.csv"], notes=_notes(f, ph["note"]))


def cif_table(summary: pd.DataFrame, f: Formatter) -> Table:
    rows = []
    for r in summary.itertuples():
        rows.append([GROUP_LABELS.get(r.group, r.group), r.cause.replace("_", " "), f.days(r.time), f.count(r.n_risk),
                     f.count(r.events), f.unless_small([r.events], f.est_ci(r.cif, r.cif_lcl, r.cif_ucl, 2))])
    return Table("cif", "Cumulative incidence of fever resolution, death competing (Aalen-Johansen)",
                 ["Group", "Event", "Day", "At risk", "Events by the day", "Cumulative incidence (CI)"], rows,
                 sources=["tables/cif_summary.csv"], notes=_notes(f, summary["note"]))


def cif_tests_table(tests: pd.DataFrame, f: Formatter) -> Table:
    """IV vs SC per event: Gray's test, Fine-Gray sHR, cause-specific HR (``tables/cif_tests.csv``),
    then the models weighted by the target trial's weights (rows ``weights`` iptw/overlap: IV by
    day G vs not, no Gray's test); an estimate resting on a suppressed count is withheld."""
    rows = []
    weights = tests["weights"].fillna("none") if "weights" in tests else pd.Series("none", index=tests.index)
    weighted_label = {"iptw": "weighted (IPTW), IV by day G", "overlap": "weighted (overlap), IV by day G"}
    for (outcome, weighting), d in tests.groupby([tests["outcome"], weights], sort=False):
        d = d.set_index("method")
        events = [d["events_iv"].iloc[0], d["events_sc"].iloc[0]]
        cells = []
        for method in ("gray_test", "fine_gray", "cause_specific_cox"):
            r = d.loc[method] if method in d.index else None
            if r is None or not np.isfinite(r["p"]):
                cells.append(MISSING)
            elif method == "gray_test":
                chi2 = f"\u03c7\u00b2 = {f.number(r['statistic'], 2)}, p = {f.p(r['p'])}"
                cells.append(f.unless_small(events, chi2))
            else:
                est = f"{f.est_ci(r['estimate'], r['lcl'], r['ucl'])}, p = {f.p(r['p'])}"
                cells.append(f.unless_small(events, est))
        label = outcome.replace("_", " ").capitalize()
        if weighting != "none":
            label += f", {weighted_label.get(weighting, f'weighted ({weighting})')}"
        rows.append([label, *[f.count(e) for e in events], *cells])
    notes = ["IV vs SC (reference SC), unadjusted. Gray's test compares the cumulative incidence curves; the "
             "subdistribution hazard ratio (Fine-Gray) acts on the cumulative incidence, the cause-specific "
             "hazard ratio (Cox, other outcomes censored) on the rate among patients still at risk.", EXPLORATORY]
    if weights.ne("none").any():
        notes[0] = notes[0].replace("IV vs SC (reference SC), unadjusted.", "IV vs SC (reference SC); the "
                                    "unweighted rows unadjusted.")
        notes.insert(1, "Weighted rows: IV by day G (the target trial's grace period) vs not, among patients "
                        "followed at day G, weighted by the target trial's propensity weights (robust variance; "
                        "Gray's test has no weighted form); not the route groups of the rows above.")
    return Table("cif-tests", "Fever resolution and death before resolution: IV vs SC",
                 ["Event", "Events IV", "Events SC", "Gray's test", "Subdistribution HR (CI)",
                  "Cause-specific HR (CI)"], rows, sources=["tables/cif_tests.csv"],
                 notes=notes + _notes(f, tests["note"]))


def _family_of(forest: pd.DataFrame | None, section: str) -> pd.DataFrame:
    """``family`` and ``p_holm`` of one section's rows of ``tables/forest.csv``, by (outcome, model)."""
    if forest is None or forest.empty:
        return pd.DataFrame(columns=["family", "p_holm"], index=pd.MultiIndex.from_tuples([], names=["outcome",
                                                                                                  "model"]))
    return forest[forest["section"].eq(section)].set_index(["outcome", "model"])[["family", "p_holm"]]


def binary_table(counts: pd.DataFrame, logistic: pd.DataFrame, f: Formatter, forest: pd.DataFrame | None = None
                 ) -> Table:
    """The binary outcomes by route with their Firth odds ratios; ``forest`` (``tables/forest.csv``)
    says which outcome's adjusted odds ratio is in the secondary family and gives its Holm p."""
    firth = logistic[logistic["method"].eq("firth") & logistic["term"].eq(ROUTE_TERM)].set_index(["outcome", "model"])
    family = _family_of(forest, "logistic")
    rows = []
    for outcome, d in counts.groupby("outcome", sort=False):
        d = d.set_index("group")
        events = [d.loc[g, "events"] for g in ("IV", "SC")]
        cells = [f.n_pct(d.loc[g, "events"], d.loc[g, "n"]) for g in ("IV", "SC")]
        ors = []
        for model in ("unadjusted", "adjusted"):
            r = firth.loc[(outcome, model)] if (outcome, model) in firth.index else None
            ors.append(MISSING if r is None else f.unless_small(
                events, f"{f.est_ci(r['or'], r['or_lcl'], r['or_ucl'])}, p = {f.p(r['p'])}"))
        fam = family.loc[(outcome, "adjusted")] if (outcome, "adjusted") in family.index else None
        secondary = fam is not None and fam["family"] == "secondary"
        holm = f.unless_small(events, f.p(fam["p_holm"])) if secondary else ""
        rows.append([outcome_label(outcome, f.labels), "secondary" if secondary else "exploratory", *cells,
                     f.count(d.loc["overall", "not_evaluable"]), *ors, holm])
    notes = ["n (%) of evaluable patients. Odds ratios IV vs SC from Firth logistic regression.",
             "Family: a secondary outcome's adjusted odds ratio is in the secondary family, its p Holm-adjusted "
             "within the family (Holm p) beside the raw p; its unadjusted odds ratio and every odds ratio of an "
             "exploratory outcome are exploratory, their p unadjusted (Methods, Multiplicity)."]
    return Table("binary", "Binary outcomes by route", ["Outcome", "Family", "IV", "SC", "Not evaluable",
                                                        "OR unadjusted", "OR adjusted", "Holm p"], rows,
                 sources=["tables/binary_outcomes.csv", "tables/logistic.csv", "tables/forest.csv"],
                 notes=notes + _notes(f, logistic.loc[logistic["term"].eq(ROUTE_TERM), "note"]))


def trajectory_deaths(model: Mapping | None, f: Formatter) -> str | None:
    """``ferritin IV 2 of 18, SC 3 of 28; ...``: patients whose lab series ends with death, of those
    with a sample, by test and route (models/trajectories.json); None without the counts."""
    models = (model or {}).get("models", {})
    order = [t for t in (model or {}).get("settings", {}).get("tests", []) if t in models]
    parts = []
    for test, m in ((t, models[t]) for t in order + [t for t in models if t not in order]):
        deaths = m.get("deaths_in_window")
        if deaths is None:
            return None
        by = m.get("n_patients_by_group", {})
        parts.append(f"{lab_label(test)} " + ", ".join(f"{g} {f.count(deaths.get(g, 0))} of {f.count(by.get(g, 0))}"
                                                        for g in ("IV", "SC")))
    return "; ".join(parts) or None


def trajectories_table(traj: pd.DataFrame, f: Formatter, model: Mapping | None = None) -> Table:
    rows = []
    for r in traj[traj["term"].isin([ROUTE_TERM, f"{ROUTE_TERM}:day"])].itertuples():
        what = "level at day 0" if r.term == ROUTE_TERM else "slope per day"
        rows.append([lab_label(r.test), f"IV vs SC, {what}", f.est_ci(np.exp(r.coef), np.exp(r.lcl),
                                                                                   np.exp(r.ucl), 3),
                     f.p(r.p), f.count(r.n_patients), f.count(r.n_obs)])
    return Table("trajectories", "Laboratory trajectories: IV vs SC ratios (mixed models on the log scale)",
                 ["Test", "Term", "Ratio (CI)", "p", "Patients", "Samples"], rows, sources=["tables/trajectories.csv"],
                 notes=["Ratios are exp(coefficient): IV/SC ratio of the geometric mean at day 0, and of the daily "
                        "change; t intervals and p on Satterthwaite degrees of freedom.", EXPLORATORY]
                 + ([f"Series ending with death (died by the last day modelled), of the patients sampled: {d}. "
                     "The models assume the missing samples are missing at random."]
                    if (d := trajectory_deaths(model, f)) else [])
                 + _notes(f, traj["note"]))


# --------------------------------------------------------------------------- safety

def ae_table(events: pd.DataFrame, severe: int, f: Formatter) -> Table:
    grades = ["any", *[str(k) for k in range(1, 6)], f">={severe}"]
    heads = ["Term"] + [("Any" if k == "any" else k.replace(">=", "\u2265")) for g in ("IV", "SC") for k in grades]
    rows = []
    e = events.set_index(["group", "term", "grade"])
    for term in dict.fromkeys(events["term"]):
        cells = []
        for g in ("IV", "SC"):
            for k in grades:
                if (g, term, k) not in e.index:
                    cells.append(MISSING)
                    continue
                r = e.loc[(g, term, k)]
                cells.append(f.n_pct(r["patients"], r["n"]) if k in ("any", f">={severe}") else f.count(r["patients"]))
        rows.append([outcome_label(term, f.labels), *cells])
    return Table("ae", "Adverse events by route and CTCAE grade: patients with at least one", heads, rows,
                 sources=["tables/safety_events.csv"], groups=[("", 1), ("IV, by grade", len(grades)),
                                                               ("SC, by grade", len(grades))],
                 notes=[f"n (%) of the route group for any grade and grade \u2265{severe}; "
                        "patients by grade otherwise. Every patient of the group is counted whatever their "
                        f"follow-up: the next table gives the incidence of a first grade \u2265{severe} event "
                        "allowing for it."])


def _rate_cells(r, f: Formatter) -> tuple[str, str]:
    """Events / patient-days and rate (CI) of one row of the rates table (as disclosed, in the
    shareable report: the ``disclose`` rule recomputed the rate from the disclosed counts)."""
    if r is None or pd.isna(r["events"]) and not r.get("withheld", False):
        return "not applicable", ""
    shown = f"{f.count(r['events'])} / {f.count(r['patient_days'])}"
    if r.get("withheld", False) or f.suppressed(r["events"], r["patient_days"]):
        return shown, f"not shown ({f.policy.small_label})"
    return shown, f.est_ci(r["rate"], r["rate_lcl"], r["rate_ucl"], 2)


def _ratio_cell(r, f: Formatter) -> str:
    if r.get("withheld", False):
        return f"not shown ({f.policy.small_label} events)"
    if pd.notna(r["irr"]):
        return f"{f.est_ci(r['irr'], r['irr_lcl'], r['irr_ucl'])}, p = {f.p(r['p'])}"
    return f.note(r["note"]) or "not estimable"


def _robust_cell(r, f: Formatter) -> str:
    """The patient-clustered rate ratio (CI), p; blank where the exact ratio's cell says why."""
    if r.get("withheld", False):
        return f"not shown ({f.policy.small_label} events)"
    if pd.notna(r.get("robust_lcl", np.nan)):
        return f"{f.est_ci(r['irr_robust'], r['robust_lcl'], r['robust_ucl'])}, p = {f.p(r['robust_p'])}"
    return MISSING


def rates_table(rates: pd.DataFrame, ratios: pd.DataFrame, per: float, f: Formatter) -> Table:
    """Rates by term and route with the IV-vs-SC rate ratio (exact conditional, and with the
    patient-clustered interval); terms with a ratio only (counted on one route's days) from the
    ratio table's own counts."""
    rates = rates.rename(columns={c: "rate" for c in rates.columns if c.startswith("rate_per_")})
    rr = ratios.set_index("outcome")
    rows = []
    for term, d in rates.groupby("term", sort=False):
        d = d.set_index("group")
        cells = [c for g in ("IV", "SC") for c in _rate_cells(d.loc[g] if g in d.index else None, f)]
        ratio = [_ratio_cell(rr.loc[term], f), _robust_cell(rr.loc[term], f)] if term in rr.index else [MISSING] * 2
        rows.append([outcome_label(term, f.labels), *cells, *ratio])
    for term in [t for t in rr.index if t not in set(rates["term"])]:
        r = rr.loc[term]
        cells = [f"{f.count(r[f'events_{g}'])} / {f.count(r[f'patient_days_{g}'])}" for g in ("iv", "sc")]
        rows.append([outcome_label(term, f.labels), cells[0], "", cells[1], "", _ratio_cell(r, f),
                     _robust_cell(r, f)])
    return Table("rates", f"Exposure-adjusted adverse event rates per {per:g} patient-days on anakinra",
                 ["Term", "IV events / patient-days", "IV rate (CI)", "SC events / patient-days", "SC rate (CI)",
                  "Rate ratio IV vs SC (exact CI)", "Rate ratio, patient-clustered CI"], rows,
                 sources=["tables/safety_rates.csv", "tables/rate_ratios.csv"],
                 notes=["Exact CI: the exact conditional method, which treats repeated events of one patient as "
                        "independent (descriptive). Patient-clustered CI: Poisson regression with log patient-days "
                        "offset and a sandwich variance clustered on the patient, the interval to read when "
                        "patients have repeated events.", EXPLORATORY] + _notes(f, rates["note"]))


def first_severe_table(first: pd.DataFrame, severe: int, f: Formatter) -> Table:
    """Cumulative incidence of a first adverse event of grade >= ``severe`` by the end of the
    window, death competing, with the counts behind it."""
    rows = []
    for r in first.itertuples():
        rows.append([GROUP_LABELS.get(r.group, r.group), f.days(r.day), f.count(r.n), f.count(r.events),
                     f.count(r.competing_deaths), f.count(r.censored_before), f.count(r.n_risk),
                     f.unless_small([r.events], f.est_ci(r.cif, r.cif_lcl, r.cif_ucl, 2))])
    return Table("first-severe", f"First adverse event of grade \u2265{severe}: cumulative incidence, death competing",
                 ["Group", "Day", "Patients", "First events", "Deaths first", "Censored earlier", "At risk",
                  "Cumulative incidence (CI)"], rows, sources=["tables/safety_first_severe.csv"],
                 notes=[f"Time from the first dose to the first adverse event of grade \u2265{severe}, censored at "
                        "the end of follow-up, with death before such an event competing (Aalen-Johansen). Unlike "
                        "patients with an event over all patients, it does not count a patient followed for a few "
                        "days as free of events for the whole window."] + _notes(f, first["note"]))


def hepatotoxicity_table(hep: pd.DataFrame, f: Formatter) -> Table:
    """The worst post-baseline CTCAE grade of ALT/AST increased by route, with the post-baseline
    samples per patient beside it; then the baseline status of the graded patients, and the
    multiples of the ULN (the binary outcomes), which ignore the baseline."""
    d = hep.set_index(["outcome", "group"])
    outcomes = list(dict.fromkeys(hep["outcome"]))
    ctcae = [o for o in outcomes if o.startswith("ctcae_grade_")]
    status = [o for o in outcomes if o.startswith("ctcae_baseline_")]
    multiples = [o for o in outcomes if not o.startswith("ctcae_")]
    label = {**{f"ctcae_grade_{g}": f"CTCAE grade {g}" for g in range(5)}, "ctcae_grade_3plus": "CTCAE grade \u22653",
             "ctcae_baseline_normal": "Normal (graded against the ULN)",
             "ctcae_baseline_abnormal": "Above the ULN (graded against the baseline)",
             "ctcae_baseline_missing": "Missing (graded against the ULN)"}
    rows, header_rows = [], set()

    def section(title, names, labels):
        if not names:
            return
        header_rows.add(len(rows))
        rows.append([title, "", "", "", ""])
        for o in names:
            rows.append([labels(o), *[f.n_pct(d.loc[(o, g), "events"], d.loc[(o, g), "n"]) for g in GROUPS],
                         f.count(d.loc[(o, "overall"), "not_evaluable"])])

    section("Worst post-baseline CTCAE v5.0 grade of ALT/AST increased", ctcae, label.get)
    if ctcae and "samples_median" in hep.columns:
        first = ctcae[0]
        rows.append(["Post-baseline ALT/AST samples per patient, median [IQR]",
                     *[f.median_iqr(*d.loc[(first, g), ["samples_median", "samples_q1", "samples_q3"]])
                       for g in GROUPS], ""])
    section("Baseline ALT/AST of the graded patients", status, label.get)
    section("ALT or AST above a multiple of the ULN, whatever the baseline", multiples,
            lambda o: outcome_label(o, f.labels))
    return Table("hepatotoxicity", "Hepatotoxicity: worst CTCAE v5.0 grade of ALT/AST increased, by route",
                 ["Outcome", "Overall", "IV", "SC", "Not evaluable"], rows, sources=["tables/hepatotoxicity.csv"],
                 header_rows=header_rows,
                 notes=["n (%) of the patients with an ALT or AST in the window (not evaluable: those "
                        "without). Each test is graded against its upper limit of normal (ULN) when the patient's "
                        "baseline is normal or missing, against the baseline when it is above the ULN; the worst "
                        "grade of any sample. A patient sampled more often has more chances of a higher grade: the "
                        "samples per patient are shown beside the grades. The multiples of the ULN ignore the "
                        "baseline, often above 3\u00d7ULN already in sHLH/MAS."])


# --------------------------------------------------------------------------- all estimates

def forest_table(forest: pd.DataFrame, f: Formatter) -> Table:
    """Every estimate of the forest plot (``tables/forest.csv``; in the shareable report the one the
    ``disclose`` rule made) with its multiplicity family, raw p and, in the secondary family, Holm p."""
    rows = []
    for r in forest.itertuples():
        note = "" if pd.isna(r.note) else str(r.note)
        if note.startswith("withheld"):
            est = f"not shown ({f.policy.small_label} events)"
        elif r.estimable:
            est = f.est_ci(r.estimate, r.lcl, r.ucl)
        else:
            est = "not estimable"
        family = r.family + (" (descriptive counterpart of the primary outcome)"
                             if PRIMARY_COUNTERPART_NOTE in note else "")
        rows.append([r.label, r.measure, r.model, family, est, f.p(r.p) if r.estimable else MISSING,
                     f.p(r.p_holm) if r.family == "secondary" and r.estimable else ""])
    return Table("forest", "Every IV-vs-SC estimate by multiplicity family",
                 ["Outcome", "Measure", "Model", "Family", "Ratio (CI)", "p", "Holm p"], rows,
                 sources=["tables/forest.csv"],
                 notes=["Secondary: one estimate per secondary outcome, p Holm-adjusted within the family (Holm "
                        "p) beside the raw p. Exploratory: every other estimate, p unadjusted. The primary "
                        "estimate is the target trial's (Methods, Multiplicity)."])
