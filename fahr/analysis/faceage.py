"""FaceAge metrics: mean absolute error (years) overall, per dataset and per decade, signed error, baselines,
and the biological-age gap FaceAge recovers against the one FAHR-Synth planted."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage, stats
from sklearn.linear_model import RidgeCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from fahr.analysis import cohort
from fahr.analysis.headline import Result
from fahr.core.config import Config
from fahr.data import loading
from fahr.stats import conformal
from fahr.train import common

DECADES = [f"{d}–{d + 9}" for d in range(0, 90, 10)] + ["90+"]
ORACLE = "oracle (apparent age)"  # the floor: the face's apparent age as the prediction (FAHR-Synth only)


def decade(age: pd.Series) -> pd.Series:
    """Age decade labels (0–9, …, 80–89, 90+) as an ordered categorical."""
    index = (age // 10).clip(upper=9).astype(int)
    return pd.Categorical(np.asarray(DECADES, dtype=object)[index], categories=DECADES, ordered=True)


# Regions of an aligned crop (fractions of its height and width; eyes at 0.46, mouth at 0.82 of the template)
REGIONS = {"hair": (0.02, 0.14, 0.25, 0.75), "upper face": (0.22, 0.36, 0.30, 0.70),
           "under the eyes": (0.50, 0.58, 0.25, 0.75), "left cheek": (0.58, 0.75, 0.15, 0.35),
           "right cheek": (0.58, 0.75, 0.65, 0.85)}  # fmt: skip
HANDMADE = "hand-made baseline"


def _region(x: np.ndarray, name: str) -> np.ndarray:
    top, bottom, left, right = REGIONS[name]
    h, w = x.shape[1:3]
    return x[:, int(top * h) : int(bottom * h), int(left * w) : int(right * w)]


STATISTICS_CHUNK = 512


def image_statistics(images: np.ndarray) -> pd.DataFrame:
    """A handful of named statistics of aligned face crops ``[N, H, W, 3]`` (uint8 or [0, 1]) that track age in
    any face: hair brightness and saturation (greying), the high-frequency energy of the hairline and forehead
    (recession, lines) and of the cheeks (texture, spots), the contrast of forehead to under-eye skin (bags,
    dark circles) and skin saturation."""
    images = np.asarray(images)
    scale = 255.0 if images.dtype == np.uint8 or images.max() > 1.0 else 1.0
    parts = [_statistics(images[i : i + STATISTICS_CHUNK], scale) for i in range(0, len(images), STATISTICS_CHUNK)]
    return pd.concat(parts, ignore_index=True)


def _statistics(images: np.ndarray, scale: float) -> pd.DataFrame:
    rgb = images.astype(np.float64) / scale
    luminance = rgb @ np.array([0.299, 0.587, 0.114])  # [N, H, W]
    saturation = np.ptp(rgb, axis=3)
    # each crop's own Laplacian (second differences along its rows and columns, edges repeated)
    second = [ndimage.correlate1d(luminance, [1.0, -2.0, 1.0], axis=a, mode="nearest") for a in (1, 2)]
    detail = np.abs(second[0] + second[1])

    def mean(x: np.ndarray, region: str) -> np.ndarray:
        return _region(x, region).mean(axis=(1, 2))

    return pd.DataFrame({
        "hair brightness": mean(luminance, "hair"),
        "hair saturation": mean(saturation, "hair"),
        "hairline and forehead high-frequency energy": mean(detail, "upper face"),
        "cheek high-frequency energy": (mean(detail, "left cheek") + mean(detail, "right cheek")) / 2,
        "eye-to-forehead contrast": mean(luminance, "upper face") - mean(luminance, "under the eyes"),
        "skin saturation": (mean(saturation, "left cheek") + mean(saturation, "right cheek")) / 2,
    })  # fmt: skip


def handmade_features(cfg: Config, photos: pd.DataFrame) -> pd.DataFrame:
    """``image_statistics`` of every photo of a manifest (read at the profile's size)."""
    size = cfg.synth.image_size
    return image_statistics(np.stack([loading.read_image(Path(p), size).permute(1, 2, 0).numpy()
                                      for p in photos["path"]]))  # fmt: skip


def handmade_baseline(cfg: Config, photos: pd.DataFrame) -> pd.Series:
    """Age (years) predicted for every photo of ``photos`` by a ridge regression on ``image_statistics``, fitted on
    its training split: how far a few hand-made image statistics get without any learned features."""
    features = handmade_features(cfg, photos)
    train = (photos["split"] == "train").to_numpy()
    fit = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-3, 3, 13)))
    fit.fit(features[train], photos.loc[train, "age"])
    return pd.Series(fit.predict(features), index=photos.index)


