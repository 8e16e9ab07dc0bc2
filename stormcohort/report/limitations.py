"""Limitations the data imply, computed from the results (not boilerplate).

Each item states what was found in this run: the baseline imbalance between the routes, how the
primary estimate (the target-trial emulation) handles immortal time, its E-value and the overlap
of the routes (positivity), the events per parameter of each adjusted model against the
configured threshold, the precision and estimability of the IV-vs-SC estimates, the
proportional-hazards tests, missing and not evaluable outcomes, and the number of comparisons.
Counts go through the report's formatter, so the shareable report discloses them like every
other count.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from stormcohort.labels import outcome_label, term_label, var_label
from stormcohort.report.comparison import positivity_text
from stormcohort.report.fmt import Formatter, _finite
from stormcohort.report.methods import covariates, join_and
from stormcohort.report.sections import lower_first, trajectory_deaths

IMBALANCE_SMD = 0.1   # conventional threshold of a meaningful baseline difference
WIDE_CI_RATIO = 10    # an interval whose upper limit is more than 10 times its lower
LARGE_SMD = 0.5       # imbalance named in the text when not adjusted for
# Table 1 rows that describe the treatment itself, not the patient before it
EXPOSURE_VARS = ("days_admission_to_anakinra", "max_daily_dose_mg", "max_dose_mg_per_kg_day")
EVALUE_ROBUST = 2.0   # an E-value below this: a modest unmeasured confounder could explain the estimate away
EQUIPOISE_SHARE = 0.5  # fewer in equipoise (Walker et al. 2013): the routes overlap poorly
LARGE_WEIGHT = 10     # weights above this make the estimate rest on few patients


def _epv(f: Formatter, events, parameters: int) -> str:
    shown = f.n(events)
    if f.suppressed(events):
        return f"fewer than {f.policy.min_count} events for {parameters} parameters"
    return f"{f.count(events)} events for {parameters} parameters (EPV {shown / max(parameters, 1):.1f})"


def _binary_parameters(logistic: pd.DataFrame, outcome: str) -> int:
    rows = logistic[logistic["outcome"].eq(outcome) & logistic["model"].eq("adjusted") & logistic["method"].eq("firth")]
    return int((rows["term"] != "(Intercept)").sum())


def limitations(*, config: Mapping, table1: pd.DataFrame, survival_model: Mapping, logistic: pd.DataFrame,
                binary_counts: pd.DataFrame, ph: pd.DataFrame, forest: pd.DataFrame, competing_model: Mapping,
                severity: list[dict], cohort: Mapping, synthetic: bool, f: Formatter,
                trajectories_model: Mapping | None = None, comparison_model: Mapping | None = None,
                overlap: pd.DataFrame | None = None, primary_withheld: bool = False) -> list[dict]:
    """``[{"title", "text", "level"}]``; level ``warn`` for a threshold crossed, else ``info``.
    ``comparison_model``/``overlap``: models/comparison.json and tables/overlap.csv (the primary
    estimate's limitations); ``primary_withheld``: the shareable report withholds the primary
    estimate (an arm's events suppressed), so its E-value too."""
    a = config["analyses"]
    items = []

    # confounding by indication
    labels = config.get("labels")
    # one row per baseline variable, over all patients
    t1 = table1[table1["group"].eq("overall") & table1["kind"].ne("count")].drop_duplicates("variable")
    t1 = t1.assign(label=t1["variable"].map(lambda v: var_label(v, labels)))
    smd = t1.dropna(subset=["smd"])
    smd = smd[~smd["variable"].isin(EXPOSURE_VARS)]
    imbalanced = smd[smd["smd"] > IMBALANCE_SMD].sort_values("smd", ascending=False)
    adjusted = set(a["survival"]["adjust_for"])
    not_adjusted = [f"{lower_first(r.label)} ({r.smd:.2f})" for r in imbalanced.itertuples()
                    if r.variable not in adjusted and r.smd > LARGE_SMD]
    sev = "; ".join(f"{lower_first(d['label'])} IV {d['iv']} vs SC {d['sc']} (SMD {d['smd']:.2f})" for d in severity)
    items.append({"title": "Confounding by indication", "level": "warn" if len(imbalanced) else "info", "text": (
        f"The route was chosen by the treating teams, not at random, and no extract records why. Patients given "
        f"IV differed at baseline: {sev or 'no severity feature available'}. {len(imbalanced)} of {len(smd)} "
        f"baseline characteristics have an SMD above {IMBALANCE_SMD:g}. The adjusted Cox model includes "
        f"{join_and([lower_first(var_label(v, labels)) for v in a['survival']['adjust_for']]) or 'no covariate'}; "
        f"SMD above {LARGE_SMD:g} but not adjusted for: {join_and(not_adjusted) or 'none'}. "
        + ("The descriptive IV-vs-SC estimates (outcomes, safety, forest plot) are associations and are likely "
           "confounded by severity; the primary estimate (comparative effectiveness) is weighted for the measured "
           "baseline covariates, which leaves unmeasured confounding (see residual confounding below)."
           if comparison_model else
           "The IV-vs-SC estimates are associations and are likely confounded by severity."))})
    if comparison_model:
        items += comparison_limitations(config, comparison_model, overlap, primary_withheld, f)

    # events per variable
    threshold = float(a["survival"]["epv_warn_below"])
    low = []
    cox = survival_model.get("cox", {}).get("adjusted", {})
    if cox.get("estimable") and cox.get("n_parameters"):
        if cox["events"] / cox["n_parameters"] < threshold:
            low.append(f"Cox model of death: {_epv(f, cox['events'], cox['n_parameters'])}")
    counts = binary_counts[binary_counts["group"].eq("overall")].set_index("outcome")
    for outcome in counts.index:
        k = _binary_parameters(logistic, outcome)
        n, events = counts.loc[outcome, "n"], counts.loc[outcome, "events"]
        limiting = min(events, n - events)
        if k and limiting / k < threshold:
            low.append(f"logistic model of {lower_first(outcome_label(outcome, labels))}: {_epv(f, limiting, k)}")
    items.append({"title": "Events per variable", "level": "warn" if low else "info", "text": (
        f"Adjusted models with fewer than {threshold:g} events per parameter (the rarer outcome class counts for "
        f"logistic models) may be unstable and overfitted: {'; '.join(low)}." if low else
        f"Every adjusted model has at least {threshold:g} events per parameter.")})

    # small numbers and precision
    fr = forest.copy()
    ratio = fr["ucl"].astype(float) / fr["lcl"].astype(float)
    wide = fr[fr["plotted"].astype(bool) & ~(ratio <= WIDE_CI_RATIO)]
    not_est = fr[~fr["plotted"].astype(bool)]
    ne = join_and([f"{lower_first(outcome_label(r.outcome, labels))} ({r.measure}, {r.model})"
                   for r in not_est.itertuples()])
    items.append({"title": "Small numbers", "level": "warn" if len(wide) or len(not_est) else "info", "text": (
        f"{cohort['n']} patients, {cohort['iv']} IV and {cohort['sc']} SC. Of {len(fr)} IV-vs-SC estimates, "
        f"{len(wide)} have a confidence interval spanning more than a {WIDE_CI_RATIO}-fold range"
        + (f" and {len(not_est)} are not estimable or not shown: {ne}" if len(not_est) else "")
        + ". Differences of clinical interest cannot be excluded or confirmed.")})

    # proportional hazards
    alpha = float(a["survival"]["ph_alpha"])
    bad = ph[ph["p"].astype(float) < alpha]
    items.append({"title": "Proportional hazards", "level": "warn" if len(bad) else "info", "text": (
        "The proportional-hazards test rejects at p < {:g} for: {}; the hazard ratio averages a hazard ratio "
        "that changes over time.".format(alpha, join_and(
            [f"{term_label(r.term, labels) if r.term != 'GLOBAL' else 'global'}"
             f" ({r.model})" for r in bad.itertuples()]))
        if len(bad) else
        f"No proportional-hazards test rejects at p < {alpha:g}; with few deaths these tests have little power.")})

    # missing data and not evaluable outcomes
    miss = t1[pd.to_numeric(t1["missing"], errors="coerce").fillna(0) > 0]
    ne_out = counts[counts["not_evaluable"] > 0]
    cc = (comparison_model or {}).get("counts", {})
    imputed = ((comparison_model or {}).get("imputation") or {}).get("imputed_patients") or 0
    pooled = ((comparison_model or {}).get("settings", {}).get("missing_data") or {}).get(
        "primary", "multiple_imputation") == "multiple_imputation"
    if imputed and cc.get("patients") is not None:  # the target trial imputed its missing adjustment values
        primary_cc = (
            " The target trial's estimates, of the primary and the secondary outcomes, impute the missing adjustment "
            "variables by chained equations and pool the imputations by Rubin's rules, which assumes they are missing "
            "at random given the imputation model's variables; "
            + (f"its complete-case estimates, beside them, use the {f.count(cc.get('complete_cases'))} of "
               f"{f.count(cc.get('patients'))} patients with every adjustment variable." if pooled else
               f"its primary estimates are the complete cases' ({f.count(cc.get('complete_cases'))} of "
               f"{f.count(cc.get('patients'))} patients with every adjustment variable), the pooled ones beside them."))
    else:
        primary_cc = (f" The primary estimate uses the {f.count(cc.get('complete_cases'))} of "
                      f"{f.count(cc.get('patients'))} patients with every adjustment variable."
                      if cc.get("patients") is not None else "")
    items.append({"title": "Missing data", "level": "warn" if len(miss) or len(ne_out) else "info", "text": (
        ("Complete-case analyses, without imputation, except the target trial's (below). " if imputed else
         "Complete-case analyses, no imputation. ") + "Missing at baseline: "
        + (join_and([f"{lower_first(r.label)}: {f.count(r.missing)}" for r in miss.itertuples()]) or "none")
        + ". Outcomes not evaluable: "
        + (join_and([f"{lower_first(outcome_label(o, labels))}: {f.count(r['not_evaluable'])}"
                     for o, r in ne_out.iterrows()])
           or "none") + "." + primary_cc)})

    # laboratory series cut short by death
    deaths = trajectory_deaths(trajectories_model, f)
    if deaths:
        died = any(v for m in trajectories_model["models"].values() for v in m["deaths_in_window"].values())
        items.append({"title": "Laboratory trajectories and death", "level": "warn" if died else "info", "text": (
            f"The trajectory models assume that missing samples are missing at random given the observed values. "
            f"A death ends a patient's samples: the slopes describe a cohort in which no one died, and if deaths "
            f"were more frequent in one route, the route comparison mixes treatment with survival. Series ending "
            f"with death (died by day {a['trajectories']['days'][1]:g}), of the patients sampled: {deaths}.")})

    # multiplicity (Methods, "Multiplicity"): the secondary family Holm-adjusted, the exploratory estimates not
    secondary = fr["family"].eq("secondary")
    holm = fr.loc[secondary, "p_holm"].astype(float)
    holm = holm[np.isfinite(holm)]
    p = fr.loc[fr["plotted"].astype(bool) & ~secondary, "p"].astype(float)
    p = p[np.isfinite(p)]
    items.append({"title": "Multiple comparisons", "level": "info", "text": (
        "One primary outcome, whose primary estimate is the target trial's. "
        + (f"The secondary family's {len(holm)} p-values are Holm-adjusted within it, {int((holm < 0.05).sum())} "
           f"below 0.05 after adjustment. " if len(holm) else "")
        + f"The exploratory estimates' {len(p)} IV-vs-SC p-values are not adjusted for multiplicity; "
        f"{int((p < 0.05).sum())} are below 0.05, where {0.05 * len(p):.1f} would be expected by chance if the "
        f"route made no difference; they are hypothesis-generating.")})

    warns = [w for w in competing_model.get("warnings", []) if f.note(w)]
    if warns:
        items.append({"title": "Competing risks", "level": "info", "text": "; ".join(f.note(w) for w in warns) + "."})
    window = config["cohort"]["study_window"]
    items.append({"title": "Generalisability", "level": "info", "text": (
        f"{cohort['n']} patients at {len(config['centres'])} centres ({join_and(config['centres'])}), admitted from "
        f"{window['start']} to {window['end']}: the case mix and route practice of these centres may not carry "
        f"over to others.")})
    if synthetic:
        items.append({"title": "Synthetic data", "level": "warn", "text": (
            "This delivery is synthetic: it reproduces the published counts but describes no real patient, and "
            "its estimates say nothing about anakinra.")})
    return items


def comparison_limitations(config: Mapping, model: Mapping, overlap: pd.DataFrame | None, withheld: bool,
                      f: Formatter) -> list[dict]:
    """Immortal time, residual confounding (with the E-value) and positivity of the primary estimate,
    from models/comparison.json and tables/overlap.csv."""
    s, p, c = model.get("settings", {}), model.get("primary", {}), model.get("counts", {})
    labels = config.get("labels")
    g = int(s.get("grace_days", 0))
    items = []

    # immortal time
    strategies = (f"IV started by day {g} against no IV through day {g}, each patient cloned into both and a clone "
                  f"censored, and reweighted, when the patient's record leaves its strategy" if g else
                  "the route of the first dose, fixed at time zero")
    followed = (f" By day {g}, {f.count(c.get('iv_by_grace'))} patients had started IV, "
                f"{f.count(c.get('sc_through_grace'))} had not, and {f.count(c.get('died_before_grace'))} patients "
                f"died before day {g} (they count in both arms)." if g and c else "")
    ever_iv = config["cohort"]["exposure"] == "any_iv"
    descriptive = ("The descriptive comparisons (outcomes, safety, forest plot) group patients by any IV dose during "
                   "the episode, which a patient had to live to receive: their IV group holds immortal time, which "
                   "favours IV, and they are not estimates of the route's effect." if ever_iv else
                   "The descriptive comparisons group patients by the route of the first dose, fixed at time zero.")
    items.append({"title": "Immortal time", "level": "warn" if ever_iv else "info", "text": (
        f"The primary estimate starts eligibility, the strategies and follow-up together at the first dose "
        f"(clone-censor-weight: {strategies}), so no time before IV is credited to IV.{followed} {descriptive}")})

    # residual confounding and the E-value
    what = lower_first(outcome_label(p["outcome"], labels)) if p.get("outcome") else "the outcome"
    adjusted = covariates(s.get("adjust_for", []), s.get("reference_levels") or {})
    base = (f"The primary estimate assumes that, given {adjusted} (measured before the first dose), the route was as "
            f"good as random. Severity the treating teams saw but the extracts do not date before the first dose "
            f"(intensive care is recorded for the whole episode) cannot be used and may remain. ")
    e, e_ci = p.get("evalue_estimate"), p.get("evalue_ci")
    if not p.get("estimable"):
        text, level = base + f"The primary estimate is not estimable: {f.note(p.get('reason')) or 'see the model'}.", \
            "warn"
    elif withheld:
        text, level = base + f"Its E-value is not shown: an arm has {f.policy.small_label} events.", "warn"
    elif _finite(e):
        text = base + (f"E-value {float(e):.2f} (confidence limit {float(e_ci):.2f}): an unmeasured confounder "
                       f"associated with both the route and {what} by a risk ratio of {float(e):.2f} each, beyond the "
                       f"measured covariates, could explain the estimate away; one of {float(e_ci):.2f} could move "
                       f"its interval to include the null.")
        level = "warn" if float(e) < EVALUE_ROBUST else "info"
    else:
        text, level = base + "No E-value was computed.", "warn"
    items.append({"title": "Residual confounding", "level": level, "text": text})

    # positivity
    pos = model.get("positivity", {}) or {}
    known = [pos.get(k) for k in ("share_equipoise", "ess_iv", "ess_sc", "max_weight")]
    overlap = overlap if overlap is not None else pd.DataFrame(columns=["group", "n", "n_equipoise",
                                                                       "share_equipoise"])
    if not len(overlap) and not any(_finite(x) for x in known):
        text, level = positivity_text(model, overlap, f), "warn"
    else:
        poor = _finite(pos.get("share_equipoise")) and float(pos["share_equipoise"]) < EQUIPOISE_SHARE
        heavy = _finite(pos.get("max_weight")) and float(pos["max_weight"]) > LARGE_WEIGHT
        lo, hi = (s.get("truncate_percentiles") or [None, None])[:2]
        text = (positivity_text(model, overlap, f)
                + (f" Fewer than {100 * EQUIPOISE_SHARE:g}% of patients are in equipoise: the routes overlap poorly, "
                   "and the estimate leans on patients whose route was nearly certain." if poor else "")
                + (f" Weights above {LARGE_WEIGHT} make the estimate rest on few patients"
                   + (f"; weights truncated at percentiles {lo:g} and {hi:g} are a sensitivity analysis"
                      if lo is not None and hi is not None else "") + "." if heavy else ""))
        level = "warn" if poor or heavy else "info"
    items.append({"title": "Positivity (overlap of the routes)", "level": level, "text": text})
    return items
