"""The lock file (``requirements.lock``) and conda's ``environment.yml`` carry the same pins.

``python -m fahr.core.envfiles freeze`` rewrites both from the current environment (what ``make lock`` runs in a
fresh virtual environment); the tests check that the two files cannot drift apart.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

from fahr.core import paths, provenance

ENVIRONMENT_FILE = paths.REPO / "environment.yml"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)$")


def canonical(name: str) -> str:
    """PEP 503 normalised distribution name (``Jupyter_Book`` → ``jupyter-book``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_pins(lines: list[str], source: str) -> dict[str, str]:
    """``name==version`` lines into a mapping; anything else (other than comments) is an error."""
    pins: dict[str, str] = {}
    for number, raw in enumerate(lines, start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = PIN.match(line)
        if not match:
            raise ValueError(f"{source}, line {number}: {raw!r} is not an exact pin of the form name==version")
        name = canonical(match.group(1))
        if name in pins:
            raise ValueError(f"{source}, line {number}: {name} is pinned twice")
        pins[name] = match.group(2)
    return pins


def lock_pins(path: Path = paths.LOCK_FILE) -> dict[str, str]:
    return parse_pins(path.read_text().splitlines(), str(path))


def environment_pins(path: Path = ENVIRONMENT_FILE) -> tuple[str, dict[str, str]]:
    """The conda environment's Python version and the pins of its pip section."""
    env = yaml.safe_load(path.read_text())
    deps = env["dependencies"]
    python = next(d for d in deps if isinstance(d, str) and d.startswith("python="))
    pip_section = next(d["pip"] for d in deps if isinstance(d, dict) and "pip" in d)
    pins = [p for p in pip_section if not p.startswith("-e")]
    return python.split("=", 1)[1], parse_pins(pins, f"{path} (pip section)")


def freeze() -> None:
    """Rewrite the lock file and environment.yml from the packages installed in this environment."""
    out = subprocess.run(
        [sys.executable, "-m", "pip", "freeze", "--exclude-editable", "--all"],
        capture_output=True, text=True, check=True,
    ).stdout.splitlines()  # fmt: skip
    skip = {"pip", "setuptools", "wheel", "fahr"}
    pins = sorted((line for line in out if PIN.match(line) and canonical(line.split("==")[0]) not in skip),
                  key=str.lower)  # fmt: skip
    header = "# Every package of the environment, pinned. Regenerate with `make lock`; never edit by hand.\n"
    provenance.write_text(paths.LOCK_FILE, header + "\n".join(pins) + "\n")
    major_minor = ".".join(sys.version.split()[0].split(".")[:2])
    env_lines = [
        "# conda env create -f environment.yml && conda activate fahr",
        "# The pip section is generated from requirements.lock by `make lock`: the same pins, exactly.",
        "name: fahr",
        "channels:",
        "  - conda-forge",
        "dependencies:",
        f"  - python={major_minor}",
        "  - pip",
        "  - make",
        "  - pip:",
        *[f"      - {pin}" for pin in pins],
        "      - -e .[dev]",
    ]
    provenance.write_text(ENVIRONMENT_FILE, "\n".join(env_lines) + "\n")


if __name__ == "__main__":
    if sys.argv[1:] != ["freeze"]:
        sys.exit("usage: python -m fahr.core.envfiles freeze")
    freeze()
