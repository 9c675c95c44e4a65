"""The Pretraining chapter: its sentence from a hand-made linear-probe table; label efficiency on made-up features."""

from __future__ import annotations

import numpy as np
import pandas as pd

from fahr.analysis import pretraining
from fahr.core import config


def probe(pretrained: float, random: float) -> pd.DataFrame:
    """A ``linear_probe`` table (test MAE in years), its rows in another order than ``linear_probe`` writes them."""
    rows = {pretraining.PROBE_RANDOM: random, pretraining.PROBE_PRETRAINED: pretrained,
            "none (predict the training mean)": 14.0}  # fmt: skip
    return pd.DataFrame({"test MAE (years)": rows}).rename_axis("features")


def test_probe_reading_gives_the_pretrained_error_minus_the_random_features_error() -> None:
    assert pretraining.probe_reading(probe(pretrained=8.3, random=10.5)) == (
        "Against random features of the same shape, pretraining changes the probe's error by **-2.2 years**."
    )
    assert "by **+0.5 years**" in pretraining.probe_reading(probe(pretrained=11.0, random=10.5))  # pretraining hurt


def probed_world(people: int = 120, photos: int = 2, seed: int = 0) -> pretraining.ProbeFeatures:
    """Frozen features of a made-up age dataset: the pretrained features carry age, the random ones nothing, the
    hand-made ones a little."""
    rng = np.random.default_rng(seed)

    def split(offset: int) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
        ages = np.repeat(rng.uniform(5, 85, people), photos)
        table = pd.DataFrame({"subject_id": np.repeat(np.arange(people) + offset, photos), "age": ages})
        noise = lambda k: rng.normal(size=(len(ages), k))  # noqa: E731
        kinds = {
            pretraining.PROBE_PRETRAINED: np.column_stack([ages + rng.normal(0, 3, len(ages)), noise(7)]),
            pretraining.PROBE_RANDOM: noise(8),
            pretraining.HANDMADE_FEATURES: np.column_stack([ages + rng.normal(0, 15, len(ages)), noise(3)]),
        }
        return table, kinds

    (train, x_train), (test, x_test) = split(0), split(10_000)
    return pretraining.ProbeFeatures(train, test, {k: (x_train[k], x_test[k]) for k in x_train})


def test_label_efficiency_finds_the_informative_features_and_a_tie_is_exactly_zero() -> None:
    cfg = config.load("smoke", {})
    probed = probed_world()
    efficiency, diffs = pretraining.label_efficiency(cfg, probed, shares=(0.1, 1.0), subsets=2)
    assert len(efficiency) == 2 * 3 and len(diffs) == 2 * 2
    assert set(efficiency.loc[efficiency["share"] == 0.1, "people"]) == {12}
    mae = efficiency.set_index(["share", "features"])["test MAE (years)"]
    assert mae[(1.0, pretraining.PROBE_PRETRAINED)] < 4 < 15 < mae[(1.0, pretraining.PROBE_RANDOM)]
    assert (diffs["upper"] < 0).all() and (diffs["lower"] <= diffs["difference"]).all()
    keys = {r.key: r for r in pretraining.efficiency_results(efficiency, diffs)}
    assert {"foundation.faceage.10%.vs_random", "foundation.faceage.100%.vs_handmade",
            "foundation.faceage.10%.pretrained"} <= set(keys)  # fmt: skip
    assert "10%" in pretraining.efficiency_reading(diffs, judged=0.1)
    # the random features in the place of the pretrained ones: the same probes, a difference of exactly 0
    tie = pretraining.ProbeFeatures(probed.train, probed.test, dict(probed.features))
    tie.features[pretraining.PROBE_PRETRAINED] = tie.features[pretraining.PROBE_RANDOM]
    _, tied = pretraining.label_efficiency(cfg, tie, shares=(0.1,), subsets=2)
    against_random = tied.set_index("compared with").loc[pretraining.PROBE_RANDOM]
    assert against_random["difference"] == against_random["lower"] == against_random["upper"] == 0.0
    assert pretraining.label_efficiency(cfg, None)[1].empty
