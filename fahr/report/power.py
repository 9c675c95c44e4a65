"""The power of each clinical claim's test at this build's size, by simulation from FAHR-Synth's planted model.

A verdict of "inconclusive" or "not reproduced" means little without the chance the test had to show the effect.
On FAHR-Synth that chance can be computed: the planted model draws new clinical cohorts of this build's size, the
build's models are stood in for by scores as accurate as this build measured them, and each claim's own test
(``fahr.report.claims``) runs on the numbers the FaceSurvival chapter's analysis (``fahr.analysis.survival``) gives
for them. The share of simulated builds in which the claim is reproduced is its power.

How the models are stood in for (``Accuracy``):

- **FaceAge** reads the face's apparent age (true age plus the planted biological-age gap, as the renderer clips
  it) with a Gaussian error whose mean absolute value is this build's FaceAge test MAE; the scratch model the same,
  with its own MAE.
- **FaceSurvival** is the face-visible oracle (``fahr.data.synth.truth.face_visible_oracle``) plus Gaussian noise,
  its SD chosen so that its Harrell's C on cohort A equals this build's FaceSurvival C on A's test split (no noise
  when the build matches or beats the oracle).

Each claim also has a **control that must fail** (``CONTROLS``): the same simulation with the model the claim is
about made blind — a FaceAge that reads chronological age only (it knows nothing of biological age), or a
FaceSurvival that reads nothing of the face. The share of such builds that reproduce the claim is its false
positive rate, which a sound test keeps near ``ALPHA``/2.

The FaceAge errors are measured on the public-style test photos and assumed the same on clinic photos. Power is a
property of FAHR-Synth's planted model: on real data there is none to simulate from, and the report leaves it out.
"""

from __future__ import annotations

import multiprocessing
import os
import warnings
from collections.abc import Iterable, Iterator
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import partial

import numpy as np
import pandas as pd

from fahr.analysis import survival
from fahr.core.config import Config
from fahr.data.synth import cohorts, truth, world
from fahr.report import claims
from fahr.stats import concordance, cox

SIMULATED = ("FaceSurvival quartiles", "Independent cohort", "FaceAge prognosis", "Combination", "Complementary")
# why the other claims have no power beside their verdict
UNSIMULATED = (
    "The other claims are about what the trained networks themselves do (their errors photo by photo, their shifts "
    "under an image operation, their saliency maps), which a draw from the planted model cannot stand in for without "
    "rendering and training again: they show no power (—). Their confidence intervals carry their uncertainty, and "
    "`make spread` shows how far each number moves from seed to seed."
)
CALIBRATION_PATIENTS = 2000  # cohort-A patients on which FaceSurvival's noise is matched to the measured C


@dataclass(frozen=True)
class Accuracy:
    """How accurate the simulated models are: FaceAge's and the scratch model's errors (SD, years), FaceSurvival's
    noise (SD, log hazard) around the face-visible oracle, and what FaceAge reads."""

    faceage_sd: float
    scratch_sd: float
    facesurvival_noise: float
    faceage_reads: str = "apparent"  # "apparent" (the face's age) or "chronological" (a control blind to it)
    facesurvival_reads: str = "face"  # "face" (the face-visible oracle, with noise) or "nothing" (a blind control)


def error_sd(mae: float) -> float:
    """The SD of a zero-mean Gaussian error whose mean absolute value is ``mae``."""
    return float(mae) * np.sqrt(np.pi / 2)


def clinical(name: str) -> world.ClinicalCohort:
    return next(c for c in world.CLINICAL if c.name == name)


def patients(rng: np.random.Generator, name: str, n: int) -> pd.DataFrame:
    """``n`` patients of a FAHR-Synth clinical cohort drawn from the planted model, as the analysis table holds
    them (labelled age, sex, race, cancer, stage, ECOG, time, event), with the truth the stand-in models read."""
    c = clinical(name)
    t = cohorts.plant_survival(rng, cohorts.sample_people(rng, c.population, n), c)
    return pd.DataFrame(
        {
            "age": np.floor(t["age"]),
            "sex": np.where(t["sex"] == 1, "M", "F"),
            "race": t["race"],
            "cancer_type": t["cancer_type"],
            "stage": t["stage"],
            "ecog": t["ecog"],
            "time": t["time"],
            "event": t["event"],
            "true_age": t["age"],
            "apparent_age": (t["age"] + t["bio_gap"]).clip(*truth.APPARENT_AGE_RANGE),
            "oracle_face": truth.face_visible_oracle(t["frailty"], t["age"], t["bio_gap"]),
        }
    )


