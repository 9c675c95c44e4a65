"""Ages with intervals: split-conformal calibration (fahr.stats.conformal) covers as promised on exchangeable
photos, per band of the predicted age, and ``fahr predict`` writes each age's interval from the calibration kept
beside the checkpoint (none for a model without one)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data

from fahr import predict
from fahr.core import cache, config, provenance
from fahr.models.heads import FaceAgeModel, save_checkpoint
from fahr.models.vit import ViTSpec, build_encoder
from fahr.stats import conformal


def world(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Ages 0–100 and predictions whose error grows with age (heteroscedastic, as FaceAge's does)."""
    rng = np.random.default_rng(seed)
    age = rng.uniform(0, 100, n)
    return age + rng.normal(0, 2 + age / 12), age


def test_the_intervals_cover_as_promised_and_are_narrower_where_the_model_errs_less() -> None:
    predicted, age = world(3000, 0)
    calibration = conformal.fit(predicted, age, alpha=0.1)
    assert len(calibration.halfwidths) >= 5 and min(calibration.photos) >= 50
    assert calibration.halfwidths[0] < calibration.halfwidths[-2]  # the young get narrower intervals than the old
    coverages = []
    for seed in range(1, 6):  # fresh photos from the same world
        new_pred, new_age = world(2000, seed)
        coverages.append(conformal.coverage(new_pred, new_age, calibration).loc["all", "coverage"])
    assert 0.88 <= np.mean(coverages) <= 0.93  # at least 1 − alpha in expectation, and not much more
    one_width = conformal.fit(predicted, age, alpha=0.1, min_photos=10_000)  # a single band: one width for all
    assert len(one_width.halfwidths) == 1
    young = conformal.coverage(*world(4000, 9), one_width).loc["0–9", "coverage"]
    banded = conformal.coverage(*world(4000, 9), calibration).loc["0–9", "coverage"]
    assert young > 0.97 and 0.85 <= banded <= 0.95  # one width over-covers the young; bands fix it


def test_the_conformal_quantile_and_its_edge_cases() -> None:
    errors = np.arange(1.0, 20.0)  # 19 errors: rank ceil(20 × 0.9) = 18
    assert conformal.quantile(errors, 0.1) == 18.0
    assert math.isinf(conformal.quantile(errors[:5], 0.1))  # too few photos for 90 %: an infinite interval
    with pytest.raises(ValueError, match="as many predictions"):
        conformal.fit(np.zeros(3), np.zeros(2))
    with pytest.raises(ValueError, match="0 < alpha < 1"):
        conformal.fit(np.zeros(3), np.zeros(3), alpha=1.5)
    calibration = conformal.fit(*world(500, 3), alpha=0.2)
    assert conformal.Calibration.from_dict(json.loads(json.dumps(calibration.to_dict()))) == calibration
    constant = conformal.fit(np.full(500, 50.0), world(500, 3)[1], alpha=0.2)  # a model that reads nothing
    assert constant.halfwidths[0] > 2 * np.median(calibration.halfwidths)  # covered only by being wide


@pytest.mark.slow  # detects a face with dlib
def test_fahr_predict_writes_each_age_with_the_interval_kept_beside_the_checkpoint(tmp_path) -> None:
    spec = ViTSpec(img_size=112, patch_size=16, embed_dim=32, depth=1, num_heads=2)
    torch.manual_seed(0)
    extra = {"spec": dict(spec.__dict__), "init_age": 40.0, "age_scale": 10.0}
    checkpoint = save_checkpoint(tmp_path / "faceage.pt", FaceAgeModel(build_encoder(spec), 40.0, 10.0), extra)
    Image.fromarray(data.astronaut()).save(tmp_path / "astronaut.jpg")
    without = predict.photos([tmp_path / "astronaut.jpg"], checkpoint, progress=False, workers=1)
    assert without[["age_lower", "age_upper"]].isna().all().all() and without.attrs["interval"] is None
    calibration = conformal.fit(*world(2000, 0), alpha=0.1)
    cfg = config.load("smoke", {})
    with provenance.artifact(predict.intervals_path(checkpoint), cfg, "calibrate-intervals",
                             checkpoint=cache.file_digest(checkpoint), alpha=0.1) as tmp:  # fmt: skip
        tmp.write_text(json.dumps(calibration.to_dict()))
    table = predict.photos([tmp_path / "astronaut.jpg"], checkpoint, progress=False, workers=1)
    row = table.iloc[0]
    assert row["flag"] == "ok" and row["age_lower"] < row["age_pred"] < row["age_upper"]
    lower, upper = conformal.interval(np.array([row["age_pred"]]), calibration)
    assert (row["age_lower"], row["age_upper"]) == pytest.approx((lower[0], upper[0]))
    assert table.attrs["interval"] == pytest.approx(0.9)
    Path(checkpoint).write_bytes(Path(checkpoint).read_bytes() + b"\0")  # another file: the calibration is not its
    assert predict._calibration_of(checkpoint) is None
