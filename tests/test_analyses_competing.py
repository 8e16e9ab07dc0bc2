"""Competing risks (fever resolution vs death): hand-checkable Aalen-Johansen values, ties,
the IV-vs-SC comparisons (Gray, Fine-Gray, cause-specific Cox), the not-estimable cases and the
CIF figure."""

from __future__ import annotations

import json
import time

import jsonschema
import numpy as np
import pandas as pd
import pytest

from stormcohort.analyses.competing import (
    CIF_COLUMNS,
    RISK_COLUMNS,
    SUMMARY_COLUMNS,
    TESTS_COLUMNS,
    comparison_table,
    competing_risks_analysis,
)
from stormcohort.figures import save
from stormcohort.stats import cause_specific_cox, cumulative_incidence, fine_gray, gray_test
from tests.config_defaults import schema_defaults

T, E = "time_to_fever_days", "fever_outcome"


def cohort(n: int = 46, seed: int = 1, n_iv: int = 18) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    fever = rng.exponential(8, n).round() + 1
    death = rng.exponential(150, n).round() + 1
    outcome = np.where(fever <= death, 1, 2)
    t = np.minimum(fever, death)
    outcome[t > 90] = 0
    return pd.DataFrame({"route_group": np.where(np.arange(n) < n_iv, "IV", "SC"),
                         T: np.minimum(t, 90.0), E: outcome})


def hand() -> pd.DataFrame:
    """IV: fever resolved day 1 and 2, died day 3, censored day 5.
    SC: fever resolved and died on day 2 (a tie of the two causes), censored day 4 and 90."""
    return pd.DataFrame({"route_group": ["IV"] * 4 + ["SC"] * 4,
                         T: [1.0, 2, 3, 5, 2, 2, 4, 90], E: [1, 1, 2, 0, 1, 2, 0, 0]})


def competing(dataset: pd.DataFrame, cfg: dict | None = None):
    """The analysis with the schema's defaults for every setting not in ``cfg``."""
    return competing_risks_analysis(dataset, schema_defaults("competing_risks", **(cfg or {})), synthetic=True)


def render(result, tmp_path, name="cif"):
    for ext in ("png", "svg"):
        save(result.figures["cif"](), tmp_path / f"{name}.{ext}")
    assert (tmp_path / f"{name}.png").stat().st_size > 20_000
    assert "Cumulative incidence" in (tmp_path / f"{name}.svg").read_text()


def test_contract_columns_and_groups():
    r = competing(cohort())
    assert list(r.tables["cif"].columns) == CIF_COLUMNS
    assert list(r.tables["cif_summary"].columns) == SUMMARY_COLUMNS
    assert list(r.tables["cif"]["group"].unique()) == ["overall", "IV", "SC"]
    for _, g in r.tables["cif"].groupby("group"):
        assert g["time"].is_monotonic_increasing and g["cif"].is_monotonic_increasing
    assert set(r.tables["cif_summary"]["cause"]) == {"fever_resolution", "death"}
    assert sorted(r.tables["cif_summary"]["time"].unique()) == [7, 14, 30]
    assert len(r.tables["cif_summary"]) == 3 * 2 * 3


def test_hand_values():
    r = competing(hand(), {"summary_days": [2, 3]})
    iv = r.tables["cif"][r.tables["cif"]["group"] == "IV"]
    # every event time of either cause (censoring at 5 is not one); CIF_fever: 1/4, then + 3/4 * 1/3
    assert iv["time"].tolist() == [1, 2, 3]
    assert iv["cif"].to_numpy() == pytest.approx([0.25, 0.5, 0.5])
    s = r.tables["cif_summary"].set_index(["group", "cause", "time"])
    assert s.loc[("IV", "death", 3), "cif"] == pytest.approx(0.5 * 1 / 2)
    assert s.loc[("IV", "death", 2), "cif"] == 0 and "no death by day 2" in s.loc[("IV", "death", 2), "note"]
    # SC: a fever resolution and a death tied at day 2 with 4 at risk: 1/4 each, one step
    assert s.loc[("SC", "fever_resolution", 2), "cif"] == pytest.approx(0.25)
    assert s.loc[("SC", "death", 2), "cif"] == pytest.approx(0.25)
    assert (s.loc[("SC", "death", 2), "n_risk"], s.loc[("SC", "death", 3), "events"]) == (4, 1)
    assert s.loc[("overall", "fever_resolution", 3), "events"] == 3