def with_models(rng: np.random.Generator, frame: pd.DataFrame, acc: Accuracy) -> pd.DataFrame:
    """``frame`` with the stand-in models' outputs: ``faceage``, ``faceage-scratch`` (years) and ``facesurvival``."""
    out = frame.copy()
    read = out["apparent_age"] if acc.faceage_reads == "apparent" else out["true_age"]
    out["faceage"] = read + rng.normal(0.0, acc.faceage_sd, len(out))
    out["faceage-scratch"] = read + rng.normal(0.0, acc.scratch_sd, len(out))
    noise = rng.normal(0.0, acc.facesurvival_noise if acc.facesurvival_reads == "face" else 1.0, len(out))
    out["facesurvival"] = noise + (out["oracle_face"] if acc.facesurvival_reads == "face" else 0.0)
    return out


def facesurvival_noise(target_c: float, seed: int = 0, patients_n: int = CALIBRATION_PATIENTS) -> float:
    """The noise SD around the face-visible oracle that gives Harrell's C ``target_c`` on cohort A (bisection on
    one fixed draw of ``patients_n`` patients and one fixed noise pattern): 0 when the target is at or above the
    oracle's own C, and a noise that drowns the oracle when the target is at or below 0.5."""
    rng = np.random.default_rng(seed)
    frame = patients(rng, "clinical-a", patients_n)
    z = rng.normal(0.0, 1.0, len(frame))
    oracle, time, event = frame["oracle_face"].to_numpy(), frame["time"].to_numpy(), frame["event"].to_numpy()

    def c_at(noise: float) -> float:
        return concordance.harrell(oracle + noise * z, time, event)

    if target_c >= c_at(0.0):
        return 0.0
    high = 100.0 * float(np.std(oracle))
    if target_c <= 0.5:
        return high
    low = 0.0
    for _ in range(20):
        mid = (low + high) / 2
        low, high = (mid, high) if c_at(mid) > target_c else (low, mid)
    return (low + high) / 2


def accuracy(t: claims.Table, seed: int = 0) -> Accuracy:
    """The stand-in models' accuracy from this build's recorded numbers (FaceAge and scratch test MAE, FaceSurvival's
    C on A's test split)."""
    mae = claims.value(t, "faceage.mae")
    scratch = claims.value(t, "faceage.mae.scratch") if "faceage.mae.scratch" in t.index else mae
    return Accuracy(error_sd(mae), error_sd(scratch), facesurvival_noise(claims.value(t, "c.A.FaceSurvival"), seed))


def sizes(cfg: Config) -> dict[str, int]:
    """Patients in the two evaluation sets (A's test split, cohort B), as this build drew them."""
    a = cfg.synth.clinical_a_n
    splits = clinical("clinical-a").splits
    return {"A": round(a * splits["test"]), "B": cfg.synth.clinical_b_n}


# which fits of the FaceSurvival chapter each simulated claim reads, and which model its control makes blind
FITS = {"FaceSurvival quartiles": "quartiles", "Independent cohort": "quartiles", "FaceAge prognosis": "scratch",
        "Combination": "both", "Complementary": "both"}  # fmt: skip
CONTROLS = {"FaceSurvival quartiles": "facesurvival", "Independent cohort": "facesurvival",
            "FaceAge prognosis": "faceage", "Combination": "faceage", "Complementary": "facesurvival"}  # fmt: skip


