"""End to end: the real workflow on the embedded delivery, twice from scratch.

Reproduces the Viewpoint's cohort (46 patients, 18 IV, 28 SC) and checks that two runs
from nothing give byte-identical tables. The first run is the one the end-to-end tests share,
the second a run from scratch with the same configuration (tests/workflow_runs.py).
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tests.workflow_runs import EMBEDDED_RUN, ROOT, workflow


@pytest.fixture(scope="module")
def runs(embedded_run, embedded_run_again):
    return [embedded_run, embedded_run_again]


def test_cohort_reproduces_the_viewpoint(embedded_run):
    out = embedded_run
    attrition = pd.read_csv(out / "cohort" / "attrition.csv").set_index("step")
    assert attrition.loc["final_cohort", "n_remaining"] == 46
    assert attrition.loc["route_IV", "n_remaining"] == 18
    assert attrition.loc["route_SC", "n_remaining"] == 28
    dataset = pd.read_csv(out / "cohort" / "analysis_dataset.csv")
    assert len(dataset) == 46 and dataset["patient_key"].is_unique
    assert set(dataset["centre"]) == {"LDN", "SHF", "BHM"}
    assert dataset["route_group"].value_counts().to_dict() == {"SC": 28, "IV": 18}
    assert (out / "figures" / "flow.png").stat().st_size > 10_000
    table1 = pd.read_csv(out / "tables" / "table1.csv")
    patients = table1[table1["variable"].eq("patients")].set_index("group")["count"]
    assert patients.reindex(["overall", "IV", "SC"]).astype(int).tolist() == [46, 18, 28]


def test_missing_baseline_platelets_are_imputed_not_dropped(embedded_run):
    """The generator leaves some patients without a platelet count before their first dose (its
    manifest counts them): they stay in the cohort with the baseline missing, the comparison imputes
    it, and the complete-case estimate stands beside the imputed one."""
    manifest = json.loads((ROOT / "data" / "raw" / "example" / "synth_manifest.json").read_text())
    dataset = pd.read_csv(embedded_run / "cohort" / "analysis_dataset.csv")
    missing = int(dataset["platelets_baseline"].isna().sum())
    assert missing == manifest["cohort"]["without_baseline_platelets"] > 0
    effect = pd.read_csv(embedded_run / "tables" / "effect.csv")
    primary = effect[effect["outcome"].eq("death_90d") & effect["measure"].eq("risk_difference")]
    assert set(primary["analysis"]) >= {"primary", "complete_case"}
    by = primary.set_index(["analysis", "day"])
    assert by.loc[("primary", 90), "n"] == 46 and by.loc[("complete_case", 90), "n"] == 46 - missing
    assert "imputations" in by.loc[("primary", 90), "note"]
    pattern = pd.read_csv(embedded_run / "tables" / "missingness.csv")
    assert pattern.loc[pattern["platelets_baseline"].eq(1), "n"].sum() == missing


CONTRACT = {
    "tables/km.csv": ["group", "n", "events", "median", "median_lcl", "median_ucl", "surv_30", "surv_30_lcl",
                      "surv_30_ucl", "surv_90", "surv_90_lcl", "surv_90_ucl"],
    "tables/logrank.csv": ["statistic", "df", "p"],
    "tables/cox.csv": ["outcome", "model", "term", "coef", "se", "hr", "hr_lcl", "hr_ucl", "p", "n", "events"],
    "tables/ph_test.csv": ["model", "term", "statistic", "df", "p"],
    "tables/cif.csv": ["group", "time", "cif", "cif_lcl", "cif_ucl"],
    "tables/cif_tests.csv": ["outcome", "method", "weights", "measure", "estimate", "lcl", "ucl", "statistic", "df",
                             "p", "n", "events", "events_iv", "events_sc", "note"],
    "tables/logistic.csv": ["outcome", "model", "method", "term", "coef", "se", "or", "or_lcl", "or_ucl", "p",
                            "n", "events", "note"],
    "tables/trajectories.csv": [],
    "tables/safety_events.csv": [],
    "tables/safety_rates.csv": ["group", "term", "patients", "events", "patient_days", "rate_per_100pd",
                                "rate_lcl", "rate_ucl"],
    "tables/rate_ratios.csv": [],
    "tables/safety_first_severe.csv": ["group", "day", "n", "n_risk", "events", "competing_deaths",
                                       "censored_before", "cif", "cif_lcl", "cif_ucl", "note"],
    "tables/hepatotoxicity.csv": ["outcome", "group", "n", "events", "not_evaluable", "percent", "samples_median",
                                  "samples_q1", "samples_q3"],
    "tables/forest.csv": ["section", "outcome", "label", "measure", "model", "family", "estimate", "lcl", "ucl", "p",
                          "p_holm"],
}
FIGURES = ["flow", "km", "cif", "trajectories", "swimmer", "forest"]


def test_every_analysis_output_follows_the_contract(embedded_run):
    for table, columns in CONTRACT.items():
        frame = pd.read_csv(embedded_run / table)
        assert len(frame) > 0, table
        assert list(frame.columns[: len(columns)]) == columns, table
    for figure in FIGURES:
        assert (embedded_run / "figures" / f"{figure}.png").stat().st_size > 10_000, figure
    cox = pd.read_csv(embedded_run / "tables" / "cox.csv").set_index(["model", "term"])
    assert cox.loc[("unadjusted", "route_group[IV]"), "n"] == 46
    # multiplicity: one secondary estimate per secondary outcome (adjusted Firth OR), Holm p beside the raw p
    forest = pd.read_csv(embedded_run / "tables" / "forest.csv")
    secondary = forest[forest["family"].eq("secondary")]
    assert sorted(secondary["outcome"]) == ["ae_grade3plus", "death_30d", "response_day7"]
    assert set(secondary["section"]) == {"logistic"} and set(secondary["model"]) == {"adjusted"}
    assert (secondary["p_holm"] >= secondary["p"]).all() and secondary["p_holm"].notna().all()
    others = forest[forest["family"].ne("secondary")]
    assert set(others["family"]) == {"exploratory"} and others["p_holm"].isna().all()


def test_every_input_row_is_accounted_for(embedded_run):
    for centre in ("LDN", "SHF", "BHM"):
        acc = pd.read_csv(embedded_run / "clean" / centre / "accounting.csv")
        assert (acc["rows_in"] == acc["rows_kept"] + acc["rows_excluded"]).all()
        ledger = pd.read_csv(embedded_run / "clean" / centre / "exclusions.csv")
        excluded = ledger[ledger["scope"] == "row"].groupby("file")["row"].nunique()
        assert excluded.reindex(acc["file"], fill_value=0).tolist() == acc["rows_excluded"].tolist()


def test_two_runs_from_scratch_are_byte_identical(runs):
    a, b = runs
    files = sorted(p.relative_to(a) for p in a.rglob("*")
                   if p.is_file() and p.parts[len(a.parts)] not in ("logs", "benchmarks"))
    assert len(files) > 20
    different = [str(f) for f in files if (a / f).read_bytes() != (b / f).read_bytes()]
    assert different == []


def test_privacy_check_ran_and_passed(embedded_run):
    assert "none found" in (embedded_run / "checks" / "privacy.txt").read_text()


def test_no_change_rerun_schedules_nothing(embedded_run):
    dry = workflow(EMBEDDED_RUN, "--dry-run", "--quiet", "rules")
    assert dry.returncode == 0, dry.stderr[-2000:]
    assert "Nothing to be done" in dry.stdout + dry.stderr


def test_a_delivery_without_iv_patients_runs_through(no_iv_run):
    """An empty IV group: every model says why it is not estimable instead of crashing."""
    _, out = no_iv_run
    groups = pd.read_csv(out / "cohort" / "analysis_dataset.csv")["route_group"]
    assert set(groups) == {"SC"}
    cox = pd.read_csv(out / "tables" / "cox.csv")
    route = cox[cox["term"] == "route_group[IV]"]
    assert route["hr"].isna().all() and route["note"].str.contains("not estimable").all()
    logistic = pd.read_csv(out / "tables" / "logistic.csv")
    assert logistic.loc[logistic["term"] == "route_group[IV]", "or"].isna().all()
    assert (out / "figures" / "km.png").stat().st_size > 10_000
