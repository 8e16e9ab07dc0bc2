"""Every result table's columns, declared once: description and unit (``tables/data_dictionary.csv``).

Keys are the table names under ``tables/`` (``km`` is ``tables/km.csv``). A column written
``surv_<day>`` stands for one column per landmark day (``surv_30``, ``surv_90``, ...).
"""

from __future__ import annotations

import re

import pandas as pd

DICTIONARY_COLUMNS = ["table", "column", "description", "unit"]

_GROUP = ("route group: IV, SC or overall", "")
_ROUTE = ("route group: IV or SC", "")
_OUTCOME = ("outcome name (labels: stormcohort.labels.outcome_label)", "")
_NOTE = ("why a value is missing or needs care", "")
_P = ("p value", "")
_MODEL = ("model: unadjusted (route only) or adjusted", "")
_TERM = ("model term; route_group[IV] is IV vs SC (reference SC)", "")
_DAY = ("day from the first anakinra dose", "days")
_N_RISK = ("patients still at risk: event-free and under observation on the day", "patients")
_WEIGHTING = ("iptw (inverse probability of treatment) or overlap weights", "")


def _ci(what: str, unit: str = "") -> dict[str, tuple[str, str]]:
    return {"lcl": (f"lower confidence limit of the {what}", unit),
            "ucl": (f"upper confidence limit of the {what}", unit)}


