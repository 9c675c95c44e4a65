"""The clinical analyses against FAHR-Synth's planted truth, on a large unrendered cohort (no images needed):
the Cox models recover the planted hazard ratios, a real score adds to the clinical model and noise does not,
subgroup interactions are null where none was planted."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from fahr.analysis import cohort as cohort_table
from fahr.analysis import subgroups, survival
from fahr.data.synth import cohorts, truth, world
from fahr.stats import cox


def synthetic_cohort(n: int, seed: int, which: str = "clinical-a") -> pd.DataFrame:
    """A clinical cohort as ``survival.cohort_table`` gives it, with model predictions simulated from the truth:
    FaceAge = biological age + noise, FaceSurvival = the face-visible hazard + noise, the weaker models noisier."""
    rng = np.random.default_rng(seed)
    spec = next(c for c in world.CLINICAL if c.name == which)
    t = cohorts.plant_survival(rng, cohorts.sample_people(rng, spec.population, n), spec)
    frame = pd.DataFrame({
        "age": t["age"], "sex": np.where(t["sex"] == 1, "M", "F"), "race": t["race"],
        "cancer_type": t["cancer_type"], "stage": t["stage"], "ecog": t["ecog"], "time": t["time"],
        "event": t["event"], "bio_gap": t["bio_gap"], "frailty": t["frailty"],
        "linear_predictor": t["linear_predictor"],
    })  # fmt: skip
    frame["bio_age"] = frame["age"] + frame["bio_gap"]
    frame["oracle_face"] = truth.face_visible_oracle(frame["frailty"], frame["age"], frame["bio_gap"])
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


def test_the_face_visible_oracle_weighs_frailty_and_gap_by_their_planted_log_hazards() -> None:
    h = world.HAZARD
    oracle = truth.face_log_hazard(pd.Series([1.0, 0.0, -1.0]), pd.Series([0.0, 10.0, 5.0]))
    expected = [h["frailty_sd"], h["bio_gap_decade"], -h["frailty_sd"] + h["bio_gap_decade"] / 2]
    assert oracle.tolist() == pytest.approx(expected)


@pytest.mark.slow
def test_the_oracle_recovers_the_planted_biological_age_hazard_ratio(models) -> None:
    planted = truth.planted_hazard_ratios()["biological-age gap (per decade)"]
    assert planted == pytest.approx(np.exp(world.HAZARD["bio_gap_decade"]))
    hr = models["oracle biological age per decade"].hr("FaceAge (per decade)")
    assert hr["lower"] < planted < hr["upper"]


@pytest.mark.slow
def test_clinical_terms_sit_near_their_planted_values_and_race_near_one(models) -> None:
    """Without the latent frailty in the model the clinical terms absorb some of it, so they are close to, not
    exactly at, the planted values; race was planted with no effect."""
    terms = survival.clinical_terms(models["oracle face risk per SD"], truth.planted_hazard_ratios())
    for term in ("age (per decade)", "ECOG (per point)", "sex: M"):
        assert terms.loc[term, "hr"] == pytest.approx(terms.loc[term, "planted HR"], rel=0.12), term
    race = terms[terms.index.str.startswith("race")]
    assert ((race["lower"] < 1) & (race["upper"] > 1)).sum() >= len(race) - 1
    assert terms.loc["cancer: lung", "hr"] > 1 > terms.loc["cancer: prostate", "hr"]


@pytest.mark.slow
def test_faceage_per_decade_equals_the_gap_per_decade_when_age_is_adjusted_for(models) -> None:
    a = models["FaceAge per decade"].hr("FaceAge (per decade)")["hr"]
    b = models["FaceAge gap per decade"].hr("FaceAge gap (per decade)")["hr"]
    assert a == pytest.approx(b, rel=1e-6)


@pytest.mark.slow
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


@pytest.mark.slow
def test_nested_tests_find_what_a_score_adds_and_nothing_in_noise(cohort) -> None:
    tests = survival.nested_tests(cohort, "synthetic").set_index(["full model", "reduced model"])
    assert tests.loc[("clinical + FaceSurvival", "clinical"), "p"] < 1e-6
    assert tests.loc[("clinical + scratch + FaceAge", "clinical + scratch"), "p"] < 1e-3
    assert (tests["df"] == 1).all()
    assert (tests["LR statistic"] >= 0).all()
    # what a score adds has a size: its adjusted HR in the larger model, whose Wald interval agrees with the LRT
    added = tests.loc[("clinical + FaceAge", "clinical")]
    assert added["lower"] < added["aHR (added)"] < added["upper"] and (added["lower"] > 1) == (added["p"] < 0.05)


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


@pytest.mark.slow
def test_no_interaction_was_planted_and_none_is_found_in_a_large_cohort(cohort) -> None:
    hrs, tests = subgroups.survival_hr(cohort, "synthetic")
    assert set(tests["variable"]) == {"sex", "race", "cancer type", "age group"}
    assert (tests["p"] > 0.001).all()
    assert tests["oracle p"].between(0, 1).all() and not subgroups.beyond_oracle(tests).any()
    estimated = hrs.dropna(subset=["HR"])
    assert len(estimated) >= 12 and (estimated["HR"] > 1).all()


@pytest.mark.slow
def test_subgroup_interaction_is_detected_when_one_is_there(cohort) -> None:
    """Give the score no effect in women: the risk × sex interaction test must reject."""
    women = cohort["sex"] == "F"
    rng = np.random.default_rng(5)
    altered = cohort.copy()
    altered.loc[women, "facesurvival sd"] = rng.normal(0, 1, int(women.sum()))
    hrs, tests = subgroups.survival_hr(altered, "altered")
    assert tests.set_index("variable").loc["sex", "p"] < 1e-4
    # the face-visible oracle on the same patients shows no such interaction: it counts against the score (in the
    # cancer types too, breast and prostate cancer being one sex's)
    flagged = tests.loc[subgroups.beyond_oracle(tests), "variable"]
    assert set(flagged) == {"sex", "cancer type"}
    # and where the oracle interacts as much (a face that shows women's risk no better), it does not
    excused = tests.assign(**{"oracle p": np.where(tests["variable"].isin(flagged), 1e-6, tests["oracle p"])})
    assert not subgroups.beyond_oracle(excused).any()
    text = subgroups.reading(pd.DataFrame(columns=["variable", "level", "MAE"]), hrs, tests, truth=True)
    assert "Of FaceSurvival's 4 tests, 2 rejected at the Bonferroni level (p < 0.013)" in text


def test_age_groups_label_every_age() -> None:
    ages = pd.Series([0.0, 19.9, 20.0, 59.0, 80.0, 101.0])
    assert subgroups.age_group(ages, subgroups.AGE_GROUPS_PHOTOS).astype(str).tolist() == [
        "0–19", "0–19", "20–39", "40–59", "80+", "80+"]  # fmt: skip
    assert subgroups.age_group(pd.Series([45.0, 65.0, 75.0]), subgroups.AGE_GROUPS_PATIENTS).astype(str).tolist() == [
        "<60", "60–69", "70+"]  # fmt: skip


@pytest.mark.slow
def test_the_cohort_description_counts_patients_and_deaths_in_whole_numbers(cohort) -> None:
    an = survival.Analysis(None, {"A": cohort, "B": cohort.head(1000)}, cohort, None, None)
    table = survival.describe(an)
    assert table.loc["patients"].tolist() == [6000, 1000] and str(table.loc["patients", "A"]) == "6000"
    assert table.loc["deaths", "B"] == int(cohort.head(1000)["event"].sum())
    assert 0 < table.loc["male %", "A"] < 100 and isinstance(table.loc["male %", "A"], float)


# ------------------------------------------------------------------------------------------ without truth


@pytest.fixture(scope="module")
def real_like() -> survival.Analysis:
    """Two cohorts as real data gives them: the same columns as FAHR-Synth's, less every truth column."""
    a = cohort_table.without_truth(synthetic_cohort(1500, seed=11))
    b = cohort_table.without_truth(synthetic_cohort(1000, seed=12, which="clinical-b"))
    sc = survival.scales(a)
    cfg = SimpleNamespace(statistics=SimpleNamespace(bootstrap=50, auc_years=[1.0, 2.0]), seed=0)
    return survival.Analysis(cfg, {"A (test)": survival.scaled(a, sc), "B (independent)": survival.scaled(b, sc)},
                             survival.scaled(a, sc), sc, None)  # fmt: skip


