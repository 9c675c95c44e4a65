"""Robustness: how much a model's output moves when the same face is photographed differently.

Agreement statistics for paired photos (a reference and the same person under a condition at a strength):
mean shift, mean absolute change, Bland–Altman bias and 95 % limits of agreement, intraclass correlation and
Spearman rank stability (``fahr.stats.agreement``), and dose–response tables. For FAHR-Synth the planted truth
says the true age never changed, and the renderer's cue model says how much younger a cosmetic operation made
the face *look* (``surgery``). The image perturbations a real photo set uses are ``fahr.data.perturb``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pandas as pd
import torch

from fahr import predict
from fahr.analysis import cohort
from fahr.analysis.headline import Result
from fahr.data import align
from fahr.data.perturb import WARPS, perturb_images
from fahr.data.real import prepare
from fahr.data.synth import cohorts, truth, world
from fahr.stats.agreement import bland_altman, icc, mean_ci, spearman_stability
from fahr.train import common

CONDITIONS = tuple(world.PERTURBATIONS)
SURGERY = ("facelift", "blepharoplasty")
NUISANCE_EXCLUDED = ("makeup", *SURGERY)  # conditions that change the face itself, not only the photo
PAIR_COLUMNS = ("pair_id", "condition", "strength")
NO_REFERENCE = "people without a reference photo"  # attrs key of a photographed pairs table
LANDMARKS_FOUND = "landmarks found"  # attrs key of operations_table with makeup: per photo, HOG found the face
UNITS = {"yaw": "°", "pitch": "°", "roll": "°", "light_direction": "°"}  # the other strengths have no unit


def level_label(condition: str, strength: float) -> str:
    """``yaw +30°``, ``makeup 0.5``, ``light_temperature −1``."""
    sign = "+" if strength > 0 and condition in (*UNITS, "light_temperature") else ""
    return f"{condition} {sign}{strength:g}{UNITS.get(condition, '')}".replace("-", "−")


def _label(row: pd.Series) -> str:
    return level_label(row["condition"], row["strength"])


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


def reference_sd(table: pd.DataFrame, value: str) -> float:
    """The SD of ``value`` over the reference photos of a pairs table, in the value's unit (for FaceSurvival's
    log-risk: log hazard): the unit in which the chapter states FaceSurvival's shifts."""
    return float(table.loc[table["condition"] == "reference", value].std())


def scaled(pairs: pd.DataFrame, scale: float) -> pd.DataFrame:
    """A ``paired`` table with ``reference``, ``perturbed`` and ``difference`` divided by ``scale`` (e.g. by
    ``reference_sd``, giving SD units)."""
    return pairs.assign(**{c: pairs[c] / scale for c in ("reference", "perturbed", "difference")})


def describe_pairs(table: pd.DataFrame) -> str:
    """A Markdown sentence on the pairs table: people, photos, perturbed photos per person, the people left out for
    want of a usable reference photo (``photographed``), and the SD of FaceSurvival's log-risk over the reference
    photos (log hazard), the unit of its shifts (FaceAge's alone when the table has no FaceSurvival ``risk``), and,
    where makeup was painted on real photos, on how many the landmarks were found on the face."""
    reference = table[table["condition"] == "reference"]
    lost = table.attrs.get(NO_REFERENCE, 0)
    text = (
        f"**{reference['pair_id'].nunique()} people**, {len(table)} photos: each person's reference photo and "
        f"{len(table) // len(reference) - 1} perturbed ones"
    )
    if lost:
        text += f" ({lost} more left out: their reference photo was not usable, e.g. no face was found)"
    text += ". FaceAge shifts are in years"
    found = table.attrs.get(LANDMARKS_FOUND)
    if "risk" not in table:
        text += "; there is no FaceSurvival without clinical cohort A, which trains it."
    else:
        text += (
            f"; FaceSurvival shifts are in units of the SD of its log-risk over the reference photos "
            f"({reference_sd(table, 'risk'):.3f} log hazard), so that the two models can be compared."
        )
    if found is not None:
        text += " For the painted makeup, " + align.landmarks_sentence(found, "photos")
    return text


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


