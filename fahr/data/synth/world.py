"""The FAHR-Synth world: who is in each cohort, how they were photographed, and how long they live.

Everything here is a *planted truth* that the book later sets beside what the models recover. Numbers are
chosen to echo the paper's setting (``../shared/PAPER.md``): cancer patients look older than their age
(FaceAge's predecessor measured +4.79 years), chronological age carries a hazard ratio near 1.15 per decade,
and stage, ECOG and cancer type are the clinical prognostic factors the Cox models adjust for.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fahr.data.synth.face import RACE_GROUPS

CANCER_TYPES = ("lung", "gastrointestinal", "head_neck", "breast", "prostate", "other")

# Proportional-hazards model of the clinical cohorts: log-hazard ratios (natural log), per stated unit.
HAZARD = {
    "age_decade": 0.14,  # chronological age, per 10 years (HR 1.15)
    "bio_gap_decade": 0.30,  # biological-age gap (looks older than one's age), per 10 years
    "frailty_sd": 0.50,  # latent frailty, per SD
    "stage": 0.35,  # per stage (1–4)
    "ecog": 0.40,  # per ECOG point (0–4)
    "male": 0.10,
    "cancer": {"lung": 0.50, "gastrointestinal": 0.30, "head_neck": 0.15, "breast": -0.30, "prostate": -0.50,
               "other": 0.0},
}  # fmt: skip
BASELINE = {"weibull_shape": 1.2, "median_years_at_reference": 6.0}  # reference: age 65, stage 1, ECOG 0, …
CENSORING = {"followup_min_years": 2.0, "followup_max_years": 8.0, "loss_rate_per_year": 0.03}

# Where each visible cue is painted, by the named region masks (for the saliency chapter).
CUE_REGIONS = {
    "age": {
        "forehead lines": ["forehead"],
        "crow's feet, eyelid droop, eye bags": ["periorbital"],
        "nasolabial folds, jowls": ["cheeks", "chin"],
        "greying, receding hairline": ["hair"],
        "skin texture, spots": ["forehead", "cheeks", "temples", "chin", "skin"],
    },
    "frailty": {
        "temporal wasting": ["temples"],
        "under-eye darkness": ["periorbital"],
        "hollow cheeks, thinner face": ["cheeks"],
        "pallor": ["forehead", "cheeks", "temples", "chin", "nose", "skin"],
    },
}


@dataclass(frozen=True)
class AgeMix:
    """A mixture of normal distributions of age (years), truncated to [low, high]."""

    components: tuple[tuple[float, float, float], ...]  # (weight, mean, sd)
    low: float = 0.0
    high: float = 100.0

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        w = np.array([c[0] for c in self.components])
        which = rng.choice(len(w), size=n, p=w / w.sum())
        mean = np.array([c[1] for c in self.components])[which]
        sd = np.array([c[2] for c in self.components])[which]
        ages = rng.normal(mean, sd)
        bad = (ages < self.low) | (ages > self.high)
        while bad.any():  # redraw outside the range: truncation, not piling up at the bounds
            ages[bad] = rng.normal(mean[bad], sd[bad])
            bad = (ages < self.low) | (ages > self.high)
        return ages


@dataclass(frozen=True)
class CaptureStyle:
    """How a dataset's photos were taken: ranges the capture parameters are drawn from."""

    yaw_sd: float = 6.0
    pitch_sd: float = 4.0
    roll_sd: float = 3.0
    light_azimuth_sd: float = 25.0
    light_intensity: tuple[float, float] = (0.2, 0.5)
    colour_temperature_sd: float = 0.3
    exposure: tuple[float, float] = (0.9, 1.1)
    blur: tuple[float, float] = (0.0, 0.2)
    noise: tuple[float, float] = (0.005, 0.02)
    jpeg_quality: tuple[int, int] = (75, 95)
    grayscale_rate: float = 0.0
    makeup_rate: float = 0.0  # share of women (and a few men) wearing foundation
    backgrounds: tuple[tuple[float, float, float], ...] = ((0.55, 0.60, 0.66), (0.75, 0.74, 0.70), (0.35, 0.40, 0.35))
    scale: tuple[float, float] = (0.95, 1.05)


