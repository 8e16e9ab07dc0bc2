"""Safety: exposure days, route-specific rates, counts by grade, rate ratios, the swimmer plot,
and the outcome analyses on a cohort made by derive_cohort (the real long-table contract)."""

from __future__ import annotations

import json
from datetime import date

import jsonschema
import numpy as np
import pandas as pd
import pytest
import yaml

from stormcohort.analyses.binary import LOGISTIC_COLUMNS
from stormcohort.analyses.dictionary import undocumented
from stormcohort.analyses.safety import (
    EVENT_COLUMNS,
    FIRST_SEVERE_COLUMNS,
    RATE_COLUMNS,
    RATIO_COLUMNS,
    exposure,
    first_severe_event,
    merge_intervals,
    regimen_days,
    safety_analysis,
    swimmer_data,
)
from stormcohort.analyses.trajectories import TABLE_COLUMNS, trajectories_analysis
from stormcohort.cohort import derive_cohort
from stormcohort.figures import save
from stormcohort.plots.swimmer import lanes, swimmer_figure
from stormcohort.stats import clustered_rate_ratio, poisson_rate_ci
from tests.canonical_factory import World
from tests.config_defaults import schema_defaults
from tests.test_analyses_binary import (
    AE_COLUMNS,
    ANAKINRA_COLUMNS,
    LABS_COLUMNS,
    cohort_tables,
    empty_aes,
    hep_patients,
    patient_row,
    run_binary,
)


def settings(given: dict | None = None) -> dict:
    """``analyses.safety``: ``given`` and the schema's defaults."""
    return schema_defaults("safety", **(given or {}))


def safety(ds, ana, labs, aes, cfg: dict | None = None) -> dict:
    """The safety rule's tables, model, hepatotoxicity counts (from the model) and swimmer data."""
    s = settings(cfg)
    r = safety_analysis(ds, ana, aes, hep_patients(ds, labs), s, 90)
    swimmer = swimmer_data(ds, aes, exposure(ana, ds, int(s["event_lag_days"])), "death_90d")
    return {**r.tables, "model": r.model, "hepatotoxicity": pd.DataFrame(r.model["hepatotoxicity"]),
            "swimmer": swimmer, "result": r}


def dose(key, group, route, start, stop):
    return (key, group, "LDN", route, False, 100.0, "OD", np.nan, 100.0, start, stop)


def ae(key, group, term, grade, day):
    return (key, group, "LDN", term, term, grade, grade >= 3, day)


@pytest.fixture
def small():
    """s1: SC days 0-9 (two overlapping regimens). s2: SC days 0-4. i1: IV days 0-5.
    x1 (IV group): SC days 0-3 then IV days 4-9 (a switcher). Exposure by route group:
    SC 10 + 5 = 15 days, IV 6 + 10 = 16 days; by route given: SC 10 + 5 + 4 = 19, IV 6 + 6 = 12."""
    ds = pd.DataFrame([patient_row("s1", "SC"), patient_row("s2", "SC"), patient_row("i1", "IV"),
                       patient_row("x1", "IV")])
    ana = pd.DataFrame([
        dose("s1", "SC", "SC", 0.0, 6.0), dose("s1", "SC", "SC", 4.0, 9.0),
        dose("s2", "SC", "SC", 0.0, 4.0),
        dose("i1", "IV", "IV", 0.0, 5.0),
        dose("x1", "IV", "SC", 0.0, 3.0), dose("x1", "IV", "IV", 4.0, 9.0),
    ], columns=ANAKINRA_COLUMNS)
    aes = pd.DataFrame([
        ae("x1", "IV", "injection_site_reaction", 1, 2.0),   # on an SC day of an IV-group patient
        ae("s1", "SC", "injection_site_reaction", 2, 8.0),
        ae("s2", "SC", "injection_site_reaction", 1, 6.0),   # after SC ended: counts, not in the rate
        ae("i1", "IV", "infusion_reaction", 2, 1.0),
        ae("s1", "SC", "bacterial_infection", 3, 3.0),
        ae("s1", "SC", "bacterial_infection", 4, 5.0),       # same patient twice: 1 patient, 2 events
        ae("i1", "IV", "viral_infection", 3, 2.0),
        ae("x1", "IV", "neutropenia", 4, 30.0),              # after treatment: counts, not in rates
    ], columns=AE_COLUMNS)
    return ds, ana, aes


