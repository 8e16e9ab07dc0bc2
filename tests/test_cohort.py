"""Cohort rules on hand-built canonical tables: every admission leaves at one step."""

from datetime import date

import jsonschema
import pandas as pd
import pytest
import yaml

from stormcohort.canonical import LAB_UNITS, LAB_WORSE
from stormcohort.cohort import baseline_labs, build_episodes, dataset_columns, derive_cohort
from stormcohort.link import link_centres
from tests.canonical_factory import World, key
from tests.config_defaults import config_schema, fill_defaults

CONFIG = yaml.safe_load(open("config/config.yaml"))["cohort"]
EXTRACT = date(2020, 6, 30)


def world() -> World:
    w = World()
    # SC only, discharged alive, fever resolved day 4.
    w.admission("alice", "LDN", "2019-02-01", "2019-02-20", doses=[("2019-02-03", "2019-02-10", "SC", 400)],
                last_seen="2019-08-01", fever_resolved="2019-02-07")
    # Alice's readmission later in the window, also treated: leaves as a readmission.
    w.admission("alice", "LDN", "2019-09-01", "2019-09-10", doses=[("2019-09-02", "2019-09-05", "IV", 800)])
    # Transfer LDN -> SHF next day: one episode at LDN, SC then IV, so IV by any_iv, SC by first dose.
    w.admission("bob", "LDN", "2019-03-01", "2019-03-05", doses=[("2019-03-02", "2019-03-05", "SC", 200)],
                icu=True, sex="M")
    w.admission("bob", "SHF", "2019-03-06", "2019-03-30", doses=[("2019-03-06", "2019-03-20", "IV-cont", 2400)],
                died=True, death="2019-03-30", sex="M")
    w.admission("carol", "SHF", "2018-11-01", "2018-11-20", doses=[("2018-11-02", "2018-11-09", "SC", 200)])
    w.admission("dan", "BHM", "2019-04-01", "2019-04-20", diagnosis="fhlh", age=2.0, weight=12.0,
                doses=[("2019-04-02", "2019-04-09", "SC", 24)])
    w.admission("erin", "LDN", "2019-05-01", "2019-05-09", sick=False, diagnosis="other",
                doses=[("2019-05-02", "2019-05-03", "SC", 100)])
    w.admission("fay", "SHF", "2019-06-01", "2019-06-21")  # meets the definition, never given anakinra
    # IV stepped down to SC; censored by the extract date before day 30; died after the extract.
    w.admission("gus", "BHM", "2020-06-20", "2020-06-29", age=8.0, weight=25.0, died=True, death="2020-07-15",
                doses=[("2020-06-21", "2020-06-24", "IV", 200), ("2020-06-24", "2020-06-28", "SC", 100)])
    w.admission("hal", "LDN", "2019-12-31", "2020-01-15", doses=[("2020-01-01", "2020-01-05", "SC", 100)],
                died=True, death="2020-01-10", fever_resolved="2020-01-12")
    return w


@pytest.fixture
def result():
    cfg = dict(CONFIG, study_window={"start": "2019-01-01", "end": "2020-12-31"})
    linked, _ = link_centres(split_by_centre(world().tables()))
    return derive_cohort(linked, cfg, EXTRACT)


def split_by_centre(tables):
    return {c: {n: t[t["centre"] == c].reset_index(drop=True) for n, t in tables.items()}
            for c in ("LDN", "SHF", "BHM")}


def row(result, person):
    return result.dataset.set_index("patient_key").loc[key("P", person)]


