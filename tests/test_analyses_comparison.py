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


MI = {"primary": "multiple_imputation", "imputations": 3, "seed": 11, "bootstrap_replicates": 20}


def test_an_imputed_sets_variance_is_that_of_its_bootstrap_replicates():
    """Within an imputation: a risk's, the risk difference's and the log risk ratio's variance is the
    variance of the set's bootstrap replicates; the log hazard ratio's its robust se squared."""
    from stormcohort.analyses.comparison import _analysis_frame, _primary_draw
    from stormcohort.stats import clone_censor_weight

    cfg = STUDY["analyses"]["comparison"]
    frame, names, _ = _analysis_frame(cohort()["dataset"], cfg["adjust_for"], cfg["reference_levels"], "death_90d")
    fit = clone_censor_weight(frame, 2, names, days=[30, 90], replicates=25, seed=3)
    draw = _primary_draw(fit, "death_90d", [30, 90], len(frame))
    boot = fit.replicate_risks
    assert len(boot) >= 20
    for j, day in enumerate((30, 90)):
        iv, sc = boot[:, 0, j], boot[:, 1, j]
        assert draw[("risk_iv", day)][1] == pytest.approx(np.var(iv, ddof=1), rel=1e-12)
        assert draw[("risk_difference", day)][1] == pytest.approx(np.var(iv - sc, ddof=1), rel=1e-12)
        with np.errstate(divide="ignore"):
            log_rr = np.log(iv / sc)
        if np.isfinite(log_rr).all():
            assert draw[("risk_ratio", day)][1] == pytest.approx(np.var(log_rr, ddof=1), rel=1e-12)
        else:  # a replicate without a death by the day in an arm: no log ratio, so no variance for the set
            assert np.isnan(draw[("risk_ratio", day)][1])
        assert draw[("risk_ratio", day)][0] == pytest.approx(np.log(fit.contrasts.set_index("day").loc[day, "rr"]))
    assert draw[("hazard_ratio", pd.NA)][1] == pytest.approx(fit.cox.iloc[0]["se"] ** 2, rel=1e-12)


def incomplete_cohort():
    """The cohort with six baseline platelet counts missing and death by day 30 not known for five patients
    (an outcome that is itself missing: a predictor of the imputations only as its own level)."""
    t = cohort()
    d = t["dataset"]
    d.loc[d.index[::6], "platelets_baseline"] = np.nan
    d.loc[d.index[1::7], "death_30d"] = np.nan
    return t


