from __future__ import annotations

import tomllib

import pytest
from packaging.requirements import Requirement

from fahr.core import envfiles, paths


def test_environment_yml_pins_exactly_what_the_lock_pins() -> None:
    python, env_pins = envfiles.environment_pins()
    lock = envfiles.lock_pins()
    assert python == "3.11"
    assert env_pins == lock, {
        "only in lock": sorted(set(lock) - set(env_pins)),
        "only in environment.yml": sorted(set(env_pins) - set(lock)),
        "different": sorted(k for k in set(lock) & set(env_pins) if lock[k] != env_pins[k]),
    }


def test_every_declared_dependency_is_locked_at_a_version_it_accepts() -> None:
    project = tomllib.loads((paths.REPO / "pyproject.toml").read_text())["project"]
    declared = project["dependencies"] + project["optional-dependencies"]["dev"]
    lock = envfiles.lock_pins()
    for spec in declared:
        req = Requirement(spec)
        name = envfiles.canonical(req.name)
        assert name in lock, f"{name} is declared in pyproject.toml but not pinned in requirements.lock"
        assert req.specifier.contains(lock[name], prereleases=True), f"{name}=={lock[name]} violates {spec}"


def test_torch_is_pinned_as_the_machines_require() -> None:
    lock = envfiles.lock_pins()
    assert (lock["torch"], lock["torchvision"]) == ("2.14.1", "0.29.1")
    assert lock["jupyter-book"].startswith("1.")


def test_a_line_that_is_not_an_exact_pin_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"x.txt, line 2: 'numpy>=1' is not an exact pin"):
        envfiles.parse_pins(["pandas==2.0", "numpy>=1"], "x.txt")
    with pytest.raises(ValueError, match="pinned twice"):
        envfiles.parse_pins(["Jupyter_Book==1.0", "jupyter-book==1.0"], "x.txt")
