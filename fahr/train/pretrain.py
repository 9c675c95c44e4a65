"""MAE pretraining of the ViT encoder on the unlabelled corpus (``fahr pretrain``), or, with ``pretrain.weights``,
the published foundation model imported in its place."""

from __future__ import annotations

from pathlib import Path

import torch

from fahr.core import provenance
from fahr.core.config import Config
from fahr.core.runtime import load_checkpoint, seed_everything
from fahr.models.heads import save_checkpoint
from fahr.models.mae import MaskedAutoencoder
from fahr.models.vit import ViTSpec
from fahr.train import common
from fahr.train.loop import Trainer, current_world_size

NAME = "pretrain"


def build_mae(cfg: Config) -> MaskedAutoencoder:
    p = cfg.pretrain
    return MaskedAutoencoder(common.vit_spec(cfg), decoder_dim=p.decoder_dim, decoder_depth=p.decoder_depth,
                             decoder_heads=p.decoder_heads, mask_ratio=p.mask_ratio, norm_pix_loss=True)  # fmt: skip


def fingerprint(cfg: Config) -> str:
    if cfg.pretrain.weights is not None:
        return common.import_fingerprint(cfg, "pretrain.weights", cfg.pretrain.weights, "foundation")
    return common.fingerprint(cfg, ["synth", "model", "pretrain"], ["fahr.train.pretrain"],
                              [common.cohort_fingerprint(cfg, "pretrain")])  # fmt: skip


def encoder_path(profile: str) -> Path:
    return common.model_dir(profile, NAME) / "encoder.pt"


def run(cfg: Config, progress: bool = True) -> Path:
    """Pretrain (or resume, or reuse) the MAE, or import ``pretrain.weights``; return the encoder checkpoint's path."""
    out = common.model_dir(cfg.profile, NAME)
    if common.already_done(out, fingerprint(cfg)):
        return encoder_path(cfg.profile)
    if cfg.pretrain.weights is not None:
        return import_published(cfg, out)
    started = provenance.now()
    p = cfg.pretrain
    train = common.cohort(cfg, "pretrain", "train")
    val = common.dataset(common.cohort(cfg, "pretrain", "val"), cfg, "eval")
    if len(val) == 0:
        raise ValueError(f"the pretraining cohort of profile {cfg.profile!r} has no validation photos: "
                         f"synth.pretrain_n={cfg.synth.pretrain_n} is too small")  # fmt: skip
    seed_everything(cfg.seed)  # the initial weights depend on the seed alone, not on the process
    mae = build_mae(cfg)
    lr = p.base_lr * p.batch_size * p.accum_steps * current_world_size() / 256
    spec = common.train_spec(cfg, p.epochs, p.batch_size, lr, p.warmup_epochs, p.weight_decay,
                             accum_steps=p.accum_steps, betas=(0.9, 0.95))  # fmt: skip

    def loss_fn(model, batch):
        loss, _, _ = model(batch["image"])
        return loss, {}

    def evaluate(model) -> dict[str, float]:
        device = next(model.parameters()).device
        generator = torch.Generator(device=device).manual_seed(cfg.seed)  # the same masks every epoch
        losses = []
        for batch in torch.utils.data.DataLoader(val, batch_size=64, collate_fn=common.loading.collate):
            losses.append(float(model(batch["image"].to(device), generator=generator)[0]))
        return {"val_loss": sum(losses) / len(losses)}

    result = Trainer(mae, spec, out, loss_fn, common.reader(cfg, "pretrain", train, "pretrain", p.batch_size), evaluate,
                     ("val_loss", "min"), progress=progress).fit()  # fmt: skip
    if result.rank != 0:  # only rank 0 writes
        return encoder_path(cfg.profile)
    mae.load_state_dict(load_checkpoint(result.best_path)["model"])  # the epoch with the lowest validation loss
    save_checkpoint(encoder_path(cfg.profile), mae.encoder, {"spec": dict(common.vit_spec(cfg).__dict__)})
    common.finish(out, cfg, "pretrain", started, val_loss=result.metrics.get("val_loss"), lr=lr,
                  images_per_s=result.images_per_s, steps=result.steps)  # fmt: skip
    return encoder_path(cfg.profile)


def import_published(cfg: Config, out: Path) -> Path:
    """The published foundation model (``pretrain.weights``) as this stage's encoder, in place of MAE pretraining."""
    return common.import_stage(cfg, out, "pretrain.weights", "foundation", encoder_path(cfg.profile), "pretrain")


def encoder_state(cfg: Config, progress: bool = True) -> tuple[ViTSpec, dict[str, torch.Tensor]]:
    """The encoder that fine-tuning starts from (MAE-pretrained here, or imported): its spec and its weights."""
    payload = load_checkpoint(run(cfg, progress))
    return ViTSpec(**payload["extra"]["spec"]), payload["model"]
