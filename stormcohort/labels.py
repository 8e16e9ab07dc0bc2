"""Names, labels and colours every table, figure and the report share, each defined once.

* The route groups: column :data:`GROUP`, groups :data:`ROUTES` (reference :data:`REFERENCE`),
  the IV-vs-SC model term :data:`ROUTE_TERM`, and :data:`GROUPS` (overall first) for tables.
* The follow-up horizon H (``cohort.follow_up_days``) names the survival outcome:
  :func:`death_outcome` (``death_<H>d``) and :func:`landmark_days` (configured days plus H);
  :func:`primary_outcome` resolves the config's primary outcome, :data:`FAMILIES` the estimate families.
* Human labels: :data:`OUTCOME_LABELS`, :data:`TERM_LABELS`, :data:`VAR_LABELS`,
  :data:`TEST_LABELS` and the functions :func:`outcome_label`, :func:`term_label`,
  :func:`var_label`; the config's top-level ``labels:`` overrides any of them.
* One colour per route in every figure: :data:`ROUTE_COLOURS` (Okabe-Ito, colour-blind safe).
* The target-trial emulation (``comparison`` rule): :func:`covariate_label` (a balance-table
  covariate, factor levels expanded as ``<variable>_<level>``), :func:`sensitivity_label`,
  :data:`WEIGHTING_LABELS` and :data:`MEASURE_LABELS`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

GROUP = "route_group"
ROUTES = ("IV", "SC")
REFERENCE = "SC"
ROUTE_TERM = f"{GROUP}[IV]"  # the IV-vs-SC term in every model table
GROUPS = ("overall", *ROUTES)
GROUP_LABELS = {"overall": "Overall", "IV": "IV", "SC": "SC"}

# Okabe-Ito (colour-blind safe): IV blue, SC vermillion, in every figure.
ROUTE_COLOURS = {"IV": "#0072B2", "SC": "#D55E00", "overall": "#4D4D4D"}
SEVERE_COLOUR = "#CC79A7"  # adverse events of grade >= severe (swimmer plot)
DISCHARGE_COLOUR = "#009E73"
DAY_AXIS = "Days from the first anakinra dose"

DEATH = re.compile(r"^death_(\d+)d$")
HEPATOTOX = re.compile(r"^hepatotox_(.+)xuln$")


def death_outcome(days: int) -> str:
    """The 0/1 column of death by day ``days`` (H for the survival outcome): ``death_<days>d``."""
    return f"death_{int(days)}d"


def death_label(days: int) -> str:
    return f"Death by day {int(days)}"


def landmark_days(days: Iterable[float], horizon: int) -> list[int]:
    """The Kaplan-Meier landmark days: ``days`` (analyses.survival.landmark_days) and H, sorted."""
    return sorted({int(d) for d in days if 0 < d <= horizon} | {int(horizon)})


def hepatotox_outcome(k) -> str:
    """The 0/1 column of ALT or AST above ``k`` times the centre's ULN."""
    return f"hepatotox_{float(k):g}xuln"


# The families of estimates (multiplicity, said once): the configured primary outcome's primary
# estimate, the secondary family (analyses.comparison.secondary_outcomes), everything else exploratory.
FAMILIES = ("primary", "secondary", "exploratory")
PRIMARY_OUTCOMES = {"death_by_horizon": death_outcome}
# the note of a descriptive estimate of the primary outcome (the forest's Cox hazard ratios of death by H between
# the route groups of cohort.exposure)
PRIMARY_COUNTERPART_NOTE = ("exploratory: the descriptive (route group) counterpart of the primary outcome, whose "
                            "primary estimate is the target trial's")


def primary_outcome(name: str, horizon: int) -> str:
    """The 0/1 outcome column ``analyses.comparison.primary_outcome`` names: ``death_by_horizon`` is
    death by day H (``death_<H>d``, H = ``cohort.follow_up_days``)."""
    if name not in PRIMARY_OUTCOMES:
        raise ValueError(f"analyses.comparison.primary_outcome: {name!r} is not one of {sorted(PRIMARY_OUTCOMES)}")
    return PRIMARY_OUTCOMES[name](horizon)


OUTCOME_LABELS = {
    "response_day7": "Response at day 7",
    "ae_grade3plus": "Any adverse event grade \u22653",
    "fever_resolution": "Fever resolution",
    "death": "Death",
}
TERM_LABELS = {
    "alt_ast_increased": "ALT/AST increased", "bacterial_infection": "Bacterial infection",
    "fungal_infection": "Fungal infection", "viral_infection": "Viral infection",
    "injection_site_reaction": "Injection-site reaction", "infusion_reaction": "Infusion reaction",
    "neutropenia": "Neutropenia", "thrombocytopenia": "Thrombocytopenia",
    "dress_eosinophilia": "DRESS / eosinophilia", "anaphylaxis": "Anaphylaxis", "other": "Other",
    "any_infection": "Any infection", "any": "Any adverse event",
    "any_grade_3plus": "Any adverse event grade \u22653",
}
TEST_LABELS = {
    "ferritin": "Ferritin", "crp": "CRP", "platelets": "Platelets", "alt": "ALT", "ast": "AST",
    "hb": "Haemoglobin", "wbc": "White cells", "neutrophils": "Neutrophils", "fibrinogen": "Fibrinogen",
    "triglycerides": "Triglycerides", "bilirubin": "Bilirubin", "creatinine": "Creatinine", "scd25": "sCD25",
}
VAR_LABELS = {
    "patients": "Patients",
    "age_years": "Age, years",
    "weight_kg": "Weight, kg",
    "hscore": "HScore",
    "hlh2004_count": "HLH-2004 criteria met",
    "ferritin_baseline": "Ferritin, ug/L",
    "crp_baseline": "CRP, mg/L",
    "platelets_baseline": "Platelets, 10^9/L",
    "alt_baseline": "ALT, U/L",
    "days_admission_to_anakinra": "Days from admission to the first dose",
    "max_daily_dose_mg": "Maximum daily dose, mg",
    "max_dose_mg_per_kg_day": "Maximum daily dose, mg/kg/day",
    "centre": "Centre",
    "age_group": "Age group",
    "sex": "Sex",
    "trigger_category": "Trigger",
    "icu": "Intensive care",
    "oedema": "Subcutaneous oedema",
    "cns": "CNS involvement",
    "mas2016": "MAS 2016 classification (sJIA)",
    "route_group": "Route group",
    "first_route": "Route of the first dose",
    "route_switch": "Both routes used (switch)",
    "days_on_anakinra": "Duration, days (first start to last stop)",
    "regimens": "Regimens per patient",
    "first_dose_iv": "First dose intravenous",
    "continuous_infusion": "Continuous IV infusion at any time",
}


