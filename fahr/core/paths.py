"""Every location the project reads or writes, in one place (the showyourwork habit)."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "configs"
NOTEBOOKS = REPO / "notebooks"
BOOK_SOURCES = REPO / "book"
LOCK_FILE = REPO / "requirements.lock"


def artifacts_root() -> Path:
    """The ignored folder that holds everything generated (``$FAHR_ARTIFACTS`` or ``<repo>/artifacts``)."""
    return Path(os.environ.get("FAHR_ARTIFACTS", REPO / "artifacts")).resolve()


def imported_dir() -> Path:
    """Published checkpoints imported into the project's format, by SHA-256 (shared by every profile)."""
    return artifacts_root() / "imported"


def repo_path(path: str | os.PathLike) -> Path:
    """A path from a config value: relative to the repository unless absolute (``~`` expanded)."""
    base = Path(path).expanduser()
    return base if base.is_absolute() else REPO / base


def profile_dir(profile: str) -> Path:
    """Everything generated for one profile: data, checkpoints, predictions, the executed book."""
    return artifacts_root() / profile


def stage_dir(profile: str, stage: str) -> Path:
    """The folder of one pipeline stage (``synth``, ``pretrain``, …) for a profile."""
    return profile_dir(profile) / stage


def book_dir(profile: str) -> Path:
    """Staging folder of the book: copied sources plus the executed chapter notebooks."""
    return profile_dir(profile) / "book"


def html_dir(profile: str) -> Path:
    """The rendered HTML book of a profile."""
    return profile_dir(profile) / "html"
