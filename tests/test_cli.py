from __future__ import annotations

import json
import subprocess
import sys

import pytest

from fahr import cli


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fahr.cli", *args], capture_output=True, text=True)


def test_help_lists_every_stage_of_the_pipeline() -> None:
    out = run("--help")
    assert out.returncode == 0
    for stage in ("synth", "align", "shard", "pretrain", "finetune-age", "finetune-survival", "predict", "evaluate"):
        assert stage in out.stdout


@pytest.mark.parametrize("stage", [s for s, (_, issue) in cli.STAGES.items() if issue])
def test_a_stage_not_built_yet_says_so_and_writes_nothing(stage, tmp_path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "fahr.cli", stage, "--profile", "smoke"],
        capture_output=True, text=True, env={**__import__("os").environ, "FAHR_ARTIFACTS": str(tmp_path)},
    )  # fmt: skip
    assert out.returncode == cli.EXIT_NOT_IMPLEMENTED
    assert "not implemented yet" in out.stderr and "Nothing was written" in out.stderr
    assert list(tmp_path.iterdir()) == []


def test_config_prints_the_resolved_values_and_hash() -> None:
    out = run("config", "--profile", "smoke", "--set", "seed=11")
    assert out.returncode == 0, out.stderr
    values = json.loads(out.stdout)
    assert values["seed"] == 11 and values["profile"] == "smoke" and len(values["config_hash"]) == 12


def test_bad_override_exits_2_with_the_reason() -> None:
    out = run("config", "--profile", "smoke", "--set", "seed=abc")
    assert out.returncode == 2
    assert "seed" in out.stderr and "'abc'" in out.stderr
    out = run("pretrain", "--profile", "smoke", "--set", "nope=1")
    assert out.returncode == 2 and "unknown key 'nope'" in out.stderr