def simulated_numbers(rng: np.random.Generator, n: dict[str, int], acc: Accuracy, fits: Iterable[str]) -> claims.Table:
    """One simulated build's recorded numbers that the clinical claims read, from the FaceSurvival chapter's own
    adjusted Cox models (``fits`` of "quartiles", "scratch", "both"): FaceSurvival's top-vs-bottom quartile aHR,
    FaceAge head to head with (and beyond) the scratch model, each score beyond the other and the two scores'
    partial correlation, with their 95 % intervals. The models are
    fitted by ``cox.coefficients``: the chapter's estimates without lifelines' summaries, a tenth of the time."""
    a = with_models(rng, patients(rng, "clinical-a", n["A"]), acc)
    b = with_models(rng, patients(rng, "clinical-b", n["B"]), acc)
    sc = survival.scales(a)  # fixed on A, carried to B, as in the chapter
    c = list(survival.CLINICAL)
    age = survival.score_covariate("faceage", "FaceAge (per decade)", 10.0)
    surv = survival.score_covariate("facesurvival sd", "FaceSurvival (per SD)")
    scratch = survival.score_covariate("faceage-scratch", "FaceAge scratch (per decade)", 10.0)
    rows: dict[str, dict[str, float]] = {}
    for label, f in {"A": survival.scaled(a, sc), "B": survival.scaled(b, sc)}.items():
        if "quartiles" in fits:
            m = cox.coefficients(f, [*c, survival.quartile_covariate("facesurvival")])
            rows[f"survival.{label}.q4_vs_q1"] = _interval(m.loc["risk quartile: Q4"])
        if "scratch" in fits:
            m = cox.coefficients(f, [*c, scratch, age])
            rows[f"added.{label}.faceage_beyond_scratch"] = _interval(m.loc["FaceAge (per decade)"])
            rows[f"headtohead.{label}.faceage_vs_prior"] = survival.head_to_head(f)
        if "both" in fits:
            m = cox.coefficients(f, [*c, age, surv])
            rows[f"added.{label}.faceage_adds"] = _interval(m.loc["FaceAge (per decade)"])
            rows[f"added.{label}.facesurvival_adds"] = _interval(m.loc["FaceSurvival (per SD)"])
            rows[f"distinct.{label}.scores"] = survival.score_distinctness(f)
    return pd.DataFrame.from_dict(rows, orient="index")


def _interval(hr: pd.Series) -> dict[str, float]:
    return {"value": float(hr["hr"]), "lower": float(hr["lower"]), "upper": float(hr["upper"])}