def test_attrition_counts_every_step(result):
    a = result.attrition.set_index("step")
    assert a.loc["all_admissions", "n_remaining"] == 10
    expected_excluded = {"transfer_merged": 1, "outside_window": 1, "excluded_diagnosis": 1,
                         "criteria_not_met": 1, "no_anakinra": 1, "prevalent_user": 0, "readmission": 1}
    assert {s: int(a.loc[s, "n_excluded"]) for s in expected_excluded} == expected_excluded
    assert a.loc["final_cohort", "n_remaining"] == 4 == len(result.dataset)
    assert a.loc["route_IV", "n_remaining"] == 2 and a.loc["route_SC", "n_remaining"] == 2
    # Remaining counts fall by exactly the exclusions at each step.
    main = a.loc[[s for s in a.index if not s.startswith("route_") and s != "final_cohort"]]
    assert (main["n_remaining"].diff().iloc[1:] == -main["n_excluded"].iloc[1:]).all()


def test_every_admission_accounted_once(result):
    assessed = result.assessed
    assert assessed["admission_key"].is_unique and len(assessed) == 10
    assert assessed["exclusion"].isna().sum() == 4
    reasons = assessed.set_index("patient_key")["exclusion"]
    assert reasons[key("P", "fay")] == "no_anakinra"
    assert reasons[key("P", "erin")] == "criteria_not_met"


def test_transfer_is_one_episode_at_first_centre_and_iv(result):
    bob = row(result, "bob")
    assert bob["centre"] == "LDN" and bob["route_group"] == "IV" and bob["first_route"] == "SC"
    assert bob["route_switch"] == 1
    assert bob["icu"] == 1  # flag from either admission of the episode
    # Index 2019-03-02; death 2019-03-30 = day 28.
    assert bob["death_90d"] == 1 and bob["time_to_death_days"] == 28 and bob["death_30d"] == 1
    assert bob["max_daily_dose_mg"] == 2400


def test_a_regimen_without_an_mg_dose_makes_the_maximum_dose_not_evaluable():
    """Gus's IV regimen was per kg without a weight (kept, mg dose missing): he stays IV from the
    same index date, and his maximum daily dose is missing, not the SC regimen's 100 mg."""
    tables = world().tables()
    ana = tables["anakinra"]
    iv = (ana["start"] == pd.Timestamp("2020-06-21")) & (ana["route"] == "IV")
    assert iv.sum() == 1
    ana.loc[iv, ["dose_mg", "daily_dose_mg"]] = float("nan")
    cfg = dict(CONFIG, study_window={"start": "2019-01-01", "end": "2020-12-31"})
    linked, _ = link_centres(split_by_centre(tables))
    gus = row(derive_cohort(linked, cfg, EXTRACT), "gus")
    assert gus["route_group"] == "IV" and gus["first_route"] == "IV"
    assert pd.isna(gus["max_daily_dose_mg"]) and pd.isna(gus["max_dose_mg_per_kg_day"])


def test_follow_up_ends_at_the_last_record_when_contact_dates_are_missing():
    """Alice without discharge, last-seen or dose-stop dates: followed to the last date any record
    shows her alive (a lab, a dose, an adverse event), not to day 90 as if complete."""
    tables = world().tables()
    alice = tables["admissions"]["person_key"].eq(key("P", "alice")) & tables["admissions"]["admit_date"].eq(
        pd.Timestamp("2019-02-01"))
    admission = tables["admissions"].loc[alice, "admission_key"].iloc[0]
    tables["admissions"].loc[alice, ["discharge_date", "last_seen_date"]] = pd.NaT
    tables["anakinra"].loc[tables["anakinra"]["admission_key"].eq(admission), "stop"] = pd.NaT
    labs = tables["labs"][tables["labs"]["admission_key"].eq(admission)]
    last = max(labs["sample_time"].max().normalize(), pd.Timestamp("2019-02-03"))
    cfg = dict(CONFIG, study_window={"start": "2019-01-01", "end": "2020-12-31"})
    linked, _ = link_centres(split_by_centre(tables))
    alice = row(derive_cohort(linked, cfg, EXTRACT), "alice")
    assert alice["time_to_death_days"] == (last - pd.Timestamp("2019-02-03")).days < 90
    assert alice["death_90d"] == 0


