"""The comparative-effectiveness section (the target-trial emulation of IV vs SC): the
``comparison`` rule's tables and model summary in, display tables and sentences out.

Formats, never computes: every risk, difference, ratio, E-value, weight and share is the rule's
(``tables/*.csv``, ``models/comparison.json``). Counts go through the report's
:class:`~stormcohort.report.fmt.Formatter`; under an active disclosure policy an estimate resting
on an arm with a suppressed event count is withheld (as the Cox and logistic estimates are), the
balance table leaves out the group means (an unadjusted proportion is a count over the group
size), and the section says that the estimates were computed on the undisclosed data.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from stormcohort.labels import (
    GROUP_LABELS,
    MEASURE_LABELS,
    ROUTES,
    WEIGHTING_LABELS,
    covariate_label,
    outcome_label,
    sensitivity_label,
    var_label,
)
from stormcohort.report.fmt import MISSING, Formatter, _finite
from stormcohort.report.sections import Table, _notes, lower_first

ARMS = ("risk_iv", "risk_sc")
RATIOS = ("risk_ratio", "hazard_ratio", "odds_ratio")
IMBALANCE = 0.1  # absolute difference marked in the balance table (as the love plot's lines)
EQUIPOISE = "0.3\u20130.7"
MEASURE_ORDER = ("risk_iv", "risk_sc", "risk_difference", "risk_ratio", "hazard_ratio", "odds_ratio")
# the estimate under missing adjustment values that is not the primary one (missing_data.primary), and what it is
MISSING_DATA_ANALYSES = {
    "complete_case": "among the patients with every adjustment variable (complete cases)",
    "multiple_imputation": "pooled over the imputations of the missing adjustment variables",
}


def _level(settings: Mapping) -> str:
    return f"{100 * float(settings.get('conf_level', 0.95)):g}%"


def _day(x) -> float | None:
    return float(x) if _finite(x) else None


def arm_events(effect: pd.DataFrame, analysis: str, outcome: str, day=None) -> list:
    """The event counts an estimate of ``outcome`` rests on: the IV and SC arms' (``risk_iv`` and
    ``risk_sc`` rows) at ``day`` (else at their last day), or the outcome's rows' own counts when
    the table has no risk per arm."""
    d = effect[effect["analysis"].astype(str).eq(analysis) & effect["outcome"].astype(str).eq(outcome)]
    arms = d[d["measure"].isin(ARMS)]
    if arms.empty:
        return d["events"].dropna().tolist()
    days = pd.to_numeric(arms["day"], errors="coerce")
    if _day(day) is not None and days.eq(_day(day)).any():
        return arms.loc[days.eq(_day(day)), "events"].tolist()
    if days.notna().any():
        return arms.loc[days.eq(days.max()), "events"].tolist()
    return arms["events"].tolist()


def _estimate(f: Formatter, measure: str, est, lcl, ucl) -> str:
    if measure in ARMS:
        return f.risk_ci(est, lcl, ucl)
    if measure == "risk_difference":
        return f.points_ci(est, lcl, ucl)
    return f.est_ci(est, lcl, ucl)


# --------------------------------------------------------------------------- sentences

def strategies(settings: Mapping) -> tuple[str, str]:
    """(IV strategy, SC strategy) for running text, from the grace period."""
    g = int(settings.get("grace_days", 0))
    if g:
        return (f"started IV anakinra by day {g} (day 0: the first dose)", f"stayed on SC anakinra through day {g}")
    return "started anakinra intravenously", "started anakinra subcutaneously"


def primary_estimate(model: Mapping, effect: pd.DataFrame, evalues: pd.DataFrame, f: Formatter) -> dict:
    """The primary estimate as a clinician reads it: ``{"estimable", "withheld", "text", "reference",
    "key"}`` (``key``: the summary card, the risk difference with its interval)."""
    p, s = model.get("primary", {}), model.get("settings", {})
    outcome = p.get("outcome") or ""
    what = lower_first(outcome_label(outcome, f.labels)) if outcome else "the primary outcome"
    if not p.get("estimable"):
        reason = f.note(p.get("reason")) or "the reason quotes counts (see models/comparison.json)"
        return {"estimable": False, "withheld": False, "text": f"The primary estimate ({what}) is not estimable: "
                f"{reason}.", "reference": "", "key": "not estimable"}
    events = arm_events(effect, "primary", outcome, p.get("day"))
    if f.suppressed(*events):
        shown = f"not shown ({f.policy.small_label} events)"
        return {"estimable": True, "withheld": True, "key": shown, "reference": "", "text": (
            f"The primary estimate ({what}) is not shown: an arm has {f.policy.small_label} events.")}
    level = _level(s)
    iv, sc = strategies(s)
    ev = evalues[evalues["outcome"].astype(str).eq(outcome)] if len(evalues) else evalues
    e_est, e_ci = p.get("evalue_estimate"), p.get("evalue_ci")
    if not _finite(e_est) and len(ev):
        e_est, e_ci = ev.iloc[0]["evalue_estimate"], ev.iloc[0]["evalue_ci"]
    of = f" of the {str(ev.iloc[0]['measure']).replace('_', ' ')}" if len(ev) else ""
    evalue = (f"; E-value{of} {f.number(e_est, 2)} (confidence limit {f.number(e_ci, 2)})" if _finite(e_est) else "")
    text = (f"If every patient had {iv}, the estimated risk of {what} would have been "
            f"{f.risk_ci(p.get('risk_iv'), p.get('risk_iv_lcl'), p.get('risk_iv_ucl'), level)}, against "
            f"{f.risk_ci(p.get('risk_sc'), p.get('risk_sc_lcl'), p.get('risk_sc_ucl'), level)} had every patient "
            f"{sc}: a difference of "
            f"{f.points_ci(p.get('risk_difference'), p.get('rd_lcl'), p.get('rd_ucl'), unit=' percentage points')}, "
            f"a risk ratio of {f.est_ci(p.get('risk_ratio'), p.get('rr_lcl'), p.get('rr_ucl'))}{evalue}.")
    reference = (f"For reference, the weighted Cox hazard ratio IV vs SC: "
                 f"{f.est_ci(p.get('hazard_ratio'), p.get('hr_lcl'), p.get('hr_ucl'))}."
                 if _finite(p.get("hazard_ratio")) else "")
    key = f.points_ci(p.get("risk_difference"), p.get("rd_lcl"), p.get("rd_ucl"))
    return {"estimable": True, "withheld": False, "text": text, "reference": reference, "key": key}


def key_label(model: Mapping, f: Formatter) -> str:
    """The summary card's caption of the primary estimate."""
    p = model.get("primary", {})
    what = lower_first(outcome_label(p["outcome"], f.labels)) if p.get("outcome") else "the primary outcome"
    return f"risk difference of {what}, IV vs SC strategy, percentage points"


