"""Unit tests of the report package: number formats, methods text from config, limitations,
STROBE map, provenance helpers, and the report's contract (it reads no patient-level file).
Fast and offline (the workflow runs are in test_report_workflow.py)."""

from __future__ import annotations

import copy
import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from stormcohort.disclosure import Policy
from stormcohort.ingest.centre_map import lab_uln, load_centre_maps
from stormcohort.labels import term_label
from stormcohort.outputs import OUTPUTS, output
from stormcohort.report import provenance as P
from stormcohort.report.fmt import Formatter
from stormcohort.report.inputs import report_inputs
from stormcohort.report.methods import covariates, join_and, methods
from stormcohort.report.sections import (
    binary_table,
    cif_tests_table,
    conflicts_table,
    forest_table,
    km_table,
    lower_first,
    rates_table,
    table1_table,
)
from stormcohort.report.strobe import ITEMS, strobe_map

ROOT = Path(__file__).resolve().parent.parent
CONFIG = yaml.safe_load((ROOT / "config" / "config.yaml").read_text(encoding="utf-8"))
# the resolved config, as workflow/rules/common.smk makes it: the centres' ULNs from their maps
_HEP = CONFIG["analyses"]["hepatotoxicity"]
_HEP["uln"] = lab_uln(load_centre_maps(CONFIG["centres"], ROOT / "config" / "centres", _HEP["tests"]), _HEP["tests"])
DELIVERY = {"path": "data/raw/example", "extract_date": "2020-06-30", "synthetic": True}


def text(paragraphs) -> str:
    return " ".join(p["text"] for p in paragraphs)


def test_numbers_are_formatted_in_one_way():
    f = Formatter()
    assert f.count(2033) == "2,033" and f.count(None) == "\u2014"
    assert f.n_pct(18, 46) == "18 (39%)"
    assert f.est_ci(1.83798, 0.643755, 5.24759) == "1.84 (0.64\u20135.25)"
    assert f.est_ci(2.03, 0.0258, 159.13) == "2.03 (0.03\u2013159)"
    assert f.est_ci(0.0, 0.0, float("inf")) == "0.00 (0.00\u2013\u221e)"
    assert f.est_ci(0.76087, 0.647, 0.8947, 2) == "0.76 (0.65\u20130.89)"
    assert f.p(0.255485) == "0.255" and f.p(5e-21) == "<0.001" and f.p(float("nan")) == "\u2014"
    assert f.median_iqr(34.5, 14.3, 55.1) == "34.5 [14.3, 55.1]"
    assert f.days(7.0) == "7" and f.days(2.5) == "2.5"


def test_labels_read_well_in_sentences():
    assert lower_first("Weight, kg") == "weight, kg"
    assert lower_first("CNS involvement") == "CNS involvement"
    assert lower_first("ALT or AST >3\u00d7ULN") == "ALT or AST >3\u00d7ULN"
    assert term_label("route_group[IV]") == "IV vs SC"
    assert term_label("age_group[child]") == "Age group: child"
    assert join_and(["a", "b", "c"]) == "a, b and c" and join_and([]) == ""


def test_methods_text_follows_the_config():
    base = text(methods(CONFIG, {}, DELIVERY))
    assert "adjusted for age group (reference adult), intensive care and trigger (reference infection)" in base
    assert "from 2019-01-01 to 2019-12-31" in base and "at least 5 of the 8 HLH-2004 criteria" in base
    assert "day 90" in base and "IV if any intravenous dose" in base
    assert "start at the same time, the first dose's route is taken to be IV" in base
    assert "was a prevalent user, excluded." in base and "within 7 day(s) of the previous admission" in base
    changed = copy.deepcopy(CONFIG)
    changed["analyses"]["survival"]["adjust_for"] = ["icu"]
    changed["cohort"]["exposure"] = "first_dose"
    changed["cohort"]["follow_up_days"] = 60
    changed["cohort"]["simultaneous_routes"] = "sc_first"
    changed["cohort"]["exclude_prevalent_users"] = False
    changed["analyses"]["safety"]["per"] = 1000
    other = text(methods(changed, {}, DELIVERY))
    assert "unadjusted, and adjusted for intensive care." in other
    assert "the route of the first anakinra dose" in other and "day 60" in other
    assert "the first dose's route is taken to be SC (config cohort.simultaneous_routes = sc_first)" in other
    assert "kept in the cohort (config cohort.exclude_prevalent_users = false)" in other
    assert "per 1000 patient-days" in other and "per 100 patient-days" not in other


