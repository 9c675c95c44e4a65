"""Robustness: how much a model's output moves when the same face is photographed differently.

Agreement statistics for paired photos (a reference and the same person under a condition at a strength):
mean shift, mean absolute change, Bland–Altman bias and 95 % limits of agreement, intraclass correlation
(Shrout & Fleiss 1979; McGraw & Wong 1996), Spearman rank stability, and dose–response tables. For FAHR-Synth
the planted truth says the true age never changed, and the renderer's cue model says how much younger a
cosmetic operation made the face *look* (``surgery``). Image perturbations for real aligned photos (kornia
warps, lighting gains, makeup painted inside 68-point landmark polygons) sit at the end; strength 0 returns
the input unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import fields, replace
from functools import lru_cache

import numpy as np
import pandas as pd
import torch
from scipy import stats

from fahr.data.synth import cohorts, world
from fahr.data.synth.face import AgeCues, FaceParams, Modifiers, cues

CONDITIONS = tuple(world.PERTURBATIONS)
SURGERY = ("facelift", "blepharoplasty")
PAIR_COLUMNS = ("pair_id", "condition", "strength")


# ---------------------------------------------------------------------------------------------- agreement


def _pair_arrays(reference, perturbed) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(reference, dtype=float), np.asarray(perturbed, dtype=float)
    if a.ndim != 1 or a.shape != b.shape:
        raise ValueError(f"paired values must be two 1-D arrays of one length, got shapes {a.shape} and {b.shape}")
    if len(a) < 2:
        raise ValueError(f"paired statistics need at least 2 pairs, got {len(a)}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("paired values contain NaN or infinite entries")
    return a, b


def bland_altman(reference, perturbed) -> dict[str, float]:
    """Bland–Altman agreement of ``perturbed`` with ``reference``: bias = mean(perturbed − reference), the SD of
    the differences (ddof 1) and the 95 % limits of agreement bias ± 1.96 SD."""
    a, b = _pair_arrays(reference, perturbed)
    d = b - a
    bias, sd = float(d.mean()), float(d.std(ddof=1))
    return {"bias": bias, "sd": sd, "loa_low": bias - 1.96 * sd, "loa_high": bias + 1.96 * sd, "n": len(d)}


def mean_squares(ratings) -> dict[str, float]:
    """Two-way ANOVA mean squares of an ``[n targets, k raters]`` table: rows (MSR), columns (MSC), residual
    (MSE) and within rows (MSW), as in Shrout & Fleiss (1979) Table 1."""
    x = np.asarray(ratings, dtype=float)
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 2:
        raise ValueError(f"ratings must be a [targets, raters] table with at least 2 of each, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("ratings contain NaN or infinite entries")
    n, k = x.shape
    grand = x.mean()
    ss_rows = k * ((x.mean(axis=1) - grand) ** 2).sum()
    ss_cols = n * ((x.mean(axis=0) - grand) ** 2).sum()
    ss_total = ((x - grand) ** 2).sum()
    ss_error = ss_total - ss_rows - ss_cols
    return {
        "MSR": float(ss_rows / (n - 1)),
        "MSC": float(ss_cols / (k - 1)),
        "MSE": float(ss_error / ((n - 1) * (k - 1))),
        "MSW": float((ss_cols + ss_error) / (n * (k - 1))),
        "n": n,
        "k": k,
    }


ICC_KINDS = ("1,1", "2,1", "3,1", "1,k", "2,k", "3,k")


def icc(ratings, kind: str = "2,1") -> float:
    """Intraclass correlation ICC(kind) of an ``[n targets, k raters]`` table (Shrout & Fleiss 1979).

    ``"2,1"``: two-way random, absolute agreement of single ratings (McGraw & Wong's ICC(A,1)): a shift of all
    perturbed photos lowers it. ``"3,1"``: two-way mixed, consistency (ICC(C,1)): a common shift does not.
    ``"1,1"`` one-way random; the ``",k"`` forms are the reliability of the mean of the k ratings.
    """
    if kind not in ICC_KINDS:
        raise ValueError(f"unknown ICC kind {kind!r}; kinds: {', '.join(ICC_KINDS)}")
    m = mean_squares(ratings)
    n, k, msr, msc, mse, msw = m["n"], m["k"], m["MSR"], m["MSC"], m["MSE"], m["MSW"]
    if kind == "1,1":
        return (msr - msw) / (msr + (k - 1) * msw)
    if kind == "2,1":
        return (msr - mse) / (msr + (k - 1) * mse + k * (msc - mse) / n)
    if kind == "3,1":
        return (msr - mse) / (msr + (k - 1) * mse)
    if kind == "1,k":
        return (msr - msw) / msr
    if kind == "2,k":
        return (msr - mse) / (msr + (msc - mse) / n)
    return (msr - mse) / msr


def spearman_stability(reference, perturbed) -> float:
    """Spearman's rank correlation of the values before and after (1 = the ranking of people is unchanged)."""
    a, b = _pair_arrays(reference, perturbed)
    return float(stats.spearmanr(a, b).statistic)


def shift_in_sd(reference, perturbed, scale: float) -> float:
    """Mean shift (perturbed − reference) in units of ``scale`` (e.g. the SD of the reference risk)."""
    a, b = _pair_arrays(reference, perturbed)
    if not np.isfinite(scale) or scale <= 0:
        raise ValueError(f"scale must be a positive number, got {scale}")
    return float((b - a).mean() / scale)


def mean_ci(values, level: float = 0.95) -> tuple[float, float, float]:
    """Mean and its t-based confidence interval."""
    x = np.asarray(values, dtype=float)
    mean = float(x.mean())
    if len(x) < 2:
        return mean, float("nan"), float("nan")
    half = float(stats.t.ppf(0.5 + level / 2, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x)))
    return mean, mean - half, mean + half


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
    from fahr import predict

    age = predict.table(cfg, "faceage", "pairs")[["image_id", "age_pred"]]
    risk = predict.table(cfg, "facesurvival", "pairs")[["image_id", "risk"]]
    _, truth, _ = cohorts.load(cfg.profile, "pairs")
    columns = ["image_id", *PAIR_COLUMNS, "age", "bio_gap", "frailty", "sex", "race"]
    table = truth[columns].merge(age, on="image_id", how="left").merge(risk, on="image_id", how="left")
    table["apparent_age"] = (table["age"] + table["bio_gap"]).clip(0, 110)
    return table


