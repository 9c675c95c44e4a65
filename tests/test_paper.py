"""The paper profile without its data: it names what is missing and where it goes, and runs nothing; and its
paper-scale path (the 12-layer, 768-wide ViT at 112×112) works end to end on CPU for a few steps on FAHR-Synth."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from fahr.core import config
from fahr.data.real import prepare


def fahr(artifacts: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "FAHR_ARTIFACTS": str(artifacts)}
    return subprocess.run([sys.executable, "-m", "fahr.cli", *args], capture_output=True, text=True, env=env)


def test_book_on_the_paper_profile_names_every_missing_dataset_and_runs_nothing(tmp_path) -> None:
    out = fahr(tmp_path / "artifacts", "book", "--profile", "paper", "--set", f"data.root={tmp_path / 'data'}")
    assert out.returncode == 2
    for expected in prepare.EXPECTED:
        assert f"- {expected.name}: put" in out.stderr and str(tmp_path / "data" / expected.folder) in out.stderr
    assert "Nothing was run" in out.stderr
    assert not (tmp_path / "artifacts").exists()


def test_only_the_absent_datasets_are_named(tmp_path) -> None:
    (tmp_path / "utkface").mkdir()
    (tmp_path / "utkface" / "30_0_0_20170101.jpg").write_bytes(b"")
    (tmp_path / "clinical-a").mkdir()
    (tmp_path / "clinical-a" / "photos.csv").write_text("path\n")
    cfg = config.load("paper", {"data.root": str(tmp_path)})
    names = [e.name for e, _ in prepare.missing(cfg)]
    assert "utkface" not in names and "clinical-a" not in names and len(names) == len(prepare.EXPECTED) - 2
    assert (
        prepare.missing(config.load("demo", {})) and prepare.check(config.load("demo", {})) is None
    )  # synth: no check


PAPER_ON_SYNTH = [
    "data.source=synth", "device=cpu", "num_workers=0", "torch_threads=2", "synth.workers=1",
    "synth.pretrain_n=40", "pretrain.decoder_depth=2", "pretrain.epochs=1", "pretrain.batch_size=8",
    "pretrain.warmup_epochs=0.5",
    "synth.age_n=6", "faceage.stage1.epochs=1", "faceage.stage1.batch_size=8", "faceage.stage1.warmup_epochs=0.5",
    "faceage.stage2.epochs=1", "faceage.stage2.batch_size=8", "faceage.balanced_samples=16",
]  # fmt: skip


def test_paper_scale_model_trains_a_few_steps_on_cpu(tmp_path) -> None:
    sets = [a for s in PAPER_ON_SYNTH for a in ("--set", s)]
    out = fahr(tmp_path, "pretrain", "--profile", "paper", *sets)
    assert out.returncode == 0, out.stderr[-3000:]
    out = fahr(tmp_path, "finetune-age", "--profile", "paper", *sets)
    assert out.returncode == 0, out.stderr[-3000:]
    models = tmp_path / "paper" / "models"
    done = json.loads((models / "faceage" / "done.json").read_text())
    assert done["config"]["model"] == {"patch_size": 16, "embed_dim": 768, "depth": 12, "num_heads": 12,
                                       "drop_path": 0.1}  # fmt: skip
    state = torch.load(models / "faceage" / "faceage-stage2.pt", weights_only=True, map_location="cpu")
    weights = state.get("model", state)
    blocks = {k.split(".")[2] for k in weights if k.startswith("encoder.blocks.")}
    assert len(blocks) == 12
    assert (
        weights["encoder.pos_embed"].shape[-1] == 768 and weights["encoder.pos_embed"].shape[1] == 1 + (112 // 16) ** 2
    )
    assert torch.isfinite(torch.tensor(done["stage2_val_mae"]))
