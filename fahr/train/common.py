"""What the three training stages share: the ViT spec, train specs, loaders, caching by fingerprint."""

from __future__ import annotations

import math
import os
import shutil
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch.utils.data import DataLoader, DistributedSampler, Sampler

from fahr.core import cache, paths, provenance
from fahr.core.config import Config, ConfigError
from fahr.data import loading
from fahr.data.real import prepare
from fahr.data.shards import StreamBatches, TrainingStream, write_shards
from fahr.data.synth import cohorts
from fahr.models import importer
from fahr.models.vit import ViTSpec
from fahr.train.loop import MakeBatches, TrainSpec


def vit_spec(cfg: Config) -> ViTSpec:
    """The encoder of this profile at the input size of its images."""
    m = cfg.model
    return ViTSpec(cfg.synth.image_size, m.patch_size, m.embed_dim, m.depth, m.num_heads, drop_path=m.drop_path)


def published_file(key: str, value: str) -> Path:
    """The published checkpoint a config key (``pretrain.weights``, ``faceage.weights``) names; it must exist."""
    path = paths.repo_path(value)
    if not path.is_file():
        raise ConfigError(f"{key}: no file at {path} (the authors' published checkpoint; see "
                          "docs/published-models.md)")  # fmt: skip
    return path


def import_fingerprint(cfg: Config, key: str, value: str, kind: str) -> str:
    """What an imported stage depends on: the file's SHA-256, the import's options and the importer's code."""
    sha = importer.file_sha256(published_file(key, value))
    options = [cfg.synth.image_size, cfg.to_dict()["model"], cfg.published.normalisation]
    return cache.digest("imported", kind, sha, options, cache.code_fingerprint(["fahr.models.importer"]))


def import_published(cfg: Config, key: str, value: str, kind: str) -> importer.ImportedModel:
    """A published checkpoint imported for this profile: at its image size, with its heads and stochastic depth and
    the configured input normalisation. Its shape must be the profile's ``model`` section, or a ConfigError says
    which values to set."""
    path = published_file(key, value)
    imported = importer.import_file(path, kind, normalisation=cfg.published.normalisation,
                                    image_size=cfg.synth.image_size, num_heads=cfg.model.num_heads,
                                    drop_path=cfg.model.drop_path)  # fmt: skip
    ours, theirs = vit_spec(cfg), imported.spec
    differ = {f"model.{f}": getattr(theirs, f) for f in ("patch_size", "embed_dim", "depth")
              if getattr(ours, f) != getattr(theirs, f)}  # fmt: skip
    if "model.embed_dim" in differ and theirs.embed_dim % importer.HEAD_DIM == 0:
        differ["model.num_heads"] = theirs.embed_dim // importer.HEAD_DIM  # the standard 64 per head: not in the file
    if differ or ours.mlp_ratio != theirs.mlp_ratio:
        sets = " ".join(f"--set {k}={v}" for k, v in differ.items())
        raise ConfigError(
            f"{key}: {path.name} holds a ViT of patch {theirs.patch_size}, width {theirs.embed_dim}, depth "
            f"{theirs.depth} and MLP ratio {theirs.mlp_ratio:g}, but profile {cfg.profile!r} describes another "
            f"encoder (patch {ours.patch_size}, width {ours.embed_dim}, depth {ours.depth}, MLP ratio "
            f"{ours.mlp_ratio:g}): " + (f"use {sets}" if sets else "the project's ViT has MLP ratio 4 only")
        )
    return imported


def import_stage(cfg: Config, out: Path, key: str, kind: str, target: Path, stage: str) -> Path:
    """A stage's result taken from the published file that config ``key`` names, in place of training: rank 0
    imports it as ``kind`` into ``target`` and marks the stage done in ``out``; the other ranks wait for that."""
    if rank() != 0:
        wait_for(lambda: (out / "done.json").is_file(), f"{out} (the imported {kind} model)")
        return target
    started = provenance.now()
    section, field = key.split(".")
    imported = import_published(cfg, key, getattr(getattr(cfg, section), field), kind)
    importer.save(imported, target)
    finish(out, cfg, stage, started, imported=imported.provenance)
    return target


def train_spec(
    cfg: Config, epochs: int, batch_size: int, lr: float, warmup: float, weight_decay: float, **kw
) -> TrainSpec:
    """A TrainSpec with the profile's seed, device and precision."""
    return TrainSpec(
        epochs=epochs, batch_size=batch_size, lr=lr, warmup_epochs=warmup, weight_decay=weight_decay,
        precision=cfg.precision, seed=cfg.seed, device=cfg.device, min_lr=lr / 100, fused_adamw=cfg.fused_adamw,
        activation_checkpointing=cfg.activation_checkpointing, compile_model=cfg.compile_model, **kw,
    )  # fmt: skip