def test_ties_are_deterministic():
    d = hand()
    a = competing(d)
    b = competing(d.sample(frac=1, random_state=3).reset_index(drop=True))
    pd.testing.assert_frame_equal(a.tables["cif"], b.tables["cif"])
    pd.testing.assert_frame_equal(a.tables["cif_summary"], b.tables["cif_summary"])


def test_matches_the_stats_layer():
    d = cohort()
    r = competing(d)
    ref = cumulative_incidence(d, T, E, 1, "route_group")
    mine = r.tables["cif"][r.tables["cif"]["group"] != "overall"].reset_index(drop=True)
    assert mine["time"].tolist() == ref["time"].tolist()
    assert mine["cif"].to_numpy() == pytest.approx(ref["cif"].to_numpy())
    np.testing.assert_allclose(mine["cif_lcl"], ref["cif_lcl"])
    assert r.model["methods"]["variance"].startswith("infinitesimal jackknife")


def test_nobody_dies(tmp_path):
    d = cohort()
    d.loc[d[E] == 2, E] = 0
    r = competing(d)
    deaths = r.tables["cif_summary"][r.tables["cif_summary"]["cause"] == "death"]
    assert (deaths["cif"] == 0).all() and deaths["cif_lcl"].isna().all()
    assert deaths["note"].str.startswith("no death by day").all()
    assert any("no death events in the IV group" in w for w in r.model["warnings"])
    json.dumps(r.model, allow_nan=False)
    render(r, tmp_path)


def test_one_group_without_resolution(tmp_path):
    d = cohort()
    d.loc[(d["route_group"] == "IV") & (d[E] == 1), E] = 0
    r = competing(d)
    iv = r.tables["cif"][r.tables["cif"]["group"] == "IV"]
    assert (iv["cif"] == 0).all() and iv["cif_lcl"].isna().all()
    assert any("no fever resolution events in the IV group" in w for w in r.model["warnings"])
    render(r, tmp_path)


def test_empty_group(tmp_path):
    r = competing(cohort().assign(route_group="SC"))
    iv = r.tables["cif_summary"][r.tables["cif_summary"]["group"] == "IV"]
    assert (iv["n_risk"] == 0).all() and iv["cif"].isna().all() and (iv["note"] == "no patients in group").all()
    assert "IV" not in set(r.tables["cif"]["group"])
    assert any("no patients in the IV group" in w for w in r.model["warnings"])
    render(r, tmp_path)


def test_no_events_at_all_and_empty_dataset(tmp_path):
    r = competing(cohort().assign(**{E: 0}))
    assert r.tables["cif"].empty and list(r.tables["cif"].columns) == CIF_COLUMNS
    assert (r.tables["cif_summary"]["cif"] == 0).all()
    render(r, tmp_path)
    empty = competing(cohort().iloc[:0])
    assert empty.tables["cif"].empty and (empty.tables["cif_summary"]["n_risk"] == 0).all()
    render(empty, tmp_path, "empty")


def test_summary_beyond_follow_up_is_na_with_reason():
    d = cohort()
    d.loc[d[T] >= 20, [T, E]] = [20.0, 0]  # administrative censoring at day 20
    s = competing(d).tables["cif_summary"]
    late = s[s["time"] == 30]
    assert late["cif"].isna().all() and late["note"].str.startswith("beyond the group's last follow-up").all()


