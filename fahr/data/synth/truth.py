"""What FAHR-Synth knows and a real cohort does not: the planted effects, each photo's latent truth and oracles,
and the change of visible ageing cues a photo's modifiers make. The chapters' analyses receive this truth through
the cohort table (``fahr.analysis.cohort``), which carries it only for FAHR-Synth."""

from __future__ import annotations

from dataclasses import fields, replace
from functools import lru_cache

import numpy as np
import pandas as pd

from fahr.data.synth import cohorts, world
from fahr.data.synth.face import FRAILTY_SATURATION, AgeCues, FaceParams, Modifiers, cues
from fahr.data.synth.render import REGIONS

# the per-photo truth columns the cohort table carries on FAHR-Synth (clinical cohorts add the last two)
PHOTO_COLUMNS = ("true_age", "bio_gap", "frailty", "apparent_age", "bio_age")
CLINICAL_COLUMNS = ("linear_predictor", "oracle_face")
COLUMNS = PHOTO_COLUMNS + CLINICAL_COLUMNS
APPARENT_AGE_RANGE = (0.0, 110.0)  # years: the renderer's cue model saturates outside


def planted_hazard_ratios() -> dict[str, float]:
    """Hazard ratio FAHR-Synth planted for each clinical term (and for biological age beyond chronological)."""
    h = world.HAZARD
    out = {"age (per decade)": h["age_decade"], "sex: M": h["male"], "stage (per stage)": h["stage"],
           "ECOG (per point)": h["ecog"], "biological-age gap (per decade)": h["bio_gap_decade"],
           "frailty (per SD)": h["frailty_sd"]}  # fmt: skip
    out.update({f"cancer: {k}": v - h["cancer"]["other"] for k, v in h["cancer"].items() if k != "other"})
    return {k: float(np.exp(v)) for k, v in out.items()}


def face_log_hazard(frailty: pd.Series, bio_gap: pd.Series) -> pd.Series:
    """The planted log hazard of frailty (per SD) and biological-age gap (per decade) at the values given."""
    h = world.HAZARD
    return h["frailty_sd"] * frailty + h["bio_gap_decade"] * bio_gap / 10


def visible_frailty(frailty: pd.Series) -> pd.Series:
    """The best guess of each patient's frailty from the face alone: the renderer paints frailty cues in
    proportion to clip(frailty, 0, FRAILTY_SATURATION) (``face.cues``), so a frailty inside that range shows as
    itself, and one below 0 (no cue) or above saturation (full cues) can only be guessed as the cohort's mean
    frailty among the faces that look the same."""
    low, high = 0.0, FRAILTY_SATURATION
    out = frailty.astype(float).clip(low, high)
    for hidden in (frailty <= low, frailty >= high):
        if hidden.any():
            out[hidden] = float(frailty[hidden].mean())
    return out


def face_visible_oracle(frailty: pd.Series, true_age: pd.Series, bio_gap: pd.Series) -> pd.Series:
    """The face-visible oracle (log hazard): what a face can show of the planted hazard — the visible frailty and
    the apparent age's gap to the true age (apparent age as the cue model clips it) — weighed by the planted
    hazard ratios. The ceiling of a face-only score such as FaceSurvival."""
    apparent = (true_age + bio_gap).clip(*APPARENT_AGE_RANGE)
    return face_log_hazard(visible_frailty(frailty), apparent - true_age)


def photo_truth(profile: str, cohort: str) -> pd.DataFrame:
    """Per photo of a built FAHR-Synth cohort (indexed by image_id): the true age (years), the biological-age gap,
    the latent frailty, the apparent age (true age + gap, within the cue model's range), the biological age
    (manifest age + gap) and, for clinical cohorts, the two oracles: ``linear_predictor``, the full planted log
    hazard (what a model plus the clinical factors could reach), and ``oracle_face``, the face-visible oracle."""
    photos, truth, _ = cohorts.load(profile, cohort)
    t = truth.set_index("image_id")
    label_age = photos.set_index("image_id")["age"].reindex(t.index)
    out = pd.DataFrame(
        {
            "true_age": t["age"],
            "bio_gap": t["bio_gap"],
            "frailty": t["frailty"],
            "apparent_age": (t["age"] + t["bio_gap"]).clip(*APPARENT_AGE_RANGE),
            "bio_age": label_age + t["bio_gap"],
        },
        index=t.index,
    )
    if "linear_predictor" in t.columns:
        out["linear_predictor"] = t["linear_predictor"]  # the full planted hazard: clinical factors included
        out["oracle_face"] = face_visible_oracle(t["frailty"], t["age"], t["bio_gap"])
    return out


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


def planted_cues(names=REGIONS) -> pd.DataFrame:
    """How many of FAHR-Synth's planted age and frailty cues (``world.CUE_REGIONS``) are painted in each region."""
    counts = {
        signal: [sum(region in where for where in cues_.values()) for region in names]
        for signal, cues_ in world.CUE_REGIONS.items()
    }
    return pd.DataFrame({f"{s} cues": c for s, c in counts.items()}, index=pd.Index(names, name="region"))