NETWORKS = ("faceage", "faceage-stage1", "faceage-scratch")  # the ViTs the chapter trains and compares


def networks(cfg: Config) -> tuple[str, ...]:
    """The FaceAge networks of this build: the three trained here, or, with ``faceage.weights``, the published model
    and the from-scratch baseline (evaluate-only: the published model is not fine-tuned here, so it has no stage 1)."""
    return ("faceage", "faceage-scratch") if cfg.faceage.weights else NETWORKS


def models(cfg: Config) -> list[str]:
    """Every column the error tables compare: the networks, the mean-age and the hand-made baselines."""
    return [*networks(cfg), "mean-age baseline", HANDMADE]


def evaluated_sentence(cfg: Config) -> str:
    """Markdown for the top of the chapter: which FaceAge it evaluates (empty when it trains its own)."""
    if not cfg.faceage.weights:
        return ""
    from pathlib import Path

    text = (f"**Evaluate-only.** This build tests the published FaceAge model `{Path(cfg.faceage.weights).name}` "
            "(`faceage.weights`; its SHA-256 is in the Reproducibility chapter) instead of fine-tuning one: the "
            "tables compare it with the same recipe trained here from random weights and with the mean-age and "
            "hand-made baselines. It has no stage-1 model, and the data-efficiency section, which fine-tunes FaceAge "
            "on shares of the labels, is left empty.")  # fmt: skip
    if cfg.data.source == "synth":
        text += (" A model trained on photographs of real faces is being tested on FAHR-Synth's rendered ones: "
                 "its error here measures how far the two worlds differ, not how well it reads ageing.")  # fmt: skip
    return text


def test_table(cfg: Config, models: tuple[str, ...] | None = None, baselines: bool = True) -> pd.DataFrame:
    """The age datasets' test photos: labelled age, dataset, sex, race, each model's prediction (default: this
    build's ``networks``) and, with ``baselines``, the mean-age and hand-made baselines (years); on FAHR-Synth also
    the true age, the biological-age gap and the apparent age."""
    table = cohort.build(cfg, "age", models or networks(cfg))
    if not baselines:
        return table.frame[table.frame["split"] == "test"].reset_index()
    frame = table.frame.assign(**{"mean-age baseline": table.split("train")["age"].mean()})
    photos = common.cohort(cfg, "age").set_index("image_id").loc[frame.index]
    used = photos["split"].isin(("train", "test"))
    frame.loc[used, HANDMADE] = handmade_baseline(cfg, photos[used])
    return frame[frame["split"] == "test"].reset_index()


def bootstrap_mean(values: np.ndarray, resamples: int, seed: int) -> tuple[float, float]:
    """Percentile 95 % interval of the mean of ``values`` (vectorised resampling)."""
    idx = np.random.default_rng(seed).integers(0, len(values), size=(resamples, len(values)))
    means = np.asarray(values)[idx].mean(axis=1)
    return float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))


def bootstrap_mae(errors: np.ndarray, resamples: int, seed: int) -> tuple[float, float]:
    """Percentile 95 % interval of the mean absolute error."""
    return bootstrap_mean(np.abs(errors), resamples, seed)


# the models FaceAge is compared with, photo by photo (column → the key of its recorded difference)
COMPARED = {"faceage-scratch": "scratch", "mean-age baseline": "mean_baseline", HANDMADE: "handmade_baseline"}


