"""Robustness metrics against hand computations and a published worked example; image perturbations' invariants."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from fahr.analysis import robustness as rb
from fahr.core.config import load as load_config
from fahr.data import perturb
from fahr.data.synth import truth
from fahr.report.figures import robustness as figures
from fahr.stats import agreement

# Shrout & Fleiss (1979), Table 2: six targets rated by four judges; Table 4 gives the ICCs (two decimals)
SHROUT_FLEISS = np.array([[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]])
SHROUT_FLEISS_ICC = {"1,1": 0.17, "2,1": 0.29, "3,1": 0.71, "1,k": 0.44, "2,k": 0.62, "3,k": 0.91}


def test_icc_reproduces_shrout_and_fleiss() -> None:
    ms = agreement.mean_squares(SHROUT_FLEISS)  # their Table 3: BMS 11.24, WMS 6.26, JMS 32.49, EMS 1.02
    assert ms["MSR"] == pytest.approx(11.24, abs=0.005)
    assert ms["MSW"] == pytest.approx(6.26, abs=0.005)
    assert ms["MSC"] == pytest.approx(32.49, abs=0.005)
    assert ms["MSE"] == pytest.approx(1.02, abs=0.005)
    for kind, published in SHROUT_FLEISS_ICC.items():
        assert round(agreement.icc(SHROUT_FLEISS, kind), 2) == published, kind


def test_icc_agreement_penalises_a_shift_and_consistency_does_not() -> None:
    ref = np.array([20.0, 35.0, 50.0, 65.0, 80.0])
    both = np.column_stack([ref, ref + 10.0])
    assert agreement.icc(both, "3,1") == pytest.approx(1.0)
    # ICC(2,1) by hand: MSR = 2·var(ref) = 1125, MSE = 0, MSC = 5·(2·5²) = 250 → 1125 / (1125 + 250·2/5)
    assert agreement.icc(both, "2,1") == pytest.approx(1125 / (1125 + 100))
    with pytest.raises(ValueError, match="unknown ICC kind"):
        agreement.icc(both, "4,1")
    with pytest.raises(ValueError, match="at least 2"):
        agreement.icc(ref[:, None])


def test_bland_altman_by_hand() -> None:
    ref = np.array([10.0, 20.0, 30.0, 40.0])
    per = np.array([12.0, 19.0, 33.0, 42.0])  # differences 2, -1, 3, 2: mean 1.5, sd sqrt(3)
    ba = agreement.bland_altman(ref, per)
    assert ba["bias"] == pytest.approx(1.5)
    assert ba["sd"] == pytest.approx(np.sqrt(3.0))
    assert ba["loa_low"] == pytest.approx(1.5 - 1.96 * np.sqrt(3.0))
    assert ba["loa_high"] == pytest.approx(1.5 + 1.96 * np.sqrt(3.0))
    with pytest.raises(ValueError, match="one length"):
        agreement.bland_altman(ref, per[:3])


def test_shift_in_sd_and_spearman_by_hand() -> None:
    ref, per = np.array([1.0, 2.0, 3.0, 4.0, 5.0]), np.array([2.0, 1.0, 4.0, 3.0, 5.0])
    assert agreement.shift_in_sd(ref, per + 1.0, scale=2.0) == pytest.approx(0.5)
    # Σd² = 4 over 5 ranks: ρ = 1 − 6·4 / (5·24) = 0.8
    assert agreement.spearman_stability(ref, per) == pytest.approx(0.8)
    with pytest.raises(ValueError, match="positive"):
        agreement.shift_in_sd(ref, per, scale=0.0)


def pairs_frame(shift: float = 2.0, n: int = 8) -> pd.DataFrame:
    """n people: a reference and yaw at ±15/30 (shift·|strength|/15 years) and makeup 1 (−shift years)."""
    rng = np.random.default_rng(0)
    ages = rng.uniform(20, 80, n)
    rows = []
    for i, age in enumerate(ages):
        pid = f"p{i}"
        rows.append({"pair_id": pid, "condition": "reference", "strength": 0.0, "value": age, "age": age})
        for s in (-30.0, -15.0, 15.0, 30.0):
            rows.append({"pair_id": pid, "condition": "yaw", "strength": s, "value": age + shift * abs(s) / 15,
                         "age": age})  # fmt: skip
        rows.append({"pair_id": pid, "condition": "makeup", "strength": 1.0, "value": age - shift, "age": age})
    return pd.DataFrame(rows)


def test_paired_summary_dose_response_and_trend() -> None:
    frame = pairs_frame()
    pairs = rb.paired(frame, "value", keep=["age"])
    assert len(pairs) == 8 * 5 and (pairs["reference"] == pairs["age"]).all()
    table = rb.summary(pairs).set_index(["condition", "strength"])
    assert table.loc[("yaw", 30.0), "mean shift"] == pytest.approx(4.0)
    assert table.loc[("makeup", 1.0), "mean shift"] == pytest.approx(-2.0)
    assert table.loc[("makeup", 1.0), "LoA low"] == pytest.approx(-2.0)
    assert table.loc[("makeup", 1.0), "ICC(3,1)"] == pytest.approx(1.0)
    assert table.loc[("makeup", 1.0), "ICC(2,1)"] < 1.0
    assert table.loc[("makeup", 1.0), "Spearman"] == pytest.approx(1.0)
    in_sd = rb.summary(pairs, scale=4.0).set_index(["condition", "strength"])
    assert in_sd.loc[("yaw", 30.0), "mean shift"] == pytest.approx(1.0)
    dose = rb.dose_response(pairs, truth="age")
    yaw = dose[dose["condition"] == "yaw"].set_index("strength")
    assert list(yaw.index) == [-30.0, -15.0, 0.0, 15.0, 30.0]
    assert yaw.loc[0.0, "mean shift"] == 0.0 and yaw.loc[0.0, "MAE vs truth"] == 0.0
    assert yaw.loc[-30.0, "MAE vs truth"] == pytest.approx(4.0)
    slope = rb.trend(pairs).set_index("condition").loc["yaw", "slope per unit"]
    assert slope == pytest.approx(2.0 / 15)


def test_paired_rejects_unknown_conditions_and_mismatched_pairs() -> None:
    frame = pairs_frame()
    with pytest.raises(ValueError, match="unknown conditions"):
        rb.paired(frame.replace({"condition": {"makeup": "sunburn"}}), "value")
    with pytest.raises(ValueError, match="without a reference"):
        rb.paired(frame[~((frame["pair_id"] == "p3") & (frame["condition"] == "reference"))], "value")
    with pytest.raises(ValueError, match="more than one reference"):
        rb.paired(pd.concat([frame, frame[frame["condition"] == "reference"].head(1)]), "value")
    with pytest.raises(ValueError, match="repeated"):
        rb.paired(pd.concat([frame, frame[frame["condition"] == "yaw"].head(1)]), "value")
    with pytest.raises(ValueError, match="lacks the columns"):
        rb.paired(frame.drop(columns="strength"), "value")


def truth_row(age: float, **modifiers: float) -> dict:
    from fahr.data.synth import cohorts
    from fahr.data.synth.face import FaceParams

    row = FaceParams(age=age, sex=1, baldness=0.5).to_dict()
    return {**row, **{name: 0.0 for name in cohorts.MODIFIER_FIELDS}, **modifiers}


def test_planted_cue_change_of_cosmetic_surgery() -> None:
    assert truth.planted_cue_change(truth_row(70.0)) == {"cue change": 0.0, "years equivalent": 0.0}
    lift = truth.planted_cue_change(truth_row(70.0, facelift=1.0))
    half = truth.planted_cue_change(truth_row(70.0, facelift=0.5))
    assert lift["cue change"] < half["cue change"] < 0.0
    assert lift["years equivalent"] < half["years equivalent"] < 0.0
    assert truth.planted_cue_change(truth_row(70.0, blepharoplasty=1.0))["years equivalent"] < 0.0
    # below 40 there are no eyelid droop or eye bags to remove
    assert truth.planted_cue_change(truth_row(30.0, blepharoplasty=1.0)) == {"cue change": 0.0, "years equivalent": 0.0}


# ------------------------------------------------------------------------------------------ image perturbations


def faces(n: int = 3, size: int = 48) -> torch.Tensor:
    """Smooth random images with a bright disc, so that warps and gradients change something."""
    g = torch.Generator().manual_seed(0)
    t = torch.linspace(-1, 1, size)
    yy, xx = torch.meshgrid(t, t, indexing="ij")
    disc = ((xx**2 + (yy / 1.3) ** 2) < 0.5).float()
    base = 0.3 + 0.4 * torch.rand(n, 3, 1, 1, generator=g)
    return (base + 0.3 * disc + 0.1 * xx * torch.rand(n, 3, 1, 1, generator=g)).clamp(0, 1)


def landmarks68(n: int, size: int = 48) -> np.ndarray:
    """A plausible 68-point layout (only the brows, eyes and lips are used) for ``n`` identical faces."""
    pts = np.zeros((68, 2))
    s = size / 48
    for first_brow, first_eye, cx in ((17, 36, 16), (22, 42, 32)):
        pts[first_brow : first_brow + 5] = [(cx - 6 + 3 * i, 13 - (2 if i == 2 else 1 if i in (1, 3) else 0))
                                            for i in range(5)]  # fmt: skip
        angles = np.linspace(np.pi, -np.pi, 7)[:6]  # left corner, upper lid, right corner, lower lid (iBUG)
        pts[first_eye : first_eye + 6] = np.column_stack([cx + 5 * np.cos(angles), 19 - 2 * np.sin(angles)])
    outer = np.linspace(np.pi, -np.pi, 13)[:12]
    pts[48:60] = np.column_stack([24 + 9 * np.cos(outer), 35 - 4 * np.sin(outer)])
    inner = np.linspace(np.pi, -np.pi, 9)[:8]
    pts[60:68] = np.column_stack([24 + 6 * np.cos(inner), 35 - 1 * np.sin(inner)])
    return np.repeat(pts[None] * s, n, axis=0)


@pytest.mark.parametrize("condition", ["makeup", *perturb.WARPS])
def test_strength_zero_returns_the_identical_image(condition: str) -> None:
    x = faces()
    out = perturb.perturb_images(x, condition, 0.0, landmarks=landmarks68(len(x)))
    assert torch.equal(out, x) and out is not x


@pytest.mark.parametrize(
    ("condition", "strengths"),
    [("yaw", (5.0, 15.0, 30.0)), ("pitch", (5.0, 15.0)), ("roll", (5.0, 15.0, 30.0)),
     ("light_direction", (15.0, 30.0, 60.0)), ("light_temperature", (0.25, 0.5, 1.0)), ("makeup", (0.25, 0.5, 1.0))],
)  # fmt: skip
def test_stronger_perturbations_change_the_image_more(condition: str, strengths: tuple[float, ...]) -> None:
    x = faces()
    changes = [
        (perturb.perturb_images(x, condition, s, landmarks68(len(x))) - x).abs().mean().item() for s in strengths
    ]
    assert changes[0] > 0 and all(a < b for a, b in zip(changes, changes[1:], strict=False)), changes
    if condition != "makeup":  # the opposite direction changes the image too
        assert (perturb.perturb_images(x, condition, -strengths[-1]) - x).abs().mean().item() > 0


def square() -> torch.Tensor:
    x = torch.zeros(1, 3, 48, 48)
    x[..., 8:40, 8:40] = 1.0  # a white square
    return x


def test_warp_directions_follow_the_synth_capture() -> None:
    turned = perturb.yaw(square(), 30.0)[0, 0] > 0.5  # positive yaw: the image's right half recedes
    assert turned[:, :24].sum(0).max() > turned[:, 24:].sum(0).max()
    tilted = perturb.pitch(square(), 15.0)[0, 0] > 0.5  # positive pitch: the upper half recedes
    assert tilted[:24].sum(1).max() < tilted[24:].sum(1).max()
    dot = torch.zeros(1, 3, 41, 41)
    dot[..., 2, 20] = 1.0
    _, col = divmod(int(perturb.roll(dot, 30.0)[0, 0].argmax()), 41)
    assert col > 20  # positive roll: clockwise, the top toward the right
    lit = perturb.light_direction(torch.full((1, 3, 8, 8), 0.5), 60.0)[0, 0]
    assert lit[:, -1].mean() > lit[:, 0].mean()


def test_makeup_touches_only_the_landmark_regions() -> None:
    x, points = faces(2), landmarks68(2)
    masks = perturb.makeup_masks(points, (48, 48))
    inside = torch.from_numpy(masks["lips"] | masks["eyelids"])[:, None].expand_as(x)
    changed = perturb.makeup(x, points, 1.0) != x
    assert changed.any() and not (changed & ~inside).any()
    assert masks["lips"].sum() > 0 and masks["eyelids"].sum() > 0
    assert not (masks["lips"] & masks["eyelids"]).any()


def test_perturbations_reject_bad_input() -> None:
    x = faces()
    with pytest.raises(ValueError, match="unknown condition"):
        perturb.perturb_images(x, "sunburn", 1.0)
    with pytest.raises(ValueError, match=r"\[N, 3, H, W\]"):
        perturb.yaw(x[0], 10.0)
    with pytest.raises(ValueError, match=r"\[N, 3, H, W\]"):
        perturb.roll(x[:, :1], 10.0)
    with pytest.raises(ValueError, match="68-point"):
        perturb.makeup(x, np.zeros((3, 5, 2)), 0.5)
    with pytest.raises(ValueError, match="needs 68-point"):
        perturb.perturb_images(x, "makeup", 0.5)
    with pytest.raises(ValueError, match="landmark sets"):
        perturb.makeup(x, landmarks68(2), 0.5)
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        perturb.makeup(x, landmarks68(3), 1.5)


def test_extreme_finds_the_largest_absolute_shift_and_the_lowest_agreement() -> None:
    summary = pd.DataFrame({"condition": ["yaw", "roll", "pitch"], "strength": [30.0, -15.0, 15.0],
                            "mean shift": [0.4, -1.2, 0.9], "ICC(2,1)": [0.95, 0.99, 0.90]})  # fmt: skip
    assert rb.extreme(summary, "mean shift")["condition"] == "roll"  # |−1.2| beats +0.9
    assert rb.extreme(summary, "ICC(2,1)", largest=False)["condition"] == "pitch"


def test_surgery_reading_says_how_much_of_the_planted_change_the_model_read() -> None:
    assert rb.surgery_reading(-3.0, -4.0) == "FaceAge follows them"
    assert rb.surgery_reading(-1.0, -4.0) == "FaceAge follows them in part"
    assert rb.surgery_reading(-0.1, -4.0).startswith("FaceAge hardly follows them")
    assert rb.surgery_reading(+2.0, -4.0).startswith("FaceAge hardly follows them")  # the wrong way
    assert rb.surgery_reading(0.0, 0.0).startswith("FaceAge hardly follows them")  # nothing planted


# ------------------------------------------------------------------------------- the chapter's written sentences


def test_level_label_signs_and_units() -> None:
    assert rb.level_label("yaw", 30.0) == "yaw +30°"
    assert rb.level_label("light_direction", -60.0) == "light_direction −60°"
    assert rb.level_label("light_temperature", 1.0) == "light_temperature +1"
    assert rb.level_label("makeup", 0.5) == "makeup 0.5"  # a strength, not a signed angle


def two_people() -> pd.DataFrame:
    """Two people, a reference and one yaw photo each; log-risks 1 and 3 on the reference photos (SD √2)."""
    return pd.DataFrame({"pair_id": ["a", "a", "b", "b"], "condition": ["reference", "yaw", "reference", "yaw"],
                         "strength": [0.0, 15.0, 0.0, 15.0], "risk": [1.0, 2.0, 3.0, 5.0]})  # fmt: skip


def test_reference_sd_scaled_pairs_and_the_description_of_the_pairs() -> None:
    table = two_people()
    assert rb.reference_sd(table, "risk") == pytest.approx(np.sqrt(2.0))
    pairs = rb.paired(table, "risk")
    halved = rb.scaled(pairs, 2.0)
    assert list(halved["reference"]) == [0.5, 1.5] and list(halved["perturbed"]) == [1.0, 2.5]
    assert list(halved["difference"]) == [0.5, 1.0] and list(halved["strength"]) == [15.0, 15.0]
    assert rb.describe_pairs(table) == (
        "**2 people**, 4 photos: each person's reference photo and 1 perturbed ones. FaceAge shifts are in years; "
        "FaceSurvival shifts are in units of the SD of its log-risk over the reference photos (1.414 log hazard), "
        "so that the two models can be compared."
    )


def slope_frame() -> pd.DataFrame:
    """Six people: yaw moves the value by +0.1 per degree, light direction by −0.02 per degree (no noise)."""
    rows = []
    for i, age in enumerate((25.0, 40.0, 55.0, 60.0, 70.0, 85.0)):
        rows.append({"pair_id": f"p{i}", "condition": "reference", "strength": 0.0, "value": age})
        rows += [{"pair_id": f"p{i}", "condition": "yaw", "strength": s, "value": age + 0.1 * abs(s)}
                 for s in (-30.0, -15.0, 15.0, 30.0)]  # fmt: skip
        rows += [{"pair_id": f"p{i}", "condition": "light_direction", "strength": s, "value": age - 0.02 * abs(s)}
                 for s in (-60.0, -30.0, 30.0, 60.0)]  # fmt: skip
    return pd.DataFrame(rows)


def test_trends_side_by_side_and_the_slope_per_ten_degrees() -> None:
    pairs = rb.paired(slope_frame(), "value")
    slopes = rb.trends(pairs, pairs, risk_scale=2.0).set_index("condition")
    assert slopes.loc["yaw", "slope per unit (years)"] == pytest.approx(0.1)
    assert slopes.loc["yaw", "slope per unit (SD)"] == pytest.approx(0.05)  # the second model divided by 2
    assert slopes.loc["light_direction", "slope per unit (years)"] == pytest.approx(-0.02)
    assert {"p (years)", "p (SD)", "slope CI low (years)", "slope CI high (SD)"} <= set(slopes.columns)
    reading = rb.slope_reading(slopes.reset_index())
    assert reading == (
        "Per 10° of yaw FaceAge moves +1.00 years (95 % CI +1.00 to +1.00) and FaceSurvival +0.500 SD; per 10° of "
        "light direction FaceAge moves -0.20 years and FaceSurvival -0.100 SD."
    )
    assert rb.slope_reading(slopes.reset_index(), per=30.0).startswith("Per 30° of yaw FaceAge moves +3.00 years")


def summaries() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Hand-made ``summary`` tables of FaceAge (years) and FaceSurvival (SD), makeup the largest shift of both."""
    age = pd.DataFrame({"condition": ["yaw", "roll", "pitch", "makeup"], "strength": [30.0, -15.0, 15.0, 1.0],
                        "mean shift": [0.4, -1.2, 0.9, 3.0], "mean |change|": [0.8, 1.5, 1.1, 3.2],
                        "ICC(2,1)": [0.95, 0.99, 0.90, 0.5]})  # fmt: skip
    risk = pd.DataFrame({"condition": ["yaw", "light_direction", "makeup"], "strength": [30.0, -60.0, 1.0],
                         "mean shift": [0.1, -0.3, 0.6], "Spearman": [0.8, 0.95, 0.4]})  # fmt: skip
    return age, risk


