"""Results are a contract: the report renders from the analyses' summary tables alone, and the
follow-up horizon names every survival result.

Both run the real workflow: the shared embedded run (tests/workflow_runs.py), and one more run of
a small generated delivery with ``cohort.follow_up_days: 60``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from stormcohort.outputs import OUTPUTS, output, under
from tests import workflow_runs

CENTRES = ["LDN", "SHF", "BHM"]


def patient_level(out: Path) -> list[Path]:
    """Every file of a run below the summaries: the cleaned, linked and cohort tables, the ledgers'
    rows and the per-patient hepatotoxicity flags (only the attrition and the summaries stay)."""
    keep = {output("ingest", n, c) for n in ("accounting", "ledger_summary") for c in CENTRES} | {
        output("link", "summary"), output("cohort", "attrition"), output("cohort", "conflicts_summary")}
    files = [p for folder in ("clean", "linked", "cohort") for p in (out / folder).rglob("*") if p.is_file()]
    return [p for p in files if str(p.relative_to(out)) not in keep]


def test_the_report_renders_from_summary_tables_alone(embedded_run):
    """Copy the run, delete every patient-level file, make both reports again with only the report
    rules allowed to run: the same bytes."""
    run = f"pytest_summaries_only_{os.getpid()}"
    out = workflow_runs.ROOT / "results" / run
    try:
        shutil.copytree(embedded_run, out)
        deleted = patient_level(out)
        assert {output("cohort", "dataset"), output("cohort", "labs"), output("hepatotoxicity", "patients"),
                output("ingest", "ledger", "LDN")} <= {str(p.relative_to(out)) for p in deleted}
        for p in deleted:
            p.unlink()
        reports = [output("report", "html"), output("report_shareable", "html")]
        done = workflow_runs.workflow(run, *under(f"results/{run}", reports), "--allowed-rules", "report",
                                      "report_shareable", "--forcerun", "report", "report_shareable")
        assert done.returncode == 0, done.stderr[-3000:]
        for report in reports:
            assert (out / report).read_bytes() == (embedded_run / report).read_bytes(), report
    finally:
        workflow_runs.remove_run(run)


@pytest.fixture(scope="module")
def horizon_60(tmp_path_factory) -> Path:
    """results/<run>/ of a 30-patient generated delivery followed to day 60."""
    delivery = tmp_path_factory.mktemp("horizon") / "h60"
    made = subprocess.run([sys.executable, "-m", "stormcohort.synth", "--patients", "30", "--seed", "7", "--out",
                           str(delivery)], cwd=workflow_runs.ROOT, capture_output=True, text=True)
    assert made.returncode == 0, made.stderr[-2000:]
    run = f"pytest_horizon60_{os.getpid()}"
    try:
        done = workflow_runs.workflow(run, overlay={"cohort": {"follow_up_days": 60}}, delivery=str(delivery))
        assert done.returncode == 0, done.stderr[-4000:]
        yield workflow_runs.ROOT / "results" / run
    finally:
        workflow_runs.remove_run(run)


NINETY = re.compile(r"death_90d|surv_90|[Dd]ay 90\b|90 days|by day 90")


def test_the_follow_up_horizon_names_every_survival_result(horizon_60):
    out = horizon_60
    assert "death_60d" in pd.read_csv(out / output("cohort", "dataset")).columns
    km = pd.read_csv(out / output("survival", "km"))
    assert {"surv_30", "surv_60"} <= set(km.columns) and not [c for c in km.columns if "90" in c]
    assert set(pd.read_csv(out / output("survival", "cox"))["outcome"]) == {"death_60d"}
    assert pd.read_csv(out / output("survival", "km_risk"))["day"].max() <= 60
    forest = pd.read_csv(out / output("forest", "table"))
    assert "Death by day 60" in set(forest["label"])
    # the primary outcome follows the horizon: its route-group Cox rows are its exploratory, descriptive counterpart
    cox = forest[forest["section"].eq("cox")]
    assert set(cox["outcome"]) == {"death_60d"} and set(cox["family"]) == {"exploratory"}
    assert cox["note"].str.contains("counterpart of the primary outcome").all()
    texts = {p: (out / p).read_text(encoding="utf-8", errors="replace")
             for rule in ("survival", "competing_risks", "binary_outcomes", "forest", "describe", "report",
                          "report_shareable")
             for p in OUTPUTS[rule].values() if p.endswith((".csv", ".json", ".svg", ".html"))}
    texts[output("cohort", "dictionary")] = (out / output("cohort", "dictionary")).read_text(encoding="utf-8")
    said = {p: sorted(set(NINETY.findall(t))) for p, t in texts.items()}
    assert not {p: s for p, s in said.items() if s}, said
    report = texts[output("report", "html")]
    assert "Death by day 60" in report and "Survival at day 60" in report