def run_name(model: str, pretrained: bool, fraction: float) -> str:
    """The folder name of a fine-tuning run: ``faceage``, ``faceage-scratch``, ``facesurvival-f0.25``, …"""
    return model + ("" if pretrained else "-scratch") + ("" if fraction == 1.0 else f"-f{fraction:g}")


def model_dir(profile: str, name: str) -> Path:
    """Where one trained model of a profile lives (``artifacts/<profile>/models/<name>``)."""
    return paths.stage_dir(profile, "models") / name


def rank() -> int:
    """This process's rank under torchrun (0 without it)."""
    return int(os.environ.get("RANK", "0"))


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 3600.0) -> None:
    """Other ranks wait here while rank 0 writes what they all need (a cohort, a stage folder)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"rank {rank()} waited {timeout:.0f} s for {what}")
        time.sleep(1.0)


def cohort(cfg: Config, name: str, split: str | None = None) -> pd.DataFrame:
    """A cohort's manifest (absolute paths), optionally one split: FAHR-Synth's, built first if needed, or with
    ``data.source: real`` the prepared real cohort of that name (``fahr.data.real.prepare``); rank 0 builds, others
    wait."""
    if cfg.data.source == "real":
        _ready(cfg, name, prepare.is_current, lambda: prepare.build(cfg, (name,)))
        table = prepare.load(cfg.profile, name)
    else:
        _ready(cfg, name, cohorts.is_current, lambda: cohorts.build(cfg, (name,), progress=False))
        table, _, _ = cohorts.load(cfg.profile, name)
    return table if split is None else table[table["split"] == split].reset_index(drop=True)


def cohort_fingerprint(cfg: Config, name: str) -> str:
    """What a stage reading a cohort depends on: FAHR-Synth's design, or the prepared real manifest."""
    if cfg.data.source == "real":
        _ready(cfg, name, prepare.is_current, lambda: prepare.build(cfg, (name,)))
        return prepare.fingerprint(cfg, name)
    return cohorts.fingerprint(cfg, name)


def _ready(cfg: Config, name: str, is_current: Callable[[Config, str], bool], build: Callable[[], Any]) -> None:
    if rank() == 0:
        build()
    else:
        wait_for(lambda: is_current(cfg, name), f"cohort {name!r}")


def dataset(table: pd.DataFrame, cfg: Config, stage: str, labels: Iterable[str] = ()) -> loading.FaceDataset:
    """A FaceDataset over a manifest with the stage's augmentation; a training stage's keeps its decoded photos
    for the next epoch (within ``FaceDataset.DECODED_CACHE_BYTES``)."""
    size = cfg.synth.image_size
    return loading.FaceDataset(table, root=Path("/"), size=size, transform=loading.transforms(stage, size),
                               label_columns=tuple(labels), keep_decoded=stage != "eval")  # fmt: skip


def batches(ds: loading.FaceDataset, batch_size: int, cfg: Config, sampler: Sampler) -> DataLoader:
    """A DataLoader over ``ds`` with the profile's workers; the sampler decides order and rank share."""
    return DataLoader(ds, batch_size=batch_size, sampler=sampler, num_workers=cfg.num_workers,
                      collate_fn=loading.collate, drop_last=True)  # fmt: skip


def shuffled(ds: loading.FaceDataset, batch_size: int, cfg: Config):
    """``make_batches`` for plain shuffled epochs: each rank a disjoint share, fixed by (seed, epoch)."""

    def make(epoch: int, rank: int, world_size: int) -> DataLoader:
        sampler = DistributedSampler(
            ds, num_replicas=world_size, rank=rank, shuffle=True, seed=cfg.seed, drop_last=True
        )
        sampler.set_epoch(epoch)
        return batches(ds, batch_size, cfg, sampler)

    return make


def shards(cfg: Config, name: str, split: str) -> Path:
    """The WebDataset shards of one split of a cohort (``data.format: shards``), in
    ``artifacts/<profile>/shards/<cohort>-<split>``: written from the manifest by rank 0 when missing or stale
    (another cohort or shard size), awaited by the other ranks."""
    out = paths.stage_dir(cfg.profile, "shards") / f"{name}-{split}"
    stamp = out / "fingerprint"
    digest = cache.digest(cohort_fingerprint(cfg, name), split, cfg.data.shard_size)
    current = lambda: stamped(stamp, digest)  # noqa: E731
    if rank() != 0:
        wait_for(current, f"the shards in {out}")
    elif not current():
        write_shards(cohort(cfg, name, split), Path("/"), out, maxcount=cfg.data.shard_size)
        provenance.write_text(stamp, digest + "\n")
    return out