def test_a_table_without_truth_has_no_truth_column_and_says_so(real_like) -> None:
    for frame in real_like.frames.values():
        assert not cohort_table.has_truth(frame)
        assert not set(frame.columns) & set(cohort_table.TRUTH_COLUMNS)
        assert "oracle_face sd" not in frame.columns
    assert not real_like.has_truth and set(real_like.scales.sd) == {"facesurvival", "facesurvival-scratch"}


def test_every_clinical_analysis_runs_without_truth_and_shows_no_oracle_or_planted_value(real_like) -> None:
    models = survival.all_adjusted(real_like)
    assert all(not name.startswith("oracle") for by in models.values() for name in by)
    head = survival.headline(real_like, models)
    assert len(head) == 6 and head.notna().all().all()
    assert not {"oracle aHR", "planted HR"} & set(head.columns)
    terms = survival.clinical_terms_table(models, real_like.planted)
    assert "planted HR" not in terms.columns.get_level_values(1)
    harrell, diffs = survival.concordance_tables(real_like, "harrell")
    shown = set(harrell.index) | set(harrell.get("score", []))
    assert survival.ORACLE_SCORE not in shown and survival.FACE_ORACLE_SCORE not in shown
    lrts = survival.all_nested_tests(real_like)
    text = survival.reading(head, lrts, harrell.reset_index(), diffs)
    assert "oracle" not in text and "planted" not in text and "nan" not in text
    results = survival.headline_results(head, lrts, harrell, diffs)
    assert all(r.oracle is None and r.planted is None for r in results)
    sized = {r.key: r for r in results if r.key.startswith("added.")}
    assert set(sized) == {f"added.{c}.{n}" for c in "AB" for n in ("faceage_adds", "facesurvival_adds",
                                                                   "faceage_beyond_scratch")}  # fmt: skip
    assert (
        all(r.lower < r.value < r.upper for r in sized.values()) and sized["added.A.faceage_adds"].unit == "per decade"
    )
    assert "real clinical cohorts" in survival.data_note(real_like)