def replicates(cfg: Config) -> int:
    """Simulated builds per power estimate: a tenth of the profile's bootstrap resamples, at least 10 (10 on smoke,
    100 on demo and paper: a power of 80 % is then known to about ±4 points)."""
    return max(cfg.statistics.bootstrap // 10, 10)


def blind(acc: Accuracy, model: str) -> Accuracy:
    """``acc`` with ``model`` made blind: FaceAge reading chronological age only, or FaceSurvival reading nothing."""
    if model == "faceage":
        return replace(acc, faceage_reads="chronological")
    return replace(acc, facesurvival_reads="nothing")


def _decide(build: np.random.SeedSequence, n: dict[str, int], acc: Accuracy, names: tuple[str, ...]) -> dict[str, str]:
    """One simulated build's decision of each claim in ``names``, from its own seed."""
    chosen = [c for c in claims.CLAIMS if c.name in names]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lifelines' convergence notes on a small simulated cohort
        numbers = simulated_numbers(np.random.default_rng(build), n, acc, {FITS[c.name] for c in chosen})
    return {c.name: c.decide(numbers) for c in chosen}


def simulate(cfg: Config, acc: Accuracy, names: Iterable[str], n_builds: int, seed: int | None = None,
             pool: Executor | None = None) -> pd.DataFrame:  # fmt: skip
    """Each simulated build's decision (``claims.Claim.decide``) of each claim in ``names``: one row per build. Each
    build draws from its own seed (spawned from ``seed``, by default the config's), so the table is the same whether
    the builds run here or in the processes of ``pool`` (``processes``)."""
    names = tuple(c.name for c in claims.CLAIMS if c.name in set(names))
    builds = np.random.SeedSequence([cfg.seed if seed is None else seed, 0x504F574552]).spawn(n_builds)
    one = partial(_decide, n=sizes(cfg), acc=acc, names=names)
    decisions = map(one, builds) if pool is None else pool.map(one, builds, chunksize=max(1, n_builds // 8))
    return pd.DataFrame(list(decisions), columns=list(names))


PARALLEL_FROM = 40  # simulated builds from which starting processes pays (each imports the analysis, ~3 s)


@contextmanager
def processes(n_builds: int) -> Iterator[Executor | None]:
    """A pool of one process per usable core for ``n_builds`` simulated builds, or None (run here) when there is
    one core or too few builds to pay for starting the processes. Spawned, not forked: the chapter's kernel may
    hold torch's threads."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if usable <= 1 or n_builds < PARALLEL_FROM:
        yield None
        return
    with ProcessPoolExecutor(usable, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield pool


def reproduced(decisions: pd.DataFrame) -> dict[str, float]:
    """Per claim, the share of simulated builds that reproduce it."""
    return {name: float((decisions[name] == claims.REPRODUCED).mean()) for name in decisions.columns}


def table(cfg: Config, t: claims.Table, n_builds: int | None = None) -> pd.DataFrame:
    """Per simulated claim: the share of simulated builds that reproduce it with models as accurate as this build's
    (``power``) and with the model it is about made blind (``control``: a false positive rate), the model blinded,
    and the number of simulated builds. Empty when the build lacks a number the simulation needs."""
    columns = ["power", "control", "blinded", "builds"]
    if any(k not in t.index for k in ("faceage.mae", "c.A.FaceSurvival")):
        return pd.DataFrame(columns=columns, index=pd.Index([], name="claim"))
    n_builds = n_builds or replicates(cfg)
    build = accuracy(t, seed=cfg.seed)
    with processes(n_builds) as pool:
        out = pd.DataFrame({"power": reproduced(simulate(cfg, build, SIMULATED, n_builds, pool=pool))})
        for model in ("faceage", "facesurvival"):
            names = [name for name in SIMULATED if CONTROLS[name] == model]
            blinded = reproduced(simulate(cfg, blind(build, model), names, n_builds, pool=pool))
            for name, share in blinded.items():
                out.loc[name, ["control", "blinded"]] = (
                    share,
                    {"faceage": "FaceAge", "facesurvival": "FaceSurvival"}[model],
                )
    out["builds"] = n_builds
    out.index.name = "claim"
    return out[columns]


def sentence(power_table: pd.DataFrame, t: claims.Table) -> str:
    """What the power column means for this build, in Markdown, written from the simulation."""
    if power_table.empty:
        return ("The power of the clinical claims' tests was not computed: it needs FAHR-Synth's planted model and "
                "this build's FaceAge and FaceSurvival accuracy.")  # fmt: skip
    weak = power_table[power_table["power"] < 0.8]
    builds = int(power_table["builds"].iloc[0])
    text = (
        f"**Power** is the share of {builds} simulated builds — cohorts of this build's size drawn from the planted "
        f"model, with a FaceAge of this build's error (MAE {claims.value(t, 'faceage.mae'):.2f} y) and a "
        f"FaceSurvival of its concordance (C {claims.value(t, 'c.A.FaceSurvival'):.3f} on A) — in which the claim "
        "is reproduced. "
    )
    if len(weak):
        listed = ", ".join(f"{name} ({p:.0%})" for name, p in weak["power"].items())
        text += (f"It is below 80 % for {listed}: at this size a miss there says more about the test's size than "
                 "about the method. ")  # fmt: skip
    worst = power_table["control"].astype(float).idxmax()
    text += (
        f"With the model a claim is about made blind (a FaceAge reading chronological age only, a FaceSurvival "
        f"reading nothing of the face), a claim is reproduced in at most "
        f"{float(power_table.loc[worst, 'control']):.0%} of the simulated builds ({worst}). "
    )
    return text + UNSIMULATED


def for_build(cfg: Config, t: claims.Table) -> pd.DataFrame | None:
    """``table`` for a FAHR-Synth build; None on real data, where there is no planted model to simulate from."""
    return table(cfg, t) if cfg.data.source == "synth" else None


def shares(power_table: pd.DataFrame | None) -> dict[str, float] | None:
    """Claim → power, as ``claims.verdicts`` takes it (None when the power was not computed)."""
    return None if power_table is None else power_table["power"].astype(float).to_dict()