def test_follow_up_and_outcomes(result):
    alice = row(result, "alice")
    # Alive; last seen day 179 > 90, so censored at day 90; fever resolved day 4.
    assert alice["death_90d"] == 0 and alice["time_to_death_days"] == 90 and alice["death_30d"] == 0
    assert alice["fever_outcome"] == 1 and alice["time_to_fever_days"] == 4
    assert alice["route_group"] == "SC" and alice["days_on_anakinra"] == 8
    gus = row(result, "gus")
    # Index 2020-06-21; last contact the discharge on 2020-06-29 (day 8), before the extract date;
    # the death after the extract date is not counted.
    assert gus["death_90d"] == 0 and gus["time_to_death_days"] == 8
    assert pd.isna(gus["death_30d"]) and gus["age_group"] == "child"
    hal = row(result, "hal")
    # Died day 9 before fever resolution (day 11): competing event.
    assert hal["fever_outcome"] == 2 and hal["time_to_fever_days"] == 9


def test_first_dose_exposure_changes_groups():
    cfg = dict(CONFIG, exposure="first_dose", study_window={"start": "2019-01-01", "end": "2020-12-31"})
    linked, _ = link_centres(split_by_centre(world().tables()))
    groups = derive_cohort(linked, cfg, EXTRACT).dataset.set_index("patient_key")["route_group"]
    assert groups[key("P", "bob")] == "SC" and groups[key("P", "gus")] == "IV"


def test_dataset_columns_and_sorted(result):
    assert list(result.dataset.columns) == dataset_columns(90)
    assert result.dataset["patient_key"].is_monotonic_increasing


def test_long_tables_hold_days_not_dates(result):
    labs = result.labs
    assert {"patient_key", "route_group", "day", "test", "value"} <= set(labs.columns)
    assert not any(pd.api.types.is_datetime64_any_dtype(t) for t in labs.dtypes)
    doses = result.anakinra.set_index("patient_key").loc[[key("P", "bob")]]
    assert sorted(doses["day_start"]) == [0, 4]


def test_transfer_needs_another_centre_and_small_gap():
    adm = pd.DataFrame({
        "admission_key": ["A1", "A2", "A3", "A4"], "person_key": ["P1", "P1", "P2", "P2"],
        "centre": ["LDN", "LDN", "LDN", "SHF"],
        "admit_date": pd.to_datetime(["2019-01-01", "2019-01-06", "2019-01-01", "2019-01-08"]),
        "discharge_date": pd.to_datetime(["2019-01-05", "2019-01-09", "2019-01-05", "2019-01-10"]),
    })
    def episodes(gap):
        return list(build_episodes(adm, gap, without_discharge_days=0, same_centre=False)["episode_key"])
    # Same centre next day is a readmission; another centre 3 days later is not a transfer.
    assert episodes(1) == ["A1", "A2", "A3", "A4"]
    assert episodes(3) == ["A1", "A2", "A3", "A3"]


@pytest.mark.parametrize("rule, first", [("iv_first", "IV"), ("sc_first", "SC"), (None, "IV")])
def test_simultaneous_routes_rule_sets_first_route_whatever_the_row_order(rule, first):
    # An IV loading dose and the first SC dose charted at the same timestamp: the configured
    # clinical rule (default iv_first) picks the first route, not the routes' alphabetical order.
    w = World()
    w.admission("ivy", "LDN", "2019-02-01", "2019-02-20",
                doses=[("2019-02-03", "2019-02-03", "IV", 400), ("2019-02-03", "2019-02-10", "SC", 200)])
    w.admission("sam", "LDN", "2019-03-01", "2019-03-20",
                doses=[("2019-03-03", "2019-03-10", "SC", 200), ("2019-03-03", "2019-03-03", "IV", 400)])
    cfg = dict(CONFIG, exposure="first_dose", study_window={"start": "2019-01-01", "end": "2020-12-31"})
    if rule is None:  # not in the config: the schema's default, as the workflow fills it in
        cfg.pop("simultaneous_routes", None)
        cfg = fill_defaults(cfg, config_schema()["properties"]["cohort"])
    else:
        cfg["simultaneous_routes"] = rule
    linked, _ = link_centres(split_by_centre(w.tables()))
    for ana in (linked["anakinra"], linked["anakinra"].iloc[::-1]):
        tables = dict(linked, anakinra=ana.reset_index(drop=True))
        dataset = derive_cohort(tables, cfg, EXTRACT).dataset.set_index("patient_key")
        for person in ("ivy", "sam"):
            assert dataset.loc[key("P", person), "first_route"] == first
            assert dataset.loc[key("P", person), "route_group"] == first  # exposure = first_dose
            assert dataset.loc[key("P", person), "route_switch"] == 1


