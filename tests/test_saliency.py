"""Saliency maps on toy models whose answer is known, and on a tiny random ViT: shapes, the known region,
completeness, faithfulness, regional shares, distinctness, the privacy rule, bad input."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn

from fahr import bench
from fahr.analysis import saliency as sal
from fahr.core.config import load
from fahr.data.synth import truth
from fahr.data.synth.render import REGIONS
from fahr.explain import attribution, faithfulness
from fahr.explain.regions import distinctness, profile, regional
from fahr.models import FaceAgeModel, ViTSpec, build_encoder
from fahr.report.figures import saliency as figures

SIZE = 32
BOX = (slice(6, 18), slice(10, 22))  # the only pixels the toy model reads (rows, columns)


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class BoxModel(nn.Module):
    """Output = weighted sum of the pixels inside BOX (a linear model: its true contributions are known)."""

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.weight = nn.Parameter(torch.zeros(3, SIZE, SIZE))
        with torch.no_grad():
            self.weight[:, BOX[0], BOX[1]] = torch.rand(3, 12, 12, generator=g) + 0.5

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x * self.weight).sum((1, 2, 3))

    def true_map(self, x: torch.Tensor, baseline: torch.Tensor) -> torch.Tensor:
        return ((x - baseline) * self.weight).sum(1).detach()


def images(n: int = 6, seed: int = 1) -> torch.Tensor:
    return torch.rand(n, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(seed))


def box_mask() -> np.ndarray:
    mask = np.zeros((SIZE, SIZE), dtype=bool)
    mask[BOX] = True
    return mask


@pytest.fixture(scope="module")
def vit() -> FaceAgeModel:
    torch.manual_seed(0)
    return FaceAgeModel(build_encoder(ViTSpec(SIZE, 8, 32, 2, 2)), init_age=50.0, age_scale=15.0).eval()


def test_shapes_of_every_map(vit: FaceAgeModel) -> None:
    x = images(3)
    maps, seconds, delta = attribution.attribute(vit, x, x.mean(0, keepdim=True), load("smoke").saliency)
    assert set(maps) == set(attribution.METHODS) == set(seconds)
    assert all(tuple(m.shape) == (3, SIZE, SIZE) and torch.isfinite(m).all() for m in maps.values())
    assert delta.shape == (3,)


def test_occlusion_finds_the_region_the_model_reads() -> None:
    model, x = BoxModel(), images()
    occ = attribution.occlusion(model, x, 0.0, window=4, stride=2).abs().numpy()
    inside = occ[:, box_mask()].sum() / occ.sum()
    assert inside > 0.75, inside
    grown = np.zeros((SIZE, SIZE), dtype=bool)
    grown[3:21, 7:25] = True  # the box and every pixel a covering window can reach
    assert occ[:, ~grown].sum() == 0


def test_occlusion_matches_a_hand_computed_square() -> None:
    """Non-overlapping windows: each pixel's value is f(x) − f(x with its square set to the baseline)."""
    model, x = BoxModel(), images(2)
    base = x.mean(0, keepdim=True)
    occ = attribution.occlusion(model, x, base, window=8, stride=8, batch_size=4)
    covered = x.clone()
    covered[:, :, 8:16, 8:16] = base[:, :, 8:16, 8:16]
    expected = model(x) - model(covered)
    assert torch.allclose(occ[:, 10, 10], expected.detach(), atol=1e-4)


def test_integrated_gradients_is_complete(vit: FaceAgeModel) -> None:
    x = images(4)
    base = x.mean(0, keepdim=True)
    attr, delta = attribution.integrated_gradients(vit, x, base, steps=32)
    gap = attribution.forward(vit, x) - attribution.forward(vit, base.expand_as(x))
    error = (attr.sum((1, 2)) - gap).abs()
    assert (error <= 0.02 * gap.abs() + 1e-3).all(), (error, gap)
    assert torch.allclose(error, delta.abs(), atol=1e-4)  # captum's convergence delta is the same error
    linear, x = BoxModel(), images(3)
    attr, _ = attribution.integrated_gradients(linear, x, 0.0, steps=8)
    assert torch.allclose(attr, linear.true_map(x, torch.zeros_like(x)), atol=1e-4)


def test_deletion_auc_of_the_true_map_beats_a_random_map() -> None:
    model, x = BoxModel(), images(8)
    base = x.mean(0, keepdim=True)
    faith = faithfulness.deletion_insertion(model, x, base, {"true": model.true_map(x, base)}, steps=16)
    auc = faith.auc(n_boot=50)
    assert auc.loc["true", "deletion AUC"] < auc.loc[attribution.CONTROL, "deletion AUC"] - 0.2
    assert auc.loc["true", "insertion AUC"] > auc.loc[attribution.CONTROL, "insertion AUC"] + 0.2
    curves = faith.curves()
    ends = curves.groupby(["method", "curve"])["output"].agg(["first", "last"])
    assert np.allclose(ends.xs("deletion", level="curve")["first"], 1.0)
    assert np.allclose(ends.xs("deletion", level="curve")["last"], 0.0, atol=1e-5)
    assert np.allclose(ends.xs("insertion", level="curve")["first"], 0.0, atol=1e-5)