TABLES: dict[str, dict[str, tuple[str, str]]] = {
    "table1": {
        "variable": ("dataset variable (patients: the group sizes)", ""),
        "kind": ("count, continuous or categorical", ""),
        "level": ("level of a categorical variable", ""),
        "group": _GROUP,
        "n": ("patients with a value (the denominator)", "patients"),
        "count": ("patients at the level (patients row: patients in the group)", "patients"),
        "percent": ("100 * count / n", "%"),
        "median": ("median (numpy linear percentile)", "variable's unit"),
        "q1": ("first quartile", "variable's unit"),
        "q3": ("third quartile", "variable's unit"),
        "missing": ("patients without a value", "patients"),
        "smd": ("standardised mean difference IV vs SC (categorical: Yang & Dalton 2012), on overall rows", ""),
    },
    "exposure": {
        "variable": ("exposure variable", ""), "group": _GROUP,
        "n": ("patients with a value", "patients"), "count": ("patients with the feature (0/1 variables)", "patients"),
        "median": ("median (continuous variables)", "variable's unit"), "q1": ("first quartile", "variable's unit"),
        "q3": ("third quartile", "variable's unit"), "missing": ("patients without a value", "patients"),
    },
    "follow_up": {
        "group": _GROUP, "patients": ("patients in the group", "patients"),
        "median": ("median follow-up, index to death or censoring (capped at cohort.follow_up_days)", "days"),
        "q1": ("first quartile of follow-up", "days"), "q3": ("third quartile of follow-up", "days"),
        "person_days": ("sum of follow-up", "patient-days"),
        "ended_alive_before_horizon": ("patients alive whose follow-up ended before cohort.follow_up_days "
                                       "(last record, or the extract date, before the horizon)", "patients"),
    },
    "km": {
        "group": _GROUP, "n": ("patients", "patients"), "events": ("deaths within follow-up", "patients"),
        "median": ("median survival (missing: not reached)", "days"),
        "median_lcl": ("lower confidence limit of the median", "days"),
        "median_ucl": ("upper confidence limit of the median (missing: not reached)", "days"),
        "surv_<day>": ("Kaplan-Meier survival at the landmark day (analyses.survival.landmark_days and "
                       "cohort.follow_up_days)", "probability"),
        "surv_<day>_lcl": ("lower confidence limit of surv_<day> (log Greenwood)", "probability"),
        "surv_<day>_ucl": ("upper confidence limit of surv_<day> (log Greenwood)", "probability"),
        "note": _NOTE,
    },
    "km_risk": {
        "outcome": _OUTCOME, "group": _ROUTE, "day": _DAY,
        "n_risk": ("patients alive and followed on the day (time >= day)", "patients"),
        "n_event_cum": ("deaths before the day", "patients"), "n_censor_cum": ("censored before the day", "patients"),
    },
    "logrank": {"statistic": ("log-rank chi-square", ""), "df": ("degrees of freedom", ""), "p": _P, "note": _NOTE},
    "cox": {
        "outcome": _OUTCOME, "model": _MODEL, "term": _TERM, "coef": ("log hazard ratio", ""),
        "se": ("standard error of coef", ""), "hr": ("hazard ratio", "ratio"), "hr_lcl": ("lower limit of hr", "ratio"),
        "hr_ucl": ("upper limit of hr", "ratio"), "p": _P, "n": ("patients in the model", "patients"),
        "events": ("deaths in the model", "patients"), "epv": ("events per model parameter", ""), "note": _NOTE,
    },
    "ph_test": {
        "model": _MODEL, "term": ("model term or GLOBAL", ""), "statistic": ("cox.zph chi-square", ""),
        "df": ("degrees of freedom", ""), "p": _P, "note": _NOTE,
    },
    "cif": {
        "group": _GROUP, "time": _DAY,
        "cif": ("cumulative incidence of fever resolution (Aalen-Johansen)", "probability"),
        "cif_lcl": ("lower confidence limit of cif", "probability"),
        "cif_ucl": ("upper confidence limit of cif", "probability"),
    },
    "cif_summary": {
        "group": _GROUP, "cause": ("fever_resolution or death (competing)", ""), "time": _DAY,
        "n_risk": _N_RISK, "events": ("events of the cause by the day", "patients"),
        "cif": ("cumulative incidence of the cause by the day", "probability"),
        "cif_lcl": ("lower confidence limit of cif", "probability"),
        "cif_ucl": ("upper confidence limit of cif", "probability"),
        "note": _NOTE,
    },
    "cif_risk": {"outcome": _OUTCOME, "group": _ROUTE, "day": _DAY,
                 "n_risk": ("patients still febrile and followed on the day (time >= day)", "patients")},
    "cif_tests": {
        "outcome": ("fever_resolution or death (before resolution, competing)", ""),
        "method": ("gray_test (Gray's test of equal CIFs), fine_gray (subdistribution hazards) or "
                   "cause_specific_cox", ""),
        "weights": ("none: IV vs SC by route group, unweighted; iptw or overlap: IV by day G (comparison grace_days) "
                    "vs not among patients followed at day G, weighted by the target trial's stabilised "
                    "inverse-probability (ATE) or overlap (ATO) weights (models only, robust variance)", ""),
        "measure": ("sHR (subdistribution hazard ratio), HR (cause-specific hazard ratio); empty for a test", ""),
        "estimate": ("IV vs SC ratio (reference SC)", "ratio"),
        **{k: (v[0].replace("the ", "estimate's "), "ratio") for k, v in _ci("estimate").items()},
        "statistic": ("chi-square: Gray's statistic, or Wald (z squared) for the models", ""),
        "df": ("degrees of freedom", ""), "p": _P, "n": ("patients in the analysis", "patients"),
        "events": ("events of the outcome (unweighted count)", "patients"),
        "events_iv": ("IV events of the outcome (weighted rows: IV by day G)", "patients"),
        "events_sc": ("SC events of the outcome (weighted rows: no IV by day G)", "patients"), "note": _NOTE,
    },
    "binary_outcomes": {
        "outcome": _OUTCOME, "group": _GROUP, "n": ("evaluable patients", "patients"),
        "events": ("patients with the outcome", "patients"), "not_evaluable": ("patients not evaluable", "patients"),
        "percent": ("100 * events / n", "%"),
    },
    "logistic": {
        "outcome": _OUTCOME, "model": _MODEL, "method": ("firth (penalised) or ml (maximum likelihood)", ""),
        "term": _TERM, "coef": ("log odds ratio", ""), "se": ("standard error of coef", ""),
        "or": ("odds ratio", "ratio"),
        "or_lcl": ("lower limit of or", "ratio"), "or_ucl": ("upper limit of or", "ratio"), "p": _P,
        "n": ("patients in the model", "patients"), "events": ("patients with the outcome in the model", "patients"),
        "note": _NOTE,
    },
    "hepatotoxicity": {
        "outcome": ("ctcae_grade_<g>: worst post-baseline CTCAE v5.0 grade g (0-4) of ALT/AST increased, against "
                    "the patient's baseline; ctcae_grade_3plus: grade >= 3; ctcae_baseline_<normal|abnormal|missing>: "
                    "baseline ALT/AST status of the graded patients (abnormal: either above its centre's ULN); "
                    "hepatotox_<k>xuln: ALT or AST above k x the centre's ULN whatever the baseline", ""),
        "group": _GROUP,
        "n": ("evaluable patients (an ALT/AST in the window)", "patients"),
        "events": ("patients with the outcome (grade, status or above the threshold)", "patients"),
        "not_evaluable": ("patients not evaluable (no ALT/AST in the window)", "patients"),
        "percent": ("100 * events / n", "%"),
        "samples_median": ("median of the post-baseline ALT/AST samples (distinct sample times) per evaluable "
                           "patient of the group (the same on every row of a group)", "samples"),
        "samples_q1": ("first quartile of the post-baseline samples per evaluable patient", "samples"),
        "samples_q3": ("third quartile of the post-baseline samples per evaluable patient", "samples"),
    },
    "trajectories": {
        "test": ("laboratory test", ""), "term": ("Intercept, day, route_group[IV] or route_group[IV]:day", ""),
        "coef": ("fixed effect on the log scale", "log(unit)"), "se": ("standard error of coef", "log(unit)"),
        "df": ("Satterthwaite degrees of freedom of coef's t test and t interval", ""),
        **{k: (v[0].replace("the ", "coef's "), "log(unit)") for k, v in _ci("coef").items()}, "p": _P,
        "n_patients": ("patients with a sample", "patients"), "n_obs": ("samples", "samples"),
        "random_effects": ("random effects fitted", ""), "note": _NOTE,
    },
    "trajectories_daily": {
        "test": ("laboratory test", ""), "group": _ROUTE, "day": _DAY, "n": ("patients sampled on the day", "patients"),
        "median": ("median of the patients' first value of the day", "test's unit"),
        "q1": ("first quartile", "test's unit"), "q3": ("third quartile", "test's unit"),
    },
    "safety_events": {
        "group": _GROUP, "term": ("adverse event term (any, any_infection: groups of terms)", ""),
        "grade": ("CTCAE grade: any, 1-5 or >=<severe_grade>", ""),
        "patients": ("patients with at least one event", "patients"), "events": ("events", "events"),
        "n": ("patients in the group", "patients"), "percent": ("100 * patients / n", "%"),
    },
    "safety_rates": {
        "group": _ROUTE, "term": ("adverse event term", ""),
        "patients": ("patients with an event on exposure", "patients"),
        "events": ("events on exposure days", "events"), "patient_days": ("days on anakinra", "patient-days"),
        "rate_per_100pd": ("events per analyses.safety.per patient-days", "events per `per` patient-days"),
        "rate_lcl": ("lower limit of the rate (exact Poisson)", "events per `per` patient-days"),
        "rate_ucl": ("upper limit of the rate (exact Poisson)", "events per `per` patient-days"), "note": _NOTE,
    },
    "rate_ratios": {
        "outcome": ("adverse event term", ""), "model": _MODEL, "term": _TERM,
        "irr": ("incidence rate ratio IV/SC", "ratio"),
        "irr_lcl": ("lower limit of irr (exact conditional)", "ratio"), "irr_ucl": ("upper limit of irr", "ratio"),
        "p": _P, "events_iv": ("IV events", "events"), "patient_days_iv": ("IV exposure", "patient-days"),
        "events_sc": ("SC events", "events"), "patient_days_sc": ("SC exposure", "patient-days"), "note": _NOTE,
        "irr_robust": ("incidence rate ratio IV/SC from Poisson regression with log patient-days offset (the same "
                       "ratio as irr)", "ratio"),
        "robust_lcl": ("lower limit of irr_robust (Wald, patient-clustered sandwich variance: repeated events of a "
                       "patient are not independent)", "ratio"),
        "robust_ucl": ("upper limit of irr_robust (as robust_lcl)", "ratio"),
        "robust_p": ("Wald p value of irr_robust with the patient-clustered variance", ""),
        "robust_se": ("patient-clustered standard error of log(irr_robust)", "log(ratio)"),
        "robust_method": ("poisson_glm_cluster_hc1: Poisson GLM, sandwich variance clustered by patient with the "
                          "G/(G-1)*(N-1)/(N-K) factor (R sandwich::vcovCL type HC1, statsmodels cov_type cluster)",
                          ""),
    },
    "safety_first_severe": {
        "group": _GROUP, "day": ("the last day of analyses.safety.window_days: when the incidence is read", "days"),
        "n": ("patients in the group with a follow-up time", "patients"),
        "n_risk": ("patients followed to the day without a first severe event or death", "patients"),
        "events": ("patients whose first adverse event of grade >= severe_grade in the window came within "
                   "follow-up", "patients"),
        "competing_deaths": ("patients who died (within the window) before any such event", "patients"),
        "censored_before": ("patients whose follow-up ended alive, without such an event, before the day", "patients"),
        "cif": ("cumulative incidence of a first grade >= severe_grade adverse event by the day (Aalen-Johansen, "
                "death competing)", "probability"),
        "cif_lcl": ("lower confidence limit of cif (infinitesimal jackknife, log)", "probability"),
        "cif_ucl": ("upper confidence limit of cif", "probability"),
        "note": _NOTE,
    },
    "forest": {
        "section": ("cox, logistic or rate", ""), "outcome": _OUTCOME, "label": ("outcome label", ""),
        "measure": ("HR, OR or IRR", ""), "model": _MODEL,
        "family": ("multiplicity family: primary (the primary outcome's primary estimate, the target trial's: no "
                   "row here), secondary (the adjusted Firth OR of each analyses.comparison.secondary_outcomes "
                   "outcome) or exploratory (every other row, the Cox HR of death by H between the descriptive "
                   "route groups included)", ""),
        "estimate": ("IV vs SC ratio", "ratio"),
        "lcl": ("lower confidence limit", "ratio"), "ucl": ("upper confidence limit", "ratio"),
        "p": ("p value, unadjusted for multiplicity", ""),
        "p_holm": ("Holm step-down adjusted p value within the secondary family (R p.adjust holm, over the members "
                   "with a p); empty for other families", ""),
        "n": ("patients in the model", "patients"), "events": ("events", "events"),
        "estimable": ("a finite estimate exists", ""), "plotted": ("on the log axis", ""), "note": _NOTE,
    },
    # the target-trial emulation (rule comparison)
    "protocol": {
        "component": ("protocol component (Hernan and Robins' layout: eligibility to analysis)", ""),
        "target_trial": ("the component in the target trial", ""),
        "emulation": ("how this analysis emulates it", ""),
    },
    "balance": {
        "weighting": _WEIGHTING, "covariate": ("covariate; a factor level as <variable>_<level>, a missing indicator "
                                               "as <variable>:<NA>", ""),
        "type": ("binary or continuous", ""),
        "diff_type": ("raw (difference in proportions, binary) or smd (standardised mean difference)", ""),
        "mean_iv_unadj": ("IV mean (binary: proportion) before weighting", "covariate's unit"),
        "mean_sc_unadj": ("SC mean (binary: proportion) before weighting", "covariate's unit"),
        "diff_unadj": ("IV minus SC difference before weighting (diff_type)", ""),
        "mean_iv_adj": ("IV weighted mean (binary: proportion)", "covariate's unit"),
        "mean_sc_adj": ("SC weighted mean (binary: proportion)", "covariate's unit"),
        "diff_adj": ("IV minus SC difference after weighting (diff_type)", ""),
        "var_ratio_unadj": ("variance ratio IV / SC before weighting (continuous only)", "ratio"),
        "var_ratio_adj": ("variance ratio IV / SC after weighting (continuous only)", "ratio"),
        "note": _NOTE,
    },
    "weights": {
        "weighting": ("iptw, overlap or censoring (inverse probability of censoring of the clones)", ""),
        "group": _ROUTE, "n": ("patients (censoring: clones) weighted", "patients"),
        "ess": ("effective sample size, Kish: (sum w)^2 / sum w^2", "patients"),
        "mean": ("mean weight", ""), "min": ("smallest weight", ""), "max": ("largest weight", ""),
        "n_above_10": ("weights above 10", "patients"),
    },
    "overlap": {
        "group": _ROUTE, "n": ("patients with a propensity score", "patients"),
        "ps_min": ("smallest propensity score P(IV | covariates)", "probability"),
        "ps_q1": ("first quartile of the propensity score", "probability"),
        "ps_median": ("median propensity score", "probability"),
        "ps_q3": ("third quartile of the propensity score", "probability"),
        "ps_max": ("largest propensity score", "probability"),
        "n_equipoise": ("patients in clinical equipoise: preference score in [0.3, 0.7] (Walker et al. 2013)",
                        "patients"),
        "share_equipoise": ("n_equipoise / n", "proportion"),
    },
    "effect": {
        "analysis": ("primary, or the sensitivity analysis (naive_ever_iv, first_route, landmark, time_varying_cox, "
                     "overlap_weights, leave_out_<centre>, truncated_weights)", ""),
        "outcome": _OUTCOME,
        "measure": ("risk_iv, risk_sc (risk under each strategy), risk_difference (IV - SC), risk_ratio, "
                    "hazard_ratio or odds_ratio (IV vs SC)", ""),
        "day": ("day of a risk, its difference or ratio (empty for other measures)", "days"),
        "estimate": ("the measure (risks and differences as proportions)", "proportion or ratio"),
        **_ci("estimate", "as estimate"), "p": _P,
        "n": ("patients in the analysis (risk_iv, risk_sc: patients starting the strategy)", "patients"),
        "events": ("events of the outcome (risk_iv, risk_sc: in the strategy's arm by the day)", "patients"),
        "note": _NOTE,
    },
    "sensitivity": {
        "analysis": ("primary or the sensitivity analysis, as in tables/effect.csv", ""),
        "label": ("readable name of the analysis (stormcohort.labels.sensitivity_label)", ""),
        "measure": ("hazard_ratio or risk_difference (IV vs SC) of the primary outcome", ""),
        "estimate": ("the measure (a risk difference as a proportion)", "ratio or proportion"),
        **_ci("estimate", "as estimate"),
        "n": ("patients in the analysis", "patients"), "events": ("events of the primary outcome", "patients"),
        "note": _NOTE,
    },
    "evalues": {
        "outcome": _OUTCOME, "measure": ("the IV-vs-SC measure the E-value is of (risk_ratio, hazard_ratio, "
                                         "odds_ratio)", ""),
        "estimate": ("the measure", "ratio"), **_ci("measure", "ratio"),
        "evalue_estimate": ("E-value of the estimate (VanderWeele and Ding 2017)", "risk ratio"),
        "evalue_ci": ("E-value of the confidence limit nearer the null (1: the interval includes the null)",
                      "risk ratio"),
        "note": _NOTE,
    },
    "missingness": {
        "route_group": ("route group (IV or SC)", ""),
        "pattern": ("the adjustment variables missing together (' + '); none: complete", ""),
        "n_missing": ("how many adjustment variables the pattern misses", "variables"),
        "n": ("patients with the pattern", "patients"), "percent": ("of the route group's patients", "%"),
        "<variable>": ("one column per adjustment variable: 1 missing in the pattern, 0 recorded", "0/1"),
    },
    "data_dictionary": {
        "table": ("result table (tables/<table>.csv)", ""), "column": ("column name (<day>: one per day)", ""),
        "description": ("what the column holds", ""), "unit": ("unit", ""),
    },
}


def dictionary_table() -> pd.DataFrame:
    """``table, column, description, unit`` for every column of every result table."""
    rows = [(t, c, d, u) for t, cols in TABLES.items() for c, (d, u) in cols.items()]
    return pd.DataFrame(rows, columns=DICTIONARY_COLUMNS)


def undocumented(table: str, columns) -> list[str]:
    """The ``columns`` of ``tables/<table>.csv`` the dictionary does not describe."""
    declared = TABLES.get(table, {})
    wildcards = {re.escape("<day>"): r"\d+", re.escape("<variable>"): r"\w+"}
    patterns = []
    for c in declared:
        pattern = re.escape(c)
        for token, regex in wildcards.items():
            pattern = pattern.replace(token, regex)
        patterns.append(re.compile(f"^{pattern}$"))
    return [c for c in columns if not any(p.match(str(c)) for p in patterns)]