def test_merge_intervals_counts_overlaps_once():
    iv = pd.DataFrame({"k": ["a", "a", "a", "a", "b"], "s": [0, 2, 6, 20, 5], "e": [4, 3, 8, 21, 5]})
    m = merge_intervals(iv, ["k"])
    # [0,4] + [2,3] -> [0,4]; [6,8] not adjacent to 4 (day 5 uncovered); [20,21]; b: [5,5]
    assert m.values.tolist() == [["a", 0, 4], ["a", 6, 8], ["a", 20, 21], ["b", 5, 5]]
    adjacent = merge_intervals(pd.DataFrame({"k": ["a", "a"], "s": [0, 5], "e": [4, 7]}), ["k"])
    assert adjacent.values.tolist() == [["a", 0, 7]]


def test_exposure_days_by_route_and_by_patient(small):
    ds, ana, _ = small
    expo = exposure(ana, ds)
    days = (expo["any"]["e"] - expo["any"]["s"] + 1).groupby(expo["any"]["patient_key"]).sum()
    assert days.to_dict() == {"i1": 6, "s1": 10, "s2": 5, "x1": 10}
    r = expo["route"]
    by_route = (r["e"] - r["s"] + 1).groupby(r["route"]).sum()
    assert by_route.to_dict() == {"IV": 12, "SC": 19}


def test_regimen_without_stop_runs_to_discharge_and_follow_up_cuts():
    ds = pd.DataFrame([
        patient_row("a", "SC", length_of_stay_days=12.0, days_admission_to_anakinra=2.0),  # discharge day 10
        patient_row("b", "SC", time_to_death_days=4.5),                                     # died day 4
    ])
    ana = pd.DataFrame([dose("a", "SC", "SC", 0.0, np.nan), dose("b", "SC", "SC", 0.0, 9.0)],
                       columns=ANAKINRA_COLUMNS)
    reg, counts = regimen_days(ana, ds)
    assert reg[["patient_key", "s", "e"]].values.tolist() == [["a", 0, 10], ["b", 0, 4]]
    assert counts["regimens_without_stop"] == 1
    lagged, _ = regimen_days(ana, ds, lag=2)
    assert lagged["e"].tolist() == [12, 4]  # the lag never runs past the end of follow-up


def test_rates_follow_the_exposure_rules(small):
    ds, ana, aes = small
    res = safety(ds, ana, pd.DataFrame(columns=LABS_COLUMNS), aes)
    rates = res["rates"]
    assert list(rates.columns) == RATE_COLUMNS
    r = rates.set_index(["group", "term"])
    # injection-site reactions: SC days of everyone (19), events on an SC day (x1 day 2, s1 day 8)
    isr = r.loc[("SC", "injection_site_reaction")]
    assert (isr["patients"], isr["events"], isr["patient_days"]) == (2, 2, 19)
    assert isr["rate_per_100pd"] == pytest.approx(100 * 2 / 19)
    assert pd.isna(r.loc[("IV", "injection_site_reaction"), "patient_days"])
    assert r.loc[("IV", "injection_site_reaction"), "note"].startswith("not applicable")
    ir = r.loc[("IV", "infusion_reaction")]
    assert (ir["events"], ir["patient_days"]) == (1, 12)
    # other terms: by route group, all anakinra days
    bac = r.loc[("SC", "bacterial_infection")]
    assert (bac["patients"], bac["events"], bac["patient_days"]) == (1, 2, 15)
    ci = poisson_rate_ci(2, 15, per=100)
    assert (bac["rate_lcl"], bac["rate_ucl"]) == pytest.approx((ci["rate_lcl"][0], ci["rate_ucl"][0]))
    assert r.loc[("IV", "neutropenia"), "events"] == 0  # day 30: off treatment
    # IV group, any term: x1's day-2 reaction (on SC), i1's infusion reaction and viral infection
    assert r.loc[("IV", "any"), "events"] == 3 and r.loc[("IV", "any"), "patient_days"] == 16
    assert r.loc[("SC", "any_grade_3plus"), "events"] == 2
    assert r.loc[("IV", "any_infection"), "events"] == 1