def test_nuisance_keeps_only_pose_and_lighting() -> None:
    age, risk = summaries()
    assert list(rb.nuisance(age)["condition"]) == ["yaw", "roll", "pitch"]
    assert "makeup" not in set(rb.nuisance(risk)["condition"])
    visible = pd.DataFrame({"condition": ["facelift", "blepharoplasty"], "strength": [1.0, 1.0]})
    assert rb.nuisance(visible).empty


def test_summary_reading_names_where_each_model_moves_most_and_agrees_least() -> None:
    age, risk = summaries()
    assert rb.summary_reading(age.iloc[:3], risk.iloc[:2]) == (
        "FaceAge moves most under **roll −15°** (-1.2 years on average); its lowest absolute agreement is ICC(2,1) = "
        "0.90 (pitch +15°). FaceSurvival moves most under **light_direction −60°** (-0.30 SD); the ranking of people "
        "by risk is least stable under yaw +30° (Spearman 0.80)."
    )
    assert "FaceAge moves most under **makeup 1** (+3.0 years" in rb.summary_reading(age, risk)  # over all conditions


def visible_summary(facelift: float = -3.0) -> pd.DataFrame:
    """A hand-made ``surgery_summary``: half and full facelift, full blepharoplasty, half and full makeup."""
    return pd.DataFrame({
        "condition": ["facelift", "facelift", "blepharoplasty", "makeup", "makeup"],
        "strength": [0.5, 1.0, 1.0, 0.5, 1.0],
        "FaceAge change (y)": [-1.0, facelift, -0.5, 0.2, 0.45], "CI low": [-1.5, facelift - 1, -0.9, 0.0, 0.1],
        "CI high": [-0.5, facelift + 1, -0.1, 0.4, 0.8], "planted years equivalent": [-2.0, -4.0, -1.5, -2.5, -4.5],
        "FaceSurvival change (log HR)": [0.01, -0.02, 0.0, 0.0, 0.03],
    })  # fmt: skip


