"""Fixtures of the end-to-end tests: the workflow runs they share (tests/workflow_runs.py).

Once the tests are collected, the shared runs that the selected tests use start in the
background, so that they go on while the unit tests run; the fixtures wait for them. (The
report, disclosure and browser tests call ``report_run()``, the embedded run, directly.)
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import workflow_runs


def pytest_addoption(parser) -> None:
    parser.addoption("--simulation", action="store_true", default=False,
                     help="also run the coverage simulations (marker simulation; minutes each)")


def pytest_collection_modifyitems(session, config, items) -> None:
    if not config.getoption("--simulation"):  # deselected, not skipped: not part of the quick suite
        simulations = [item for item in items if "simulation" in item.keywords]
        if simulations:
            config.hook.pytest_deselected(items=simulations)
            items[:] = [item for item in items if "simulation" not in item.keywords]
    if config.option.collectonly:
        return
    used = {name for item in items for name in getattr(item, "fixturenames", ())}
    workflow_runs.start_in_background(used)


@pytest.fixture(scope="session")
def embedded_run() -> Path:
    """results/<run>/ of the whole workflow on the embedded delivery (disclosure on), made once."""
    return workflow_runs.embedded_run()


@pytest.fixture(scope="session")
def embedded_run_again() -> Path:
    """results/<run>/ of a second run of the embedded delivery from scratch, same configuration."""
    return workflow_runs.embedded_run_again()


@pytest.fixture(scope="session")
def update_run() -> tuple[Path, dict, Path]:
    """(delivery, changes, results/<run>/) of the generator's update of the embedded delivery, run
    with compare_to the embedded run."""
    return workflow_runs.update_run()


@pytest.fixture(scope="session")
def no_iv_run() -> tuple[Path, Path]:
    """(delivery, results/<run>/) of a generated 12-patient delivery without IV patients, made once."""
    return workflow_runs.no_iv_run()


@pytest.fixture(scope="module")
def mgus2():
    """R survival's mgus2 with the reference README's competing-risk coding: etime = ifelse(pstat == 0,
    futime, ptime); event = ifelse(pstat == 0, 2 * death, 1) (1 progression, 2 death first)."""
    import numpy as np
    import pandas as pd

    m = pd.read_csv(Path(__file__).parent / "reference" / "survival_mgus2.csv")
    m["etime"] = np.where(m["pstat"] == 0, m["futime"], m["ptime"])
    m["event"] = np.where(m["pstat"] == 0, 2 * m["death"], 1)
    return m
