"""Build the FAHR-Synth cohorts: sample people and photos, plant survival, render, write manifests and truth.

Each cohort is a folder ``artifacts/<profile>/synth/<cohort>/`` with ``images/``, ``manifest.parquet``
(the contract every later stage reads), ``truth.parquet`` (the planted latent values of every photo) and
``planted.json`` (the cohort's design: distributions, hazard ratios, oracle concordance). A cohort is
re-rendered only when its part of the config or the code that makes it changes.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import zlib
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from fahr.core import cache, paths, provenance
from fahr.core.config import Config
from fahr.data import manifest
from fahr.data.synth import world
from fahr.data.synth.face import HAIR_COLOURS, IRIS_COLOURS, Capture, FaceParams, Modifiers
from fahr.data.synth.render import LANDMARKS, render
from fahr.stats import concordance

COHORTS = ("pretrain", "age", "clinical-a", "clinical-b", "pairs")
SHAPE = ("face_width", "face_length", "jaw", "eye_spacing", "eye_size", "nose_length", "nose_width", "mouth_width",
         "lips", "brows")  # fmt: skip
CAPTURE_FIELDS = tuple(f for f in Capture.__dataclass_fields__ if f not in ("background", "shift"))
MODIFIER_FIELDS = tuple(Modifiers.__dataclass_fields__)


def cohort_rng(seed: int, cohort: str) -> np.random.Generator:
    """The random generator of one cohort: independent of the others, fixed by the seed."""
    return np.random.default_rng(np.random.SeedSequence([seed, zlib.crc32(cohort.encode())]))


def sample_people(rng: np.random.Generator, pop: world.Population, n: int) -> pd.DataFrame:
    """Identities with their age (years), biological-age gap (years), latent frailty (z) and looks."""
    sex = (rng.random(n) < pop.male_rate).astype(int)
    people = pd.DataFrame({
        "age": pop.ages.sample(rng, n),
        "bio_gap": rng.normal(pop.bio_gap_mean, pop.bio_gap_sd, n),
        "frailty": rng.normal(pop.frailty_mean, pop.frailty_sd, n),
        "sex": sex,
        "race": world.race_of(rng, pop.race_weights, n),
        "tone": rng.normal(0, 1, n),
        **{name: rng.normal(0, 1, n) for name in SHAPE},
        "hair_colour": rng.choice(len(HAIR_COLOURS), n, p=[0.55, 0.3, 0.1, 0.05]),
        "iris_colour": rng.choice(len(IRIS_COLOURS), n, p=[0.7, 0.2, 0.1]),
        "long_hair": rng.random(n) < np.where(sex == 1, 0.05, 0.6),
        "beard": np.where(sex == 1, rng.random(n) * (rng.random(n) < 0.5), 0.0),
        "baldness": rng.beta(2, 2, n),
        "texture_seed": rng.integers(0, 2**31 - 1, n),
    })  # fmt: skip
    dark_hair = people["race"].isin(["black", "asian", "indian"]).to_numpy()
    people.loc[dark_hair, "hair_colour"] = rng.choice(2, int(dark_hair.sum()), p=[0.85, 0.15])
    return people


def sample_captures(rng: np.random.Generator, style: world.CaptureStyle, people: pd.DataFrame) -> pd.DataFrame:
    """Photo conditions for each row of ``people``, drawn from a dataset's capture style."""
    n = len(people)
    made_up = (rng.random(n) < style.makeup_rate) & ((people["sex"].to_numpy() == 0) | (rng.random(n) < 0.1))
    made_up &= people["age"].to_numpy() >= 14
    backgrounds = np.asarray(style.backgrounds)[rng.integers(0, len(style.backgrounds), n)]
    return pd.DataFrame({
        "yaw": rng.normal(0, style.yaw_sd, n).clip(-35, 35),
        "pitch": rng.normal(0, style.pitch_sd, n).clip(-20, 20),
        "roll": rng.normal(0, style.roll_sd, n).clip(-20, 20),
        "light_azimuth": rng.normal(0, style.light_azimuth_sd, n).clip(-80, 80),
        "light_elevation": rng.uniform(5, 35, n),
        "light_intensity": rng.uniform(*style.light_intensity, n),
        "colour_temperature": rng.normal(0, style.colour_temperature_sd, n).clip(-1, 1),
        "exposure": rng.uniform(*style.exposure, n),
        "bg_r": backgrounds[:, 0] + rng.normal(0, 0.03, n),
        "bg_g": backgrounds[:, 1] + rng.normal(0, 0.03, n),
        "bg_b": backgrounds[:, 2] + rng.normal(0, 0.03, n),
        "blur": rng.uniform(*style.blur, n),
        "noise": rng.uniform(*style.noise, n),
        "jpeg_quality": rng.integers(style.jpeg_quality[0], style.jpeg_quality[1] + 1, n),
        "grayscale": rng.random(n) < style.grayscale_rate,
        "scale": rng.uniform(*style.scale, n),
        "noise_seed": rng.integers(0, 2**31 - 1, n),
        "foundation": np.where(made_up, rng.uniform(0.2, 0.8, n), 0.0),
        "lipstick": np.where(made_up, rng.uniform(0.0, 0.8, n), 0.0),
        "eye_shadow": np.where(made_up, rng.uniform(0.0, 0.6, n), 0.0),
        "facelift": 0.0,
        "blepharoplasty": 0.0,
    })  # fmt: skip


