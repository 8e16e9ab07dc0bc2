"""The workflow runs the end-to-end tests share, each made once per test process and removed
when it ends (the fixtures in tests/conftest.py, or the functions directly).

A workflow run costs about 20 s on two cores whatever the delivery's size (each job's imports
dominate), so the tests share runs instead of making their own:

- ``embedded_run()``: the embedded delivery ``data/raw/example`` end to end, with disclosure
  switched on by a config overlay (so the shareable report is made too). The cohort, analysis,
  report, browser, disclosure, updated-delivery and interrupted-run tests read it; tests that
  change it (a forced rerun, another adjustment) put it back as it was and check they did.
- ``embedded_run_again()``: the embedded delivery once more from scratch with the same
  configuration, for the byte-identity check.
- ``update_run()``: the generator's update of the embedded delivery, run with the same
  configuration and ``compare_to`` the embedded run (its diff/).
- ``no_iv_run()``: a small generated delivery (12 patients, none intravenous) in a temporary
  folder: the models' not-estimable paths, and the rerun tests, which edit its files and put
  them back.

When a test session will use them (tests/conftest.py looks at the collected tests), these runs
start in the background as the session starts, two at a time (the update after the embedded
run, the second embedded run after the no-IV one), so they go on while the unit tests run; the
first test that needs one waits for it. They write disjoint files, so Snakemake's locks let
them run at once.

Run names carry the process id, so two test sessions on one checkout cannot collide.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from stormcohort.synth.update import derive_update

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "data" / "raw" / "example"
DISCLOSURE = {"min_count": 10, "round_to": 5}
EMBEDDED_RUN = f"pytest_embedded_{os.getpid()}"
AGAIN_RUN = f"pytest_embedded_again_{os.getpid()}"
UPDATE_RUN = f"pytest_update_new_{os.getpid()}"
NO_IV_RUN = f"pytest_no_iv_{os.getpid()}"
_MADE: dict[str, object] = {}
_FAILED: dict[str, str] = {}
_OVERLAYS: set[Path] = set()
_LOCK = threading.Lock()


def snakemake_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "snakemake", "--cores", "2", *args]


def snakemake(*args: str, timeout: float | None = None) -> subprocess.CompletedProcess:
    """The project's Snakemake on two cores, in the checkout, output captured."""
    return subprocess.run(snakemake_argv(*args), cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def config_args(run: str, overlay: dict | None = None, **config: str) -> list[str]:
    """The configuration of the shared embedded run (config/config.yaml, then an overlay switching
    disclosure on, merged with ``overlay``) for run name ``run`` and ``config`` keys (delivery=...,
    compare_to=...). ``--config`` comes last: it takes every word after it."""
    cfg = ROOT / "results" / f"{run}.overlay.yaml"
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text(yaml.safe_dump({"disclosure": DISCLOSURE, **(overlay or {})}), encoding="utf-8")
    with _LOCK:
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


class _Run:
    """One shared run: ``prepare()`` makes its inputs and gives its Snakemake command and what the
    tests get once it has finished; ``after`` is the run it needs finished first."""

    def __init__(self, name: str, prepare: Callable[[], tuple[list[str], object]], after: _Run | None = None):
        self.name, self.prepare, self.after = name, prepare, after
        self.thread: threading.Thread | None = None
        self.process: subprocess.Popen | None = None
        self.value: object = None
        self.error: str | None = None

    def start(self) -> None:
        """Run in the background (at most once)."""
        with _LOCK:
            if self.thread is None:
                self.thread = threading.Thread(target=self._make, name=self.name, daemon=True)
                self.thread.start()

    def _make(self) -> None:
        try:
            if self.after is not None:
                self.after.result()
            remove_run(self.name)
            atexit.register(remove_run, self.name)
            argv, self.value = self.prepare()
            self.process = subprocess.Popen(argv, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                            stderr=subprocess.PIPE, text=True, errors="replace")
            _, stderr = self.process.communicate()
            if self.process.returncode != 0:
                self.error = f"{' '.join(argv)} failed:\n{stderr[-4000:]}"
        except BaseException as error:  # reported to every test that needs this run
            self.error = f"{type(error).__name__}: {error}"

    def result(self):
        """What the tests get, once the run has finished; a failure fails every test needing it."""
        self.start()
        self.thread.join()
        if self.error:
            pytest.fail(f"the shared run {self.name} failed: {self.error}", pytrace=False)
        return self.value

    def stop(self) -> None:
        """At exit: a run still going (the session ended early) is stopped, not left behind."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()


def _embedded(run: str) -> Callable[[], tuple[list[str], Path]]:
    return lambda: (snakemake_argv(*config_args(run)), ROOT / "results" / run)


def _update() -> tuple[list[str], tuple[Path, dict, Path]]:
    folder = Path(tempfile.mkdtemp(prefix="stormcohort-update-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    update = folder / "update1"
    changes = derive_update(EXAMPLE, update, seed=2)
    argv = snakemake_argv(*config_args(UPDATE_RUN, delivery=update, compare_to=f"results/{EMBEDDED_RUN}"))
    return argv, (update, changes, ROOT / "results" / UPDATE_RUN)


def _no_iv() -> tuple[list[str], tuple[Path, Path]]:
    folder = Path(tempfile.mkdtemp(prefix="stormcohort-no-iv-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    delivery = folder / "no_iv"
    made = subprocess.run([sys.executable, "-m", "stormcohort.synth", "--patients", "12", "--iv-patients", "0",
                           "--seed", "3", "--out", str(delivery)], cwd=ROOT, capture_output=True, text=True)
    assert made.returncode == 0, made.stderr[-2000:]
    argv = snakemake_argv("--config", f"delivery={delivery}", f"run={NO_IV_RUN}")  # config/config.yaml as it is
    return argv, (delivery, ROOT / "results" / NO_IV_RUN)


_EMBEDDED = _Run(EMBEDDED_RUN, _embedded(EMBEDDED_RUN))
_NO_IV = _Run(NO_IV_RUN, _no_iv)
# fixture name (tests/conftest.py) -> its run
SHARED = {
    "embedded_run": _EMBEDDED,
    "update_run": _Run(UPDATE_RUN, _update, after=_EMBEDDED),
    "no_iv_run": _NO_IV,
    "embedded_run_again": _Run(AGAIN_RUN, _embedded(AGAIN_RUN), after=_NO_IV),
}
for _run in SHARED.values():
    atexit.register(_run.stop)


def start_in_background(fixtures: set[str]) -> None:
    """Start the shared runs behind these fixture names (and the runs they need)."""
    for fixture, run in SHARED.items():
        if fixture in fixtures:
            if run.after is not None:
                run.after.start()
            run.start()


def embedded_run() -> Path:
    """results/<run>/ after one run of the whole workflow on the embedded delivery."""
    return SHARED["embedded_run"].result()


def embedded_run_again() -> Path:
    """results/<run>/ of a second run of the embedded delivery from scratch, as ``embedded_run()``."""
    return SHARED["embedded_run_again"].result()


def update_run() -> tuple[Path, dict, Path]:
    """(delivery, changes, results/<run>/): the generator's update of the embedded delivery
    (``derive_update``, seed 2) and its run, compared to ``embedded_run()``."""
    return SHARED["update_run"].result()


def no_iv_run() -> tuple[Path, Path]:
    """(delivery, results/<run>/): a generated delivery of 12 patients, none IV, run end to end
    with config/config.yaml as it is."""
    return SHARED["no_iv_run"].result()
