"""Cox models and the likelihood-ratio test against published R ``survival::coxph`` results (Rossi data)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from lifelines.datasets import load_rossi
from scipy import stats

from fahr.stats import cox

RECIDIVISM = ["fin", "age", "race", "wexp", "mar", "paro", "prio"]

# R 4.x, survival 3.x: summary(coxph(Surv(week, arrest) ~ fin + age + race + wexp + mar + paro + prio,
# data = Rossi)) — Fox & Weisberg, "Cox Proportional-Hazards Regression for Survival Data in R" (2018 appendix
# to An R Companion to Applied Regression); Efron ties, R's default.
R_COEF = {"fin": -0.37942, "age": -0.05744, "race": 0.31390, "wexp": -0.14980, "mar": -0.43370, "paro": -0.08487,
          "prio": 0.09150}  # fmt: skip
R_SE = {"fin": 0.19138, "age": 0.02200, "race": 0.30799, "wexp": 0.21222, "mar": 0.38187, "paro": 0.19576,
        "prio": 0.02865}  # fmt: skip
R_P = {"fin": 0.04742, "age": 0.00903, "race": 0.30812, "wexp": 0.48029, "mar": 0.25606, "paro": 0.66461,
       "prio": 0.00140}  # fmt: skip
R_FIN_HR_CI = (0.4702, 0.9957)
R_LOGLIK = (-675.38, -658.75)  # null model, fitted model
R_LRT = (33.27, 7, 2.362e-05)  # "Likelihood ratio test=33.27 on 7 df, p=2.362e-05"
R_CONCORDANCE = 0.640
R_N, R_EVENTS = 432, 114


@pytest.fixture(scope="module")
def rossi() -> pd.DataFrame:
    return load_rossi().rename(columns={"week": "time", "arrest": "event"})


@pytest.fixture(scope="module")
def full(rossi) -> cox.CoxResult:
    return cox.fit(rossi, [cox.Covariate(c, c) for c in RECIDIVISM], "full")


def test_coefficients_and_standard_errors_match_r(full) -> None:
    for term in RECIDIVISM:
        assert full.table.loc[term, "coef"] == pytest.approx(R_COEF[term], abs=1e-5), term
        assert full.table.loc[term, "se"] == pytest.approx(R_SE[term], abs=1e-5), term
        assert full.table.loc[term, "p"] == pytest.approx(R_P[term], abs=1e-5), term
    assert full.table.loc["fin", "lower"] == pytest.approx(R_FIN_HR_CI[0], abs=1e-4)
    assert full.table.loc["fin", "upper"] == pytest.approx(R_FIN_HR_CI[1], abs=1e-4)
    assert np.allclose(full.table["hr"], np.exp(full.table["coef"]))
    assert (full.n, full.events) == (R_N, R_EVENTS)


def test_log_likelihood_likelihood_ratio_and_concordance_match_r(full) -> None:
    assert full.log_likelihood_null == pytest.approx(R_LOGLIK[0], abs=0.005)
    assert full.log_likelihood == pytest.approx(R_LOGLIK[1], abs=0.005)
    assert full.lr_statistic == pytest.approx(R_LRT[0], abs=0.005)
    assert full.concordance == pytest.approx(R_CONCORDANCE, abs=0.001)


def test_null_log_likelihood_agrees_with_lifelines(rossi, full) -> None:
    """Our Efron null log-likelihood equals the one lifelines uses for its own likelihood-ratio test."""
    lifelines_test = full.model.log_likelihood_ratio_test()
    assert full.lr_statistic == pytest.approx(lifelines_test.test_statistic, rel=1e-9)
    assert lifelines_test.degrees_freedom == 7


def test_lrt_against_the_empty_model_is_rs_likelihood_ratio_test(rossi, full) -> None:
    empty = cox.fit(rossi, [], "no covariates")
    test = cox.lrt(full, empty)
    assert test.statistic == pytest.approx(R_LRT[0], abs=0.005)
    assert test.df == R_LRT[1]
    assert test.p == pytest.approx(R_LRT[2], rel=1e-3)


def test_lrt_is_a_hand_computation_of_two_delta_log_likelihood(rossi, full) -> None:
    reduced = cox.fit(rossi, [cox.Covariate(c, c) for c in ["fin", "age", "race", "wexp", "mar"]], "reduced")
    test = cox.lrt(full, reduced)
    by_hand = 2 * (full.model.log_likelihood_ - reduced.model.log_likelihood_)
    assert test.statistic == pytest.approx(by_hand, rel=1e-12)
    assert test.df == 2 and test.added == ("paro", "prio")
    assert test.p == pytest.approx(stats.chi2.sf(by_hand, 2), rel=1e-12)
    assert test.statistic > 5  # prio is a real predictor


def test_a_model_compared_with_itself_gives_zero_and_dropping_a_real_covariate_does_not(rossi, full) -> None:
    same = cox.lrt(full, full)
    assert (same.statistic, same.df, same.p) == (0.0, 0, 1.0)
    refit = cox.fit(rossi, [cox.Covariate(c, c) for c in RECIDIVISM], "refit")
    assert cox.lrt(full, refit).statistic == pytest.approx(0.0, abs=1e-9)
    without_prio = cox.fit(rossi, [cox.Covariate(c, c) for c in RECIDIVISM if c != "prio"], "no prio")
    dropped = cox.lrt(full, without_prio)
    assert dropped.df == 1 and dropped.statistic > 8 and dropped.p < 0.01


def test_lrt_refuses_models_that_are_not_nested_or_on_other_rows(rossi, full) -> None:
    a = cox.fit(rossi, [cox.Covariate("fin", "fin"), cox.Covariate("prio", "prio")], "a")
    b = cox.fit(rossi, [cox.Covariate("fin", "fin"), cox.Covariate("age", "age")], "b")
    with pytest.raises(ValueError, match="not nested"):
        cox.lrt(a, b)
    half = cox.fit(rossi.iloc[: len(rossi) // 2], [cox.Covariate("fin", "fin")], "half")
    with pytest.raises(ValueError, match="different patients"):
        cox.lrt(a, half)


def test_categorical_covariates_get_dummies_against_their_reference() -> None:
    frame = pd.DataFrame({"race": ["white", "black", "asian", "white"], "time": [1.0, 2, 3, 4], "event": [1, 0, 1, 1]})
    x = cox.design(frame, [cox.Covariate("race", "race", reference="white")])
    assert list(x.columns) == ["race: asian", "race: black", "time", "event"]
    assert x["race: black"].tolist() == [0, 1, 0, 0]
    with pytest.raises(KeyError, match="ecog"):
        cox.design(frame, [cox.Covariate("ecog", "ecog")])


def test_proportional_hazards_check_flags_age_and_work_experience_in_rossi(full) -> None:
    """Fox & Weisberg's diagnosis of this model: age and wexp violate proportional hazards, the rest do not."""
    assert set(full.ph.index) == set(RECIDIVISM)
    assert full.ph.loc["age", "p"] < 0.01 and full.ph.loc["wexp", "p"] < 0.01
    assert (full.ph.drop(index=["age", "wexp"])["p"] > 0.2).all()


