"""FaceAge (``fahr finetune-age``): stage 1 on the natural age distribution, stage 2 on an age-balanced stream.

Both stages select their epoch on validation MAE only. The same recipe trains the from-scratch baseline
(``pretrained=False``: the encoder starts from random weights), and stage 1's model is kept as a baseline.
With ``faceage.weights`` the main model (pretrained, all the data) is the published FaceAge model, imported.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from fahr.core import provenance
from fahr.core.config import Config
from fahr.core.runtime import load_checkpoint, seed_everything
from fahr.data.loading import AgeBalancedSampler
from fahr.models.heads import FaceAgeModel, load_encoder, load_weights, read_checkpoint, save_checkpoint
from fahr.models.vit import ViTSpec, build_encoder
from fahr.train import common, pretrain
from fahr.train.loop import MakeBatches, Trainer

LOSSES = {"l1": torch.nn.functional.l1_loss, "mse": torch.nn.functional.mse_loss}


def name(pretrained: bool, fraction: float = 1.0) -> str:
    return common.run_name("faceage", pretrained, fraction)


def is_imported(cfg: Config, pretrained: bool, fraction: float) -> bool:
    """Whether this run is the published FaceAge model (``faceage.weights``) rather than a fine-tuning."""
    return cfg.faceage.weights is not None and pretrained and fraction == 1.0


def fingerprint(cfg: Config, pretrained: bool, fraction: float) -> str:
    if is_imported(cfg, pretrained, fraction):
        return common.import_fingerprint(cfg, "faceage.weights", cfg.faceage.weights, "faceage")
    upstream = [common.cohort_fingerprint(cfg, "age"), pretrain.fingerprint(cfg) if pretrained else "scratch", fraction]
    trained = cfg.model_copy(update={"faceage": cfg.faceage.model_copy(update={"weights": None})})  # not imported
    return common.fingerprint(trained, ["synth", "model", "faceage"], ["fahr.train.faceage"], upstream)


def checkpoint_path(profile: str, pretrained: bool = True, fraction: float = 1.0, stage: int = 2) -> Path:
    """The selected model of a run; ``stage=1`` gives the stage-1 model (the no-balancing baseline)."""
    return common.model_dir(profile, name(pretrained, fraction)) / f"faceage-stage{stage}.pt"


def training_table(cfg: Config, fraction: float):
    """The training photos of the public-style age datasets; a fraction keeps that share of the people."""
    train = common.cohort(cfg, "age", "train")
    if fraction < 1.0:
        people = train["subject_id"].drop_duplicates().sample(frac=fraction, random_state=cfg.seed)
        train = train[train["subject_id"].isin(people)].reset_index(drop=True)
    return train


def balanced_samples(cfg: Config, fraction: float = 1.0) -> int:
    """Photos per stage-2 epoch: ``faceage.balanced_samples`` scaled by the share of people a data-efficiency run
    keeps, so that a run on a tenth of the people makes as many passes over its photos as the main run does over
    all of them (at least one batch)."""
    f = cfg.faceage
    return max(f.stage2.batch_size, round(f.balanced_samples * fraction))


def run(cfg: Config, pretrained: bool = True, fraction: float = 1.0, progress: bool = True) -> Path:
    """Fine-tune FaceAge in two stages (or resume, or reuse, or import ``faceage.weights``); return the stage-2
    checkpoint."""
    out = common.model_dir(cfg.profile, name(pretrained, fraction))
    if common.already_done(out, fingerprint(cfg, pretrained, fraction)):
        return checkpoint_path(cfg.profile, pretrained, fraction)
    if is_imported(cfg, pretrained, fraction):
        return import_published(cfg, out)
    started = provenance.now()
    f = cfg.faceage
    train_table = training_table(cfg, fraction)
    val_table = common.cohort(cfg, "age", "val")
    init_age, age_scale = float(train_table["age"].mean()), float(train_table["age"].std())
    vit, encoder = pretrain.encoder_state(cfg, progress) if pretrained else (common.vit_spec(cfg), None)
    seed_everything(cfg.seed)  # the initial weights depend on the seed alone, not on the process
    model = FaceAgeModel(build_encoder(vit), init_age=init_age, age_scale=age_scale)
    if encoder is not None:
        load_encoder(model, encoder)
    train = common.dataset(train_table, cfg, "finetune", ["age"])
    loss_of = LOSSES[f.loss]

    def loss_fn(m, batch):
        pred = m(batch["image"])
        return loss_of(pred, batch["age"]), {"mae": torch.mean(torch.abs(pred.detach() - batch["age"]))}

    def evaluate(m) -> dict[str, float]:
        pred = common.predict(m, val_table, cfg)
        return {"val_mae": float((pred.to_numpy() - val_table["age"].to_numpy()).__abs__().mean())}

    def balanced(epoch: int, rank: int, world_size: int):
        if cfg.data.format == "shards":
            return balanced_stream(cfg, train_table, fraction)(epoch, rank, world_size)
        ages = train_table["age"].to_numpy()
        sampler = AgeBalancedSampler(
            ages, f.bin_width, balanced_samples(cfg, fraction), seed=cfg.seed, rank=rank, world_size=world_size
        )
        sampler.set_epoch(epoch)
        return common.batches(train, f.stage2.batch_size, cfg, sampler)

    plain = common.reader(cfg, "age", train_table, "finetune", f.stage1.batch_size, ["age"])
    stages = ((1, f.stage1, plain), (2, f.stage2, balanced))
    results = {}
    for number, stage, make_batches in stages:
        spec = common.train_spec(cfg, stage.epochs, stage.batch_size, stage.lr, stage.warmup_epochs, f.weight_decay)
        result = Trainer(model, spec, out / f"stage{number}", loss_fn, make_batches, evaluate, ("val_mae", "min"),
                         progress=progress).fit()  # fmt: skip
        model.load_state_dict(load_checkpoint(result.best_path)["model"])  # the stage's best validation epoch
        results[f"stage{number}_val_mae"] = result.best_value
        results[f"stage{number}_images_per_s"] = result.images_per_s
        if result.rank != 0:  # only rank 0 writes
            continue
        extra = {
            "init_age": init_age, "age_scale": age_scale, "spec": dict(vit.__dict__),
            "stage": number, "val_mae": result.best_value, "pretrained": pretrained, "fraction": fraction,
        }  # fmt: skip
        save_checkpoint(checkpoint_path(cfg.profile, pretrained, fraction, number), model, extra)
    if result.rank != 0:
        return checkpoint_path(cfg.profile, pretrained, fraction)
    common.finish(out, cfg, "finetune-age", started, train_photos=len(train_table), **results)
    return checkpoint_path(cfg.profile, pretrained, fraction)


class BinWeights:
    """A photo's weight in the balanced stream: its age bin's share of the bins (1 / bins) over its share of the
    photos, so that every non-empty bin is equally frequent and a photo comes once on average."""

    def __init__(self, ages: np.ndarray, bin_width: float) -> None:
        found, counts = np.unique(np.floor(np.asarray(ages, dtype=float) / bin_width).astype(int), return_counts=True)
        self.bin_width = bin_width
        self.weights = {int(b): len(ages) / (len(found) * int(c)) for b, c in zip(found, counts, strict=True)}

    def __call__(self, row: dict) -> float:
        return self.weights[int(np.floor(float(row["age"]) / self.bin_width))]


def balanced_stream(cfg: Config, train_table: pd.DataFrame, fraction: float = 1.0) -> MakeBatches:
    """Stage 2 on shards: ``balanced_samples`` photos an epoch, each photo repeated in the stream by its
    ``BinWeights``, the streaming counterpart of ``AgeBalancedSampler``."""
    f = cfg.faceage
    weight = BinWeights(train_table["age"].to_numpy(), f.bin_width)
    batch, samples = f.stage2.batch_size, balanced_samples(cfg, fraction)
    return common.streamed(cfg, "age", "finetune", batch, train_table, ["age"], samples, weight)


def import_published(cfg: Config, out: Path) -> Path:
    """The published FaceAge model (``faceage.weights``) as this run's stage-2 model, in place of fine-tuning."""
    return common.import_stage(cfg, out, "faceage.weights", "faceage", checkpoint_path(cfg.profile), "finetune-age")


def load(path: Path) -> FaceAgeModel:
    """A FaceAge model from its checkpoint (weights only)."""
    payload = read_checkpoint(path)
    extra = payload["extra"]
    model = FaceAgeModel(build_encoder(ViTSpec(**extra["spec"])), extra["init_age"], extra["age_scale"])
    load_weights(path, model, payload)
    return model.eval()