def counts_text(model: Mapping, f: Formatter) -> str:
    """Who is analysed and how the patients followed the strategies in the grace period."""
    c, s = model.get("counts", {}), model.get("settings", {})
    if not c:
        return ""
    g = int(s.get("grace_days", 0))
    missing = [f"{lower_first(var_label(v, f.labels))} ({f.count(n)})"
               for v, n in (c.get("missing_by_variable") or {}).items() if _finite(n) and float(n) > 0]
    imputed = _finite((model.get("imputation") or {}).get("imputed_patients")) and float(
        model["imputation"]["imputed_patients"]) > 0
    if imputed:  # every patient analysed under multiple imputation, the complete cases beside (or primary)
        pooled = (s.get("missing_data") or {}).get("primary", "multiple_imputation") == "multiple_imputation"
        text = (f"Of {f.count(c.get('patients'))} patients in the cohort, {f.count(c.get('complete_cases'))} had "
                f"every adjustment variable recorded (complete cases"
                + (f"; missing: {_join(missing)}" if missing else "") + "). The missing values were multiply imputed "
                "for the primary and the secondary outcomes: "
                + ("every patient is analysed in the primary estimates, pooled over the imputations, and the "
                   "complete-case estimates are shown beside them." if pooled else
                   "the complete cases are the primary analysis, and the estimates pooled over the imputations, "
                   "with every patient, are shown beside them."))
    else:
        text = (f"Of {f.count(c.get('patients'))} patients in the cohort, {f.count(c.get('complete_cases'))} had "
                f"every adjustment variable recorded and were analysed (complete cases"
                + (f"; missing: {_join(missing)}" if missing else "") + ").")
    if g:
        text += (f" By day {g}, {f.count(c.get('iv_by_grace'))} had started IV anakinra and "
                 f"{f.count(c.get('sc_through_grace'))} were still on SC only; {f.count(c.get('died_before_grace'))} "
                 f"died before day {g} and count in both arms (their clones follow both strategies until death).")
    return text


