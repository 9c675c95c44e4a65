"""Robustness: how much a model's output moves when the same face is photographed differently.

Agreement statistics for paired photos (a reference and the same person under a condition at a strength):
mean shift, mean absolute change, Bland–Altman bias and 95 % limits of agreement, intraclass correlation and
Spearman rank stability (``fahr.stats.agreement``), and dose–response tables. For FAHR-Synth the planted truth
says the true age never changed, and the renderer's cue model says how much younger a cosmetic operation made
the face *look* (``surgery``). The image perturbations a real photo set uses are ``fahr.data.perturb``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from fahr import predict
from fahr.analysis.headline import Result
from fahr.data.perturb import WARPS
from fahr.data.synth import cohorts, truth, world
from fahr.stats.agreement import bland_altman, icc, mean_ci, spearman_stability
from fahr.train import common

CONDITIONS = tuple(world.PERTURBATIONS)
SURGERY = ("facelift", "blepharoplasty")
PAIR_COLUMNS = ("pair_id", "condition", "strength")


# -------------------------------------------------------------------------------------------- paired tables


def paired(table: pd.DataFrame, value: str, keep: Sequence[str] = ()) -> pd.DataFrame:
    """One row per perturbed photo with its person's reference value beside it.

    ``table`` has one row per photo: ``pair_id``, ``condition`` (``"reference"`` or a condition of
    ``CONDITIONS``), ``strength`` and ``value``. Returns pair_id, condition, strength, ``reference``,
    ``perturbed``, ``difference`` (perturbed − reference) and the ``keep`` columns of the perturbed photo.
    Raises ValueError for unknown conditions, people without exactly one reference photo and repeated photos.
    """
    missing = [c for c in (*PAIR_COLUMNS, value, *keep) if c not in table.columns]
    if missing:
        raise ValueError(f"the table lacks the columns {missing} (it has {list(table.columns)})")
    unknown = sorted(set(table["condition"]) - {"reference", *CONDITIONS})
    if unknown:
        raise ValueError(f"unknown conditions {unknown}; known: reference, {', '.join(CONDITIONS)}")
    is_ref = table["condition"] == "reference"
    refs = table.loc[is_ref, ["pair_id", value]]
    repeated = refs["pair_id"][refs["pair_id"].duplicated()].unique().tolist()
    if repeated:
        raise ValueError(f"mismatched pairs: people with more than one reference photo: {repeated[:10]}")
    perturbed = table.loc[~is_ref, [*PAIR_COLUMNS, value, *keep]]
    orphans = sorted(set(perturbed["pair_id"]) - set(refs["pair_id"]))
    if orphans:
        raise ValueError(f"mismatched pairs: perturbed photos without a reference photo for {orphans[:10]}")
    twice = perturbed.duplicated(list(PAIR_COLUMNS))
    if twice.any():
        raise ValueError(
            f"mismatched pairs: repeated (pair, condition, strength) rows, e.g. {perturbed[twice].iloc[0]}"
        )
    out = perturbed.rename(columns={value: "perturbed"}).merge(
        refs.rename(columns={value: "reference"}), on="pair_id", how="left"
    )
    out["difference"] = out["perturbed"] - out["reference"]
    return out[[*PAIR_COLUMNS, "reference", "perturbed", "difference", *keep]].reset_index(drop=True)


def summary(pairs: pd.DataFrame, scale: float = 1.0) -> pd.DataFrame:
    """Per condition and strength: photos, mean shift (its 95 % CI), mean |change|, Bland–Altman bias and limits,
    ICC(2,1) absolute agreement, ICC(3,1) consistency and Spearman rank stability. Shifts, changes and limits
    are divided by ``scale`` (1 keeps the model's unit; the SD of the reference risk gives SD units)."""
    rows = []
    for (condition, strength), g in pairs.groupby(["condition", "strength"], sort=False):
        ref, per = g["reference"].to_numpy(), g["perturbed"].to_numpy()
        ba = bland_altman(ref / scale, per / scale)
        mean, low, high = mean_ci((per - ref) / scale)
        both = np.column_stack([ref, per])
        rows.append({
            "condition": condition, "strength": strength, "photos": len(g),
            "mean shift": mean, "shift CI low": low, "shift CI high": high,
            "mean |change|": float(np.abs(per - ref).mean() / scale),
            "LoA low": ba["loa_low"], "LoA high": ba["loa_high"],
            "ICC(2,1)": icc(both, "2,1"), "ICC(3,1)": icc(both, "3,1"),
            "Spearman": spearman_stability(ref, per),
        })  # fmt: skip
    return pd.DataFrame(rows)


def dose_response(pairs: pd.DataFrame, scale: float = 1.0, truth: str | None = None) -> pd.DataFrame:
    """Per condition, every strength including 0 (the reference): mean shift with its 95 % CI (divided by
    ``scale``) and, with a ``truth`` column (e.g. the true age), the mean absolute error of the perturbed value
    against it (at strength 0: of the reference value)."""
    rows = []
    for condition, g in pairs.groupby("condition", sort=False):
        ref = g.drop_duplicates("pair_id")
        levels = [(0.0, ref["reference"], ref["reference"], ref)]
        levels += [(s, h["reference"], h["perturbed"], h) for s, h in g.groupby("strength")]
        for strength, before, after, h in sorted(levels, key=lambda t: t[0]):
            mean, low, high = mean_ci((after.to_numpy() - before.to_numpy()) / scale)
            row = {"condition": condition, "strength": strength, "photos": len(h), "mean shift": mean,
                   "shift CI low": low, "shift CI high": high}  # fmt: skip
            if truth is not None:
                row["MAE vs truth"] = float(np.abs(after.to_numpy() - h[truth].to_numpy()).mean() / scale)
            rows.append(row)
    return pd.DataFrame(rows)


def trend(pairs: pd.DataFrame, scale: float = 1.0) -> pd.DataFrame:
    """Per condition: the slope of the shift on |strength| (per unit of strength, through the reference at 0),
    its 95 % CI and p-value by OLS with standard errors clustered by person (statsmodels)."""
    import statsmodels.api as sm

    rows = []
    for condition, g in pairs.groupby("condition", sort=False):
        ref = g.drop_duplicates("pair_id").assign(strength=0.0, difference=0.0)
        data = pd.concat([ref, g], ignore_index=True)
        x = sm.add_constant(data["strength"].abs().to_numpy(dtype=float))
        fit = sm.OLS(data["difference"].to_numpy() / scale, x).fit(
            cov_type="cluster", cov_kwds={"groups": pd.factorize(data["pair_id"])[0]}
        )
        with np.errstate(invalid="ignore"):  # the intercept's clustered variance can come out negative: unused
            (low, high), p = fit.conf_int()[1], fit.pvalues[1]
        rows.append({"condition": condition, "slope per unit": fit.params[1], "slope CI low": low,
                     "slope CI high": high, "p": p})  # fmt: skip
    return pd.DataFrame(rows)


def pairs_table(cfg) -> pd.DataFrame:
    """The FAHR-Synth pairs: one row per photo with its planted truth, FaceAge's age (years) and FaceSurvival's
    log-risk (trains and predicts if needed)."""

    age = predict.table(cfg, "faceage", "pairs")[["image_id", "age_pred"]]
    risk = predict.table(cfg, "facesurvival", "pairs")[["image_id", "risk"]]
    _, truth, _ = cohorts.load(cfg.profile, "pairs")
    columns = ["image_id", *PAIR_COLUMNS, "age", "bio_gap", "frailty", "sex", "race"]
    table = truth[columns].merge(age, on="image_id", how="left").merge(risk, on="image_id", how="left")
    table["apparent_age"] = (table["age"] + table["bio_gap"]).clip(0, 110)
    return table


# ----------------------------------------------------------------------------------------- cosmetic surgery


def surgery(cfg, table: pd.DataFrame | None = None, conditions: Sequence[str] = SURGERY) -> pd.DataFrame:
    """Before/after pairs of facelift and blepharoplasty (or any condition of ``conditions``, e.g. makeup): how
    much younger FaceAge reads each face (years) and how FaceSurvival's risk moved (log hazard), beside the
    planted change in visible cues and the true age change (always 0)."""
    table = pairs_table(cfg) if table is None else table
    _, planted_rows, _ = cohorts.load(cfg.profile, "pairs")
    rows = planted_rows[planted_rows["condition"].isin(conditions)]
    planted = pd.DataFrame(
        [truth.planted_cue_change(cohorts._python(r)) for r in rows.to_dict("records")], index=rows["image_id"]
    )
    out = []
    for value in ("age_pred", "risk"):
        p = paired(table[table["condition"].isin(("reference", *conditions))], value, keep=["image_id", "age"])
        out.append(p.rename(columns={"reference": f"{value} before", "perturbed": f"{value} after",
                                     "difference": f"{value} change"}))  # fmt: skip
    merged = out[0].merge(out[1].drop(columns=["image_id", "age"]), on=list(PAIR_COLUMNS))
    merged = merged.join(planted, on="image_id")
    merged["true age change"] = 0.0
    return merged


def surgery_summary(frame: pd.DataFrame) -> pd.DataFrame:
    """Per operation and strength: FaceAge's mean change (years, 95 % CI) beside the planted years-equivalent
    and cue change, the correlation of model and planted change across people, and the risk change."""
    rows = []
    for (condition, strength), g in frame.groupby(["condition", "strength"], sort=False):
        mean, low, high = mean_ci(g["age_pred change"])
        varies = g["years equivalent"].std() > 0 and g["age_pred change"].std() > 0
        rows.append({
            "condition": condition, "strength": strength, "people": len(g),
            "FaceAge change (y)": mean, "CI low": low, "CI high": high,
            "planted years equivalent": g["years equivalent"].mean(), "planted cue change": g["cue change"].mean(),
            "true age change": 0.0,
            "r (model vs planted)": float(np.corrcoef(g["age_pred change"], g["years equivalent"])[0, 1])
            if varies else float("nan"),
            "FaceSurvival change (log HR)": g["risk change"].mean(),
        })  # fmt: skip
    return pd.DataFrame(rows)


def extreme(summary: pd.DataFrame, column: str, largest: bool = True) -> pd.Series:
    """The row of a summary with the largest ``|column|`` (``largest``) or the smallest ``column`` (an ICC, a
    Spearman): where a model moves most, or agrees least."""
    return summary.loc[summary[column].abs().idxmax() if largest else summary[column].idxmin()]


def surgery_reading(model_change: float, planted_change: float) -> str:
    """How far FaceAge follows a planted change of the face's cues, in words: the share of the planted
    years-equivalent that the model read (at least half: follows; a fifth: in part; less: hardly)."""
    followed = model_change / planted_change if planted_change else float("nan")
    if followed >= 0.5:
        return "FaceAge follows them"
    if followed >= 0.2:
        return "FaceAge follows them in part"
    return "FaceAge hardly follows them: it does not see the removed cues, or weighs other cues more"


def warp_table(cfg, batch_size: int = 128) -> pd.DataFrame:
    """The pairs' reference photos changed by the image operations of ``WARPS`` (the 2-D stand-ins a real photo
    set would use) at the strengths FAHR-Synth rendered, with both models' outputs: the layout of
    ``pairs_table``, so that ``paired`` and ``summary`` apply. Makeup is left out: it needs 68 landmarks."""

    table = common.cohort(cfg, "pairs")
    table = table[table["condition"] == "reference"].reset_index(drop=True)
    dataset = common.dataset(table, cfg, "eval")
    x = torch.stack([dataset[i]["image"] for i in range(len(dataset))])
    models = {spec.output: spec.load(spec.train(cfg)).eval()
              for spec in (predict.MODELS["faceage"], predict.MODELS["facesurvival"])}  # fmt: skip
    _, truth, _ = cohorts.load(cfg.profile, "pairs")
    people = table[["image_id"]].merge(truth[["image_id", "pair_id", "age", "bio_gap"]], on="image_id")
    levels = [("reference", 0.0)] + [(c, s) for c in WARPS for s in world.PERTURBATIONS.get(c, ())]
    frames = []
    with torch.no_grad():
        for condition, strength in levels:
            images = x if condition == "reference" else WARPS[condition](x, strength)
            out = {name: torch.cat([m(images[i : i + batch_size]) for i in range(0, len(images), batch_size)])
                   for name, m in models.items()}  # fmt: skip
            frames.append(people.assign(condition=condition, strength=strength,
                                        **{k: v.numpy() for k, v in out.items()}))  # fmt: skip
    return pd.concat(frames, ignore_index=True)


def warp_comparison(rendered: pd.DataFrame, warped: pd.DataFrame, scale: float = 1.0) -> pd.DataFrame:
    """Mean shift per condition and strength under the rendered condition and under its image operation
    (``paired`` tables of one value), side by side."""
    both = [summary(p, scale).set_index(["condition", "strength"])["mean shift"] for p in (rendered, warped)]
    table = pd.concat(both, axis=1, keys=["rendered", "image operation"], join="inner")
    return table.reset_index()


NUISANCE_EXCLUDED = ("makeup", *SURGERY)  # conditions that change the face itself, not only the photo


def headline_results(age_summary: pd.DataFrame, risk_summary: pd.DataFrame, visible: pd.DataFrame) -> list:
    """The Robustness chapter's numbers for the reproduction report (``Result`` each)."""
    nuisance = ~age_summary["condition"].isin(NUISANCE_EXCLUDED)
    risk_nuisance = ~risk_summary["condition"].isin(NUISANCE_EXCLUDED)
    out = [
        Result("robustness.age.max_shift", "largest FaceAge mean shift under pose and lighting",
               float(age_summary.loc[nuisance, "mean shift"].abs().max()), "years", planted=0.0),
        Result("robustness.age.min_icc", "lowest FaceAge ICC(2,1) under pose and lighting",
               float(age_summary.loc[nuisance, "ICC(2,1)"].min()), "", planted=1.0),
        Result("robustness.risk.max_shift", "largest FaceSurvival mean shift under pose and lighting",
               float(risk_summary.loc[risk_nuisance, "mean shift"].abs().max()), "SD", planted=0.0),
        Result("robustness.risk.min_spearman", "lowest FaceSurvival rank stability under pose and lighting",
               float(risk_summary.loc[risk_nuisance, "Spearman"].min()), "", planted=1.0),
    ]  # fmt: skip
    for condition, g in age_summary.groupby("condition", sort=False):
        worst = g.loc[g["mean shift"].abs().idxmax()]
        out.append(Result(f"robustness.{condition}.age_shift", f"FaceAge mean shift, {condition} {worst['strength']:g}",
                          float(worst["mean shift"]), "years", lower=float(worst["shift CI low"]),
                          upper=float(worst["shift CI high"]), planted=0.0))  # fmt: skip
    for _, row in visible[visible["strength"] == visible.groupby("condition")["strength"].transform("max")].iterrows():
        out.append(Result(f"surgery.{row['condition']}.age_change", f"FaceAge change, full {row['condition']}",
                          float(row["FaceAge change (y)"]), "years", lower=float(row["CI low"]),
                          upper=float(row["CI high"]), planted=float(row["planted years equivalent"])))  # fmt: skip
    return out