def test_full_strength_is_the_largest_strength_of_a_condition() -> None:
    visible = visible_summary()
    assert rb.full_strength(visible, "facelift")["FaceAge change (y)"] == -3.0
    assert rb.full_strength(visible, "makeup")["strength"] == 1.0
    with pytest.raises(ValueError, match="no 'yaw' rows"):
        rb.full_strength(visible, "yaw")


def test_surgery_change_reading_quotes_the_full_operations() -> None:
    assert rb.surgery_change_reading(visible_summary()) == (
        "After a full facelift FaceAge reads the face **-3.00 years** (95 % CI -4.00 to -2.00) where the planted "
        "cues moved by -4.0 years equivalent and the true age by 0; after a full blepharoplasty -0.50 years against "
        "-1.5; under full makeup +0.45 years against -4.5. FaceSurvival's log-risk moved by -0.020 after a full "
        "facelift."
    )


def test_reading_uses_pose_and_lighting_only_and_says_how_far_faceage_follows_surgery() -> None:
    age, risk = summaries()
    follows = rb.reading(age, risk, visible_summary(facelift=-3.0))
    assert follows.startswith(
        "Under pose and lighting — conditions that change the photo but not the face — FaceAge's mean shift stays "
        "within 1.2 years (mean absolute change per person at most 1.5 years) and its agreement with the reference "
        "photo is ICC(2,1) 0.90 or higher. FaceSurvival moves by up to 0.30 SD of its risk, most under "
        "light_direction −60°, and keeps the ranking of people with Spearman 0.80 or higher."
    )  # makeup's shift of 3 years, ICC 0.5 and Spearman 0.4 left out
    assert "and FaceAge follows them (-3.00 years after a full facelift against -4.0 years equivalent" in follows
    assert "+0.45 under full makeup against -4.5; the true age never changed)" in follows
    hardly = rb.reading(age, risk, visible_summary(facelift=-0.1))
    assert "and FaceAge hardly follows them: it does not see the removed cues" in hardly