def secondary_text(model: Mapping, f: Formatter) -> str:
    """How the secondary outcomes are compared, and where their other estimate is when adjustment
    values were imputed (model ``settings`` and ``imputation``)."""
    s = model.get("settings", {})
    outcomes = [lower_first(outcome_label(o, f.labels)) for o in s.get("secondary_outcomes") or []]
    if not outcomes:
        return ""
    g = int(s.get("grace_days", 0))
    weights = "overlap weights" if s.get("estimand") == "ATO" else "stabilised inverse-probability weights"
    text = (f"Secondary outcomes ({_join(outcomes)}) are compared among the patients followed at day {g}, IV by day "
            f"{g} against no IV by then, with {weights} from the propensity of IV on the adjustment set: weighted "
            "risks, their difference and the odds ratio.")
    imputed = (model.get("imputation") or {}).get("imputed_patients")
    if _finite(imputed) and float(imputed) > 0:
        text += (" Missing adjustment values were imputed for them as for the primary outcome (the same imputations) "
                 "and the estimates pooled; each outcome's other estimate follows under its own sub-heading.")
    return text


def _join(items) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1] if items else ""


def _of(f: Formatter, k, n, share) -> str:
    """``9 of 18 (50%)``: the rule's share under no disclosure, the disclosed counts' otherwise."""
    pct = f.pct(k, n) if f.policy.active else (f.risk(share) if _finite(share) else "")
    return f"{f.count(k)} of {f.count(n)}" + (f" ({pct})" if pct and pct != MISSING else "")


def positivity_text(model: Mapping, overlap: pd.DataFrame, f: Formatter) -> str:
    """Equipoise per route (and overall, undisclosed report only), effective sample sizes and the
    largest weight, from the overlap table and the model's ``positivity``."""
    pos = model.get("positivity", {}) or {}
    if not len(overlap) and not any(_finite(pos.get(k)) for k in ("share_equipoise", "ess_iv", "ess_sc")):
        return "Not assessed: the propensity model was not estimable."
    o = overlap.set_index(overlap["group"].astype(str)) if len(overlap) else overlap
    parts = [f"{g} {_of(f, o.loc[g, 'n_equipoise'], o.loc[g, 'n'], o.loc[g, 'share_equipoise'])}"
             for g in ROUTES if len(o) and g in o.index]
    overall = (f"; {f.risk(pos['share_equipoise'])} overall" if not f.policy.active
               and _finite(pos.get("share_equipoise")) else "")
    text = (f"Patients in clinical equipoise (preference score {EQUIPOISE}, Walker et al. 2013): "
            f"{_join(parts) or MISSING}{overall}.")
    if _finite(pos.get("ess_iv")) or _finite(pos.get("ess_sc")):
        text += f" Effective sample size after weighting: IV {f.ess(pos.get('ess_iv'))}, SC {f.ess(pos.get('ess_sc'))}"
        text += (f"; the largest weight {f.number(pos.get('max_weight'), 2)}." if _finite(pos.get("max_weight"))
                 else ".")
    return text