def test_fit_refuses_a_cohort_without_events(rossi) -> None:
    with pytest.raises(ValueError, match="no events"):
        cox.fit(rossi.assign(event=0), [cox.Covariate("fin", "fin")], "none")


def test_quartiles_are_cut_on_one_cohort_and_carried_to_another() -> None:
    rng = np.random.default_rng(0)
    development = pd.Series(rng.normal(size=400))
    cuts = cox.quartile_cuts(development)
    q = cox.quartiles(development, cuts)
    assert q.value_counts().to_dict() == {"Q1": 100, "Q2": 100, "Q3": 100, "Q4": 100}
    shifted = cox.quartiles(pd.Series(rng.normal(1.0, 1.0, 400)), cuts)
    assert (shifted == "Q4").mean() > 0.4  # a riskier cohort fills the top quartile of the development cuts


def test_kaplan_meier_and_logrank_separate_groups_that_differ(rossi) -> None:
    frame = rossi.assign(group=np.where(rossi["prio"] >= 4, "Q4", "Q1"))
    fits = cox.kaplan_meier(frame, "group")
    table = cox.survival_at(fits, [20, 52])
    assert table.loc["Q1", "52 y"] > table.loc["Q4", "52 y"]
    tests = cox.logrank(frame, "group")
    assert tests.iloc[1]["p"] < 0.01
    assert tests.iloc[0]["statistic"] == pytest.approx(tests.iloc[1]["statistic"])  # two groups: the same test


def test_lrt_of_a_larger_model_whose_fit_stopped_short_is_nan_with_a_warning(rossi, full) -> None:
    """A larger model with a lower likelihood than the model nested in it has not converged (it happened to an
    interaction model on a small cohort): the test has no value, and the chapter goes on."""
    reduced = cox.fit(rossi, [cox.Covariate(c, c) for c in ("age", "prio")], "reduced")
    stalled = dataclasses.replace(full, log_likelihood=reduced.log_likelihood - 100.0)
    with pytest.warns(RuntimeWarning, match="did not converge"):
        test = cox.lrt(stalled, reduced)
    assert np.isnan(test.statistic) and np.isnan(test.p) and test.df == len(full.terms) - 2


def test_quick_coefficients_equal_lifelines_without_tied_deaths_and_fall_back_with_them(rossi, full) -> None:
    covariates = [cox.Covariate(c, c) for c in RECIDIVISM]
    # Rossi's weeks tie: the quick fit hands over to fit, whose table matches R's
    tied = cox.coefficients(rossi, covariates)
    pd.testing.assert_frame_equal(tied, full.table[["coef", "se", "hr", "lower", "upper"]])
    # deaths moved apart within their week, the censored left tied at week 52 (among themselves and with deaths)
    rng = np.random.default_rng(3)
    apart = rossi.assign(time=rossi["time"] - rossi["event"] * rng.uniform(0.0, 0.9, len(rossi)))
    quick = cox.coefficients(apart, covariates)
    slow = cox.fit(apart, covariates, check_ph=False).table
    assert list(quick.index) == RECIDIVISM
    np.testing.assert_allclose(quick[["coef", "se"]], slow[["coef", "se"]], atol=1e-4)
    np.testing.assert_allclose(quick[["hr", "lower", "upper"]], slow[["hr", "lower", "upper"]], rtol=1e-4)
    # a control: with the outcome shuffled away from the covariates, the prior count no longer predicts arrest
    shuffled = apart.assign(prio=rng.permutation(apart["prio"].to_numpy()))
    assert cox.coefficients(shuffled, covariates).loc["prio", "lower"] < 1.0 < quick.loc["prio", "lower"]