# ----------------------------------------------------------------------------------------- cosmetic surgery

AGE_CUES = ("child", "forehead_lines", "crows_feet", "nasolabial", "spots", "texture", "greying", "recession",
            "sagging", "eyelid_droop", "eye_bags")  # fmt: skip
_AGE_GRID = np.arange(0.0, 110.01, 0.25)  # apparent ages (years) searched for the years-equivalent


def _cue_vector(k: AgeCues) -> np.ndarray:
    return np.array([getattr(k, name) for name in AGE_CUES])


@lru_cache(maxsize=256)
def _cue_grid(identity: FaceParams) -> np.ndarray:
    """The ageing-cue vectors ``[ages, cues]`` of an unmodified face at every apparent age of ``_AGE_GRID``."""
    return np.stack([_cue_vector(cues(replace(identity, age=float(a), bio_gap=0.0))) for a in _AGE_GRID])


def planted_cue_change(row: dict) -> dict[str, float]:
    """What a photo's modifiers did to the visible ageing cues of the renderer's cue model (``face.cues``).

    ``cue change``: the sum over the ageing cues of (with − without the modifiers), in cue units (each cue 0–1;
    negative = fewer cues). ``years equivalent``: the apparent age at which an unmodified face shows the cue
    vector nearest (least squares, all ageing cues weighted equally) to the modified face's, minus that of the
    face without modifiers: how much younger the operation made the face look, in years. The true age is
    unchanged.
    """
    face = FaceParams(**{f.name: row[f.name] for f in fields(FaceParams)})
    mods = Modifiers(**{name: float(row[name]) for name in cohorts.MODIFIER_FIELDS})
    with_mods, without = _cue_vector(cues(face, mods)), _cue_vector(cues(face))
    grid = _cue_grid(replace(face, age=0.0, bio_gap=0.0))
    best = _AGE_GRID[np.argmin(((grid - with_mods) ** 2).sum(axis=1))]
    plain = _AGE_GRID[np.argmin(((grid - without) ** 2).sum(axis=1))]  # the apparent age, to the grid's step
    return {"cue change": float((with_mods - without).sum()), "years equivalent": float(best - plain)}