def trends(age_pairs: pd.DataFrame, risk_pairs: pd.DataFrame | None, risk_scale: float | None) -> pd.DataFrame:
    """``trend`` of both models side by side, one row per condition: FaceAge's columns suffixed `` (years)``,
    FaceSurvival's (its log-risk divided by ``risk_scale``, e.g. ``reference_sd``) suffixed `` (SD)``; FaceAge's
    alone when there is no FaceSurvival (``risk_pairs`` None: no clinical cohort to train it)."""
    if risk_pairs is None:
        return trend(age_pairs).rename(columns=lambda c: c if c == "condition" else f"{c} (years)")
    return trend(age_pairs).merge(trend(risk_pairs, scale=risk_scale), on="condition", suffixes=(" (years)", " (SD)"))


def slope_reading(slopes: pd.DataFrame, per: float = 10.0) -> str:
    """A Markdown sentence from ``trends``: how far each model moves per ``per`` degrees of yaw and of light
    direction (FaceAge in years with its 95 % CI, FaceSurvival in SD)."""
    yaw, light = (slopes.set_index("condition").loc[c] * per for c in ("yaw", "light_direction"))
    if "slope per unit (SD)" not in slopes:
        return (
            f"Per {per:g}° of yaw FaceAge moves {yaw['slope per unit (years)']:+.2f} years (95 % CI "
            f"{yaw['slope CI low (years)']:+.2f} to {yaw['slope CI high (years)']:+.2f}); per {per:g}° of light "
            f"direction it moves {light['slope per unit (years)']:+.2f} years."
        )
    return (
        f"Per {per:g}° of yaw FaceAge moves {yaw['slope per unit (years)']:+.2f} years "
        f"(95 % CI {yaw['slope CI low (years)']:+.2f} to {yaw['slope CI high (years)']:+.2f}) and "
        f"FaceSurvival {yaw['slope per unit (SD)']:+.3f} SD; per {per:g}° of light direction FaceAge moves "
        f"{light['slope per unit (years)']:+.2f} years and FaceSurvival {light['slope per unit (SD)']:+.3f} SD."
    )


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
        [truth.planted_cue_change(cohorts.plain_row(r)) for r in rows.to_dict("records")], index=rows["image_id"]
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


# FAHR-Synth: the cohort each model is fine-tuned on, the truth column each pose and lighting condition sets, and
# the share of a model's training photos that must lie at least as far from straight-on as a level for the level to
# count as inside the range the model was trained on (|value| within the 97.5th percentile of the training photos').
TRAINED_ON = {"faceage": "age", "facesurvival": "clinical-a"}
POSE_COLUMNS = {"yaw": "yaw", "pitch": "pitch", "roll": "roll", "light_direction": "light_azimuth",
                "light_temperature": "colour_temperature"}  # fmt: skip
INSIDE_SHARE = 0.025
MODEL_NAMES = {"faceage": "FaceAge", "facesurvival": "FaceSurvival"}
RESULT_KEYS = {"faceage": "robustness.age", "facesurvival": "robustness.risk"}


def training_range(cfg) -> pd.DataFrame:
    """For each pose and lighting level of ``world.PERTURBATIONS`` and each model (FAHR-Synth only: it reads the
    capture truth of the training photos): the share of the model's fine-tuning photos (``TRAINED_ON``, train
    split) at least as far from straight-on (``|value| ≥ |strength|``), and whether the level is ``inside`` the
    range the model was trained on (that share at least ``INSIDE_SHARE``)."""
    rows = []
    for model, trained_on in TRAINED_ON.items():
        common.cohort(cfg, trained_on)  # built and current
        _, photos, _ = cohorts.load(cfg.profile, trained_on)
        train = photos[photos["split"] == "train"]
        for condition, column in POSE_COLUMNS.items():
            far = train[column].abs().to_numpy()
            for strength in world.PERTURBATIONS[condition]:
                share = float((far >= abs(strength)).mean())
                rows.append({"model": model, "condition": condition, "strength": strength,
                             "training photos as far out": share, "inside": share >= INSIDE_SHARE})  # fmt: skip
    return pd.DataFrame(rows)


def inside(summary: pd.DataFrame, ranges: pd.DataFrame | None, model: str) -> pd.DataFrame:
    """The rows of a ``summary`` at levels inside ``model``'s training range (``training_range``); every row when
    ``ranges`` is None (real data: the training photos' pose is not known)."""
    if ranges is None:
        return summary
    marks = ranges.loc[ranges["model"] == model, ["condition", "strength", "inside"]]
    marked = summary.merge(marks, on=["condition", "strength"], how="left")
    unmarked = marked[marked["inside"].isna()]
    if len(unmarked):
        raise ValueError(f"levels with no training range for {model}: "
                         f"{sorted(zip(unmarked['condition'], unmarked['strength'], strict=True))}")  # fmt: skip
    return marked[marked["inside"].astype(bool)].drop(columns="inside")


