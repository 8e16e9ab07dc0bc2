"""Binary outcomes: definitions on hand-built patients, counts, Firth/ML tables and their edge cases.

``cohort_tables`` builds the cohort outputs (analysis dataset + long tables, as
``stormcohort.cohort`` writes them) for tests of the other outcome analyses too.
"""

from __future__ import annotations

import json

import jsonschema
import numpy as np
import pandas as pd
import pytest

from stormcohort.analyses.binary import (
    LOGISTIC_COLUMNS,
    ROUTE_TERM,
    binary_analysis,
    binary_outcomes,
    fell_by,
    jsonable,
    logistic_models,
    response_components,
)
from stormcohort.analyses.common import COUNT_COLUMNS, outcome_counts
from stormcohort.analyses.hepatotoxicity import hepatotoxicity, hepatotoxicity_analysis
from stormcohort.cohort import dataset_columns
from tests.config_defaults import schema_defaults

DATASET_COLUMNS = dataset_columns(90)
# the centres' upper limits of normal (injected into analyses.hepatotoxicity.uln by the workflow)
ULN = {"LDN": {"alt": 40, "ast": 40}, "SHF": {"alt": 41, "ast": 40}, "BHM": {"alt": 45, "ast": 50}}


def settings(given: dict | None = None) -> dict:
    """``analyses.binary``: ``given`` and the schema's defaults."""
    return schema_defaults("binary", **(given or {}))


def hepatotoxicity_settings(given: dict | None = None) -> dict:
    return schema_defaults("hepatotoxicity", uln=ULN, **(given or {}))


BASELINE_RULE = {"window_days": 7, "pick": "nearest", "same_day": "before_dose"}  # config cohort.baseline


def hep_patients(dataset: pd.DataFrame, labs: pd.DataFrame, anakinra: pd.DataFrame | None = None) -> pd.DataFrame:
    """The hepatotoxicity rule's patient table (without ``anakinra``: every first dose date-only, on day 0)."""
    ana = pd.DataFrame(columns=ANAKINRA_COLUMNS) if anakinra is None else anakinra
    return hepatotoxicity_analysis(dataset, labs, hepatotoxicity_settings(), anakinra=ana,
                                   baseline=BASELINE_RULE).tables["patients"]


def run_binary(dataset, labs, adverse_events, cfg: dict | None = None):
    """counts, logistic table and model of the binary_outcomes rule."""
    r = binary_analysis(dataset, labs, adverse_events, hep_patients(dataset, labs), settings(cfg))
    return r.tables["counts"], r.tables["logistic"], r.model

LABS_COLUMNS = ["patient_key", "route_group", "centre", "test", "value", "qualifier", "unit", "day"]
AE_COLUMNS = ["patient_key", "route_group", "centre", "term", "term_text", "grade", "serious", "day"]
ANAKINRA_COLUMNS = ["patient_key", "route_group", "centre", "route", "continuous", "dose_mg", "frequency",
                    "rate_mg_per_h", "daily_dose_mg", "day_start", "day_stop"]


def patient_row(key, route_group, **kw) -> dict:
    row = {c: np.nan for c in DATASET_COLUMNS}
    row.update(patient_key=key, centre="LDN", route_group=route_group, first_route=route_group, age_years=50.0,
               age_group="adult", sex="F", trigger_category="infection", icu=0, ferritin_baseline=10000.0,
               crp_baseline=200.0, platelets_baseline=50.0, alt_baseline=60.0, days_admission_to_anakinra=1.0,
               days_on_anakinra=10.0, route_switch=0, length_of_stay_days=15.0, death_90d=0,
               time_to_death_days=90.0, death_30d=0, death_date_unknown=0, fever_outcome=1, time_to_fever_days=3.0,
               fever_not_evaluable="")
    row.update(kw)
    return row