def test_rate_ratios_hand_checked(small):
    ds, ana, aes = small
    ratios = safety(ds, ana, pd.DataFrame(columns=LABS_COLUMNS), aes)["ratios"]
    assert list(ratios.columns) == RATIO_COLUMNS
    assert set(ratios["model"]) == {"unadjusted"} and set(ratios["term"]) == {"route_group[IV]"}
    r = ratios.set_index("outcome")
    # any infection: IV 1 event / 16 days, SC 2 / 15
    assert r.loc["any_infection", "irr"] == pytest.approx((1 / 16) / (2 / 15))
    assert r.loc["any_infection", "irr_lcl"] < r.loc["any_infection", "irr"] < r.loc["any_infection", "irr_ucl"]
    assert r.loc["injection_site_reaction", "note"].startswith("not estimable: route-specific")
    assert r.loc["fungal_infection", "note"] == "not estimable: no events in either group"
    assert r.loc["bacterial_infection", "irr"] == 0 and "no events in the IV group" in r.loc["bacterial_infection",
                                                                                              "note"]


def test_event_counts_by_grade(small):
    ds, ana, aes = small
    ev = safety(ds, ana, pd.DataFrame(columns=LABS_COLUMNS), aes)["events"]
    assert list(ev.columns) == EVENT_COLUMNS
    e = ev.set_index(["group", "term", "grade"])
    assert e.loc[("SC", "bacterial_infection", "any"), ["patients", "events", "n"]].tolist() == [1, 2, 2]
    assert e.loc[("SC", "bacterial_infection", "4"), ["patients", "events"]].tolist() == [1, 1]
    assert e.loc[("SC", "bacterial_infection", ">=3"), ["patients", "events"]].tolist() == [1, 2]
    assert e.loc[("IV", "any_infection", "any"), "patients"] == 1
    assert e.loc[("overall", "injection_site_reaction", "any"), ["patients", "events", "n"]].tolist() == [3, 3, 4]
    assert e.loc[("IV", "any", "any"), "percent"] == pytest.approx(100.0)
    assert e.loc[("IV", "anaphylaxis", "any"), "patients"] == 0  # the full grid, zeros included
    # window: the day-30 neutropenia leaves when the window ends at day 20
    cfg = {"window_days": [0, 20]}
    ev20 = safety(ds, ana, pd.DataFrame(columns=LABS_COLUMNS), aes, cfg)["events"]
    assert ev20.set_index(["group", "term", "grade"]).loc[("IV", "neutropenia", "any"), "events"] == 0


def test_no_adverse_events_and_an_empty_group():
    ds = pd.DataFrame([patient_row("s1", "SC"), patient_row("s2", "SC")])
    ana = pd.DataFrame([dose("s1", "SC", "SC", 0.0, 3.0), dose("s2", "SC", "SC", 0.0, 1.0)],
                       columns=ANAKINRA_COLUMNS)
    res = safety(ds, ana, pd.DataFrame(columns=LABS_COLUMNS), empty_aes())
    r = res["rates"].set_index(["group", "term"])
    assert r.loc[("IV", "any"), "patient_days"] == 0 and "zero exposure" in r.loc[("IV", "any"), "note"]
    assert r.loc[("SC", "any"), "rate_per_100pd"] == 0 and r.loc[("SC", "any"), "rate_ucl"] > 0
    assert res["ratios"]["irr"].isna().all()
    assert res["ratios"].set_index("outcome").loc["any", "note"].startswith("not estimable")
    assert res["events"]["patients"].eq(0).all()
    json.dumps(res["model"], sort_keys=True, allow_nan=False)


