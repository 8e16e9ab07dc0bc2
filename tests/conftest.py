"""Fixtures of the end-to-end tests: the workflow runs they share (tests/workflow_runs.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import workflow_runs


@pytest.fixture(scope="session")
def embedded_run() -> Path:
    """results/<run>/ of the whole workflow on the embedded delivery (disclosure on), made once."""
    return workflow_runs.embedded_run()


@pytest.fixture(scope="session")
def no_iv_run() -> tuple[Path, Path]:
    """(delivery, results/<run>/) of a generated 12-patient delivery without IV patients, made once."""
    return workflow_runs.no_iv_run()
