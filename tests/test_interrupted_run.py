"""An interrupted run: the real workflow is killed (SIGKILL, no chance to clean up) while its
first ingest job is writing. The rerun must not trust the partial outputs: Snakemake marks the
killed job's files incomplete, a plain `snakemake -n` refuses to go on with them, and with the
default profile (`rerun-incomplete: true`) the dry run schedules that job again, together with
every job whose outputs are missing. The finished rerun then equals a clean run byte for byte:
the run of the embedded delivery the end-to-end tests share (tests/workflow_runs.py), whose
configuration this run takes too.

Runs use per-process names, so other sessions on the same checkout are not touched; at the end
the run's folder, its Snakemake metadata, the killed process's stale lock files and the
script its killed job left in .snakemake/scripts/ go.
"""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stormcohort.outputs import OUTPUTS, output
from tests.workflow_runs import config_args, remove_run

ROOT = Path(__file__).resolve().parent.parent
RUN = f"pytest_interrupted_{os.getpid()}"
# The default profile, with each job's details shown again (the profile hides them from the console).
PROFILE = ("--profile", "workflow/profiles/default", "--quiet", "host")
COMPARED = ("ingest", "link", "cohort")  # every output of these rules, byte for byte


def snakemake(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def stale_locks(run: str) -> list[Path]:
    """Lock files left by a killed Snakemake of this run (they name its files; others' do not)."""
    locks = ROOT / ".snakemake" / "locks"
    marker = f"results/{run}/"
    return [p for p in locks.glob("*.lock") if p.is_file() and marker in p.read_text(errors="replace")] \
        if locks.is_dir() else []


def forget(run: str) -> None:
    """Remove a run's folder and everything Snakemake recorded about its files."""
    remove_run(run)
    prefix = f"results/{run}/"
    for kind in ("incomplete", "metadata"):
        folder = ROOT / ".snakemake" / kind
        for record in folder.iterdir() if folder.is_dir() else []:
            try:
                name = base64.urlsafe_b64decode(record.name).decode()
            except (ValueError, UnicodeDecodeError):
                continue
            if name.startswith(prefix) and record.is_file():
                record.unlink(missing_ok=True)
    for lock in stale_locks(run):
        lock.unlink(missing_ok=True)
    # The script a killed job was running stays behind in .snakemake/scripts/ (it names the run).
    for script in (ROOT / ".snakemake" / "scripts").glob("tmp*.py"):
        if prefix in script.read_text(errors="replace"):
            script.unlink(missing_ok=True)


def files(out: Path) -> dict[str, bytes]:
    paths = [output(rule, name, centre) for rule in COMPARED for name in OUTPUTS[rule]
             for centre in (("LDN", "SHF", "BHM") if rule == "ingest" else (None,))]
    return {p: (out / p).read_bytes() for p in paths if (out / p).is_file()}


@pytest.fixture
def runs(embedded_run):
    forget(RUN)
    yield ROOT / "results" / RUN, embedded_run
    forget(RUN)


def test_killed_run_is_redone_and_equals_a_clean_run(runs):
    out, clean_out = runs
    # 1. Start the real workflow; SIGKILL its process group as soon as an ingest output appears.
    process = subprocess.Popen([sys.executable, "-m", "snakemake", "--cores", "1", *config_args(RUN)],
                               cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    written: list[Path] = []
    try:
        while not written and time.monotonic() < deadline and process.poll() is None:
            written = list((out / "clean").glob("*/*")) if (out / "clean").is_dir() else []
            time.sleep(0.005)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    assert written, "no ingest output appeared before the deadline (or the workflow ended first)"
    partial = sorted(str(p.relative_to(ROOT)) for p in (out / "clean").rglob("*") if p.is_file())
    assert not (out / "cohort" / "analysis_dataset.csv").exists()

    # 2. A plain rerun refuses to trust the killed job's files ...
    strict = snakemake("--cores", "1", "--dry-run", *config_args(RUN))
    said = strict.stdout + strict.stderr
    incomplete = [f for f in partial if f in said.split("Incomplete files:", 1)[-1]]
    if strict.returncode != 0:
        assert "IncompleteFilesException" in said and "--rerun-incomplete" in said, said[-3000:]
        assert incomplete, said[-3000:]
    else:  # killed between two jobs: every file there is complete (rare; the checks below still hold)
        incomplete = []

    # 3. ... and with the default profile (rerun-incomplete) schedules that job and every missing one.
    dry = snakemake(*PROFILE, "--cores", "1", "--dry-run", *config_args(RUN))
    said = dry.stdout + dry.stderr
    assert dry.returncode == 0, said[-3000:]
    scheduled = " ".join(line for line in said.splitlines() if line.strip().startswith("output:"))
    for path in incomplete:
        assert path in scheduled, f"incomplete {path} is not scheduled again"
    for centre in ("LDN", "SHF", "BHM"):
        accounting = f"results/{RUN}/clean/{centre}/accounting.csv"
        assert ((ROOT / accounting).exists() and accounting not in incomplete) or accounting in scheduled, accounting
    assert f"results/{RUN}/cohort/analysis_dataset.csv" in scheduled

    # 4. Rerun to the end (first removing the killed process's own stale lock, as `--unlock` would
    #    for the whole checkout); the same delivery's clean run is the shared one.
    for lock in stale_locks(RUN):
        lock.unlink()
    rerun = snakemake(*PROFILE, "--cores", "2", *config_args(RUN))
    assert rerun.returncode == 0, rerun.stderr[-3000:]

    # 5. Same bytes: the analysis dataset and every table before it.
    assert (out / "cohort" / "analysis_dataset.csv").read_bytes() == \
        (clean_out / "cohort" / "analysis_dataset.csv").read_bytes()
    rerun_files, clean_files = files(out), files(clean_out)
    assert sorted(rerun_files) == sorted(clean_files)
    assert [f for f in rerun_files if rerun_files[f] != clean_files[f]] == []
    assert (out / "checks" / "privacy.txt").exists()  # the rerun went to the end
