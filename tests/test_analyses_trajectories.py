"""Lab trajectories: table contract, recovered slopes, the day window, empty groups, the figure."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from stormcohort.analyses.dictionary import undocumented
from stormcohort.analyses.trajectories import (
    DAILY_COLUMNS,
    TABLE_COLUMNS,
    TERMS,
    daily_summary,
    settings,
    trajectories_analysis,
    trajectory_data,
)
from stormcohort.figures import save
from stormcohort.plots.trajectories import trajectories_figure
from tests.config_defaults import schema_defaults
from tests.test_analyses_binary import LABS_COLUMNS, cohort_tables


def trajectories(labs: pd.DataFrame, cfg: dict | None = None, **kw):
    """Model table, daily summary, the samples used and the model (schema defaults for settings not in ``cfg``)."""
    s = schema_defaults("trajectories", **(cfg or {}))
    r = trajectories_analysis(labs, s, synthetic=True, **kw)
    return r.tables["table"], r.tables["daily"], trajectory_data(labs, s["tests"], s["days"]), r.model


def simulated_labs(n_iv=20, n_sc=30, iv_slope_diff=0.1, seed=3) -> pd.DataFrame:
    """log ferritin = 9 - 0.2 day (+0.1 day in IV) + patient intercept and slope + noise."""
    r = np.random.default_rng(seed)
    rows = []
    for i in range(n_iv + n_sc):
        g = "IV" if i < n_iv else "SC"
        b0 = 9 + r.normal(0, 0.5)
        b1 = -0.2 + (iv_slope_diff if g == "IV" else 0) + r.normal(0, 0.03)
        for day in (0, 1, 2, 3, 5, 7, 10, 14):
            t = day + 0.3
            rows.append((f"P{i:03d}", g, "LDN", "ferritin", float(np.exp(b0 + b1 * t + r.normal(0, 0.15))), None,
                         "ug/L", t))
    return pd.DataFrame(rows, columns=LABS_COLUMNS)


def test_table_contract_and_recovered_slopes():
    labs = simulated_labs()
    table, daily, data, model = trajectories(labs, {"tests": ["ferritin"]})
    assert list(table.columns) == TABLE_COLUMNS
    assert not undocumented("trajectories", table.columns)
    assert table["term"].tolist() == TERMS
    t = table.set_index("term")
    assert t.loc["day", "coef"] == pytest.approx(-0.2, abs=0.03)
    assert t.loc["route_group[IV]:day", "coef"] == pytest.approx(0.1, abs=0.03)
    assert t.loc["route_group[IV]:day", "p"] < 0.001
    assert t.loc["route_group[IV]", "lcl"] < 0 < t.loc["route_group[IV]", "ucl"]  # no true day-0 difference
    assert (t["lcl"] < t["coef"]).all() and (t["coef"] < t["ucl"]).all()
    # t intervals on Satterthwaite df (about the number of patients here: 50 patients, 8 samples each)
    assert ((t["df"] > 10) & (t["df"] < 400)).all()
    q = stats.t.ppf(0.975, t["df"])
    assert (t["ucl"] - t["coef"]).to_numpy() == pytest.approx((q * t["se"]).to_numpy(), rel=1e-10)
    m = model["models"]["ferritin"]
    assert m["df_method"] == "Satterthwaite" and m["singular"] is False and len(m["theta"]) == 3
    assert m["deaths_in_window"] is None  # no dataset given
    assert t["n_patients"].eq(50).all() and t["n_obs"].eq(400).all()
    assert set(t["random_effects"]) <= {"intercept+slope", "intercept"}
    assert list(daily.columns) == DAILY_COLUMNS
    assert model["models"]["ferritin"]["unit"] == "ug/L"


def test_days_outside_the_window_are_not_used():
    labs = pd.DataFrame([
        ("a", "SC", "LDN", "crp", 100.0, None, "mg/L", -0.5),   # before the index date
        ("a", "SC", "LDN", "crp", 50.0, None, "mg/L", 0.2),
        ("a", "SC", "LDN", "crp", 20.0, None, "mg/L", 14.9),    # calendar day 14: kept
        ("a", "SC", "LDN", "crp", 5.0, None, "mg/L", 15.1),     # day 15: dropped
        ("a", "SC", "LDN", "crp", np.nan, None, "mg/L", 3.0),   # no value: dropped
    ], columns=LABS_COLUMNS)
    d = trajectory_data(labs, ["crp"], [0, 14])
    assert d["value"].tolist() == [50.0, 20.0]
    assert d["cday"].tolist() == [0, 14]


def test_daily_summary_hand_checked():
    labs = pd.DataFrame([
        ("a", "SC", "LDN", "crp", 10.0, None, "mg/L", 1.2),
        ("a", "SC", "LDN", "crp", 99.0, None, "mg/L", 1.8),   # second sample of the day: not used
        ("b", "SC", "LDN", "crp", 20.0, None, "mg/L", 1.5),
        ("c", "SC", "LDN", "crp", 60.0, None, "mg/L", 1.1),
        ("d", "IV", "LDN", "crp", 7.0, None, "mg/L", 2.0),
    ], columns=LABS_COLUMNS)
    daily = daily_summary(trajectory_data(labs, ["crp"], [0, 14]), ["crp"])
    sc = daily[daily["group"].eq("SC")].iloc[0]
    assert (sc["day"], sc["n"], sc["median"], sc["q1"], sc["q3"]) == (1, 3, 20.0, 15.0, 40.0)
    assert daily[daily["group"].eq("IV")][["day", "n", "median"]].values.tolist() == [[2, 1, 7.0]]


def test_empty_group_and_missing_test_give_reasons_not_errors():
    labs = simulated_labs()
    sc_only = labs[labs["route_group"].eq("SC")]
    table, _, _, model = trajectories(sc_only, {"tests": ["ferritin", "platelets"]})
    ferritin = table[table["test"].eq("ferritin")].set_index("term")
    assert np.isfinite(ferritin.loc["day", "coef"])  # the SC trajectory is still estimable
    assert ferritin.loc["route_group[IV]", ["coef", "se", "p"]].isna().all()
    assert "no samples in the IV group" in ferritin.loc["route_group[IV]", "note"]
    platelets = table[table["test"].eq("platelets")]
    assert len(platelets) == 4 and platelets["coef"].isna().all()
    assert platelets["note"].str.startswith("not estimable").all()
    assert model["models"]["platelets"]["estimable"] is False


def test_non_positive_values_dropped_and_counted():
    labs = simulated_labs()
    labs.loc[labs.index[:3], "value"] = 0.0
    table, _, _, model = trajectories(labs, {"tests": ["ferritin"]})
    assert model["models"]["ferritin"]["n_dropped_nonpositive"] == 3
    assert "3 non-positive value(s) dropped" in table["note"].iloc[0]
    offset = trajectories(labs, {"tests": ["ferritin"], "log_offset": {"ferritin": 1}})[3]
    assert offset["models"]["ferritin"]["n_dropped_nonpositive"] == 0


def test_unknown_test_is_an_error_naming_it():
    with pytest.raises(KeyError, match="ferriton"):
        settings(schema_defaults("trajectories", tests=["ferriton"]))


def test_on_a_cohort_and_the_figure_renders(tmp_path):
    t = cohort_tables()
    table, daily, data, _ = trajectories(t["labs"])
    save(trajectories_analysis(t["labs"], schema_defaults("trajectories")).figures["trajectories"](),
         tmp_path / "r.png")
    assert len(table) == 4 * 4 and set(table["test"]) == {"ferritin", "crp", "platelets", "alt"}
    assert table["coef"].notna().all() and (table["se"] > 0).all()
    for ext in ("png", "svg"):
        fig = trajectories_figure(data, daily, ["ferritin", "crp", "platelets", "alt"], synthetic=True,
                                  max_patients=5, table=table)
        assert len(fig.axes) == 4 and fig.axes[0].get_yscale() == "log" and fig.axes[2].get_yscale() == "linear"
        save(fig, tmp_path / f"t.{ext}")
        assert (tmp_path / f"t.{ext}").stat().st_size > 10_000


def test_figure_with_no_samples_renders(tmp_path):
    empty = pd.DataFrame(columns=LABS_COLUMNS)
    table, daily, data, _ = trajectories(empty, {"tests": ["ferritin", "crp", "alt"]})
    assert table["coef"].isna().all()
    fig = trajectories_figure(data, daily, ["ferritin", "crp", "alt"], table=table)
    assert not fig.axes[3].axison  # the unused fourth panel is hidden
    save(fig, tmp_path / "empty.png")


def test_series_ending_with_death_counted_by_route_and_reported():
    from stormcohort.report.fmt import Formatter
    from stormcohort.report.sections import trajectories_table, trajectory_deaths

    labs = simulated_labs(n_iv=4, n_sc=6)
    keys = [f"P{i:03d}" for i in range(10)]
    # P000 (IV) dies on day 5.4 and P005 (SC) on day 14.2 (calendar day 14): their series end with death;
    # P006 dies on day 20 (after the window), P007 has no recorded date (death flag only, censored)
    dataset = pd.DataFrame({"patient_key": keys, "death_90d": 0, "time_to_death_days": 90.0})
    dataset.loc[[0, 5, 6], ["death_90d", "time_to_death_days"]] = [[1, 5.4], [1, 14.2], [1, 20.0]]
    dataset.loc[7, "time_to_death_days"] = 9.0
    labs = labs[~(labs["patient_key"].eq("P000") & (labs["day"] > 5.4))]
    table, _, _, model = trajectories(labs, {"tests": ["ferritin", "crp"]}, dataset=dataset, follow_up_days=90)
    m = model["models"]
    assert m["ferritin"]["deaths_in_window"] == {"IV": 1, "SC": 1}
    assert m["crp"]["deaths_in_window"] == {"IV": 0, "SC": 0}  # no CRP samples
    f = Formatter()
    assert trajectory_deaths(model, f) == "Ferritin IV 1 of 4, SC 1 of 6; CRP IV 0 of 0, SC 0 of 0"
    notes = " ".join(trajectories_table(table, f, model).notes)
    assert "Series ending with death" in notes and "missing at random" in notes and "Satterthwaite" in notes
    assert trajectory_deaths(trajectories(labs, {"tests": ["ferritin"]})[3], f) is None
    with pytest.raises(ValueError, match="follow_up_days"):
        trajectories(labs, {"tests": ["ferritin"]}, dataset=dataset)


def test_methods_state_the_missing_at_random_assumption():
    from stormcohort.report.methods import methods
    from tests.test_report import CONFIG, DELIVERY

    text = next(p["text"] for p in methods(CONFIG, {}, DELIVERY) if p["title"] == "Trajectories")
    assert "missing at random" in text