def descriptive_note(config: Mapping) -> str:
    """What the descriptive outcome sections compare, and why the primary estimate is elsewhere."""
    if config["cohort"]["exposure"] == "any_iv":
        return ("The comparisons in this section, in the safety section and in the forest plot are descriptive: the "
                "route groups are defined by any IV dose during the episode, which a patient had to live to receive "
                "(immortal time), and they are adjusted for few covariates at most. The primary IV-vs-SC estimate "
                "is the target-trial emulation in the comparative-effectiveness section.")
    return ("The comparisons in this section, in the safety section and in the forest plot are descriptive (route of "
            "the first dose, adjusted for few covariates at most). The primary IV-vs-SC estimate is the target-trial "
            "emulation in the comparative-effectiveness section.")


def share_note(f: Formatter) -> str:
    return ("Counts in this section are disclosed as every count of this report (see the banner). The estimates "
            "(risks, differences, ratios, E-values, balance statistics, weights and scores) were computed by the "
            "comparison rule on the undisclosed data and are shown as computed, except that an estimate resting on "
            f"an arm with {f.policy.small_label} events is withheld and the group means of the balance table are left "
            "out. The section's figures are left out.")


# --------------------------------------------------------------------------- tables

def _empty_note(rows) -> list[str]:
    return [] if rows else ["No rows: the analysis was not estimable (see the primary estimate)."]


def protocol_table(protocol: pd.DataFrame) -> Table:
    """Hernan and Robins' layout: component | target trial | emulation here."""
    rows = [[str(r.component), str(r.target_trial), str(r.emulation)] for r in protocol.itertuples()]
    return Table("protocol", "Protocol of the target trial and of its emulation",
                 ["Component", "Target trial", "Emulation here"], rows, sources=["tables/protocol.csv"])


def _mean(f: Formatter, x, kind: str) -> str:
    if kind == "binary":
        return f.risk(x)
    if not _finite(x):
        return MISSING
    x = float(x)
    return f.number(x, 2 if abs(x) < 10 else 1 if abs(x) < 1000 else 0)


def _diff(f: Formatter, x) -> str:
    shown = f.number(x, 2).replace("-", "\u2212")
    return f"{shown} *" if _finite(x) and abs(float(x)) > IMBALANCE else shown


def balance_table(balance: pd.DataFrame, f: Formatter) -> Table:
    """Balance before and after each weighting: group means (left out under disclosure),
    differences (marked above 0.1) and variance ratios."""
    hide = f.policy.active
    rows, heads = [], set()
    width = 6 if hide else 10
    for w, d in balance.groupby("weighting", sort=False):
        heads.add(len(rows))
        rows.append([WEIGHTING_LABELS.get(str(w), str(w)), *[""] * (width - 1)])
        for r in d.itertuples():
            kind = str(r.type)
            measure = "proportion" if r.diff_type == "raw" else "SMD"
            label = f"\u2003{covariate_label(r.covariate, f.labels)}"
            ratios = [f.number(r.var_ratio_unadj, 2), f.number(r.var_ratio_adj, 2)]
            if hide:
                rows.append([label, measure, _diff(f, r.diff_unadj), _diff(f, r.diff_adj), *ratios])
            else:
                rows.append([label, measure, _mean(f, r.mean_iv_unadj, kind), _mean(f, r.mean_sc_unadj, kind),
                             _diff(f, r.diff_unadj), _mean(f, r.mean_iv_adj, kind), _mean(f, r.mean_sc_adj, kind),
                             _diff(f, r.diff_adj), *ratios])
    notes = ["Difference IV minus SC: in proportions for binary covariates (group columns: % of patients), "
             f"standardised mean difference (SMD) for continuous ones; * absolute difference above {IMBALANCE:g}. "
             "Variance ratio IV / SC for continuous covariates."]
    if hide:
        notes.append("Group means are not shown in the shareable report (an unadjusted proportion is a count over "
                     "the group size); the differences and ratios were computed on the undisclosed data.")
        columns = ["Covariate", "Difference in", "Before weighting", "After weighting", "Before", "After"]
        groups = [("", 2), ("Difference IV \u2212 SC", 2), ("Variance ratio", 2)]
    else:
        columns = ["Covariate", "Difference in", "IV", "SC", "Difference", "IV", "SC", "Difference", "Before", "After"]
        groups = [("", 2), ("Before weighting", 3), ("After weighting", 3), ("Variance ratio", 2)]
    return Table("balance", "Covariate balance between the routes, before and after weighting", columns, rows,
                 sources=["tables/balance.csv"], header_rows=heads, groups=groups,
                 notes=notes + _notes(f, balance["note"]) + _empty_note(rows))


