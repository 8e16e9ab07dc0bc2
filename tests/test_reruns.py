"""What a rerun does, read from `snakemake -n` and `--summary` on the small generated delivery the
end-to-end tests share (tests/workflow_runs.py: 12 patients, none IV, in a temporary folder; every
test here puts back what it changes).

Rerun decisions follow content, not modification times: the delivered files are `ancient` and
ingest carries a SHA-256 of its centre's inputs as a param (workflow/rules/common.smk). So:
nothing changed -> no job; the same bytes with new mtimes (a checkout, a copy) -> no job, even
for files above Snakemake's own checksum limit; one centre's content changed -> that centre's
ingest and what depends on it, nothing of the other centres.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.workflow_runs import NO_IV_RUN

ROOT = Path(__file__).resolve().parent.parent
RUN = NO_IV_RUN
OUT = ROOT / "results" / RUN
# Every file of the centres' folders is larger than this, delivery.yaml is smaller: with it,
# Snakemake's own checksum fallback (which only covers files up to this size; 1 MB by default,
# which a real extract exceeds) cannot be what keeps a touched extract from rerunning.
SMALL_CHECKSUM_LIMIT = 200
DOWNSTREAM = {"link", "cohort", "describe", "hepatotoxicity", "survival", "competing_risks",
              "binary_outcomes", "trajectories", "safety", "forest", "privacy_check"}


@pytest.fixture(scope="module")
def delivery(no_iv_run) -> Path:
    return no_iv_run[0]


def snakemake(delivery: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2", *args, "--config",
                           f"delivery={delivery}", f"run={RUN}"], cwd=ROOT, capture_output=True, text=True)


def scheduled(delivery: Path, *args: str) -> list[tuple[str, str]]:
    """(rule, wildcards) of every job a dry run would run; [] when there is nothing to do."""
    dry = snakemake(delivery, "--dry-run", *args)
    text = dry.stdout + dry.stderr
    assert dry.returncode == 0, text[-3000:]
    if "Nothing to be done" in text:
        return []
    jobs = []
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", text)[1:]:
        rule = re.match(r"(?:local)?rule (\w+):", block).group(1)
        wildcards = re.search(r"^\s+wildcards: (.*)$", block, re.M)
        jobs.append((rule, wildcards.group(1) if wildcards else ""))
    assert jobs, text[-3000:]
    return jobs


def summary_plan(delivery: Path) -> dict[str, tuple[str, str]]:
    """output file -> (status, plan) from `snakemake --summary`."""
    done = snakemake(delivery, "--summary")
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [line.split("\t") for line in done.stdout.splitlines() if line.startswith("results/")]
    return {f[0]: (f[4], f[5]) for f in lines}


def renew_mtimes(paths) -> None:
    """Rewrite each file with its own bytes, so it is newer than every output: what a fresh
    checkout or a copy of the delivery does."""
    for path in paths:
        path.write_bytes(path.read_bytes())
        os.utime(path)


def delivered(delivery: Path) -> list[Path]:
    return sorted(p for p in delivery.rglob("*") if p.is_file())


def test_nothing_changed_schedules_nothing(delivery):
    assert scheduled(delivery) == []
    plans = summary_plan(delivery)
    assert len(plans) > 50 and {plan for _, plan in plans.values()} == {"no update"}


def test_same_content_with_new_mtimes_schedules_nothing(delivery):
    assert min(p.stat().st_size for p in delivered(delivery) if p.parent != delivery) > SMALL_CHECKSUM_LIMIT
    renew_mtimes(delivered(delivery))
    newest_output = max(p.stat().st_mtime for p in OUT.rglob("*") if p.is_file())
    assert min(p.stat().st_mtime for p in delivered(delivery)) > newest_output
    assert scheduled(delivery) == []
    assert scheduled(delivery, "--max-checksum-file-size", str(SMALL_CHECKSUM_LIMIT)) == []


def test_one_centre_changed_reruns_that_centre_and_what_depends_on_it(delivery):
    labs = delivery / "LDN" / "labs.csv"
    original = labs.read_bytes()
    lines = original.split(b"\r\n")
    fields = lines[20].split(b",")
    fields[3] = str(float(fields[3]) + 1).encode()  # one lab result corrected
    try:
        labs.write_bytes(b"\r\n".join(lines[:20] + [b",".join(fields)] + lines[21:]))
        jobs = scheduled(delivery)
        assert [w for rule, w in jobs if rule == "ingest"] == ["centre=LDN"]
        assert DOWNSTREAM <= {rule for rule, _ in jobs}
        plans = summary_plan(delivery)
        clean = {path: plan for path, plan in plans.items() if "/clean/" in path}
        assert {plan for path, plan in clean.items() if "/clean/LDN/" in path} == {("params changed", "update pending")}
        assert {plan for path, plan in clean.items() if "/clean/LDN/" not in path} == {("ok", "no update")}
    finally:
        labs.write_bytes(original)  # the same bytes again, with a newer mtime
    assert scheduled(delivery, "--max-checksum-file-size", str(SMALL_CHECKSUM_LIMIT)) == []


def test_a_centre_adding_a_file_reruns_that_centre(delivery):
    extra = delivery / "BHM" / "BHM_notes.txt"
    try:
        extra.write_text("a file the centre map does not name\n", encoding="utf-8")
        assert [w for rule, w in scheduled(delivery) if rule == "ingest"] == ["centre=BHM"]
    finally:
        extra.unlink()
    assert scheduled(delivery) == []


def test_ingest_rerun_with_identical_outputs_does_not_cascade_later(delivery):
    """Forcing ingest again rewrites its outputs with the same bytes; in a later invocation
    Snakemake compares the checksums of those (small) files and reruns nothing downstream.
    (Inside one invocation a rerun ingest always takes its dependants with it: the plan is
    made before any job runs.)"""
    before = {p: p.read_bytes() for p in (OUT / "clean").rglob("*") if p.is_file()}
    done = snakemake(delivery, "--forcerun", "ingest", "--until", "ingest")
    assert done.returncode == 0, done.stderr[-3000:]
    after = {p: p.read_bytes() for p in (OUT / "clean").rglob("*") if p.is_file()}
    assert after == before
    assert scheduled(delivery) == []