def test_subgroups_run_without_truth(real_like) -> None:
    hrs, tests = subgroups.survival_tables(real_like)
    assert "oracle HR" not in hrs.columns and tests["p"].between(0, 1).all()
    text = subgroups.reading(pd.DataFrame(columns=["variable", "level", "MAE"]), hrs, tests, truth=False)
    assert "FAHR-Synth" not in text
    counted = subgroups.headline_results(pd.DataFrame(columns=["variable", "MAE"]), hrs, tests, truth=False)
    assert counted[0].planted is None


def test_with_truth_the_oracle_and_planted_values_stand_beside_the_model(cohort) -> None:
    an = survival.Analysis(None, {"A": cohort}, cohort, survival.scales(cohort), truth.planted_hazard_ratios())
    head = survival.headline(an, {"A": survival.adjusted_models(cohort, "A")}).set_index("quantity")
    assert head["oracle aHR"].notna().all()
    assert head.loc["FaceAge: per decade", "planted HR"] == pytest.approx(np.exp(world.HAZARD["bio_gap_decade"]))


def test_the_face_visible_oracle_sees_only_the_painted_range_of_frailty() -> None:
    """Below 0 no frailty cue is painted and above saturation the cues are full: faces that look the same get
    the same oracle (their group's mean frailty), and inside the range the oracle follows frailty exactly."""
    frailty = pd.Series([-2.0, -0.5, 0.5, 1.0, 3.0, 4.0])
    age, gap = pd.Series([60.0] * 6), pd.Series([0.0] * 6)
    oracle = truth.face_visible_oracle(frailty, age, gap)
    h = world.HAZARD["frailty_sd"]
    assert oracle[0] == oracle[1] == pytest.approx(h * -1.25)
    assert oracle[4] == oracle[5] == pytest.approx(h * 3.5)
    assert oracle[2:4].tolist() == pytest.approx([h * 0.5, h * 1.0])
    # the apparent age saturates at the cue model's range: a gap beyond it is invisible
    assert truth.face_visible_oracle(pd.Series([0.5]), pd.Series([105.0]), pd.Series([20.0]))[0] == pytest.approx(
        h * 0.5 + world.HAZARD["bio_gap_decade"] * 0.5
    )


def test_the_face_visible_oracle_is_below_the_full_planted_hazard_in_concordance(cohort) -> None:
    from fahr.stats import concordance

    t, e = cohort["time"].to_numpy(), cohort["event"].to_numpy()
    face = concordance.harrell(cohort["oracle_face"].to_numpy(), t, e)
    full = concordance.harrell(cohort["linear_predictor"].to_numpy(), t, e)
    model = concordance.harrell(cohort["facesurvival"].to_numpy(), t, e)
    assert model < face < full