def range_reading(ranges: pd.DataFrame) -> str:
    """A Markdown paragraph on ``training_range``: which pose and lighting levels lie beyond each model's training
    photos, and what the chapter does with them."""
    parts = []
    for model, label in MODEL_NAMES.items():
        r = ranges[ranges["model"] == model]
        out = r[~r["inside"]]
        listed = ", ".join(level_label(c, s) for c, s in zip(out["condition"], out["strength"], strict=True))
        parts.append(f"{label} (fine-tuned on {TRAINED_ON[model]}): {len(out)} of {len(r)} levels beyond its "
                     f"training photos" + (f" ({listed})" if listed else ""))  # fmt: skip
    return (
        "; ".join(parts) + f". A level is beyond a model's training photos when fewer than {100 * INSIDE_SHARE:g} % of "
        "them are as far from straight-on. The report judges robustness on the levels inside each model's range, "
        "the only ones a model can be expected to hold up under (`inside_training`), and shows the numbers over "
        "every level beside: a clinic that photographs patients straight on gives its model no side views to "
        "learn from."
    )


def nuisance(summary: pd.DataFrame) -> pd.DataFrame:
    """The rows of a ``summary`` under pose and lighting: the conditions that change the photo, not the face
    (every condition but those of ``NUISANCE_EXCLUDED``)."""
    return summary[~summary["condition"].isin(NUISANCE_EXCLUDED)]


def summary_reading(age_summary: pd.DataFrame, risk_summary: pd.DataFrame | None) -> str:
    """A Markdown sentence from the two ``summary`` tables: where FaceAge moves most (years) and agrees least
    (ICC(2,1)), where FaceSurvival moves most (SD) and keeps the ranking of people least (Spearman); FaceAge's
    alone when there is no FaceSurvival (``risk_summary`` None)."""
    age_worst, age_icc = extreme(age_summary, "mean shift"), extreme(age_summary, "ICC(2,1)", largest=False)
    age = (
        f"FaceAge moves most under **{_label(age_worst)}** ({age_worst['mean shift']:+.1f} years on average); its "
        f"lowest absolute agreement is ICC(2,1) = {age_icc['ICC(2,1)']:.2f} ({_label(age_icc)})."
    )
    if risk_summary is None:
        return age + " There is no FaceSurvival to test: clinical cohort A, which trains it, is not provided."
    risk_worst, risk_rho = extreme(risk_summary, "mean shift"), extreme(risk_summary, "Spearman", largest=False)
    return (
        f"{age} FaceSurvival moves "
        f"most under **{_label(risk_worst)}** ({risk_worst['mean shift']:+.2f} SD); the ranking of people by risk "
        f"is least stable under {_label(risk_rho)} (Spearman {risk_rho['Spearman']:.2f})."
    )


def full_strength(visible: pd.DataFrame, condition: str) -> pd.Series:
    """The row of a ``surgery_summary`` for ``condition`` at its largest strength (the full operation)."""
    rows = visible[visible["condition"] == condition]
    if rows.empty:
        raise ValueError(f"no {condition!r} rows in the table (it has {sorted(set(visible['condition']))})")
    return rows.loc[rows["strength"].idxmax()]


def surgery_change_reading(visible: pd.DataFrame) -> str:
    """A Markdown sentence from ``surgery_summary``: FaceAge's change (years, 95 % CI) after a full facelift, a
    full blepharoplasty and full makeup beside the planted years-equivalent, and FaceSurvival's change (log HR)
    after a full facelift."""
    lift, bleph, make = (full_strength(visible, c) for c in ("facelift", "blepharoplasty", "makeup"))
    return (
        f"After a full facelift FaceAge reads the face **{lift['FaceAge change (y)']:+.2f} years** "
        f"(95 % CI {lift['CI low']:+.2f} to {lift['CI high']:+.2f}) where the planted cues moved by "
        f"{lift['planted years equivalent']:+.1f} years equivalent and the true age by 0; after a full "
        f"blepharoplasty {bleph['FaceAge change (y)']:+.2f} years against {bleph['planted years equivalent']:+.1f}; "
        f"under full makeup {make['FaceAge change (y)']:+.2f} years against {make['planted years equivalent']:+.1f}. "
        f"FaceSurvival's log-risk moved by {lift['FaceSurvival change (log HR)']:+.3f} after a full facelift."
    )