def cohort_tables(n_iv=12, n_sc=18, seed=1) -> dict[str, pd.DataFrame]:
    """A small random cohort in the shape of the cohort outputs (deterministic for a seed)."""
    r = np.random.default_rng(seed)
    rows, labs, aes, doses = [], [], [], []
    for i in range(n_iv + n_sc):
        group = "IV" if i < n_iv else "SC"
        key = f"P{i:012x}"
        centre = ["LDN", "SHF", "BHM"][i % 3]
        died = r.random() < 0.25
        t_death = float(r.integers(3, 60)) if died else 90.0
        rows.append(patient_row(key, group, centre=centre, age_group="child" if r.random() < 0.3 else "adult",
                                icu=int(r.random() < 0.4), death_90d=int(died), time_to_death_days=t_death,
                                death_30d=int(died and t_death <= 30), fever_outcome=2 if died else 1,
                                time_to_fever_days=t_death if died else float(r.integers(1, 12))))
        base = {"ferritin": 10000.0, "crp": 200.0, "platelets": 50.0, "alt": 60.0, "ast": 70.0}
        level = {test: r.normal(0, 0.5) for test in base}  # the patient's own level and slope
        speed = {test: r.normal(0, 0.04) for test in base}
        for day in (0, 1, 2, 3, 5, 7, 10, 14):
            if day > t_death:
                break
            for test, b in base.items():
                slope = {"ferritin": -0.2, "crp": -0.3, "platelets": 0.15, "alt": -0.02, "ast": -0.03}[test]
                value = b * np.exp(level[test] + (slope + speed[test]) * day + r.normal(0, 0.2))
                labs.append((key, group, centre, test, round(value, 1), None, "x", day + 0.3))
        stop = min(int(r.integers(4, 20)), int(t_death))
        if group == "IV" and r.random() < 0.5:  # SC then IV: a switcher
            doses.append((key, group, centre, "SC", False, 100.0, "OD", np.nan, 100.0, 0.0, 2.0))
            doses.append((key, group, centre, "IV", False, 100.0, "QDS", np.nan, 400.0, 3.0, float(max(stop, 3))))
        else:
            doses.append((key, group, centre, group, False, 100.0, "QDS", np.nan, 400.0, 0.0, float(stop)))
        for term in ("bacterial_infection", "alt_ast_increased", "injection_site_reaction"):
            if r.random() < 0.3:
                aes.append((key, group, centre, term, term, int(r.integers(1, 5)), False, float(r.integers(0, 10))))
    return {
        "dataset": pd.DataFrame(rows)[DATASET_COLUMNS],
        "labs": pd.DataFrame(labs, columns=LABS_COLUMNS),
        "adverse_events": pd.DataFrame(aes, columns=AE_COLUMNS),
        "anakinra": pd.DataFrame(doses, columns=ANAKINRA_COLUMNS),
    }


def empty_labs() -> pd.DataFrame:
    return pd.DataFrame(columns=LABS_COLUMNS)


def empty_aes() -> pd.DataFrame:
    return pd.DataFrame(columns=AE_COLUMNS)


def lab(key, test, value, day, centre="LDN", group="SC"):
    return (key, group, centre, test, value, None, "x", day)


# --------------------------------------------------------------------------- definitions


def test_response_components_hand_checked():
    ds = pd.DataFrame([
        patient_row("a", "SC", fever_outcome=1, time_to_fever_days=3),   # all met
        patient_row("b", "SC", fever_outcome=1, time_to_fever_days=8),   # fever late -> 0 whatever labs
        patient_row("c", "SC", fever_outcome=0, time_to_fever_days=4),   # censored early, labs met -> unknown
        patient_row("d", "SC", fever_outcome=2, time_to_fever_days=2),   # died febrile day 2, no labs -> 0
        patient_row("e", "SC", fever_outcome=1, time_to_fever_days=7),   # fever met, no CRP in window -> unknown
        patient_row("f", "SC", fever_outcome=1, time_to_fever_days=2),   # ferritin only fell 40% -> 0
        patient_row("g", "SC", fever_outcome=0, time_to_fever_days=30),  # still febrile when censored day 30 -> 0
    ])
    labs = pd.DataFrame([
        lab("a", "ferritin", 5000, 7.4), lab("a", "crp", 100, 7.4),       # exactly 50% falls count
        lab("b", "ferritin", 1000, 7.2), lab("b", "crp", 10, 7.2),
        lab("c", "ferritin", 1000, 6.5), lab("c", "crp", 10, 6.5),
        lab("e", "ferritin", 1000, 7.0), lab("e", "crp", 10, 10.0),       # CRP day 10: outside 5-9
        # f: day 6 and day 8 are equally near day 7: the earlier (day 6, 6000 = 40% fall) is used
        lab("f", "ferritin", 6000, 6.2), lab("f", "ferritin", 1000, 8.1), lab("f", "crp", 10, 7.5),
    ], columns=LABS_COLUMNS)
    comp = response_components(ds, labs, settings()).set_index("patient_key")
    assert comp["response_day7"].tolist() == [1, 0, pd.NA, 0, pd.NA, 0, 0]
    assert comp.loc["c", "afebrile"] is pd.NA and comp.loc["c", "ferritin_fall"] == 1
    assert comp.loc["e", "crp_fall"] is pd.NA and comp.loc["e", "ferritin_fall"] == 1
    assert comp.loc["f", "ferritin_fall"] == 0
    assert comp.loc["d", "ferritin_fall"] is pd.NA and comp.loc["d", "afebrile"] == 0


