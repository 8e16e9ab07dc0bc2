"""Table 1 statistics against hand-worked values."""

import numpy as np
import pandas as pd
import pytest

from stormcohort.table1 import COLUMNS, smd_categorical, smd_continuous, table1


def test_smd_continuous_hand_worked():
    # a: mean 2, sample var 1; b: mean 4, sample var 4 -> |2-4| / sqrt((1+4)/2) = 2 / 1.5811 = 1.2649
    assert smd_continuous(pd.Series([1, 2, 3]), pd.Series([2, 4, 6])) == pytest.approx(2 / np.sqrt(2.5))


def test_smd_binary_matches_the_proportion_formula():
    # p1 = 0.5, p2 = 0.25: |p1-p2| / sqrt((p1(1-p1) + p2(1-p2)) / 2) = 0.25 / sqrt(0.21875) = 0.5345
    a = pd.Series(["y", "n", "y", "n"])
    b = pd.Series(["y", "n", "n", "n"])
    assert smd_categorical(a, b) == pytest.approx(0.25 / np.sqrt((0.25 + 0.1875) / 2))


def test_smd_categorical_three_levels_is_zero_for_equal_distributions():
    a = pd.Series(list("xyzxyz"))
    assert smd_categorical(a, a.sample(frac=1, random_state=1)) == pytest.approx(0)
    assert np.isnan(smd_categorical(pd.Series(["x"]), pd.Series([], dtype=str)))


def test_table1_counts_and_missing():
    data = pd.DataFrame({
        "route_group": ["IV", "IV", "SC", "SC", "SC"],
        "age_years": [10, 20, 30, np.nan, 50],
        "sex": ["F", "M", "F", "F", None],
    })
    for col in ["weight_kg", "hscore", "hlh2004_count", "ferritin_baseline", "crp_baseline", "platelets_baseline",
                "alt_baseline", "days_admission_to_anakinra", "max_daily_dose_mg", "max_dose_mg_per_kg_day"]:
        data[col] = 1.0
    for col in ["centre", "age_group", "trigger_category", "icu", "oedema", "cns", "mas2016"]:
        data[col] = "a"
    t = table1(data)
    assert list(t.columns) == COLUMNS
    assert t.loc[t["variable"].eq("patients"), "count"].tolist() == [5, 2, 3]  # overall, IV, SC
    t = t.set_index(["variable", "level", "group"])
    age = t.loc[("age_years", "", "IV")]
    assert age["kind"] == "continuous" and age["n"] == 2 and age["missing"] == 0
    assert age[["median", "q1", "q3"]].tolist() == [15.0, 12.5, 17.5]
    assert t.loc[("age_years", "", "overall"), "missing"] == 1 and t.loc[("age_years", "", "SC"), "missing"] == 1
    # Percentages of non-missing: SC sex has F, F and one missing -> 2 of 2 (100%).
    f = t.loc[("sex", "F", "SC")]
    assert (f["kind"], f["n"], f["count"], f["percent"], f["missing"]) == ("categorical", 2, 2, 100.0, 1)
    assert t.loc[("sex", "M", "IV"), "percent"] == 50.0
    # the SMD once per variable, on its overall rows
    assert np.isfinite(t.loc[("age_years", "", "overall"), "smd"]) and np.isnan(t.loc[("age_years", "", "IV"), "smd"])
