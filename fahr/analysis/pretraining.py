"""What MAE pretraining gives: loss curves, masked-face reconstructions, a linear probe of age on frozen
features, and the data-efficiency curve (fine-tuning on a share of the labels, pretrained against scratch)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from sklearn.linear_model import RidgeCV
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from fahr.analysis import cohort
from fahr.analysis import faceage as age_analysis
from fahr.analysis.headline import Result
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


@dataclass
class ProbeFeatures:
    """Frozen features of the age datasets' training and test photos: the MAE-pretrained encoder's, a randomly
    initialised encoder's of the same shape, and the hand-made image statistics
    (``fahr.analysis.faceage.image_statistics``)."""

    train: pd.DataFrame
    test: pd.DataFrame
    features: dict[str, tuple[np.ndarray, np.ndarray]]  # name -> (train, test)


HANDMADE_FEATURES = "hand-made image statistics"


def probe_features(cfg: Config) -> ProbeFeatures | None:
    """``ProbeFeatures`` of the profile's age datasets; None when no age dataset is present (real data)."""
    if "age" not in prepare.available(cfg):
        return None
    train, test = common.cohort(cfg, "age", "train"), common.cohort(cfg, "age", "test")
    pretrained = build_encoder(common.vit_spec(cfg))
    pretrained.load_state_dict(torch.load(pretrain.run(cfg, progress=False), weights_only=True)["model"])
    torch.manual_seed(cfg.seed)
    encoders = {PROBE_PRETRAINED: pretrained, PROBE_RANDOM: build_encoder(common.vit_spec(cfg))}
    out = {name: (features(e, train, cfg), features(e, test, cfg)) for name, e in encoders.items()}
    out[HANDMADE_FEATURES] = (age_analysis.handmade_features(cfg, train).to_numpy(),
                              age_analysis.handmade_features(cfg, test).to_numpy())  # fmt: skip
    return ProbeFeatures(train, test, out)


def _ridge() -> Pipeline:
    return make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-2, 4, 13)))


def linear_probe(cfg: Config, probed: ProbeFeatures | None = None) -> pd.DataFrame:
    """Test MAE (years) of a ridge regression of age on frozen [CLS] features: MAE encoder vs random weights; empty
    when no age dataset is present (real data). ``probed``: the features, if ``probe_features`` already ran."""
    probed = probed if probed is not None else probe_features(cfg)
    if probed is None:
        return pd.DataFrame(columns=["test MAE (years)"]).rename_axis("features")
    train, test = probed.train, probed.test
    rows = [{"features": "none (predict the training mean)",
             "test MAE (years)": float(np.abs(test["age"] - train["age"].mean()).mean())}]  # fmt: skip
    for label in (PROBE_PRETRAINED, PROBE_RANDOM):
        x_train, x_test = probed.features[label]
        pred = RidgeCV(alphas=np.logspace(-2, 4, 13)).fit(x_train, train["age"]).predict(x_test)
        rows.append({"features": label, "test MAE (years)": float(np.abs(pred - test["age"]).mean())})
    return pd.DataFrame(rows).set_index("features").round(2)


PROBE_SHARES = (0.05, 0.1, 0.3, 1.0)  # shares of the labelled training people the probes learn from
PROBE_SUBSETS = 3  # random subsets of people per share (their errors averaged photo by photo)


def share_label(share: float) -> str:
    return f"{100 * share:g}%"


