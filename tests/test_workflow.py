"""End to end: the real workflow on the embedded delivery, twice from scratch.

Reproduces the Viewpoint's cohort (46 patients, 18 IV, 28 SC) and checks that two runs
from nothing give byte-identical tables.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent
# Per-process run names, so two test sessions on one checkout cannot collide.
RUNS = tuple(f"pytest_e2e_{os.getpid()}_{x}" for x in "ab")


def snakemake(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2", *args], cwd=ROOT,
                          capture_output=True, text=True)


@pytest.fixture(scope="module")
def runs():
    for run in RUNS:
        shutil.rmtree(ROOT / "results" / run, ignore_errors=True)
        done = snakemake("--config", f"run={run}")
        assert done.returncode == 0, done.stderr[-3000:]
    yield [ROOT / "results" / run for run in RUNS]
    for run in RUNS:
        shutil.rmtree(ROOT / "results" / run, ignore_errors=True)


def test_cohort_reproduces_the_viewpoint(runs):
    out = runs[0]
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
    assert table1.loc[0, ["overall", "IV", "SC"]].astype(int).tolist() == [46, 18, 28]


def test_every_input_row_is_accounted_for(runs):
    for centre in ("LDN", "SHF", "BHM"):
        acc = pd.read_csv(runs[0] / "clean" / centre / "accounting.csv")
        assert (acc["rows_in"] == acc["rows_kept"] + acc["rows_excluded"]).all()
        ledger = pd.read_csv(runs[0] / "clean" / centre / "exclusions.csv")
        excluded = ledger[ledger["scope"] == "row"].groupby("file")["row"].nunique()
        assert excluded.reindex(acc["file"], fill_value=0).tolist() == acc["rows_excluded"].tolist()


def test_two_runs_from_scratch_are_byte_identical(runs):
    a, b = runs
    files = sorted(p.relative_to(a) for p in a.rglob("*")
                   if p.is_file() and p.parts[len(a.parts)] not in ("logs", "benchmarks"))
    assert len(files) > 20
    different = [str(f) for f in files if (a / f).read_bytes() != (b / f).read_bytes()]
    assert different == []


def test_privacy_check_ran_and_passed(runs):
    assert "none found" in (runs[0] / "checks" / "privacy.txt").read_text()


def test_no_change_rerun_schedules_nothing(runs):
    dry = snakemake("--config", f"run={RUNS[0]}", "--dry-run", "--quiet", "rules")
    assert dry.returncode == 0, dry.stderr[-2000:]
    assert "Nothing to be done" in dry.stdout + dry.stderr