def hand_pooled(t, cfg) -> dict:
    """The secondary estimates pooled by hand: the adjustment set imputed with the documented predictors,
    then in each completed set the landmark population, the propensity on the raw covariates (another
    coding of the same model), stabilised IPT weights, the weighted risks with their HC0 variance and the
    weighted linear and logistic fits, pooled by pool_scalar. ``{(outcome, measure): PooledScalar}``."""
    from stormcohort.analyses.binary import binary_outcomes
    from stormcohort.stats import balancing_weights, nelson_aalen, pool_scalar, propensity, weighted_glm
    from stormcohort.stats.impute import impute
    from stormcohort.stats.target_trial import landmark

    d, g, adjust = t["dataset"], cfg["grace_days"], cfg["adjust_for"]
    outcomes = binary_outcomes(d, t["labs"], t["adverse_events"], hep_patients(d, t["labs"]),
                               STUDY["analyses"]["binary"])[0].set_index("patient_key")
    y = {o: d["patient_key"].map(outcomes[o]).astype(float) for o in cfg["secondary_outcomes"]}
    extra = {}
    for o, v in y.items():
        extra[f"_y_{o}"] = v.fillna(0)
        if v.isna().any():
            extra[f"_na_{o}"] = v.isna().astype(float)
    base = d.assign(_iv=d["iv_start_day"].le(g).astype(float), _event=d["death_90d"].astype(float),
                    _hazard=nelson_aalen(d["time_to_death_days"], d["death_90d"]), **extra)
    mi = cfg["missing_data"]
    completed = impute(base, adjust, mi["imputations"], mi["seed"], predictors=["_iv", "_event", "_hazard", *extra])
    draws = {}
    for _, one in completed.groupby("imputation"):
        lm = landmark(one, g, time="time_to_death_days", event="death_90d", iv_start="iv_start_day")
        ps = propensity(lm, "iv", adjust)
        lm = lm.assign(w=balancing_weights(ps.treat, ps.ps, "ATE", stabilize=True))
        for o in cfg["secondary_outcomes"]:
            s = lm.assign(y=lm["patient_key"].map(outcomes[o]).astype(float)).dropna(subset=["y"])
            for arm, measure in ((1, "risk_iv"), (0, "risk_sc")):
                a = s[s["iv"].eq(arm)]
                risk = np.average(a["y"], weights=a["w"])
                draws.setdefault((o, measure), []).append((risk, (a["w"] ** 2 * (a["y"] - risk) ** 2).sum()
                                                           / a["w"].sum() ** 2, len(a), 1))
            for measure, family in (("risk_difference", "gaussian"), ("odds_ratio", "binomial")):
                fit = weighted_glm(s, "y", "iv", "w", family=family)
                draws.setdefault((o, measure), []).append((fit.estimate, fit.se**2, len(s), 2))
    # Barnard-Rubin df on n - k: the arm's patients less 1 (a risk), the model's less 2
    return {key: pool_scalar(*np.array(v)[:, :2].T, v[0][2], v[0][3], exponentiate=key[1] == "odds_ratio")
            for key, v in draws.items()}


def test_secondary_outcomes_are_pooled_over_the_primary_imputations_beside_their_complete_cases():
    """With missing adjustment values each secondary outcome's risks, risk difference and odds ratio are
    estimated in every completed data set and pooled by Rubin's rules (primary, as configured), equal to a
    pool by hand of fits on impute's output; the complete cases stay beside them; swapping
    missing_data.primary swaps only the labels; the seeds make the tables byte-identical."""
    t = incomplete_cohort()
    a, b = run(t, missing_data=MI), run(t, missing_data=MI)
    assert csv(a.tables["effect"]) == csv(b.tables["effect"]) and csv(a.tables["evalues"]) == csv(b.tables["evalues"])
    e = a.tables["effect"]
    secondary = STUDY["analyses"]["comparison"]["secondary_outcomes"]
    measures = {"risk_iv", "risk_sc", "risk_difference", "odds_ratio"}
    pooled, cc = (e[e["analysis"].eq(x) & e["outcome"].isin(secondary)] for x in ("primary", "complete_case"))
    assert len(pooled) == len(cc) == 4 * len(secondary)
    assert set(zip(pooled["outcome"], pooled["measure"])) == {(o, m) for o in secondary for m in measures}
    assert set(zip(cc["outcome"], cc["measure"])) == {(o, m) for o in secondary for m in measures}
    assert pooled["note"].str.startswith("3 imputations, Rubin's rules: fraction of missing information").all()
    assert (pooled.groupby("outcome")["n"].max() > cc.groupby("outcome")["n"].max()).all()  # nobody left out
    # death by day 30 unknown for five patients: a level of its predictor, and not counted in its analysis
    assert a.model["imputation"]["predictors"] == ["_iv", "_event", "_hazard", "_y_death_30d", "_na_death_30d",
                                                   "_y_response_day7", "_y_ae_grade3plus"]
    cfg = dict(STUDY["analyses"]["comparison"], missing_data=MI)
    for (outcome, measure), p in hand_pooled(t, cfg).items():
        row = pooled[pooled["outcome"].eq(outcome) & pooled["measure"].eq(measure)].iloc[0]
        want = (p.ratio, p.ratio_lcl, p.ratio_ucl) if measure == "odds_ratio" else (p.qbar, p.lcl, p.ucl)
        if measure.startswith("risk_"):
            want = want if measure == "risk_difference" else np.clip(want, 0, 1)
        assert np.allclose(row[["estimate", "lcl", "ucl"]].astype(float), want, rtol=1e-6), (outcome, measure)
        assert f"fraction of missing information {p.fmi:.2f}" in row["note"]
    # the complete cases are the complete-case analysis's; swapping which is primary swaps the labels only
    swapped = run(t, missing_data=MI | {"primary": "complete_case"}).tables["effect"]
    for x, y in (("primary", "multiple_imputation"), ("complete_case", "primary")):
        assert csv(e[e["analysis"].eq(x)].drop(columns="analysis")) == csv(
            swapped[swapped["analysis"].eq(y)].drop(columns="analysis"))
    assert "complete_case" not in set(swapped["analysis"])
    # the E-values are the primary rows': the pooled odds ratios
    ev = a.tables["evalues"].set_index("outcome")
    ors = pooled[pooled["measure"].eq("odds_ratio")].set_index("outcome")["estimate"]
    assert np.allclose(ev.loc[secondary, "estimate"], ors[secondary])
    other = run(t, missing_data=MI | {"seed": 12}).tables["effect"]
    assert csv(other[other["analysis"].eq("primary")]) != csv(e[e["analysis"].eq("primary")])


