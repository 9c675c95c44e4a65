"""FaceAge metrics: mean absolute error (years) overall, per dataset and per decade, signed error, baselines,
and the biological-age gap FaceAge recovers against the one FAHR-Synth planted."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from fahr import predict
from fahr.analysis.headline import Result
from fahr.core.config import Config
from fahr.data.synth import cohorts

DECADES = [f"{d}–{d + 9}" for d in range(0, 90, 10)] + ["90+"]


def decade(age: pd.Series) -> pd.Series:
    """Age decade labels (0–9, …, 80–89, 90+) as an ordered categorical."""
    index = (age // 10).clip(upper=9).astype(int)
    return pd.Categorical(np.asarray(DECADES, dtype=object)[index], categories=DECADES, ordered=True)


def test_table(cfg: Config, models: tuple[str, ...] = ("faceage", "faceage-stage1", "faceage-scratch")) -> pd.DataFrame:
    """The age datasets' test photos with their true age, planted truth, and each model's prediction (years)."""
    photos, truth, _ = cohorts.load(cfg.profile, "age")
    frame = photos[["image_id", "dataset", "split", "age"]].merge(
        truth[["image_id", "age", "bio_gap"]].rename(columns={"age": "true_age"}), on="image_id"
    )
    for model in models:
        pred = predict.table(cfg, model, "age").set_index("image_id")["age_pred"]
        frame[model] = frame["image_id"].map(pred)
    train_mean = frame.loc[frame["split"] == "train", "age"].mean()
    frame["mean-age baseline"] = train_mean
    frame["apparent_age"] = (frame["true_age"] + frame["bio_gap"]).clip(0, 110)
    return frame[frame["split"] == "test"].reset_index(drop=True)


def mae_table(frame: pd.DataFrame, models: list[str]) -> pd.DataFrame:
    """MAE (years) of each model per dataset and overall, with the oracle floor (the face's apparent age)."""
    columns = [*models, "apparent_age"]
    errors = frame[columns].sub(frame["age"], axis=0).abs()
    per = errors.groupby(frame["dataset"]).mean()
    per.loc["all datasets"] = errors.mean()
    per.insert(0, "photos", frame.groupby("dataset").size().reindex(per.index).fillna(len(frame)).astype(int))
    return per.rename(columns={"apparent_age": "oracle (apparent age)"}).round(2)


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


def gap_recovery(frame: pd.DataFrame, model: str = "faceage") -> dict[str, float]:
    """How well FaceAge's gap (prediction − chronological age) tracks the planted biological-age gap."""
    gap = frame[model] - frame["true_age"]
    fit = stats.linregress(frame["bio_gap"], gap)
    rho = stats.spearmanr(frame["bio_gap"], gap).statistic
    return {"pearson r": float(fit.rvalue), "spearman rho": float(rho), "slope": float(fit.slope),
            "slope 95% CI low": float(fit.slope - 1.96 * fit.stderr),
            "slope 95% CI high": float(fit.slope + 1.96 * fit.stderr), "photos": int(len(frame))}  # fmt: skip


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
    return f"Range of decade MAEs: {'; '.join(parts)}. Most even across the lifespan: **`{evenest}`**."


def headline(table: pd.DataFrame, spread: pd.DataFrame, gap: dict[str, float], efficiency: pd.DataFrame) -> list:
    """The FaceAge chapter's numbers for the reproduction report (``Result`` each)."""
    overall = table.loc["all datasets"]
    oracle = float(overall["oracle (apparent age)"])
    out = [
        Result("faceage.mae", "FaceAge test MAE, all datasets", float(overall["faceage"]), "years", oracle=oracle),
        Result("faceage.mae.scratch", "FaceAge from scratch, test MAE", float(overall["faceage-scratch"]), "years",
               oracle=oracle),
        Result("faceage.mae.stage1", "FaceAge stage 1 alone, test MAE", float(overall["faceage-stage1"]), "years",
               oracle=oracle),
        Result("faceage.mae.mean_baseline", "mean-age baseline, test MAE", float(overall["mean-age baseline"]),
               "years", oracle=oracle),
        Result("faceage.gap_slope", "FaceAge gap on planted biological-age gap, slope", gap["slope"], "",
               lower=gap["slope 95% CI low"], upper=gap["slope 95% CI high"], planted=1.0),
    ]  # fmt: skip
    for dataset, row in table.drop(index="all datasets").iterrows():
        out.append(Result(f"faceage.mae.{dataset}", f"FaceAge test MAE, {dataset}", float(row["faceage"]), "years",
                          oracle=float(row["oracle (apparent age)"])))  # fmt: skip
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
        out.append(Result(f"efficiency.facesurvival.{share}.{arm}", f"FaceSurvival val C, {share} of labels, {arm}",
                          float(row["FaceSurvival val C"]), ""))  # fmt: skip
    return out
