"""How much the numbers move with the seed: the spread of recorded numbers across seed builds, and verdicts that a
seed's noise cannot decide (``fahr.report.spread``, ``claims.verdicts(seeds=...)``); and what another CPU changes:
the main seed rebuilt with torch's kernels capped to an older CPU's (``spread.machines``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fahr import cli
from fahr.core import config
from fahr.report import claims, results, spread


def numbers(**values: float) -> pd.DataFrame:
    """A results table (``results.table``'s shape) with the given key → value."""
    return pd.DataFrame({"quantity": [f"the {k}" for k in values], "value": list(values.values())},
                        index=pd.Index(list(values), name="key"))  # fmt: skip


def write_results(root: Path, profile: str, seed: int, values: dict[str, float], kernels: str | None = None,
                  **config_changes) -> None:  # fmt: skip
    """A build's results.json under an artifacts root, as the report chapter writes it; with ``kernels``, its chapter's
    provenance records the CPU kernels torch used (``hardware.cpu_kernels``)."""
    cfg = {"profile": profile, "seed": seed, "model": {"depth": 2}, **config_changes}
    chapter = {"seed": seed, "config": cfg, **({"hardware": {"cpu_kernels": kernels}} if kernels else {})}
    content = {"profile": profile, "data": "FAHR-Synth", "config_hash": f"h{seed}", "chapters": {"faceage": chapter},
               "results": [{"key": k, "quantity": f"the {k}", "value": v, "chapter": "faceage"} for k, v in
                           values.items()]}  # fmt: skip
    path = root / profile / "results.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content))


def test_the_spread_is_each_numbers_mean_sd_and_range_over_the_seeds() -> None:
    by_seed = {0: numbers(mae=7.0, c=0.60), 1: numbers(mae=8.0, c=0.64), 2: numbers(mae=9.0, c=0.62)}
    moves = spread.summary(by_seed)
    assert moves.loc["mae", ["seeds", "mean", "sd", "min", "max"]].tolist() == [3, 8.0, 1.0, 7.0, 9.0]
    assert moves.loc["c", "sd"] == pytest.approx(np.std([0.60, 0.64, 0.62], ddof=1))
    assert "3 seeds" in spread.sentence(moves, 3) and "the mae (SD 1 around 8)" in spread.sentence(moves, 3)
    around_zero = spread.summary({0: numbers(mae=7.0, shift=0.05), 1: numbers(mae=8.0, shift=-0.05)})
    assert "the mae" in spread.sentence(around_zero, 2)  # not the shift, whose seeds disagree even on its sign
    shown = results.shown(spread.beside(numbers(mae=7.0, c=0.6), moves))
    assert shown.loc["mae", "seed SD"] == 1.0


def test_one_seed_is_no_spread_and_the_report_says_it_was_not_measured() -> None:
    moves = spread.summary({0: numbers(mae=7.0)})
    assert moves.empty and list(moves.columns) == spread.COLUMNS
    assert "not measured" in spread.sentence(moves, 1) and "make spread" in spread.sentence(moves, 1)
    assert "seed SD" not in results.shown(spread.beside(numbers(mae=7.0), moves)).columns
    with pytest.raises(ValueError, match="at least 2 seeds"):
        spread.seeds(config.load("smoke"), 1)
    assert spread.seeds(config.load("smoke"), 3) == [0, 1, 2]


BETTER = claims.Claim("better", "a beats b", "—", ("a", "b"), lambda t: f"a {claims.value(t, 'a'):.1f}",
                      lambda t: claims.value(t, "a") < claims.value(t, "b"))  # fmt: skip


def test_a_claim_the_seeds_disagree_on_is_undecided_and_one_they_agree_on_is_decided() -> None:
    main = numbers(a=1.0, b=2.0)  # the main build alone would call it reproduced
    noisy = {0: main, 1: numbers(a=3.0, b=2.0), 2: numbers(a=1.5, b=2.0)}
    table = claims.verdicts(main, (BETTER,), seeds=noisy)
    assert table.loc[0, "verdict"] == claims.undecided() and "2 of 3 seeds" in table.loc[0, "this build"]
    assert "undecided because the seeds disagree" in claims.tally(table)
    steady = {0: main, 1: numbers(a=1.2, b=2.0), 2: numbers(a=1.5, b=2.1)}
    table = claims.verdicts(main, (BETTER,), seeds=steady)
    assert table.loc[0, "verdict"] == claims.VERDICTS[0] and "3 of 3 seeds" in table.loc[0, "this build"]
    interval = claims.Claim("interval", "a above 1", "—", ("a",), lambda t: "a", lambda t: claims.above(t, "a", 1.0),
                            refute=lambda t: claims.below(t, "a", 1.5))  # fmt: skip
    unclear, excluded = pd.DataFrame({"value": [1.2], "lower": [0.9], "upper": [1.6]}, index=["a"]), pd.DataFrame(
        {"value": [1.1], "lower": [0.9], "upper": [1.3]}, index=["a"])  # fmt: skip
    mixed = claims.verdicts(unclear, (interval,), seeds={0: unclear, 1: excluded}).loc[0, "verdict"]
    assert mixed == claims.VERDICTS[3]  # no seed shows it, not every seed excludes it: inconclusive, not undecided
    both = claims.verdicts(excluded, (interval,), seeds={0: excluded, 1: excluded}).loc[0, "verdict"]
    assert both == claims.VERDICTS[1]
    against = {0: numbers(a=3.0, b=2.0), 1: numbers(a=2.5, b=2.0)}  # a control that must fail: no seed shows it
    assert claims.verdicts(against[0], (BETTER,), seeds=against).loc[0, "verdict"] == claims.VERDICTS[1]
    assert claims.verdicts(main, (BETTER,)).loc[0, "verdict"] == claims.VERDICTS[0]  # no spread: one seed decides


def test_the_spread_reads_the_seed_builds_of_the_same_recipe_only(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("FAHR_ARTIFACTS", str(tmp_path))
    write_results(tmp_path, "smoke", 0, {"mae": 7.0})
    write_results(spread.seed_root("smoke", 1), "smoke", 1, {"mae": 8.0})
    write_results(spread.seed_root("smoke", 2), "smoke", 2, {"mae": 9.0})
    write_results(spread.seed_root("smoke", 3), "smoke", 3, {"mae": 30.0}, model={"depth": 12})  # another recipe
    main = results.table(json.loads(results.path("smoke").read_text()))
    by_seed = spread.tables("smoke", main=main)
    assert sorted(by_seed) == [0, 1, 2]
    moves, n = spread.measured("smoke")
    assert n == 3 and moves.loc["mae", "mean"] == 8.0


def test_fahr_spread_refuses_fewer_than_two_seeds(tmp_path) -> None:
    env = {**os.environ, "FAHR_ARTIFACTS": str(tmp_path)}
    out = subprocess.run([sys.executable, "-m", "fahr.cli", "spread", "--profile", "smoke", "--seeds", "1"],
                         capture_output=True, text=True, env=env)  # fmt: skip
    assert out.returncode == 2 and "at least 2 seeds" in out.stderr
    assert not (tmp_path / "smoke" / "spread").exists()


def test_another_cpus_numbers_stand_beside_this_machines_with_the_seed_sd(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("FAHR_ARTIFACTS", str(tmp_path))
    write_results(tmp_path, "smoke", 0, {"mae": 7.0, "c": 0.60, "n": 100.0}, kernels="AVX512")
    write_results(spread.seed_root("smoke", 1), "smoke", 1, {"mae": 9.0, "c": 0.64, "n": 100.0}, kernels="AVX512")
    write_results(spread.cpu_root("smoke", "avx2"), "smoke", 0, {"mae": 7.5, "c": 0.60, "n": 100.0}, kernels="AVX2")
    write_results(spread.cpu_root("smoke", "generic"), "smoke", 0, {"mae": 6.9, "c": 0.62, "n": 100.0},
                  kernels="DEFAULT")  # fmt: skip
    table = spread.machines("smoke")
    assert list(table.columns) == ["quantity", "this machine", "avx2", "generic", *spread.MACHINE_COLUMNS[2:]]
    assert table.loc["mae", ["this machine", "avx2", "generic", "largest difference"]].tolist() == [7, 7.5, 6.9, 0.5]
    assert table.loc["mae", "difference / seed SD"] == pytest.approx(0.5 / np.std([7.0, 9.0], ddof=1))
    widest = 0.02 / np.std([0.60, 0.64], ddof=1)
    assert table.loc["c", "difference / seed SD"] == pytest.approx(widest)
    assert table.loc["n", "largest difference"] == 0 and table.loc["n", "difference / seed SD"] == 0
    assert sorted(spread.tables("smoke")) == [1]  # the CPU builds are no seeds of the spread
    text = spread.machines_sentence(table, "smoke")
    assert "2 of the 3 recorded numbers differ" in text
    assert "On a CPU without AVX-512 (`avx2`) the same seed gives the mae 7.5 against 7 here" in text
    assert "On a CPU with no vector units beyond SSE4 (`generic`) the same seed gives the c 0.62 against 0.6" in text
    assert f"within {widest:.2g} seed SDs (the largest for the c): another CPU moves the numbers less" in text


def test_a_cpu_build_with_this_machines_kernels_or_another_config_is_not_another_cpu(tmp_path, monkeypatch) -> None:
    """A control that must fail: a 'CPU build' that ran with the main build's own kernels, or from another config or
    seed, emulates nothing, so no difference of it counts."""
    monkeypatch.setenv("FAHR_ARTIFACTS", str(tmp_path))
    write_results(tmp_path, "smoke", 0, {"mae": 7.0}, kernels="AVX512")
    write_results(spread.cpu_root("smoke", "avx2"), "smoke", 0, {"mae": 7.5}, kernels="AVX512")  # not capped
    write_results(spread.cpu_root("smoke", "generic"), "smoke", 1, {"mae": 6.0}, kernels="DEFAULT")  # another seed
    table = spread.machines("smoke")
    assert table.empty and list(table.columns) == spread.MACHINE_COLUMNS
    text = spread.machines_sentence(table, "smoke")
    assert "**not measured**" in text and "make spread PROFILE=smoke SEEDS=3 CPUS=avx2,generic" in text
    write_results(spread.cpu_root("smoke", "generic"), "smoke", 0, {"mae": 6.0}, kernels="DEFAULT")
    table = spread.machines("smoke")
    assert list(table.columns) == ["quantity", "this machine", "generic", "largest difference"]  # no seed spread
    text = spread.machines_sentence(table, "smoke")
    assert "1 of the 1 recorded numbers differ" in text and "cannot be set beside a seed's noise" in text


def test_the_cpu_builds_rerun_the_main_seed_with_capped_kernels_and_refuse_unknown_cpus(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("FAHR_ARTIFACTS", str(tmp_path))
    launched = []

    def child(command, env, check):
        launched.append((command, env))
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr(spread.subprocess, "run", child)
    cfg = config.load("smoke")
    with pytest.raises(ValueError, match="'avx3'.*avx2 .*generic "):
        spread.run(cfg, {}, 2, cpus=["avx3"], log=lambda line: None)
    assert not launched  # refused before any build
    assert spread.run(cfg, {"model.depth": 2}, 2, cpus=["avx2"], log=lambda line: None) == [0, 1]
    (seed_command, seed_env), (cpu_command, cpu_env) = launched
    assert "seed=1" in seed_command and seed_env["FAHR_ARTIFACTS"] == str(spread.seed_root("smoke", 1))
    assert seed_env.get("ATEN_CPU_CAPABILITY") == os.environ.get("ATEN_CPU_CAPABILITY")  # the seeds: this machine
    assert "seed=0" in cpu_command and "model.depth=2" in cpu_command and "--no-html" in cpu_command
    assert cpu_env["FAHR_ARTIFACTS"] == str(spread.cpu_root("smoke", "avx2"))
    assert {k: cpu_env[k] for k in spread.CPUS["avx2"].env} == {
        "ATEN_CPU_CAPABILITY": "avx2", "DNNL_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}  # fmt: skip

    def failing_cpu_build(command, env, check):
        return subprocess.CompletedProcess(command, int(env["FAHR_ARTIFACTS"].endswith("cpu-generic")))

    monkeypatch.setattr(spread.subprocess, "run", failing_cpu_build)
    with pytest.raises(RuntimeError, match="the build of CPU generic failed .* is kept"):
        spread.run(cfg, {}, 2, cpus=["generic"], log=lambda line: None)


def test_fahr_spread_takes_the_cpus_by_name() -> None:
    args = cli.build_parser().parse_args(["spread", "--profile", "smoke", "--seeds", "2", "--cpus", "avx2,generic"])
    assert args.cpus == ["avx2", "generic"]
    assert cli.build_parser().parse_args(["spread"]).cpus == []
    helps = cli.build_parser()._subparsers._group_actions[0].choices["spread"].format_help()
    assert all(name in helps for name in spread.CPUS)


PROBE = """
import hashlib, torch
torch.manual_seed(0)
x = torch.randn(64, 1000)
out = torch.cat([torch.softmax(x, dim=1).flatten(), torch.nn.functional.gelu(x).flatten()])
print(torch.backends.cpu.get_cpu_capability(), hashlib.sha256(out.numpy().tobytes()).hexdigest())
"""


@pytest.mark.slow
def test_the_generic_cpu_caps_torchs_kernels_and_changes_its_arithmetic() -> None:
    """Under the ``generic`` CPU's variables torch reports its DEFAULT (unvectorised) kernels, and on a machine with
    vector kernels the same softmax and GELU give other bits."""
    plain = {k: v for k, v in os.environ.items() if k not in spread.CPUS["generic"].env}
    here = subprocess.run([sys.executable, "-c", PROBE], env=plain, capture_output=True, text=True, check=True)
    capped = subprocess.run([sys.executable, "-c", PROBE], env={**plain, **spread.CPUS["generic"].env},
                            capture_output=True, text=True, check=True)  # fmt: skip
    kernels, digest = here.stdout.split()
    assert capped.stdout.split()[0] == "DEFAULT"
    if kernels != "DEFAULT":  # this machine has vector kernels to leave out
        assert capped.stdout.split()[1] != digest


def test_a_cpu_that_moves_a_number_beyond_the_seeds_noise_is_said_to() -> None:
    table = pd.DataFrame({"quantity": ["the mae", "the n"], "this machine": [7.0, 100.0], "avx2": [7.3, 101.0],
                          "largest difference": [0.3, 1.0], "seed SD": [0.2, 0.0],
                          "difference / seed SD": [1.5, np.nan]}, index=pd.Index(["mae", "n"], name="key"))  # fmt: skip
    text = spread.machines_sentence(table, "smoke")
    assert "2 of the 2 recorded numbers differ" in text and "the mae 7.3 against 7 here" in text
    assert "Of the numbers every seed gives exactly alike, 1 differs" in text
    assert "within 1.5 seed SDs (the largest for the mae); 1 number moves by one seed SD or more" in text