@dataclass(frozen=True)
class Population:
    """Who is in a cohort: ages, sex and race mix, and how their biology departs from their age."""

    ages: AgeMix
    male_rate: float = 0.5
    race_weights: tuple[float, ...] = (0.45, 0.2, 0.15, 0.1, 0.1)  # RACE_GROUPS order
    bio_gap_mean: float = 0.0  # years
    bio_gap_sd: float = 4.0
    frailty_mean: float = -0.5  # the general population is healthier than patients
    frailty_sd: float = 0.8


@dataclass(frozen=True)
class AgeDataset:
    """A public-style age dataset of FAHR-Synth: who, how photographed, how large relative to the others."""

    name: str
    description: str
    population: Population
    capture: CaptureStyle
    relative_size: float = 1.0
    label_noise_sd: float = 0.0  # years: ages written down by people are not exact


AGE_DATASETS: tuple[AgeDataset, ...] = (
    AgeDataset(
        "synth-utk",
        "in-the-wild web photos (UTKFace-like): all ages, most 20–40, some babies, varied pose",
        Population(AgeMix(((0.12, 3, 3), (0.6, 30, 9), (0.22, 55, 12), (0.06, 82, 8)), 0, 100)),
        CaptureStyle(
            yaw_sd=10,
            pitch_sd=6,
            roll_sd=5,
            light_azimuth_sd=40,
            blur=(0.0, 0.4),
            jpeg_quality=(55, 90),
            makeup_rate=0.3,
        ),
        relative_size=1.4,
    ),
    AgeDataset(
        "synth-appa",
        "studio-like photos rated for apparent age (APPA-REAL-like): ages 5–85, frontal, even light",
        Population(AgeMix(((0.1, 12, 4), (0.65, 30, 10), (0.25, 55, 12)), 5, 85)),
        CaptureStyle(
            yaw_sd=4,
            pitch_sd=3,
            roll_sd=2,
            light_azimuth_sd=15,
            light_intensity=(0.15, 0.3),
            jpeg_quality=(85, 95),
            makeup_rate=0.25,
        ),
        relative_size=0.8,
    ),
    AgeDataset(
        "synth-imdb",
        "celebrity photos (IMDB-WIKI-like): adults 18–80, high quality, often made up, noisy labels",
        Population(AgeMix(((0.7, 35, 9), (0.3, 55, 10)), 18, 80), bio_gap_mean=-2.0, bio_gap_sd=3.0, frailty_mean=-0.8),
        CaptureStyle(
            yaw_sd=12,
            pitch_sd=6,
            roll_sd=4,
            light_azimuth_sd=45,
            light_intensity=(0.3, 0.6),
            colour_temperature_sd=0.5,
            makeup_rate=0.6,
        ),
        relative_size=1.2,
        label_noise_sd=3.0,
    ),
    AgeDataset(
        "synth-agedb",
        "historical photos (AgeDB-like): ages 1–100, older skew, many grey-scale, blurred, grainy",
        Population(AgeMix(((0.05, 8, 5), (0.45, 45, 15), (0.35, 68, 10), (0.15, 86, 6)), 1, 100)),
        CaptureStyle(
            yaw_sd=8, blur=(0.2, 0.6), noise=(0.02, 0.05), jpeg_quality=(40, 80), grayscale_rate=0.5, makeup_rate=0.1
        ),
        relative_size=1.0,
    ),
)

PRETRAIN = (
    Population(AgeMix(((0.06, 10, 5), (0.7, 35, 11), (0.24, 60, 12)), 1, 95)),
    CaptureStyle(
        yaw_sd=14,
        pitch_sd=8,
        roll_sd=6,
        light_azimuth_sd=50,
        blur=(0.0, 0.5),
        jpeg_quality=(50, 95),
        grayscale_rate=0.05,
        makeup_rate=0.3,
    ),
)