def test_warp_reading_ranks_image_operations_against_the_renderer() -> None:
    age = pd.DataFrame({"condition": ["yaw", "yaw", "roll"], "strength": [15.0, 30.0, 15.0],
                        "rendered": [1.0, 2.0, 3.0], "image operation": [0.5, 1.5, -4.0]})  # fmt: skip
    risk = pd.DataFrame({"condition": ["yaw", "roll"], "strength": [30.0, 15.0], "rendered": [0.1, -0.2],
                         "image operation": [0.25, -0.5]})  # fmt: skip
    # ranks 1, 2, 3 against 2, 3, 1: Σd² = 6, ρ = 1 − 6·6 / (3·8) = −0.5
    assert rb.warp_reading(age, risk) == (
        "Across the 3 pose and lighting levels, the FaceAge shifts under the image operations rank like the rendered "
        "ones with Spearman -0.50; the largest FaceAge shift under an image operation is 4.0 years (rendered: 3.0), "
        "for FaceSurvival 0.50 SD (rendered: 0.20)."
    )


def test_headline_results_take_the_worst_pose_and_lighting_numbers() -> None:
    age, risk = summaries()
    for frame in (age, risk):
        frame["shift CI low"], frame["shift CI high"] = frame["mean shift"] - 1, frame["mean shift"] + 1
    recorded = {r.key: r.value for r in rb.headline_results(age, risk, visible_summary())}
    assert recorded["robustness.age.max_shift"] == 1.2 and recorded["robustness.age.min_icc"] == 0.90
    assert recorded["robustness.risk.max_shift"] == 0.3 and recorded["robustness.risk.min_spearman"] == 0.8
    assert recorded["surgery.facelift.age_change"] == -3.0 and recorded["surgery.makeup.age_change"] == 0.45


