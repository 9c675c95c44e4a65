"""The hand-made baseline of the FaceAge chapter: named image statistics that move with the cues they name, and
a ridge fit on them that learns age where the cues carry it and nothing where they do not."""

from __future__ import annotations

import numpy as np
import pandas as pd

from fahr.analysis import faceage
from fahr.data.synth.face import FaceParams
from fahr.data.synth.render import render


def faces(ages: list[float], size: int = 112) -> np.ndarray:
    """FAHR-Synth faces of one identity at several ages, rendered straight on (no cohort needed)."""
    return np.stack([render(FaceParams(age=a), size=size).image for a in ages])


def test_the_statistics_follow_the_ageing_cues_they_are_named_after() -> None:
    stats = faceage.image_statistics(faces([25.0, 80.0])).set_axis(["young", "old"])
    named = ["hair brightness", "hair saturation", "hairline and forehead high-frequency energy",
             "cheek high-frequency energy", "eye-to-forehead contrast", "skin saturation"]  # fmt: skip
    assert list(stats.columns) == named
    assert stats.loc["old", "hair brightness"] > stats.loc["young", "hair brightness"]  # greying
    assert stats.loc["old", "cheek high-frequency energy"] > 2 * stats.loc["young", "cheek high-frequency energy"]
    assert stats.loc["old", "eye-to-forehead contrast"] > stats.loc["young", "eye-to-forehead contrast"]  # bags


def test_a_uniform_image_has_no_detail_and_no_contrast() -> None:
    grey = np.full((2, 64, 64, 3), 128, np.uint8)
    stats = faceage.image_statistics(grey)
    assert np.allclose(stats[["hairline and forehead high-frequency energy", "cheek high-frequency energy",
                              "eye-to-forehead contrast", "hair saturation", "skin saturation"]], 0.0)  # fmt: skip
    assert np.allclose(stats["hair brightness"], 128 / 255, atol=1e-3)


def test_the_paired_mae_difference_shows_a_better_model_and_holds_zero_for_a_twin() -> None:
    rng = np.random.default_rng(0)
    age = rng.uniform(0, 90, 1500)
    frame = pd.DataFrame({"age": age, "faceage": age + rng.normal(0, 6, 1500)})
    frame["faceage-scratch"] = age + rng.normal(0, 6, 1500)  # a twin as accurate, with errors of its own
    frame["mean-age baseline"] = age.mean()
    frame[faceage.HANDMADE] = age + rng.normal(0, 9, 1500)
    frame.loc[:9, faceage.HANDMADE] = np.nan  # photos the hand-made statistics could not read: left out
    d = faceage.mae_differences(frame, 500, seed=0).set_index("key")
    assert list(d.index) == ["scratch", "mean_baseline", "handmade_baseline"]
    assert d.loc["scratch", "lower"] < 0 < d.loc["scratch", "upper"] and d.loc["scratch", "upper"] < 0.5
    assert d.loc["mean_baseline", "upper"] < -5 and d.loc["handmade_baseline", "upper"] < -1
    assert d.loc["handmade_baseline", "photos"] == 1490