def test_nothing_missing_means_no_imputed_rows():
    result = run(cohort(), missing_data=MI)
    assert not {"complete_case", "multiple_imputation"} & set(result.tables["effect"]["analysis"])
    assert result.model["imputation"]["imputed_patients"] == 0 and not result.model["imputation"]["predictors"]
    assert any("no adjustment variable is missing" in w for w in result.model["warnings"])


def test_an_outcome_without_events_in_an_arm_is_not_estimable_in_the_imputations_with_the_reason():
    """No severe adverse event among the patients on IV by day G: its odds ratio separates in every completed
    set (a row saying why, never an exception) and its IV risk is 0 in each, kept without an interval."""
    t = incomplete_cohort()
    d = t["dataset"]
    on_iv = d.loc[d["iv_start_day"].le(STUDY["analyses"]["comparison"]["grace_days"]), "patient_key"]
    t["adverse_events"] = t["adverse_events"][~t["adverse_events"]["patient_key"].isin(on_iv)]
    result = run(t, missing_data=MI, estimand="ATO")
    e = result.tables["effect"].query("analysis == 'primary' and outcome == 'ae_grade3plus'").set_index("measure")
    assert e.loc["odds_ratio", "note"].startswith("not estimable in 3 of 3 imputations: separation")
    assert np.isnan(e.loc["odds_ratio", "estimate"])
    assert e.loc["risk_iv", "estimate"] == 0 and e.loc["risk_iv", "events"] == 0
    assert np.isnan(e.loc["risk_iv", "lcl"]) and "zero variance" in e.loc["risk_iv", "note"]
    assert e.loc["risk_difference", "note"].startswith("3 imputations, Rubin's rules")
    ev = result.tables["evalues"].set_index("outcome")
    assert ev.loc["ae_grade3plus", "note"].startswith("not estimable")


def test_the_bootstrap_inside_the_imputations_is_configured():
    """missing_data.bootstrap_replicates: 10 by default (with 20 imputations, as many replicates in all as
    the complete-case bootstrap's 200), at least 2 (a variance needs two)."""
    import jsonschema

    filled = fill_defaults({}, config_schema()["properties"]["analyses"]["properties"]["comparison"])
    mi = filled["missing_data"]
    assert mi["bootstrap_replicates"] * mi["imputations"] == 200 == filled["bootstrap_replicates"]
    assert STUDY["analyses"]["comparison"]["missing_data"]["bootstrap_replicates"] == 10
    cfg = yaml.safe_load(open("config/config.yaml"))
    cfg["analyses"]["comparison"]["missing_data"]["bootstrap_replicates"] = 1
    with pytest.raises(jsonschema.ValidationError):
        fill_defaults(cfg, config_schema())