def derived(tables):
    cfg = dict(CONFIG, study_window={"start": "2019-01-01", "end": "2020-12-31"})
    linked, _ = link_centres(split_by_centre(tables))
    return derive_cohort(linked, cfg, EXTRACT)


def conflicts_of(result, person):
    c = result.conflicts
    return set(c.loc[c["patient_key"].eq(key("P", person)), "rule"])


def test_a_death_without_a_date_is_a_death_censored_at_the_last_date_known_alive():
    """Bob died (flag) but his date of death is missing: never a survivor. Time-to-event: censored at
    his last contact (discharge day 28); death_30d: a death (not known alive on day 30); listed."""
    w = world()
    tables = w.tables()
    bob = tables["admissions"]["person_key"].eq(key("P", "bob"))
    tables["admissions"].loc[bob, "death_date"] = pd.NaT
    result = derived(tables)
    bob = row(result, "bob")
    assert bob["death_date_unknown"] == 1 and bob["death_90d"] == 0 and bob["time_to_death_days"] == 28
    assert bob["death_30d"] == 1
    assert bob["fever_outcome"] is pd.NA and bob["fever_not_evaluable"] == "no_resolution_date"
    assert conflicts_of(result, "bob") == {"death_without_date", "fever_date_missing"}
    assert row(result, "alice")["death_date_unknown"] == 0 and not conflicts_of(result, "alice")


def test_a_death_without_a_date_known_alive_on_day_30_is_not_a_30_day_death():
    tables = world().tables()
    bob = tables["admissions"]["person_key"].eq(key("P", "bob"))
    tables["admissions"].loc[bob, ["death_date", "last_seen_date"]] = [pd.NaT, pd.Timestamp("2019-04-15")]
    bob = row(derived(tables), "bob")
    assert bob["death_30d"] == 0 and bob["time_to_death_days"] == 44 and bob["death_date_unknown"] == 1


def test_fever_resolved_before_the_index_date_is_not_at_risk_and_a_missing_date_not_a_failure():
    """Alice's fever resolved the day before her first dose: afebrile at index, not resolution on day 0.
    Carol-like missing date (alive): not evaluable, not 'febrile to day 90'."""
    tables = world().tables()
    alice = tables["admissions"]["person_key"].eq(key("P", "alice")) & tables["admissions"]["admit_date"].eq(
        pd.Timestamp("2019-02-01"))
    tables["admissions"].loc[alice, "fever_resolution_date"] = pd.Timestamp("2019-02-02")
    result = derived(tables)
    alice = row(result, "alice")
    assert alice["fever_outcome"] is pd.NA and pd.isna(alice["time_to_fever_days"])
    assert alice["fever_not_evaluable"] == "afebrile_at_index"
    assert conflicts_of(result, "alice") == {"afebrile_at_index"}
    gus = row(result, "gus")  # alive, no resolution date
    assert gus["fever_outcome"] is pd.NA and gus["fever_not_evaluable"] == "no_resolution_date"
    hal = row(result, "hal")  # a dated death before resolution stays the competing event
    assert hal["fever_outcome"] == 2 and hal["fever_not_evaluable"] == ""