def test_afebrile_at_index_meets_the_fever_component_and_a_missing_date_is_unknown():
    """Afebrile before the first dose: no fever to resolve (met); no resolution date: unknown, never
    'still febrile' (a failure)."""
    na = {"fever_outcome": pd.NA, "time_to_fever_days": np.nan}
    ds = pd.DataFrame([patient_row("a", "SC", **na, fever_not_evaluable="afebrile_at_index"),
                       patient_row("b", "SC", **na, fever_not_evaluable="no_resolution_date")])
    labs = pd.DataFrame([lab(k, t, v, 7.0) for k in "ab" for t, v in (("ferritin", 1000), ("crp", 10))],
                        columns=LABS_COLUMNS)
    comp = response_components(ds, labs, settings()).set_index("patient_key")
    assert comp.loc["a", "afebrile"] == 1 and comp.loc["a", "response_day7"] == 1
    assert comp.loc["b", "afebrile"] is pd.NA and comp.loc["b", "response_day7"] is pd.NA


def test_a_censored_result_decides_a_fall_only_when_every_value_it_stands_for_does():
    """A 50% fall from baseline. ``>100000`` baseline and 40000 on day 7: a fall whatever the true
    baseline (met); 60000: a fall or not (unknown, never 'failed' as 100000 would make it). ``<5``
    on day 7 from 200: met. A ``<500`` baseline: 400 on day 7 is no 50% fall of any value below 500
    (failed), 100 may be one (unknown)."""
    fell = fell_by(pd.Series([100000.0, 100000, 200, 500, 500]), pd.Series([">", ">", "", "<", "<"]),
                   pd.Series([40000.0, 60000, 5, 400, 100]), pd.Series(["", "", "<", "", ""]), 0.5)
    assert fell.tolist() == [1, -1, 1, 0, -1]
    assert fell_by(pd.Series([500.0]), pd.Series(["<"]), pd.Series([300.0]), pd.Series([">"]), 0.5).tolist() == [0]
    assert fell_by(pd.Series([100.0]), pd.Series([""]), pd.Series([60.0]), pd.Series([">"]), 0.5).tolist() == [0]
    ds = pd.DataFrame([patient_row("a", "SC", ferritin_baseline=100000.0, ferritin_baseline_qualifier=">")])
    labs = pd.DataFrame([lab("a", "ferritin", 60000, 7.0), lab("a", "crp", 10, 7.0)], columns=LABS_COLUMNS)
    comp = response_components(ds, labs, settings())
    assert comp["ferritin_fall"].isna().all() and comp["response_day7"].isna().all()  # was a failure


def test_response_window_and_fall_are_configurable():
    ds = pd.DataFrame([patient_row("a", "SC", time_to_fever_days=3)])
    labs = pd.DataFrame([lab("a", "ferritin", 2000, 10.5), lab("a", "crp", 20, 10.5)], columns=LABS_COLUMNS)
    assert response_components(ds, labs, settings())["response_day7"].isna().all()  # day 10: outside 5-9
    cfg = settings({"response": {"window_days": [5, 11], "lab_falls": {"ferritin": 0.9}}})
    comp = response_components(ds, labs, cfg)
    assert "crp_fall" not in comp and comp["response_day7"].tolist() == [0]  # 80% fall < 90%