def test_summary_carries_final_values_when_everyone_had_an_event():
    d = hand().iloc[:3]  # IV only: fever day 1 and 2, death day 3; nobody censored
    s = competing(d, {"summary_days": [30]}).tables["cif_summary"].set_index(["group", "cause"])
    assert s.loc[("IV", "fever_resolution"), "cif"] == pytest.approx(2 / 3)
    assert s.loc[("IV", "death"), "cif"] == pytest.approx(1 / 3)
    assert s.loc[("IV", "death"), "note"] == "every patient had an event by day 3: final value"


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="fever_outcome"):
        competing(cohort().assign(**{E: 3}))
    with pytest.raises(jsonschema.ValidationError, match="days"):
        competing(cohort(), {"days": [7]})


def test_works_on_a_derived_cohort():
    from stormcohort.cohort import derive_cohort
    from stormcohort.link import link_centres
    from tests.test_cohort import CONFIG, EXTRACT, split_by_centre, world

    cfg = dict(CONFIG, study_window={"start": "2019-01-01", "end": "2020-12-31"})
    linked, _ = link_centres(split_by_centre(world().tables()))
    dataset = derive_cohort(linked, cfg, EXTRACT).dataset
    r = competing(dataset)
    not_evaluable = dataset["fever_not_evaluable"].ne("").sum()
    assert not_evaluable and r.model["data"]["n"] == len(dataset) - not_evaluable
    assert sum(r.model["data"]["n_not_evaluable"].values()) == not_evaluable
    json.dumps(r.model, allow_nan=False)


def test_figure_is_deterministic(tmp_path):
    r = competing(cohort())
    render(r, tmp_path, "a")
    render(r, tmp_path, "b")
    for ext in ("png", "svg"):
        assert (tmp_path / f"a.{ext}").read_bytes() == (tmp_path / f"b.{ext}").read_bytes()
    svg = (tmp_path / "a.svg").read_text()
    assert "Days from the first anakinra dose" in svg and "died before resolution" in svg


def test_fast_at_100k():
    d = cohort(100_000, seed=2, n_iv=40_000)
    start = time.perf_counter()
    r = competing(d)
    assert time.perf_counter() - start < 10
    assert r.tables["cif_summary"].loc[0, "n_risk"] > 0


def test_still_febrile_table():
    risk = competing(hand(), {"risk_table_days": [0, 2, 4]}).tables["cif_risk"]
    assert list(risk.columns) == RISK_COLUMNS and set(risk["outcome"]) == {"fever_resolution"}
    assert risk.set_index(["group", "day"])["n_risk"].to_dict() == {
        ("IV", 0): 4, ("IV", 2): 3, ("IV", 4): 1, ("SC", 0): 4, ("SC", 2): 4, ("SC", 4): 2}


def test_patients_not_at_risk_or_not_evaluable_are_excluded_and_counted():
    """Two patients afebrile at index and one without a resolution date leave the analysis, counted
    by reason; the curves are those of the others."""
    extra = pd.DataFrame({"route_group": ["IV", "SC", "SC"], T: [np.nan] * 3, E: [pd.NA] * 3,
                          "fever_not_evaluable": ["afebrile_at_index", "afebrile_at_index", "no_resolution_date"]})
    base = hand().assign(fever_not_evaluable="")
    with_extra = competing(pd.concat([base, extra], ignore_index=True))
    alone = competing(base)
    pd.testing.assert_frame_equal(with_extra.tables["cif"], alone.tables["cif"])
    data = with_extra.model["data"]
    assert data["n"] == 8 and data["n_excluded_missing"] == 0
    assert data["n_not_evaluable"] == {"afebrile_at_index": 2, "no_resolution_date": 1}
    assert any("2 afebrile at index, 1 no resolution date" in w for w in with_extra.notes)


# --------------------------------------------------------------------------- IV vs SC comparisons


