"""Verdicts from predictions: the numbers the report's rules read, recomputed from the per-photo and per-patient
scores a build wrote, so that any model's predictions can be judged by the paper's rules — a reviewer's own
(``fahr verdicts --scores FILE``) or a lesser model's (``ADVERSARIES``).

The FaceAge chapter writes its test photos with every model's prediction (``scores/age.parquet``), the
FaceSurvival chapter its clinical evaluation sets (``scores/clinical.parquet``: cohort A's validation and test
splits and cohort B). ``numbers`` computes from them every number a score-based rule reads, with the chapters' own
functions (``fahr.analysis.faceage``, ``fahr.analysis.survival``), and ``judge`` decides each claim
(``fahr.report.claims``) on the recorded numbers with those in their place.

**The adversaries.** A rule that a lesser model passes tests nothing. Each adversary is derived from the build's
own outputs: a constant FaceAge or FaceSurvival, a FaceAge shrunk toward the mean, one that reads chronological
age only (with FaceAge's own error), the prior model's scores relabelled as FaceAge (a tie), FaceAge degraded until
it errs more than the prior model, FaceSurvival permuted across patients or set equal to FaceAge, and identical or
shuffled saliency maps. The claims they apply to are decided with the adversary in the model's place; none may be
reproduced. The claims that rest on numbers no score file carries (pose and lighting, makeup and surgery, the
saliency regions) take the adversary's exact effect on those numbers: a shrink by s scales every shift by s and
leaves agreement and ranks as they are; a constant has no agreement to measure; a shuffled map puts saliency in
proportion to area. On FAHR-Synth the planted truth (FaceAge = the biological age, FaceSurvival = the planted
frailty) goes through the same rules and must reproduce the claims it applies to.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from fahr.analysis import faceage, survival
from fahr.core import paths, provenance
from fahr.report import claims, results
from fahr.stats import cox

PARTS = ("age", "clinical")
AGE_MODELS = ("faceage", "faceage-stage1", "faceage-scratch", "mean-age baseline", faceage.HANDMADE)
CLINICAL_COLUMNS = ("set", "age", "sex", "race", "cancer_type", "stage", "ecog", "time", "event", "faceage",
                    "faceage-scratch", "facesurvival")  # fmt: skip
SETS = {"A": survival.COHORTS[0][0], "B": survival.COHORTS[1][0]}  # the evaluation sets, by the keys' letter
VALIDATION = "A (validation split)"
TRUTH = ("apparent_age", "bio_age", "frailty", "oracle_face")  # FAHR-Synth only: the oracle and planted-truth rows


def folder(profile: str) -> Path:
    return paths.stage_dir(profile, "scores")


def save_age(cfg, test: pd.DataFrame) -> Path:
    """Write the FaceAge chapter's test table (``faceage.test_table``): per photo its id, dataset, labelled age,
    every model's prediction and, on FAHR-Synth, the apparent age (the oracle)."""
    keep = ["image_id", "dataset", "age", *(c for c in (*AGE_MODELS, "apparent_age") if c in test.columns)]
    return _write(folder(cfg.profile) / "age.parquet", test[keep])


def save_clinical(an: survival.Analysis) -> Path:
    """Write the FaceSurvival chapter's evaluation sets (``survival.Analysis``): per patient photo its set (A's
    validation or test split, cohort B), the clinical columns, FaceAge, the prior model and FaceSurvival and, on
    FAHR-Synth, the truth the oracle rows use."""
    frames = {VALIDATION: an.validation, **an.frames}
    parts = [f.assign(set=label).reset_index() for label, f in frames.items()]
    table = pd.concat(parts, ignore_index=True)
    keep = ["image_id", *CLINICAL_COLUMNS, *(c for c in TRUTH if c in table.columns)]
    return _write(folder(an.cfg.profile) / "clinical.parquet", table[keep])


def _write(path: Path, frame: pd.DataFrame) -> Path:
    with provenance.atomic_path(path) as tmp:
        frame.reset_index(drop=True).to_parquet(tmp, index=False)
    return path


@dataclass
class Scores:
    """A build's predictions as the rules read them: ``age`` (test photos) and ``clinical`` (evaluation sets)."""

    age: pd.DataFrame | None = None
    clinical: pd.DataFrame | None = None
    changed: dict[str, float] = field(default_factory=dict)  # what an adversary did (e.g. the added noise's SD)

    def copy(self) -> Scores:
        return Scores(*(None if f is None else f.copy() for f in (self.age, self.clinical)), dict(self.changed))

    @property
    def has_truth(self) -> bool:
        return self.clinical is not None and "bio_age" in self.clinical.columns