def test_hepatotoxicity_uses_each_centres_uln():
    ds = pd.DataFrame([patient_row(k, "SC") for k in "abcde"])
    labs = pd.DataFrame([
        lab("a", "alt", 130, 3.2, centre="LDN"),   # 130 / 40 = 3.25 > 3
        lab("b", "alt", 130, 3.2, centre="BHM"),   # 130 / 45 = 2.89
        lab("c", "ast", 260, 2.5, centre="BHM"),   # 260 / 50 = 5.2 > 5
        lab("d", "alt", 900, 0.4, centre="LDN"),   # day 0: before the window [1, 90]
        lab("e", "alt", 200, 5.0, centre="SHF"),   # 200 / 41 = 4.88
    ], columns=LABS_COLUMNS)
    hep = hepatotoxicity(ds, labs, hepatotoxicity_settings()).set_index("patient_key")
    assert hep.loc["a", "max_uln_ratio"] == pytest.approx(3.25)
    assert hep["hepatotox_3xuln"].tolist() == [1, 0, 1, pd.NA, 1]
    assert hep["hepatotox_5xuln"].tolist() == [0, 0, 1, pd.NA, 0]


def test_hepatotoxicity_unknown_centre_names_it():
    ds = pd.DataFrame([patient_row("a", "SC")])
    labs = pd.DataFrame([lab("a", "alt", 100, 2, centre="XYZ")], columns=LABS_COLUMNS)
    with pytest.raises(KeyError, match="XYZ"):
        hepatotoxicity(ds, labs, hepatotoxicity_settings())


def test_outcome_columns_and_counts_with_missing_death_30d():
    ds = pd.DataFrame([
        patient_row("a", "IV", death_30d=1), patient_row("b", "IV", death_30d=np.nan),
        patient_row("c", "SC", death_30d=0), patient_row("d", "SC", death_30d=1), patient_row("e", "SC"),
    ])
    aes = pd.DataFrame([
        ("a", "IV", "LDN", "neutropenia", "", 3, True, 4.0),
        ("c", "SC", "LDN", "other", "", 2, False, 4.0),
        ("d", "SC", "LDN", "other", "", 4, True, 95.0),      # after the window
        ("e", "SC", "LDN", "other", "", np.nan, False, 3.0),  # no grade: does not count
    ], columns=AE_COLUMNS)
    data, outcomes, details = binary_outcomes(ds, empty_labs(), aes, hep_patients(ds, empty_labs()), settings())
    assert outcomes == ["death_30d", "response_day7", "ae_grade3plus", "hepatotox_3xuln", "hepatotox_5xuln"]
    assert data["ae_grade3plus"].tolist() == [1, 0, 0, 0, 0]
    assert details["ae_with_missing_grade"] == 1
    counts = outcome_counts(data, outcomes)
    assert list(counts.columns) == COUNT_COLUMNS
    c = counts.set_index(["outcome", "group"])
    assert c.loc[("death_30d", "IV"), ["n", "events", "not_evaluable"]].tolist() == [1, 1, 1]
    assert c.loc[("death_30d", "SC"), ["n", "events", "not_evaluable"]].tolist() == [3, 1, 0]
    assert c.loc[("death_30d", "overall"), "percent"] == pytest.approx(50.0)
    # no labs at all: every patient not evaluable for hepatotoxicity, n = 0 and percent NA
    assert c.loc[("hepatotox_3xuln", "overall"), ["n", "not_evaluable"]].tolist() == [0, 5]
    assert np.isnan(c.loc[("hepatotox_3xuln", "overall"), "percent"])


# --------------------------------------------------------------------------- models


def two_by_two(a, b, c, d) -> pd.DataFrame:
    """IV: a events, b non-events; SC: c events, d non-events."""
    y = [1] * a + [0] * b + [1] * c + [0] * d
    g = ["IV"] * (a + b) + ["SC"] * (c + d)
    return pd.DataFrame({"patient_key": [f"p{i}" for i in range(len(y))], "route_group": g, "y": y,
                         "age_group": "adult", "icu": 0})


def route_row(table, model="unadjusted", method="firth", outcome="y"):
    t = table[(table["outcome"] == outcome) & (table["model"] == model) & (table["method"] == method)]
    return t.set_index("term").loc[ROUTE_TERM]


def test_firth_odds_ratio_on_a_two_by_two_table_adds_a_half_to_each_cell():
    # With one binary covariate the model is saturated and Firth's estimate is the OR of the
    # table with 1/2 added to each cell (Haldane-Anscombe); ML gives the plain OR.
    table, _ = logistic_models(two_by_two(6, 6, 4, 14), ["y"], [])
    firth = route_row(table)
    assert firth["or"] == pytest.approx((6.5 * 14.5) / (6.5 * 4.5), rel=1e-6)
    assert firth["coef"] == pytest.approx(np.log(firth["or"]))
    assert firth["or_lcl"] < firth["or"] < firth["or_ucl"]
    ml = route_row(table, method="ml")
    assert ml["or"] == pytest.approx((6 * 14) / (6 * 4), rel=1e-6)
    # Wald se of the log OR: sqrt(1/a + 1/b + 1/c + 1/d)
    assert ml["se"] == pytest.approx(np.sqrt(1 / 6 + 1 / 6 + 1 / 4 + 1 / 14), rel=1e-5)
    assert firth["n"] == 30 and firth["events"] == 10 and pd.isna(firth["note"])


