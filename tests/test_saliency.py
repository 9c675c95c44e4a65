"""Saliency maps on toy models whose answer is known, and on a tiny random ViT: shapes, the known region,
completeness, faithfulness, regional shares, distinctness, the privacy rule, bad input."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from torch import nn

from fahr import bench
from fahr.analysis import saliency as sal
from fahr.core.config import load
from fahr.data.synth import truth
from fahr.data.synth.render import REGIONS
from fahr.explain import attribution, faithfulness
from fahr.explain.regions import distinctness, profile, regional
from fahr.models import FaceAgeModel, ViTSpec, build_encoder
from fahr.report.figures import faces
from fahr.report.figures import saliency as figures
from fahr.stats import ALPHA

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
    with pytest.raises(faces.PrivacyRefused, match="1 patient"):  # an average of one patient is that patient
        figures.average_figure([clinical])
    n = faces.min_people()
    photos_of_few = replace(  # many photos, too few people: the count that matters is of patients
        clinical,
        image_ids=[f"p{i}" for i in range(n)],
        maps={m: np.zeros((n, 8, 8)) for m in attribution.METHODS},
        people=n - 1,
    )
    with pytest.raises(faces.PrivacyRefused, match=f"{n - 1} patient"):
        figures.average_figure([photos_of_few])
    assert figures.average_figure([replace(photos_of_few, people=n)]) is not None


def test_benchmark_rows() -> None:
    rows = bench.bench_saliency(load("smoke", {"saliency.photos": 2}), min_seconds=0.0)
    assert {r["setting"].split(",")[0] for r in rows} == {*attribution.METHODS, "deletion and insertion"}
    assert all(r["benchmark"] == "saliency" and r["unit"] == "img/s" and r["value"] > 0 for r in rows)


# ------------------------------------------------------------------------------- the chapter's written sentences


def run(model: str, cohort: str, n: int = 2, **fields) -> sal.Explained:
    """A hand-made ``Explained`` of ``n`` 4×4 photos: every method's map 1 on the forehead, 0 elsewhere."""
    regions = np.full((n, 4, 4), REGIONS.index("background"), dtype=np.uint8)
    regions[:, :2] = REGIONS.index("forehead")
    regions[:, 2:, :2] = REGIONS.index("periorbital")
    maps = {m: (regions == REGIONS.index("forehead")).astype(float) for m in attribution.METHODS}
    base = dict(model=model, cohort=cohort, image_ids=[f"{cohort}-{i}" for i in range(n)], outputs=np.zeros(n),
                baseline_output=0.0, maps=maps, regions=regions, mean_image=np.zeros((4, 4, 3)), seconds={},
                ig_delta=np.zeros(n))  # fmt: skip
    return sal.Explained(**{**base, **fields})


def test_ig_completeness_error_is_the_worst_share_of_the_mean_output_gap() -> None:
    gapped = run("faceage", "age", outputs=np.array([1.0, 3.0]), ig_delta=np.array([0.1, -0.3]))  # 0.3 / mean gap 2
    complete = run("facesurvival", "clinical-a", outputs=np.array([5.0, 5.0]), baseline_output=5.0)  # 0 / 0: 0
    assert sal.ig_completeness_error([gapped, complete]) == pytest.approx(0.15)
    assert sal.ig_completeness_error([complete]) == 0.0


def test_describe_names_the_photos_and_the_settings() -> None:
    cfg = load("smoke")
    text = sal.describe(cfg, run("faceage", "age", n=3), run("facesurvival", "clinical-a", n=5))
    size, s = cfg.synth.image_size, cfg.saliency
    assert text == (
        f"**3 test photos** of the age datasets (FaceAge) and **5** of clinical cohort A (FaceSurvival, and FaceAge "
        f"again on the same photos), {size}×{size} pixels, drawn with seed {cfg.seed}. Occlusion square "
        f"{s.occlusion_window} px, stride {s.occlusion_stride} px; integrated gradients with {s.ig_steps} steps."
    )


