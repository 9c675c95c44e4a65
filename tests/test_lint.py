from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from fahr.core import paths

RUFF = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")


def test_code_and_notebooks_are_ruff_clean() -> None:
    assert RUFF, "ruff is missing: it is in the dev extra (make setup)"
    check = subprocess.run([RUFF, "check", "."], cwd=paths.REPO, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout[-4000:]
    fmt = subprocess.run([RUFF, "format", "--check", "."], cwd=paths.REPO, capture_output=True, text=True)
    assert fmt.returncode == 0, fmt.stdout[-4000:]
