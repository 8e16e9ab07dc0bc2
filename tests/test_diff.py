"""Unit tests of the cohort-level diff (stormcohort/diff.py) on small hand-made tables.

The end-to-end check against the generator's own list of changes is tests/test_updated_delivery.py.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pandas as pd
import pytest

from stormcohort import diff as d
from stormcohort.outputs import OUTPUTS, output

NAN = np.nan


def dataset(rows):
    cols = ["patient_key", "centre", "route_group", "weight_kg", "death_90d", "time_to_death_days"]
    return pd.DataFrame(rows, columns=cols)


OLD = dataset([
    ["P01", "LDN", "IV", 70.0, 0, 90.0],
    ["P02", "SHF", "SC", NAN, 1, 12.0],
    ["P03", "BHM", "SC", 20.5, 0, 90.0],
    ["P04", "LDN", "SC", 81.0, 0, 90.0],
])
NEW = dataset([
    ["P01", "LDN", "IV", 70.0000000001, 0, 90.0],  # float noise: not a change
    ["P02", "SHF", "SC", NAN, 1, 14.0],           # death date moved
    ["P03", "BHM", "IV", 22.0, 0, 90.0],          # route and weight
    ["P05", "SHF", "SC", 60.0, 0, 90.0],          # new
])


def test_same_treats_missing_numbers_and_text_as_a_reader_would():
    a = pd.Series([NAN, "", 1.0, "1", "x", 2.0, None, 3.0])
    b = pd.Series([None, NAN, 1.0 + 1e-12, 1.0, "x", 2.1, "y", NAN])
    assert d.same(a, b).tolist() == [True, True, True, True, True, False, False, False]


def test_patients_added_removed_and_changed_with_their_fields():
    patients, fields = d.diff_patients(OLD, NEW)
    assert patients[["patient_key", "change"]].values.tolist() == [
        ["P05", "added"], ["P04", "removed"], ["P02", "changed"], ["P03", "changed"]]
    by_key = patients.set_index("patient_key")
    assert by_key.loc["P03", "fields_changed"] == "route_group;weight_kg"
    assert by_key.loc["P02", "fields_changed"] == "time_to_death_days"
    assert by_key.loc["P05", "fields_changed"] == "" and by_key.loc["P05", "centre_new"] == "SHF"
    assert pd.isna(by_key.loc["P05", "centre_old"]) and by_key.loc["P04", "route_group_old"] == "SC"
    assert fields.values.tolist() == [["P02", "time_to_death_days", "12", "14"],
                                      ["P03", "route_group", "SC", "IV"], ["P03", "weight_kg", "20.5", "22"]]


def test_identical_datasets_give_no_patient_change():
    patients, fields = d.diff_patients(OLD, OLD.sample(frac=1, random_state=1))
    assert patients.empty and fields.empty


def test_long_table_rows_compared_as_multisets_per_patient():
    old = pd.DataFrame({"patient_key": ["P1", "P1", "P1", "P2", "P9"], "route_group": "SC",
                        "test": ["crp", "crp", "alt", "crp", "crp"], "value": ["5", "5", "40", "7", "1"]})
    new = pd.DataFrame({"patient_key": ["P1", "P1", "P2", "P2", "P8"], "route_group": ["IV", "IV", "SC", "SC", "SC"],
                        "test": ["alt", "crp", "crp", "crp", "crp"], "value": ["40", "5", "7", "9", "1"]})
    rows = d.diff_long(old, new, "labs", pd.Index(["P1", "P2"]))
    assert rows.values.tolist() == [["P1", "labs", "removed", 1, "test=crp; value=5"],
                                    ["P2", "labs", "added", 1, "test=crp; value=9"]]
    assert d.diff_long(None, new, "labs", pd.Index(["P1"])).empty


def test_long_table_changes_make_a_patient_changed():
    patients, _ = d.diff_patients(OLD, NEW)
    rows = pd.DataFrame({"patient_key": ["P01", "P03"], "table": ["labs", "adverse_events"], "status": "added",
                         "n": 1, "row": "x"})
    both = pd.DataFrame({"patient_key": ["P01", "P02", "P03"], "centre_new": ["LDN", "SHF", "BHM"],
                         "route_group_new": ["IV", "SC", "IV"], "centre_old": ["LDN", "SHF", "BHM"],
                         "route_group_old": ["IV", "SC", "SC"]})
    out = d.add_long_changes(patients, rows, both).set_index("patient_key")
    assert out.loc["P01", "change"] == "changed" and out.loc["P01", "fields_changed"] == "labs"
    assert out.loc["P03", "fields_changed"] == "route_group;weight_kg;adverse_events"
    assert out.loc["P05", "fields_changed"] == ""  # added patients keep an empty list


LEDGER_OLD = pd.DataFrame({
    "centre": ["LDN", "LDN", "LDN", "SHF"],
    "file": ["labs.csv", "labs.csv", "admissions.csv", "SHF_HLH_registry.xlsx:Bloods"],
    "row": ["954", "1228", "5", "67"], "column": ["", "Result", "Weight_kg", ""],
    "value": ["", "haemolysed", "112000", ""], "rule": ["duplicate_row", "unparseable_value", "implausible_value",
                                                        "duplicate_row"],
    "reason": ["exact duplicate of row 953 (first kept)", "not a number", "weight", "exact duplicate of row 66"],
    "scope": ["row", "row", "value", "row"]})


def test_ledger_rows_that_renumber_are_not_changes():
    shifted = LEDGER_OLD.assign(row=["900", "1100", "5", "67"],
                                reason=LEDGER_OLD["reason"].str.replace("953", "899"))
    counts, entries = d.diff_ledger(LEDGER_OLD, shifted)
    assert entries.empty and (counts["change"] == 0).all()


def test_ledger_entries_added_and_removed_with_counts():
    new = pd.concat([LEDGER_OLD.drop(index=[1]), pd.DataFrame([{
        "centre": "LDN", "file": "admissions.csv", "row": "27", "column": "Weight_kg", "value": "75700",
        "rule": "implausible_value", "reason": "weight", "scope": "value"}])], ignore_index=True)
    counts, entries = d.diff_ledger(LEDGER_OLD, new)
    assert entries[["status", "file", "row", "value"]].values.tolist() == [
        ["removed", "labs.csv", "1228", "haemolysed"], ["added", "admissions.csv", "27", "75700"]]
    changed = counts[counts["change"] != 0].set_index(["file", "rule"])["change"].to_dict()
    assert changed == {("admissions.csv", "implausible_value"): 1, ("labs.csv", "unparseable_value"): -1}


def test_attrition_step_by_step():
    old = pd.DataFrame({"step": ["all_admissions", "no_anakinra", "final_cohort"], "description": ["a", "b", "c"],
                        "n_remaining": [64, 46, 46], "n_excluded": [NAN, 18, NAN]})
    new = pd.DataFrame({"step": ["all_admissions", "no_anakinra", "new_rule", "final_cohort"],
                        "description": ["a", "b", "n", "c"], "n_remaining": [66, 48, 47, 47],
                        "n_excluded": [NAN, 18, 1, NAN]})
    out = d.diff_attrition(old, new)
    assert out["step"].tolist() == ["all_admissions", "no_anakinra", "new_rule", "final_cohort"]
    assert out["change"].tolist()[:2] == [2, 2] and pd.isna(out.loc[2, "change"]) and out.loc[3, "change"] == 1
    assert out.loc[1, "n_excluded_old"] == 18 and pd.isna(out.loc[2, "n_remaining_old"])


T1_COLUMNS = ["variable", "kind", "level", "group", "n", "count", "percent", "median", "q1", "q3", "missing", "smd"]


def table1(rows):
    """Table 1 in the tidy numeric layout: a row per variable, level and group."""
    return pd.DataFrame(rows, columns=T1_COLUMNS)


def n_rows(overall, iv, sc):
    return [["n", "count", "", g, n, NAN, NAN, NAN, NAN, NAN, NAN, NAN] for g, n in
            (("overall", overall), ("IV", iv), ("SC", sc))]


T1_OLD = table1([
    *n_rows(46, 18, 28),
    ["age_years", "continuous", "", "overall", 46, NAN, NAN, 34.5, 14.3, 55.1, 0, 0.369],
    ["age_years", "continuous", "", "IV", 18, NAN, NAN, 42.1, 31.3, 55.1, 0, NAN],
    ["age_years", "continuous", "", "SC", 28, NAN, NAN, 22.4, 13.0, 50.0, 0, NAN],
    ["sex", "categorical", "F", "overall", 46, 18, 39.1304, NAN, NAN, NAN, 0, 0.369],
    ["sex", "categorical", "F", "IV", 18, 9, 50.0, NAN, NAN, NAN, 0, NAN],
    ["sex", "categorical", "F", "SC", 28, 9, 32.1429, NAN, NAN, NAN, 0, NAN],
])
T1_NEW = table1([
    *n_rows(48, 19, 29),
    ["age_years", "continuous", "", "overall", 48, NAN, NAN, 34.5, 14.3, 55.1, 0, 0.338],
    ["age_years", "continuous", "", "IV", 19, NAN, NAN, 40.7, 30.2, 54.8, 0, NAN],
    ["age_years", "continuous", "", "SC", 29, NAN, NAN, 22.4, 13.0, 50.0, 0, NAN],
    ["sex", "categorical", "F", "overall", 48, 18, 39.1304 + 1e-12, NAN, NAN, NAN, 0, 0.369],  # float noise
    ["sex", "categorical", "F", "IV", 19, 9, 50.0, NAN, NAN, NAN, 0, NAN],
    ["sex", "categorical", "F", "SC", 29, 9, 32.1429, NAN, NAN, NAN, 0, NAN],
    ["sex", "categorical", "X", "overall", 48, 1, 2.08333, NAN, NAN, NAN, 0, NAN],
])


def test_table1_cells_keyed_by_variable_level_group_and_quantity():
    out = d.diff_table1(T1_OLD, T1_NEW)
    assert list(out.columns) == ["variable", "kind", "level", "group", "quantity", "old", "new", "change", "changed"]
    assert "label" not in out.columns  # labels are the report's
    # every cell filled in either run, none empty in both: 3 n + 3 x 5 + 1 smd (age) + 3 x 4 + 1 smd (sex) + 4 (X)
    assert len(out) == 3 + 15 + 1 + 12 + 1 + 4
    changed = out[out["changed"]]
    assert changed[["variable", "level", "group", "quantity"]].values.tolist() == [
        ["n", "", "overall", "n"], ["n", "", "IV", "n"], ["n", "", "SC", "n"],
        ["age_years", "", "overall", "n"], ["age_years", "", "overall", "smd"],
        ["age_years", "", "IV", "n"], ["age_years", "", "IV", "median"], ["age_years", "", "IV", "q1"],
        ["age_years", "", "IV", "q3"], ["age_years", "", "SC", "n"],
        ["sex", "F", "overall", "n"], ["sex", "F", "IV", "n"], ["sex", "F", "SC", "n"],
        ["sex", "X", "overall", "n"], ["sex", "X", "overall", "count"], ["sex", "X", "overall", "percent"],
        ["sex", "X", "overall", "missing"]]
    smd = out[(out["variable"] == "age_years") & (out["quantity"] == "smd")].iloc[0]
    assert (smd["old"], smd["new"], smd["change"]) == (0.369, 0.338, pytest.approx(-0.031))
    new_level = out[out["level"] == "X"].iloc[0]
    assert pd.isna(new_level["old"]) and new_level["kind"] == "categorical" and pd.isna(new_level["change"])


def test_table1_rows_only_in_the_old_run_come_last():
    out = d.diff_table1(T1_NEW, T1_OLD)  # reversed: level X only in the "old" run
    assert out.tail(4)["level"].tolist() == ["X"] * 4 and out.tail(4)["new"].isna().all()
    assert out.tail(4)["changed"].all()


def test_table1_in_the_old_formatted_layout_is_refused():
    formatted = pd.DataFrame({"variable": ["n"], "label": ["Patients"], "level": [""], "statistic": ["n"],
                              "overall": ["46"], "IV": ["18"], "SC": ["28"], "missing": [""], "smd": [""]})
    with pytest.raises(ValueError, match="same pipeline version"):
        d.diff_table1(formatted, T1_NEW)


COX = pd.DataFrame({"model": ["unadjusted", "adjusted", "adjusted"],
                    "term": ["route_group[IV]", "route_group[IV]", "icu"],
                    "hr": [1.8, 1.4, 4.5], "hr_lcl": [0.64, 0.38, 1.25], "hr_ucl": [5.2, 5.1, 16.3], "n": 46,
                    "events": 14})
LOGISTIC = pd.DataFrame({"outcome": "death_30d", "model": "unadjusted", "method": ["firth", "firth", "ml", "ml"],
                         "term": ["(Intercept)", "route_group[IV]"] * 2, "or": [0.24, 2.1, 0.23, 2.2],
                         "or_lcl": [0.09, 0.56, 0.08, 0.55], "or_ucl": [0.58, 8.4, 0.6, 8.7], "n": 45, "events": 11})
RATES = pd.DataFrame({"outcome": ["any", "fungal_infection", "viral_infection"], "model": "unadjusted",
                      "term": "route_group[IV]", "irr": [0.97, NAN, 0.0], "irr_lcl": [0.41, NAN, 0.0],
                      "irr_ucl": [2.1, NAN, 79.0], "events_iv": [10, 0, 0], "events_sc": [21, 0, 1]})


def test_effect_estimates_gather_every_model_but_intercepts():
    est = d.effect_estimates({"cox": COX, "logistic": LOGISTIC, "rate_ratios": RATES}, default_outcome="death_90d")
    assert len(est) == 3 + 2 + 3
    assert set(est["measure"]) == {"HR", "OR", "IRR"} and (est["term"] != "(Intercept)").all()
    cox = est[est["source"] == "cox"]
    assert (cox["outcome"] == "death_90d").all() and (cox["method"] == "").all()
    assert sorted(est.loc[est["source"] == "logistic", "method"]) == ["firth", "ml"]
    any_rate = est[est["outcome"] == "any"].iloc[0]
    assert (any_rate["estimate"], any_rate["lcl"], any_rate["ucl"], any_rate["events"]) == (0.97, 0.41, 2.1, 31)
    assert d.effect_estimates({"cox": None}).empty


def test_effect_outcome_from_the_table_else_the_default():
    with_outcome = d.effect_estimates({"cox": COX.assign(outcome="death_60d")}, default_outcome="death_90d")
    assert (with_outcome["outcome"] == "death_60d").all()
    with pytest.raises(ValueError, match="no `outcome` column"):
        d.effect_estimates({"cox": COX})


def test_conclusion_moved_where_a_ci_starts_or_stops_excluding_one():
    old = d.effect_estimates({"cox": COX.assign(outcome="death_90d"), "logistic": LOGISTIC, "rate_ratios": RATES})
    new_cox = COX.assign(hr_lcl=[1.1, 0.38, 0.9], outcome="death_90d")  # unadjusted now excludes 1; icu no longer does
    new_rates = RATES.assign(irr=[0.97, 2.0, 0.0], irr_lcl=[0.41, 1.2, 0.0], irr_ucl=[2.1, 3.3, 79.0])
    new = d.effect_estimates({"cox": new_cox, "logistic": LOGISTIC.iloc[:2], "rate_ratios": new_rates})
    out = d.diff_effects(old, new).set_index(["source", "model", "method", "term", "outcome"])
    unadj = out.loc[("cox", "unadjusted", "", "route_group[IV]", "death_90d")]
    assert unadj["conclusion_moved"] and unadj["conclusion"] == "CI now excludes 1"
    icu = out.loc[("cox", "adjusted", "", "icu", "death_90d")]
    assert icu["conclusion_moved"] and icu["conclusion"] == "CI no longer excludes 1" and not icu["iv_vs_sc"]
    assert not out.loc[("cox", "adjusted", "", "route_group[IV]", "death_90d"), "conclusion_moved"]
    fungal = out.loc[("rate_ratios", "unadjusted", "", "route_group[IV]", "fungal_infection")]
    assert not fungal["conclusion_moved"] and pd.isna(fungal["ratio_new_to_old"])  # was not estimable
    viral = out.loc[("rate_ratios", "unadjusted", "", "route_group[IV]", "viral_infection")]
    assert pd.isna(viral["ratio_new_to_old"]) and not viral["ci_excludes_1_new"]  # 0 (0 to 79) includes 1
    ml = out.loc[("logistic", "unadjusted", "ml", "route_group[IV]", "death_30d")]
    assert ml["status"] == "old only" and not ml["conclusion_moved"]
    assert out.loc[("cox", "unadjusted", "", "route_group[IV]", "death_90d"), "ratio_new_to_old"] == pytest.approx(1)
    table = d.diff_effects(old, new)
    assert table["iv_vs_sc"].tolist() == sorted(table["iv_vs_sc"], reverse=True)  # IV vs SC first


def run_tables(name, dataset_, ledger, cox):
    attrition = pd.DataFrame({"step": ["final_cohort", "route_IV", "route_SC"], "description": "x",
                              "n_remaining": [len(dataset_), (dataset_["route_group"] == "IV").sum(),
                                              (dataset_["route_group"] == "SC").sum()], "n_excluded": NAN})
    t1 = table1(n_rows(len(dataset_), 1, 2))
    return d.RunTables(name, dataset_, attrition, t1, ledger, {t: None for t in d.LONG_TABLES},
                       {"cox": cox, "logistic": None, "rate_ratios": None})


@pytest.fixture
def result():
    return d.compare(run_tables("old", OLD, LEDGER_OLD, COX),
                     run_tables("new<&>", NEW, LEDGER_OLD.iloc[1:], COX.assign(hr_lcl=[1.1, 0.38, 1.25])),
                     default_outcome="death_90d")


def test_compare_and_summary(result):
    s = result.summary()
    assert s["patients"] == {"added": 1, "removed": 1, "changed": 2}
    assert s["cohort"]["final_cohort"] == {"old": 4, "new": 4}
    assert s["ledger_entries"] == {"added": 0, "removed": 1}
    assert (s["effects"], s["effects_conclusion_moved"], s["iv_vs_sc_conclusion_moved"]) == (3, 1, 1)


def test_html_is_self_contained_escaped_and_flags_moved_conclusions(result):
    page = d.diff_html(result, synthetic=True)
    assert page.startswith("<!DOCTYPE html>") and page.endswith("</html>\n")
    assert "SYNTHETIC DATA" in page and "SYNTHETIC" not in d.diff_html(result, synthetic=False)
    assert "new&lt;&amp;&gt;" in page and "new<&>" not in page
    assert not re.search(r"(src|href)=|https?://|<script|@import|<link", page)
    moved = re.findall(r'<tr class="moved">(.*?)</tr>', page)
    assert any("CI now excludes 1" in row and "unadjusted" in row for row in moved)  # the moved IV-vs-SC estimate
    assert not any(">adjusted<" in row and "route" in row for row in moved)
    assert "<li>Patients: 1 added, 1 removed, 2 changed.</li>" in page and "Cohort: 4 &rarr; 4" in page


def test_html_names_patients_by_key_only(result):
    page = d.diff_html(result, synthetic=True)
    assert set(re.findall(r"<td>(P\d\d)</td>", page)) == {"P05", "P04", "P02", "P03"}  # not P01: unchanged
    assert "P01" not in page


def test_html_escapes_every_value(result):
    fields = result.patient_fields.copy()
    fields.loc[0, "new"] = '<script>alert("x")</script>'
    page = d.diff_html(dataclasses.replace(result, patient_fields=fields), synthetic=False)
    assert "<script" not in page and "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page


def test_html_table1_names_variables_and_highlights_changed_smds():
    t1 = d.diff_table1(T1_OLD, T1_NEW)
    empty = d.compare(run_tables("a", OLD, LEDGER_OLD, COX), run_tables("b", OLD, LEDGER_OLD, COX),
                      default_outcome="death_90d")
    page = d.diff_html(dataclasses.replace(empty, table1=t1), synthetic=False)
    assert "<td>age_years</td><td></td><td>IV</td><td>median</td><td>42.1</td><td>40.7</td><td>-1.4</td>" in page
    assert '<tr class="moved"><td>age_years</td><td></td><td>0.369</td><td>0.338</td><td>-0.031</td></tr>' in page
    assert "<tr><td>sex</td><td>F</td><td>0.369</td><td>0.369</td><td>0</td></tr>" in page
    assert "<li>Table 1: 17 cells changed.</li>" in page


def test_written_diff_is_deterministic(result, tmp_path):
    outputs = {}
    for run in ("a", "b"):
        paths = {n: tmp_path / run / f"{n}.csv" for n in d.OUTPUTS}
        paths.update(summary=tmp_path / run / "summary.json", html=tmp_path / run / "diff.html")
        (tmp_path / run).mkdir()
        d.write_diff(result, paths, synthetic=True)
        outputs[run] = {p.name: p.read_bytes() for p in paths.values()}
    assert outputs["a"] == outputs["b"] and len(outputs["a"]) == len(d.OUTPUTS) + 2
    patients = pd.read_csv(tmp_path / "a" / "patients.csv")
    assert patients["change"].tolist() == ["added", "removed", "changed", "changed"]


def test_reading_something_that_is_not_a_run_names_what_is_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a finished run.*analysis_dataset.csv"):
        d.read_run(tmp_path)


def test_what_a_run_is_read_from_is_the_declared_outputs():
    declared = {path.format(centre="LDN") for rule in OUTPUTS.values() for path in rule.values()}
    assert set(d.reads(["LDN"]).values()) <= declared
    assert d.reads(["LDN", "SHF"])["ledger_SHF"] == output("ingest", "ledger", "SHF")
    assert list(d.OUTPUTS) == [n for n in OUTPUTS["diff"] if n not in ("summary", "html")]


def write_run(folder, centres=("BHM", "LDN")):
    """A finished run's files at their declared paths (no long tables, no logistic or rate ratios)."""
    from stormcohort.io import write_csv
    tables = run_tables(folder.name, OLD, LEDGER_OLD, COX.assign(outcome="death_90d"))
    files = {"dataset": tables.dataset, "attrition": tables.attrition, "table1": T1_OLD, "cox": tables.effects["cox"],
             **{f"ledger_{c}": LEDGER_OLD[LEDGER_OLD["centre"] == c] for c in centres}}
    for name, frame in files.items():
        (folder / d.reads(centres)[name]).parent.mkdir(parents=True, exist_ok=True)
        write_csv(frame, folder / d.reads(centres)[name])