def weights_table(weights: pd.DataFrame, f: Formatter) -> Table:
    """Per weighting and route: patients, effective sample size, mean, range, weights above 10."""
    rows, last = [], None
    for r in weights.itertuples():
        w = str(r.weighting)
        rows.append([WEIGHTING_LABELS.get(w, w) if w != last else "", GROUP_LABELS.get(str(r.group), str(r.group)),
                     f.count(r.n), f.ess(r.ess), f.number(r.mean, 2), f.number(r.min, 2), f.number(r.max, 2),
                     f.count(r.n_above_10)])
        last = w
    return Table("weights", "Weights by route: effective sample size and the largest weights",
                 ["Weighting", "Route", "Patients", "Effective sample size", "Mean", "Smallest", "Largest",
                  "Weights > 10"], rows, sources=["tables/weights.csv"],
                 notes=["Effective sample size (Kish): (sum of weights)\u00b2 / sum of squared weights. Censoring "
                        "weights: per clone of the route's strategy."] + _empty_note(rows))


def overlap_table(overlap: pd.DataFrame, f: Formatter) -> Table:
    rows = [[GROUP_LABELS.get(str(r.group), str(r.group)), f.count(r.n),
             *[f.number(x, 2) for x in (r.ps_min, r.ps_q1, r.ps_median, r.ps_q3, r.ps_max)],
             _of(f, r.n_equipoise, r.n, r.share_equipoise)] for r in overlap.itertuples()]
    return Table("overlap", "Propensity score by route, and patients in clinical equipoise",
                 ["Route", "Patients", "Smallest", "Q1", "Median", "Q3", "Largest",
                  f"Preference score {EQUIPOISE}"], rows, sources=["tables/overlap.csv"],
                 groups=[("", 2), ("Propensity score P(IV | covariates)", 5), ("In equipoise", 1)],
                 notes=["Preference score: the propensity score adjusted for the share of patients treated IV "
                        "(Walker et al. 2013); 0.3 to 0.7 is taken as clinical equipoise."] + _empty_note(rows))


def missingness_table(pattern: pd.DataFrame, settings: Mapping, f: Formatter) -> Table:
    """Patterns of missing adjustment variables by route, and which analysis is the primary one."""
    rows = [[GROUP_LABELS.get(str(r.route_group), str(r.route_group)),
             "complete" if r.pattern == "none" else str(r.pattern).replace("_", " "), f.count(r.n)]
            for r in pattern.itertuples()]
    primary = (settings.get("missing_data") or {}).get("primary", "multiple_imputation")
    note = ("Primary: the estimate pooled over the imputations (config analyses.comparison.missing_data.primary), "
            "for the primary and the secondary outcomes; the complete-case estimates are beside them, the primary "
            "outcome's in the sensitivity table and the secondary outcomes' in the table of estimates by outcome."
            if primary == "multiple_imputation" else
            "Primary: the complete cases (config analyses.comparison.missing_data.primary); the estimates pooled "
            "over the imputations are beside them, the primary outcome's in the sensitivity table and the secondary "
            "outcomes' in the table of estimates by outcome.")
    return Table("missingness", "Missing adjustment variables by route (patterns)", ["Route", "Missing", "Patients"],
                 rows, sources=["tables/missingness.csv"],
                 notes=[note + " Nothing is imputed when no variable is missing."] + _empty_note(rows))


