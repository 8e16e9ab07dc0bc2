"""The target-trial analysis on small cohorts in the shape of the cohort outputs: its tables keep
their contract, the bootstrap seed makes them byte-identical, and an empty strategy is "not
estimable" with the reason, never a crash."""

import io

import numpy as np
import pandas as pd
import pytest
import yaml

from stormcohort.analyses.comparison import (
    BALANCE_COLUMNS,
    EFFECT_COLUMNS,
    EVALUE_COLUMNS,
    OVERLAP_COLUMNS,
    SENSITIVITY_COLUMNS,
    WEIGHTS_COLUMNS,
    comparison_analysis,
)
from tests.config_defaults import config_schema, fill_defaults
from tests.test_analyses_binary import cohort_tables, hep_patients

STUDY = fill_defaults(yaml.safe_load(open("config/config.yaml")), config_schema())


def cohort(n_iv=14, n_sc=22, seed=3, switch_days=(0, 1, 2, 4)):
    """A random cohort: IV patients start IV on one of ``switch_days``; baseline HScore and platelets."""
    t = cohort_tables(n_iv, n_sc, seed)
    d = t["dataset"]
    r = np.random.default_rng(seed)
    iv = d["route_group"].eq("IV")
    d["iv_start_day"] = np.where(iv, r.choice(switch_days, len(d)), np.nan)
    d["iv_start_day"] = d["iv_start_day"].clip(upper=d["time_to_death_days"])
    d["hscore"] = r.normal(230, 30, len(d)).round()
    d["platelets_baseline"] = r.lognormal(4, 0.5, len(d)).round()
    return t


def run(t, **comparison):
    cfg = dict(STUDY["analyses"]["comparison"], bootstrap_replicates=50, **comparison)
    return comparison_analysis(t["dataset"], t["labs"], t["adverse_events"], hep_patients(t["dataset"], t["labs"]),
                               STUDY["cohort"], STUDY["analyses"]["binary"], cfg, synthetic=True)


def csv(frame: pd.DataFrame) -> str:
    out = io.StringIO()
    frame.to_csv(out, index=False)
    return out.getvalue()


def test_tables_keep_their_contract_and_the_seed_makes_them_byte_identical():
    t = cohort()
    a, b = run(t), run(t)
    columns = {"balance": BALANCE_COLUMNS, "weights": WEIGHTS_COLUMNS, "overlap": OVERLAP_COLUMNS,
               "effect": EFFECT_COLUMNS, "sensitivity": SENSITIVITY_COLUMNS, "evalues": EVALUE_COLUMNS}
    for name, cols in columns.items():
        assert list(a.tables[name].columns) == cols, name
        assert csv(a.tables[name]) == csv(b.tables[name]), name
    effect = a.tables["effect"]
    primary = effect[effect["analysis"].eq("primary") & effect["outcome"].eq("death_90d")]
    assert set(primary["measure"]) == {"risk_iv", "risk_sc", "risk_difference", "risk_ratio", "hazard_ratio"}
    assert set(primary["day"].dropna()) == {30, 90}
    assert {"naive_ever_iv", "first_route", "landmark", "time_varying_cox", "overlap_weights", "truncated_weights",
            "leave_out_BHM", "leave_out_LDN", "leave_out_SHF"} <= set(effect["analysis"])
    assert set(effect.loc[effect["analysis"].eq("primary"), "outcome"]) == {
        "death_90d", "death_30d", "response_day7", "ae_grade3plus"}
    assert a.model["primary"]["estimable"] and np.isfinite(a.model["primary"]["risk_difference"])
    assert a.model["bootstrap"]["seed"] == STUDY["analyses"]["comparison"]["bootstrap_seed"]
    c = run(t, bootstrap_seed=1)
    assert csv(c.tables["effect"]) != csv(a.tables["effect"])  # the seed is what makes them identical


def test_overlap_weights_balance_every_covariate_exactly():
    balance = run(cohort()).tables["balance"]
    overlap = balance[balance["weighting"].eq("overlap")]
    assert len(overlap) and np.allclose(overlap["mean_iv_adj"], overlap["mean_sc_adj"], atol=1e-8)


def test_an_empty_strategy_is_not_estimable_with_the_reason():
    t = cohort()
    t["dataset"]["iv_start_day"] = np.nan
    t["dataset"]["route_group"] = "SC"
    t["dataset"].loc[t["dataset"].index[:3], "route_group"] = "IV"  # ever IV, but after day 90: no IV by G
    result = run(t)
    assert not result.model["primary"]["estimable"]
    assert "no patient started IV" in result.model["primary"]["reason"]
    primary = result.tables["effect"].query("analysis == 'primary' and outcome == 'death_90d'")
    assert primary["note"].str.startswith("not estimable").all()
    assert result.tables["evalues"]["note"].str.startswith("not estimable").all()


@pytest.mark.parametrize("variable", ["icu", "route_switch", "days_on_anakinra"])
def test_the_adjustment_set_holds_only_what_precedes_time_zero(variable):
    import jsonschema

    cfg = yaml.safe_load(open("config/config.yaml"))
    cfg["analyses"]["comparison"]["adjust_for"] = ["age_group", variable]
    with pytest.raises(jsonschema.ValidationError):
        fill_defaults(cfg, config_schema())


def test_missing_adjustment_values_are_imputed_and_pooled_beside_the_complete_cases():
    """Six patients without a baseline platelet count: the primary estimate comes from 5 imputations
    pooled by Rubin's rules (config missing_data.primary), the complete cases are shown as such, and
    the missingness pattern is counted by route. The imputation seed makes it byte-identical."""
    t = cohort()
    t["dataset"].loc[t["dataset"].index[::6], "platelets_baseline"] = np.nan
    mi = {"primary": "multiple_imputation", "imputations": 5, "seed": 7, "bootstrap_replicates": 20}
    a, b = run(t, missing_data=mi), run(t, missing_data=mi)
    assert csv(a.tables["effect"]) == csv(b.tables["effect"])
    e = a.tables["effect"].query("outcome == 'death_90d'")
    primary, cc = e[e["analysis"].eq("primary")], e[e["analysis"].eq("complete_case")]
    assert set(primary["measure"]) == set(cc["measure"]) >= {"risk_difference", "hazard_ratio"}
    pooled = primary["note"].str.contains("5 imputations, Rubin's rules")
    assert pooled.sum() >= 7 and primary.loc[~pooled, "note"].str.startswith("not estimable").all()
    risks = primary[primary["measure"].isin(["risk_iv", "risk_sc"])]
    assert risks[["lcl", "ucl"]].stack().between(0, 1).all()
    assert (primary["n"] == len(t["dataset"])).all() and (cc["n"] < len(t["dataset"])).all()
    pattern = a.tables["missingness"]
    assert pattern.loc[pattern["pattern"].eq("platelets_baseline"), "n"].sum() == 6
    swapped = run(t, missing_data=mi | {"primary": "complete_case"}).tables["effect"]
    assert "multiple_imputation" in set(swapped["analysis"]) and "complete_case" not in set(swapped["analysis"])