def test_a_run_is_read_from_its_declared_paths(tmp_path):
    run = tmp_path / "example"
    write_run(run)
    assert d.run_centres(run) == ["BHM", "LDN"]
    tables = d.read_run(run)
    assert tables.name == "example" and len(tables.dataset) == 4
    assert sorted(tables.ledger["centre"]) == ["LDN", "LDN", "LDN"]  # BHM's ledger is empty
    pd.testing.assert_frame_equal(tables.table1, T1_OLD, check_dtype=False)
    assert tables.long == {t: None for t in d.LONG_TABLES} and tables.effects["logistic"] is None
    same = d.compare(tables, d.read_run(run, ["BHM", "LDN"], name="again"))
    assert same.summary()["table1_cells_changed"] == 0 and not same.effects["conclusion_moved"].any()
    with pytest.raises(FileNotFoundError, match="not a finished run.*SHF"):
        d.read_run(run, ["LDN", "SHF"])


def test_parquet_long_tables_read_as_the_csv_text(tmp_path):
    # labs come as Parquet, the other long tables as CSV: both must read to the same text, as
    # the diff compares long-table rows as text
    from stormcohort.io import read_as_text, write_csv, write_parquet
    frame = pd.DataFrame({"patient_key": ["P1", "P2", None], "value": [1.23456789, np.nan, 1e-7],
                          "day": [0.5, 100000.0, -3.0], "qualifier": ["", "<", None],
                          "flag": pd.array([True, None, False], dtype="boolean"),
                          "grade": pd.array([1, None, 3], dtype="Int64"), "n": [1, 2, 3]})
    write_csv(frame, tmp_path / "t.csv")
    write_parquet(frame, tmp_path / "t.parquet")
    as_csv, as_parquet = read_as_text(tmp_path / "t.csv"), read_as_text(tmp_path / "t.parquet")
    pd.testing.assert_frame_equal(as_csv, as_parquet)
    assert as_parquet.loc[0].tolist() == ["P1", "1.23457", "0.5", "", "True", "1", "1"]