def _effect_rows(effect: pd.DataFrame, rows: pd.DataFrame, analysis: str, outcome: str, f: Formatter,
                 indent: str) -> list[list[str]]:
    """One outcome's rows of one analysis, by day then measure; an estimate withheld when an arm's events are."""
    o = rows.assign(_m=rows["measure"].map({m: i for i, m in enumerate(MEASURE_ORDER)}).fillna(len(MEASURE_ORDER)),
                    _d=pd.to_numeric(rows["day"], errors="coerce"))
    out = []
    for r in o.sort_values(["_d", "_m"], kind="mergesort", na_position="last").itertuples():
        events = arm_events(effect, analysis, outcome, r.day)
        out.append([f"{indent}{MEASURE_LABELS.get(str(r.measure), str(r.measure))}",
                    f.days(r.day) if _finite(r.day) else "",
                    f.unless_small(events, _estimate(f, str(r.measure), r.estimate, r.lcl, r.ucl)),
                    f.unless_small(events, f.p(r.p)) if _finite(r.p) else "", f.count(r.n), f.count(r.events)])
    return out


def effect_table(effect: pd.DataFrame, f: Formatter, primary_outcome: str | None = None) -> Table:
    """Every outcome's estimates under the two strategies (the primary analysis's rows of
    ``tables/effect.csv``), the primary outcome first. With missing adjustment values, each secondary
    outcome's other estimate (complete cases, or pooled over the imputations: ``missing_data.primary``)
    follows under its own sub-heading; the primary outcome's is in the sensitivity table."""
    analysis = effect["analysis"].astype(str)
    d = effect[analysis.eq("primary")]
    other = effect[analysis.isin(MISSING_DATA_ANALYSES) & effect["outcome"].astype(str).ne(str(primary_outcome))]
    outcomes = list(dict.fromkeys(d["outcome"].astype(str)))
    outcomes = [o for o in outcomes if o == primary_outcome] + [o for o in outcomes if o != primary_outcome]
    rows, heads = [], set()
    for outcome in outcomes:
        heads.add(len(rows))
        rows.append([outcome_label(outcome, f.labels) + (" (primary outcome)" if outcome == primary_outcome else ""),
                     "", "", "", "", ""])
        rows += _effect_rows(effect, d[d["outcome"].astype(str).eq(outcome)], "primary", outcome, f, "\u2003")
        for name, o in other[other["outcome"].astype(str).eq(outcome)].groupby("analysis", sort=False):
            rows.append([f"\u2003{sensitivity_label(name, f.labels)}", "", "", "", "", ""])
            rows += _effect_rows(effect, o, str(name), outcome, f, "\u2003\u2003")
    notes = ["Risks in %, risk differences in percentage points (IV \u2212 SC), ratios IV vs SC (reference SC). "
             "Risks: patients starting each strategy and its events."]
    notes += [f"Under \u201c{sensitivity_label(name, f.labels)}\u201d: the secondary outcome's estimates "
              f"{MISSING_DATA_ANALYSES[name]}, beside the primary ones (config analyses.comparison.missing_data."
              f"primary); the primary outcome's are in the sensitivity table."
              for name in dict.fromkeys(other["analysis"].astype(str))]
    return Table("effect", "Estimates by outcome under the two strategies (primary analysis)",
                 ["Outcome and measure", "Day", "Estimate (CI)", "p", "Patients", "Events"], rows,
                 header_rows=heads, sources=["tables/effect.csv"],
                 notes=notes + _notes(f, pd.concat([d["note"], other["note"]])) + _empty_note(rows))


