"""Concordance: Harrell's and Uno's C against lifelines and torchsurv, the vectorised bootstrap against a slow
per-resample loop, the sign convention, time-dependent AUC and input validation."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch
from lifelines import CoxPHFitter
from lifelines.datasets import load_rossi
from lifelines.utils import concordance_index
from torchsurv.metrics.cindex import ConcordanceIndex

from fahr.stats import concordance as cc

EXACT = 1e-6


@pytest.fixture(scope="module")
def rossi() -> pd.DataFrame:
    """Rossi recidivism data (432 subjects, 114 arrests, many tied weeks) with a Cox linear predictor as a score."""
    data = load_rossi()
    fit = CoxPHFitter().fit(data, duration_col="week", event_col="arrest")
    data["lp"] = fit.predict_log_partial_hazard(data)
    return data


@pytest.fixture(scope="module")
def tied() -> pd.DataFrame:
    """Random data with heavily tied times (whole years, events and censorings at the same time) and tied scores."""
    rng = np.random.default_rng(7)
    n = 300
    score = rng.integers(0, 5, size=n).astype(float)
    time = np.ceil(rng.exponential(4.0 / np.exp(0.4 * score)))
    event = (rng.random(n) < 0.6).astype(int)
    return pd.DataFrame({"time": time, "event": event, "score": score, "noise": rng.normal(size=n)})


def synthetic(n: int, seed: int = 0) -> pd.DataFrame:
    """Exponential survival with hazard exp(risk), ~half censored; ``risk`` is the true log-hazard."""
    rng = np.random.default_rng(seed)
    risk = rng.normal(size=n)
    event_time = rng.exponential(5.0 / np.exp(risk))
    censor_time = rng.exponential(5.0, size=n)
    return pd.DataFrame({"time": np.minimum(event_time, censor_time), "event": (event_time <= censor_time).astype(int),
                         "risk": risk, "noise": rng.normal(size=n)})  # fmt: skip


def lifelines_c(score, time, event) -> float:
    return concordance_index(time, -np.asarray(score), event)


# --- point estimates and the full-sample estimate of the bootstrap -------------------------------------------------


@pytest.mark.parametrize("score", ["prio", "lp"])
def test_harrell_matches_lifelines_on_rossi(rossi, score) -> None:
    expected = lifelines_c(rossi[score], rossi["week"], rossi["arrest"])
    assert cc.harrell(rossi[score], rossi["week"], rossi["arrest"]) == pytest.approx(expected, abs=EXACT)
    boot = cc.bootstrap({score: rossi[score]}, rossi["week"], rossi["arrest"], n_resamples=5)
    assert boot.estimates[score] == pytest.approx(expected, abs=EXACT)


def test_harrell_matches_lifelines_with_tied_times_and_scores(tied) -> None:
    for name in ["score", "noise"]:
        expected = lifelines_c(tied[name], tied["time"], tied["event"])
        assert cc.harrell(tied[name], tied["time"], tied["event"]) == pytest.approx(expected, abs=EXACT)
    boot = cc.bootstrap(tied[["score", "noise"]], tied["time"], tied["event"], n_resamples=5)
    for name in ["score", "noise"]:
        assert boot.estimates[name] == pytest.approx(lifelines_c(tied[name], tied["time"], tied["event"]), abs=EXACT)


def test_chunking_does_not_change_the_result(tied, monkeypatch) -> None:
    args = (tied[["score", "noise"]], tied["time"], tied["event"])
    whole = cc.bootstrap(*args, n_resamples=20, seed=3)
    monkeypatch.setattr(cc, "CHUNK_ELEMENTS", 1)  # 16 event rows per chunk
    chunked = cc.bootstrap(*args, n_resamples=20, seed=3)
    np.testing.assert_allclose(chunked.replicates, whole.replicates, rtol=0, atol=1e-12)


@pytest.mark.parametrize("tau", [None, 30.0])
def test_uno_matches_torchsurv_on_rossi(rossi, tau) -> None:
    time, event = rossi["week"], rossi["arrest"]
    weight = torch.as_tensor(cc.censoring_weights(time, event))
    tmax = None if tau is None else torch.tensor(tau)
    score = torch.as_tensor(rossi["lp"].to_numpy())
    events, times = torch.as_tensor(event.to_numpy()).bool(), torch.as_tensor(time.to_numpy(), dtype=torch.float64)
    expected = ConcordanceIndex()(score, events, times, weight=weight, tmax=tmax)
    assert cc.uno(rossi["lp"], time, event, tau=tau) == pytest.approx(float(expected), abs=EXACT)
    boot = cc.bootstrap({"lp": rossi["lp"]}, time, event, n_resamples=5, kind="uno", tau=tau)
    assert boot.estimates["lp"] == pytest.approx(float(expected), abs=EXACT)


def test_uno_bootstrap_estimate_matches_uno_with_ties(tied) -> None:
    for tau in [None, 3.0]:
        boot = cc.bootstrap(tied[["score", "noise"]], tied["time"], tied["event"], n_resamples=5, kind="uno", tau=tau)
        for name in ["score", "noise"]:
            assert boot.estimates[name] == pytest.approx(
                cc.uno(tied[name], tied["time"], tied["event"], tau), abs=EXACT
            )


def test_uno_equals_harrell_without_censoring() -> None:
    data = synthetic(200, seed=1)
    event = np.ones(len(data))
    assert cc.uno(data["risk"], data["time"], event) == pytest.approx(cc.harrell(data["risk"], data["time"], event))


@pytest.mark.parametrize("kind", ["harrell", "uno"])
def test_sign_convention(kind) -> None:
    time = np.array([0.5, 1.0, 2.0, 3.5, 4.0, 7.0])
    event = np.ones_like(time)
    scores = {"minus time": -time, "time": time, "constant": np.full_like(time, 2.0)}
    boot = cc.bootstrap(scores, time, event, n_resamples=10, kind=kind)
    point = cc.harrell if kind == "harrell" else cc.uno
    for name, expected in [("minus time", 1.0), ("time", 0.0), ("constant", 0.5)]:
        assert point(scores[name], time, event) == pytest.approx(expected)
        assert boot.estimates[name] == pytest.approx(expected)


def test_point_estimates_restore_the_torch_thread_count(rossi) -> None:
    threads = torch.get_num_threads()
    cc.harrell(rossi["prio"], rossi["week"], rossi["arrest"])  # runs torchsurv on one thread
    assert torch.get_num_threads() == threads


# --- bootstrap ------------------------------------------------------------------------------------------------------


def test_bootstrap_matches_a_slow_lifelines_loop_on_the_same_resamples(rossi) -> None:
    time, event, score = rossi["week"].to_numpy(), rossi["arrest"].to_numpy(), rossi["prio"].to_numpy()
    boot = cc.bootstrap({"prio": score}, time, event, n_resamples=200, seed=11)
    indices = cc.resample_indices(len(time), 200, seed=11)
    reference = np.array([lifelines_c(score[i], time[i], event[i]) for i in indices])
    np.testing.assert_allclose(boot.replicates[:, 0], reference, rtol=0, atol=EXACT)
    assert boot.se["prio"] == pytest.approx(np.std(reference, ddof=1), abs=EXACT)
    assert 0.015 < boot.se["prio"] < 0.04  # Harrell's C on 432 subjects: SE of a few hundredths


def test_uno_bootstrap_matches_torchsurv_with_full_sample_weights(rossi) -> None:
    time, event, score = rossi["week"].to_numpy(), rossi["arrest"].to_numpy(), rossi["lp"].to_numpy()
    weight = cc.censoring_weights(time, event)  # estimated once on the full sample, as the bootstrap does
    boot = cc.bootstrap({"lp": score}, time, event, n_resamples=8, seed=5, kind="uno")
    for b, i in enumerate(cc.resample_indices(len(time), 8, seed=5)):
        expected = ConcordanceIndex()(torch.as_tensor(score[i]), torch.as_tensor(event[i]).bool(),
                                      torch.as_tensor(time[i], dtype=torch.float64),
                                      weight=torch.as_tensor(weight[i]))  # fmt: skip
        assert boot.replicates[b, 0] == pytest.approx(float(expected), abs=EXACT)


def test_bootstrap_cis_contain_the_estimate_and_are_reproducible(rossi) -> None:
    scores = rossi[["prio", "lp"]]
    first = cc.bootstrap(scores, rossi["week"], rossi["arrest"], n_resamples=200, seed=1)
    again = cc.bootstrap(scores, rossi["week"], rossi["arrest"], n_resamples=200, seed=1)
    other = cc.bootstrap(scores, rossi["week"], rossi["arrest"], n_resamples=200, seed=2)
    np.testing.assert_array_equal(first.replicates, again.replicates)
    assert not np.array_equal(first.replicates, other.replicates)
    table = first.table()
    assert list(table.columns) == ["C", "lower", "upper", "se"] and list(table.index) == ["prio", "lp"]
    assert (table["lower"] < table["C"]).all() and (table["C"] < table["upper"]).all()
    assert (table["se"] > 0).all()
    assert first.replicates.shape == (200, 2) and first.frame.shape == (200, 2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.kind = "uno"  # type: ignore[misc]


def test_difference_of_a_score_with_itself_is_exactly_zero(rossi) -> None:
    boot = cc.bootstrap({"a": rossi["lp"], "b": rossi["lp"].copy()}, rossi["week"], rossi["arrest"], n_resamples=100)
    for a, b in [("a", "a"), ("a", "b")]:
        diff = boot.difference(a, b)
        assert diff["difference"] == 0 and diff["se"] == 0 and diff["lower"] == 0 and diff["upper"] == 0
        assert diff["p"] == 1.0


def test_strong_score_beats_noise_with_a_significant_paired_difference() -> None:
    data = synthetic(400, seed=2)
    boot = cc.bootstrap(data[["risk", "noise"]], data["time"], data["event"], n_resamples=300, seed=0)
    diff = boot.difference("risk", "noise")
    assert diff["difference"] == pytest.approx(boot.estimates["risk"] - boot.estimates["noise"])
    assert diff["lower"] > 0 and diff["p"] < 1e-4
    reverse = boot.difference("noise", "risk")
    assert reverse["difference"] == pytest.approx(-diff["difference"]) and reverse["p"] == pytest.approx(diff["p"])


def test_difference_rejects_an_unknown_score(rossi) -> None:
    boot = cc.bootstrap({"prio": rossi["prio"]}, rossi["week"], rossi["arrest"], n_resamples=10)
    with pytest.raises(ValueError, match="unknown score 'age'"):
        boot.difference("prio", "age")


def test_benchmark_reports_throughput() -> None:
    result = cc.benchmark(n=300, resamples=20)
    assert result["patients"] == 300 and result["resamples"] == 20
    assert result["seconds"] > 0 and result["resamples_per_second"] == pytest.approx(20 / result["seconds"])


# --- time-dependent AUC ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("ipcw", [True, False])
def test_time_auc_of_the_true_hazard_beats_a_random_score(ipcw) -> None:
    data = synthetic(500, seed=3)
    years = [1.0, 2.0, 5.0]
    true = cc.time_auc(data["risk"], data["time"], data["event"], years, ipcw=ipcw)
    noise = cc.time_auc(data["noise"], data["time"], data["event"], years, ipcw=ipcw)
    assert list(true.columns) == ["year", "auc"] and true["year"].tolist() == years
    assert true["auc"].between(0, 1).all() and noise["auc"].between(0, 1).all()
    assert (true["auc"] > noise["auc"] + 0.1).all() and (true["auc"] > 0.65).all()


def test_time_auc_horizons_outside_follow_up_are_nan(rossi) -> None:
    with pytest.warns(UserWarning, match="outside the follow-up window"):
        table = cc.time_auc(rossi["lp"], rossi["week"], rossi["arrest"], [26.0, 52.0, 100.0, 10.0])
    assert table["year"].tolist() == [26.0, 52.0, 100.0, 10.0]
    assert table["auc"].isna().tolist() == [False, True, True, False]


# --- validation -----------------------------------------------------------------------------------------------------

GOOD_TIME = [1.0, 2.0, 3.0, 4.0]
GOOD_EVENT = [1, 0, 1, 1]
GOOD_SCORE = [0.3, 0.1, 0.2, 0.5]

INVALID = [  # (id, message the error must name, (score, time, event))
    ("time shorter", "lengths differ: time has 3 values but event has 4", (GOOD_SCORE, GOOD_TIME[:3], GOOD_EVENT)),
    ("score shorter", "lengths differ: score.* has 3 values but time has 4", (GOOD_SCORE[:3], GOOD_TIME, GOOD_EVENT)),
    ("NaN score", "score.* contains NaN", ([0.3, np.nan, 0.2, 0.5], GOOD_TIME, GOOD_EVENT)),
    ("NaN time", "time contains NaN", (GOOD_SCORE, [1.0, np.nan, 3.0, 4.0], GOOD_EVENT)),
    ("NaN event", "event contains NaN", (GOOD_SCORE, GOOD_TIME, [1, np.nan, 1, 1])),
    ("infinite time", "time contains infinite values", (GOOD_SCORE, [1.0, np.inf, 3.0, 4.0], GOOD_EVENT)),
    ("event 2", "event must be 0/1", (GOOD_SCORE, GOOD_TIME, [1, 2, 1, 0])),
    ("zero time", "time must be > 0", (GOOD_SCORE, [0.0, 2.0, 3.0, 4.0], GOOD_EVENT)),
    ("negative time", "time must be > 0", (GOOD_SCORE, [-1.0, 2.0, 3.0, 4.0], GOOD_EVENT)),
    ("no events", "no events", (GOOD_SCORE, GOOD_TIME, [0, 0, 0, 0])),
    ("one subject", "at least 2 subjects", ([0.3], [1.0], [1])),
]

CALLS = {
    "harrell": lambda s, t, e: cc.harrell(s, t, e),
    "uno": lambda s, t, e: cc.uno(s, t, e),
    "bootstrap": lambda s, t, e: cc.bootstrap({"score": s}, t, e, n_resamples=5),
    "time_auc": lambda s, t, e: cc.time_auc(s, t, e, [2.0]),
}


@pytest.mark.parametrize("call", list(CALLS))
@pytest.mark.parametrize(("message", "args"), [case[1:] for case in INVALID], ids=[case[0] for case in INVALID])
def test_invalid_inputs_raise_a_named_error(call, message, args) -> None:
    with pytest.raises(ValueError, match=message):
        CALLS[call](*args)


@pytest.mark.parametrize("call", ["harrell", "uno", "bootstrap"])
def test_data_without_comparable_pairs_raise(call) -> None:
    with pytest.raises(ValueError, match="no comparable pairs"):
        CALLS[call]([0.3, 0.1], [2.0, 2.0], [1, 1])  # two events at the same time are not comparable


def test_bootstrap_rejects_bad_arguments() -> None:
    args = (GOOD_TIME, GOOD_EVENT)
    with pytest.raises(ValueError, match="scores is empty"):
        cc.bootstrap({}, *args)
    with pytest.raises(ValueError, match="kind must be"):
        cc.bootstrap({"s": GOOD_SCORE}, *args, kind="somers")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n_resamples must be"):
        cc.bootstrap({"s": GOOD_SCORE}, *args, n_resamples=0)
    with pytest.raises(ValueError, match="tau must be"):
        cc.bootstrap({"s": GOOD_SCORE}, *args, kind="uno", tau=-1.0)
    with pytest.raises(ValueError, match="no comparable pairs"):
        cc.bootstrap({"s": GOOD_SCORE}, *args, kind="uno", tau=0.5)
    with pytest.raises(ValueError, match="score 's' contains NaN"):
        cc.bootstrap({"s": [np.nan] * 4}, *args)
    with pytest.raises(ValueError, match="years must be"):
        cc.time_auc(GOOD_SCORE, *args, [])
