"""A rule's log holds the job's whole stderr: the package logger's records, Python's warnings, the
traceback of an uncaught exception, and what C code or child processes write to stderr."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

JOB = textwrap.dedent("""
    import os, subprocess, sys, warnings
    from types import SimpleNamespace
    from stormcohort.io import rule_logger

    log = rule_logger(SimpleNamespace(rule="fake", log=[sys.argv[1]]))
    log.info("progress from the package logger")
    warnings.warn("a library's warning")
    print("printed to sys.stderr", file=sys.stderr)
    os.write(2, b"written below Python to fd 2\\n")
    subprocess.run([sys.executable, "-c", "import sys; sys.stderr.write('from a child process\\\\n')"], check=True)
    rule_logger(SimpleNamespace(rule="fake", log=[sys.argv[1]])).info("a second call changes nothing")
    raise ValueError("the job failed here")
""")


def run_job(tmp_path: Path, log: Path) -> subprocess.CompletedProcess:
    script = tmp_path / "job.py"
    script.write_text(JOB, encoding="utf-8")
    return subprocess.run([sys.executable, str(script), str(log)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


def test_uncaught_traceback_and_all_stderr_reach_the_log(tmp_path):
    log = tmp_path / "logs" / "fake.log"
    done = run_job(tmp_path, log)
    assert done.returncode == 1
    text = log.read_text(encoding="utf-8")
    for expected in ("INFO progress from the package logger", "UserWarning: a library's warning",
                     "printed to sys.stderr", "written below Python to fd 2", "from a child process",
                     "INFO a second call changes nothing", "Traceback (most recent call last):",
                     'raise ValueError("the job failed here")', "ValueError: the job failed here"):
        assert expected in text, (expected, text)
    assert text.index("progress from the package logger") < text.index("a library's warning") \
        < text.index("Traceback") < text.rindex("ValueError: the job failed here")
    # What Python writes to stderr still shows on the console, where Snakemake reports a failed job.
    assert "Traceback (most recent call last):" in done.stderr and "ValueError: the job failed here" in done.stderr
    assert "a library's warning" in done.stderr and "printed to sys.stderr" in done.stderr
    assert "progress from the package logger" not in done.stderr


def test_a_rerun_starts_the_log_afresh(tmp_path):
    log = tmp_path / "fake.log"
    log.write_text("an older run's log\n", encoding="utf-8")
    run_job(tmp_path, log)
    text = log.read_text(encoding="utf-8")
    assert "an older run's log" not in text and text.count("ValueError: the job failed here") == 1