def test_hepatotoxicity_counts_in_safety(small):
    ds, ana, aes = small
    labs = pd.DataFrame([
        ("s1", "SC", "LDN", "alt", 250.0, None, "U/L", 3.0),   # 6.25 x ULN
        ("x1", "IV", "LDN", "ast", 130.0, None, "U/L", 2.0),   # 3.25 x ULN
    ], columns=LABS_COLUMNS)
    hep = safety(ds, ana, labs, aes)["hepatotoxicity"].set_index(["outcome", "group"])
    assert hep.loc[("hepatotox_3xuln", "overall"), ["n", "events", "not_evaluable"]].tolist() == [2, 2, 2]
    assert hep.loc[("hepatotox_5xuln", "IV"), ["n", "events"]].tolist() == [1, 0]


def test_swimmer_lanes_and_figure(small, tmp_path):
    ds, ana, aes = small
    res = safety(ds, ana, pd.DataFrame(columns=LABS_COLUMNS), aes)
    p = lanes(res["swimmer"]["patients"], 100)
    assert p["patient_key"].tolist() == ["x1", "i1", "s1", "s2"]  # IV first, longest first
    assert p["lane"].tolist() == [-1.0, -2.0, -4.5, -5.5]       # a gap between the groups
    for ext in ("png", "svg"):
        save(swimmer_figure(res["swimmer"], synthetic=True), tmp_path / f"s.{ext}")
        assert (tmp_path / f"s.{ext}").stat().st_size > 10_000


def test_swimmer_subset_keeps_both_groups(tmp_path):
    t = cohort_tables(n_iv=30, n_sc=60)
    res = safety(t["dataset"], t["anakinra"], t["labs"], t["adverse_events"])
    p = lanes(res["swimmer"]["patients"], 20)
    assert p["route_group"].value_counts().to_dict() == {"SC": 13, "IV": 7}
    fig = swimmer_figure(res["swimmer"], max_patients=20)
    assert "20 of 90 patients shown" in fig._suptitle.get_text()
    save(fig, tmp_path / "subset.png")


def test_outcome_analyses_on_a_derive_cohort_result():
    """The real cohort long tables (columns, day offsets, route_group) feed every analysis."""
    w = World()
    a = w.admission("amy", "LDN", "2019-02-01", "2019-02-20", doses=[("2019-02-02", "2019-02-09", "SC", 400)],
                    last_seen="2019-06-01", fever_resolved="2019-02-05")
    b = w.admission("ben", "SHF", "2019-03-01", "2019-03-25", icu=True, died=True, death="2019-03-20",
                    doses=[("2019-03-02", "2019-03-04", "SC", 200), ("2019-03-05", "2019-03-12", "IV", 800)])
    w.admission("cat", "BHM", "2019-04-01", "2019-04-30", doses=[("2019-04-02", "2019-04-20", "IV", 800)],
                last_seen="2019-07-30", fever_resolved="2019-04-10")
    for adm, centre, when, term, grade in ((a, "LDN", "2019-02-04", "injection_site_reaction", 1),
                                           (b, "SHF", "2019-03-03", "injection_site_reaction", 2),
                                           (b, "SHF", "2019-03-08", "bacterial_infection", 3)):
        w.rows["adverse_events"].append({"admission_key": adm, "centre": centre, "event_date": pd.Timestamp(when),
                                         "term": term, "term_text": term, "grade": grade, "serious": grade >= 3})
    for adm, centre, start in ((a, "LDN", "2019-02-02"), (b, "SHF", "2019-03-02")):
        for k, value in enumerate((500.0, 300.0, 150.0)):
            w.rows["labs"].append({"admission_key": adm, "centre": centre, "test": "alt", "value": value,
                                   "qualifier": "", "unit": "U/L",
                                   "sample_time": pd.Timestamp(start) + pd.Timedelta(days=2 * k + 1, hours=7)})
    tables = w.tables()
    cfg = yaml.safe_load(open("config/config.yaml"))["cohort"]
    cohort = derive_cohort(tables, cfg, date(2020, 6, 30))
    assert len(cohort.dataset) == 3
    ds, labs, aes, ana = cohort.dataset, cohort.labs, cohort.adverse_events, cohort.anakinra

    counts, logistic, _ = run_binary(ds, labs, aes)
    assert list(logistic.columns) == LOGISTIC_COLUMNS
    hep = counts.set_index(["outcome", "group"]).loc[("hepatotox_5xuln", "overall")]
    # amy (LDN ULN 40) and ben (SHF ULN 41): ALT 500 on day 1; cat's only ALT is on day 0 (before the window)
    assert (hep["n"], hep["events"], hep["not_evaluable"]) == (2, 2, 1)

    res = safety(ds, ana, labs, aes)
    r = res["rates"].set_index(["group", "term"])
    # SC days: amy 0-7 (8) + ben 0-2 (3) = 11; ben's SC-day reaction counts though he is in the IV group
    assert r.loc[("SC", "injection_site_reaction"), ["events", "patient_days"]].tolist() == [2, 11]
    assert r.loc[("IV", "bacterial_infection"), "events"] == 1
    table = trajectories_analysis(labs, schema_defaults("trajectories")).tables["table"]
    assert list(table.columns) == TABLE_COLUMNS