def test_faithfulness_reading_sets_the_trusted_method_beside_a_random_order() -> None:
    age, survival = run("faceage", "age"), run("facesurvival", "clinical-a")
    rows = [(age.label, "occlusion", 0.21, 0.74), (age.label, attribution.CONTROL, 0.5, 0.48),
            (survival.label, "occlusion", 0.3, 0.66), (survival.label, attribution.CONTROL, 0.52, 0.51)]  # fmt: skip
    faith = pd.DataFrame(rows, columns=["run", "method", "deletion AUC", "insertion AUC"]).set_index(["run", "method"])
    assert sal.faithfulness_reading(faith, "occlusion", age, survival, ig_error=0.0123) == (
        "Averaged over both models, **occlusion** orders pixels most faithfully (highest insertion minus deletion "
        "AUC): for FaceAge deletion 0.21 and insertion 0.74 against 0.50 and 0.48 for a random order; for "
        "FaceSurvival deletion 0.30 and insertion 0.66 against 0.52 and 0.51 for a random order. Integrated "
        "gradients are complete to within 1.2 % of the mean output gap. The regional analysis below uses "
        "**occlusion**; the tables also give the others."
    )
    # without clinical cohort A (real data): FaceAge alone, and every other sentence of the chapter says why
    alone = sal.faithfulness_reading(faith, "occlusion", age, None, ig_error=0.0123)
    assert alone.startswith("For FaceAge, **occlusion** orders pixels most faithfully") and "FaceSurvival" not in alone
    regions = pd.DataFrame({"run": [age.label] * 3, "region": ["eyes", "mouth", "chin"],
                            "share / area": [2.0, 1.5, 0.5]})  # fmt: skip
    reading = sal.reading(regions, None, None, "occlusion", age, None)
    assert "FaceAge looks most at the eyes and mouth. Whether FaceSurvival looks elsewhere needs clinical" in reading
    assert sal.headline_results(None, None, "occlusion") == []
    assert "none of clinical cohort A, which is not provided" in sal.describe(load("smoke"), age, None)


def test_regions_with_planted_puts_the_runs_side_by_side_beside_the_cue_counts() -> None:
    regions = pd.DataFrame({"region": ["hair", "nose", "hair", "nose"], "run": ["a", "a", "b", "b"],
                            "share": [0.6, 0.4, 0.1, 0.9], "share / area": [1.2, 2.0, 0.2, 4.5]})  # fmt: skip
    wide = sal.regions_with_planted(regions)
    assert list(wide.index) == ["hair", "nose"]
    assert wide.loc["nose", ("share", "b")] == 0.9 and wide.loc["hair", ("share / area", "a")] == 1.2
    assert wide.loc["hair", ("planted", "age cues")] == 1 and wide.loc["nose", ("planted", "frailty cues")] == 1
    assert list(wide.columns.get_level_values(0).unique()) == ["share", "share / area", "planted"]


def test_alignment_table_stacks_the_cue_alignment_of_every_run() -> None:
    runs = [run("faceage", "age"), run("facesurvival", "clinical-a", n=3)]
    table = sal.alignment_table(runs, "occlusion", n_boot=20, seed=1)
    assert table.index.names == ["run", "planted signal"]
    for e in runs:
        pd.testing.assert_frame_equal(table.loc[e.label], sal.cue_alignment(*e.shares("occlusion"), n_boot=20, seed=1))
    # all saliency on the forehead, where ageing cues are painted: the share in the age-cue regions is 1
    assert table.loc[(runs[0].label, "age"), "saliency share in cue regions"] == pytest.approx(1.0)


def distinct_table(p: float) -> pd.DataFrame:
    """A hand-made ``distinctness_table`` with the permutation p of occlusion set to ``p``."""
    rows = {"occlusion": {"photos": 40, "spearman": 0.35, "spearman CI low": 0.1, "spearman CI high": 0.6,
                          "distance": 0.123, "permutation p": p},
            "grad-cam": {"photos": 40, "spearman": -0.2, "spearman CI low": -0.5, "spearman CI high": 0.1,
                         "distance": 0.3, "permutation p": 0.5},
            "integrated gradients": {"photos": 40, "spearman": 0.81, "spearman CI low": 0.6, "spearman CI high": 0.9,
                                     "distance": 0.05, "permutation p": 0.9}}  # fmt: skip
    return pd.DataFrame(rows).T.astype(object).rename_axis("method")