def test_methods_say_the_multiplicity_families_once_from_the_config():
    base = text(methods(CONFIG, {}, DELIVERY))
    assert "no adjustment for multiple comparisons" not in base
    assert ("One primary outcome, death by day 90 (config analyses.comparison.primary_outcome = death_by_horizon), "
            "whose primary estimate is the target trial's.") in base
    assert ("secondary_outcomes: death by day 30, response at day 7 and any adverse event grade \u22653): its "
            "Firth odds ratio IV vs SC adjusted for age group (reference adult) and intensive care") in base
    assert 'Holm-adjusted within the family (step-down, as R p.adjust(p, "holm")' in base
    assert "the Cox hazard ratios of death by day 90 (between the route groups of cohort.exposure" in base
    changed = copy.deepcopy(CONFIG)
    changed["cohort"]["follow_up_days"] = 60
    changed["analyses"]["comparison"]["secondary_outcomes"] = ["response_day7"]
    other = text(methods(changed, {}, DELIVERY))
    assert "One primary outcome, death by day 60" in other and "secondary_outcomes: response at day 7)" in other
    changed["analyses"]["comparison"]["secondary_outcomes"] = []
    assert "No secondary outcome is configured" in text(methods(changed, {}, DELIVERY))


def test_methods_state_the_baseline_rule_from_the_config():
    base = text(methods(CONFIG, {}, DELIVERY))
    assert "from 7 days before the index date and before the first anakinra dose" in base
    assert "the sample nearest the first dose (the latest)" in base
    assert "only when its recorded time was before the first dose's time" in base
    assert "cohort.baseline: window_days = 7, pick = nearest, same_day = before_dose" in base
    # the peak temperature cannot be restricted to before the first dose
    assert "peak temperature" in base and "may follow the first dose" in base
    changed = copy.deepcopy(CONFIG)
    changed["cohort"]["baseline"] = {"window_days": 3, "pick": "worst", "same_day": "always"}
    other = text(methods(changed, {}, DELIVERY))
    assert "from 3 days before the index date" in other and "the worst sample" in other
    assert "any sample on the index date counted, even one taken after the first dose" in other
    changed["cohort"]["baseline"]["same_day"] = "never"
    assert "no sample on the index date counted" in text(methods(changed, {}, DELIVERY))


def test_methods_quote_the_estimators_from_the_model_records():
    models = {"survival": {"methods": {"cox": "Cox proportional hazards, Efron ties (R coxph default)",
                                       "kaplan_meier": "Kaplan-Meier product-limit estimator, Greenwood variance"}}}
    t = text(methods(CONFIG, models, DELIVERY))
    assert "Efron ties" in t and "Greenwood" in t and "log-transformed" in t


def test_covariates_name_their_reference_levels():
    assert covariates(["age_group", "icu"], {"age_group": "adult"}) == "age group (reference adult) and intensive care"
    assert covariates([], {}) == "no covariate"


def test_strobe_map_covers_all_22_items_and_names_real_sections():
    items = {i.rstrip("abcde") for i, _, _ in ITEMS}
    assert items == {str(k) for k in range(1, 23)}
    rows = strobe_map({"summary": "Summary", "methods": "Methods", "data-sources": "Data sources",
                       "limitations": "Limitations", "participants": "Participants", "outcomes": "Outcomes",
                       "baseline": "Baseline", "forest": "Forest", "safety": "Safety",
                       "comparison": "Comparative effectiveness"})
    assert all(r["title"] for r in rows if r["section"])
    assert {r["item"] for r in rows if r["section"] is None} == {"2", "20", "22"}