def face_of(row: dict) -> tuple[FaceParams, Capture, Modifiers]:
    """The renderer's arguments from one row of a truth table."""
    face = FaceParams(**{k: row[k] for k in FaceParams.__dataclass_fields__})
    capture = Capture(background=(row["bg_r"], row["bg_g"], row["bg_b"]), **{k: row[k] for k in CAPTURE_FIELDS})
    return face, capture, Modifiers(**{k: row[k] for k in MODIFIER_FIELDS})


def plain_row(row: dict) -> dict:
    """A table row with NumPy scalars turned into plain Python values (what the renderer's dataclasses take)."""
    return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in row.items()}


def _render_row(job: tuple[dict, int]) -> tuple[bytes, str, np.ndarray]:
    row, size = job
    out = render(*face_of(row), size=size)
    return out.encoded, out.suffix, out.landmarks


def render_table(
    truth: pd.DataFrame, folder: Path, size: int, workers: int, desc: str, progress: bool = True
) -> pd.DataFrame:
    """Render every row into ``folder/images/`` (in parallel); return image paths and landmark columns."""
    (folder / "images").mkdir(parents=True, exist_ok=True)
    jobs = [(plain_row(row), size) for row in truth.to_dict("records")]
    results: Iterator
    if workers > 1:
        pool = mp.get_context("fork").Pool(workers)
        results = pool.imap(_render_row, jobs, chunksize=32)
    else:
        pool, results = None, map(_render_row, jobs)
    paths_, points = [], np.zeros((len(jobs), len(LANDMARKS), 2), dtype=np.float32)
    try:
        for i, (image_id, (encoded, suffix, marks)) in enumerate(
            tqdm(
                zip(truth["image_id"], results, strict=True),
                total=len(jobs),
                desc=desc,
                mininterval=2.0,
                disable=not progress,
            )  # fmt: skip
        ):
            rel = f"images/{image_id}{suffix}"
            (folder / rel).write_bytes(encoded)
            paths_.append(rel)
            points[i] = marks
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    cols = {f"{name}_{axis}": points[:, j, a] for j, name in enumerate(LANDMARKS) for a, axis in enumerate("xy")}
    return pd.DataFrame({"path": paths_, **cols}, index=truth.index)