def mixed(n: int = 120, seed: int = 4) -> pd.DataFrame:
    """Resolutions, deaths and censorings in both groups, with ties."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"route_group": np.where(np.arange(n) < n // 2, "IV", "SC"),
                         T: rng.integers(1, 30, n).astype(float), E: rng.choice([0, 1, 1, 1, 2], n)})


def test_comparisons_table_matches_the_stats_layer():
    d = mixed()
    r = competing(d)
    t = r.tables["cif_tests"]
    assert list(t.columns) == TESTS_COLUMNS
    assert list(zip(t["outcome"], t["method"])) == [
        (o, m) for o in ("fever_resolution", "death") for m in ("gray_test", "fine_gray", "cause_specific_cox")]
    t = t.set_index(["outcome", "method"])
    assert t["note"].isna().all() and (t["df"] == 1).all() and (t["n"] == len(d)).all()
    ref = d.assign(route_group=pd.Categorical(d["route_group"], categories=["SC", "IV"]))
    for code, name in ((1, "fever_resolution"), (2, "death")):
        g = gray_test(d, T, E, "route_group", code)
        assert t.loc[(name, "gray_test"), "statistic"] == pytest.approx(g.statistic, rel=1e-12)
        assert t.loc[(name, "gray_test"), "p"] == pytest.approx(g.p, rel=1e-12)
        assert t.loc[(name, "gray_test"), "events_iv"] == ((d[E] == code) & (d["route_group"] == "IV")).sum()
        for method, fn in (("fine_gray", fine_gray), ("cause_specific_cox", cause_specific_cox)):
            row = fn(ref, T, E, ["route_group"], code).table.set_index("term").loc["route_group[IV]"]
            got = t.loc[(name, method)]
            assert (got["estimate"], got["lcl"], got["ucl"], got["p"]) == pytest.approx(
                (row["hr"], row["hr_lcl"], row["hr_ucl"], row["p"]), rel=1e-12)
            assert got["statistic"] == pytest.approx(row["z"] ** 2, rel=1e-12)
    assert t.loc[("death", "fine_gray"), "measure"] == "sHR"
    assert t.loc[("death", "cause_specific_cox"), "measure"] == "HR"
    assert r.model["methods"]["group_test"].startswith("Gray's test")
    assert len(r.model["comparisons"]) == 6
    json.dumps(r.model, allow_nan=False)


def test_comparisons_not_estimable_with_the_reason():
    d = cohort()
    d.loc[(d["route_group"] == "IV") & (d[E] == 1), E] = 0  # no resolution in IV
    t = competing(d).tables["cif_tests"].set_index(["outcome", "method"])
    gray = t.loc[("fever_resolution", "gray_test")]
    assert np.isfinite(gray["statistic"]) and gray["note"].startswith("no fever resolution in the IV group")
    for m in ("fine_gray", "cause_specific_cox"):
        row = t.loc[("fever_resolution", m)]
        assert np.isnan(row["estimate"]) and row["note"].startswith("not estimable: no fever resolution in the IV")
        assert (row["events_iv"], row["n"]) == (0, len(d))
    empty = competing(cohort().assign(route_group="SC")).tables["cif_tests"]
    assert empty["note"].eq("not estimable: no patients in the IV group").all() and empty["p"].isna().all()
    nothing = competing(cohort().assign(**{E: 0})).tables["cif_tests"]
    assert nothing["note"].str.startswith("not estimable: no ").all() and nothing["estimate"].isna().all()
    assert nothing.loc[0, "note"] == "not estimable: no fever resolution in either group"
    none = competing(cohort().iloc[:0]).tables["cif_tests"]
    assert len(none) == 6 and list(none.columns) == TESTS_COLUMNS and none["p"].isna().all()


def test_comparisons_accept_case_weights():
    d = mixed().assign(w=1.0)
    plain = comparison_table(d).set_index(["outcome", "method"])
    weighted = comparison_table(d, weights="w").set_index(["outcome", "method"])
    assert weighted.loc[("death", "gray_test"), "note"].startswith("not computed")
    for key in (("fever_resolution", "fine_gray"), ("death", "fine_gray"), ("fever_resolution", "cause_specific_cox")):
        assert weighted.loc[key, "estimate"] == pytest.approx(plain.loc[key, "estimate"], rel=1e-7)
        assert weighted.loc[key, "note"] == "weighted; robust (sandwich) variance"
    # equal weights: Fine-Gray's sandwich is crr's; the Cox model's turns robust
    assert weighted.loc[("death", "fine_gray"), "lcl"] == pytest.approx(plain.loc[("death", "fine_gray"), "lcl"])


# --------------------------------------------------------------------------- weighted by the target trial's weights


def keyed(n: int = 120, seed: int = 4) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``mixed()`` with patient keys and three patients not evaluable for fever, and hand-built
    target-trial weights: ten evaluable patients not followed at day G (no weight), IV by day G
    not the route group (every third IV patient started IV later), the not-evaluable patients
    weighted too."""
    d = mixed(n, seed).assign(patient_key=[f"p{i:03d}" for i in range(n)], fever_not_evaluable="")
    extra = pd.DataFrame({"route_group": ["IV", "SC", "SC"], T: [np.nan] * 3, E: [pd.NA] * 3,
                          "patient_key": ["x1", "x2", "x3"], "fever_not_evaluable": ["afebrile_at_index"] * 3})
    d = pd.concat([d, extra], ignore_index=True)
    rng = np.random.default_rng(seed + 1)
    w = d[~d["patient_key"].isin([f"p{i:03d}" for i in range(0, 100, 10)])][["patient_key", "route_group"]]
    iv = w["route_group"].eq("IV") & (np.arange(len(w)) % 3 != 0)
    w = pd.DataFrame({"patient_key": w["patient_key"], "iv": iv.astype(int), "iptw": rng.uniform(0.4, 3, len(w)),
                      "overlap": rng.uniform(0.1, 0.9, len(w))}).sample(frac=1, random_state=1)
    return d, w