def test_grad_cam_is_signed_and_on_the_image_grid(vit: FaceAgeModel) -> None:
    cam = attribution.grad_cam(vit, images(2), batch_size=1)
    assert cam.shape == (2, SIZE, SIZE) and (cam > 0).any() and (cam < 0).any()
    with pytest.raises(ValueError, match="VisionTransformer"):
        attribution.grad_cam(BoxModel(), images(2))


def test_regional_shares_sum_to_one_and_follow_the_map() -> None:
    regions = np.zeros((2, SIZE, SIZE), dtype=np.uint8)
    regions[:, BOX[0], BOX[1]] = REGIONS.index("forehead")
    regions[:, 24:, :] = REGIONS.index("chin")
    maps = np.zeros((2, SIZE, SIZE))
    maps[:, BOX[0], BOX[1]] = -1.0  # the sign does not matter: shares are of |saliency|
    maps[1, 30, 0] = 1.0
    shares, areas = regional(maps, regions)
    assert shares.shape == areas.shape == (2, len(REGIONS))
    assert np.allclose(shares.sum(1), 1.0) and np.allclose(areas.sum(1), 1.0)
    assert shares[0, REGIONS.index("forehead")] == 1.0
    assert shares[1, REGIONS.index("chin")] == pytest.approx(1 / 145)
    assert areas[0, REGIONS.index("forehead")] == pytest.approx(144 / SIZE**2)
    table = profile(shares, areas)
    assert table.loc["forehead", "share / area"] > 1 > table.loc["background", "share / area"]
    with pytest.raises(ValueError, match=r"\[N, H, W\]"):
        regional(maps[:, :-1], regions)
    with pytest.raises(ValueError, match="region labels"):
        regional(maps, regions + 20)


def test_planted_cue_counts_follow_world() -> None:
    planted = truth.planted_cues()
    assert planted.loc["hair", "age cues"] == 1 and planted.loc["hair", "frailty cues"] == 0
    assert planted.loc["nose", "age cues"] == 0 and planted.loc["nose", "frailty cues"] == 1
    assert planted.loc["background"].sum() == 0


def test_distinctness_of_equal_and_of_different_profiles() -> None:
    rng = np.random.default_rng(0)
    areas = np.tile(np.full(len(REGIONS), 1 / len(REGIONS)), (30, 1))
    a = rng.dirichlet(np.arange(1, len(REGIONS) + 1), size=30)
    same = distinctness(a, a, areas, n_boot=100, n_perm=200)
    assert same["spearman"] == pytest.approx(1.0) and same["distance"] == 0 and same["permutation p"] == 1.0
    b = rng.dirichlet(np.arange(len(REGIONS), 0, -1), size=30)
    other = distinctness(a, b, areas, n_boot=100, n_perm=200)
    assert other["spearman"] < -0.8 and other["spearman CI high"] < 0 and other["permutation p"] < 0.01
    with pytest.raises(ValueError, match="one shape"):
        distinctness(a, b[:, :3], areas)


def test_errors_on_bad_input(vit: FaceAgeModel) -> None:
    x = images(2)
    with pytest.raises(ValueError, match=r"\[N, 3, H, W\]"):
        attribution.occlusion(vit, x[0], 0.0, 8, 8)
    with pytest.raises(ValueError, match="model takes"):
        attribution.integrated_gradients(vit, torch.rand(2, 3, 16, 16), 0.0, steps=4)
    with pytest.raises(ValueError, match="window"):
        attribution.occlusion(vit, x, 0.0, window=64, stride=8)
    with pytest.raises(ValueError, match="does not broadcast"):
        attribution.occlusion(vit, x, torch.zeros(3, 3, SIZE, SIZE), 8, 8)
    with pytest.raises(ValueError, match="unknown saliency methods"):
        attribution.attribute(vit, x, 0.0, load("smoke").saliency, methods=("lime",))
    with pytest.raises(ValueError, match="expected"):
        faithfulness.deletion_insertion(vit, x, 0.0, {"bad": torch.zeros(2, 8, 8)})


def test_individual_clinical_maps_are_never_drawn() -> None:
    blank = np.zeros((1, 8, 8))
    clinical = sal.Explained(
        model="facesurvival", cohort="clinical-a", image_ids=["x"], outputs=np.zeros(1), baseline_output=0.0,
        maps={m: blank for m in attribution.METHODS}, regions=blank.astype(np.uint8), mean_image=np.zeros((8, 8, 3)),
        seconds={}, ig_delta=np.zeros(1), images=np.zeros((1, 8, 8, 3)),
    )  # fmt: skip
    with pytest.raises(ValueError, match="non-clinical"):
        figures.example_figure(clinical)
    with pytest.raises(ValueError, match="at least 16 photos"):  # an average of one patient is that patient
        figures.average_figure([clinical])
    n = sal.MIN_AVERAGED
    many = replace(
        clinical, image_ids=[f"p{i}" for i in range(n)], maps={m: np.zeros((n, 8, 8)) for m in attribution.METHODS}
    )
    assert figures.average_figure([many]) is not None


def test_benchmark_rows() -> None:
    rows = bench.bench_saliency(load("smoke", {"saliency.photos": 2}), min_seconds=0.0)
    assert {r["setting"].split(",")[0] for r in rows} == {*attribution.METHODS, "deletion and insertion"}
    assert all(r["benchmark"] == "saliency" and r["unit"] == "img/s" and r["value"] > 0 for r in rows)