def mae_differences(frame: pd.DataFrame, resamples: int, seed: int) -> pd.DataFrame:
    """FaceAge's test MAE minus each compared model's (``COMPARED``) on the same photos (years; below 0: FaceAge
    errs less), with a paired bootstrap 95 % interval over photos (the photos both models were run on)."""
    rows = []
    for column, key in COMPARED.items():
        if column not in frame.columns:
            continue
        both = frame[["faceage", column, "age"]].dropna()
        d = ((both["faceage"] - both["age"]).abs() - (both[column] - both["age"]).abs()).to_numpy()
        lower, upper = bootstrap_mean(d, resamples, seed)
        rows.append({"compared with": column, "key": key, "photos": len(d), "MAE difference": d.mean(),
                     "lower": lower, "upper": upper})  # fmt: skip
    return pd.DataFrame(rows, columns=["compared with", "key", "photos", "MAE difference", "lower", "upper"])


def intervals(frame: pd.DataFrame, model: str, resamples: int, seed: int) -> pd.DataFrame:
    """``model``'s test MAE (years) with a bootstrap 95 % interval, per dataset, overall and per decade of age."""
    error = (frame[model] - frame["age"]).to_numpy()
    groups = [("dataset", d, (frame["dataset"] == d).to_numpy()) for d in frame["dataset"].unique()]
    groups.append(("dataset", "all datasets", np.ones(len(frame), bool)))
    decades = np.asarray(decade(frame["age"]), dtype=object)
    groups += [("decade", d, decades == d) for d in DECADES if (decades == d).any()]
    rows = []
    for by, level, mask in groups:
        lo, hi = bootstrap_mae(error[mask], resamples, seed)
        rows.append({"by": by, "group": level, "photos": int(mask.sum()), "MAE": float(np.abs(error[mask]).mean()),
                     "lower": lo, "upper": hi})  # fmt: skip
    return pd.DataFrame(rows).set_index(["by", "group"])


def mae_table(frame: pd.DataFrame, models: list[str]) -> pd.DataFrame:
    """MAE (years) of each model per dataset and overall; on FAHR-Synth with the oracle floor (the apparent age)."""
    columns = [*models, *(["apparent_age"] if "apparent_age" in frame.columns else [])]
    errors = frame[columns].sub(frame["age"], axis=0).abs()
    per = errors.groupby(frame["dataset"]).mean()
    per.loc["all datasets"] = errors.mean()
    per.insert(0, "photos", frame.groupby("dataset").size().reindex(per.index).fillna(len(frame)).astype(int))
    return per.rename(columns={"apparent_age": ORACLE}).round(2)


def by_decade(frame: pd.DataFrame, models: list[str]) -> pd.DataFrame:
    """MAE and mean signed error (prediction − age, years) per age decade, long format for plotting."""
    decades = decade(frame["age"])
    rows = []
    for model in models:
        err = frame[model] - frame["age"]
        grouped = err.groupby(decades, observed=True)
        for name, values in grouped:
            rows.append({"model": model, "decade": name, "photos": len(values), "MAE": values.abs().mean(),
                         "signed error": values.mean()})  # fmt: skip
    return pd.DataFrame(rows)


def calibration(frame: pd.DataFrame, model: str = "faceage") -> dict[str, float]:
    """The slope of ``model``'s prediction on the labelled age over the test photos (least squares), with its
    95 % interval: 1 for a model that follows age year for year, below 1 for one shrunk toward the mean (which
    moves less under any change of the face, and so must not pass a robustness test for it)."""
    fit = stats.linregress(frame["age"].astype(float), frame[model].astype(float))
    half = float(stats.t.ppf(0.975, len(frame) - 2) * fit.stderr)
    return {"value": float(fit.slope), "lower": float(fit.slope) - half, "upper": float(fit.slope) + half}


def gap_recovery(frame: pd.DataFrame, model: str = "faceage") -> dict[str, float] | None:
    """How well FaceAge's gap (prediction − chronological age) tracks the planted biological-age gap; None on real
    data, which has no planted gap."""
    if "bio_gap" not in frame.columns:
        return None
    gap = frame[model] - frame["true_age"]
    fit = stats.linregress(frame["bio_gap"], gap)
    rho = stats.spearmanr(frame["bio_gap"], gap).statistic
    return {"pearson r": float(fit.rvalue), "spearman rho": float(rho), "slope": float(fit.slope),
            "slope 95% CI low": float(fit.slope - 1.96 * fit.stderr),
            "slope 95% CI high": float(fit.slope + 1.96 * fit.stderr), "photos": int(len(frame))}  # fmt: skip