def load(profile: str) -> Scores:
    """The score files the chapters of ``profile`` wrote (a part is None where its chapter did not run)."""
    read = {p: folder(profile) / f"{p}.parquet" for p in PARTS}
    return Scores(**{p: pd.read_parquet(f) if f.is_file() else None for p, f in read.items()})


# ---- exporting and replacing scores (fahr verdicts) ----

KEY = {"age": "image_id", "clinical": ["set", "image_id"]}
REPLACEABLE = {"age": ("faceage", "faceage-stage1", "faceage-scratch"),
               "clinical": ("faceage", "faceage-scratch", "facesurvival")}  # fmt: skip


def export(scores: Scores, path: Path) -> Path:
    """One CSV of every score the verdicts use: a ``part`` column (age, clinical), the keys, the labels and the
    models' predictions; the truth columns are left out (a reviewer's model cannot have them)."""
    frames = []
    for part in PARTS:
        frame = getattr(scores, part)
        if frame is not None:
            frames.append(frame.drop(columns=[c for c in TRUTH if c in frame.columns]).assign(part=part))
    table = pd.concat(frames, ignore_index=True)
    table = table[["part", *(c for c in table.columns if c != "part")]]
    with provenance.atomic_path(Path(path)) as tmp:
        table.to_csv(tmp, index=False)
    return Path(path)


class ScoresError(ValueError):
    """A scores file that cannot replace a build's scores: the message names the file, row and reason."""


