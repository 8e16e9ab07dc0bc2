"""The workflow runs the end-to-end tests share, each made once per test process and removed
when it ends (the fixtures in tests/conftest.py, or the functions directly).

A workflow run costs about 20 s on two cores whatever the delivery's size (each job's imports
dominate), so the tests share runs instead of making their own:

- ``embedded_run()``: the embedded delivery ``data/raw/example`` end to end, with disclosure
  switched on by a config overlay (so the shareable report is made too). The cohort, analysis,
  report, browser, disclosure, updated-delivery and interrupted-run tests read it; tests that
  change it (a forced rerun, another adjustment) put it back as it was and check they did.
- ``no_iv_run()``: a small generated delivery (12 patients, none intravenous) in a temporary
  folder: the models' not-estimable paths, and the rerun tests, which edit its files and put
  them back.

Run names carry the process id, so two test sessions on one checkout cannot collide.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "data" / "raw" / "example"
DISCLOSURE = {"min_count": 10, "round_to": 5}
EMBEDDED_RUN = f"pytest_embedded_{os.getpid()}"
NO_IV_RUN = f"pytest_no_iv_{os.getpid()}"
_MADE: dict[str, object] = {}
_FAILED: dict[str, str] = {}
_OVERLAYS: set[Path] = set()


def snakemake(*args: str, timeout: float | None = None) -> subprocess.CompletedProcess:
    """The project's Snakemake on two cores, in the checkout, output captured."""
    return subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


def config_args(run: str, overlay: dict | None = None, **config: str) -> list[str]:
    """The configuration of the shared embedded run (config/config.yaml, then an overlay switching
    disclosure on, merged with ``overlay``) for run name ``run`` and ``config`` keys (delivery=...,
    compare_to=...). ``--config`` comes last: it takes every word after it."""
    cfg = ROOT / "results" / f"{run}.overlay.yaml"
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text(yaml.safe_dump({"disclosure": DISCLOSURE, **(overlay or {})}), encoding="utf-8")
    if cfg not in _OVERLAYS:
        _OVERLAYS.add(cfg)
        atexit.register(cfg.unlink, missing_ok=True)
    return ["--configfile", "config/config.yaml", str(cfg), "--config", f"run={run}",
            *(f"{key}={value}" for key, value in config.items())]


def workflow(run: str, *args: str, overlay: dict | None = None, **config: str) -> subprocess.CompletedProcess:
    """Snakemake with ``args`` on run ``run`` under the shared embedded run's configuration."""
    return snakemake(*args, *config_args(run, overlay, **config))


def remove_run(run: str) -> None:
    shutil.rmtree(ROOT / "results" / run, ignore_errors=True)
    (ROOT / "results" / f"{run}.overlay.yaml").unlink(missing_ok=True)


def _once(name: str, make):
    """``make()``'s result, made at the first call of the process; a failure is raised again at
    every later call instead of being retried."""
    if name in _FAILED:
        pytest.fail(_FAILED[name])
    if name not in _MADE:
        try:
            _MADE[name] = make()
        except BaseException as error:
            _FAILED[name] = f"the shared run {name} failed: {error}"
            raise
    return _MADE[name]


def embedded_run() -> Path:
    """results/<run>/ after one run of the whole workflow on the embedded delivery."""

    def make() -> Path:
        remove_run(EMBEDDED_RUN)
        atexit.register(remove_run, EMBEDDED_RUN)
        done = workflow(EMBEDDED_RUN)
        assert done.returncode == 0, done.stderr[-4000:]
        return ROOT / "results" / EMBEDDED_RUN

    return _once(EMBEDDED_RUN, make)


def no_iv_run() -> tuple[Path, Path]:
    """(delivery, results/<run>/): a generated delivery of 12 patients, none IV, run end to end
    (config/config.yaml as it is)."""

    def make() -> tuple[Path, Path]:
        folder = Path(tempfile.mkdtemp(prefix="stormcohort-no-iv-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        delivery = folder / "no_iv"
        made = subprocess.run([sys.executable, "-m", "stormcohort.synth", "--patients", "12", "--iv-patients", "0",
                               "--seed", "3", "--out", str(delivery)], cwd=ROOT, capture_output=True, text=True)
        assert made.returncode == 0, made.stderr[-2000:]
        remove_run(NO_IV_RUN)
        atexit.register(remove_run, NO_IV_RUN)
        done = snakemake("--config", f"delivery={delivery}", f"run={NO_IV_RUN}")
        assert done.returncode == 0, done.stderr[-3000:]
        return delivery, ROOT / "results" / NO_IV_RUN

    return _once(NO_IV_RUN, make)
