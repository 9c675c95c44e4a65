"""The hand-made baseline of the FaceAge chapter: named image statistics that move with the cues they name, and
a ridge fit on them that learns age where the cues carry it and nothing where they do not."""

from __future__ import annotations

import numpy as np

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