def weighted(dataset, weights, estimand="ATE", grace_days=2):
    return competing_risks_analysis(dataset, schema_defaults("competing_risks"), weights=weights,
                                    estimand=estimand, grace_days=grace_days, synthetic=True)


@pytest.mark.parametrize(("estimand", "col"), [("ATE", "iptw"), ("ATO", "overlap")])
def test_weighted_rows_match_the_weighted_stats_layer(estimand, col):
    d, w = keyed()
    r = weighted(d, w, estimand)
    t = r.tables["cif_tests"]
    assert list(t.columns) == TESTS_COLUMNS
    plain = competing(d).tables["cif_tests"]
    pd.testing.assert_frame_equal(t[t["weights"].eq("none")].reset_index(drop=True), plain, check_dtype=False)
    rows = t[t["weights"].ne("none")]
    assert list(zip(rows["outcome"], rows["method"], rows["weights"])) == [
        (o, m, col) for o in ("fever_resolution", "death") for m in ("fine_gray", "cause_specific_cox")]
    # the same data by hand: evaluable patients with a weight, exposure IV by day G
    ref = d[d["fever_not_evaluable"].eq("")].merge(w, on="patient_key")
    ref = ref.assign(route_group=pd.Categorical(np.where(ref["iv"].eq(1), "IV", "SC"), categories=["SC", "IV"]))
    ref[E] = ref[E].astype(int)
    assert len(ref) == 110 and (ref["iv"].eq(1) != d.set_index("patient_key").loc[ref["patient_key"],
                                                                                  "route_group"].eq("IV").values).any()
    rows = rows.set_index(["outcome", "method"])
    for code, name in ((1, "fever_resolution"), (2, "death")):
        for method, fn in (("fine_gray", fine_gray), ("cause_specific_cox", cause_specific_cox)):
            fit = fn(ref, T, E, ["route_group"], code, weights=col)
            expect = fit.table.set_index("term").loc["route_group[IV]"]
            got = rows.loc[(name, method)]
            assert (got["estimate"], got["lcl"], got["ucl"], got["p"]) == pytest.approx(
                (expect["hr"], expect["hr_lcl"], expect["hr_ucl"], expect["p"]), rel=1e-12)
            assert got["statistic"] == pytest.approx(expect["z"] ** 2, rel=1e-12)
            assert (got["n"], got["events"]) == (110, (ref[E] == code).sum())
            assert (got["events_iv"], got["events_sc"]) == (((ref[E] == code) & ref["iv"].eq(1)).sum(),
                                                            ((ref[E] == code) & ref["iv"].eq(0)).sum())
            note = got["note"]
            assert "IV by day 2 vs not (not the descriptive route group) among patients followed at day 2" in note
            assert ("overlap weights (ATO)" if col == "overlap" else "stabilised inverse-probability") in note
            assert "10 patient(s) of the fever analysis without a weight" in note and "robust (sandwich)" in note
    assert r.model["weighted"] == {"weights": col, "estimand": estimand, "grace_days": 2, "n": 110,
                                   "n_not_in_weights": 10, "reason": None}
    assert r.model["methods"]["weighted"].startswith("Fine-Gray and cause-specific Cox models")
    json.dumps(r.model, allow_nan=False)


