"""Small tables in the exact shape of the ``comparison`` rule's outputs (the contract of
tables/{protocol,balance,weights,overlap,effect,sensitivity,evalues}.csv and
models/comparison.json), for the figure and report tests. Numbers are made up."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd

NAN = np.nan

PROTOCOL = pd.DataFrame({
    "component": ["Eligibility", "Treatment strategies", "Assignment", "Time zero", "Outcomes", "Follow-up",
                  "Causal contrast", "Analysis"],
    "target_trial": ["sHLH/MAS starting anakinra", "IV: start intravenous anakinra within 2 day(s) of the first dose. "
                     "SC: stay on subcutaneous anakinra (no intravenous dose) through day 2", "Randomised, open label",
                     "Randomisation, at the first anakinra dose", "Primary: death by day 90", "To day 90",
                     "Per-protocol effect", "Comparison of risks"],
    "emulation": ["The analysis cohort", "Clones censored on deviation", "Assumed exchangeable given age group",
                  "The first anakinra dose", "Death from the registry", "To death or day 90",
                  "Clone-censor-weight", "Weighted Kaplan-Meier; 200 replicates, seed 20200601"],
})

BALANCE = pd.DataFrame({
    "weighting": ["iptw"] * 3 + ["overlap"] * 3,
    "covariate": ["age_group_child", "ferritin_baseline", "cns"] * 2,
    "type": ["binary", "continuous", "binary"] * 2,
    "diff_type": ["raw", "smd", "raw"] * 2,
    "mean_iv_unadj": [0.111, 12000.0, 0.222] * 2, "mean_sc_unadj": [0.25, 7000.0, 0.0714] * 2,
    "diff_unadj": [-0.139, 0.52, 0.151] * 2,
    "mean_iv_adj": [0.2, 9100.0, 0.14, 0.21, 9000.0, 0.15], "mean_sc_adj": [0.21, 8900.0, 0.12, 0.21, 9000.0, 0.15],
    "diff_adj": [-0.01, 0.03, 0.02, 0.0, 0.0, 0.0],
    "var_ratio_unadj": [NAN, 1.8, NAN] * 2, "var_ratio_adj": [NAN, 1.1, NAN, NAN, 1.05, NAN],
    "note": [NAN] * 6,
})

WEIGHTS = pd.DataFrame({
    "weighting": ["iptw", "iptw", "overlap", "overlap", "censoring", "censoring"],
    "group": ["IV", "SC"] * 3,
    "n": [18, 28, 18, 28, 46, 46], "ess": [12.34, 22.5, 14.2, 24.9, 30.1, 35.7],
    "mean": [1.02, 0.99, 0.4, 0.3, 1.3, 1.1], "min": [0.41, 0.55, 0.05, 0.02, 1.0, 1.0],
    "max": [11.7, 3.2, 0.9, 0.8, 4.1, 2.2], "n_above_10": [1, 0, 0, 0, 0, 0],
})

OVERLAP = pd.DataFrame({
    "group": ["IV", "SC"], "n": [18, 28], "ps_min": [0.08, 0.02], "ps_q1": [0.31, 0.12], "ps_median": [0.52, 0.25],
    "ps_q3": [0.71, 0.41], "ps_max": [0.97, 0.88], "n_equipoise": [9, 12], "share_equipoise": [0.5, 0.428571],
})

EFFECT = pd.DataFrame([
    # analysis, outcome, measure, day, estimate, lcl, ucl, p, n, events, note
    ("primary", "death_90d", "risk_iv", 30, 0.18, 0.05, 0.33, NAN, 46, 3, NAN),
    ("primary", "death_90d", "risk_sc", 30, 0.2, 0.08, 0.35, NAN, 46, 6, NAN),
    ("primary", "death_90d", "risk_iv", 90, 0.25, 0.12, 0.40, NAN, 46, 4, NAN),
    ("primary", "death_90d", "risk_sc", 90, 0.30, 0.15, 0.46, NAN, 46, 9, NAN),
    ("primary", "death_90d", "risk_difference", 90, -0.05, -0.20, 0.10, 0.52, 46, 13, NAN),
    ("primary", "death_90d", "risk_ratio", 90, 0.83, 0.40, 1.70, 0.52, 46, 13, NAN),
    ("primary", "death_90d", "hazard_ratio", NAN, 0.81, 0.35, 1.88, 0.62, 46, 13, NAN),
    ("primary", "response_day7", "odds_ratio", NAN, 1.4, 0.5, 3.9, 0.5, 40, 21, "3 not evaluable"),
    ("primary", "ae_grade3plus", "odds_ratio", NAN, NAN, NAN, NAN, NAN, 46, 0, "not estimable: no events"),
    ("naive_ever_iv", "death_90d", "hazard_ratio", NAN, 0.6, 0.25, 1.4, 0.24, 46, 13, NAN),
    ("leave_out_LDN", "death_90d", "hazard_ratio", NAN, 0.9, 0.3, 2.5, 0.8, 30, 8, NAN),
], columns=["analysis", "outcome", "measure", "day", "estimate", "lcl", "ucl", "p", "n", "events", "note"])

SENSITIVITY = pd.DataFrame([
    ("primary", "Primary analysis", "hazard_ratio", 0.81, 0.35, 1.88, 46, 13, NAN),
    ("primary", "Primary analysis", "risk_difference", -0.05, -0.20, 0.10, 46, 13, NAN),
    ("naive_ever_iv", "Ever IV", "hazard_ratio", 0.6, 0.25, 1.4, 46, 13, NAN),
    ("landmark", "Landmark", "hazard_ratio", 0.95, 0.03, 150.0, 44, 11, "wide"),
    ("leave_out_LDN", "Leaving out LDN", "hazard_ratio", 0.9, 0.3, 2.5, 30, 8, NAN),
    ("truncated_weights", "Truncated", "hazard_ratio", NAN, NAN, NAN, 46, 13, "not estimable: 2 reasons"),
], columns=["analysis", "label", "measure", "estimate", "lcl", "ucl", "n", "events", "note"])

EVALUES = pd.DataFrame([
    ("death_90d", "risk_ratio", 0.83, 0.40, 1.70, 1.70, 1.0, NAN),
    ("response_day7", "odds_ratio", 1.4, 0.5, 3.9, 1.65, 1.0, NAN),
], columns=["outcome", "measure", "estimate", "lcl", "ucl", "evalue_estimate", "evalue_ci", "note"])
MISSINGNESS = pd.DataFrame([
    ("IV", "none", 0, 16, 88.9, 0), ("IV", "platelets_baseline", 1, 2, 11.1, 1), ("SC", "none", 0, 28, 100.0, 0),
], columns=["route_group", "pattern", "n_missing", "n", "percent", "platelets_baseline"])

SETTINGS = {"grace_days": 2, "secondary_outcomes": ["death_30d", "response_day7", "ae_grade3plus"], "risk_days": [30],
            "estimand": "ATE", "adjust_for": ["age_group", "ferritin_baseline", "cns"],
            "reference_levels": {"age_group": "adult"}, "bootstrap_replicates": 200, "bootstrap_seed": 20200601,
            "truncate_percentiles": [1, 99], "conf_level": 0.95,
            "missing_data": {"primary": "multiple_imputation", "imputations": 20, "seed": 20200602,
                             "bootstrap_replicates": 10}}

MODEL = {
    "analysis": "comparison",
    "settings": SETTINGS,
    "primary": {"outcome": "death_90d", "day": 90, "risk_iv": 0.25, "risk_iv_lcl": 0.12, "risk_iv_ucl": 0.40,
                "risk_sc": 0.30, "risk_sc_lcl": 0.15, "risk_sc_ucl": 0.46, "risk_difference": -0.05,
                "rd_lcl": -0.20, "rd_ucl": 0.10, "risk_ratio": 0.83, "rr_lcl": 0.40, "rr_ucl": 1.70,
                "hazard_ratio": 0.81, "hr_lcl": 0.35, "hr_ucl": 1.88, "evalue_estimate": 1.70, "evalue_ci": 1.0,
                "n": 46, "estimable": True, "reason": None},
    "bootstrap": {"replicates": 200, "seed": 20200601, "failed": 0},
    "counts": {"patients": 46, "complete_cases": 43, "missing_by_variable": {"ferritin_baseline": 3, "cns": 0},
               "iv_by_grace": 16, "sc_through_grace": 27, "died_before_grace": 2},
    "positivity": {"share_equipoise": 0.4565, "ess_iv": 12.34, "ess_sc": 22.5, "max_weight": 11.7},
    "methods": {"propensity": "Propensity of IV by day G from ML logistic regression (Firth under separation)",
                "survival": "Weighted Kaplan-Meier of each strategy's clones"},
    "warnings": ["1 weight above 10"],
}


def not_estimable_model() -> dict:
    m = copy.deepcopy(MODEL)
    m["primary"] = {"outcome": "death_90d", "day": 90, "estimable": False, "n": 12,
                    "reason": "no patient started IV by day 2", **{k: None for k in (
                        "risk_iv", "risk_iv_lcl", "risk_iv_ucl", "risk_sc", "risk_sc_lcl", "risk_sc_ucl",
                        "risk_difference", "rd_lcl", "rd_ucl", "risk_ratio", "rr_lcl", "rr_ucl", "hazard_ratio",
                        "hr_lcl", "hr_ucl", "evalue_estimate", "evalue_ci")}}
    m["positivity"] = {"share_equipoise": None, "ess_iv": None, "ess_sc": None, "max_weight": None}
    return m


def imputed(primary: str = "multiple_imputation") -> tuple[dict, pd.DataFrame]:
    """The model and effect table when 3 patients' ferritin was imputed: the secondary outcomes' complete
    cases beside the pooled estimates (``primary``: which is primary, config missing_data.primary)."""
    m = copy.deepcopy(MODEL)
    m["settings"]["missing_data"]["primary"] = primary
    m["imputation"] = {"imputed_patients": 3, "imputations": 20, "seed": 20200602, "bootstrap_replicates": 10,
                       "predictors": ["_iv", "_event", "_hazard", "_y_death_30d", "_y_response_day7",
                                      "_na_response_day7"]}
    other = pd.DataFrame([
        ("complete_case", "response_day7", "risk_iv", NAN, 0.55, NAN, NAN, NAN, 16, 9, NAN),
        ("complete_case", "response_day7", "risk_sc", NAN, 0.45, NAN, NAN, NAN, 22, 10, NAN),
        ("complete_case", "response_day7", "odds_ratio", NAN, 1.5, 0.45, 4.8, 0.51, 38, 19, "HC0 sandwich"),
        ("complete_case", "death_90d", "hazard_ratio", NAN, 0.85, 0.36, 2.0, 0.7, 43, 12, NAN),
    ], columns=EFFECT.columns)
    effect = pd.concat([EFFECT, other], ignore_index=True)
    if primary == "complete_case":  # the same rows, the labels swapped
        effect["analysis"] = effect["analysis"].replace({"primary": "multiple_imputation",
                                                         "complete_case": "primary"})
    return m, effect


def empty(table: pd.DataFrame) -> pd.DataFrame:
    """The table as a header-only CSV reads back: no rows, every column object."""
    return pd.DataFrame({c: pd.Series(dtype=object) for c in table.columns})


def curves() -> pd.DataFrame:
    """Weighted KM step functions per strategy."""
    t = np.array([1.0, 3.0, 8.0, 20.0, 45.0, 70.0])
    return pd.DataFrame({"strategy": ["IV"] * 6 + ["SC"] * 6, "time": np.concatenate([t, t + 0.5]),
                         "surv": [0.97, 0.93, 0.9, 0.84, 0.8, 0.75, 0.96, 0.9, 0.85, 0.79, 0.74, 0.7]})


def scores(n_iv: int = 18, n_sc: int = 28, seed: int = 3) -> pd.DataFrame:
    r = np.random.default_rng(seed)
    ps = np.concatenate([r.beta(4, 3, n_iv), r.beta(2, 5, n_sc)])
    return pd.DataFrame({"group": ["IV"] * n_iv + ["SC"] * n_sc, "ps": ps,
                         "preference": 1 / (1 + np.exp(-(np.log(ps / (1 - ps)) - np.log(18 / 28))))})