def test_distinctness_reading_says_different_only_below_alpha() -> None:
    start = (
        "With occlusion maps on 40 clinical photos, the regional profiles of FaceAge and FaceSurvival correlate with "
        "Spearman **0.35** (95 % CI 0.10 to 0.60); their share profiles differ by 0.123 (permutation p = {p}); over "
        "the three methods the correlation ranges from -0.20 to 0.81: "
    )
    differ = sal.distinctness_reading(distinct_table(0.004), "occlusion")
    assert differ == start.format(p="0.004") + "the two models distribute their saliency over the regions differently."
    same = sal.distinctness_reading(distinct_table(0.2), "occlusion")
    assert same == start.format(p="0.200") + "no evidence that the two models use different regions."
    at_alpha = sal.distinctness_reading(distinct_table(ALPHA), "occlusion")
    assert at_alpha.endswith("no evidence that the two models use different regions.")  # p = α does not reject


def test_top_regions_and_the_reading_of_the_chapter() -> None:
    age, survival = run("faceage", "age"), run("facesurvival", "clinical-a")
    regions = pd.DataFrame({"region": ["eyes", "forehead", "cheeks"] * 2, "run": [age.label] * 3 + [survival.label] * 3,
                            "share / area": [2.0, 1.5, 0.5, 0.4, 0.9, 3.0]})  # fmt: skip
    assert sal.top_regions(regions, age) == ["eyes", "forehead"]
    assert sal.top_regions(regions, survival, n=1) == ["cheeks"]
    alignment = pd.DataFrame(
        {"saliency share in cue regions": [0.62, 0.3, 0.4, 0.55], "area share of cue regions": [0.5, 0.2, 0.3, 0.45]},
        index=pd.MultiIndex.from_product([[age.label, survival.label], ["age", "frailty"]],
                                         names=["run", "planted signal"]),
    )  # fmt: skip
    differ = sal.reading(regions, alignment, distinct_table(0.004), "occlusion", age, survival)
    assert differ.startswith(
        "The occlusion maps were the most faithful of the three, so they carry the reading. Relative to their size, "
        "FaceAge looks most at the eyes and forehead, FaceSurvival at the cheeks and forehead. FaceAge puts 62 % of "
        "its saliency in the regions where ageing cues were painted, which cover 50 % of the image; FaceSurvival "
        "puts 55 % in the frailty-cue regions (45 % of the image). On the same photos the two profiles correlate "
        "with Spearman 0.35 and differ beyond chance (p = 0.004): the models weigh the regions differently, as the "
        "paper reports. Saliency is a description of a model, not of biology"
    )
    same = sal.reading(regions, alignment, distinct_table(0.3), "occlusion", age, survival)
    assert "Spearman 0.35 and a permutation test finds no difference: on this build the two models do not" in same