def surgery(cfg, table: pd.DataFrame | None = None, conditions: Sequence[str] = SURGERY) -> pd.DataFrame:
    """Before/after pairs of facelift and blepharoplasty (or any condition of ``conditions``, e.g. makeup): how
    much younger FaceAge reads each face (years) and how FaceSurvival's risk moved (log hazard), beside the
    planted change in visible cues and the true age change (always 0)."""
    table = pairs_table(cfg) if table is None else table
    _, truth, _ = cohorts.load(cfg.profile, "pairs")
    rows = truth[truth["condition"].isin(conditions)]
    planted = pd.DataFrame(
        [planted_cue_change(cohorts._python(r)) for r in rows.to_dict("records")], index=rows["image_id"]
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


# -------------------------------------------------------------------------- perturbations for real photos


def _check_images(images: torch.Tensor) -> torch.Tensor:
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] != 3:
        shape = tuple(images.shape) if hasattr(images, "shape") else type(images).__name__
        raise ValueError(f"images must be a float tensor [N, 3, H, W] with values in [0, 1], got {shape}")
    if not images.is_floating_point():
        raise ValueError(f"images must be floating point in [0, 1], got {images.dtype}")
    return images


def _perspective(images: torch.Tensor, degrees: float, axis: str, distance: float) -> torch.Tensor:
    """The image as a plane turned by ``degrees`` about its vertical (``axis="x"``: yaw) or horizontal axis
    (pitch), seen by a pinhole camera ``distance`` half-widths away: the far side shrinks."""
    import kornia.geometry.transform as kt

    n, _, h, w = images.shape
    t = np.radians(degrees)
    corners = np.array([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]])  # (x, y) normalised, clockwise
    u, v = (corners[:, 0], corners[:, 1]) if axis == "x" else (corners[:, 1], corners[:, 0])
    depth = u * np.sin(t)
    u2, v2 = u * np.cos(t) * distance / (distance + depth), v * distance / (distance + depth)
    moved = np.stack([u2, v2], axis=1) if axis == "x" else np.stack([v2, u2], axis=1)

    def to_pixels(p: np.ndarray) -> torch.Tensor:
        scale = np.array([(w - 1) / 2, (h - 1) / 2])
        return torch.tensor((p + 1.0) * scale, dtype=images.dtype)[None].expand(n, 4, 2)

    matrix = kt.get_perspective_transform(to_pixels(corners), to_pixels(moved))
    return kt.warp_perspective(images, matrix, (h, w), padding_mode="border", align_corners=True)


def yaw(images: torch.Tensor, degrees: float, distance: float = 3.0) -> torch.Tensor:
    """A yaw-like horizontal perspective warp: positive turns the face toward the image's right (its right half
    recedes and narrows), as FAHR-Synth's ``Capture.yaw``. A 2-D warp cannot show the hidden side of a face."""
    _check_images(images)
    return images.clone() if degrees == 0 else _perspective(images, degrees, "x", distance)


def pitch(images: torch.Tensor, degrees: float, distance: float = 3.0) -> torch.Tensor:
    """A pitch-like vertical perspective warp: positive tilts the face up (its upper half recedes), as
    ``Capture.pitch``."""
    _check_images(images)
    return images.clone() if degrees == 0 else _perspective(images, -degrees, "y", distance)


def roll(images: torch.Tensor, degrees: float) -> torch.Tensor:
    """In-plane rotation about the image centre (kornia), edges replicated: positive turns the image clockwise
    (the top of the head toward the image's right), as ``Capture.roll``."""
    import kornia.geometry.transform as kt

    _check_images(images)
    if degrees == 0:
        return images.clone()
    angle = torch.full((images.shape[0],), -float(degrees), dtype=images.dtype)  # kornia: counter-clockwise
    return kt.rotate(images, angle, padding_mode="border", align_corners=True)


def light_direction(images: torch.Tensor, degrees: float, intensity: float = 0.5) -> torch.Tensor:
    """Side light as a horizontal brightness gradient: gain 1 + intensity·sin(azimuth)·x, x from −1 (left) to
    1 (right); positive azimuth lights the image's right side, as ``Capture.light_azimuth``."""
    _check_images(images)
    if degrees == 0:
        return images.clone()
    x = torch.linspace(-1.0, 1.0, images.shape[-1], dtype=images.dtype)
    gain = 1.0 + intensity * np.sin(np.radians(degrees)) * x
    return (images * gain).clamp(0.0, 1.0)


def light_temperature(images: torch.Tensor, strength: float) -> torch.Tensor:
    """Colour temperature as channel gains (red 1 + 0.10 s, blue 1 − 0.12 s; −1 cool … +1 warm), as the
    FAHR-Synth renderer applies it."""
    _check_images(images)
    if strength == 0:
        return images.clone()
    gains = torch.tensor([1.0 + 0.10 * strength, 1.0, 1.0 - 0.12 * strength], dtype=images.dtype)
    return (images * gains[:, None, None]).clamp(0.0, 1.0)


