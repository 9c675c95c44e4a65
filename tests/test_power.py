"""The power of the clinical claims' tests, simulated from FAHR-Synth's planted model without rendering a face
(``fahr.report.power``): stand-in models as accurate as asked, each claim's own test, and blind controls that must
fail."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fahr.core import config
from fahr.report import claims, power
from fahr.stats import concordance

DEMO = config.load("demo")  # the demo's cohort sizes: 1,200 patients in A's test split, 1,500 in B
BUILDS = 12
FALSE_POSITIVES = 2  # of BUILDS: a sound test reproduces a blind model's claim in about 2.5 % of builds


def test_the_error_sd_gives_the_mae_asked_for() -> None:
    errors = np.random.default_rng(0).normal(0.0, power.error_sd(7.0), 200_000)
    assert np.abs(errors).mean() == pytest.approx(7.0, rel=0.01)


def test_facesurvivals_noise_is_matched_to_the_concordance_asked_for_on_a_fresh_cohort() -> None:
    noise = power.facesurvival_noise(0.62)
    rng = np.random.default_rng(7)  # another draw than the calibration's
    frame = power.with_models(rng, power.patients(rng, "clinical-a", 3000), power.Accuracy(5.0, 5.0, noise))
    c = concordance.harrell(frame["facesurvival"], frame["time"], frame["event"])
    assert c == pytest.approx(0.62, abs=0.015)
    oracle = concordance.harrell(frame["oracle_face"], frame["time"], frame["event"])
    assert power.facesurvival_noise(0.99) == 0.0 and oracle > 0.62  # a build at or above the oracle: no noise
    blind = power.with_models(rng, frame, power.blind(power.Accuracy(5.0, 5.0, noise), "facesurvival"))
    assert concordance.harrell(blind["facesurvival"], blind["time"], blind["event"]) == pytest.approx(0.5, abs=0.03)


def test_simulated_patients_carry_what_the_chapters_models_need_and_no_more_truth_than_the_stand_ins_read() -> None:
    frame = power.patients(np.random.default_rng(0), "clinical-b", 400)
    assert len(frame) == 400 and set(frame["sex"]) <= {"F", "M"} and frame["event"].isin([0, 1]).all()
    assert {"age", "race", "cancer_type", "stage", "ecog", "time", "event"} <= set(frame.columns)
    assert (frame["time"] > 0).all() and 0.2 < frame["event"].mean() < 0.9
    assert power.sizes(DEMO) == {"A": 1200, "B": 1500}


def test_a_face_visible_facesurvival_has_the_power_to_show_its_claims_and_a_blind_one_does_not() -> None:
    sharp = power.Accuracy(power.error_sd(3.0), power.error_sd(9.0), 0.0)  # the face-visible oracle itself
    # not Complementary: it needs FaceAge to add to FaceSurvival too, and nothing adds to the face-visible oracle
    names = ("FaceSurvival quartiles", "Independent cohort")
    shown = power.reproduced(power.simulate(DEMO, sharp, names, BUILDS))
    assert all(shown[n] >= 0.8 for n in names), shown
    blind = power.reproduced(power.simulate(DEMO, power.blind(sharp, "facesurvival"), names, BUILDS))
    assert all(blind[n] <= FALSE_POSITIVES / BUILDS for n in names), blind  # a control that must fail


def test_a_faceage_blind_to_biological_age_never_shows_that_faceage_adds_prognosis() -> None:
    sharp = power.Accuracy(power.error_sd(1.0), power.error_sd(9.0), power.facesurvival_noise(0.6))
    names = ("FaceAge prognosis", "Combination")
    shown = power.reproduced(power.simulate(DEMO, sharp, names, BUILDS))
    blind = power.reproduced(power.simulate(DEMO, power.blind(sharp, "faceage"), names, BUILDS))
    assert all(blind[n] <= FALSE_POSITIVES / BUILDS for n in names), blind  # a control that must fail
    assert all(shown[n] >= 0.8 for n in names), shown


# the demo build's measured accuracy in the world before it was redesigned (FaceAge and scratch test MAE, years;
# FaceSurvival's C on A's test split), and the noise around the face-visible oracle that C meant there
DEMO_ACCURACY = {"faceage": 6.95, "scratch": 7.51, "facesurvival_noise": 0.353}


@pytest.mark.slow
def test_the_demo_world_lets_a_faceage_as_accurate_as_the_demos_show_its_claims_and_a_blind_one_never() -> None:
    """Issue 14 item 3: at the demo's size and accuracy every clinical claim's test has power >= 80 %, and a FaceAge
    that reads chronological age only never reproduces its claims (``world.CLINICAL_GAP_SD``, ``CLINICAL_A_SPLITS``).
    The combination is simulated with FaceSurvival as accurate as the demo's, not at the face-visible oracle: the
    oracle holds the whole gap the face shows, so a FaceAge cannot add to it by construction."""
    a = DEMO_ACCURACY
    acc = power.Accuracy(power.error_sd(a["faceage"]), power.error_sd(a["scratch"]), a["facesurvival_noise"])
    builds = 30
    shown = power.reproduced(power.simulate(DEMO, acc, power.SIMULATED, builds))
    # FaceAge head to head with a prior model only 0.56 y less accurate has no power at the demo's size (issue 25:
    # the old "adds beyond" test passed ties and worse models); every other clinical claim has
    assert all(p >= 0.8 for name, p in shown.items() if name != "FaceAge prognosis"), shown
    assert shown["FaceAge prognosis"] <= 0.2, shown
    names = ("FaceAge prognosis", "Combination")
    blind = power.reproduced(power.simulate(DEMO, power.blind(acc, "faceage"), names, builds))
    assert all(blind[n] == 0.0 for n in names), blind
    oracle = power.reproduced(power.simulate(DEMO, power.Accuracy(acc.faceage_sd, acc.scratch_sd, 0.0),
                                             ["Combination"], builds))  # fmt: skip
    assert oracle["Combination"] <= FALSE_POSITIVES / BUILDS  # nothing left for FaceAge beside the oracle


def test_the_power_table_is_computed_for_a_synth_build_and_left_out_on_real_data() -> None:
    smoke = config.load("smoke")
    t = pd.DataFrame({"value": {"faceage.mae": 8.0, "faceage.mae.scratch": 9.0, "c.A.FaceSurvival": 0.6}})
    table = power.table(smoke, t, n_builds=3)
    assert list(table.index) == list(power.SIMULATED) and list(table.columns) == [
        "power",
        "control",
        "blinded",
        "builds",
    ]
    assert table["power"].between(0, 1).all() and (table["builds"] == 3).all()
    assert set(table["blinded"]) == {"FaceAge", "FaceSurvival"}
    sentence = power.sentence(table, t)
    assert "3 simulated builds" in sentence and "MAE 8.00 y" in sentence and "made blind" in sentence
    assert sentence.endswith(power.UNSIMULATED) and "show no power (—)" in sentence
    assert power.table(smoke, t.drop(index="c.A.FaceSurvival")).empty  # a number it needs is missing
    assert "not computed" in power.sentence(power.table(smoke, t.drop(index="c.A.FaceSurvival")), t)
    real = config.load("smoke", {"data.source": "real"})
    assert power.for_build(real, t) is None and power.shares(None) is None
    assert power.replicates(smoke) == 10 and power.replicates(DEMO) == 100


def test_the_simulated_numbers_are_what_each_claim_reads() -> None:
    rng = np.random.default_rng(0)
    numbers = power.simulated_numbers(
        rng, {"A": 300, "B": 300}, power.Accuracy(5.0, 9.0, 0.2), set(power.FITS.values())
    )
    for c in claims.CLAIMS:
        if c.name in power.SIMULATED:
            needed = [
                k for k in c.keys if not k.startswith(("lrt.", "cdiff.", "survival.A.faceage", "survival.B.faceage"))
            ]
            assert set(needed) <= set(numbers.index), c.name
            assert c.decide(numbers) in (claims.REPRODUCED, claims.NOT_REPRODUCED, claims.INCONCLUSIVE)
    assert (numbers["lower"] < numbers["value"]).all() and (numbers["value"] < numbers["upper"]).all()


def test_the_simulated_builds_decide_the_same_in_other_processes_as_here() -> None:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    acc = power.Accuracy(power.error_sd(6.0), power.error_sd(8.0), 0.3)
    smoke = config.load("smoke")
    here = power.simulate(smoke, acc, power.SIMULATED, 4)
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        there = power.simulate(smoke, acc, power.SIMULATED, 4, pool=pool)
    pd.testing.assert_frame_equal(here, there)
    assert list(here.columns) == list(power.SIMULATED) and len(here) == 4
    with power.processes(power.PARALLEL_FROM - 1) as none:
        assert none is None  # too few builds to pay for the processes' start
