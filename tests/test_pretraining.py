"""The Pretraining chapter's written sentence, from a hand-made linear-probe table."""

from __future__ import annotations

import pandas as pd

from fahr.analysis import pretraining


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