def test_the_target_trial_ratios_are_compared_between_runs():
    from stormcohort.diff import diff_effects, effect_estimates

    def effect(rr, hr):
        return pd.DataFrame({
            "analysis": ["primary", "primary", "primary", "naive_ever_iv"],
            "outcome": ["death_90d"] * 4,
            "measure": ["risk_difference", "risk_ratio", "hazard_ratio", "hazard_ratio"],
            "day": [90, 90, None, None], "estimate": [-0.05, rr, hr, 1.1], "lcl": [-0.2, 0.8, 0.5, 0.3],
            "ucl": [0.1, 3.0, 0.9, 4.0], "p": [None, None, 0.01, 0.8], "n": [46] * 4, "events": [7] * 4,
            "note": [None] * 4})
    old, new = (effect_estimates({"comparison": effect(rr, hr)}) for rr, hr in ((1.2, 0.6), (1.3, 1.1)))
    assert set(old["method"]) == {"risk_ratio at day 90", "hazard_ratio"} and set(old["measure"]) == {"RR", "HR"}
    d = diff_effects(old, new).set_index(["model", "method"])
    assert d.loc[("primary", "hazard_ratio"), "conclusion"] == ""  # 0.5-0.9 excludes 1 in both runs' fixtures
    assert d.loc[("primary", "risk_ratio at day 90"), "ratio_new_to_old"] == pytest.approx(1.3 / 1.2)
    assert len(d) == 3  # the risk difference is not a ratio: not in the ratio comparison