def test_config_digest_ignores_the_run_name_and_key_order():
    a = {"run": "x", "seed": 1, "cohort": {"b": 2, "a": 1}}
    b = {"cohort": {"a": 1, "b": 2}, "seed": 1, "run": "y"}
    assert P.config_digest(a) == P.config_digest(b)
    assert P.config_digest(a) != P.config_digest({**a, "seed": 2})
    assert "run" not in P.study_config(a)


def test_file_records_and_paths_relative_to_the_run(tmp_path):
    f = tmp_path / "results" / "r1" / "tables" / "t.csv"
    f.parent.mkdir(parents=True)
    f.write_bytes(b"a,b\n1,2\n")
    rec = P.file_record(f, tmp_path / "results" / "r1")
    assert rec == {"path": "tables/t.csv", "bytes": 8, "sha256": hashlib.sha256(b"a,b\n1,2\n").hexdigest()}
    assert P.sha256_file(f) == rec["sha256"]
    assert P.relative("data/raw/example/LDN/labs.csv", "results/r1") == "data/raw/example/LDN/labs.csv"


def test_lineage_is_compacted_by_job():
    rows = [{"output": "tables/a.csv", "rule": "x", "inputs": ["cohort/d.csv"]},
            {"output": "figures/a.png", "rule": "x", "inputs": ["cohort/d.csv"]},
            {"output": "tables/b.csv", "rule": "y", "inputs": ["cohort/d.csv", "cohort/e.csv", "f.yaml"]}]
    jobs = P.lineage_jobs(rows)
    assert jobs == [{"rule": "x", "outputs": "figures/a.png; tables/a.csv", "inputs": "cohort/d.csv"},
                    {"rule": "y", "outputs": "tables/b.csv", "inputs": "cohort/{d.csv, e.csv}; f.yaml"}]


def test_run_log_appends_one_entry_per_invocation(tmp_path):
    log = tmp_path / "logs" / "run_log.json"
    started = P.log_invocation(log, "running")["started"]
    P.log_invocation(log, "success", started=started)
    P.log_invocation(log, "error", started=P.log_invocation(log, "running")["started"])
    runs = json.loads(log.read_text(encoding="utf-8"))
    assert [r["status"] for r in runs] == ["success", "error"]
    assert all(r["finished"] and r["command"] for r in runs)


def table1_rows(*rows):
    """Numeric Table 1 rows (variable, kind, level, group, n, count, missing, smd), as describe writes them."""
    cols = ["variable", "kind", "level", "group", "n", "count", "missing", "smd"]
    t = pd.DataFrame(rows, columns=cols)
    return t.assign(percent=100 * t["count"] / t["n"], median=np.nan, q1=np.nan, q3=np.nan)


