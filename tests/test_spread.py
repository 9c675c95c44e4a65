"""How much the numbers move with the seed: the spread of recorded numbers across seed builds, and verdicts that a
seed's noise cannot decide (``fahr.report.spread``, ``claims.verdicts(seeds=...)``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fahr.core import config
from fahr.report import claims, results, spread


def numbers(**values: float) -> pd.DataFrame:
    """A results table (``results.table``'s shape) with the given key → value."""
    return pd.DataFrame({"quantity": [f"the {k}" for k in values], "value": list(values.values())},
                        index=pd.Index(list(values), name="key"))  # fmt: skip


def write_results(root: Path, profile: str, seed: int, values: dict[str, float], **config_changes) -> None:
    """A build's results.json under an artifacts root, as the report chapter writes it."""
    cfg = {"profile": profile, "seed": seed, "model": {"depth": 2}, **config_changes}
    content = {"profile": profile, "data": "FAHR-Synth", "config_hash": f"h{seed}",
               "chapters": {"faceage": {"seed": seed, "config": cfg}},
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