def _age_decade_strata(ages: pd.Series) -> pd.Series:
    return (ages // 10).clip(upper=9).astype(int)


def _split(people: pd.DataFrame, fractions: dict[str, float], seed: int, stratify: list[str]) -> pd.Series:
    subjects = people.drop_duplicates("subject_id").set_index("subject_id")
    return people["subject_id"].map(manifest.split_subjects(subjects, fractions, seed, stratify))


def _ids(prefix: str, n: int) -> list[str]:
    return [f"{prefix}-{i:06d}" for i in range(n)]


def design_pretrain(cfg: Config, rng: np.random.Generator) -> tuple[pd.DataFrame, dict]:
    """The unlabelled pretraining corpus: many faces, varied capture, no labels in the manifest."""
    pop, style = world.PRETRAIN
    people = sample_people(rng, pop, cfg.synth.pretrain_n)
    truth = pd.concat([people, sample_captures(rng, style, people)], axis=1)
    truth["image_id"] = _ids("pre", len(truth))
    truth["subject_id"] = truth["image_id"].str.replace("pre-", "pre-s", regex=False)
    truth["dataset"] = "synth-pretrain"
    truth["split"] = _split(truth, {"train": 0.98, "val": 0.02}, cfg.seed, [])
    return truth, {"population": asdict(pop), "capture": asdict(style), "labels_in_manifest": []}


def design_age(cfg: Config, rng: np.random.Generator) -> tuple[pd.DataFrame, dict]:
    """Four public-style age datasets with their own ages, capture styles and a held-out test split each."""
    frames, designs = [], {}
    for ds in world.AGE_DATASETS:
        n = int(round(cfg.synth.age_n * ds.relative_size))
        people = sample_people(rng, ds.population, n)
        photos = 1 + (rng.random(n) < cfg.synth.repeat_photo_rate) * rng.integers(1, 3, n)  # 1–3 photos a person
        people["subject_id"] = [f"{ds.name}-s{i:05d}" for i in range(n)]
        people = people.loc[people.index.repeat(photos)].reset_index(drop=True)
        later = people.duplicated("subject_id")  # further photos of a person, years apart
        people.loc[later, "age"] = (people.loc[later, "age"] + rng.uniform(-15, 15, int(later.sum()))).clip(
            ds.population.ages.low, ds.population.ages.high
        )
        people["texture_seed"] = rng.integers(0, 2**31 - 1, len(people))
        truth = pd.concat([people, sample_captures(rng, ds.capture, people)], axis=1)
        truth["dataset"] = ds.name
        truth["label_age"] = np.floor(truth["age"] + rng.normal(0, ds.label_noise_sd, len(truth))).clip(0, 100)
        truth["age_decade"] = _age_decade_strata(truth["age"])
        truth["split"] = _split(truth, {"train": 0.7, "val": 0.1, "test": 0.2}, cfg.seed, ["age_decade"])
        frames.append(truth.drop(columns="age_decade"))
        designs[ds.name] = {"description": ds.description, "population": asdict(ds.population),
                            "capture": asdict(ds.capture), "label_noise_sd_years": ds.label_noise_sd}  # fmt: skip
    truth = pd.concat(frames, ignore_index=True)
    truth["image_id"] = _ids("age", len(truth))
    return truth, {"datasets": designs, "labels_in_manifest": ["age", "sex", "race"]}


def plant_survival(rng: np.random.Generator, people: pd.DataFrame, cohort: world.ClinicalCohort) -> pd.DataFrame:
    """Clinical covariates, the true linear predictor and survival times (years) from the planted PH model."""
    n, h = len(people), world.HAZARD
    out = people.copy()
    cancer = np.asarray(world.CANCER_TYPES, dtype=object)[
        rng.choice(len(world.CANCER_TYPES), n, p=np.asarray(cohort.cancer_weights) / sum(cohort.cancer_weights))
    ]
    out["cancer_type"] = cancer
    out.loc[cancer == "breast", "sex"] = (rng.random(int((cancer == "breast").sum())) < 0.01).astype(int)
    out.loc[cancer == "prostate", "sex"] = 1
    stage_latent = rng.normal(cohort.stage_shift, 1.0, n)
    out["stage"] = 1 + np.searchsorted([-0.8, 0.0, 0.8], stage_latent)
    out["frailty"] = out["frailty"] + 0.25 * (out["stage"] - 2.5)
    ecog_latent = 0.5 * out["frailty"] + 0.3 * (out["stage"] - 2.5) + 0.02 * (out["age"] - 65) + rng.normal(0, 0.7, n)
    out["ecog"] = np.searchsorted([-0.3, 0.6, 1.4], ecog_latent)
    lp = (
        h["age_decade"] * (out["age"] - 65) / 10
        + h["bio_gap_decade"] * out["bio_gap"] / 10
        + h["frailty_sd"] * out["frailty"]
        + h["stage"] * (out["stage"] - 1)
        + h["ecog"] * out["ecog"]
        + h["male"] * out["sex"]
        + out["cancer_type"].map(h["cancer"])
    )
    shape = world.BASELINE["weibull_shape"]
    scale = world.BASELINE["median_years_at_reference"] / np.log(2) ** (1 / shape)
    death = scale * (rng.exponential(1.0, n) / np.exp(lp)) ** (1 / shape)
    c = world.CENSORING
    censor = np.minimum(rng.uniform(c["followup_min_years"], c["followup_max_years"], n),
                        rng.exponential(1 / c["loss_rate_per_year"], n))  # fmt: skip
    out["linear_predictor"] = lp
    out["time"] = np.minimum(death, censor)
    out["event"] = (death <= censor).astype(int)
    return out


def oracle_concordance(truth: pd.DataFrame) -> float:
    """Harrell's C of the true linear predictor: the best any risk score could do on this cohort."""
    return concordance.harrell(
        truth["linear_predictor"].to_numpy(), truth["time"].to_numpy(), truth["event"].to_numpy()
    )


def design_clinical(cfg: Config, rng: np.random.Generator, which: str) -> tuple[pd.DataFrame, dict]:
    """A cancer cohort: one clinic photo per patient, clinical covariates, planted survival."""
    cohort = next(c for c in world.CLINICAL if c.name == which)
    n = cfg.synth.clinical_a_n if which == "clinical-a" else cfg.synth.clinical_b_n
    people = plant_survival(rng, sample_people(rng, cohort.population, n), cohort)
    truth = pd.concat([people, sample_captures(rng, cohort.capture, people)], axis=1)
    prefix = "cla" if which == "clinical-a" else "clb"
    truth["image_id"] = _ids(prefix, n)
    truth["subject_id"] = [f"{prefix}-p{i:06d}" for i in range(n)]
    truth["dataset"] = which
    truth["label_age"] = np.floor(truth["age"])
    truth["split"] = _split(truth, cohort.splits, cfg.seed, ["event", "cancer_type"])
    design = {
        "description": cohort.description, "population": asdict(cohort.population), "capture": asdict(cohort.capture),
        "cancer_types": dict(zip(world.CANCER_TYPES, cohort.cancer_weights, strict=True)),
        "stage_shift": cohort.stage_shift, "log_hazard_ratios": world.HAZARD, "baseline": world.BASELINE,
        "censoring": world.CENSORING, "time_unit": "years",
        "events": int(truth["event"].sum()), "median_follow_up_years": float(truth["time"].median()),
        "oracle_c_index": oracle_concordance(truth),
        "oracle_c_index_by_split": {s: oracle_concordance(g) for s, g in truth.groupby("split")},
        "labels_in_manifest": ["age", "sex", "race", "time", "event", "cancer_type", "stage", "ecog"],
    }  # fmt: skip
    return truth, design


def design_pairs(cfg: Config, rng: np.random.Generator) -> tuple[pd.DataFrame, dict]:
    """The same people photographed under makeup, pose, lighting and cosmetic surgery, beside a reference."""
    people = sample_people(rng, world.PAIRS_POPULATION, cfg.synth.pairs_n)
    base = sample_captures(rng, world.CaptureStyle(yaw_sd=0, pitch_sd=0, roll_sd=0, light_azimuth_sd=0,
                                                   colour_temperature_sd=0, blur=(0, 0), jpeg_quality=(92, 92),
                                                   light_intensity=(0.3, 0.3), exposure=(1, 1)), people)  # fmt: skip
    reference = pd.concat([people, base], axis=1)
    reference["pair_id"] = [f"pair-{i:05d}" for i in range(len(people))]
    rows = [reference.assign(condition="reference", strength=0.0)]
    for condition, strengths in world.PERTURBATIONS.items():
        for strength in strengths:
            rows.append(perturb(reference, condition, strength))
    truth = pd.concat(rows, ignore_index=True)
    truth["image_id"] = _ids("pair", len(truth))
    truth["subject_id"] = truth["pair_id"]
    truth["dataset"] = "synth-pairs"
    truth["label_age"] = np.floor(truth["age"])
    truth["split"] = "test"
    design = {"conditions": {k: list(v) for k, v in world.PERTURBATIONS.items()},
              "units": {"yaw": "degrees", "pitch": "degrees", "roll": "degrees", "light_direction": "degrees",
                        "light_temperature": "-1 cool … +1 warm", "makeup": "0–1", "facelift": "0–1",
                        "blepharoplasty": "0–1"},
              "labels_in_manifest": ["age", "sex", "race", "condition", "strength", "pair_id"]}  # fmt: skip
    return truth, design


# the capture or modifier columns each perturbation sets, as a function of its strength
PERTURB_COLUMNS: dict[str, Callable[[float], dict[str, float]]] = {
    "makeup": lambda s: {"foundation": s, "lipstick": s, "eye_shadow": s},
    "yaw": lambda s: {"yaw": s},
    "pitch": lambda s: {"pitch": s},
    "roll": lambda s: {"roll": s},
    "light_direction": lambda s: {"light_azimuth": s, "light_intensity": 0.6},
    "light_temperature": lambda s: {"colour_temperature": s},
    "facelift": lambda s: {"facelift": s},
    "blepharoplasty": lambda s: {"blepharoplasty": s},
}


def perturb(reference: pd.DataFrame, condition: str, strength: float) -> pd.DataFrame:
    """The reference photos changed by one condition at one strength (true age and identity unchanged).
    Strength 0 changes nothing: the result renders to the reference's exact pixels."""
    if condition not in PERTURB_COLUMNS:
        raise ValueError(f"unknown perturbation {condition!r}; known: {', '.join(PERTURB_COLUMNS)}")
    out = reference.assign(condition=condition, strength=float(strength))
    if strength != 0:
        out = out.assign(**PERTURB_COLUMNS[condition](float(strength)))
    return out


DESIGNS = {
    "pretrain": design_pretrain,
    "age": design_age,
    "clinical-a": lambda cfg, rng: design_clinical(cfg, rng, "clinical-a"),
    "clinical-b": lambda cfg, rng: design_clinical(cfg, rng, "clinical-b"),
    "pairs": design_pairs,
}
MANIFEST_COLUMNS = {
    "pretrain": [],
    "age": ["age", "sex", "race"],
    "clinical-a": ["age", "sex", "race", "time", "event", "cancer_type", "stage", "ecog"],
    "clinical-b": ["age", "sex", "race", "time", "event", "cancer_type", "stage", "ecog"],
    "pairs": ["age", "sex", "race", "condition", "strength", "pair_id"],
}


def to_manifest(truth: pd.DataFrame, cohort: str) -> pd.DataFrame:
    """The manifest of a cohort: the required columns and only the labels a real dataset would have."""
    out = truth[list(manifest.REQUIRED)].copy()
    for column in MANIFEST_COLUMNS[cohort]:
        if column == "age":
            out["age"] = truth["label_age"].astype(float)
        elif column == "sex":
            out["sex"] = np.where(truth["sex"] == 1, "M", "F")
        else:
            out[column] = truth[column]
    return out


def cohort_dir(profile: str, cohort: str) -> Path:
    return paths.stage_dir(profile, "synth") / cohort


def fingerprint(cfg: Config, cohort: str) -> str:
    """What a cohort depends on: the synth config, the seed and the code that renders it."""
    return cache.digest(cfg.synth.model_dump(), cfg.seed, cohort, cache.code_fingerprint(["fahr.data.synth.cohorts"]))


def is_current(cfg: Config, cohort: str) -> bool:
    record = provenance.read(cohort_dir(cfg.profile, cohort) / "manifest.parquet")
    return record is not None and record.get("fingerprint") == fingerprint(cfg, cohort)


def build_cohort(cfg: Config, cohort: str, progress: bool = True) -> Path:
    """Design, render and write one cohort into its folder, atomically (a killed run leaves the old one)."""
    truth, design = DESIGNS[cohort](cfg, cohort_rng(cfg.seed, cohort))
    target = cohort_dir(cfg.profile, cohort)
    started = provenance.now()
    with provenance.atomic_path(target) as tmp:
        rendered = render_table(truth, tmp, cfg.synth.image_size, cfg.synth.workers, f"synth {cohort}", progress)
        truth = pd.concat([truth.drop(columns=["path"], errors="ignore"), rendered], axis=1)
        table = to_manifest(truth, cohort)
        manifest.validate(table, f"{cohort} manifest")  # our own output must honour the contract too
        table.to_parquet(tmp / "manifest.parquet", index=False)
        truth.to_parquet(tmp / "truth.parquet", index=False)
        splits = truth["split"].value_counts().to_dict()
        design.update({"cohort": cohort, "images": len(truth), "image_size": cfg.synth.image_size,
                       "splits": splits, "cue_regions": world.CUE_REGIONS})  # fmt: skip
        (tmp / "planted.json").write_text(json.dumps(design, indent=2, default=_json_default) + "\n")
        provenance.write_json(
            provenance.provenance_path(tmp / "manifest.parquet"),
            provenance.record(
                cfg, "synth", started, cohort=cohort, rows=len(table), fingerprint=fingerprint(cfg, cohort)
            ),
        )
    return target


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple | np.ndarray):
        return list(value)
    return str(value)