def test_route_specific_terms_are_configurable(small):
    ds, ana, aes = small
    cfg = {"route_specific_terms": {"viral_infection": "IV"}}
    res = safety(ds, ana, pd.DataFrame(columns=LABS_COLUMNS), aes, cfg)
    r = res["rates"].set_index(["group", "term"])
    # injection-site reactions are now an ordinary term (by route group); viral infections IV-only
    assert r.loc[("IV", "injection_site_reaction"), ["events", "patient_days"]].tolist() == [1, 16]
    assert r.loc[("IV", "viral_infection"), ["events", "patient_days"]].tolist() == [1, 12]
    assert r.loc[("SC", "viral_infection"), "note"].startswith("not applicable")
    with pytest.raises(jsonschema.ValidationError, match="IM"):
        settings({"route_specific_terms": {"other": "IM"}})


def test_rate_ratios_with_a_patient_clustered_interval(small):
    ds, ana, aes = small
    ratios = safety(ds, ana, pd.DataFrame(columns=LABS_COLUMNS), aes)["ratios"].set_index("outcome")
    # any infection, one row per patient with exposure: IV i1 1 event / 6 days, x1 0 / 10; SC s1 2 / 10, s2 0 / 5
    by_hand = clustered_rate_ratio([1, 0, 2, 0], [6, 10, 10, 5], [True, True, False, False])
    r = ratios.loc["any_infection"]
    assert r["irr_robust"] == pytest.approx(r["irr"])  # the same ratio, another interval
    assert (r["robust_lcl"], r["robust_ucl"], r["robust_p"], r["robust_se"]) == pytest.approx(
        (by_hand.lcl, by_hand.ucl, by_hand.p, by_hand.se))
    assert r["robust_method"] == "poisson_glm_cluster_hc1"
    # no IV bacterial infection: the exact ratio is 0 with an upper limit; the clustered one does not exist
    bac = ratios.loc["bacterial_infection"]
    assert bac["irr"] == 0 and pd.isna(bac["irr_robust"])
    assert "patient-clustered interval not estimable: no events in the IV group" in bac["note"]
    assert pd.isna(ratios.loc["injection_site_reaction", "robust_se"])  # route-specific: no ratio at all


