"""Unit tests of the report package: number formats, methods text from config, limitations,
STROBE map, provenance helpers and the exposure summary. Fast and offline (the workflow runs
are in test_report_workflow.py)."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from stormcohort.ingest.centre_map import lab_uln, load_centre_maps
from stormcohort.report import provenance as P
from stormcohort.disclosure import Policy
from stormcohort.report.fmt import Formatter
from stormcohort.report.methods import covariates, join_and, methods
from stormcohort.report.sections import exposure_summary, lower_first, table1_table, term_label
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
    changed = copy.deepcopy(CONFIG)
    changed["analyses"]["survival"]["adjust_for"] = ["icu"]
    changed["cohort"]["exposure"] = "first_dose"
    changed["cohort"]["follow_up_days"] = 60
    changed["analyses"]["safety"]["per"] = 1000
    other = text(methods(changed, {}, DELIVERY))
    assert "unadjusted, and adjusted for intensive care." in other
    assert "the route of the first anakinra dose" in other and "day 60" in other
    assert "per 1000 patient-days" in other and "per 100 patient-days" not in other


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
                       "baseline": "Baseline", "forest": "Forest", "safety": "Safety"})
    assert all(r["title"] for r in rows if r["section"])
    assert {r["item"] for r in rows if r["section"] is None} == {"2", "12e", "20", "22"}


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


def test_exposure_summary_by_route():
    ds = pd.DataFrame({
        "patient_key": ["a", "b", "c", "d"], "route_group": ["IV", "IV", "SC", "SC"], "first_route": ["IV", "SC", "SC", "SC"],
        "route_switch": [0, 1, 0, 0], "max_daily_dose_mg": [400, 800, 100, 200],
        "max_dose_mg_per_kg_day": [5.0, None, 2.0, 4.0], "days_admission_to_anakinra": [0, 1, 2, 3],
        "days_on_anakinra": [10, 20, 30, 40]})
    ak = pd.DataFrame({"patient_key": ["a", "a", "b", "c", "d"], "continuous": [True, False, False, False, False]})
    s = exposure_summary(ds, ak).set_index(["variable", "group"])
    assert s.loc[("max_daily_dose_mg", "IV"), "median"] == 600
    assert s.loc[("max_dose_mg_per_kg_day", "IV"), "missing"] == 1
    assert s.loc[("first_dose_iv", "overall"), "count"] == 1
    assert s.loc[("continuous_infusion", "IV"), "count"] == 1 and s.loc[("regimens", "IV"), "median"] == 1.5


def test_table1_shows_binary_variables_on_one_row_and_discloses_its_cells():
    t1 = pd.DataFrame([
        ["n", "Patients", "", "n", "46", "18", "28", "", None],
        ["icu", "Intensive care", "0", "n (%)", "29 (63.0%)", "4 (22.2%)", "25 (89.3%)", "0", 1.83],
        ["icu", "Intensive care", "1", "n (%)", "17 (37.0%)", "14 (77.8%)", "3 (10.7%)", "", None],
        ["sex", "Sex", "F", "n (%)", "18 (39.1%)", "9 (50.0%)", "9 (32.1%)", "0", 0.37],
        ["sex", "Sex", "M", "n (%)", "28 (60.9%)", "9 (50.0%)", "19 (67.9%)", "", None],
    ], columns=["variable", "label", "level", "statistic", "overall", "IV", "SC", "missing", "smd"])
    full = table1_table(t1, Formatter())
    assert full.columns[1:4] == ["Overall (N = 46)", "IV (N = 18)", "SC (N = 28)"]
    assert full.rows[0] == ["Intensive care, n (%)", "17 (37%)", "14 (78%)", "3 (11%)", "0", "1.83"]
    shared = table1_table(t1, Formatter(Policy(10, 5)))
    assert shared.columns[1:4] == ["Overall (N = 45)", "IV (N = 20)", "SC (N = 30)"]
    assert shared.rows[0] == ["Intensive care, n (%)", "15 (33%)", "15 (75%)", "<10", "0", "1.83"]
    assert ["\u2003F", "20 (44%)", "<10", "<10", "", ""] in shared.rows


@pytest.mark.parametrize("name", ["report.html.j2"])
def test_the_one_template_is_package_data(name):
    assert (ROOT / "stormcohort" / "report" / "templates" / name).is_file()