def decade_table(decades: pd.DataFrame) -> pd.DataFrame:
    """``by_decade`` as one MAE column per model (years), with the number of photos in each decade."""
    table = decades.pivot(index="decade", columns="model", values="MAE")
    return table.assign(photos=decades.groupby("decade", observed=True)["photos"].first())


def lifespan(decades: pd.DataFrame) -> pd.DataFrame:
    """Per model: overall mean of the decade MAEs, the best and worst decade, and the spread between them."""
    mae = decades.pivot(index="decade", columns="model", values="MAE")
    table = pd.DataFrame({
        "mean of decade MAEs": mae.mean(), "best decade MAE": mae.min(), "worst decade MAE": mae.max(),
        "worst decade": mae.idxmax(), "spread (worst − best)": mae.max() - mae.min(),
    })  # fmt: skip
    return table.round(2)


def lifespan_sentence(table: pd.DataFrame) -> str:
    """A Markdown sentence comparing how evenly the models hold up across the lifespan (from ``lifespan``)."""
    evenest = table["spread (worst − best)"].idxmin()
    parts = [f"`{m}` {r['best decade MAE']:.1f}–{r['worst decade MAE']:.1f} y (worst {r['worst decade']})"
             for m, r in table.iterrows()]  # fmt: skip
    even = f" Most even across the lifespan: **`{evenest}`**." if len(table) > 1 else ""
    return f"Range of decade MAEs: {'; '.join(parts)}.{even}"


def summary_sentence(table: pd.DataFrame) -> str:
    """The overall test MAE of each model, in one Markdown sentence (from ``mae_table``)."""
    overall = table.loc["all datasets"]
    floor = f"; the oracle floor is {overall[ORACLE]:.2f}" if ORACLE in table.columns else ""
    handmade = ""
    if HANDMADE in table.columns:
        margin = overall[HANDMADE] - overall["faceage"]
        handmade = (f", the hand-made image statistics {overall[HANDMADE]:.2f} (FaceAge "
                    f"{'better' if margin > 0 else 'worse'} by {abs(margin):.2f} years)")  # fmt: skip
    labels = {"faceage-scratch": "from scratch", "faceage-stage1": "stage 1 alone"}
    others = "".join(f", {label} {overall[m]:.2f}" for m, label in labels.items() if m in overall)
    return (
        f"Test MAE over all datasets: FaceAge **{overall['faceage']:.2f} years**{others}, the mean "
        f"{overall['mean-age baseline']:.2f}{handmade}{floor}."
    )


def gap_sentence(gap: dict[str, float] | None) -> str:
    """The recovery of the planted biological-age gap in one Markdown sentence (from ``gap_recovery``)."""
    if gap is None:
        return "Real photos carry no planted biological-age gap, so its recovery cannot be measured on them."
    return (
        f"Pearson r = **{gap['pearson r']:.2f}**, slope **{gap['slope']:.2f}** "
        f"(95 % CI {gap['slope 95% CI low']:.2f} to {gap['slope 95% CI high']:.2f}) over {gap['photos']} test photos."
    )