# iBUG 300-W 68-point layout
LIPS_OUTER, LIPS_INNER = list(range(48, 60)), list(range(60, 68))
EYE_LIDS = {"left": [36, 37, 38, 39], "right": [42, 43, 44, 45]}  # outer corner, upper lid, inner corner
BROWS = {"left": [17, 18, 19, 20, 21], "right": [22, 23, 24, 25, 26]}
LIPSTICK, EYE_SHADOW = (0.70, 0.08, 0.16), (0.45, 0.28, 0.45)


def makeup_masks(landmarks: np.ndarray, size: tuple[int, int]) -> dict[str, np.ndarray]:
    """Boolean masks ``[N, H, W]`` of the lips (outer minus inner lip contour) and the eyelids (between the
    upper lid and the brow) from 68-point landmarks ``[N, 68, 2]`` (x, y pixels)."""
    from skimage.draw import polygon2mask

    points = np.asarray(landmarks, dtype=float)
    if points.ndim != 3 or points.shape[1:] != (68, 2):
        raise ValueError(f"makeup needs 68-point landmarks [N, 68, 2] (x, y pixels), got shape {points.shape}")

    def fill(poly: np.ndarray) -> np.ndarray:
        return polygon2mask(size, poly[:, ::-1])  # (row, col)

    lips, lids = [], []
    for p in points:
        lips.append(fill(p[LIPS_OUTER]) & ~fill(p[LIPS_INNER]))
        lid = np.zeros(size, dtype=bool)
        for side in ("left", "right"):
            lid |= fill(np.concatenate([p[EYE_LIDS[side]], p[BROWS[side]][::-1]]))
        eyes = [fill(p[36:42]), fill(p[42:48])]
        lids.append(lid & ~eyes[0] & ~eyes[1])
    return {"lips": np.stack(lips), "eyelids": np.stack(lids)}


def makeup(images: torch.Tensor, landmarks: np.ndarray, strength: float) -> torch.Tensor:
    """Lipstick and eye shadow painted inside the landmark polygons (alpha 0.6 and 0.45 at strength 1);
    pixels outside them are never touched."""
    _check_images(images)
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"makeup strength must be in [0, 1], got {strength}")
    if strength == 0:
        return images.clone()
    n, _, h, w = images.shape
    if len(landmarks) != n:
        raise ValueError(f"{n} images but {len(landmarks)} landmark sets")
    masks = makeup_masks(landmarks, (h, w))
    out = images.clone()
    for name, colour, alpha in (("lips", LIPSTICK, 0.6), ("eyelids", EYE_SHADOW, 0.45)):
        m = torch.from_numpy(masks[name])[:, None].to(images.dtype) * (alpha * strength)  # [N, 1, H, W]
        out = out + m * (torch.tensor(colour, dtype=images.dtype)[:, None, None] - out)
    return out


WARPS: dict[str, Callable[[torch.Tensor, float], torch.Tensor]] = {
    "yaw": yaw,
    "pitch": pitch,
    "roll": roll,
    "light_direction": light_direction,
    "light_temperature": light_temperature,
}


def warp_table(cfg, batch_size: int = 128) -> pd.DataFrame:
    """The pairs' reference photos changed by the image operations of ``WARPS`` (the 2-D stand-ins a real photo
    set would use) at the strengths FAHR-Synth rendered, with both models' outputs: the layout of
    ``pairs_table``, so that ``paired`` and ``summary`` apply. Makeup is left out: it needs 68 landmarks."""
    from fahr import predict
    from fahr.train import common

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


def perturb_images(images: torch.Tensor, condition: str, strength: float, landmarks=None) -> torch.Tensor:
    """Apply one condition at one strength to aligned photos ``[N, 3, H, W]`` in [0, 1] (``makeup`` needs
    68-point landmarks)."""
    if condition == "makeup":
        if landmarks is None:
            raise ValueError("makeup needs 68-point landmarks [N, 68, 2]")
        return makeup(images, landmarks, strength)
    if condition not in WARPS:
        raise ValueError(f"unknown condition {condition!r}; image perturbations: makeup, {', '.join(WARPS)}")
    return WARPS[condition](images, strength)


NUISANCE_EXCLUDED = ("makeup", *SURGERY)  # conditions that change the face itself, not only the photo


def headline_results(age_summary: pd.DataFrame, risk_summary: pd.DataFrame, visible: pd.DataFrame) -> list:
    """The Robustness chapter's numbers for the reproduction report (``fahr.results.Result`` each)."""
    from fahr.results import Result

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
