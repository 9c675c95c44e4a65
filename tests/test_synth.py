"""FAHR-Synth: deterministic rendering, graded cues, perturbation invariants, planted survival recovered,
age learnable but not trivial, and the `fahr synth` stage writing valid cohorts."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter

from fahr.core import config
from fahr.data import manifest
from fahr.data.synth import cohorts, summary, world
from fahr.data.synth.face import Capture, FaceParams, Modifiers
from fahr.data.synth.render import LANDMARKS, REGIONS, render

ADULT = FaceParams(age=45, sex=1, race="white", baldness=0.5, texture_seed=7)


def region_detail(image: np.ndarray, regions: np.ndarray, name: str) -> float:
    """Mean absolute horizontal-and-vertical gradient of the grey image inside one region (wrinkle energy)."""
    grey = image.astype(float).mean(axis=2)
    grad = np.abs(np.diff(grey, axis=0))[:, :-1] + np.abs(np.diff(grey, axis=1))[:-1, :]
    return float(grad[regions[:-1, :-1] == REGIONS.index(name)].mean())


def test_rendering_is_a_pure_function_of_its_parameters() -> None:
    a, b = render(ADULT, Capture(noise_seed=3)), render(ADULT, Capture(noise_seed=3))
    assert a.image.shape == (112, 112, 3) and a.image.dtype == np.uint8
    assert np.array_equal(a.image, b.image) and a.encoded == b.encoded
    assert not np.array_equal(a.image, render(ADULT, Capture(noise_seed=4)).image)
    assert render(ADULT, size=48).image.shape == (48, 48, 3)


def test_frontal_landmarks_sit_on_the_five_point_template_rows() -> None:
    marks = render(ADULT).landmarks
    assert marks.shape == (len(LANDMARKS), 2)
    eye_l, eye_r, nose, mouth_l, mouth_r = marks
    assert abs(eye_l[1] - 51.7) < 1.0 and abs(eye_r[1] - 51.7) < 1.0  # template eye row 51.7 px
    assert abs((eye_l[0] + eye_r[0]) / 2 - 55.5) < 1.0 and 25 < eye_r[0] - eye_l[0] < 36
    assert eye_l[1] < nose[1] < mouth_l[1] and abs(mouth_l[1] - mouth_r[1]) < 1e-6
    rolled = render(ADULT, Capture(roll=15)).landmarks
    tilt = np.degrees(np.arctan2(rolled[1, 1] - rolled[0, 1], rolled[1, 0] - rolled[0, 0]))
    assert abs(tilt - 15) < 0.5  # the landmarks follow the roll exactly


def test_every_named_region_is_drawn_where_it_belongs() -> None:
    out = render(ADULT, with_regions=True)
    present = {REGIONS[i] for i in np.unique(out.regions)}
    assert set(REGIONS) <= present
    eye_l, _, nose, mouth_l, _ = out.landmarks.round().astype(int)
    assert REGIONS[out.regions[eye_l[1], eye_l[0]]] == "periorbital"
    assert REGIONS[out.regions[nose[1] - 3, nose[0]]] == "nose"
    top = {name: np.nonzero(out.regions == REGIONS.index(name))[0].min() for name in ("hair", "forehead", "chin")}
    assert top["hair"] < top["forehead"] < top["chin"]


def test_apparent_age_adds_wrinkles_and_makeup_and_surgery_take_them_away() -> None:
    clean = Capture(noise=0.0, jpeg_quality=0)  # no sensor noise or JPEG: only what the face shows

    def detail(face: FaceParams, region: str, m: Modifiers = Modifiers()) -> float:
        out = render(face, clean, m, with_regions=True)
        return region_detail(out.image, out.regions, region)

    old = FaceParams(**{**ADULT.to_dict(), "age": 80})
    looks_older = FaceParams(**{**ADULT.to_dict(), "bio_gap": 25})  # a 45-year-old who looks 70
    forehead = {
        "45": detail(ADULT, "forehead"),
        "80": detail(old, "forehead"),
        "45+25": detail(looks_older, "forehead"),
    }
    assert forehead["80"] > 1.3 * forehead["45"], forehead
    assert forehead["45+25"] > 1.2 * forehead["45"], forehead
    assert detail(old, "forehead", Modifiers(foundation=1.0)) < 0.9 * forehead["80"]
    assert detail(old, "cheeks", Modifiers(facelift=1.0)) < detail(old, "cheeks")


def test_frailty_darkens_the_temples_and_under_the_eyes() -> None:
    well = render(ADULT, with_regions=True)
    frail = render(FaceParams(**{**ADULT.to_dict(), "frailty": 2.5}), with_regions=True)
    for region in ("temples", "periorbital"):
        mask = well.regions == REGIONS.index(region)
        assert frail.image[mask].mean() < well.image[mask].mean() - 5


def pixels(row: dict) -> np.ndarray:
    return render(*cohorts.face_of(row)).image


def test_zero_strength_perturbation_renders_the_reference_pixels() -> None:
    cfg = config.load("smoke")
    reference, _ = cohorts.design_pairs(cfg, cohorts.cohort_rng(0, "pairs"))
    reference = reference[reference["condition"] == "reference"].head(2)
    for condition in world.PERTURBATIONS:
        same = cohorts.perturb(reference, condition, 0.0)
        for (_, a), (_, b) in zip(reference.iterrows(), same.iterrows(), strict=True):
            assert np.array_equal(
                render(*cohorts.face_of(a.to_dict())).image, render(*cohorts.face_of(b.to_dict())).image
            )
        changed = cohorts.perturb(reference, condition, world.PERTURBATIONS[condition][-1])
        assert (changed["age"] == reference["age"]).all() and (changed["bio_gap"] == reference["bio_gap"]).all()
        row = changed.iloc[0].to_dict()
        assert not np.array_equal(
            render(*cohorts.face_of(row)).image, render(*cohorts.face_of(reference.iloc[0].to_dict())).image
        )
    with pytest.raises(ValueError, match="unknown perturbation"):
        cohorts.perturb(reference, "tattoo", 1.0)


def test_cohort_design_is_deterministic_by_seed() -> None:
    cfg = config.load("smoke")
    a, _ = cohorts.design_age(cfg, cohorts.cohort_rng(0, "age"))
    b, _ = cohorts.design_age(cfg, cohorts.cohort_rng(0, "age"))
    c, _ = cohorts.design_age(cfg, cohorts.cohort_rng(1, "age"))
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a["age"].to_numpy()[:50], c["age"].to_numpy()[:50])


def test_cox_on_the_true_latent_covariates_recovers_the_planted_hazard_ratios() -> None:
    rng = cohorts.cohort_rng(11, "cox-recovery")
    cohort = world.CLINICAL[0]
    t = cohorts.plant_survival(rng, cohorts.sample_people(rng, cohort.population, 20000), cohort)
    data = pd.DataFrame({
        "age_decade": (t["age"] - 65) / 10, "bio_gap_decade": t["bio_gap"] / 10, "frailty_sd": t["frailty"],
        "stage": t["stage"] - 1, "ecog": t["ecog"], "male": t["sex"],
        **{c: (t["cancer_type"] == c).astype(int) for c in world.CANCER_TYPES if c != "other"},
        "time": t["time"], "event": t["event"],
    })  # fmt: skip
    fit = CoxPHFitter().fit(data, "time", "event").summary
    planted = {k: v for k, v in world.HAZARD.items() if k != "cancer"} | world.HAZARD["cancer"]
    for name, row in fit.iterrows():
        assert row["coef lower 95%"] <= planted[name] <= row["coef upper 95%"], (name, row["coef"], planted[name])


def test_oracle_concordance_is_high_but_not_perfect() -> None:
    cfg = config.load("smoke", ["synth.clinical_a_n=4000"])
    truth, design = cohorts.design_clinical(cfg, cohorts.cohort_rng(0, "clinical-a"), "clinical-a")
    assert 0.65 < design["oracle_c_index"] < 0.85
    assert 0.4 < truth["event"].mean() < 0.9  # censoring is real, and so are deaths
    assert truth["time"].min() > 0


@pytest.mark.slow
def test_faces_carry_the_age_signal_but_it_is_not_trivial() -> None:
    from sklearn.linear_model import RidgeCV
    from sklearn.model_selection import cross_val_predict

    cfg = config.load("smoke", ["synth.age_n=150", "synth.repeat_photo_rate=0.0"])
    truth, _ = cohorts.design_age(cfg, cohorts.cohort_rng(0, "age"))
    pixels = np.stack([
        render(*cohorts.face_of(cohorts.plain_row(row)), size=32).image.mean(axis=2).ravel() / 255.0
        for row in truth.to_dict("records")
    ])  # fmt: skip
    ages = truth["label_age"].to_numpy()
    predicted = cross_val_predict(RidgeCV(alphas=np.logspace(-1, 3, 9)), pixels, ages, cv=5)
    mae, baseline = np.abs(predicted - ages).mean(), np.abs(ages - ages.mean()).mean()
    assert mae < 0.7 * baseline, (mae, baseline)  # the faces show age …
    assert mae > 4.0, mae  # … but pixels alone do not read it off


@pytest.fixture(scope="module")
def smoke_synth(tmp_path_factory):
    artifacts = tmp_path_factory.mktemp("artifacts")
    env = {**os.environ, "FAHR_ARTIFACTS": str(artifacts)}
    run = [sys.executable, "-m", "fahr.cli", "synth", "--profile", "smoke"]
    first = subprocess.run(run, capture_output=True, text=True, env=env)
    assert first.returncode == 0, first.stderr[-3000:]
    second = subprocess.run(run, capture_output=True, text=True, env=env)
    return artifacts / "smoke" / "synth", first, second


@pytest.mark.slow
def test_fahr_synth_writes_every_cohort_with_a_valid_manifest_and_planted_truth(smoke_synth) -> None:
    folder, first, _ = smoke_synth
    for cohort in cohorts.COHORTS:
        checked = manifest.load(folder / cohort / "manifest.parquet")  # image files opened too
        assert len(checked.valid) > 0 and checked.problems.empty
        truth = pd.read_parquet(folder / cohort / "truth.parquet")
        assert list(truth["image_id"]) == list(checked.valid["image_id"])
        planted = json.loads((folder / cohort / "planted.json").read_text())
        assert planted["cohort"] == cohort and planted["images"] == len(truth)
        assert (folder / cohort / "manifest.parquet.provenance.json").is_file()
    pretrain = pd.read_parquet(folder / "pretrain" / "manifest.parquet")
    assert "age" not in pretrain  # the pretraining corpus is unlabelled
    clinical = pd.read_parquet(folder / "clinical-a" / "manifest.parquet")
    assert set(clinical["split"]) == {"train", "val", "test"} and set(clinical["event"]) == {0, 1}
    assert 0.6 < json.loads((folder / "clinical-a" / "planted.json").read_text())["oracle_c_index"] < 0.9
    pairs = pd.read_parquet(folder / "pairs" / "manifest.parquet")
    assert pairs.groupby("pair_id")["condition"].nunique().eq(1 + len(world.PERTURBATIONS)).all()


@pytest.mark.slow
def test_fahr_synth_again_renders_nothing(smoke_synth) -> None:
    _, first, second = smoke_synth
    assert "rendering cohort" in first.stdout
    assert "rendering cohort" not in second.stdout and second.stdout.count("is up to date") == len(cohorts.COHORTS)


@pytest.mark.slow  # reads the smoke cohorts the CLI renders
def test_chapter_summaries_leave_out_excluded_cohorts_and_average_the_clinical_photos(smoke_synth, monkeypatch) -> None:
    folder, _, _ = smoke_synth
    monkeypatch.setenv("FAHR_ARTIFACTS", str(folder.parents[1]))
    every, some = summary.ages("smoke"), summary.ages("smoke", exclude=("pairs",))
    assert set(every["cohort"]) == set(cohorts.COHORTS) and set(some["cohort"]) == set(cohorts.COHORTS) - {"pairs"}
    pd.testing.assert_frame_equal(some, every[every["cohort"] != "pairs"].reset_index(drop=True))
    truth = summary.clinical_truth("smoke")
    assert list(truth) == ["clinical-a", "clinical-b"]
    pd.testing.assert_frame_equal(truth["clinical-b"], cohorts.load("smoke", "clinical-b")[1])
    images, labels = summary.mean_faces("smoke", ("clinical-b",))
    assert labels == ["mean of all clinical-b photos"]
    np.testing.assert_array_equal(images[0].pixels, summary.mean_face("smoke", "clinical-b"))
    assert images[0].cohort == "clinical-b" and images[0].people == 200  # every patient: an average may be shown