def test_conflicts_list_patients_without_contact_dates_and_doses_without_mg():
    tables = world().tables()
    gus = tables["admissions"]["person_key"].eq(key("P", "gus"))
    tables["admissions"].loc[gus, "discharge_date"] = pd.NaT
    tables["anakinra"].loc[tables["anakinra"]["admission_key"].isin(tables["admissions"].loc[gus, "admission_key"])
                           & tables["anakinra"]["route"].eq("SC"), "daily_dose_mg"] = float("nan")
    result = derived(tables)
    assert conflicts_of(result, "gus") == {"no_contact_dates", "dose_without_mg", "fever_date_missing"}
    assert list(result.conflicts.columns) == ["patient_key", "centre", "rule", "handling"]
    assert result.conflicts["handling"].notna().all()


def test_transfer_without_a_discharge_date_and_within_one_centre():
    """A missing discharge at the sending centre: the next admission at another centre within
    cohort.transfer_without_discharge_days of the previous admission continues the episode (flagged);
    within one centre only when cohort.transfer_same_centre says so."""
    adm = pd.DataFrame({
        "admission_key": ["A1", "A2", "A3", "A4", "A5", "A6"],
        "person_key": ["P1", "P1", "P2", "P2", "P3", "P3"],
        "centre": ["LDN", "SHF", "LDN", "SHF", "LDN", "LDN"],
        "admit_date": pd.to_datetime(["2019-01-01", "2019-01-06", "2019-01-01", "2019-01-20",
                                      "2019-01-01", "2019-01-06"]),
        "discharge_date": pd.to_datetime([None, "2019-01-09", None, "2019-01-25", "2019-01-05", "2019-01-09"]),
    })
    ep = build_episodes(adm, gap_days=1, without_discharge_days=7, same_centre=False)
    # P1: SHF 5 days after an LDN admission without discharge date; P2: 19 days, a new episode.
    assert list(ep["episode_key"]) == ["A1", "A1", "A3", "A4", "A5", "A6"]
    assert list(ep["merged_without_discharge"]) == [False, True, False, False, False, False]
    same = build_episodes(adm, gap_days=1, without_discharge_days=7, same_centre=True)
    assert list(same["episode_key"]) == ["A1", "A1", "A3", "A4", "A5", "A5"]
    assert not same["merged_without_discharge"].iloc[5]


def test_merge_without_discharge_is_recorded_in_assessed():
    w = World()
    w.admission("ian", "LDN", "2019-03-01", None)
    w.admission("ian", "SHF", "2019-03-04", "2019-03-20", doses=[("2019-03-05", "2019-03-12", "SC", 200)])
    w.admission("jo", "LDN", "2019-04-01", "2019-04-20", doses=[("2019-04-02", "2019-04-09", "SC", 200)])
    cfg = dict(CONFIG, study_window={"start": "2019-01-01", "end": "2020-12-31"})
    linked, _ = link_centres(split_by_centre(w.tables()))
    result = derive_cohort(linked, cfg, EXTRACT)
    flags = result.assessed.groupby("patient_key")["merged_without_discharge"].all()
    assert flags[key("P", "ian")] and not flags[key("P", "jo")]
    assert "transfer_without_discharge" in conflicts_of(result, "ian")
    assert "transfer_without_discharge" not in conflicts_of(result, "jo")
    assert result.attrition.set_index("step").loc["transfer_merged", "n_excluded"] == 1


def test_centre_is_the_treating_centre_and_admitting_centre_kept():
    """Kim is transferred LDN -> SHF and first given anakinra at SHF: her centre is SHF (treating),
    her admitting centre LDN. Bob started anakinra at LDN before his transfer: LDN for both."""
    w = world()
    w.admission("kim", "LDN", "2019-07-01", "2019-07-03")
    w.admission("kim", "SHF", "2019-07-03", "2019-07-25", doses=[("2019-07-04", "2019-07-12", "SC", 200)])
    cfg = dict(CONFIG, study_window={"start": "2019-01-01", "end": "2020-12-31"})
    linked, _ = link_centres(split_by_centre(w.tables()))
    out = derive_cohort(linked, cfg, EXTRACT)
    kim, bob = row(out, "kim"), row(out, "bob")
    assert (kim["centre"], kim["admitting_centre"]) == ("SHF", "LDN")
    assert (bob["centre"], bob["admitting_centre"]) == ("LDN", "LDN")
    columns = dataset_columns(90)
    assert columns[columns.index("centre") + 1] == "admitting_centre"