def test_template_regions_put_the_eyes_nose_and_mouth_where_alignment_puts_them() -> None:
    from fahr.data.align import template
    from fahr.explain.regions import template_regions

    for size in (64, 112):
        labels = template_regions(size)
        assert labels.shape == (size, size) and set(np.unique(labels)) == set(range(len(REGIONS)))
        (lx, ly), (rx, ry), (nx, ny), (mlx, mly), (mrx, mry) = np.round(template(size)).astype(int)

        def at(x: int, y: int, labels: np.ndarray = labels) -> str:
            return REGIONS[labels[y, x]]

        assert at(lx, ly) == at(rx, ry) == "periorbital" and at(nx, ny - 2) == "nose"
        assert at((mlx + mrx) // 2, (mly + mry) // 2) == "mouth"
        assert at(size // 2, 1) == "hair" and at(1, size - 2) == "background"
        assert at(size // 2, int(ly - 0.6 * (rx - lx))) == "forehead"
    shares, areas = regional(np.ones((2, 64, 64)), np.stack([template_regions(64)] * 2))
    np.testing.assert_allclose(shares, areas)  # a flat map puts each region's area share on it


def rendered_faces(n: int = 16, size: int = 112) -> tuple[np.ndarray, np.ndarray]:
    """FAHR-Synth faces of the age datasets' population, photographed straight on, and the renderer's own region
    maps: the crops ``[N, size, size, 3]`` and the labels ``[N, size, size]``."""
    from fahr.data.synth import cohorts, world
    from fahr.data.synth.render import render

    rng = np.random.default_rng(3)
    people = cohorts.sample_people(rng, world.PRETRAIN[0], n)
    style = replace(world.PRETRAIN[1], yaw_sd=0, pitch_sd=0, roll_sd=0, grayscale_rate=0.0, makeup_rate=0.0)
    rows = pd.concat([people, cohorts.sample_captures(rng, style, people)], axis=1).to_dict("records")
    out = [render(*cohorts.face_of(cohorts.plain_row(r)), size=size, with_regions=True) for r in rows]
    return np.stack([o.image for o in out]), np.stack([o.regions for o in out])


def test_landmark_regions_follow_each_face_better_than_the_template() -> None:
    """dlib's 68 points on aligned crops (``crop_landmarks``) lay the regions out on each face: on rendered faces
    they agree with the renderer's own region maps more often than the fixed template layout does, and put the
    lips and the eyes where the renderer painted them."""
    from fahr.data.align import crop_landmarks
    from fahr.explain.regions import landmark_regions, template_regions

    crops, rendered = rendered_faces()
    points = crop_landmarks(crops)
    assert points.shape == (len(crops), 68, 2) and np.isfinite(points).all()
    labels = landmark_regions(points, crops.shape[1])
    assert labels.shape == rendered.shape and labels.min() >= 0 and labels.max() < len(REGIONS)
    template = np.broadcast_to(template_regions(crops.shape[1]), rendered.shape)
    assert (labels == rendered).mean() > (template == rendered).mean() + 0.03

    def iou(a: np.ndarray, name: str) -> float:
        mine, truth_ = a == REGIONS.index(name), rendered == REGIONS.index(name)
        return (mine & truth_).sum() / (mine | truth_).sum()

    for name in ("mouth", "periorbital", "nose", "forehead"):
        assert iou(labels, name) >= 0.5, name
    assert iou(labels, "mouth") > iou(template, "mouth") + 0.3  # the template misses the lips of most faces
    # half-size crops: the same points, halved, and the same layout
    half = np.stack([np.asarray(Image.fromarray(c).resize((56, 56), Image.BICUBIC)) for c in crops[:4]])
    np.testing.assert_allclose(crop_landmarks(half), points[:4] / 2, atol=3.0)
    with pytest.raises(ValueError, match="68-point landmarks"):
        landmark_regions(points[:, :5], 112)


def test_crops_without_a_found_face_are_counted_and_said() -> None:
    """``located_landmarks`` tells the faces HOG found from the crops whose points were placed in the alignment box
    (a flat grey crop always), and the chapters' sentence counts them."""
    from fahr.data.align import crop_landmarks, landmarks_sentence, located_landmarks

    crops, _ = rendered_faces()
    grey = np.full_like(crops[:1], 128)
    points, found = located_landmarks(np.concatenate([crops, grey]))
    assert not found[-1] and found[:-1].mean() >= 0.5 and np.isfinite(points).all()
    np.testing.assert_array_equal(points[:-1], crop_landmarks(crops))
    n, hits = len(found), int(found.sum())
    assert landmarks_sentence(found, "photos").startswith(
        f"dlib's HOG detector found the face on {hits} of {n} photos; on the other {n - hits} the 68 points"
    )
    assert landmarks_sentence(np.ones(3, bool), "photos") == "dlib's HOG detector found the face on 3 of 3 photos."