def test_table1_shows_binary_variables_on_one_row_and_discloses_its_cells():
    t1 = table1_rows(
        ["patients", "count", None, "overall", 46, 46, 0, None], ["patients", "count", None, "IV", 18, 18, 0, None],
        ["patients", "count", None, "SC", 28, 28, 0, None],
        ["icu", "categorical", 0, "overall", 46, 29, 0, 1.83], ["icu", "categorical", 0, "IV", 18, 4, 0, None],
        ["icu", "categorical", 0, "SC", 28, 25, 0, None], ["icu", "categorical", 1, "overall", 46, 17, 0, 1.83],
        ["icu", "categorical", 1, "IV", 18, 14, 0, None], ["icu", "categorical", 1, "SC", 28, 3, 0, None],
        ["sex", "categorical", "F", "overall", 46, 18, 0, 0.37], ["sex", "categorical", "F", "IV", 18, 9, 0, None],
        ["sex", "categorical", "F", "SC", 28, 9, 0, None], ["sex", "categorical", "M", "overall", 46, 28, 0, 0.37],
        ["sex", "categorical", "M", "IV", 18, 9, 0, None], ["sex", "categorical", "M", "SC", 28, 19, 0, None],
        ["ferritin_baseline", "continuous", None, "overall", 40, None, 6, 0.52],
        ["ferritin_baseline", "continuous", None, "IV", 16, None, 2, None],
        ["ferritin_baseline", "continuous", None, "SC", 24, None, 4, None],
    )
    cont = t1["kind"].eq("continuous")
    t1.loc[cont, ["median", "q1", "q3"]] = [[9000.0, 4000.25, 20000.0], [12000.0, 5000.0, 30000.0],
                                             [7000.0, 3000.0, 15000.5]]
    full = table1_table(t1, Formatter())
    assert full.columns[1:4] == ["Overall (N = 46)", "IV (N = 18)", "SC (N = 28)"]
    assert full.rows[0] == ["Intensive care, n (%)", "17 (37%)", "14 (78%)", "3 (11%)", "0", "1.83"]
    assert full.rows[-1] == ["Ferritin, ug/L, median [IQR]", "9000.0 [4000.2, 20000.0]", "12000.0 [5000.0, 30000.0]",
                             "7000.0 [3000.0, 15000.5]", "6", "0.52"]
    shared = table1_table(t1, Formatter(Policy(10, 5)))
    assert shared.columns[1:4] == ["Overall (N = 45)", "IV (N = 20)", "SC (N = 30)"]
    assert shared.rows[0] == ["Intensive care, n (%)", "15 (33%)", "15 (75%)", "<10", "0", "1.83"]
    assert ["\u2003F", "20 (44%)", "<10", "<10", "", ""] in shared.rows
    assert shared.rows[-1][-2] == "<10"  # the missing count is disclosed too


def test_rates_table_formats_the_tables_and_recomputes_nothing():
    rates = pd.DataFrame({"group": ["IV", "SC", "IV", "SC"],
                          "term": ["any", "any", "infusion_reaction", "infusion_reaction"],
                          "patients": [10, 12, 2, None], "events": [14, 20, 2, None],
                          "patient_days": [300, 700, 150, None],
                          "rate_per_100pd": [4.66667, 2.85714, 1.33333, None], "rate_lcl": [2.55, 1.75, 0.16, None],
                          "rate_ucl": [7.83, 4.41, 4.82, None], "note": [None] * 4})
    ratios = pd.DataFrame({"outcome": ["any"], "model": ["exact"], "term": ["route_group[IV]"], "irr": [1.63333],
                           "irr_lcl": [0.77], "irr_ucl": [3.39], "p": [0.18], "events_iv": [14],
                           "patient_days_iv": [300],
                           "events_sc": [20], "patient_days_sc": [700], "note": [None],
                           "irr_robust": [1.63333], "robust_lcl": [0.52], "robust_ucl": [5.1], "robust_p": [0.4],
                           "robust_se": [0.58], "robust_method": ["poisson_glm_cluster_hc1"]})
    t = rates_table(rates, ratios, 100, Formatter())
    assert t.rows[0] == ["Any adverse event", "14 / 300", "4.67 (2.55\u20137.83)", "20 / 700", "2.86 (1.75\u20134.41)",
                         "1.63 (0.77\u20133.39), p = 0.180", "1.63 (0.52\u20135.10), p = 0.400"]
    assert t.rows[1][3:5] == ["not applicable", ""]  # no SC day counts towards an infusion reaction
    assert t.rows[1][6] == "\u2014"  # no ratio: no clustered interval either