def prevalent_world() -> World:
    w = world()
    # Lee: anakinra in 2018 (outside the window), then a qualifying episode in 2019: prevalent user.
    w.admission("lee", "LDN", "2018-10-01", "2018-10-20", doses=[("2018-10-02", "2018-10-09", "SC", 200)])
    w.admission("lee", "LDN", "2019-03-01", "2019-03-20", doses=[("2019-03-02", "2019-03-09", "SC", 200)])
    # Mo: an earlier 2019 episode not meeting the definition but treated: prevalent too.
    w.admission("mo", "SHF", "2019-02-01", "2019-02-10", sick=False, diagnosis="other",
                doses=[("2019-02-02", "2019-02-03", "SC", 100)])
    w.admission("mo", "SHF", "2019-05-01", "2019-05-20", doses=[("2019-05-02", "2019-05-09", "IV", 800)])
    # Ned: an earlier episode without anakinra: a new user.
    w.admission("ned", "BHM", "2019-02-01", "2019-02-10")
    w.admission("ned", "BHM", "2019-06-01", "2019-06-20", doses=[("2019-06-02", "2019-06-09", "SC", 200)])
    return w


@pytest.mark.parametrize("exclude", [True, False])
def test_prevalent_users_are_counted_and_excluded_by_default(exclude):
    cfg = dict(CONFIG, exclude_prevalent_users=exclude, study_window={"start": "2019-01-01", "end": "2020-12-31"})
    linked, _ = link_centres(split_by_centre(prevalent_world().tables()))
    out = derive_cohort(linked, cfg, EXTRACT)
    a = out.attrition.set_index("step")
    steps = list(a.index)
    assert steps.index("prevalent_user") == steps.index("readmission") - 1
    assert a.loc["prevalent_user", "n_excluded"] == (2 if exclude else 0)
    assert a.loc["readmission", "n_excluded"] == 1  # Alice's second episode only
    assert ("not excluded (cohort.exclude_prevalent_users false), 2 in the cohort"
            in a.loc["prevalent_user", "description"]) is not exclude
    cohort = set(out.dataset["patient_key"])
    assert key("P", "ned") in cohort
    assert ({key("P", "lee"), key("P", "mo")} <= cohort) is not exclude
    assessed = out.assessed.set_index("admission_key")
    second = {p: key("A", f"{c}{p}{d}") for p, c, d in [("lee", "LDN", "2019-03-01"), ("mo", "SHF", "2019-05-01")]}
    assert assessed.loc[list(second.values()), "prevalent_user"].all()
    reasons = assessed.loc[list(second.values()), "exclusion"]
    assert (reasons.eq("prevalent_user").all() if exclude else reasons.isna().all())
    kept = set(out.conflicts.loc[out.conflicts["rule"].eq("prevalent_user_kept"), "patient_key"])
    assert kept == (set() if exclude else {key("P", "lee"), key("P", "mo")})
    assert not assessed.loc[assessed["patient_key"].eq(key("P", "ned")), "prevalent_user"].any()


# ------------------------------------------------------------------ baseline: before the first dose

STUDY = {"study_window": {"start": "2019-01-01", "end": "2020-12-31"}}


def cohort_config(**baseline):
    """The cohort config as the workflow gets it (schema defaults filled), baseline rule overridden."""
    cfg = fill_defaults(dict(CONFIG, **STUDY), config_schema()["properties"]["cohort"])
    cfg["baseline"] = {**cfg["baseline"], **baseline}
    return cfg


