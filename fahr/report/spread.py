"""How much the book's numbers move with the seed: ``fahr spread`` (``make spread SEEDS=3``) rebuilds the chapters
with other seeds, each in its own artifacts folder, and the report puts every headline number's spread beside it.

A seed fixes everything random in a build: on FAHR-Synth the cohorts drawn, on both data paths the splits, the
initial weights, the batches, the masks and the bootstrap. The spread is therefore the whole pipeline's seed noise,
not the training's alone. The build's own seed counts as one of the seeds: ``--seeds 3`` adds two builds.

Files: ``artifacts/<profile>/spread/seed-<s>/`` holds the build of seed ``s`` (an artifacts root of its own, so it
never touches the main build); its ``<profile>/results.json`` is what the spread reads.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from fahr.core import paths
from fahr.core.config import Config
from fahr.report import results

COLUMNS = ["quantity", "seeds", "mean", "sd", "min", "max"]


def folder(profile: str) -> Path:
    return paths.profile_dir(profile) / "spread"


def seed_root(profile: str, seed: int) -> Path:
    """The artifacts root of the build with ``seed`` (its results are under ``<root>/<profile>/``)."""
    return folder(profile) / f"seed-{seed}"


def seeds(cfg: Config, n: int) -> list[int]:
    """The ``n`` seeds of a spread: the build's own, then the next ones."""
    if n < 2:
        raise ValueError(f"a spread needs at least 2 seeds (the build's own and one more), not {n}")
    return [cfg.seed + i for i in range(n)]


def run(cfg: Config, overrides: dict[str, Any], n: int, log=print) -> list[int]:
    """Build the chapters with each other seed (only those whose results are missing or stale: the book's own
    reuse decides), each in a child ``fahr book --no-html`` with its own ``FAHR_ARTIFACTS``; return the seeds."""
    chosen = seeds(cfg, n)
    for seed in chosen[1:]:
        root = seed_root(cfg.profile, seed)
        sets = [a for k, v in {**overrides, "seed": seed}.items() for a in ("--set", f"{k}={_text(v)}")]
        command = [sys.executable, "-m", "fahr.cli", "book", "--profile", cfg.profile, "--no-html", *sets]
        log(f"[spread] seed {seed}: building the chapters in {root}")
        done = subprocess.run(command, env={**os.environ, "FAHR_ARTIFACTS": str(root)}, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"the build with seed {seed} failed (exit {done.returncode}); its folder {root} "
                               "is kept, and rerunning `fahr spread` resumes it")  # fmt: skip
    return chosen


def _text(value: Any) -> str:
    return json.dumps(value) if isinstance(value, list | dict) else str(value)


def tables(profile: str, main: pd.DataFrame | None = None) -> dict[int, pd.DataFrame]:
    """Every seed's results table (``results.table``), by seed: the spread builds found on disk and, given, the
    main build's table under its own seed (read from its provenance)."""
    found: dict[int, pd.DataFrame] = {}
    recipe = _recipe(results.path(profile))
    for file in sorted(folder(profile).glob(f"seed-*/{profile}/results.json")):
        if recipe is not None and _recipe(file) != recipe:  # built from another config: not this build's spread
            continue
        seed = int(file.parents[1].name.removeprefix("seed-"))
        found[seed] = results.table(json.loads(file.read_text()))
    if main is not None and len(found):
        found = {_main_seed(profile): main, **found}
    return found


def _chapters(file: Path) -> dict[str, Any]:
    return json.loads(file.read_text())["chapters"] if file.is_file() else {}


def _recipe(file: Path) -> str | None:
    """The config a build's numbers came from, the seed left out (None when no chapter recorded one)."""
    configs = [p["config"] for p in _chapters(file).values() if "config" in p]
    return json.dumps({k: v for k, v in configs[0].items() if k != "seed"}, sort_keys=True) if configs else None


def _main_seed(profile: str) -> int:
    return next((int(p["seed"]) for p in _chapters(results.path(profile)).values() if "seed" in p), -1)


def summary(by_seed: dict[int, pd.DataFrame]) -> pd.DataFrame:
    """Per recorded number: over how many seeds it was recorded, their mean, sample SD, min and max (empty, with the
    columns, when fewer than two seeds were built)."""
    if len(by_seed) < 2:
        return pd.DataFrame(columns=COLUMNS, index=pd.Index([], name="key"))
    values = pd.DataFrame({seed: t["value"] for seed, t in by_seed.items()})  # [keys, seeds]
    quantity = pd.concat([t["quantity"] for t in by_seed.values()]).groupby(level=0).first()
    out = pd.DataFrame({"quantity": quantity.reindex(values.index), "seeds": values.notna().sum(axis=1),
                        "mean": values.mean(axis=1), "sd": values.std(axis=1, ddof=1),
                        "min": values.min(axis=1), "max": values.max(axis=1)})  # fmt: skip
    out.index.name = "key"
    return out


def sentence(table: pd.DataFrame, n_seeds: int) -> str:
    """What the spread table says, or that it was not measured and how to measure it."""
    if table.empty:
        return ("The spread across seeds was **not measured** for this build: each number below comes from one seed. "
                "`make spread SEEDS=3` rebuilds the chapters with two more seeds and puts each number's spread beside "
                "it; until then a difference smaller than a seed's noise cannot be told from one.")  # fmt: skip
    sized = table[table["mean"].abs() > table["sd"]]  # a number whose sign the seeds agree on: its size means something
    relative = (sized["sd"] / sized["mean"].abs()).dropna()
    widest = relative.idxmax() if len(relative) else None
    most = ""
    if widest is not None:
        row = table.loc[widest]
        size = f"SD {row['sd']:.3g} around {row['mean']:.3g}"
        most = f" It moves most, relative to its size, for {row['quantity']} ({size})."
    return (
        f"Every number was rebuilt with **{n_seeds} seeds** (data, splits, initial weights, batches and "
        f"bootstrap all drawn anew); its SD across them is shown beside it.{most}"
    )


def beside(table: pd.DataFrame, moves: pd.DataFrame) -> pd.DataFrame:
    """``results.table`` with each number's SD across seeds (``seed SD``) where the spread was measured."""
    if moves.empty:
        return table
    return table.join(moves["sd"].rename("seed SD"))


def measured(profile: str) -> tuple[pd.DataFrame, int]:
    """The spread of a profile's build as the Reproducibility chapter shows it: ``summary`` over the main build's
    ``results.json`` (the report writes it) and the spread builds, and the number of seeds (1 when not measured)."""
    file = results.path(profile)
    main = results.table(json.loads(file.read_text())) if file.is_file() else None
    by_seed = tables(profile, main=main)
    return summary(by_seed), max(len(by_seed), 1)
