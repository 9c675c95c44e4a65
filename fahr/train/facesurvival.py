"""FaceSurvival (``fahr finetune-survival``): Cox partial likelihood (torchsurv, Efron ties) on cohort A.

Every batch holds deaths (``EventBatchSampler``: the partial likelihood of a batch without one is empty), and
the epoch is selected on validation concordance (Harrell's C, higher risk = shorter survival).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torchsurv.loss.cox import neg_partial_log_likelihood

from fahr.core import provenance
from fahr.core.config import Config
from fahr.core.runtime import load_checkpoint, seed_everything
from fahr.data.loading import EventBatchSampler
from fahr.models.heads import FaceSurvivalModel, load_encoder, load_weights, read_checkpoint, save_checkpoint
from fahr.models.vit import ViTSpec, build_encoder
from fahr.stats.concordance import harrell
from fahr.train import common, pretrain
from fahr.train.loop import Trainer


def name(pretrained: bool, fraction: float = 1.0) -> str:
    return common.run_name("facesurvival", pretrained, fraction)


def fingerprint(cfg: Config, pretrained: bool, fraction: float) -> str:
    upstream = [
        common.cohort_fingerprint(cfg, "clinical-a"),
        pretrain.fingerprint(cfg) if pretrained else "scratch",
        fraction,
    ]
    return common.fingerprint(cfg, ["synth", "model", "facesurvival"], ["fahr.train.facesurvival"], upstream)


def checkpoint_path(profile: str, pretrained: bool = True, fraction: float = 1.0) -> Path:
    return common.model_dir(profile, name(pretrained, fraction)) / "facesurvival.pt"


def cox_loss(log_risk: torch.Tensor, event: torch.Tensor, time: torch.Tensor) -> torch.Tensor:
    """Negative Cox partial log-likelihood per event (Efron's ties), from torchsurv."""
    return neg_partial_log_likelihood(
        log_risk.float(), event.bool(), time.float(), ties_method="efron", reduction="mean"
    )


def run(cfg: Config, pretrained: bool = True, fraction: float = 1.0, progress: bool = True) -> Path:
    """Fine-tune FaceSurvival (or resume, or reuse); return its checkpoint."""
    out = common.model_dir(cfg.profile, name(pretrained, fraction))
    if common.already_done(out, fingerprint(cfg, pretrained, fraction)):
        return checkpoint_path(cfg.profile, pretrained, fraction)
    started = provenance.now()
    s = cfg.facesurvival
    train_table = common.cohort(cfg, "clinical-a", "train")
    if fraction < 1.0:
        train_table = train_table.sample(frac=fraction, random_state=cfg.seed).reset_index(drop=True)
    val_table = common.cohort(cfg, "clinical-a", "val")
    if val_table["event"].sum() < 1 or len(val_table) < 2:
        raise ValueError(f"the validation split of clinical cohort A ({len(val_table)} patients, "
                         f"{int(val_table['event'].sum())} deaths) cannot rank anyone: concordance, on which "
                         "FaceSurvival is selected, needs two patients and a death")  # fmt: skip
    vit, encoder = pretrain.encoder_state(cfg, progress) if pretrained else (common.vit_spec(cfg), None)
    seed_everything(cfg.seed)  # the initial weights depend on the seed alone, not on the process
    model = FaceSurvivalModel(build_encoder(vit))
    if encoder is not None:
        load_encoder(model, encoder)
    train = common.dataset(train_table, cfg, "finetune", ["time", "event"])
    events = train_table["event"].to_numpy().astype(bool)
    batch_size = min(s.batch_size, len(train_table))
    min_events = max(1, min(s.min_events, int(events.sum()) // max(1, len(train_table) // batch_size)))

    def make_batches(epoch: int, rank: int, world_size: int):
        if cfg.data.format == "shards":  # every batch takes min_events deaths from the stream first
            return common.streamed(cfg, "clinical-a", "finetune", batch_size, train_table, ["time", "event"],
                                   min_events=min_events, round_up=True)(epoch, rank, world_size)  # fmt: skip
        sampler = EventBatchSampler(events, batch_size, min_events=min_events, seed=cfg.seed, rank=rank,
                                    world_size=world_size)  # fmt: skip
        sampler.set_epoch(epoch)
        return torch.utils.data.DataLoader(train, batch_sampler=sampler, num_workers=cfg.num_workers,
                                           collate_fn=common.loading.collate)  # fmt: skip

    def loss_fn(m, batch):
        return cox_loss(m(batch["image"]), batch["event"], batch["time"]), {}

    def evaluate(m) -> dict[str, float]:
        risk = common.predict(m, val_table, cfg).to_numpy()
        return {"val_c_index": harrell(risk, val_table["time"].to_numpy(), val_table["event"].to_numpy())}

    spec = common.train_spec(cfg, s.epochs, batch_size, s.lr, s.warmup_epochs, s.weight_decay)
    result = Trainer(model, spec, out / "train", loss_fn, make_batches, evaluate, ("val_c_index", "max"),
                     progress=progress).fit()  # fmt: skip
    if result.rank != 0:  # only rank 0 writes
        return checkpoint_path(cfg.profile, pretrained, fraction)
    model.load_state_dict(load_checkpoint(result.best_path)["model"])
    extra = {"spec": dict(vit.__dict__), "val_c_index": result.best_value, "pretrained": pretrained,
             "fraction": fraction, "best_epoch": result.best_epoch}  # fmt: skip
    save_checkpoint(checkpoint_path(cfg.profile, pretrained, fraction), model, extra)
    common.finish(out, cfg, "finetune-survival", started, val_c_index=result.best_value, train_photos=len(train_table),
                  images_per_s=result.images_per_s)  # fmt: skip
    return checkpoint_path(cfg.profile, pretrained, fraction)


def load(path: Path) -> FaceSurvivalModel:
    """A FaceSurvival model from its checkpoint (weights only)."""
    payload = read_checkpoint(path)
    extra = payload["extra"]
    model = FaceSurvivalModel(build_encoder(ViTSpec(**extra["spec"])))
    load_weights(path, model, payload)
    return model.eval()