def replace(scores: Scores, path: Path) -> Scores:
    """``scores`` with the predictions of ``path`` (a CSV as ``export`` writes it, any subset of its rows and of the
    replaceable columns: ``faceage``, ``faceage-stage1``, ``faceage-scratch`` for part age; ``faceage``,
    ``faceage-scratch``, ``facesurvival`` for part clinical) in place of the build's. Every row must name a photo
    the build scored; every photo of a part whose column is given must get a number."""
    path = Path(path)
    try:
        given = pd.read_csv(path)
    except (OSError, pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as e:
        raise ScoresError(f"{path}: not a readable CSV ({e})") from None
    if "part" not in given.columns:
        raise ScoresError(f"{path}: no 'part' column (age or clinical)")
    out = scores.copy()
    for part, rows in given.groupby("part", sort=False):
        if part not in PARTS or getattr(out, part) is None:
            row = int(rows.index[0]) + 2
            raise ScoresError(f"{path}, row {row}: part {part!r} is not one this build scored ({', '.join(PARTS)})")
        key = [KEY[part]] if isinstance(KEY[part], str) else KEY[part]
        missing = [k for k in key if k not in rows.columns]
        if missing:
            raise ScoresError(f"{path}: part {part!r} needs the column(s) {', '.join(missing)}")
        columns = [c for c in REPLACEABLE[part] if c in rows.columns and rows[c].notna().any()]
        if not columns:
            raise ScoresError(f"{path}: part {part!r} gives none of {', '.join(REPLACEABLE[part])}")
        frame = getattr(out, part).set_index(key)
        indexed = rows.set_index(key)
        unknown = ~indexed.index.isin(frame.index)
        if unknown.any():
            row = int(rows.index[np.flatnonzero(unknown)[0]]) + 2
            raise ScoresError(f"{path}, row {row}: {part} photo {indexed.index[unknown][0]!r} is not one this build "
                              "scored")  # fmt: skip
        if indexed.index.duplicated().any():
            row = int(rows.index[np.flatnonzero(indexed.index.duplicated())[0]]) + 2
            raise ScoresError(f"{path}, row {row}: {part} photo {indexed.index[indexed.index.duplicated()][0]!r} "
                              "given twice")  # fmt: skip
        for c in columns:
            values = pd.to_numeric(indexed[c], errors="coerce")
            bad = values.isna() | ~np.isfinite(values.fillna(0))
            if bad.any():
                row = int(rows.index[np.flatnonzero(bad.to_numpy())[0]]) + 2
                raise ScoresError(f"{path}, row {row}, column {c}: not a finite number")
            if len(indexed) != len(frame):
                raise ScoresError(f"{path}: part {part!r} gives {c} for {len(indexed)} of the {len(frame)} photos "
                                  "this build scored; give every one")  # fmt: skip
            frame[c] = values.reindex(frame.index)
        setattr(out, part, frame.reset_index())
    return out


# ---- the numbers the score-based rules read ----


def numbers(scores: Scores, resamples: int = 1000, seed: int = 0) -> claims.Table:
    """Every number a score-based rule reads (value, lower, upper, p), computed from ``scores`` with the chapters'
    own functions: FaceAge's errors and paired differences, its calibration slope and its decade errors from the
    age part; the quartile hazard ratio, what each score adds to the other, FaceAge head to head with the prior
    model and the two scores' distinctness from the clinical part (scales fixed on A's validation split)."""
    rows: dict[str, dict[str, float]] = {}
    if scores.age is not None:
        rows |= _age_numbers(scores.age, resamples, seed)
    if scores.clinical is not None:
        rows |= _clinical_numbers(scores.clinical)
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("key")


def _age_numbers(test: pd.DataFrame, resamples: int, seed: int) -> dict[str, dict[str, float]]:
    rows: dict[str, dict[str, float]] = {}
    mae = {m: float((test[m] - test["age"]).abs().mean()) for m in AGE_MODELS if m in test.columns}
    rows["faceage.mae"] = {"value": mae["faceage"]}
    names = {"faceage-scratch": "scratch", "faceage-stage1": "stage1", "mean-age baseline": "mean_baseline",
             faceage.HANDMADE: "handmade_baseline"}  # fmt: skip
    rows |= {f"faceage.mae.{names[m]}": {"value": v} for m, v in mae.items() if m in names}
    for _, d in faceage.mae_differences(test, resamples, seed).iterrows():
        rows[f"faceage.mae_vs.{d['key']}"] = {"value": d["MAE difference"], "lower": d["lower"], "upper": d["upper"]}
    if test["faceage"].std() > 0:
        rows["faceage.calibration_slope"] = faceage.calibration(test)
    else:  # a constant: no slope above 0
        rows["faceage.calibration_slope"] = {"value": 0.0, "lower": 0.0, "upper": 0.0}
    networks = [m for m in ("faceage", "faceage-stage1") if m in test.columns]
    spread = faceage.lifespan(faceage.by_decade(test, networks))
    for model, r in spread.iterrows():
        rows[f"lifespan.{model}.mean_decade_mae"] = {"value": float(r["mean of decade MAEs"])}
        rows[f"lifespan.{model}.worst_decade_mae"] = {"value": float(r["worst decade MAE"])}
    return rows


def _clinical_numbers(clinical: pd.DataFrame) -> dict[str, dict[str, float]]:
    frames = {label: clinical[clinical["set"] == label].drop(columns="set").set_index("image_id")
              for label in (VALIDATION, *SETS.values())}  # fmt: skip
    sc = survival.scales(frames[VALIDATION])
    sc.sd.update({k: 1.0 for k, v in sc.sd.items() if not v > 0})  # a constant score: 0 per "SD", dropped by the fit
    rows: dict[str, dict[str, float]] = {}
    c = list(survival.CLINICAL)
    age = survival.score_covariate("faceage", "FaceAge (per decade)", 10.0)
    surv = survival.score_covariate("facesurvival sd", "FaceSurvival (per SD)")
    for letter, label in SETS.items():
        f = survival.scaled(frames[label], sc)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rows[f"survival.{letter}.q4_vs_q1"] = _terms(f, [*c, survival.quartile_covariate("facesurvival")],
                                                         ["risk quartile: Q4"])[0]  # fmt: skip
            rows[f"survival.{letter}.faceage_decade"] = _terms(f, [*c, age], ["FaceAge (per decade)"])[0]
            both = _terms(f, [*c, age, surv], ["FaceAge (per decade)", "FaceSurvival (per SD)"])
            rows[f"added.{letter}.faceage_adds"], rows[f"added.{letter}.facesurvival_adds"] = both
            rows[f"headtohead.{letter}.faceage_vs_prior"] = _safe(lambda f=f: survival.head_to_head(f, ties=TIES))
        rows[f"distinct.{letter}.scores"] = survival.score_distinctness(f)
    return rows


TIES = "breslow"  # tied deaths (a resampled cohort's) as Breslow's approximation: equal to Efron's without ties
NAN = {"value": np.nan, "lower": np.nan, "upper": np.nan, "p": np.nan}


def _safe(fn: Callable[[], dict[str, float]]) -> dict[str, float]:
    """A fit's numbers, or NaN where the design cannot be estimated (a score constant or copied from another)."""
    try:
        return fn()
    except (np.linalg.LinAlgError, RuntimeError, ValueError, KeyError, ZeroDivisionError):
        return dict(NAN)


def _terms(frame: pd.DataFrame, covariates: list[cox.Covariate], terms: list[str]) -> list[dict[str, float]]:
    """Some terms' adjusted HRs with their Wald intervals and p, from one fit; NaN for a term that drops out of the
    design (a constant score) or a model that cannot be estimated."""
    try:
        beta, cov, names = cox.estimates(frame, covariates, ties=TIES)
    except (np.linalg.LinAlgError, RuntimeError, ValueError, KeyError, ZeroDivisionError):
        return [dict(NAN) for _ in terms]
    out = []
    for term in terms:
        if term not in names:
            out.append(dict(NAN))
            continue
        i = names.index(term)
        se = float(np.sqrt(cov[i, i]))
        z = beta[i] / se if np.isfinite(se) and se > 0 else np.nan
        out.append({"value": float(np.exp(beta[i])), "lower": float(np.exp(beta[i] - cox.Z95 * se)),
                    "upper": float(np.exp(beta[i] + cox.Z95 * se)), "p": float(2 * stats.norm.sf(abs(z)))})  # fmt: skip
    return out


# ---- the adversaries ----


@dataclass(frozen=True)
class Adversary:
    """A lesser model derived from the build's outputs: how it changes the scores, how it changes the recorded
    numbers no score file carries (exactly, where the change has a closed form), and the claims it applies to."""

    name: str
    description: str
    claims: tuple[str, ...]
    scores: Callable[[Scores], Scores] = lambda s: s
    recorded: Callable[[claims.Table], claims.Table] = lambda t: t
    oracle: bool = False  # the planted truth: it must reproduce what it applies to (FAHR-Synth only)


def _each(scores: Scores, fn: Callable[[pd.DataFrame, str], None]) -> Scores:
    """Apply ``fn(frame, part)`` to a copy of every part present."""
    out = scores.copy()
    for part in PARTS:
        frame = getattr(out, part)
        if frame is not None:
            fn(frame, part)
    return out


def _mean_age(scores: Scores) -> float:
    """The mean age FaceAge is shrunk toward: the mean-age baseline (the training photos' mean age)."""
    if scores.age is not None and "mean-age baseline" in scores.age.columns:
        return float(scores.age["mean-age baseline"].iloc[0])
    return float(scores.clinical["age"].mean())


def constant_faceage(scores: Scores) -> Scores:
    m = _mean_age(scores)
    return _each(scores, lambda f, part: f.__setitem__("faceage", m))


def shrunk_faceage(factor: float) -> Callable[[Scores], Scores]:
    def shrink(scores: Scores) -> Scores:
        m = _mean_age(scores)
        return _each(scores, lambda f, part: f.__setitem__("faceage", m + factor * (f["faceage"] - m)))

    return shrink


def shrunk_recorded(factor: float) -> Callable[[claims.Table], claims.Table]:
    """A shrink by ``factor`` scales every FaceAge shift by it; ICC(2,1) and ranks between two photos shrunk alike
    are unchanged."""

    def shrink(t: claims.Table) -> claims.Table:
        t = t.copy()
        keys = [k for k in t.index if k.startswith(("surgery.", "robustness.age.")) and
                (k.endswith("age_change") or k.endswith("max_shift"))]  # fmt: skip
        t.loc[keys, [c for c in ("value", "lower", "upper") if c in t.columns]] *= factor
        return t

    return shrink


def constant_recorded(model: str) -> Callable[[claims.Table], claims.Table]:
    """A constant moves by nothing and agrees with nothing: its shifts are 0, its ICC and rank stability undefined."""

    def const(t: claims.Table) -> claims.Table:
        t = t.copy()
        if model == "faceage":
            shifts = [k for k in t.index if k.startswith(("surgery.", "robustness.age.")) and
                      (k.endswith("age_change") or k.endswith("max_shift"))]  # fmt: skip
            t.loc[shifts, "value"] = 0.0
            t.loc[[k for k in t.index if k.startswith("robustness.age.") and k.endswith("min_icc")], "value"] = np.nan
        else:
            t.loc[[k for k in t.index if k.startswith("robustness.risk.") and k.endswith("min_spearman")],
                  "value"] = np.nan  # fmt: skip
        return t

    return const


def _noise(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(n)


def chronological_faceage(scores: Scores) -> Scores:
    """FaceAge replaced by the chronological age plus noise as large as FaceAge's own error on each part: as
    accurate on labelled age, blind to biological age."""

    def chrono(f: pd.DataFrame, part: str) -> None:
        sd = float((f["faceage"] - f["age"]).std())
        f["faceage"] = f["age"] + sd * _noise(len(f), 11)

    return _each(scores, chrono)


def tie(compared: str) -> Callable[[Scores], Scores]:
    """The compared model's scores relabelled as FaceAge."""

    def relabel(scores: Scores) -> Scores:
        def one(f: pd.DataFrame, part: str) -> None:
            if compared in f.columns:
                f["faceage"] = f[compared]

        return _each(scores, one)

    return relabel


WORSE_BY = 1.1  # the degraded FaceAge errs 10 % more than the prior model on the test photos


def worse_faceage(scores: Scores) -> Scores:
    """FaceAge plus Gaussian noise whose SD (found by bisection on the age part) makes its test MAE ``WORSE_BY``
    times the prior model's; the same SD on the clinical part."""
    test = scores.age
    prior = float((test["faceage-scratch"] - test["age"]).abs().mean()) if test is not None else None
    z = _noise(len(test), 12) if test is not None else None

    def mae(sd: float) -> float:
        return float((test["faceage"] + sd * z - test["age"]).abs().mean())

    sd = 0.0
    if test is not None and mae(0.0) < WORSE_BY * prior:
        low, high = 0.0, 10.0 * prior
        for _ in range(40):
            mid = (low + high) / 2
            low, high = (mid, high) if mae(mid) < WORSE_BY * prior else (low, mid)
        sd = high
    seeds = {"age": 12, "clinical": 13}  # the age part's noise is the one the bisection measured
    out = _each(scores, lambda f, part: f.__setitem__("faceage", f["faceage"] + sd * _noise(len(f), seeds[part])))
    out.changed["noise SD (years)"] = sd
    return out


def constant_facesurvival(scores: Scores) -> Scores:
    return _each(scores, lambda f, part: f.__setitem__("facesurvival", 0.0) if part == "clinical" else None)


def permuted_facesurvival(scores: Scores) -> Scores:
    """FaceSurvival's scores shuffled across the patients of each set."""

    def permute(f: pd.DataFrame, part: str) -> None:
        if part == "clinical":
            rng = np.random.default_rng(14)
            for label in f["set"].unique():
                rows = np.flatnonzero(f["set"].to_numpy() == label)
                f.iloc[rows, f.columns.get_loc("facesurvival")] = f["facesurvival"].to_numpy()[rng.permutation(rows)]

    return _each(scores, permute)


def facesurvival_is_faceage(scores: Scores) -> Scores:
    return _each(scores, lambda f, part: f.__setitem__("facesurvival", f["faceage"]) if part == "clinical" else None)


def identical_maps(t: claims.Table) -> claims.Table:
    """FaceSurvival's saliency map a copy of FaceAge's: the regional profiles agree exactly."""
    t = t.copy()
    if "saliency.distinct.spearman" in t.index:
        t.loc["saliency.distinct.spearman", ["value", "lower", "upper", "p"]] = [1.0, 1.0, 1.0, 1.0]
    return t


def shuffled_map(t: claims.Table) -> claims.Table:
    """FaceSurvival's saliency shuffled over the pixels: each region's share is its share of the area, the
    area-normalised profile is flat (no rank correlation to measure, no difference to test)."""
    t = t.copy()
    if "saliency.distinct.spearman" in t.index:
        t.loc["saliency.distinct.spearman", ["value", "lower", "upper", "p"]] = [np.nan, np.nan, np.nan, 1.0]
    if "saliency.facesurvival.frailty_cue_area" in t.index:
        t.loc["saliency.facesurvival.frailty_cue_share", "value"] = t.loc["saliency.facesurvival.frailty_cue_area",
                                                                          "value"]  # fmt: skip
    return t


def foundation_tie(compared: str) -> Callable[[claims.Table], claims.Table]:
    """The features ``compared`` ("random" or "handmade") put in the place of the pretrained encoder's: the probes
    on both are the same probes, so their paired difference is exactly 0 at every share."""

    def tie(t: claims.Table) -> claims.Table:
        t = t.copy()
        keys = [k for k in t.index if k.startswith("foundation.faceage.") and k.endswith(f".vs_{compared}")]
        t.loc[keys, [c for c in ("value", "lower", "upper") if c in t.columns]] = 0.0
        return t

    return tie


def planted_truth(scores: Scores) -> Scores:
    """FaceAge = the apparent age on the age photos and the biological age of the patients; FaceSurvival = the
    planted frailty (FAHR-Synth's truth); the prior model stays as built."""

    def truth(f: pd.DataFrame, part: str) -> None:
        if part == "age":
            f["faceage"] = f["apparent_age"]
        else:
            f["faceage"], f["facesurvival"] = f["bio_age"], f["frailty"]

    return _each(scores, truth)


# Which claims an adversary is lesser for. A FaceAge shrunk toward the mean is an affine map of FaceAge: it ranks
# patients alike and carries the same prognosis (the survival rules compare scores per SD), so it is lesser only for
# the claims about age itself; a FaceAge that reads chronological age with FaceAge's error is as accurate on the
# labelled (chronological) age, so it is lesser only for the claims about what the face says beyond the age.
FACEAGE_CLAIMS = ("FaceAge accuracy", "FaceAge prognosis", "Combination", "Complementary", "Pose and lighting",
                  "Makeup and surgery")  # fmt: skip
AGE_CLAIMS = ("FaceAge accuracy", "Across the lifespan", "Pose and lighting", "Makeup and surgery")
FACESURVIVAL_CLAIMS = ("FaceSurvival quartiles", "Independent cohort", "Combination", "Complementary")

ADVERSARIES: tuple[Adversary, ...] = (
    Adversary("constant FaceAge", "FaceAge = the training photos' mean age", (*FACEAGE_CLAIMS, "Across the lifespan"),
              constant_faceage, constant_recorded("faceage")),
    *(Adversary(f"FaceAge shrunk ×{s:g}", f"FaceAge = m + {s:g}·(FaceAge − m), m the mean age",
                AGE_CLAIMS, shrunk_faceage(s), shrunk_recorded(s))
      for s in (0.15, 0.5, 0.75)),
    Adversary("chronological-age FaceAge", "FaceAge = chronological age + noise of FaceAge's own error",
              ("FaceAge prognosis", "Combination", "Complementary"), chronological_faceage),
    Adversary("tie: prior model as FaceAge", "FaceAge = the prior (from-scratch) model's scores",
              ("FaceAge accuracy", "FaceAge prognosis"), tie("faceage-scratch")),
    Adversary("tie: stage 1 as FaceAge", "FaceAge = its own stage-1 model (no age-balanced stage)",
              ("Across the lifespan",), tie("faceage-stage1")),
    Adversary("worse FaceAge", f"FaceAge + noise until its MAE is {WORSE_BY:g}× the prior model's",
              ("FaceAge accuracy", "FaceAge prognosis"), worse_faceage),
    Adversary("constant FaceSurvival", "FaceSurvival = 0 for every patient",
              (*FACESURVIVAL_CLAIMS, "Pose and lighting"), constant_facesurvival, constant_recorded("facesurvival")),
    Adversary("permuted FaceSurvival", "FaceSurvival's scores shuffled across patients", FACESURVIVAL_CLAIMS,
              permuted_facesurvival),
    Adversary("FaceSurvival = FaceAge", "FaceSurvival's score is FaceAge's prediction",
              ("Combination", "Complementary"), facesurvival_is_faceage),
    Adversary("identical saliency maps", "FaceSurvival's map a copy of FaceAge's", ("Distinct regions",),
              recorded=identical_maps),
    Adversary("shuffled saliency map", "FaceSurvival's map shuffled over the pixels", ("Distinct regions",),
              recorded=shuffled_map),
    Adversary("tie: random encoder as the foundation model", "the pretrained features = a random encoder's",
              ("Foundation model",), recorded=foundation_tie("random")),
    Adversary("tie: hand-made features as the foundation model", "the pretrained features = hand-made statistics",
              ("Foundation model",), recorded=foundation_tie("handmade")),
    Adversary("planted truth (oracle)", "FaceAge = biological (apparent) age, FaceSurvival = planted frailty",
              ("FaceAge accuracy", "FaceAge prognosis", "Combination", "Complementary", "FaceSurvival quartiles",
               "Independent cohort"), planted_truth, oracle=True),
)  # fmt: skip


def with_numbers(t: claims.Table, computed: claims.Table) -> claims.Table:
    """The recorded table ``t`` with the computed numbers in place of (or beside) the recorded ones."""
    out = t.copy()
    for key, row in computed.iterrows():
        for column, value in row.items():
            if column in ("value", "lower", "upper", "p"):
                out.loc[key, column] = value
    return out


def judge(t: claims.Table, scores: Scores, resamples: int = 1000, seed: int = 0) -> claims.Table:
    """The recorded table with every score-based number recomputed from ``scores``: the table the verdicts read."""
    return with_numbers(t, numbers(scores, resamples, seed))


ADVERSARY_RESAMPLES = 200  # paired-bootstrap resamples per adversary (the decisions are far from the bounds)


def adversary_table(t: claims.Table, scores: Scores, data: str = claims.SYNTH, resamples: int = ADVERSARY_RESAMPLES,
                    seed: int = 0) -> pd.DataFrame:  # fmt: skip
    """What a model that cannot do what a claim says gets: one row per adversary, one column per claim, the
    verdict of each claim the adversary applies to ("—" elsewhere). The planted-truth row only where the scores
    carry truth (FAHR-Synth)."""
    names = [c.name for c in claims.CLAIMS]
    rows = {}
    for adv in ADVERSARIES:
        if adv.oracle and not scores.has_truth:
            continue
        changed = adv.scores(scores)
        table = adv.recorded(with_numbers(t, numbers(changed, resamples, seed)))
        row = {}
        for c in claims.CLAIMS:
            if c.name not in adv.claims:
                row[c.name] = "—"
            elif any(k not in table.index for k in c.keys):
                row[c.name] = "not run"
            else:
                row[c.name] = c.decide(table)
        rows[adv.name] = row
    out = pd.DataFrame.from_dict(rows, orient="index", columns=names)
    out.index.name = "model in the claim's place"
    return out


def passed(adversaries: pd.DataFrame) -> list[tuple[str, str]]:
    """The (adversary, claim) pairs in which a lesser model reproduced a claim: each one a rule that tests nothing."""
    return [(str(name), str(claim)) for name, row in adversaries.iterrows() if not name.startswith(ORACLE)
            for claim, verdict in row.items() if verdict == claims.REPRODUCED]  # fmt: skip


ORACLE = "planted truth"


def oracle_misses(adversaries: pd.DataFrame) -> list[str]:
    """The claims the planted truth applies to but does not reproduce (a build too small to show even the truth)."""
    rows = adversaries[adversaries.index.str.startswith(ORACLE)]
    return [
        str(c) for _, row in rows.iterrows() for c, v in row.items() if v not in ("—", "not run", claims.REPRODUCED)
    ]


def adversary_sentence(adversaries: pd.DataFrame) -> str:
    """A Markdown sentence from ``adversary_table``: whether any lesser model reproduced a claim, and whether the
    planted truth reproduced what it applies to."""
    lesser = adversaries[~adversaries.index.str.startswith(ORACLE)]
    judged = int((~lesser.isin(["—", "not run"])).to_numpy().sum())
    bad = passed(adversaries)
    if not bad:
        text = (f"No lesser model reproduces any claim: in all {judged} decisions of {len(lesser)} adversaries the "
                "claim is not reproduced or inconclusive.")  # fmt: skip
    else:
        listed = "; ".join(f"{claim} by {name}" for name, claim in bad)
        text = f"**A rule let a lesser model through:** {listed}."
    if len(lesser) < len(adversaries):
        missed = oracle_misses(adversaries)
        text += (" The planted truth, in the last column, reproduces every claim it applies to." if not missed else
                 f" The planted truth, in the last column, is not reproduced for {', '.join(missed)}: at this size "
                 "the test cannot show even the truth (see the power).")  # fmt: skip
    return text


def data_name(cfg) -> str:
    return results.data_name(cfg)


def build_inputs(cfg) -> tuple[claims.Table, Scores]:
    """A built book's recorded numbers (its chapters' ``results/*.json``) and its score files; FileNotFoundError
    naming what is missing when the book has not been built."""
    from fahr.report import book

    chapters = [n for n in book.CHAPTERS if n != "report"]
    t = results.table(results.collect(cfg, chapters, write=False)) if results.folder(cfg.profile).is_dir() else None
    scores = load(cfg.profile)
    if t is None or t.empty or (scores.age is None and scores.clinical is None):
        raise FileNotFoundError(f"no built book for profile {cfg.profile!r}: {results.folder(cfg.profile)} and "
                                f"{folder(cfg.profile)} hold its recorded numbers and scores; run `fahr book "
                                f"--profile {cfg.profile}` first")  # fmt: skip
    return t, scores


def decide(cfg, t: claims.Table, scores: Scores, power: dict[str, float] | None = None) -> pd.DataFrame:
    """``claims.verdicts`` on the recorded table with the score-based numbers recomputed from ``scores``."""
    judged = judge(t, scores, cfg.statistics.bootstrap, cfg.seed)
    return claims.verdicts(judged, data=data_name(cfg), power=power)


def agreement(t: claims.Table, scores: Scores, resamples: int, seed: int) -> pd.DataFrame:
    """The recomputed numbers beside the ones the chapters recorded, for the keys both have: a check that the
    verdicts path computes what the chapters show (its largest relative difference is printed in the report)."""
    computed = numbers(scores, resamples, seed)
    common = [k for k in computed.index if k in t.index]
    out = pd.DataFrame({"recorded": t.loc[common, "value"].astype(float), "recomputed": computed.loc[common, "value"]})
    out["relative difference"] = (out["recomputed"] - out["recorded"]).abs() / out["recorded"].abs().clip(lower=1e-9)
    return out


# ---- power from the build: its own predictions resampled ----

# per claim judged on scores: the statistic whose resampled range the calibration check reads
STATISTIC = {
    "FaceAge accuracy": "faceage.mae_vs.scratch",
    "Across the lifespan": "lifespan.faceage.worst_decade_mae",
    "FaceSurvival quartiles": "survival.A.q4_vs_q1",
    "Independent cohort": "survival.B.q4_vs_q1",
    "FaceAge prognosis": "headtohead.A.faceage_vs_prior",
    "Combination": "added.A.faceage_adds",
    "Complementary": "distinct.A.scores",
}
POWER_RESAMPLES = 20  # inner paired-bootstrap resamples of a resampled build's MAE differences


def resampled(scores: Scores, rng: np.random.Generator) -> Scores:
    """A new build drawn from this one: the test photos and each clinical set's patients resampled with
    replacement (each model's predictions stay with their photo, so the models' correlated errors are kept)."""
    out = scores.copy()
    if out.age is not None:
        out.age = out.age.iloc[rng.integers(0, len(out.age), len(out.age))].reset_index(drop=True)
    if out.clinical is not None:
        parts = []
        for _, f in out.clinical.groupby("set", sort=False):
            drawn = f.iloc[rng.integers(0, len(f), len(f))].copy()
            drawn["image_id"] = [f"{i}#{k}" for k, i in enumerate(drawn["image_id"])]  # a patient drawn twice is two
            parts.append(drawn)
        out.clinical = pd.concat(parts, ignore_index=True)
    return out


def build_power(t: claims.Table, scores: Scores, n_builds: int = 100, seed: int = 0) -> pd.DataFrame:
    """Per claim judged on scores: the share of ``n_builds`` builds resampled from this one (``resampled``) that
    reproduce it (``power``: the chance a build like this one, with models exactly as good as it measured them,
    shows the effect), and the calibration check: the build's measured statistic beside the 5–95 % range of the
    resampled ones (``inside``: the resampling describes the build). Claims whose numbers no score file carries
    are left out."""
    chosen = [c for c in claims.CLAIMS if c.name in STATISTIC]
    measured = judge(t, scores, POWER_RESAMPLES, seed)
    chosen = [c for c in chosen if all(k in measured.index for k in c.keys)]
    rng = np.random.default_rng([seed, 0x424F4F54])
    decisions, stats = {c.name: [] for c in chosen}, {c.name: [] for c in chosen}
    for _ in range(n_builds):
        table = with_numbers(t, numbers(resampled(scores, rng), POWER_RESAMPLES, int(rng.integers(1 << 31))))
        for c in chosen:
            decisions[c.name].append(c.decide(table))
            stats[c.name].append(float(table.loc[STATISTIC[c.name], "value"]))
    rows = {}
    for c in chosen:
        values = np.asarray(stats[c.name], float)
        low, high = np.nanquantile(values, [0.05, 0.95])
        value = float(measured.loc[STATISTIC[c.name], "value"])
        rows[c.name] = {
            "power": float(np.mean([d == claims.REPRODUCED for d in decisions[c.name]])),
            "statistic": STATISTIC[c.name],
            "measured": value,
            "resampled 5 %": float(low),
            "resampled 95 %": float(high),
            "inside": bool(low <= value <= high),
            "builds": n_builds,
        }
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "claim"
    return out


def power_sentence(table: pd.DataFrame) -> str:
    """What the build-resampled power column means, in Markdown, written from ``build_power``."""
    if table.empty:
        return "No claim's power could be computed from this build's scores."
    builds = int(table["builds"].iloc[0])
    weak = table[table["power"] < 0.8]
    outside = table.index[~table["inside"].astype(bool)].tolist()
    text = (f"**Power from the build**: the share of {builds} builds resampled from this one — its test photos and "
            "its patients drawn again with replacement, every model's prediction kept with its photo, so that the "
            "models' correlated errors are kept — in which the claim is reproduced by the same rule. ")  # fmt: skip
    if len(weak):
        text += ("It is below 80 % for " + ", ".join(f"{n} ({p:.0%})" for n, p in weak["power"].items())
                 + ": there a miss says more about the test's size than about the method. ")  # fmt: skip
    text += (
        "The calibration check sets each claim's measured statistic beside the 5–95 % range of the resampled "
        "ones: "
        + (
            "every one lies inside."
            if not outside
            else f"outside for {', '.join(outside)}: the resampling does not describe the build there."
        )
    )
    return text + (
        " The other claims rest on numbers no score file carries (shifts under an image operation, "
        "saliency maps, subgroup interactions, the label-efficiency runs): no power is shown for them."
    )


def agreement_sentence(table: pd.DataFrame) -> str:
    """One Markdown sentence from ``agreement``: how closely the verdicts' own numbers match the chapters'."""
    if table.empty:
        return "The verdicts recomputed no number that a chapter also recorded."
    worst = table["relative difference"].idxmax()
    return (f"The verdicts recompute {len(table)} of the chapters' recorded numbers from the score files; the "
            f"largest relative difference is {table.loc[worst, 'relative difference']:.1e} (`{worst}`): the rules "
            "read what the chapters show.")  # fmt: skip