def test_cif_tests_table_formats_each_comparison_and_withholds_small_counts():
    tests = pd.DataFrame({
        "outcome": ["fever_resolution"] * 3 + ["death"] * 3,
        "method": ["gray_test", "fine_gray", "cause_specific_cox"] * 2,
        "measure": ["", "sHR", "HR"] * 2,
        "estimate": [np.nan, 1.1756, 1.5685, np.nan, np.nan, np.nan],
        "lcl": [np.nan, 0.6221, 0.8454, np.nan, np.nan, np.nan],
        "ucl": [np.nan, 2.2215, 2.9100, np.nan, np.nan, np.nan],
        "statistic": [0.3713, 0.2482, 2.0377, 1.5532, np.nan, np.nan], "df": [1] * 6,
        "p": [0.5423, 0.6183, 0.1534, 0.2127, np.nan, np.nan], "n": [46] * 6, "events": [45] * 3 + [1] * 3,
        "events_iv": [17] * 3 + [1] * 3, "events_sc": [28] * 3 + [0] * 3,
        "note": [np.nan] * 3 + ["no death in the SC group: its cumulative incidence is 0 throughout",
                                "not estimable: no death in the SC group (the subdistribution hazard ratio is "
                                "infinite)", "not estimable: no death in the SC group (the hazard ratio is infinite)"]})
    t = cif_tests_table(tests, Formatter())
    assert t.rows[0] == ["Fever resolution", "17", "28", "\u03c7\u00b2 = 0.37, p = 0.542",
                         "1.18 (0.62\u20132.22), p = 0.618", "1.57 (0.85\u20132.91), p = 0.153"]
    assert t.rows[1] == ["Death", "1", "0", "\u03c7\u00b2 = 1.55, p = 0.213", "\u2014", "\u2014"]
    assert any("hazard ratio is infinite" in n for n in t.notes) and t.sources == ["tables/cif_tests.csv"]
    shared = cif_tests_table(tests, Formatter(Policy(10, 5)))
    assert shared.rows[1][1:4] == ["<10", "0", "not shown (<10 events)"]
    assert shared.rows[0][3].startswith("\u03c7\u00b2")


def test_cif_tests_table_shows_the_weighted_models_after_the_route_groups():
    plain = pd.DataFrame({
        "outcome": ["fever_resolution"] * 3, "method": ["gray_test", "fine_gray", "cause_specific_cox"],
        "weights": "none", "measure": ["", "sHR", "HR"], "estimate": [np.nan, 1.1756, 1.5685],
        "lcl": [np.nan, 0.6221, 0.8454], "ucl": [np.nan, 2.2215, 2.9100], "statistic": [0.3713, 0.2482, 2.0377],
        "df": [1] * 3, "p": [0.5423, 0.6183, 0.1534], "n": [46] * 3, "events": [45] * 3, "events_iv": [17] * 3,
        "events_sc": [28] * 3, "note": [np.nan] * 3})
    note = ("weighted by the target trial's stabilised inverse-probability-of-treatment weights (ATE); exposure IV "
            "by day 2 vs not (not the descriptive route group) among patients followed at day 2, fever time from "
            "time zero; robust (sandwich) variance")
    weighted = pd.DataFrame({
        "outcome": ["fever_resolution"] * 2 + ["death"] * 2, "method": ["fine_gray", "cause_specific_cox"] * 2,
        "weights": "iptw", "measure": ["sHR", "HR"] * 2, "estimate": [1.3, 1.4, np.nan, np.nan],
        "lcl": [0.7, 0.8, np.nan, np.nan], "ucl": [2.4, 2.5, np.nan, np.nan], "statistic": [0.7, 1.2, np.nan, np.nan],
        "df": [1] * 4, "p": [0.40, 0.27, np.nan, np.nan], "n": [40] * 4, "events": [39, 39, 1, 1],
        "events_iv": [15, 15, 1, 1], "events_sc": [24, 24, 0, 0],
        "note": [note, note] + [f"not estimable: no death in the SC group; {note}"] * 2})
    t = cif_tests_table(pd.concat([plain, weighted], ignore_index=True), Formatter())
    assert [r[0] for r in t.rows] == ["Fever resolution", "Fever resolution, weighted (IPTW), IV by day G",
                                      "Death, weighted (IPTW), IV by day G"]
    assert t.rows[1] == ["Fever resolution, weighted (IPTW), IV by day G", "15", "24", "\u2014",
                         "1.30 (0.70\u20132.40), p = 0.400", "1.40 (0.80\u20132.50), p = 0.270"]
    assert t.rows[2][3:] == ["\u2014"] * 3
    assert any(n.startswith("Weighted rows: IV by day G") for n in t.notes) and note in t.notes
    assert t.notes[0].startswith("IV vs SC (reference SC); the unweighted rows unadjusted.")


