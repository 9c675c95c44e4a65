from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from fahr.core import paths

REPORTS = paths.REPO / "artifacts" / "test-reports"


@pytest.fixture(scope="session")
def reports_dir() -> Path:
    """Where tests keep what a person may want to look at afterwards (screenshots); ignored by git."""
    REPORTS.mkdir(parents=True, exist_ok=True)
    return REPORTS


# Slow tests in modules that import no pytest, so they are marked here rather than in the module: every test of
# test_cli.py runs `python -m fahr.cli`; in test_paper.py one does and one trains the paper-scale ViT.
SLOW_MODULES = {"test_cli.py"}
SLOW_TESTS = {
    "test_paper.py": {
        "test_book_on_the_paper_profile_names_every_missing_dataset_and_runs_nothing",
        "test_paper_scale_model_trains_a_few_steps_on_cpu",
    },
}


def pytest_report_header(config: pytest.Config) -> str:
    """Free disk where the tests write: the paper-scale tests need about 3 GB at their peak (a run that ends in
    'No space left on device' says why at the top)."""
    tmp = Path(tempfile.gettempdir())
    return f"free disk: {shutil.disk_usage(tmp).free / 2**30:.1f} GiB in {tmp}"


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the slow tests their modules cannot mark (and every ``book`` test: the book is slow). Under ``-n``, also
    put the modules with slow tests first, the book's before all, each whole and in its own order: the scheduler
    (``--dist loadfile``, no reordering) then hands the smoke book, the longest job of the suite, to a worker at
    once while the others share the rest. A serial run keeps the files' order."""
    for item in items:
        module, name = item.path.name, getattr(item, "originalname", item.name)
        if module in SLOW_MODULES or name in SLOW_TESTS.get(module, ()) or item.get_closest_marker("book"):
            item.add_marker(pytest.mark.slow)
    if not hasattr(config, "workerinput"):  # not an xdist worker
        return

    def rank(item: pytest.Item) -> int:
        return 0 if item.get_closest_marker("book") else 1 if item.get_closest_marker("slow") else 2

    first: dict[Path, int] = {}
    for item in items:
        first[item.path] = min(first.get(item.path, 2), rank(item))
    items.sort(key=lambda item: first[item.path])  # stable: each module keeps its order


def kill_when(process: subprocess.Popen, ready: Callable[[], bool], what: str, poll: float = 0.02) -> None:
    """SIGKILL ``process`` as soon as ``ready()`` holds (within 120 s); fail if it ends first. The process is killed
    also when the wait fails, so that none is left running."""
    try:
        deadline = time.monotonic() + 120
        while not ready():
            assert process.poll() is None, f"the process ended before {what}:\n{process.stderr.read()}"
            assert time.monotonic() < deadline, f"no {what} within 120 s"
            time.sleep(poll)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
