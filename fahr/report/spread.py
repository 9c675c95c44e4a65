"""How much the book's numbers move with the seed: ``fahr spread`` (``make spread SEEDS=3``) rebuilds the chapters
with other seeds, each in its own artifacts folder, and the report puts every headline number's spread beside it.

A seed fixes everything random in a build: on FAHR-Synth the cohorts drawn, on both data paths the splits, the
initial weights, the batches, the masks and the bootstrap. The spread is therefore the whole pipeline's seed noise,
not the training's alone. The build's own seed counts as one of the seeds: ``--seeds 3`` adds two builds.

What another CPU changes is measured the same way (``fahr spread --cpus avx2,generic``): torch picks its vector
kernels (ATen's, oneDNN's, MKL's) by the instruction set of the CPU it runs on, and environment variables cap that
choice, so the build is repeated with the main seed and the kernels of an older CPU. Code, data, config and seed are
the same; only the floating-point arithmetic differs, and ``machines`` sets each difference beside the seed's noise.

Files: ``artifacts/<profile>/spread/seed-<s>/`` holds the build of seed ``s`` and ``artifacts/<profile>/spread/
cpu-<name>/`` the build on the emulated CPU ``name`` (each an artifacts root of its own, so it never touches the main
build); its ``<profile>/results.json`` is what the spread reads.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from fahr.core import paths
from fahr.core.config import Config
from fahr.report import results

COLUMNS = ["quantity", "seeds", "mean", "sd", "min", "max"]
MACHINE_COLUMNS = ["quantity", "this machine", "largest difference", "seed SD", "difference / seed SD"]


@dataclass(frozen=True)
class EmulatedCPU:
    """An older CPU whose arithmetic a build takes on: ``env`` caps the kernels torch dispatches to at that CPU's
    instruction set (``ATEN_CPU_CAPABILITY`` for ATen's own vector kernels, ``DNNL_MAX_CPU_ISA`` for oneDNN's,
    ``MKL_ENABLE_INSTRUCTIONS`` for MKL's)."""

    description: str
    env: Mapping[str, str]


CPUS: dict[str, EmulatedCPU] = {
    "avx2": EmulatedCPU("a CPU without AVX-512",
                        {"ATEN_CPU_CAPABILITY": "avx2", "DNNL_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}),
    "generic": EmulatedCPU("a CPU with no vector units beyond SSE4",
                           {"ATEN_CPU_CAPABILITY": "default", "DNNL_MAX_CPU_ISA": "SSE41",
                            "MKL_ENABLE_INSTRUCTIONS": "SSE4_2"}),
}  # fmt: skip


def folder(profile: str) -> Path:
    return paths.profile_dir(profile) / "spread"


def seed_root(profile: str, seed: int) -> Path:
    """The artifacts root of the build with ``seed`` (its results are under ``<root>/<profile>/``)."""
    return folder(profile) / f"seed-{seed}"


def cpu_root(profile: str, name: str) -> Path:
    """The artifacts root of the build on the emulated CPU ``name`` (its results are under ``<root>/<profile>/``)."""
    return folder(profile) / f"cpu-{name}"


def seeds(cfg: Config, n: int) -> list[int]:
    """The ``n`` seeds of a spread: the build's own, then the next ones."""
    if n < 2:
        raise ValueError(f"a spread needs at least 2 seeds (the build's own and one more), not {n}")
    return [cfg.seed + i for i in range(n)]


def run(cfg: Config, overrides: dict[str, Any], n: int, cpus: Iterable[str] = (), log=print) -> list[int]:
    """Build the chapters with each other seed, then with the main seed on each emulated CPU named in ``cpus`` (keys
    of ``CPUS``), each in a child ``fahr book --no-html`` with its own ``FAHR_ARTIFACTS`` (only the chapters whose
    results are missing or stale: the book's own reuse decides); return the seeds. An unknown CPU name is refused
    before anything is built."""
    cpus = list(cpus)
    unknown = [name for name in cpus if name not in CPUS]
    if unknown:
        raise ValueError(f"no emulated CPU named {', '.join(map(repr, unknown))}; the known ones are "
                         + ", ".join(f"{name} ({cpu.description})" for name, cpu in CPUS.items()))  # fmt: skip
    chosen = seeds(cfg, n)
    for seed in chosen[1:]:
        _build(cfg, overrides, seed, {}, seed_root(cfg.profile, seed), f"seed {seed}", log)
    for name in cpus:
        _build(cfg, overrides, cfg.seed, CPUS[name].env, cpu_root(cfg.profile, name), f"CPU {name}", log)
    return chosen


def _build(cfg: Config, overrides: dict[str, Any], seed: int, env: Mapping[str, str], root: Path, label: str,
           log) -> None:  # fmt: skip
    """One child ``fahr book --no-html`` with ``seed``, the variables ``env`` added and ``FAHR_ARTIFACTS`` = ``root``;
    a failed child keeps its folder and raises RuntimeError."""
    sets = [a for k, v in {**overrides, "seed": seed}.items() for a in ("--set", f"{k}={_text(v)}")]
    command = [sys.executable, "-m", "fahr.cli", "book", "--profile", cfg.profile, "--no-html", *sets]
    log(f"[spread] {label}: building the chapters in {root}")
    done = subprocess.run(command, env={**os.environ, **env, "FAHR_ARTIFACTS": str(root)}, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the build of {label} failed (exit {done.returncode}); its folder {root} is kept, and "
                           "rerunning `fahr spread` resumes it")  # fmt: skip


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


def _recipe(file: Path, with_seed: bool = False) -> str | None:
    """The config a build's numbers came from, the seed left out unless ``with_seed`` (None when no chapter recorded
    one)."""
    configs = [p["config"] for p in _chapters(file).values() if "config" in p]
    if not configs:
        return None
    return json.dumps({k: v for k, v in configs[0].items() if with_seed or k != "seed"}, sort_keys=True)


def _kernels(file: Path) -> set[str]:
    """The CPU kernels torch dispatched to (``hardware.cpu_kernels``: AVX512, AVX2, DEFAULT) in a build's chapters,
    where their provenance records them."""
    return {p["hardware"]["cpu_kernels"] for p in _chapters(file).values() if "cpu_kernels" in p.get("hardware", {})}


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


def machines(profile: str) -> pd.DataFrame:
    """What another CPU changes: per number recorded by the main build (``results.json``), its value on this machine,
    on each emulated CPU whose build is on disk (one column per ``CPUS`` name), the largest absolute difference to this
    machine and, where the seed spread was measured, the seed SD and the difference in seed SDs (0 when nothing moved,
    missing when the seeds agree exactly but the CPUs do not).

    A CPU build counts only when its config is the main build's, seed included, and none of its chapters recorded the
    CPU kernels the main build used: a build that ran with this machine's own kernels emulates nothing. Empty, with
    ``MACHINE_COLUMNS``, when no such build exists."""
    empty = pd.DataFrame(columns=MACHINE_COLUMNS, index=pd.Index([], name="key"))
    file = results.path(profile)
    if not file.is_file():
        return empty
    recipe, kernels = _recipe(file, with_seed=True), _kernels(file)
    builds = {}
    for name in CPUS:
        other = cpu_root(profile, name) / profile / "results.json"
        if other.is_file() and _recipe(other, with_seed=True) == recipe and not _kernels(other) & kernels:
            builds[name] = results.table(json.loads(other.read_text()))["value"]
    if not builds:
        return empty
    main = results.table(json.loads(file.read_text()))
    out = pd.DataFrame({"quantity": main["quantity"], "this machine": main["value"]})
    for name, values in builds.items():
        out[name] = values.reindex(out.index)
    difference = out[list(builds)].sub(out["this machine"], axis=0).abs().max(axis=1)  # NaN only when never recorded
    out["largest difference"] = difference
    moves, _ = measured(profile)
    if not moves.empty:
        sd = moves["sd"].reindex(out.index)
        out["seed SD"] = sd
        out["difference / seed SD"] = (difference / sd.where(sd > 0)).mask(difference == 0, 0.0)
    return out


def machines_sentence(table: pd.DataFrame, profile: str) -> str:
    """What the ``machines`` table says (Markdown), written from its numbers, or that it was not measured and the
    command that measures it."""
    if table.empty:
        command = f"make spread PROFILE={profile} SEEDS=3 CPUS={','.join(CPUS)}"
        return (f"What another CPU changes was **not measured** for this build. `{command}` (with the book's `SET`, if "
                "any) rebuilds the chapters with this build's seed and torch's kernels capped to those of older CPUs, "
                "and sets every difference beside the seed's noise.")  # fmt: skip
    cpus = [c for c in table.columns if c in CPUS]
    moved = int((table["largest difference"] > 0).sum())
    text = (f"The build was repeated with its own seed on {len(cpus)} emulated CPU{'s' * (len(cpus) > 1)}: "
            f"{moved} of the {len(table)} recorded numbers differ at all from this machine's.")  # fmt: skip
    for name in cpus:
        text += " " + _one_cpu(table, name)
    if "seed SD" not in table.columns:
        return text + (" The seed spread was not measured, so these differences cannot be set beside a seed's noise "
                       "(`make spread SEEDS=3`).")  # fmt: skip
    ratio = table["difference / seed SD"].dropna()
    steady = int(((table["largest difference"] > 0) & table["difference / seed SD"].isna()).sum())
    if steady:
        text += (f" Of the numbers every seed gives exactly alike, {steady} differ{'s' * (steady == 1)} on another "
                 "CPU (no seed SD to set beside).")  # fmt: skip
    if not len(ratio):
        return text
    widest, most = table.loc[ratio.idxmax(), "quantity"], ratio.max()
    text += (f" Half the numbers move by less than {ratio.median():.2g} seed SDs and "
             f"{(ratio < 1).mean():.0%} by less than one (a seed SD from few seeds is itself rough, so the largest "
             "ratios sit on numbers the seeds happened to agree on).")  # fmt: skip
    text += f" Every {'other ' * bool(steady)}difference is within {most:.2g} seed SDs (the largest for {widest})"
    if most < 1:
        return text + ": another CPU moves the numbers less than another seed does."
    beyond = int((ratio >= 1).sum())
    moves, them = (f"{beyond} numbers move", "them") if beyond > 1 else ("1 number moves", "it")
    return text + f"; {moves} by one seed SD or more: another CPU moves {them} as much as a seed does."


def _one_cpu(table: pd.DataFrame, name: str) -> str:
    """The number that moves most on the emulated CPU ``name`` (relative to the seed SD where measured, else to its
    size), in a sentence."""
    difference = (table[name] - table["this machine"]).abs()
    if not (difference > 0).any():
        return f"On {CPUS[name].description} (`{name}`) every number is the same, to the last bit, as here."
    scale = table["seed SD"] if "seed SD" in table.columns else table["this machine"].abs()
    relative = (difference / scale.where(scale > 0)).dropna()
    key = relative.idxmax() if len(relative) else difference.idxmax()
    row = table.loc[key]
    return (f"On {CPUS[name].description} (`{name}`) the same seed gives {row['quantity']} {row[name]:.4g} against "
            f"{row['this machine']:.4g} here (a difference of {difference[key]:.2g}).")  # fmt: skip