def test_the_report_reads_no_patient_level_file():
    """Its inputs are summary tables, model summaries and figures: nothing per patient or per row."""
    inputs = report_inputs(["LDN", "SHF", "BHM"])
    paths = [p for v in inputs.values() for p in ([v] if isinstance(v, str) else v)]
    summaries = ("attrition", "conflicts_summary")
    patient_level = {output("cohort", n) for n in OUTPUTS["cohort"] if n not in summaries} | {
        output("hepatotoxicity", "patients")}
    assert not patient_level & set(paths)
    assert not [p for p in paths if p.endswith(".parquet") or p.startswith("linked/") and "summary" not in p]
    statistics = re.compile(r"^\s*(from|import) (stormcohort\.(stats|analyses)|scipy|statsmodels|lifelines)\b",
                            re.M)
    assert not [f.name for f in (ROOT / "stormcohort" / "report").glob("*.py")
                if statistics.search(f.read_text(encoding="utf-8"))]


@pytest.mark.parametrize("name", ["report.html.j2", "macros.html.j2", "table1.html.j2", "diff.html.j2",
                                  "comparison.html.j2"])
def test_the_one_template_is_package_data(name):
    assert (ROOT / "stormcohort" / "report" / "templates" / name).is_file()


def test_km_table_gives_the_log_rank_reason_when_not_estimable():
    km = pd.DataFrame({"group": ["overall", "IV", "SC"], "n": [4, 2, 2], "events": [2, 1, 1],
                       "median": [np.nan] * 3, "surv_30": [0.5] * 3, "surv_30_lcl": [0.1] * 3,
                       "surv_30_ucl": [0.9] * 3, "note": [None] * 3})
    lr = pd.DataFrame({"statistic": [np.nan], "df": [0], "p": [np.nan],
                       "note": ["not estimable: the variance of observed minus expected deaths is zero"]})
    t = km_table(km, lr, Formatter())
    assert t.notes[0] == ("Log-rank test IV vs SC: not estimable: the variance of observed minus expected "
                          "deaths is zero.")
    assert t.columns[-1] == "Survival at day 30 (CI)"



def test_conflicts_table_lists_ledger_rules_and_cohort_rules_with_their_handling():
    ledger = pd.DataFrame({"centre": ["LDN", "LDN"], "file": ["admissions.csv", "labs.csv"],
                           "rule": ["death_conflict", "orphan"], "scope": ["value", "row"],
                           "columns": ["Outcome", np.nan], "entries": [1, 3],
                           "handling": ["counted as a death", "row excluded"]})
    cohort = pd.DataFrame({"centre": ["SHF"], "rule": ["death_without_date"], "patients": [2],
                           "handling": ["censored at the last date known alive"]})
    t = conflicts_table(ledger, cohort, Formatter())
    assert t.rows == [
        ["LDN", "cleaning", "death conflict", "admissions.csv: Outcome", "1 values", "counted as a death"],
        ["LDN", "cleaning", "orphan", "labs.csv", "3 rows", "row excluded"],
        ["SHF", "cohort", "death without date", "analysis dataset", "2 patients",
         "censored at the last date known alive"]]
    assert t.sources == ["clean/LDN/exclusions.csv", "cohort/data_conflicts.csv"]
    assert conflicts_table(ledger.iloc[:0], cohort.iloc[:0], Formatter()).notes


