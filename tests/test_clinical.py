"""The clinical analyses against FAHR-Synth's planted truth, on a large unrendered cohort (no images needed):
the Cox models recover the planted hazard ratios, a real score adds to the clinical model and noise does not,
subgroup interactions are null where none was planted."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fahr.analysis import subgroups, survival
from fahr.data.synth import cohorts, world
from fahr.stats import cox


def synthetic_cohort(n: int, seed: int, which: str = "clinical-a") -> pd.DataFrame:
    """A clinical cohort as ``survival.cohort_table`` gives it, with model predictions simulated from the truth:
    FaceAge = biological age + noise, FaceSurvival = the face-visible hazard + noise, the weaker models noisier."""
    rng = np.random.default_rng(seed)
    spec = next(c for c in world.CLINICAL if c.name == which)
    t = cohorts.plant_survival(rng, cohorts.sample_people(rng, spec.population, n), spec)
    h = world.HAZARD
    frame = pd.DataFrame({
        "age": t["age"], "sex": np.where(t["sex"] == 1, "M", "F"), "race": t["race"],
        "cancer_type": t["cancer_type"], "stage": t["stage"], "ecog": t["ecog"], "time": t["time"],
        "event": t["event"], "bio_gap": t["bio_gap"], "frailty": t["frailty"],
        "linear_predictor": t["linear_predictor"],
    })  # fmt: skip
    frame["bio_age"] = frame["age"] + frame["bio_gap"]
    frame["oracle_face"] = h["frailty_sd"] * frame["frailty"] + h["bio_gap_decade"] * frame["bio_gap"] / 10
    frame["faceage"] = frame["bio_age"] + rng.normal(0, 4, n)
    frame["faceage-stage1"] = frame["bio_age"] + rng.normal(0, 6, n)
    frame["faceage-scratch"] = frame["age"] + rng.normal(0, 8, n)  # sees no biological-age gap
    frame["facesurvival"] = frame["oracle_face"] + rng.normal(0, 0.5, n)
    frame["facesurvival-scratch"] = rng.normal(0, 1, n)  # pure noise
    for m in ("faceage", "faceage-stage1", "faceage-scratch"):
        frame[f"{m} gap"] = frame[m] - frame["age"]
    frame.index = [f"p{i}" for i in range(n)]
    return frame


@pytest.fixture(scope="module")
def cohort() -> pd.DataFrame:
    frame = synthetic_cohort(6000, seed=1)
    return survival.scaled(frame, survival.scales(frame))


@pytest.fixture(scope="module")
def models(cohort) -> dict[str, cox.CoxResult]:
    return survival.adjusted_models(cohort, "synthetic")


def test_the_oracle_recovers_the_planted_biological_age_hazard_ratio(models) -> None:
    planted = survival.planted_hr()["biological-age gap (per decade)"]
    assert planted == pytest.approx(np.exp(world.HAZARD["bio_gap_decade"]))
    hr = models["oracle biological age per decade"].hr("FaceAge (per decade)")
    assert hr["lower"] < planted < hr["upper"]


def test_clinical_terms_sit_near_their_planted_values_and_race_near_one(models) -> None:
    """Without the latent frailty in the model the clinical terms absorb some of it, so they are close to, not
    exactly at, the planted values; race was planted with no effect."""
    terms = survival.clinical_terms(models["oracle face risk per SD"])
    for term in ("age (per decade)", "ECOG (per point)", "sex: M"):
        assert terms.loc[term, "hr"] == pytest.approx(terms.loc[term, "planted HR"], rel=0.12), term
    race = terms[terms.index.str.startswith("race")]
    assert ((race["lower"] < 1) & (race["upper"] > 1)).sum() >= len(race) - 1
    assert terms.loc["cancer: lung", "hr"] > 1 > terms.loc["cancer: prostate", "hr"]


def test_faceage_per_decade_equals_the_gap_per_decade_when_age_is_adjusted_for(models) -> None:
    a = models["FaceAge per decade"].hr("FaceAge (per decade)")["hr"]
    b = models["FaceAge gap per decade"].hr("FaceAge gap (per decade)")["hr"]
    assert a == pytest.approx(b, rel=1e-6)


def test_noisier_scores_give_attenuated_hazard_ratios(models) -> None:
    oracle = models["oracle face risk quartiles"].hr("risk quartile: Q4")["hr"]
    model = models["FaceSurvival quartiles"].hr("risk quartile: Q4")["hr"]
    noise = models["FaceSurvival scratch per SD"].hr("FaceSurvival (per SD)")
    assert oracle > model > 1.5
    assert noise["lower"] < 1 < noise["upper"]
    decade = {
        m: models[m].hr("FaceAge (per decade)")["hr"] for m in ("FaceAge per decade", "FaceAge scratch per decade")
    }
    assert decade["FaceAge per decade"] > decade["FaceAge scratch per decade"]


def test_nested_tests_find_what_a_score_adds_and_nothing_in_noise(cohort) -> None:
    tests = survival.nested_tests(cohort, "synthetic").set_index(["full model", "reduced model"])
    assert tests.loc[("clinical + FaceSurvival", "clinical"), "p"] < 1e-6
    assert tests.loc[("clinical + scratch + FaceAge", "clinical + scratch"), "p"] < 1e-3
    assert (tests["df"] == 1).all()
    assert (tests["LR statistic"] >= 0).all()


def test_quartile_cuts_and_scale_come_from_the_development_cohort() -> None:
    a = synthetic_cohort(800, seed=2)
    b = synthetic_cohort(800, seed=3, which="clinical-b")
    sc = survival.scales(a)
    pa, pb = survival.scaled(a, sc), survival.scaled(b, sc)
    assert pa["facesurvival q"].value_counts().to_dict() == {"Q1": 200, "Q2": 200, "Q3": 200, "Q4": 200}
    assert pa["facesurvival sd"].std() == pytest.approx(1.0)
    # cohort B is frailer: more of it falls in A's top quartile and its mean risk is above A's
    assert (pb["facesurvival q"] == "Q4").mean() > 0.25
    assert pb["facesurvival sd"].mean() > 0


def test_no_interaction_was_planted_and_none_is_found_in_a_large_cohort(cohort) -> None:
    hrs, tests = subgroups.survival_hr(cohort, "synthetic")
    assert set(tests["variable"]) == {"sex", "race", "cancer type", "age group"}
    assert (tests["p"] > 0.001).all()
    estimated = hrs.dropna(subset=["HR"])
    assert len(estimated) >= 12 and (estimated["HR"] > 1).all()


def test_subgroup_interaction_is_detected_when_one_is_there(cohort) -> None:
    """Give the score no effect in women: the risk × sex interaction test must reject."""
    women = cohort["sex"] == "F"
    rng = np.random.default_rng(5)
    altered = cohort.copy()
    altered.loc[women, "facesurvival sd"] = rng.normal(0, 1, int(women.sum()))
    _, tests = subgroups.survival_hr(altered, "altered")
    assert tests.set_index("variable").loc["sex", "p"] < 1e-4


def test_age_groups_label_every_age() -> None:
    ages = pd.Series([0.0, 19.9, 20.0, 59.0, 80.0, 101.0])
    assert subgroups.age_group(ages, subgroups.AGE_GROUPS_PHOTOS).astype(str).tolist() == [
        "0–19", "0–19", "20–39", "40–59", "80+", "80+"]  # fmt: skip
    assert subgroups.age_group(pd.Series([45.0, 65.0, 75.0]), subgroups.AGE_GROUPS_PATIENTS).astype(str).tolist() == [
        "<60", "60–69", "70+"]  # fmt: skip


def test_the_cohort_description_counts_patients_and_deaths_in_whole_numbers(cohort) -> None:
    an = survival.Analysis(None, {"A": cohort, "B": cohort.head(1000)}, cohort, None, {})
    table = survival.describe(an)
    assert table.loc["patients"].tolist() == [6000, 1000] and str(table.loc["patients", "A"]) == "6000"
    assert table.loc["deaths", "B"] == int(cohort.head(1000)["event"].sum())
    assert 0 < table.loc["male %", "A"] < 100 and isinstance(table.loc["male %", "A"], float)