# The clinical cohorts are designed so that, at the demo's size, the tests of the paper's clinical claims can show
# them when the method works and cannot when it is blind (``fahr.report.power`` simulates both without rendering;
# tests/test_power.py holds it). With a biological-age gap of SD 5 years, a FaceAge as accurate as the demo's (MAE
# about 7 years) reads too little of the gap through its error: FaceAge beyond the scratch model had a power of
# 6-10 % and FaceAge beyond FaceSurvival 3 %. A spread of 15 years (the gap's hazard ratio per decade unchanged)
# and a test split of 40 % of cohort A give them about 95 % and 80 %; the training split keeps 1,500 patients on
# the demo. The Cohorts chapter shows this choice and its reason.
CLINICAL_GAP_SD = 15.0  # years: the SD of the biological-age gap in both clinical cohorts
CLINICAL_A_SPLITS = {"train": 0.5, "val": 0.1, "test": 0.4}  # by patient


@dataclass(frozen=True)
class ClinicalCohort:
    """A radiotherapy cohort: case mix, photo conditions, and the splits it is used in."""

    name: str
    description: str
    population: Population
    capture: CaptureStyle
    cancer_weights: tuple[float, ...]  # CANCER_TYPES order
    stage_shift: float  # pushes stages up (more advanced disease)
    splits: dict[str, float] = field(default_factory=lambda: {"test": 1.0})


CLINICAL: tuple[ClinicalCohort, ...] = (
    ClinicalCohort(
        "clinical-a",
        "development cohort: mixed radiotherapy patients, clinic photos at first consultation",
        Population(
            AgeMix(((1.0, 64, 11),), 25, 95),
            male_rate=0.52,
            bio_gap_mean=4.8,
            bio_gap_sd=CLINICAL_GAP_SD,
            frailty_mean=0.0,
            frailty_sd=1.0,
        ),
        CaptureStyle(
            yaw_sd=5, pitch_sd=4, light_azimuth_sd=20, jpeg_quality=(80, 95), backgrounds=((0.80, 0.82, 0.84),)
        ),
        cancer_weights=(0.25, 0.18, 0.14, 0.18, 0.15, 0.10),
        stage_shift=0.0,
        splits=CLINICAL_A_SPLITS,
    ),
    ClinicalCohort(
        "clinical-b",
        "independent cohort: another hospital, older and more advanced (more lung, stage IV), "
        "photos under a cool flash",
        Population(
            AgeMix(((1.0, 68, 10),), 30, 95),
            male_rate=0.58,
            bio_gap_mean=5.5,
            bio_gap_sd=CLINICAL_GAP_SD,
            frailty_mean=0.3,
            frailty_sd=1.0,
        ),
        CaptureStyle(
            yaw_sd=7,
            pitch_sd=5,
            light_azimuth_sd=10,
            light_intensity=(0.45, 0.65),
            colour_temperature_sd=0.2,
            jpeg_quality=(65, 85),
            backgrounds=((0.62, 0.70, 0.72),),
            blur=(0.1, 0.3),
        ),
        cancer_weights=(0.38, 0.2, 0.12, 0.1, 0.1, 0.1),
        stage_shift=0.5,
    ),
)

# Perturbation pairs for the robustness chapter: condition → strengths (degrees for pose and light
# direction, −1…1 for colour temperature, 0–1 otherwise). Strength 0 is the reference photo itself.
PERTURBATIONS = {
    "makeup": (0.25, 0.5, 0.75, 1.0),
    "yaw": (-30.0, -15.0, 15.0, 30.0),
    "pitch": (-15.0, 15.0),
    "roll": (-15.0, 15.0),
    "light_direction": (-60.0, -30.0, 30.0, 60.0),
    "light_temperature": (-1.0, 1.0),
    "facelift": (0.5, 1.0),
    "blepharoplasty": (0.5, 1.0),
}
PAIRS_POPULATION = Population(AgeMix(((1.0, 55, 17),), 18, 92))


def race_of(rng: np.random.Generator, weights: tuple[float, ...], n: int) -> np.ndarray:
    w = np.asarray(weights, dtype=float)
    return np.asarray(RACE_GROUPS, dtype=object)[rng.choice(len(RACE_GROUPS), size=n, p=w / w.sum())]
