"""FLOPs counted on the profile's models, and the GPU time they project to: the count agrees with the closed-form
matmul count of a ViT, a training step costs three forward passes, and the projection follows FLOPs, peak and MFU."""

from __future__ import annotations

import numpy as np
import pytest

from fahr.core import config
from fahr.models.heads import FaceAgeModel
from fahr.models.vit import ViTSpec, build_encoder, encoder_flops
from fahr.report import compute


def test_counted_forward_flops_of_the_paper_vit_match_the_closed_form_count() -> None:
    spec = ViTSpec(img_size=112, patch_size=16, embed_dim=768, depth=12, num_heads=12)
    counted = compute.counted_flops(lambda: FaceAgeModel(build_encoder(spec), 40.0, 20.0), lambda m, x: m(x).sum(),
                                    112, train=False)  # fmt: skip
    assert counted == pytest.approx(encoder_flops(spec), rel=1e-3)  # attention included: it is 2 % of the total
    deeper = ViTSpec(img_size=112, patch_size=16, embed_dim=768, depth=24, num_heads=12)
    twice = compute.counted_flops(lambda: FaceAgeModel(build_encoder(deeper), 40.0, 20.0), lambda m, x: m(x).sum(),
                                  112, train=False)  # fmt: skip
    assert twice / counted == pytest.approx(2.0, rel=0.01)  # the blocks are nearly all of it


def test_a_training_step_costs_about_three_forward_passes_and_mae_sees_a_quarter_of_the_patches() -> None:
    table = compute.stage_flops(config.load("paper"))
    ratio = table["training step GFLOP/image"] / table["forward GFLOP/image"]
    assert ratio.between(2.9, 3.05).all(), ratio
    age, mae = (
        table.loc["FaceAge fine-tuning", "forward GFLOP/image"],
        table.loc["MAE pretraining", "forward GFLOP/image"],
    )
    assert 0.25 < mae / age < 0.75  # the encoder on 25 % of the patches plus a lighter decoder on all of them


def test_the_projection_scales_with_flops_peak_and_mfu_and_sums_the_stages() -> None:
    cfg = config.load("paper")
    at40, at20 = compute.projection(cfg), compute.projection(cfg, mfu=0.2)
    hours = list(compute.GPUS)
    assert np.allclose(at20[hours], 2 * at40[hours])
    stages = at40.drop(index="all stages")
    assert np.isclose(stages["total PFLOP"].sum(), at40.loc["all stages", "total PFLOP"])
    a100, h100 = at40["A100"], at40["H100/H200"]
    assert np.allclose(a100 / h100, 989 / 312)
    assert stages.loc["MAE pretraining", "photos trained on (M)"] * 1e6 == cfg.pretrain.epochs * 42_000_000
    smaller = compute.projection(cfg, {**compute.PAPER_PHOTOS, "pretrain": 21_000_000})
    assert np.isclose(smaller.loc["MAE pretraining", "total PFLOP"], at40.loc["MAE pretraining", "total PFLOP"] / 2)
    assert "GPU-hours on H100/H200 GPUs" in compute.projection_sentence(cfg, at40)
    mean = at40.loc["all stages", "training step GFLOP/image"]
    assert stages["training step GFLOP/image"].min() < mean < stages["training step GFLOP/image"].max()