def test_weighted_rows_equal_comparison_table_with_the_weights():
    d, w = keyed()
    t = weighted(d, w).tables["cif_tests"]
    x = d[d["fever_not_evaluable"].eq("")].merge(w, on="patient_key")
    x = x.assign(route_group=np.where(x["iv"].eq(1), "IV", "SC"), **{E: x[E].astype(int)})
    direct = comparison_table(x, weights="iptw")
    direct = direct[direct["method"].ne("gray_test")].reset_index(drop=True)
    got = t[t["weights"].eq("iptw")].reset_index(drop=True)
    pd.testing.assert_frame_equal(got.drop(columns="note"), direct.drop(columns="note"))


def test_weighted_rows_not_estimable_with_the_reason():
    d, w = keyed()
    empty = weighted(d, w.iloc[:0])  # the comparison's propensity model was not estimable: header only
    rows = empty.tables["cif_tests"][lambda x: x["weights"].eq("iptw")]
    assert len(rows) == 4 and rows["p"].isna().all() and rows["estimate"].isna().all() and rows["n"].eq(0).all()
    assert rows["note"].str.startswith("not estimable: no propensity weights").all()
    assert rows["note"].str.contains("IV by day 2 vs not").all()
    assert any("weighted comparisons not estimable" in n for n in empty.notes)
    assert empty.model["weighted"]["n_not_in_weights"] == 120
    # a weights file read from a header-only CSV (no dtypes) is the same
    header = pd.DataFrame(columns=["patient_key", "iv", "iptw", "overlap"])
    assert weighted(d, header).tables["cif_tests"]["note"].iloc[-1].startswith("not estimable: no propensity")
    # no death among those IV by day G: the death rows say so, the fever rows are estimated
    no_death_iv = d.set_index("patient_key")[E].reindex(w["patient_key"]).eq(2).to_numpy()
    t = weighted(d, w.assign(iv=np.where(no_death_iv, 0, w["iv"]))).tables["cif_tests"]
    t = t[t["weights"].eq("iptw")].set_index(["outcome", "method"])
    for m in ("fine_gray", "cause_specific_cox"):
        assert t.loc[("death", m), "note"].startswith("not estimable: no death in the IV group")
        assert "IV by day 2" in t.loc[("death", m), "note"] and t.loc[("death", m), "events_iv"] == 0
        assert np.isfinite(t.loc[("fever_resolution", m), "estimate"])
    # weights for nobody in the fever analysis, missing or bad weights: left out and counted, no crash
    other = weighted(d, w.assign(patient_key="q" + w["patient_key"])).tables["cif_tests"]
    assert other[other["weights"].eq("iptw")]["note"].str.startswith("not estimable: no patients").all()
    bad = w.assign(iptw=np.where(np.arange(len(w)) < 5, np.nan, w["iptw"]))
    bad.loc[bad.index[5], "iptw"] = -1.0
    t = weighted(d, bad).tables["cif_tests"]
    assert t[t["weights"].eq("iptw")]["n"].lt(110).all()
    assert t[t["weights"].eq("iptw")]["note"].str.contains(r"1\d patient\(s\) of the fever analysis").all()
    # no weights given at all: the unweighted rows only
    assert competing(d).tables["cif_tests"]["weights"].eq("none").all()