def test_surgery_figure_draws_only_the_operations_asked_for() -> None:
    frame = pd.DataFrame({"condition": ["facelift", "blepharoplasty", "makeup"], "strength": [1.0, 1.0, 1.0],
                          "years equivalent": [-4.0, -1.5, -4.5], "age_pred change": [-3.0, -0.5, 0.4]})  # fmt: skip
    labels = [t.get_text() for t in figures.surgery(frame).axes[0].get_legend().get_texts()]
    assert "facelift 1" in labels and "blepharoplasty 1" in labels and "makeup 1" not in labels
    assert "makeup 1" in [t.get_text() for t in figures.surgery(frame, ("makeup",)).axes[0].get_legend().get_texts()]


def test_without_cohort_a_the_chapter_reads_faceage_alone() -> None:
    """On real data without clinical cohort A there is no FaceSurvival: the description, trends, reading and
    recorded numbers are FaceAge's, and say why FaceSurvival is missing."""
    table = two_people().drop(columns="risk")
    assert rb.describe_pairs(table).endswith(
        "FaceAge shifts are in years; there is no FaceSurvival without clinical cohort A, which trains it."
    )
    table.attrs[rb.LANDMARKS_FOUND] = np.array([True, False])  # painted makeup: one face found, one placed
    assert rb.describe_pairs(table).endswith(
        "which trains it. For the painted makeup, dlib's HOG detector found the face on 1 of 2 photos; on the other "
        "1 the 68 points were placed in the box where alignment puts every face, so their regions follow an average "
        "face there."
    )
    pairs = rb.paired(slope_frame(), "value")
    slopes = rb.trends(pairs, None, None)
    assert not any("(SD)" in c for c in slopes.columns) and "slope per unit (years)" in slopes
    assert rb.slope_reading(slopes) == (
        "Per 10° of yaw FaceAge moves +1.00 years (95 % CI +1.00 to +1.00); per 10° of light direction it moves "
        "-0.20 years."
    )
    age, _ = summaries()
    assert rb.summary_reading(age.iloc[:3], None).endswith("There is no FaceSurvival to test: clinical cohort A, "
                                                          "which trains it, is not provided.")  # fmt: skip
    age["shift CI low"], age["shift CI high"] = age["mean shift"] - 1, age["mean shift"] + 1
    keys = {r.key for r in rb.headline_results(age, None, None, planted=False)}
    assert "robustness.age.max_shift" in keys and not any(k.startswith("robustness.risk") for k in keys)