def build(cfg: Config, cohorts: tuple[str, ...] = COHORTS, force: bool = False, progress: bool = True) -> pd.DataFrame:
    """Make every cohort that is missing or out of date; return a table of cohorts, what was done, folders."""
    unknown = set(cohorts) - set(COHORTS)
    if unknown:
        raise ValueError(f"unknown cohorts {sorted(unknown)}; cohorts: {', '.join(COHORTS)}")
    rows = []
    for cohort in cohorts:
        stale = force or not is_current(cfg, cohort)
        if stale:
            if progress:
                print(f"[synth] rendering cohort {cohort!r} (profile {cfg.profile})", flush=True)
            build_cohort(cfg, cohort, progress)
        elif progress:
            print(f"[synth] cohort {cohort!r} is up to date", flush=True)
        rows.append(
            {
                "cohort": cohort,
                "action": "rendered" if stale else "up to date",
                "folder": cohort_dir(cfg.profile, cohort),
            }
        )
    return pd.DataFrame(rows).set_index("cohort")


def load(profile: str, cohort: str) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """(manifest, truth, planted design) of a built cohort; the manifest's paths made absolute."""
    folder = cohort_dir(profile, cohort)
    if provenance.read(folder / "manifest.parquet") is None:
        raise FileNotFoundError(
            f"cohort {cohort!r} of profile {profile!r} is not built: run `fahr synth --profile {profile}`"
        )
    table = pd.read_parquet(folder / "manifest.parquet")
    table["path"] = [str(folder / p) for p in table["path"]]
    truth = pd.read_parquet(folder / "truth.parquet")
    return table, truth, json.loads((folder / "planted.json").read_text())
