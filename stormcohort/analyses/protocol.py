"""The target trial that the IV-vs-SC comparison emulates, stated from the config (Hernan and
Robins' layout: component, target trial, emulation here): ``tables/protocol.csv`` and the first
table of the report's comparative-effectiveness section."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from stormcohort.labels import outcome_label, var_label

PROTOCOL_COLUMNS = ["component", "target_trial", "emulation"]
# Variables of the analysis dataset a reader may take for baseline ones but which are not.
NOT_BASELINE = {"icu": "ICU admission is recorded for the whole episode, undated: it may follow the first dose"}


def _name(variable: str) -> str:
    """``Ferritin, ug/L`` -> ``ferritin``: a variable's label without its unit, for running text."""
    label = var_label(variable).split(",")[0]
    return label if label[:2].isupper() or label.startswith("HScore") else label[0].lower() + label[1:]


def _list(items) -> str:
    items = list(items)
    return ", ".join(items[:-1]) + (" and " if len(items) > 1 else "") + items[-1] if items else "none"


def protocol_table(cohort: Mapping, comparison: Mapping) -> pd.DataFrame:
    """The protocol's components, as the config states them."""
    g = comparison["grace_days"]
    h = cohort["follow_up_days"]
    days = sorted({*comparison["risk_days"], h})
    iv = f"start intravenous anakinra within {g} day(s) of the first dose" if g else "first dose intravenous"
    sc = f"stay on subcutaneous anakinra (no intravenous dose) through day {g}" if g else "first dose subcutaneous"
    secondary = _list(outcome_label(o).lower() for o in comparison["secondary_outcomes"])
    adjust = _list(_name(v) for v in comparison["adjust_for"])
    weights = ("stabilised inverse-probability-of-treatment weights (ATE)" if comparison["estimand"] == "ATE"
               else "overlap weights (ATO: the population in clinical equipoise)")
    rows = [
        ("Eligibility",
         "Patients with secondary HLH or MAS (HLH-2004, HScore or MAS-2016 definition) starting anakinra, "
         "not treated with anakinra before",
         f"The analysis cohort: first qualifying episode, study window {cohort['study_window']['start']} to "
         f"{cohort['study_window']['end']}, prevalent users excluded; the definition assessed on laboratory values "
         "from before the first dose"),
        ("Treatment strategies", f"IV: {iv}. SC: {sc}",
         "Each patient is cloned into both strategies at time zero; a clone is censored when its record deviates "
         f"from its strategy (the SC clone when IV starts by day {g}, the IV clone at day {g} without IV); "
         "deaths before then count in both"),
        ("Assignment", "Randomised, open label",
         f"Assumed exchangeable given {adjust}, all measured before the first dose; artificial censoring "
         "corrected by inverse-probability-of-censoring weights on the same variables. "
         + " ".join(f"{var_label(k)} not used: {v}." for k, v in NOT_BASELINE.items())),
        ("Time zero", "Randomisation, at the first anakinra dose",
         "The first anakinra dose (index date): eligibility met, strategies start and follow-up begins together"),
        ("Outcomes", f"Primary: death by day {h}. Secondary: {secondary}",
         "Death from the registry's outcome and date fields (a death without a date is censored at the last date "
         "known alive); secondary outcomes as defined in the methods"),
        ("Follow-up", f"From time zero to death, loss to follow-up or day {h}",
         f"To death, the last date the patient is known alive, day {h} or the extract date"),
        ("Causal contrast", "Per-protocol effect of the two strategies",
         f"Per-protocol analogue by clone-censor-weight: risks of death at days {_list(str(d) for d in days)}, their "
         "difference and ratio (IV vs SC)"),
        ("Analysis", "Comparison of risks between arms",
         f"Weighted Kaplan-Meier per arm; percentile bootstrap 95% intervals over patients "
         f"({comparison['bootstrap_replicates']} replicates, seed {comparison['bootstrap_seed']}); weighted Cox "
         f"hazard ratio for reference. Secondary outcomes by {weights} with robust (sandwich) variance"),
    ]
    return pd.DataFrame(rows, columns=PROTOCOL_COLUMNS)
