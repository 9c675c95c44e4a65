from __future__ import annotations

from pathlib import Path

import pytest

from fahr.core import paths

REPORTS = paths.REPO / "artifacts" / "test-reports"


@pytest.fixture(scope="session")
def reports_dir() -> Path:
    """Where tests keep what a person may want to look at afterwards (screenshots); ignored by git."""
    REPORTS.mkdir(parents=True, exist_ok=True)
    return REPORTS