def streamed(
    cfg: Config,
    name: str,
    stage: str,
    batch_size: int,
    table: pd.DataFrame,
    labels: Iterable[str] = (),
    samples: int | None = None,
    weight: Callable[[dict[str, Any]], float] | None = None,
    min_events: int = 0,
    round_up: bool = False,
) -> MakeBatches:
    """``make_batches`` streaming the training shards of cohort ``name`` (``data.format: shards``), restricted to the
    photos of ``table``: ``samples`` photos an epoch over all ranks (default: as many as ``table`` has), cut into
    whole batches per rank (``round_up``: the last, partial one too). ``weight`` and ``min_events`` as in
    ``TrainingStream``."""
    folder = shards(cfg, name, "train")
    keep = set(table["image_id"].astype(str))
    size = cfg.synth.image_size
    total = len(table) if samples is None else samples

    def make(epoch: int, rank: int, world_size: int) -> StreamBatches:
        per_rank = total / (world_size * batch_size)
        steps = max(1, math.ceil(per_rank) if round_up else int(per_rank))

        def stream(start: int) -> TrainingStream:
            return TrainingStream(
                folder, batch_size, steps, epoch=epoch, rank=rank, world_size=world_size, workers=cfg.num_workers,
                seed=cfg.seed, start=start, size=size, transform=loading.transforms(stage, size),
                label_columns=tuple(labels), shuffle_buffer=cfg.data.shuffle_buffer, keep=keep, weight=weight,
                min_events=min_events,
            )  # fmt: skip

        return StreamBatches(stream, cfg.num_workers)

    return make


def reader(cfg: Config, name: str, table: pd.DataFrame, stage: str, batch_size: int, labels: Iterable[str] = ()):
    """``make_batches`` for plain shuffled epochs over the training photos of ``table``: the loose files
    (``shuffled``) or, with ``data.format: shards``, the cohort's shards (``streamed``)."""
    if cfg.data.format == "shards":
        return streamed(cfg, name, stage, batch_size, table, labels)
    return shuffled(dataset(table, cfg, stage, labels), batch_size, cfg)


@torch.no_grad()
def predict(model: torch.nn.Module, table: pd.DataFrame, cfg: Config, batch_size: int = 128) -> pd.Series:
    """The model's output for every photo of a manifest (eval mode, no augmentation), indexed by image_id."""
    device = torch.device(provenance.resolve_device(cfg.device))
    model = model.to(device).eval()
    loader = DataLoader(dataset(table, cfg, "eval"), batch_size=batch_size, collate_fn=loading.collate)
    ids, outputs = [], []
    for batch in loader:
        with torch.autocast(
            device.type, dtype=torch.bfloat16, enabled=device.type == "cuda" and cfg.precision == "bf16"
        ):
            outputs.append(model(batch["image"].to(device)).float().cpu())
        ids += list(batch["image_id"])
    return pd.Series(torch.cat(outputs).numpy(), index=pd.Index(ids, name="image_id"))


def stamped(stamp: Path, fingerprint: str) -> bool:
    """Whether the stamp file ``stamp`` holds ``fingerprint`` (what was built there is current)."""
    return stamp.is_file() and stamp.read_text().strip() == fingerprint


def already_done(out: Path, fingerprint: str) -> bool:
    """Whether the run in ``out`` with ``fingerprint`` has already finished; if not, ``out`` is made ready for it.

    A folder left by a killed run of the same fingerprint is kept (the loop resumes from ``last.pt``); a folder
    from another fingerprint (other config, data or code) is emptied, so nothing stale is resumed.
    """
    stamp = out / "fingerprint"
    current = lambda: stamped(stamp, fingerprint)  # noqa: E731
    if rank() != 0:  # rank 0 decides and clears; the others follow
        wait_for(current, f"{out} to be prepared")
        return (out / "done.json").is_file()
    if current():
        return (out / "done.json").is_file()
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    provenance.write_text(stamp, fingerprint + "\n")
    return False


def finish(out: Path, cfg: Config, stage: str, started: str, **results: Any) -> None:
    """Mark a stage done: ``done.json`` with its results and provenance (written last, atomically)."""
    provenance.write_json(out / "done.json", provenance.record(cfg, stage, started, **results))


def fingerprint(cfg: Config, sections: Iterable[str], modules: Iterable[str], upstream: Iterable[str] = ()) -> str:
    """What a stage's result depends on: config sections, seed, its code, and the stages it reads."""
    values = cfg.to_dict()
    if cfg.fused_adamw:  # another kernel, other rounding
        upstream = [*upstream, "fused_adamw"]
    if cfg.compile_model:  # inductor's kernels, other rounding (off: the fingerprints of before the option)
        upstream = [*upstream, "compile_model"]
    if cfg.data.format == "shards":  # the stream's order depends on the shards and on the workers they are dealt to
        upstream = [*upstream, values["data"]["format"], cfg.data.shard_size, cfg.data.shuffle_buffer, cfg.num_workers]
    return cache.digest({s: values[s] for s in sections}, cfg.seed, cache.code_fingerprint(modules), list(upstream))


def read_done(profile: str, name: str) -> dict[str, Any]:
    """The results and provenance a finished stage wrote to ``done.json``."""
    import json

    return json.loads((model_dir(profile, name) / "done.json").read_text())