def test_training_range_marks_the_levels_beyond_each_models_training_photos(monkeypatch) -> None:
    """FaceAge trained on photos of yaw up to ±20°, FaceSurvival on straight-on ones: ±15° is inside FaceAge's
    range and beyond FaceSurvival's, ±30° beyond both; the report judges each model on its own range
    (``inside_training``) beside the numbers over every level — so a FaceSurvival that breaks only where it never
    looked passes, and one that breaks inside its range does not."""
    yaw = {"age": np.linspace(-20, 20, 81), "clinical-a": np.zeros(81)}

    def load(profile: str, cohort: str):
        rows = pd.DataFrame({"yaw": yaw[cohort], "pitch": 0.0, "roll": 0.0, "light_azimuth": 0.0,
                             "colour_temperature": 0.0})  # fmt: skip
        return None, rows.assign(split=["train"] * 80 + ["test"]), {}

    monkeypatch.setattr(rb.cohorts, "load", load)
    monkeypatch.setattr(rb.common, "cohort", lambda cfg, name: None)  # no cohort to build
    ranges = rb.training_range(load_config("smoke")).set_index(["model", "condition", "strength"])
    assert ranges.loc[("faceage", "yaw", 15.0), "inside"] and not ranges.loc[("faceage", "yaw", 30.0), "inside"]
    far_out = ranges.loc[("faceage", "yaw", 15.0), "training photos as far out"]
    assert far_out == pytest.approx(21 / 80)  # −20…−15 and 15…19.5
    assert not ranges.loc[("facesurvival", "yaw", 15.0), "inside"]
    assert ranges.loc[("facesurvival", "light_temperature", 1.0), "training photos as far out"] == 0
    ranges = ranges.reset_index()
    reading = rb.range_reading(ranges)
    assert reading.startswith("FaceAge (fine-tuned on age): 12 of 14 levels beyond its training photos (yaw −30°")
    assert "FaceSurvival (fine-tuned on clinical-a): 14 of 14 levels" in reading

    def summary(spearman_15: float, spearman_30: float) -> pd.DataFrame:
        return pd.DataFrame({"condition": ["yaw"] * 2 + ["light_direction"], "strength": [15.0, 30.0, 30.0],
                             "mean shift": [0.1, 0.9, 0.2], "ICC(2,1)": [0.95, 0.5, 0.9],
                             "Spearman": [spearman_15, spearman_30, 0.3]})  # fmt: skip

    age = summary(0.9, 0.4).assign(**{"shift CI low": 0.0, "shift CI high": 1.0})
    ranges.loc[(ranges["model"] == "facesurvival") & (ranges["strength"] == 15.0) & (ranges["condition"] == "yaw"),
               "inside"] = True  # fmt: skip
    recorded = {r.key: r.value for r in rb.headline_results(age, summary(0.9, 0.2), None, ranges=ranges)}
    assert recorded["robustness.risk.inside_training.min_spearman"] == 0.9
    assert recorded["robustness.age.inside_training.min_icc"] == 0.95
    assert recorded["robustness.risk.min_spearman"] == 0.2 and recorded["robustness.age.max_shift"] == 0.9  # all
    broken = {r.key: r.value for r in rb.headline_results(age, summary(0.5, 0.2), None, ranges=ranges)}
    assert broken["robustness.risk.inside_training.min_spearman"] == 0.5  # breaks where it was trained
    everything = {r.key: r.value for r in rb.headline_results(age, summary(0.9, 0.2), None)}  # real data
    assert everything["robustness.risk.min_spearman"] == 0.2 and not any("inside" in k for k in everything)
    with pytest.raises(ValueError, match="no training range for facesurvival"):
        rb.inside(summary(0.9, 0.2), ranges[ranges["condition"] != "light_direction"], "facesurvival")


def test_a_photographed_person_without_a_usable_reference_photo_is_left_out_and_counted(monkeypatch) -> None:
    """A paired set in which preparation dropped one person's reference photo (no face found): that person's other
    photos compare with nothing, so they leave the table, and the description counts them."""
    table = two_people().assign(age_pred=[40.0, 41.0, 50.0, 52.0], age=[40.0] * 2 + [50.0] * 2)
    table = pd.concat([table, pd.DataFrame({"pair_id": ["c"], "condition": ["yaw"], "strength": [15.0],
                                            "risk": [1.0], "age_pred": [30.0], "age": [31.0]})])  # fmt: skip
    monkeypatch.setattr(rb.prepare, "available", lambda cfg: {"pairs"})
    monkeypatch.setattr(rb, "paired_set_table", lambda cfg, clinical: table.reset_index(drop=True))
    pairs, summary = rb.photographed(None, clinical=True)
    assert set(pairs["pair_id"]) == {"a", "b"} and summary["photos"].tolist() == [2]
    assert "(1 more left out: their reference photo was not usable" in rb.describe_pairs(pairs)