def label_efficiency(cfg: Config, probed: ProbeFeatures | None, shares: tuple[float, ...] = PROBE_SHARES,
                     subsets: int = PROBE_SUBSETS) -> tuple[pd.DataFrame, pd.DataFrame]:  # fmt: skip
    """The foundation thesis on test data: ridge probes of age on each kind of frozen features (pretrained, random,
    hand-made), learned from ``shares`` of the training people (``subsets`` random draws of people each, the same
    people for every kind of features), judged on the whole test split. Returns the test MAE per share and kind
    of features, and per share the paired difference of the pretrained features' test error from each other
    kind's (photo by photo, each photo's error averaged over the subsets) with a paired bootstrap 95 % interval
    that resamples test people (each person's photos together)."""
    columns = ["share", "features", "people", "test MAE (years)"]
    diff_columns = ["share", "compared with", "difference", "lower", "upper"]
    if probed is None:
        return pd.DataFrame(columns=columns), pd.DataFrame(columns=diff_columns)
    train, test = probed.train.reset_index(drop=True), probed.test
    people = train["subject_id"].unique()
    rng = np.random.default_rng([cfg.seed, 0x50524F4245])
    rows, diffs = [], []
    for share in shares:
        draws = [people] if share >= 1 else [rng.choice(people, max(2, round(share * len(people))), replace=False)
                                             for _ in range(subsets)]  # fmt: skip
        errors = {}
        for name, (x_train, x_test) in probed.features.items():
            per = []
            for chosen in draws:
                rows_in = train["subject_id"].isin(chosen).to_numpy()
                fit = _ridge().fit(x_train[rows_in], train.loc[rows_in, "age"])
                per.append(np.abs(fit.predict(x_test) - test["age"].to_numpy()))
            errors[name] = np.mean(per, axis=0)
            rows.append({"share": share, "features": name, "people": len(draws[0]),
                         "test MAE (years)": float(errors[name].mean())})  # fmt: skip
        for other in (PROBE_RANDOM, HANDMADE_FEATURES):
            d = errors[PROBE_PRETRAINED] - errors[other]
            # resampled by person: one person's photos share a face, and their errors are not independent
            per_person = pd.Series(d).groupby(test["subject_id"].to_numpy()).mean().to_numpy()
            lower, upper = age_analysis.bootstrap_mean(per_person, cfg.statistics.bootstrap, cfg.seed)
            diffs.append({"share": share, "compared with": other, "difference": float(d.mean()), "lower": lower,
                          "upper": upper})  # fmt: skip
    return pd.DataFrame(rows, columns=columns), pd.DataFrame(diffs, columns=diff_columns)


FOUNDATION_KEYS = {PROBE_RANDOM: "vs_random", HANDMADE_FEATURES: "vs_handmade"}


def efficiency_results(table: pd.DataFrame, diffs: pd.DataFrame) -> list[Result]:
    """The label-efficiency numbers for the reproduction report: per share, the probes' test MAE and the paired
    differences (``foundation.faceage.<share>.vs_random`` and ``.vs_handmade``)."""
    out = []
    names = {PROBE_PRETRAINED: "pretrained", PROBE_RANDOM: "random", HANDMADE_FEATURES: "handmade"}
    for _, r in table.iterrows():
        out.append(Result(f"foundation.faceage.{share_label(r['share'])}.{names[r['features']]}",
                          f"age probe on {r['features']}, {share_label(r['share'])} of the people, test MAE",
                          float(r["test MAE (years)"]), "years"))  # fmt: skip
    for _, r in diffs.iterrows():
        out.append(Result(f"foundation.faceage.{share_label(r['share'])}.{FOUNDATION_KEYS[r['compared with']]}",
                          f"age probe, {share_label(r['share'])} of the people: pretrained minus {r['compared with']}, "
                          "test MAE, paired", float(r["difference"]), "years", lower=float(r["lower"]),
                          upper=float(r["upper"])))  # fmt: skip
    return out


def efficiency_reading(diffs: pd.DataFrame, judged: float) -> str:
    """A Markdown sentence from ``label_efficiency``'s differences at the ``judged`` share (the reproduction
    report's ``foundation_share`` rule) and at 100 %."""
    if diffs.empty:
        return "No age dataset is present, so the label-efficiency probes were not run."

    def at(share: float) -> str:
        part = diffs[diffs["share"] == share]
        return ", ".join(f"{r['difference']:+.2f} y ({r['lower']:+.2f} to {r['upper']:+.2f}) against "
                         f"{r['compared with']}" for _, r in part.iterrows())  # fmt: skip

    return (
        f"With {share_label(judged)} of the labelled people, the probe on pretrained features errs by "
        f"{at(judged)}; with all of them by {at(1.0)} (test photos, paired: below 0, pretraining helps). "
        f"The reproduction report judges the foundation claim at {share_label(judged)}."
    )


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