def headline(
    table: pd.DataFrame,
    spread: pd.DataFrame,
    gap: dict[str, float] | None,
    efficiency: pd.DataFrame,
    differences: pd.DataFrame | None = None,
    slope: dict[str, float] | None = None,
) -> list[Result]:
    """The FaceAge chapter's numbers for the reproduction report (``Result`` each); the oracle and the planted
    gap only on FAHR-Synth; ``differences`` (``mae_differences``) as ``faceage.mae_vs.<model>``; ``slope``
    (``calibration``) as ``faceage.calibration_slope``."""
    overall = table.loc["all datasets"]
    oracle = float(overall[ORACLE]) if ORACLE in table.columns else None
    out = [
        Result("faceage.mae", "FaceAge test MAE, all datasets", float(overall["faceage"]), "years", oracle=oracle),
        *(Result(f"faceage.mae.{key}", f"FaceAge {label}, test MAE", float(overall[m]), "years", oracle=oracle)
          for m, key, label in (("faceage-scratch", "scratch", "from scratch"), ("faceage-stage1", "stage1",
                                                                              "stage 1 alone")) if m in overall),
        Result("faceage.mae.mean_baseline", "mean-age baseline, test MAE", float(overall["mean-age baseline"]),
               "years", oracle=oracle),
        *([Result("faceage.mae.handmade_baseline", "hand-made image statistics, test MAE",
                  float(overall[HANDMADE]), "years", oracle=oracle)] if HANDMADE in table.columns else []),
    ]  # fmt: skip
    if slope is not None:
        out.append(Result("faceage.calibration_slope", "FaceAge on labelled age, slope (test photos)", slope["value"],
                          "", lower=slope["lower"], upper=slope["upper"]))  # fmt: skip
    for _, row in differences.iterrows() if differences is not None else ():
        out.append(Result(f"faceage.mae_vs.{row['key']}", f"FaceAge test MAE minus {row['compared with']}'s, paired",
                          float(row["MAE difference"]), "years", lower=float(row["lower"]),
                          upper=float(row["upper"])))  # fmt: skip
    if gap is not None:
        out.append(Result("faceage.gap_slope", "FaceAge gap on planted biological-age gap, slope", gap["slope"], "",
                          lower=gap["slope 95% CI low"], upper=gap["slope 95% CI high"], planted=1.0))  # fmt: skip
    for dataset, row in table.drop(index="all datasets").iterrows():
        out.append(Result(f"faceage.mae.{dataset}", f"FaceAge test MAE, {dataset}", float(row["faceage"]), "years",
                          oracle=float(row[ORACLE]) if oracle is not None else None))  # fmt: skip
    for model, row in spread.iterrows():
        out.append(Result(f"lifespan.{model}.mean_decade_mae", f"{model}: mean of the decade MAEs",
                          float(row["mean of decade MAEs"]), "years"))  # fmt: skip
        out.append(Result(f"lifespan.{model}.worst_decade_mae", f"{model}: worst decade MAE",
                          float(row["worst decade MAE"]), "years"))  # fmt: skip
    for _, row in efficiency.iterrows():
        arm = "pretrained" if row["encoder"] == "MAE-pretrained" else "scratch"
        share = f"{100 * row['fraction']:g}%"
        out.append(Result(f"efficiency.faceage.{share}.{arm}", f"FaceAge val MAE, {share} of labels, {arm}",
                          float(row["FaceAge val MAE (years)"]), "years"))  # fmt: skip
        if pd.notna(row["FaceSurvival val C"]):  # absent without clinical cohort A (real data)
            value = float(row["FaceSurvival val C"])
            out.append(Result(f"efficiency.facesurvival.{share}.{arm}", f"FaceSurvival val C, {share} of labels, {arm}",
                              value, ""))  # fmt: skip
    return out


def interval_coverage(test: pd.DataFrame, calibration: conformal.Calibration) -> pd.DataFrame:
    """How often FaceAge's split-conformal interval (``fahr.predict.calibrate``: fitted on the validation photos)
    holds the labelled age of a test photo, per decade of age and over all, with the mean width (years)."""
    return conformal.coverage(test["faceage"].to_numpy(), test["age"].to_numpy(), calibration)


def interval_sentence(covered: pd.DataFrame, calibration: conformal.Calibration) -> str:
    """A Markdown sentence from ``interval_coverage``."""
    level, overall = 1 - calibration.alpha, covered.loc["all"]
    decades = covered.drop(index="all")
    low = decades["coverage"].idxmin()
    return (f"The {level:.0%} intervals hold the labelled age of **{overall['coverage']:.1%}** of the "
            f"{int(overall['photos'])} test photos (mean width {overall['mean width (years)']:.1f} years), from "
            f"{decades['coverage'].min():.0%} ({low} years) to {decades['coverage'].max():.0%} by decade. They are "
            f"fitted on {sum(calibration.photos)} validation photos, "
            + (f"in {len(calibration.halfwidths)} bands of the predicted age, so that the young and the old get "
               "intervals of their own width" if len(calibration.halfwidths) > 1 else
               "in one band (too few validation photos for a width per decade of the predicted age)")
            + "; `fahr predict` writes them beside each age (`age_lower`, `age_upper`).")  # fmt: skip


def coverage_result(covered: pd.DataFrame, calibration: conformal.Calibration) -> Result:
    return Result("faceage.interval_coverage", f"FaceAge {1 - calibration.alpha:.0%} interval coverage, test photos",
                  float(covered.loc["all", "coverage"]), "share")  # fmt: skip