def surgery_reading(model_change: float, planted_change: float) -> str:
    """How far FaceAge follows a planted change of the face's cues, in words: the share of the planted
    years-equivalent that the model read (at least half: follows; a fifth: in part; less: hardly)."""
    followed = model_change / planted_change if planted_change else float("nan")
    if followed >= 0.5:
        return "FaceAge follows them"
    if followed >= 0.2:
        return "FaceAge follows them in part"
    return "FaceAge hardly follows them: it does not see the removed cues, or weighs other cues more"


def operations_table(
    cfg, photos: pd.DataFrame, models: Sequence[str], batch_size: int = 128, makeup: bool = False
) -> pd.DataFrame:
    """``photos`` (a manifest with ``pair_id`` and any columns to keep) changed by the image operations of
    ``WARPS`` (pose, lighting, colour temperature: the 2-D stand-ins a real photo set uses) at the strengths
    FAHR-Synth renders, and (``makeup``) by lipstick and eye shadow painted inside each face's own 68 landmarks
    (``fahr.data.align.crop_landmarks``), with the outputs of ``models`` (keys of ``fahr.predict.MODELS``): the
    layout of ``pairs_table``, so that ``paired`` and ``summary`` apply."""
    dataset = common.dataset(photos.reset_index(drop=True), cfg, "eval")
    x = torch.stack([dataset[i]["image"] for i in range(len(dataset))])
    specs = {predict.MODELS[m].output: predict.MODELS[m] for m in models}
    loaded = {name: spec.load(spec.train(cfg)).eval() for name, spec in specs.items()}
    people = photos.drop(columns=["path"]).reset_index(drop=True)
    levels = [("reference", 0.0)] + [(c, s) for c in WARPS for s in world.PERTURBATIONS.get(c, ())]
    points = None
    if makeup:
        levels += [("makeup", s) for s in world.PERTURBATIONS["makeup"]]
        points, found = align.file_landmarks(photos["path"].tolist(), x.shape[-1])
    frames = []
    with torch.no_grad():
        for condition, strength in levels:
            images = x if condition == "reference" else perturb_images(x, condition, strength, landmarks=points)
            out = {name: torch.cat([m(images[i : i + batch_size]) for i in range(0, len(images), batch_size)])
                   for name, m in loaded.items()}  # fmt: skip
            frames.append(people.assign(condition=condition, strength=strength,
                                        **{k: v.numpy() for k, v in out.items()}))  # fmt: skip
    out = pd.concat(frames, ignore_index=True)
    if makeup:
        out.attrs[LANDMARKS_FOUND] = found
    return out


def warp_table(cfg, batch_size: int = 128) -> pd.DataFrame:
    """The FAHR-Synth pairs' reference photos under the image operations (``operations_table``), with both models'
    outputs, the true age and the planted biological-age gap."""
    table = common.cohort(cfg, "pairs")
    table = table[table["condition"] == "reference"].reset_index(drop=True)
    _, truth_rows, _ = cohorts.load(cfg.profile, "pairs")
    photos = table[["image_id", "path"]].merge(truth_rows[["image_id", "pair_id", "age", "bio_gap"]], on="image_id")
    return operations_table(cfg, photos, ("faceage", "facesurvival"), batch_size)


def public_photos(cfg, n: int) -> pd.DataFrame:
    """Up to ``n`` test photos of the age datasets (never a clinical cohort's), drawn with the profile's seed, as
    the reference photos of ``operations_table`` (each its own pair)."""
    test = common.cohort(cfg, "age", "test")
    test = test.sample(n=min(n, len(test)), random_state=cfg.seed).sort_values("image_id")
    return test[["image_id", "path", "age", "dataset"]].assign(pair_id=test["image_id"]).reset_index(drop=True)


def real_table(cfg, clinical: bool, n: int = 256) -> pd.DataFrame:
    """Real public test photos under the image operations and painted makeup, with FaceAge and (``clinical``:
    when clinical cohort A is present to train it) FaceSurvival."""
    models = ("faceage", "facesurvival") if clinical else ("faceage",)
    return operations_table(cfg, public_photos(cfg, n), models, makeup=True)


