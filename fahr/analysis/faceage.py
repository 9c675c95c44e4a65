"""FaceAge metrics: mean absolute error (years) overall, per dataset and per decade, signed error, baselines,
and the biological-age gap FaceAge recovers against the one FAHR-Synth planted."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from fahr.analysis import cohort
from fahr.analysis.headline import Result
from fahr.core.config import Config

DECADES = [f"{d}–{d + 9}" for d in range(0, 90, 10)] + ["90+"]
ORACLE = "oracle (apparent age)"  # the floor: the face's apparent age as the prediction (FAHR-Synth only)


def decade(age: pd.Series) -> pd.Series:
    """Age decade labels (0–9, …, 80–89, 90+) as an ordered categorical."""
    index = (age // 10).clip(upper=9).astype(int)
    return pd.Categorical(np.asarray(DECADES, dtype=object)[index], categories=DECADES, ordered=True)


def test_table(cfg: Config, models: tuple[str, ...] = ("faceage", "faceage-stage1", "faceage-scratch")) -> pd.DataFrame:
    """The age datasets' test photos: labelled age, dataset, sex, race, each model's prediction and the mean-age
    baseline (years); on FAHR-Synth also the true age, the biological-age gap and the apparent age."""
    table = cohort.build(cfg, "age", models)
    frame = table.frame.assign(**{"mean-age baseline": table.split("train")["age"].mean()})
    return frame[frame["split"] == "test"].reset_index()


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
    return f"Range of decade MAEs: {'; '.join(parts)}. Most even across the lifespan: **`{evenest}`**."


def summary_sentence(table: pd.DataFrame) -> str:
    """The overall test MAE of each model, in one Markdown sentence (from ``mae_table``)."""
    overall = table.loc["all datasets"]
    floor = f"; the oracle floor is {overall[ORACLE]:.2f}" if ORACLE in table.columns else ""
    return (
        f"Test MAE over all datasets: FaceAge **{overall['faceage']:.2f} years**, from scratch "
        f"{overall['faceage-scratch']:.2f}, stage 1 alone {overall['faceage-stage1']:.2f}, the mean "
        f"{overall['mean-age baseline']:.2f}{floor}."
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
    table: pd.DataFrame, spread: pd.DataFrame, gap: dict[str, float] | None, efficiency: pd.DataFrame
) -> list[Result]:
    """The FaceAge chapter's numbers for the reproduction report (``Result`` each); the oracle and the planted
    gap only on FAHR-Synth."""
    overall = table.loc["all datasets"]
    oracle = float(overall[ORACLE]) if ORACLE in table.columns else None
    out = [
        Result("faceage.mae", "FaceAge test MAE, all datasets", float(overall["faceage"]), "years", oracle=oracle),
        Result("faceage.mae.scratch", "FaceAge from scratch, test MAE", float(overall["faceage-scratch"]), "years",
               oracle=oracle),
        Result("faceage.mae.stage1", "FaceAge stage 1 alone, test MAE", float(overall["faceage-stage1"]), "years",
               oracle=oracle),
        Result("faceage.mae.mean_baseline", "mean-age baseline, test MAE", float(overall["mean-age baseline"]),
               "years", oracle=oracle),
    ]  # fmt: skip
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
        out.append(Result(f"efficiency.facesurvival.{share}.{arm}", f"FaceSurvival val C, {share} of labels, {arm}",
                          float(row["FaceSurvival val C"]), ""))  # fmt: skip
    return out
