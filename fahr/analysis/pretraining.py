"""What MAE pretraining gives: loss curves, masked-face reconstructions, a linear probe of age on frozen
features, and the data-efficiency curve (fine-tuning on a share of the labels, pretrained against scratch)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import torch
from sklearn.linear_model import RidgeCV

from fahr.analysis import cohort
from fahr.core.config import Config
from fahr.core.runtime import load_checkpoint
from fahr.data import loading
from fahr.data.real import prepare
from fahr.models.mae import MaskedAutoencoder
from fahr.models.vit import build_encoder
from fahr.stats.concordance import harrell
from fahr.train import common, faceage, facesurvival, pretrain
from fahr.train.loop import read_metrics

PROBE_PRETRAINED, PROBE_RANDOM = "MAE-pretrained encoder", "randomly initialised encoder"  # linear_probe rows


def curves(profile: str) -> pd.DataFrame:
    """The pretraining log: one row per log event (train loss by step, validation loss by epoch)."""
    return read_metrics(common.model_dir(profile, pretrain.NAME) / "metrics.jsonl")


def trained_mae(cfg: Config) -> MaskedAutoencoder:
    """The MAE of the epoch with the lowest validation loss."""
    pretrain.run(cfg, progress=False)
    mae = pretrain.build_mae(cfg)
    mae.load_state_dict(load_checkpoint(common.model_dir(cfg.profile, pretrain.NAME) / "best.pt")["model"])
    return mae.eval()


def reconstructions(cfg: Config, n: int = 6) -> dict[str, np.ndarray]:
    """Validation faces of the pretraining corpus: original, masked input, reconstruction, reconstruction
    pasted into the visible patches (each [n, H, W, 3] in 0–1)."""
    table = common.cohort(cfg, "pretrain", "val").head(n)
    images = torch.stack([common.dataset(table, cfg, "eval")[i]["image"] for i in range(len(table))])
    out = trained_mae(cfg).reconstruct(images, generator=torch.Generator().manual_seed(cfg.seed))
    pictures = {"original": images, **{k: out[k] for k in ("masked", "reconstruction", "pasted")}}
    return {k: v.clamp(0, 1).permute(0, 2, 3, 1).numpy() for k, v in pictures.items()}


@torch.no_grad()
def features(encoder: torch.nn.Module, table: pd.DataFrame, cfg: Config) -> np.ndarray:
    """Frozen [CLS] features of every photo of a manifest."""
    loader = torch.utils.data.DataLoader(common.dataset(table, cfg, "eval"), batch_size=128, collate_fn=loading.collate)
    return torch.cat([encoder.eval()(batch["image"]) for batch in loader]).numpy()


def linear_probe(cfg: Config) -> pd.DataFrame:
    """Test MAE (years) of a ridge regression of age on frozen [CLS] features: MAE encoder vs random weights; empty
    when no age dataset is present (real data)."""
    if "age" not in prepare.available(cfg):
        return pd.DataFrame(columns=["test MAE (years)"]).rename_axis("features")
    train, test = common.cohort(cfg, "age", "train"), common.cohort(cfg, "age", "test")
    pretrained = build_encoder(common.vit_spec(cfg))
    pretrained.load_state_dict(torch.load(pretrain.run(cfg, progress=False), weights_only=True)["model"])
    torch.manual_seed(cfg.seed)
    encoders = {PROBE_PRETRAINED: pretrained, PROBE_RANDOM: build_encoder(common.vit_spec(cfg))}
    rows = [{"features": "none (predict the training mean)",
             "test MAE (years)": float(np.abs(test["age"] - train["age"].mean()).mean())}]  # fmt: skip
    for label, encoder in encoders.items():
        ridge = RidgeCV(alphas=np.logspace(-2, 4, 13)).fit(features(encoder, train, cfg), train["age"])
        pred = ridge.predict(features(encoder, test, cfg))
        rows.append({"features": label, "test MAE (years)": float(np.abs(pred - test["age"]).mean())})
    return pd.DataFrame(rows).set_index("features").round(2)


def probe_reading(probe: pd.DataFrame) -> str:
    """A Markdown sentence from ``linear_probe``: how much the MAE-pretrained features change the probe's test
    error (years) against random features of the same shape (negative: pretraining lowers it)."""
    if probe.empty:
        return "No age dataset is present, so the probe was not run."
    change = probe.loc[PROBE_PRETRAINED, "test MAE (years)"] - probe.loc[PROBE_RANDOM, "test MAE (years)"]
    return (
        f"Against random features of the same shape, pretraining changes the probe's error by **{change:+.1f} years**."
    )


def efficiency(cfg: Config) -> pd.DataFrame:
    """Validation FaceAge MAE and FaceSurvival concordance against the share of labelled training data used,
    for the MAE-pretrained encoder and for the same model trained from scratch (FaceSurvival's only where clinical
    cohort A is present)."""
    rows = []
    if cfg.faceage.weights:  # evaluate-only: the published FaceAge is tested, no FaceAge is fine-tuned here
        return pd.DataFrame(columns=["fraction", "encoder", "FaceAge val MAE (years)", "FaceSurvival val C"])
    clinical = "clinical-a" in prepare.available(cfg)
    for fraction in [*cfg.baselines.data_fractions, 1.0]:
        for pretrained in (True, False):
            arm = "MAE-pretrained" if pretrained else "from scratch"
            age = json.loads((faceage.run(cfg, pretrained, fraction, progress=False).parent / "done.json").read_text())
            val_c = float("nan")
            if clinical:
                surv = facesurvival.run(cfg, pretrained, fraction, progress=False)
                val_c = json.loads((surv.parent / "done.json").read_text())["val_c_index"]
            rows.append({"fraction": fraction, "encoder": arm, "FaceAge val MAE (years)": age["stage2_val_mae"],
                         "FaceSurvival val C": val_c})  # fmt: skip
    return pd.DataFrame(rows)


def survival_concordance(cfg: Config) -> pd.DataFrame:
    """FaceSurvival's Harrell C on cohort A's test split and on cohort B, beside the scratch model and, on
    FAHR-Synth, the face-visible oracle (the FaceSurvival chapter's ceiling); empty without both clinical cohorts."""
    models = ("facesurvival", "facesurvival-scratch")
    if not {"clinical-a", "clinical-b"} <= prepare.available(cfg):
        none = pd.MultiIndex.from_tuples([], names=["cohort", "split"])
        return pd.DataFrame(columns=["patients", *models], index=none)
    rows = []
    for name in ("clinical-a", "clinical-b"):
        table = cohort.build(cfg, name, models)
        test = table.split("test")
        row = {"cohort": name, "split": "test", "patients": len(test)}
        for model in models:
            row[model] = harrell(test[model], test["time"], test["event"])
        if table.has_truth:
            row["oracle (face-visible)"] = harrell(test["oracle_face"], test["time"], test["event"])
        rows.append(row)
    return pd.DataFrame(rows).set_index(["cohort", "split"]).round(3)


def describe(cfg: Config) -> str:
    """One Markdown paragraph: the encoder, the MAE recipe, and what the run took."""
    spec, p = common.vit_spec(cfg), cfg.pretrain
    done = common.read_done(cfg.profile, pretrain.NAME)
    return (
        f"Encoder: ViT, {spec.depth} blocks of width {spec.embed_dim}, {spec.num_heads} heads, "
        f"{spec.img_size}×{spec.img_size} pixels in {spec.patch_size}×{spec.patch_size} patches "
        f"({spec.num_patches} tokens). MAE: mask ratio {p.mask_ratio}, decoder {p.decoder_depth}×{p.decoder_dim}, "
        f"normalised-pixel loss, AdamW (0.9, 0.95), weight decay {p.weight_decay}, peak learning rate "
        f"{done['lr']:.2e}, {p.epochs} epochs: {done['steps']} steps at {done['images_per_s']:.0f} images/s "
        f"on `{done['device']}`."
    )