def paired_set_table(cfg, clinical: bool) -> pd.DataFrame:
    """The photographed pairs a user provided (real data: ``pairs/pairs.csv``) with FaceAge's age (years) and
    (``clinical``: when cohort A is there to train it) FaceSurvival's log-risk, in the layout of ``pairs_table``."""
    models = ("faceage", "facesurvival") if clinical else ("faceage",)
    frame = cohort.build(cfg, "pairs", models).frame.reset_index()
    return frame.rename(columns={"faceage": "age_pred", "facesurvival": "risk"})


def photographed(cfg, clinical: bool) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """The photographed paired set (``paired_set_table``) and FaceAge's ``summary`` of it (years), or None when no
    paired set is present."""
    if "pairs" not in prepare.available(cfg):
        return None
    pairs = paired_set_table(cfg, clinical)
    referenced = set(pairs.loc[pairs["condition"] == "reference", "pair_id"])
    kept = pairs[pairs["pair_id"].isin(referenced)].reset_index(drop=True)  # their other photos compare with nothing
    kept.attrs[NO_REFERENCE] = pairs["pair_id"].nunique() - len(referenced)
    return kept, summary(paired(kept, "age_pred", keep=["age"]))


def photographed_results(age_summary: pd.DataFrame) -> list:
    """FaceAge's mean change (years, 95 % CI) at the full strength of every condition of a photographed paired
    set that changes the face itself (makeup, surgery), for the reproduction report."""
    out = []
    for condition, g in age_summary[age_summary["condition"].isin(NUISANCE_EXCLUDED)].groupby("condition"):
        row = g.loc[g["strength"].idxmax()]
        out.append(Result(f"surgery.{condition}.age_change", f"FaceAge change, full {condition} (photographed)",
                          float(row["mean shift"]), "years", lower=float(row["shift CI low"]),
                          upper=float(row["shift CI high"])))  # fmt: skip
    return out


def warp_comparison(rendered: pd.DataFrame, warped: pd.DataFrame, scale: float = 1.0) -> pd.DataFrame:
    """Mean shift per condition and strength under the rendered condition and under its image operation
    (``paired`` tables of one value), side by side."""
    both = [summary(p, scale).set_index(["condition", "strength"])["mean shift"] for p in (rendered, warped)]
    table = pd.concat(both, axis=1, keys=["rendered", "image operation"], join="inner")
    return table.reset_index()


def warp_reading(age_compare: pd.DataFrame, risk_compare: pd.DataFrame) -> str:
    """A Markdown sentence from two ``warp_comparison`` tables (FaceAge in years, FaceSurvival in SD): how the
    image operations' mean shifts rank against the rendered ones (Spearman) and the largest |mean shift| of each."""
    agreement = age_compare[["rendered", "image operation"]].corr(method="spearman").iloc[0, 1]
    return (
        f"Across the {len(age_compare)} pose and lighting levels, the FaceAge shifts under the image operations "
        f"rank like the rendered ones with Spearman {agreement:.2f}; the largest FaceAge shift under an image "
        f"operation is {age_compare['image operation'].abs().max():.1f} years (rendered: "
        f"{age_compare['rendered'].abs().max():.1f}), for FaceSurvival "
        f"{risk_compare['image operation'].abs().max():.2f} SD (rendered: {risk_compare['rendered'].abs().max():.2f})."
    )