def test_logistic_table_contract():
    t = cohort_tables()
    counts, table, model = run_binary(t["dataset"], t["labs"], t["adverse_events"])
    assert list(table.columns) == LOGISTIC_COLUMNS
    assert set(table["method"]) == {"firth", "ml"} and set(table["model"]) == {"unadjusted", "adjusted"}
    per_model = table.groupby(["outcome", "model", "method"])["term"].apply(list)
    assert len(per_model) == 5 * 2 * 2
    assert all(ROUTE_TERM in terms and terms[0] == "(Intercept)" for terms in per_model)
    adjusted = per_model.loc[("death_30d", "adjusted", "firth")]
    assert adjusted == ["(Intercept)", ROUTE_TERM, "age_group[child]", "icu"]
    est = table["coef"].notna()
    assert np.allclose(table.loc[est, "or"], np.exp(table.loc[est, "coef"]))
    assert list(counts.columns) == COUNT_COLUMNS and len(counts) == 5 * 3
    assert model["reference"] == {"route_group": "SC", "term": ROUTE_TERM}
    json.dumps(model, sort_keys=True, allow_nan=False)  # strictly valid JSON


def test_separation_firth_finite_ml_not_estimable():
    table, summary = logistic_models(two_by_two(0, 10, 5, 10), ["y"], [])
    firth, ml = route_row(table), route_row(table, method="ml")
    assert np.isfinite(firth["or"]) and firth["or"] < 1
    assert firth["or"] == pytest.approx((0.5 * 10.5) / (10.5 * 5.5), rel=1e-6)
    assert "separation: no events in the IV group" in firth["note"]
    assert np.isnan(ml["or"]) and ml["note"].startswith("not estimable: separation")
    assert summary["y"]["unadjusted"]["ml"]["estimable"] is False


@pytest.mark.parametrize("cells, reason", [
    ((0, 10, 0, 10), "no events among 20 evaluable patients"),
    ((10, 0, 10, 0), "every one of 20 evaluable patients had the outcome"),
    ((0, 0, 3, 10), "no evaluable patients in the IV group"),
])
def test_not_estimable_cases_give_a_reason(cells, reason):
    table, summary = logistic_models(two_by_two(*cells), ["y"], ["age_group", "icu"])
    assert len(table) == 2 * 2 * 2  # 2 models x 2 methods x (intercept, route)
    r = route_row(table, model="adjusted", method="ml")
    assert np.isnan(r["coef"]) and reason in r["note"]
    assert summary["y"]["adjusted"]["firth"] == {"estimable": False, "reason": reason}


def test_constant_covariate_dropped_with_a_note():
    table, summary = logistic_models(two_by_two(5, 7, 4, 14), ["y"], ["age_group", "icu"])
    r = route_row(table, model="adjusted")
    assert "covariate 'age_group' dropped" in r["note"] and "covariate 'icu' dropped" in r["note"]
    assert summary["y"]["adjusted"]["covariates"] == ["route_group"]
    assert r["or"] == pytest.approx(route_row(table)["or"])  # same model as unadjusted


def test_reference_level_is_configurable():
    d = two_by_two(6, 6, 4, 14)
    d["age_group"] = np.where(np.arange(len(d)) % 3 == 0, "child", "adult")
    table, _ = logistic_models(d, ["y"], ["age_group"], reference_levels={"age_group": "child"})
    assert "age_group[adult]" in set(table["term"])


def test_unknown_setting_names_the_key():
    with pytest.raises(jsonschema.ValidationError, match="covariatez"):
        settings({"covariatez": []})


def test_jsonable_rounds_and_makes_strict_json():
    out = jsonable({"b": np.float64(1 / 3), "a": [np.inf, np.nan, np.int64(2), pd.NA, (True,)]})
    assert out == {"b": 0.333333, "a": ["inf", None, 2, None, [True]]}