def sensitivity_table(sensitivity: pd.DataFrame, f: Formatter, effect: pd.DataFrame | None = None,
                      primary_outcome: str | None = None) -> Table:
    """The primary outcome under each analysis, the primary first (drawn as a sub-heading); an
    estimate is withheld when its events, or its arms' in ``effect`` (tables/effect.csv), are."""
    s = sensitivity.assign(_first=~sensitivity["analysis"].astype(str).eq("primary"))
    rows, heads = [], set()
    for r in s.sort_values("_first", kind="mergesort").itertuples():
        if str(r.analysis) == "primary":
            heads.add(len(rows))
        events = [r.events] + (arm_events(effect, str(r.analysis), primary_outcome)
                               if effect is not None and primary_outcome else [])
        rows.append([sensitivity_label(r.analysis, f.labels), MEASURE_LABELS.get(str(r.measure), str(r.measure)),
                     f.unless_small(events, _estimate(f, str(r.measure), r.estimate, r.lcl, r.ucl)),
                     f.count(r.n), f.count(r.events)])
    return Table("sensitivity", "Sensitivity analyses: the primary outcome under each analysis",
                 ["Analysis", "Measure", "Estimate (CI)", "Patients", "Events"], rows, header_rows=heads,
                 sources=["tables/sensitivity.csv"], notes=_notes(f, sensitivity["note"]) + _empty_note(rows))


def evalues_table(evalues: pd.DataFrame, effect: pd.DataFrame, f: Formatter) -> Table:
    rows = [[outcome_label(r.outcome, f.labels), MEASURE_LABELS.get(str(r.measure), str(r.measure)),
             *[f.unless_small(arm_events(effect, "primary", str(r.outcome)), x) for x in (
                 f.est_ci(r.estimate, r.lcl, r.ucl), f.number(r.evalue_estimate, 2), f.number(r.evalue_ci, 2))]]
            for r in evalues.itertuples()]
    return Table("evalues", "E-values: unmeasured confounding that could explain the estimates away",
                 ["Outcome", "Measure", "Estimate (CI)", "E-value", "E-value of the CI limit"], rows,
                 sources=["tables/evalues.csv"],
                 notes=["The E-value (VanderWeele and Ding 2017) is the risk ratio an unmeasured confounder would need "
                        "with both the route and the outcome, beyond the measured covariates, to explain the estimate "
                        "away; of the confidence limit nearer the null, equal to one when the interval includes "
                        "the null."]
                 + _notes(f, evalues["note"]) + _empty_note(rows))


# --------------------------------------------------------------------------- the section

def comparison_section(data: Mapping, f: Formatter) -> dict:
    """Everything the section's template shows, from the report's inputs (``data``: tables by key and
    ``models["comparison"]``)."""
    model = data["models"]["comparison"]
    primary_outcome = (model.get("primary") or {}).get("outcome")
    return {
        "settings": model.get("settings", {}),
        "primary": primary_estimate(model, data["effect"], data["evalues"], f),
        "counts": counts_text(model, f),
        "secondary": secondary_text(model, f),
        "positivity": positivity_text(model, data["overlap"], f),
        "share_note": share_note(f) if f.policy.active else "",
        "warnings": [w for w in (f.note(x) for x in model.get("warnings", [])) if w],
        "bootstrap": model.get("bootstrap", {}),
        "tables": {
            "protocol": protocol_table(data["protocol"]),
            "missingness": missingness_table(data["missingness"], model.get("settings", {}), f),
            "balance": balance_table(data["balance"], f),
            "weights": weights_table(data["weights"], f),
            "overlap": overlap_table(data["overlap"], f),
            "effect": effect_table(data["effect"], f, primary_outcome),
            "sensitivity": sensitivity_table(data["sensitivity"], f, data["effect"], primary_outcome),
            "evalues": evalues_table(data["evalues"], data["effect"], f),
        },
    }


__all__ = ["arm_events", "balance_table", "comparison_section", "counts_text", "descriptive_note", "effect_table",
           "evalues_table", "key_label", "overlap_table", "positivity_text", "primary_estimate", "protocol_table",
           "secondary_text", "sensitivity_table", "share_note", "strategies", "weights_table"]