def reading(age_summary: pd.DataFrame, risk_summary: pd.DataFrame, visible: pd.DataFrame) -> str:
    """The chapter's closing paragraph (Markdown) from the two ``summary`` tables (FaceAge in years, FaceSurvival
    in SD) and the ``surgery_summary`` of makeup and surgery: the worst shift and agreement under pose and
    lighting, and how far FaceAge follows the cues that makeup and a full facelift remove (``surgery_reading``)."""
    age_nuisance, risk_nuisance = nuisance(age_summary), nuisance(risk_summary)
    lift, make = full_strength(visible, "facelift"), full_strength(visible, "makeup")
    risk_worst = extreme(risk_nuisance, "mean shift")
    followed = surgery_reading(lift["FaceAge change (y)"], lift["planted years equivalent"])
    return (
        f"Under pose and lighting — conditions that change the photo but not the face — FaceAge's mean shift stays "
        f"within {age_nuisance['mean shift'].abs().max():.1f} years (mean absolute change per person at most "
        f"{age_nuisance['mean |change|'].max():.1f} years) and its agreement with the reference photo is ICC(2,1) "
        f"{age_nuisance['ICC(2,1)'].min():.2f} or higher. FaceSurvival moves by up to "
        f"{abs(risk_worst['mean shift']):.2f} SD of its risk, most under {_label(risk_worst)}, and keeps the "
        f"ranking of people with Spearman {risk_nuisance['Spearman'].min():.2f} or higher. Makeup and surgery are "
        f"different: they remove wrinkles, folds and bags that the face really shows, and {followed} "
        f"({lift['FaceAge change (y)']:+.2f} years after a full facelift against "
        f"{lift['planted years equivalent']:+.1f} years equivalent planted, {make['FaceAge change (y)']:+.2f} under "
        f"full makeup against {make['planted years equivalent']:+.1f}; the true age never changed). A model that "
        "reads the face cannot be robust to a change of the face, only to a change of the photograph. These are "
        "synthetic faces under one renderer's idea of pose and light; the same code measures the same quantities "
        "on real pairs."
    )


def _worst(summary: pd.DataFrame, key: str, model: str, agreement: str, unit: str, where: str) -> list:
    """The largest mean shift and the lowest ``agreement`` of a ``nuisance`` summary, as two ``Result``s under
    ``key`` (none when the summary has no row)."""
    if summary.empty:
        return []
    name = "ICC(2,1)" if agreement == "min_icc" else "rank stability"
    column = "ICC(2,1)" if agreement == "min_icc" else "Spearman"
    return [
        Result(f"{key}.max_shift", f"largest {model} mean shift under pose and lighting{where}",
               float(summary["mean shift"].abs().max()), unit, planted=0.0),
        Result(f"{key}.{agreement}", f"lowest {model} {name} under pose and lighting{where}",
               float(summary[column].min()), "", planted=1.0),
    ]  # fmt: skip


def headline_results(
    age_summary: pd.DataFrame,
    risk_summary: pd.DataFrame | None,
    visible: pd.DataFrame | None,
    planted: bool = True,
    ranges: pd.DataFrame | None = None,
) -> list:
    """The Robustness chapter's numbers for the reproduction report (``Result`` each); FaceSurvival's only with
    its ``summary`` (``risk_summary``: None without clinical cohort A); the pose and lighting numbers over every
    level, and with ``ranges`` (``training_range``, FAHR-Synth) also over the levels inside each model's training
    range (``….inside_training``, none when no level is); makeup and surgery only with a ``surgery_summary``
    (``visible``); the planted values (no change) only on FAHR-Synth (``planted``)."""
    out = []
    for model, summary, unit, agreement in (("faceage", age_summary, "years", "min_icc"),
                                            ("facesurvival", risk_summary, "SD", "min_spearman")):  # fmt: skip
        if summary is None:
            continue
        key, label, levels = RESULT_KEYS[model], MODEL_NAMES[model], nuisance(summary)
        out += _worst(levels, key, label, agreement, unit, "")
        if ranges is not None:
            out += _worst(inside(levels, ranges, model), f"{key}.inside_training", label, agreement, unit,
                          " inside its training range")  # fmt: skip
    for condition, g in age_summary.groupby("condition", sort=False):
        worst = g.loc[g["mean shift"].abs().idxmax()]
        out.append(Result(f"robustness.{condition}.age_shift", f"FaceAge mean shift, {condition} {worst['strength']:g}",
                          float(worst["mean shift"]), "years", lower=float(worst["shift CI low"]),
                          upper=float(worst["shift CI high"]), planted=0.0))  # fmt: skip
    if not planted:
        out = [replace(r, planted=None) for r in out]
    if visible is None:
        return out
    for _, row in visible[visible["strength"] == visible.groupby("condition")["strength"].transform("max")].iterrows():
        out.append(Result(f"surgery.{row['condition']}.age_change", f"FaceAge change, full {row['condition']}",
                          float(row["FaceAge change (y)"]), "years", lower=float(row["CI low"]),
                          upper=float(row["CI high"]), planted=float(row["planted years equivalent"])))  # fmt: skip
    return out
