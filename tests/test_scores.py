"""Tests for stormcohort.scores.

Every expected value is worked out by hand from the published definitions:
HScore (Fardet 2014, table as on MDCalc), HLH-2004 (Henter 2007), MAS 2016 (Ravelli 2016).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stormcohort.scores import (
    hlh2004_count,
    hscore,
    hscore_components,
    hscore_items_missing,
    mas2016,
    meets_cutoff,
    meets_shlh_definition,
)

FLAG_COLS = ("hepatomegaly", "splenomegaly", "immunosuppression", "bm_haemophagocytosis", "sjia")

# A fully recorded row that meets nothing: HScore 0, HLH-2004 0, MAS False.
NEUTRAL = dict(
    max_temp_c=37.0, hepatomegaly=False, splenomegaly=False, immunosuppression=False,
    bm_haemophagocytosis=False, ferritin=100.0, triglycerides=1.0, fibrinogen=4.0,
    ast=20.0, hb=140.0, platelets=250.0, wbc=8.0, neutrophils=5.0, scd25=500.0, sjia=False,
)


def frame(*rows: dict, index=None) -> pd.DataFrame:
    """Rows = NEUTRAL overridden by each dict; flags as nullable booleans like canonical."""
    df = pd.DataFrame([{**NEUTRAL, **r} for r in rows], index=index)
    for c in FLAG_COLS:
        df[c] = df[c].astype("boolean")
    return df


def one(**kw) -> pd.DataFrame:
    return frame(kw)


# ---------------------------------------------------------------- HScore


def test_neutral_row_scores_nothing():
    df = one()
    assert hscore(df).iloc[0] == 0
    assert hscore_items_missing(df).iloc[0] == 0
    assert hlh2004_count(df).iloc[0] == 0
    assert not mas2016(df).iloc[0]


@pytest.mark.parametrize(
    "temp, pts",
    [(38.39, 0), (38.4, 33), (39.0, 33), (39.4, 33), (39.41, 49)],  # <38.4 / 38.4-39.4 / >39.4
)
def test_hscore_temperature_bands(temp, pts):
    assert hscore(one(max_temp_c=temp)).iloc[0] == pts


@pytest.mark.parametrize(
    "ferritin, pts", [(1999, 0), (2000, 35), (6000, 35), (6001, 50)]  # <2000 / 2000-6000 / >6000
)
def test_hscore_ferritin_bands(ferritin, pts):
    assert hscore(one(ferritin=float(ferritin))).iloc[0] == pts


@pytest.mark.parametrize("tg, pts", [(1.49, 0), (1.5, 44), (4.0, 44), (4.01, 64)])  # <1.5 / 1.5-4 / >4
def test_hscore_triglyceride_bands(tg, pts):
    assert hscore(one(triglycerides=tg)).iloc[0] == pts


@pytest.mark.parametrize("fib, pts", [(2.5, 30), (2.51, 0)])  # <=2.5 g/L -> 30
def test_hscore_fibrinogen(fib, pts):
    assert hscore(one(fibrinogen=fib)).iloc[0] == pts


@pytest.mark.parametrize("ast, pts", [(29.0, 0), (30.0, 19)])  # >=30 U/L -> 19
def test_hscore_ast(ast, pts):
    assert hscore(one(ast=ast)).iloc[0] == pts


@pytest.mark.parametrize(
    "hep, spl, pts", [(True, False, 23), (False, True, 23), (True, True, 38)]
)
def test_hscore_organomegaly(hep, spl, pts):
    assert hscore(one(hepatomegaly=hep, splenomegaly=spl)).iloc[0] == pts


@pytest.mark.parametrize(
    "hb, plt, wbc, pts",
    [
        (92.0, 250.0, 8.0, 0),    # one lineage (Hb <=92) -> 0
        (92.0, 110.0, 8.0, 24),   # Hb <=92 and plt <=110: two -> 24
        (93.0, 110.0, 8.0, 0),    # Hb 93 not cytopenic: one -> 0
        (92.0, 111.0, 8.0, 0),    # plt 111 not cytopenic: one -> 0
        (92.0, 110.0, 5.0, 34),   # WBC <=5.0 too: three -> 34
        (92.0, 110.0, 5.01, 24),  # WBC 5.01 not cytopenic: two -> 24
    ],
)
def test_hscore_cytopenias(hb, plt, wbc, pts):
    assert hscore(one(hb=hb, platelets=plt, wbc=wbc)).iloc[0] == pts


def test_hscore_immunosuppression_and_marrow():
    df = frame({"immunosuppression": True}, {"bm_haemophagocytosis": True})
    assert hscore(df).tolist() == [18, 35]


def test_hscore_maximum_is_337():
    df = one(
        immunosuppression=True, max_temp_c=40.0, hepatomegaly=True, splenomegaly=True,
        hb=80.0, platelets=50.0, wbc=2.0, ferritin=20000.0, triglycerides=5.0,
        fibrinogen=1.0, ast=100.0, bm_haemophagocytosis=True,
    )
    # 18 + 49 + 38 + 34 + 50 + 64 + 30 + 19 + 35 = 337
    assert hscore(df).iloc[0] == 337


def test_hscore_exactly_169_meets_definition_and_168_region_does_not():
    at_169 = dict(max_temp_c=39.0, ferritin=7000.0, triglycerides=2.0, hepatomegaly=True, ast=30.0)
    # 33 (38.4-39.4) + 50 (>6000) + 44 (1.5-4) + 23 (one organ) + 19 (AST>=30) = 169
    below = {**at_169, "ast": 29.0}  # 169 - 19 = 150
    res = meets_shlh_definition(frame(at_169, below))
    assert res["hscore"].tolist() == [169, 150]
    # HLH-2004 for both: fever 39.0>=38.5 (1) + ferritin>=500 (1) = 2 < 5; not sJIA
    assert res["hlh2004_count"].tolist() == [2, 2]
    assert res["meets_definition"].tolist() == [True, False]


def test_hscore_components_sum_to_score():
    df = one(max_temp_c=39.0, ferritin=7000.0, hb=90.0, platelets=100.0)
    comp = hscore_components(df)
    # temperature 33, ferritin 50, cytopenias 24 (Hb + plt) = 107
    assert comp.loc[0, "hscore_temperature"] == 33
    assert comp.loc[0, "hscore_ferritin"] == 50
    assert comp.loc[0, "hscore_cytopenias"] == 24
    assert comp.drop(columns="hscore_items_missing").sum(axis=1).iloc[0] == 107 == hscore(df).iloc[0]


# ---------------------------------------------------------------- missing data


def test_all_missing_scores_zero_with_nine_items_missing():
    df = one(**{c: np.nan for c in NEUTRAL if c not in FLAG_COLS},
             **{c: pd.NA for c in FLAG_COLS})
    res = meets_shlh_definition(df)
    assert res.loc[0, "hscore"] == 0
    assert res.loc[0, "hscore_items_missing"] == 9
    assert res.loc[0, "hlh2004_count"] == 0
    assert not pd.isna(res.loc[0, "mas2016"]) and res.loc[0, "mas2016"] == False  # noqa: E712
    assert res.loc[0, "meets_definition"] == False  # noqa: E712


def test_partially_recorded_items_count_as_missing_but_keep_known_points():
    df = frame(
        {"hepatomegaly": True, "splenomegaly": pd.NA},  # 23 known, could be 38
        {"hb": np.nan, "platelets": 100.0, "wbc": 4.0},  # two lineages = 24, Hb unknown
        {"ferritin": np.nan, "ast": np.nan},  # two plain missing items
    )
    assert hscore(df).tolist() == [23, 24, 0]
    assert hscore_items_missing(df).tolist() == [1, 1, 2]


def test_nullable_float_input_with_na():
    df = one(ferritin=7000.0, fibrinogen=2.0)
    df["ferritin"] = pd.array([pd.NA], dtype="Float64")
    df["fibrinogen"] = df["fibrinogen"].astype("Float64")
    # ferritin NA -> 0, fibrinogen 2.0 <=2.5 -> 30
    assert hscore(df).iloc[0] == 30
    assert hscore_items_missing(df).iloc[0] == 1


def test_absent_column_raises():
    with pytest.raises(KeyError, match="ferritin"):
        hscore(one().drop(columns="ferritin"))
    with pytest.raises(KeyError, match="scd25"):
        hlh2004_count(one().drop(columns="scd25"))
    with pytest.raises(KeyError, match="sjia"):
        mas2016(one().drop(columns="sjia"))


# ---------------------------------------------------------------- HLH-2004


@pytest.mark.parametrize(
    "over, n",
    [
        ({"max_temp_c": 38.5}, 1), ({"max_temp_c": 38.49}, 0),
        ({"splenomegaly": True}, 1),
        ({"hb": 89.0, "platelets": 99.0}, 1),   # two lineages
        ({"hb": 90.0, "platelets": 99.0}, 0),   # Hb 90 not <90: one lineage
        ({"neutrophils": 0.99, "platelets": 99.0}, 1),
        ({"neutrophils": 1.0, "platelets": 99.0}, 0),  # ANC 1.0 not <1.0
        ({"platelets": 100.0, "hb": 89.0}, 0),  # plt 100 not <100
        ({"triglycerides": 3.0}, 1), ({"triglycerides": 2.99}, 0),
        ({"fibrinogen": 1.5}, 1), ({"fibrinogen": 1.51}, 0),
        ({"triglycerides": 3.5, "fibrinogen": 1.0}, 1),  # and/or: counted once
        ({"bm_haemophagocytosis": True}, 1),
        ({"ferritin": 500.0}, 1), ({"ferritin": 499.0}, 0),
        ({"scd25": 2400.0}, 1), ({"scd25": 2399.0}, 0),
    ],
)
def test_hlh2004_single_criteria(over, n):
    assert hlh2004_count(one(**over)).iloc[0] == n


def test_hlh2004_four_vs_five_criteria():
    four = dict(max_temp_c=39.0, splenomegaly=True, ferritin=600.0, scd25=3000.0)
    five = {**four, "bm_haemophagocytosis": True}
    # HScore four: 33 (39.0) + 23 (spleen) = 56; five: 56 + 35 (marrow) = 91, both < 169
    res = meets_shlh_definition(frame(four, five))
    assert res["hlh2004_count"].tolist() == [4, 5]
    assert res["hscore"].tolist() == [56, 91]
    assert res["meets_definition"].tolist() == [False, True]
    # lowering the threshold to 4 admits the first row
    assert meets_shlh_definition(frame(four), hlh2004_min=4)["meets_definition"].iloc[0]


def test_hlh2004_nk_never_counted_max_is_seven():
    df = one(max_temp_c=40.0, splenomegaly=True, hb=80.0, platelets=50.0, neutrophils=0.5,
             triglycerides=4.0, fibrinogen=1.0, bm_haemophagocytosis=True, ferritin=5000.0,
             scd25=5000.0)
    # fever, spleen, cytopenias, TG/fib (once), marrow, ferritin, sCD25 = 7; NK always 0
    assert hlh2004_count(df).iloc[0] == 7
    assert hlh2004_count(df).dtype == np.int64


# ---------------------------------------------------------------- MAS 2016

MAS_BASE = dict(sjia=True, max_temp_c=38.0, ferritin=685.0, platelets=181.0, ast=49.0)


@pytest.mark.parametrize(
    "over, expected",
    [
        ({}, True),  # ferritin 685 >684, plt 181 <=181, AST 49 >48: 2 others
        ({"ferritin": 684.0}, False),  # ferritin must be >684
        ({"ast": 48.0}, False),  # only platelets left: 1 other
        ({"platelets": 182.0}, False),  # only AST left: 1 other
        ({"ast": 48.0, "triglycerides": 1.77}, True),  # 1.77*88.57=156.8 >156
        ({"ast": 48.0, "triglycerides": 1.76}, False),  # 1.76*88.57=155.9 not >156
        ({"ast": 48.0, "fibrinogen": 3.6}, True),  # 3.6 g/L = 360 mg/dL, <=360
        ({"ast": 48.0, "fibrinogen": 3.61}, False),
        ({"max_temp_c": 37.9}, False),  # not febrile (fever = >=38.0 C)
        ({"max_temp_c": np.nan}, False),  # fever not documented
        ({"sjia": False}, False),
        ({"sjia": pd.NA}, False),
    ],
)
def test_mas2016(over, expected):
    res = mas2016(one(**{**MAS_BASE, **over}))
    assert res.dtype == "boolean"
    assert res.iloc[0] == expected
    assert not res.isna().any()


def test_mas_only_case_depends_on_use_mas2016():
    df = one(**MAS_BASE)
    # HScore: 38.0 <38.4 -> 0, ferritin 685 <2000 -> 0, plt 181 >110, AST 49 >=30 -> 19 = 19
    # HLH-2004: 38.0 <38.5 no; ferritin 685 >=500 -> 1
    res = meets_shlh_definition(df)
    assert (res.loc[0, "hscore"], res.loc[0, "hlh2004_count"]) == (19, 1)
    assert res.loc[0, "mas2016"] == True  # noqa: E712
    assert res.loc[0, "meets_definition"] == True  # noqa: E712
    assert meets_shlh_definition(df, use_mas2016=False).loc[0, "meets_definition"] == False  # noqa: E712


# ---------------------------------------------------------------- vectorised / alignment


def test_vectorised_rows_aligned_to_index():
    rows = [
        {},                                               # hscore 0, hlh 0
        dict(max_temp_c=39.41, ferritin=2000.0),          # 49 + 35 = 84; hlh fever + ferritin = 2
        dict(hb=92.0, platelets=110.0, wbc=5.0, fibrinogen=2.5),  # 34 + 30 = 64; hlh: hb 92, plt 110 not cytopenic
        MAS_BASE,                                         # 19 (see above); hlh 1; MAS
    ]
    idx = pd.Index(["a", "z", "m", "b"], name="admission_key")
    res = meets_shlh_definition(frame(*rows, index=idx))
    assert list(res.columns) == [
        "hscore", "hscore_items_missing", "hlh2004_count", "mas2016", "meets_definition"
    ]
    assert res.index.equals(idx)
    assert res["hscore"].tolist() == [0, 84, 64, 19]
    assert res["hlh2004_count"].tolist() == [0, 2, 0, 1]
    assert res["mas2016"].tolist() == [False, False, False, True]
    assert res["meets_definition"].tolist() == [False, False, False, True]


def test_large_frame_matches_rowwise():
    rows = [{}, dict(max_temp_c=39.0, ferritin=7000.0, triglycerides=2.0, hepatomegaly=True,
                     ast=30.0), MAS_BASE]
    base = frame(*rows)
    big = base.iloc[np.tile(np.arange(3), 40_000)].reset_index(drop=True)  # 120,000 rows
    res = meets_shlh_definition(big)
    assert len(res) == 120_000
    assert res["hscore"].tolist() == [0, 169, 19] * 40_000
    assert res["meets_definition"].tolist() == [False, True, True] * 40_000


# ---------------------------------------------------------------- censored values ('<x', '>x')


def censored(**values) -> pd.DataFrame:
    """One NEUTRAL row whose labs are given as text, e.g. ferritin='<500': value + <test>_qualifier."""
    row = {}
    for test, text in values.items():
        text = str(text)
        qualifier = text[0] if text[0] in "<>" else ""
        row[test], row[f"{test}_qualifier"] = float(text.lstrip("<>")), qualifier
    return frame(row)


@pytest.mark.parametrize(
    "qualifier, value, op, cut, certain, possible",
    [
        ("<", 500, ">=", 500, False, False), ("<", 600, ">=", 500, False, True),
        ("<", 600, ">", 500, False, True), ("<", 500, ">", 500, False, False),
        ("<", 1.5, "<=", 2.5, True, True), ("<", 2.5, "<=", 2.5, True, True), ("<", 3.0, "<=", 2.5, False, True),
        ("<", 100, "<", 100, True, True), ("<", 101, "<", 100, False, True),
        (">", 6000, ">", 6000, True, True), (">", 3000, ">", 6000, False, True),
        (">", 2000, ">=", 2000, True, True), (">", 1999, ">=", 2000, False, True),
        (">", 2.5, "<=", 2.5, False, False), (">", 2.0, "<=", 2.5, False, True),
        (">", 50, "<", 100, False, True), (">", 100, "<", 100, False, False),
        ("", 500, ">=", 500, True, True), ("", 499, ">=", 500, False, False),
    ],
)
def test_meets_cutoff_of_a_censored_value(qualifier, value, op, cut, certain, possible):
    v, q = np.array([float(value)]), np.array([qualifier], dtype=object)
    assert meets_cutoff(v, q, op, cut)[0] == certain  # every value it stands for meets the cut-off
    assert meets_cutoff(v, q, op, cut, possible=True)[0] == possible  # some value does


def test_missing_value_never_meets_but_possibly_does():
    v, q = np.array([np.nan]), np.array([""], dtype=object)
    assert not meets_cutoff(v, q, ">=", 500)[0] and meets_cutoff(v, q, ">=", 500, possible=True)[0]


def test_below_500_ferritin_does_not_meet_hlh2004_ferritin():
    assert hlh2004_count(censored(ferritin="<500")).iloc[0] == 0
    assert hlh2004_count(censored(ferritin="500")).iloc[0] == 1
    assert hlh2004_count(censored(ferritin=">500")).iloc[0] == 1


def test_censored_fibrinogen_and_platelets_against_upper_cutoffs():
    # '<1.5' g/L: every value is <=2.5 (HScore 30) and <=1.5 (HLH-2004 criterion 4).
    df = censored(fibrinogen="<1.5")
    assert hscore(df).iloc[0] == 30 and hlh2004_count(df).iloc[0] == 1
    assert hscore_items_missing(df).iloc[0] == 0
    # '>2.0' g/L might be <=2.5 or not: 0 points, not fully ascertained; '>2.5' is certainly 0.
    assert hscore(censored(fibrinogen=">2.0")).iloc[0] == 0
    assert hscore_items_missing(censored(fibrinogen=">2.0")).iloc[0] == 1
    assert hscore_items_missing(censored(fibrinogen=">2.5")).iloc[0] == 0
    # '<100' platelets meets HLH-2004's <100; with Hb 80 two lineages are cytopenic.
    assert hlh2004_count(censored(platelets="<100", hb="80")).iloc[0] == 1
    assert hlh2004_count(censored(platelets=">50", hb="80")).iloc[0] == 0


@pytest.mark.parametrize("text, points, missing", [
    (">6000", 50, 0),    # every value >6000: the top band
    (">3000", 35, 1),    # 35 at least, could be 50
    ("<2000", 0, 0),     # every value <2000
    ("<3000", 0, 1),     # could be 35
    (">1999", 0, 1),     # could be 35 or 50; not every value reaches 2000
    (">2000", 35, 1),
])
def test_hscore_ferritin_band_of_a_censored_value(text, points, missing):
    df = censored(ferritin=text)
    assert hscore_components(df)["hscore_ferritin"].iloc[0] == points
    assert hscore_items_missing(df).iloc[0] == missing


def test_censored_cytopenias_count_as_not_ascertained_when_points_could_rise():
    # Hb 80 and WBC 2 cytopenic (24); platelets '>100' might be <=110: could be 34.
    df = censored(hb="80", wbc="2", platelets=">100")
    assert hscore_components(df)["hscore_cytopenias"].iloc[0] == 24
    assert hscore_items_missing(df).iloc[0] == 1
    assert hscore_items_missing(censored(hb="80", wbc="2", platelets=">110")).iloc[0] == 0


def test_mas2016_ferritin_censored():
    assert mas2016(one(**MAS_BASE)).iloc[0]
    base = {k: v for k, v in MAS_BASE.items() if k != "ferritin"}
    for text, expected in ((">684", True), (">600", False), ("<700", False)):
        df = censored(ferritin=text).assign(**base)
        df["sjia"] = df["sjia"].astype("boolean")
        assert mas2016(df).iloc[0] == expected, text


def test_missing_or_empty_qualifier_means_unqualified():
    df = censored(ferritin="<500")
    df["ferritin_qualifier"] = pd.Series([pd.NA], dtype="object")
    assert hlh2004_count(df).iloc[0] == 1
    assert hlh2004_count(df.drop(columns="ferritin_qualifier")).iloc[0] == 1