def test_first_severe_event_hand_checked():
    """Time to the first grade >= 3 event, death competing, by hand (Aalen-Johansen):
    IV  a event day 10; b died day 20; c censored alive day 40; d event day 60.
        t10: 1/4 -> 0.25, event-free 0.75; t20 death: 0.5; t40 censored; t60: + 0.5 x 1/1 -> 0.75
        (patients with an event over all patients: 2/4 = 0.5, as if c were followed to day 90)
    SC  h event day 0; i event on the day it died (30); g's event on day 60 after its follow-up
        ended on day 45 (censored 45); f grade 2 only, died day 50; e's event on day 95, outside
        the window (censored 90).
        t0: 1/5 -> 0.2, 0.8; t30: + 0.8 x 1/4 -> 0.4, 0.6; t45 censored; t50 death -> CIF stays 0.4
    overall: 1/9 + 1/9 + 1/9 (days 0, 10, 30) + 10/27 x 1/2 (day 60) = 14/27."""
    fu = {"a": (90, 0), "b": (20, 1), "c": (40, 0), "d": (90, 0), "e": (90, 0), "f": (50, 1), "g": (45, 0),
          "h": (90, 0), "i": (30, 1)}
    ds = pd.DataFrame([patient_row(k, "IV" if k in "abcd" else "SC", time_to_death_days=float(t), death_90d=d)
                       for k, (t, d) in fu.items()])
    aes = pd.DataFrame([ae(k, "IV" if k in "abcd" else "SC", "other", grade, day) for k, grade, day in (
        ("a", 3, 10.2), ("a", 4, 12.0), ("d", 3, 60.5), ("e", 4, 95.0), ("f", 2, 5.0), ("g", 3, 60.0), ("h", 3, 0.4),
        ("i", 5, 30.0))], columns=AE_COLUMNS)
    times = first_severe_event(ds, aes, settings(), "death_90d").set_index("patient_key")
    assert times["time"].to_dict() == {"a": 10, "b": 20, "c": 40, "d": 60, "e": 90, "f": 50, "g": 45, "h": 0, "i": 30}
    assert times["status"].to_dict() == {"a": 1, "b": 2, "c": 0, "d": 1, "e": 0, "f": 2, "g": 0, "h": 1, "i": 1}
    ana = pd.DataFrame([dose(k, "IV" if k in "abcd" else "SC", "SC", 0.0, 5.0) for k in fu], columns=ANAKINRA_COLUMNS)
    res = safety(ds, ana, pd.DataFrame(columns=LABS_COLUMNS), aes)
    first = res["first_severe"]
    assert list(first.columns) == FIRST_SEVERE_COLUMNS
    f = first.set_index("group")
    assert f.loc["IV", ["n", "events", "competing_deaths", "censored_before", "n_risk"]].tolist() == [4, 2, 1, 1, 0]
    assert f.loc["SC", ["n", "events", "competing_deaths", "censored_before", "n_risk"]].tolist() == [5, 2, 1, 1, 1]
    assert f.loc["IV", "cif"] == pytest.approx(0.75) and f.loc["SC", "cif"] == pytest.approx(0.4)
    assert f.loc["overall", "cif"] == pytest.approx(14 / 27)
    # R 4.2.2, survival 3.5.3: t <- c(10,20,40,60,90,50,45,0,30); s <- c(1,2,0,1,0,2,0,1,1)
    #   summary(survfit(Surv(t, factor(s, 0:2)) ~ 1), times = 90): pstate 0.5185185, lower 0.2508929, upper 1
    assert f.loc["overall", ["cif_lcl", "cif_ucl"]].tolist() == pytest.approx([0.2508929, 1.0], abs=5e-8)
    assert (f["cif_lcl"] < f["cif"]).all() and (f["cif"] < f["cif_ucl"]).all() and (f["day"] == 90).all()
    assert f.loc["IV", "note"].endswith("final value")  # d, the last IV patient, had an event on day 60
    assert res["model"]["first_severe_event"][0]["group"] == "IV"


def test_first_severe_event_without_events():
    ds = pd.DataFrame([patient_row("s1", "SC"), patient_row("s2", "SC")])
    ana = pd.DataFrame([dose("s1", "SC", "SC", 0.0, 3.0)], columns=ANAKINRA_COLUMNS)
    f = safety(ds, ana, pd.DataFrame(columns=LABS_COLUMNS), empty_aes())["first_severe"].set_index("group")
    assert f.loc["SC", "cif"] == 0 and "no first grade >=3 event" in f.loc["SC", "note"]
    assert f.loc["IV", "n"] == 0 and f.loc["IV", "note"] == "no patients in the group" and pd.isna(f.loc["IV", "cif"])


def test_safety_tables_are_in_the_data_dictionary(small):
    ds, ana, aes = small
    res = safety(ds, ana, pd.DataFrame(columns=LABS_COLUMNS), aes)
    table_of = {"events": "safety_events", "rates": "safety_rates", "ratios": "rate_ratios",
                "first_severe": "safety_first_severe"}
    assert set(res["result"].tables) == set(table_of)
    for key, table in res["result"].tables.items():
        assert not undocumented(table_of[key], table.columns), key