def _forest_csv(tmp_path) -> pd.DataFrame:
    """tables/forest.csv as the report reads it: the forest rows of the forest tests, through a CSV."""
    from tests.test_analyses_forest import COX, RATES, forest_rows, secondary_logistic

    logistic = secondary_logistic({"death_30d": 0.04, "response_day7": 0.001, "ae_grade3plus": 0.03,
                                   "hepatotox_3xuln": 0.002})
    forest_rows(COX, logistic, RATES).to_csv(tmp_path / "forest.csv", index=False)
    return pd.read_csv(tmp_path / "forest.csv")


def test_forest_table_labels_each_estimate_with_its_family_and_holm_p(tmp_path):
    forest = _forest_csv(tmp_path)
    t = forest_table(forest, Formatter())
    assert t.columns == ["Outcome", "Measure", "Model", "Family", "Ratio (CI)", "p", "Holm p"]
    rows = {(r[0], r[1], r[2]): r for r in t.rows}
    assert rows[("Death by day 30", "OR", "adjusted")][3:] == ["secondary", "2.00 (0.80\u20135.00)", "0.040", "0.060"]
    assert rows[("Response at day 7", "OR", "adjusted")][5:] == ["0.001", "0.003"]
    assert rows[("Death by day 30", "OR", "unadjusted")][3::3] == ["exploratory", ""]
    assert rows[("Death by day 90", "HR", "adjusted")][3] == ("exploratory (descriptive counterpart of the primary "
                                                              "outcome)")
    assert rows[("Any adverse event grade \u22653", "IRR", "unadjusted")][4:6] == ["not estimable", "\u2014"]
    # the shareable report: a withheld estimate says so, its Holm p with it
    from stormcohort.disclosure import disclosed_forest

    counts = pd.DataFrame({"outcome": ["death_30d"] * 2, "group": ["IV", "SC"], "events": [3, 12]})
    shown = disclosed_forest(forest, pd.DataFrame(columns=["outcome"]), counts,
                             pd.DataFrame({"group": ["IV", "SC"], "events": [20, 20]}), Policy(10, 5))
    shared = {(r[0], r[1], r[2]): r for r in forest_table(shown, Formatter(Policy(10, 5))).rows}
    assert shared[("Death by day 30", "OR", "adjusted")][4:] == ["not shown (<10 events)", "\u2014", ""]
    assert shared[("Response at day 7", "OR", "adjusted")][6] == "0.003"


def test_binary_table_marks_the_secondary_family_and_its_holm_p(tmp_path):
    forest = _forest_csv(tmp_path)
    outcomes = ["death_30d", "response_day7", "ae_grade3plus", "hepatotox_3xuln"]
    counts = pd.DataFrame([(o, g, 40, 10 if g != "overall" else 20, 2) for o in outcomes
                           for g in ("overall", "IV", "SC")],
                          columns=["outcome", "group", "n", "events", "not_evaluable"])
    from tests.test_analyses_forest import secondary_logistic

    logistic = secondary_logistic({o: 0.04 for o in outcomes})
    t = binary_table(counts, logistic, Formatter(), forest)
    assert t.columns == ["Outcome", "Family", "IV", "SC", "Not evaluable", "OR unadjusted", "OR adjusted", "Holm p"]
    assert [r[1] for r in t.rows] == ["secondary", "secondary", "secondary", "exploratory"]
    assert [r[-1] for r in t.rows] == ["0.060", "0.003", "0.060", ""]
    assert "tables/forest.csv" in t.sources and any("Holm-adjusted" in n for n in t.notes)
    assert {r[1] for r in binary_table(counts, logistic, Formatter()).rows} == {"exploratory"}  # no forest table