def outcome_label(outcome: str, overrides: Mapping | None = None) -> str:
    """``overrides`` (config ``labels:``) first, then :data:`OUTCOME_LABELS` and
    :data:`TERM_LABELS`; ``death_<n>d`` -> "Death by day n", ``hepatotox_<k>xuln`` ->
    "ALT or AST >k×ULN", else the name with spaces."""
    outcome = str(outcome)
    if overrides and outcome in overrides:
        return str(overrides[outcome])
    if outcome in OUTCOME_LABELS:
        return OUTCOME_LABELS[outcome]
    if outcome in TERM_LABELS:
        return TERM_LABELS[outcome]
    if m := DEATH.match(outcome):
        return death_label(int(m.group(1)))
    if m := HEPATOTOX.match(outcome):
        return f"ALT or AST >{m.group(1)}\u00d7ULN"
    return outcome.replace("_", " ").capitalize()


def var_label(name: str, overrides: Mapping | None = None) -> str:
    if overrides and name in overrides:
        return str(overrides[name])
    return VAR_LABELS.get(name, name.replace("_", " ").capitalize())


def term_label(term: str, overrides: Mapping | None = None) -> str:
    """``age_group[child]`` -> ``Age group: child``; ``route_group[IV]`` -> ``IV vs SC``."""
    if term == ROUTE_TERM:
        return "IV vs SC"
    m = re.match(r"^(\w+)\[(.+)\]$", str(term))
    return f"{var_label(m.group(1), overrides)}: {m.group(2)}" if m else var_label(str(term), overrides)


def lab_label(test: str) -> str:
    return TEST_LABELS.get(test, test)


# --------------------------------------------------------------------------- target-trial emulation
WEIGHTING_LABELS = {
    "iptw": "Inverse probability of treatment (IPTW)",
    "overlap": "Overlap weights",
    "censoring": "Inverse probability of censoring (IPCW)",
}
MEASURE_LABELS = {
    "risk_iv": "Risk, IV strategy", "risk_sc": "Risk, SC strategy",
    "risk_difference": "Risk difference IV \u2212 SC, percentage points", "risk_ratio": "Risk ratio IV / SC",
    "hazard_ratio": "Hazard ratio IV vs SC", "odds_ratio": "Odds ratio IV vs SC",
}
SENSITIVITY_LABELS = {
    "primary": "Primary (clone-censor-weight)",
    "naive_ever_iv": "Ever IV vs SC (immortal time)",
    "first_route": "Route of the first dose",
    "landmark": "Landmark at the end of grace",
    "time_varying_cox": "IV time-varying (Cox)",
    "overlap_weights": "Overlap weights",
    "truncated_weights": "Truncated weights",
    "complete_case": "Complete cases (no imputation)",
    "multiple_imputation": "Multiple imputation of the adjustment set",
}


def sensitivity_label(analysis: str, overrides: Mapping | None = None) -> str:
    """``overrides`` (config ``labels:``) first, then :data:`SENSITIVITY_LABELS`;
    ``leave_out_<centre>`` -> "Leaving out centre <centre>"."""
    analysis = str(analysis)
    if overrides and analysis in overrides:
        return str(overrides[analysis])
    if analysis in SENSITIVITY_LABELS:
        return SENSITIVITY_LABELS[analysis]
    if analysis.startswith("leave_out_"):
        return f"Leaving out centre {analysis[len('leave_out_'):]}"
    return analysis.replace("_", " ").capitalize()


def covariate_label(name: str, overrides: Mapping | None = None) -> str:
    """A covariate of the balance table: a variable (``cns`` -> ``CNS involvement``), a factor level
    expanded as ``<variable>_<level>`` (``age_group_child`` -> ``Age group: child``), or a missing
    indicator ``<variable>:<NA>`` (-> ``Ferritin, ug/L: missing``)."""
    name = str(name)
    if overrides and name in overrides:
        return str(overrides[name])
    if name.endswith(":<NA>"):
        return f"{covariate_label(name[:-len(':<NA>')], overrides)}: missing"
    if name in VAR_LABELS:
        return var_label(name, overrides)
    known = sorted((v for v in VAR_LABELS if name.startswith(v + "_")), key=len, reverse=True)
    if known:
        return f"{var_label(known[0], overrides)}: {name[len(known[0]) + 1:]}"
    return var_label(name, overrides)
