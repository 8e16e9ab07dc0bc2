"""The report rule in the real workflow: outputs, determinism, what a config change reruns, and
`snakemake --report`.

``report_run()`` is the run of the embedded delivery the end-to-end tests share (disclosure
switched on with a config overlay; tests/workflow_runs.py), made once per test process; the
disclosure and browser tests read it too.
"""

from __future__ import annotations

import json
import re
import subprocess
import zipfile

import pandas as pd

from tests.workflow_runs import DISCLOSURE, EMBEDDED_RUN, workflow
from tests.workflow_runs import embedded_run as report_run

__all__ = ["DISCLOSURE", "report_run"]  # imported by test_disclosure.py and test_report_browser.py
RUN = EMBEDDED_RUN


def snakemake(*args: str, overlay: dict | None = None):
    """The workflow on the embedded delivery under the shared run's name, with ``overlay`` (and the
    disclosure setting) merged over config/config.yaml."""
    return workflow(RUN, *args, overlay=overlay)


def scheduled(dry: subprocess.CompletedProcess) -> set[str]:
    """Rule names of the jobs a dry run lists (its job-stats table)."""
    text = dry.stdout + dry.stderr
    table = text.split("Job stats:", 1)[1] if "Job stats:" in text else ""
    return {m.group(1) for m in re.finditer(r"^(\w+)\s+\d+\s*$", table, flags=re.M)} - {"total"}


def test_report_files_are_written():
    out = report_run()
    for name in ("report.html", "report_shareable.html", "provenance.json", "tables/exposure.csv",
                 "logs/run_log.json"):
        assert (out / name).is_file(), name
    html = (out / "report.html").read_text(encoding="utf-8")
    assert html.count("data:image/png;base64,") == 10  # 6 + the comparison section's 4
    assert "http://" not in html and "https://" not in html  # nothing to fetch


def test_provenance_records_inputs_config_versions_and_lineage():
    out = report_run()
    prov = json.loads((out / "provenance.json").read_text(encoding="utf-8"))
    inputs = {r["path"]: r for r in prov["inputs"]}
    assert "data/raw/example/LDN/labs.csv" in inputs and "config/centres/SHF.yaml" in inputs
    assert all(len(r["sha256"]) == 64 and r["bytes"] > 0 for r in prov["inputs"])
    assert "run" not in prov["config"] and prov["config"]["disclosure"] == DISCLOSURE
    assert len(prov["config_sha256"]) == 64
    assert set(prov["pipeline"]) >= {"commit", "clean"}
    assert {"python", "snakemake", "pandas", "Jinja2"} <= set(prov["software"])
    lineage = {r["output"]: r for r in prov["lineage"]}
    # every CSV table traces to its rule and inputs; paths are relative to results/<run>/
    for table in (out / "tables").glob("*.csv"):
        assert f"tables/{table.name}" in lineage, table.name
    assert lineage["tables/cox.csv"]["rule"] == "survival"
    assert lineage["tables/cox.csv"]["inputs"] == ["cohort/analysis_dataset.csv"]
    assert lineage["clean/LDN/exclusions.csv"]["rule"] == "ingest"
    assert "data/raw/example/LDN/labs.csv" in lineage["clean/LDN/exclusions.csv"]["inputs"]
    assert RUN not in (out / "provenance.json").read_text(encoding="utf-8")


def test_run_log_holds_the_per_invocation_facts():
    runs = json.loads((report_run() / "logs" / "run_log.json").read_text(encoding="utf-8"))
    last = runs[-1]
    assert last["status"] == "success" and last["started"] <= last["finished"]
    assert f"run={RUN}" in last["command"]


def test_report_shows_provenance_and_no_per_invocation_fact():
    out = report_run()
    html = (out / "report.html").read_text(encoding="utf-8")
    prov = json.loads((out / "provenance.json").read_text(encoding="utf-8"))
    assert prov["config_sha256"] in html
    assert prov["inputs"][0]["sha256"] in html
    assert RUN not in html  # neither the run name nor the command line
    runs = json.loads((out / "logs" / "run_log.json").read_text(encoding="utf-8"))
    assert runs[-1]["started"] not in html


def test_rerun_of_the_report_gives_the_same_bytes_and_nothing_to_do():
    out = report_run()
    names = ("report.html", "report_shareable.html", "provenance.json", "tables/exposure.csv")
    before = {n: (out / n).read_bytes() for n in names}
    again = snakemake("--forcerun", "report")  # and the privacy scan downstream of it
    assert again.returncode == 0, again.stderr[-3000:]
    assert {n: (out / n).read_bytes() for n in names} == before
    dry = snakemake("--dry-run")
    assert dry.returncode == 0, dry.stderr[-2000:]
    assert "Nothing to be done" in dry.stdout + dry.stderr


def test_changing_the_adjustment_reruns_only_that_analysis_and_the_report():
    out = report_run()
    html = (out / "report.html").read_text(encoding="utf-8")
    cox = (out / "tables" / "cox.csv").read_text(encoding="utf-8")
    assert "adjusted for age group (reference adult), intensive care and trigger (reference infection)" in html
    change = {"analyses": {"survival": {"adjust_for": ["icu"]}}}
    dry = snakemake("--dry-run", overlay=change)
    assert dry.returncode == 0, dry.stderr[-2000:]
    # survival, what reads its tables (forest plot, the estimates on disclosed counts, both reports, privacy
    # scan) and the target: nothing else
    assert scheduled(dry) == {"survival", "forest", "disclose", "report", "report_shareable", "privacy_check",
                              "all"}, dry.stdout[-3000:]
    try:
        done = snakemake(overlay=change)
        assert done.returncode == 0, done.stderr[-3000:]
        changed = (out / "report.html").read_text(encoding="utf-8")
        assert "unadjusted, and adjusted for intensive care." in changed
        assert "adjusted for age group (reference adult), intensive care and trigger" not in changed
        assert (out / "tables" / "cox.csv").read_text(encoding="utf-8") != cox
        terms = set(pd.read_csv(out / "tables" / "cox.csv").query("model == 'adjusted'")["term"])
        assert terms == {"route_group[IV]", "icu"}
    finally:
        restored = snakemake()
        assert restored.returncode == 0, restored.stderr[-3000:]
    assert (out / "report.html").read_text(encoding="utf-8") == html


def test_snakemake_report_builds_the_standard_zip(tmp_path):
    report_run()
    target = tmp_path / "snakemake_report.zip"  # not in the shared run's folder, which other tests compare
    done = snakemake("--report", str(target))
    assert done.returncode == 0, done.stderr[-3000:]
    with zipfile.ZipFile(target) as z:
        names = z.namelist()
    assert any(n.endswith("report.html") for n in names)
    for figure in ("flow.png", "km.png", "forest.png", "swimmer.png"):
        assert any(n.endswith(figure) for n in names), figure
