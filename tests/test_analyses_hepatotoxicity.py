"""Hepatotoxicity: CTCAE v5.0 grading of ALT/AST increased against the patient's baseline (a
hand-worked table at every bound), the baseline the cohort's rule picks, censored results, and
the summary by route with the samples per patient."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
import yaml

from stormcohort.analyses.common import COUNT_COLUMNS
from stormcohort.analyses.dictionary import undocumented
from stormcohort.analyses.hepatotoxicity import (
    CTCAE_ROWS,
    SAMPLE_COLUMNS,
    _results,
    baseline_status,
    baselines,
    ctcae_grade,
    hepatotoxicity,
    hepatotoxicity_analysis,
    patient_columns,
)
from stormcohort.cohort import derive_cohort
from tests.canonical_factory import World
from tests.test_analyses_binary import (
    ANAKINRA_COLUMNS,
    BASELINE_RULE,
    LABS_COLUMNS,
    ULN,
    hepatotoxicity_settings,
    patient_row,
)

# CTCAE v5.0, "Alanine aminotransferase increased" / "Aspartate aminotransferase increased":
#   baseline normal:   1 >ULN - 3.0 x ULN; 2 >3.0 - 5.0 x ULN; 3 >5.0 - 20.0 x ULN; 4 >20.0 x ULN
#   baseline abnormal: 1 1.5 - 3.0 x baseline; 2 >3.0 - 5.0 x baseline; 3 >5.0 - 20.0 x baseline;
#                      4 >20.0 x baseline
# Worked by hand with ULN 40 U/L: (value, baseline, expected grade, why)
NORMAL = 30.0     # at or below the ULN: graded against the ULN
ABNORMAL = 100.0  # above it: graded against the baseline (2.5 x ULN)
HAND_WORKED = [
    (40, NORMAL, 0, "1.0 x ULN: not above the ULN"),
    (40.4, NORMAL, 1, "1.01 x ULN"),
    (120, NORMAL, 1, "3.0 x ULN: grade 1 runs to 3.0 inclusive"),
    (120.4, NORMAL, 2, "3.01 x ULN"),
    (200, NORMAL, 2, "5.0 x ULN: grade 2 runs to 5.0 inclusive"),
    (200.4, NORMAL, 3, "5.01 x ULN"),
    (800, NORMAL, 3, "20.0 x ULN: grade 3 runs to 20.0 inclusive"),
    (800.4, NORMAL, 4, "20.01 x ULN"),
    (90, NORMAL, 1, "2.25 x ULN, though 3 x baseline: the ULN decides"),
    (90, ABNORMAL, 0, "0.9 x baseline: a fall"),
    (149, ABNORMAL, 0, "1.49 x baseline, though 3.7 x ULN"),
    (150, ABNORMAL, 1, "1.5 x baseline: grade 1 starts at 1.5 inclusive"),
    (300, ABNORMAL, 1, "3.0 x baseline: inclusive"),
    (301, ABNORMAL, 2, "3.01 x baseline"),
    (500, ABNORMAL, 2, "5.0 x baseline: inclusive"),
    (501, ABNORMAL, 3, "5.01 x baseline"),
    (2000, ABNORMAL, 3, "20.0 x baseline: inclusive"),
    (2001, ABNORMAL, 4, "20.01 x baseline"),
    (60, 40.0, 1, "baseline exactly at the ULN is normal: 1.5 x ULN is grade 1"),
    (60, 41.0, 0, "baseline just above the ULN is abnormal: 60 / 41 = 1.46 x baseline"),
    (60, np.nan, 1, "no baseline: graded as a normal baseline (1.5 x ULN)"),
    (np.nan, NORMAL, np.nan, "no value, no grade"),
]


@pytest.mark.parametrize("value, base, grade, why", HAND_WORKED, ids=[w for *_, w in HAND_WORKED])
def test_ctcae_grade_hand_worked(value, base, grade, why):
    got = ctcae_grade([value], [40.0], [base], [40.0])[0]
    assert (np.isnan(got) and np.isnan(grade)) or got == grade, why


def test_ctcae_grade_is_vectorised_and_bounds_survive_decimal_arithmetic():
    values, bases, grades, _ = zip(*HAND_WORKED)
    got = ctcae_grade(values, np.full(len(values), 40.0), bases, np.full(len(values), 40.0))
    np.testing.assert_array_equal(got, np.array(grades, dtype=float))
    # 12.3 / 8.2 is 1.5000000000000002 and 3 * 8.2 = 24.599999999999998 in binary floating point:
    # still exactly on the bounds 1.5 and 3.0 x baseline (ULN 8.0, baseline 8.2 abnormal)
    assert 12.3 / 8.2 != 1.5
    np.testing.assert_array_equal(ctcae_grade([12.3, 24.6, 24.61], [8.0] * 3, [8.2] * 3, [8.0] * 3), [1, 1, 2])


def test_each_sample_against_its_own_centres_uln():
    # baseline 42 at a centre with ULN 45: normal; the day-3 value 130 at a centre with ULN 40: 3.25 x ULN
    assert ctcae_grade([130], [40.0], [42.0], [45.0])[0] == 2
    # the same baseline measured where the ULN is 40 is abnormal: 130 / 42 = 3.1 x baseline
    assert ctcae_grade([130], [40.0], [42.0], [40.0])[0] == 2
    assert ctcae_grade([100], [40.0], [42.0], [40.0])[0] == 1  # 2.4 x baseline (2.5 x ULN either way)
    assert baseline_status([42.0, 42.0, np.nan], [45.0, 40.0, 40.0]).tolist() == ["normal", "abnormal", "missing"]


def test_censored_results_take_their_highest_possible_grade():
    # post-baseline ">100" (above the analyser's range): any value above 100, so grade 4
    assert ctcae_grade([100], [40.0], [NORMAL], [40.0], [">"], [""])[0] == 4
    # post-baseline "<5": at most 5, grade 0
    assert ctcae_grade([5], [40.0], [NORMAL], [40.0], ["<"], [""])[0] == 0
    # baseline "<50" (ULN 40) may be normal: graded against the ULN, 60 = 1.5 x ULN -> 1 (not 1.2 x 50 -> 0)
    assert ctcae_grade([60], [40.0], [50.0], [40.0], [""], ["<"])[0] == 1
    assert baseline_status([50.0], [40.0], ["<"]).tolist() == ["normal"]
    # baseline ">100": at least 100, abnormal; graded against 100 (the highest grade): 160 -> 1.6 x -> 1
    assert ctcae_grade([160], [40.0], [100.0], [40.0], [""], [">"])[0] == 1
    # baseline ">30" (ULN 40) may be normal: graded against the ULN
    assert ctcae_grade([60], [40.0], [30.0], [40.0], [""], [">"])[0] == 1


# --------------------------------------------------------------------------- per patient


def lab(key, test, value, day, centre="LDN", qualifier=None):
    return (key, "SC", centre, test, value, qualifier, "U/L", day)


def dose(key, start):
    return (key, "SC", "LDN", "SC", False, 100.0, "OD", np.nan, 100.0, start, 10.0)


def grade_patients(labs, ana, **given):
    ds = pd.DataFrame([patient_row(k, "IV" if k.startswith("i") else "SC")
                       for k in sorted({r[0] for r in labs} | {r[0] for r in ana} | {"none"})])
    labs = pd.DataFrame(labs, columns=LABS_COLUMNS)
    ana = pd.DataFrame(ana, columns=ANAKINRA_COLUMNS)
    rule = {**BASELINE_RULE, **given}
    return ds, hepatotoxicity(ds, labs, hepatotoxicity_settings(), anakinra=ana, baseline=rule).set_index(
        "patient_key")


def test_patient_grades_use_the_cohorts_baseline_rule():
    labs = [
        # a: ALT 30 the day before; ALT 100 on day 0 at 06:00, before the dose at 12:00 -> baseline 100 (abnormal)
        lab("a", "alt", 30.0, -0.5), lab("a", "alt", 100.0, 0.25), lab("a", "alt", 160.0, 3.4),
        # b: the same, but the dose at 00:00 (date-only): the day-0 sample is not before it -> baseline 30
        lab("b", "alt", 30.0, -0.5), lab("b", "alt", 100.0, 0.25), lab("b", "alt", 160.0, 3.4),
        # c: only a sample 8 days before (outside the 7-day window): no baseline, graded against the ULN
        lab("c", "alt", 100.0, -7.5), lab("c", "alt", 160.0, 3.4),
        # d: ALT (normal baseline, 45 = 1.1 x ULN -> 1) and AST (baseline 200, 700 = 3.5 x -> 2) drawn together
        lab("d", "alt", 20.0, -1.0), lab("d", "ast", 200.0, -1.0),
        lab("d", "alt", 45.0, 2.5), lab("d", "ast", 700.0, 2.5), lab("d", "ast", 300.0, 4.5),
        # e: only a day-0 sample after the dose (day 0 is before the window [1, 90]): not gradable
        lab("e", "alt", 500.0, 0.9),
    ]
    ana = [dose("a", 0.5), dose("b", 0.0), dose("c", 0.0), dose("d", 0.0), dose("e", 0.0)]
    ds, hep = grade_patients(labs, ana)
    assert list(hep.reset_index().columns) == patient_columns(hepatotoxicity_settings())
    assert hep.loc["a", "alt_baseline_status"] == "abnormal" and hep.loc["a", "ctcae_grade"] == 1   # 1.6 x baseline
    assert hep.loc["b", "alt_baseline_status"] == "normal" and hep.loc["b", "ctcae_grade"] == 2     # 4.0 x ULN
    assert hep.loc["c", "alt_baseline_status"] == "missing" and hep.loc["c", "ctcae_grade"] == 2
    assert (hep.loc["d", "ctcae_grade_alt"], hep.loc["d", "ctcae_grade_ast"], hep.loc["d", "ctcae_grade"]) == (1, 2, 2)
    assert hep.loc["d", "baseline_status"] == "abnormal"  # AST's baseline is above the ULN
    assert hep.loc["a", "baseline_status"] == "abnormal"  # ALT abnormal, AST missing
    assert hep.loc["b", "baseline_status"] == "missing"   # ALT normal, AST missing
    # samples: distinct sample times with an ALT or AST on days 1-90 (d's ALT and AST at 2.5 are one)
    assert hep["post_baseline_samples"].to_dict() == {"a": 1, "b": 1, "c": 1, "d": 2, "e": 0, "none": 0}
    assert pd.isna(hep.loc["e", "ctcae_grade"]) and pd.isna(hep.loc["none", "ctcae_grade"])
    assert hep.loc["e", "max_uln_ratio"] != hep.loc["e", "max_uln_ratio"]  # no sample in the window either
    # same_day = always: b's day-0 sample counts, as a's does
    _, always = grade_patients(labs, ana, same_day="always")
    assert always.loc["b", "ctcae_grade"] == 1
    # pick = worst: a's baseline is the higher of its two
    _, worst = grade_patients(labs, ana, pick="worst", same_day="always")
    assert worst.loc["b", "alt_baseline_status"] == "abnormal"


def test_summary_by_route_with_samples_per_patient():
    labs = [
        lab("i1", "alt", 20.0, -1.0), lab("i1", "alt", 900.0, 2.0), lab("i1", "alt", 50.0, 5.0),   # 4
        lab("i2", "alt", 20.0, -1.0), lab("i2", "alt", 100.0, 2.0),                               # 1
        lab("s1", "alt", 100.0, -1.0), lab("s1", "alt", 160.0, 2.0), lab("s1", "alt", 90.0, 4.0),
        lab("s1", "alt", 80.0, 6.0),                                                              # 1, abnormal
        lab("s2", "alt", 30.0, 3.0),                                                              # 0, no baseline
    ]
    ana = [dose(k, 0.0) for k in ("i1", "i2", "s1", "s2", "s3")]
    ds = pd.DataFrame([patient_row(k, "IV" if k.startswith("i") else "SC") for k in ("i1", "i2", "s1", "s2", "s3")])
    r = hepatotoxicity_analysis(ds, pd.DataFrame(labs, columns=LABS_COLUMNS), hepatotoxicity_settings(),
                                anakinra=pd.DataFrame(ana, columns=ANAKINRA_COLUMNS), baseline=BASELINE_RULE)
    summary = r.tables["summary"]
    assert list(summary.columns) == COUNT_COLUMNS + SAMPLE_COLUMNS
    assert list(dict.fromkeys(summary["outcome"])) == ["hepatotox_3xuln", "hepatotox_5xuln", *CTCAE_ROWS]
    assert not undocumented("hepatotoxicity", summary.columns)
    s = summary.set_index(["outcome", "group"])
    assert s.loc[("ctcae_grade_4", "IV"), ["n", "events", "not_evaluable"]].tolist() == [2, 1, 0]
    assert s.loc[("ctcae_grade_1", "overall"), ["n", "events", "not_evaluable", "percent"]].tolist() == [4, 2, 1, 50]
    assert s.loc[("ctcae_grade_0", "SC"), ["n", "events", "not_evaluable"]].tolist() == [2, 1, 1]
    assert s.loc[("ctcae_grade_3plus", "IV"), "events"] == 1 and s.loc[("ctcae_grade_3plus", "SC"), "events"] == 0
    # baseline status of the graded patients: s2 has none (graded against the ULN), s3 has no sample at all
    assert s.loc[("ctcae_baseline_missing", "SC"), ["n", "events"]].tolist() == [2, 1]
    assert s.loc[("ctcae_baseline_abnormal", "SC"), "events"] == 1
    # samples per graded patient: IV 2 and 1 -> 1.5 [1.25, 1.75]; SC 3 and 1 -> 2 [1.5, 2.5]
    assert s.loc[("ctcae_grade_0", "IV"), SAMPLE_COLUMNS].tolist() == [1.5, 1.25, 1.75]
    assert s.loc[("hepatotox_3xuln", "SC"), SAMPLE_COLUMNS].tolist() == [2.0, 1.5, 2.5]
    assert s.loc[("ctcae_grade_0", "overall"), "samples_median"] == 1.5
    # the >k x ULN flags are unchanged: i1 900 / 40, i2 100 / 40 = 2.5, s1 160 / 40 = 4
    assert s.loc[("hepatotox_3xuln", "overall"), ["n", "events"]].tolist() == [4, 2]
    assert any("without a baseline" in n for n in r.notes)


def test_baseline_matches_the_analysis_datasets(tmp_path):
    """The hepatotoxicity rule's baseline, from the long tables, is the one the cohort put in the
    analysis dataset (alt_baseline), under each same-day rule and pick."""
    w = World()
    people = [("amy", "2019-02-03 10:00", [("2019-02-02 09:00", 60), ("2019-02-03 08:00", 120),
                                           ("2019-02-03 11:00", 300)]),
              ("ben", "2019-03-03", [("2019-03-01", 70), ("2019-03-03 07:00", 150)]),
              ("cat", "2019-04-10 09:00", [("2019-04-02 09:00", 80), ("2019-04-09", 20), ("2019-04-10", 400)]),
              ("dan", "2019-05-10 09:00", [("2019-05-01 09:00", 80)])]
    for i, (name, first, samples) in enumerate(people):
        day = pd.Timestamp(first).normalize()
        adm = w.admission(name, ["LDN", "SHF", "BHM"][i % 3], str((day - pd.Timedelta(days=9)).date()),
                          str((day + pd.Timedelta(days=20)).date()), lab_day=str((day - pd.Timedelta(days=6)).date()),
                          doses=[(first, str((day + pd.Timedelta(days=5)).date()), "SC", 400)],
                          last_seen=str((day + pd.Timedelta(days=60)).date()))
        for when, value in samples:
            w.lab(adm, when, "alt", value)
    cohort_cfg = yaml.safe_load(open("config/config.yaml"))["cohort"]
    for pick in ("nearest", "worst"):
        for same_day in ("before_dose", "always", "never"):
            rule = {"window_days": 7, "pick": pick, "same_day": same_day}
            c = derive_cohort(w.tables(), {**cohort_cfg, "baseline": rule}, date(2020, 6, 30))
            assert len(c.dataset) == 4
            patients = pd.Index(c.dataset["patient_key"])
            base = baselines(_results(c.labs, ["alt"], patients, ULN), c.anakinra, patients, ["alt"], rule)
            got = base.set_index("p")["value"].reindex(range(len(patients))).to_numpy()
            np.testing.assert_array_equal(got, c.dataset["alt_baseline"].to_numpy(), err_msg=f"{pick}, {same_day}")


def test_report_table_presents_the_grade_with_the_samples_beside_it():
    from stormcohort.report.fmt import Formatter
    from stormcohort.report.sections import hepatotoxicity_table

    labs = [lab("i1", "alt", 20.0, -1.0), lab("i1", "alt", 900.0, 2.0), lab("i1", "alt", 50.0, 5.0),
            lab("s1", "alt", 100.0, -1.0), lab("s1", "alt", 160.0, 2.0)]
    ds = pd.DataFrame([patient_row(k, "IV" if k.startswith("i") else "SC") for k in ("i1", "s1", "s2")])
    summary = hepatotoxicity_analysis(ds, pd.DataFrame(labs, columns=LABS_COLUMNS), hepatotoxicity_settings(),
                                      anakinra=pd.DataFrame([dose(k, 0.0) for k in ("i1", "s1", "s2")],
                                                            columns=ANAKINRA_COLUMNS),
                                      baseline=BASELINE_RULE).tables["summary"]
    t = hepatotoxicity_table(summary, Formatter())
    rows = {r[0]: r[1:] for r in t.rows}
    assert t.rows[0][0].startswith("Worst post-baseline CTCAE v5.0 grade") and 0 in t.header_rows
    assert rows["CTCAE grade 4"] == ["1 (50%)", "1 (100%)", "0 (0%)", "1"]
    assert rows["CTCAE grade 1"] == ["1 (50%)", "0 (0%)", "1 (100%)", "1"]
    assert rows["Post-baseline ALT/AST samples per patient, median [IQR]"] == [
        "1.5 [1.2, 1.8]", "2.0 [2.0, 2.0]", "1.0 [1.0, 1.0]", ""]
    assert rows["Above the ULN (graded against the baseline)"][2] == "1 (100%)"
    assert "ALT or AST >3\u00d7ULN" in rows