def derive(w: World, **baseline):
    linked, _ = link_centres(split_by_centre(w.tables()))
    return derive_cohort(linked, cohort_config(**baseline), EXTRACT)


def test_a_day_plus_one_sample_never_replaces_a_day_minus_two_one():
    # Full labs on day -2 (HScore 319); a lower ferritin the day after the first dose (it would
    # score 304) is nearer the index date but taken after treatment started.
    w = World()
    adm = w.admission("ivy", "LDN", "2019-02-01", "2019-02-20", lab_day="2019-02-01",
                      doses=[("2019-02-03 10:00", "2019-02-10", "SC", 400)])
    w.lab(adm, "2019-02-04 08:00", "ferritin", 3000)
    ivy = row(derive(w), "ivy")
    assert ivy["ferritin_baseline"] == 12000 and ivy["hscore"] == 319


@pytest.mark.parametrize("dose, sample, counted", [
    # (first dose, same-day ferritin sample): counted as baseline under same_day = before_dose?
    ("2019-02-03 10:00", "2019-02-03 08:00", True),    # sampled before a timed dose
    ("2019-02-03 10:00", "2019-02-03 12:00", False),   # after it
    ("2019-02-03 10:00", "2019-02-03", False),         # date-only sample: not known to be before
    ("2019-02-03", "2019-02-03 08:00", False),         # date-only dose (midnight): nothing is before it
])
@pytest.mark.parametrize("same_day", ["before_dose", "always", "never"])
def test_same_day_sample_rule(dose, sample, counted, same_day):
    w = World()
    adm = w.admission("ivy", "LDN", "2019-02-01", "2019-02-20", lab_day="2019-01-31",
                      doses=[(dose, "2019-02-10", "SC", 400)])
    w.lab(adm, sample, "ferritin", 3000)
    expected = {"before_dose": counted, "always": True, "never": False}[same_day]
    ivy = row(derive(w, same_day=same_day), "ivy")
    assert ivy["ferritin_baseline"] == (3000 if expected else 12000)


def test_same_day_default_is_before_dose():
    assert cohort_config()["baseline"]["same_day"] == "before_dose"
    assert cohort_config()["baseline"]["pick"] == "nearest"


def test_the_window_starts_window_days_before_the_index_date():
    labs = pd.DataFrame({"episode_key": ["E1"] * 2, "test": ["crp", "alt"], "value": [80.0, 10.0],
                         "qualifier": ["", ""],
                         "sample_time": pd.to_datetime(["2019-01-27 09:00", "2019-01-26 23:00"])})
    index_time = pd.Series(pd.to_datetime(["2019-02-03 10:00"]), index=["E1"])
    rule = {"window_days": 7, "pick": "nearest", "same_day": "before_dose"}
    base = baseline_labs(labs, index_time, index_time.dt.normalize(), rule)
    assert base.loc["E1", "crp"] == 80 and pd.isna(base.loc["E1", "alt"])  # day -7 in, day -8 out
    assert set(LAB_WORSE) == set(LAB_UNITS)  # every canonical test has a direction for pick = worst


@pytest.mark.parametrize("pick, ferritin, platelets", [("nearest", 8000, 60), ("worst", 15000, 20)])
def test_pick_nearest_or_worst_before_the_dose(pick, ferritin, platelets):
    w = World()
    adm = w.admission("ivy", "LDN", "2019-02-01", "2019-02-20", lab_day="2019-01-31",  # day -3
                      doses=[("2019-02-03 10:00", "2019-02-10", "SC", 400)])
    for day, ferr, plt in (("2019-02-02 07:00", 8000, 60), ("2019-01-29 07:00", 15000, 20)):
        w.lab(adm, day, "ferritin", ferr)
        w.lab(adm, day, "platelets", plt)
    w.lab(adm, "2019-02-04 07:00", "ferritin", 40000)  # after the dose: never baseline, however bad
    w.lab(adm, "2019-02-04 07:00", "platelets", 5)
    ivy = row(derive(w, pick=pick), "ivy")
    assert (ivy["ferritin_baseline"], ivy["platelets_baseline"]) == (ferritin, platelets)


def test_worst_ties_go_to_the_earlier_sample():
    labs = pd.DataFrame({"episode_key": ["E1"] * 2, "test": ["ferritin"] * 2, "value": [6000.0, 6000.0],
                         "qualifier": [">", ""],
                         "sample_time": pd.to_datetime(["2019-02-02 07:00", "2019-01-30 07:00"])})
    index_time = pd.Series(pd.to_datetime(["2019-02-03 10:00"]), index=["E1"])
    worst = baseline_labs(labs, index_time, index_time.dt.normalize(), {"window_days": 7, "pick": "worst",
                                                                       "same_day": "before_dose"})
    assert worst.loc["E1", "ferritin"] == 6000 and worst.loc["E1", "ferritin_qualifier"] == ""


def test_without_anakinra_the_window_ends_on_the_admission_date():
    # No dose to be before: samples up to the admission date, inclusive; the day after is not baseline.
    w = World()
    w.admission("fay", "SHF", "2019-06-01", "2019-06-21", lab_day="2019-06-01 15:00")
    w.admission("gil", "SHF", "2019-06-01", "2019-06-21", lab_day="2019-06-02 08:00")
    reasons = derive(w).assessed.set_index("patient_key")["exclusion"]
    assert reasons[key("P", "fay")] == "no_anakinra" and reasons[key("P", "gil")] == "criteria_not_met"


@pytest.mark.parametrize("qualifier, meets", [("", True), ("<", False)])
def test_below_500_baseline_ferritin_does_not_meet_the_definition(qualifier, meets):
    # HLH-2004 criteria: fever, spleen, marrow, sCD25 and ferritin 500 = 5 (HScore 91): '<500' makes 4.
    w = World()
    adm = w.admission("ivy", "LDN", "2019-02-01", "2019-02-20", sick=False,
                      doses=[("2019-02-03 10:00", "2019-02-10", "SC", 400)])
    tables = w.tables()
    tables["admissions"]["max_temp_c"] = 39.0
    for flag in ("splenomegaly", "bm_haemophagocytosis"):
        tables["admissions"][flag] = pd.array([True], dtype="boolean")
    labs = tables["labs"]
    labs.loc[labs["test"].eq("scd25"), "value"] = 3000.0
    labs.loc[labs["test"].eq("ferritin"), ["value", "qualifier"]] = [500.0, qualifier]
    linked, _ = link_centres(split_by_centre(tables))
    episode = derive_cohort(linked, cohort_config(), EXTRACT).assessed.set_index("admission_key").loc[adm]
    assert episode["hscore"] == 91 and episode["hlh2004_count"] == (5 if meets else 4)
    assert bool(episode["meets_definition"]) == meets
    assert pd.isna(episode["exclusion"]) if meets else episode["exclusion"] == "criteria_not_met"


def test_the_study_config_validates_with_the_baseline_rule():
    study = yaml.safe_load(open("config/config.yaml"))
    filled = fill_defaults(study, config_schema())
    assert set(filled["cohort"]["baseline"]) == {"window_days", "pick", "same_day"}
    old = dict(study, cohort={**study["cohort"], "baseline_window_days": [-7, 1]})
    with pytest.raises(jsonschema.ValidationError, match="baseline_window_days"):
        fill_defaults(old, config_schema())


def test_iv_start_day_is_the_day_of_the_first_intravenous_dose(result):
    """Bob: SC from day 0, IV from his transfer day 4; Gus: IV first (day 0); Alice never IV."""
    assert row(result, "bob")["iv_start_day"] == 4
    assert row(result, "gus")["iv_start_day"] == 0
    assert pd.isna(row(result, "alice")["iv_start_day"])
