"""The models: ViT encoder with fixed sin-cos positions, MAE (masking, loss, learning), heads and checkpoints.

Tiny shapes throughout: 32×32 images, 8×8 patches (L = 16), width 32, depth 2, one decoder block.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from fahr.models import (
    FaceAgeModel,
    FaceSurvivalModel,
    MaskedAutoencoder,
    ViTSpec,
    build_encoder,
    encoder_flops,
    load_encoder,
    load_weights,
    save_checkpoint,
    sincos_pos_embed_2d,
)

SPEC = ViTSpec(img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2)
L, D, PATCH_DIM = 16, 32, 8 * 8 * 3
LEARN_STEPS, LEARN_LR = 60, 3e-3


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny models run fastest on one thread (and are not slowed by other processes on a small machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_mae(seed: int = 0, **kwargs: float) -> MaskedAutoencoder:
    torch.manual_seed(seed)
    return MaskedAutoencoder(SPEC, decoder_dim=32, decoder_depth=1, decoder_heads=2, **kwargs)


def structured_images(n: int, size: int = 32, seed: int = 0) -> torch.Tensor:
    """Images ``[n, 3, size, size]``: a random linear colour ramp per channel plus one Gaussian blob."""
    g = torch.Generator().manual_seed(seed)
    coords = torch.linspace(-1, 1, size)
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")  # [size, size]
    slopes = torch.rand(n, 3, 2, generator=g) * 2 - 1  # [n, 3, 2]
    ramps = slopes[..., 0, None, None] * xx + slopes[..., 1, None, None] * yy  # [n, 3, size, size]
    centres = torch.rand(n, 2, generator=g) * 1.2 - 0.6  # [n, 2]
    dist2 = (xx - centres[:, 0, None, None]) ** 2 + (yy - centres[:, 1, None, None]) ** 2  # [n, size, size]
    return ramps + torch.exp(-dist2 / 0.1)[:, None]


def eval_loss(mae: MaskedAutoencoder, imgs: torch.Tensor) -> float:
    """The MAE loss in eval mode under one fixed mask."""
    mae.eval()
    with torch.no_grad():
        loss = mae(imgs, torch.Generator().manual_seed(123))[0].item()
    mae.train()
    return loss


@pytest.fixture(scope="module")
def trained() -> tuple[MaskedAutoencoder, torch.Tensor, float, float]:
    """A tiny MAE after LEARN_STEPS AdamW steps on 8 structured images: (mae, images, loss before, loss after)."""
    mae, imgs = tiny_mae(), structured_images(8)
    before = eval_loss(mae, imgs)
    opt = torch.optim.AdamW(mae.parameters(), lr=LEARN_LR, betas=(0.9, 0.95), weight_decay=0.05)
    masks = torch.Generator().manual_seed(1)
    for _ in range(LEARN_STEPS):
        loss = mae(imgs, masks)[0]
        opt.zero_grad()
        loss.backward()
        opt.step()
    return mae.eval(), imgs, before, eval_loss(mae.eval(), imgs)


# --- encoder -----------------------------------------------------------------------------------------------


def test_vitspec_counts_patches_and_rejects_bad_shapes() -> None:
    assert (SPEC.grid_size, SPEC.num_patches) == (4, 16)
    assert ViTSpec(112, 16, 768, 12, 12).num_patches == 49
    with pytest.raises(ValueError, match="not a multiple of patch_size"):
        ViTSpec(30, 8, 32, 2, 2)
    with pytest.raises(ValueError, match="num_heads"):
        ViTSpec(32, 8, 32, 2, 3)
    with pytest.raises(ValueError, match="multiple of 4"):
        ViTSpec(32, 8, 18, 2, 2)


def test_sincos_pos_embed_has_cls_row_hand_values_and_depends_only_on_offsets() -> None:
    pe = sincos_pos_embed_2d(8, grid_size=4)  # quarter width 2: ω = (1, 1/100)
    assert pe.shape == (1, 1 + 16, 8) and pe.dtype == torch.float32
    assert torch.equal(pe[0, 0], torch.zeros(8))
    row, col = 2, 3  # token 1 + row * 4 + col; first half encodes the column, second half the row
    expected = [math.sin(col), math.sin(col / 100), math.cos(col), math.cos(col / 100)]
    expected += [math.sin(row), math.sin(row / 100), math.cos(row), math.cos(row / 100)]
    torch.testing.assert_close(pe[0, 1 + row * 4 + col], torch.tensor(expected))
    assert sincos_pos_embed_2d(8, 4, cls_token=False).shape == (1, 16, 8)
    grid = sincos_pos_embed_2d(64, 4, cls_token=False)[0].reshape(4, 4, 64)  # [row, col, D]
    # a dot product of two positions depends only on their offset: (0,0)·(1,2) == (2,1)·(3,3)
    torch.testing.assert_close(grid[0, 0] @ grid[1, 2], grid[2, 1] @ grid[3, 3])
    assert len({tuple(v.tolist()) for v in grid.reshape(16, 64)}) == 16  # every patch is distinguishable


def test_encoder_position_embedding_is_fixed_sincos_and_does_not_train(trained) -> None:
    encoder = build_encoder(SPEC)
    assert encoder.pos_embed.shape == (1, 1 + L, D)
    assert not encoder.pos_embed.requires_grad
    torch.testing.assert_close(encoder.pos_embed.data, sincos_pos_embed_2d(D, 4), rtol=0, atol=0)
    mae = trained[0]  # after 60 AdamW steps (with weight decay) both position embeddings are unchanged
    assert torch.equal(mae.encoder.pos_embed, sincos_pos_embed_2d(D, 4))
    assert torch.equal(mae.decoder_pos_embed, sincos_pos_embed_2d(32, 4))


def test_encoder_forward_returns_the_normalised_cls_feature() -> None:
    encoder = build_encoder(SPEC).eval()
    imgs = torch.randn(3, 3, 32, 32)
    features = encoder(imgs)
    assert features.shape == (3, D)  # [N, D]
    torch.testing.assert_close(features, encoder.forward_features(imgs)[:, 0])


def test_encoder_flops_match_hand_count_and_torch_flop_counter() -> None:
    # patch embed: 16 patches · 192 inputs · 32 outputs MACs; per block on T = 17 tokens (MACs):
    # qkv 17·32·96 + scores 17·17·32 + attn·v 17·17·32 + proj 17·32·32 + MLP 2·17·32·128
    patch = 16 * 192 * 32
    block = 17 * 32 * 96 + 17 * 17 * 32 + 17 * 17 * 32 + 17 * 32 * 32 + 2 * 17 * 32 * 128
    assert encoder_flops(SPEC) == 2 * (patch + 2 * block) == 1_106_176
    kept_block = 5 * 32 * 96 + 5 * 5 * 32 + 5 * 5 * 32 + 5 * 32 * 32 + 2 * 5 * 32 * 128  # [CLS] + 4 kept
    assert encoder_flops(SPEC, mask_ratio=0.75) == 2 * (patch + 2 * kept_block)
    encoder = build_encoder(SPEC)
    for block_module in encoder.blocks:
        block_module.attn.fused_attn = False  # explicit q·kᵀ and attn·v matmuls, which the counter sees
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        encoder(torch.zeros(1, 3, 32, 32))
    assert counter.get_total_flops() == encoder_flops(SPEC)


def test_mae_flops_per_image_match_torch_flop_counter() -> None:
    mae = tiny_mae()
    for block_module in [*mae.encoder.blocks, *mae.decoder_blocks]:
        block_module.attn.fused_attn = False
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        mae(torch.randn(1, 3, 32, 32))
    assert counter.get_total_flops() == mae.flops_per_image()


# --- MAE -----------------------------------------------------------------------------------------------------


def test_patchify_orders_patches_row_major_and_unpatchify_inverts_it() -> None:
    mae, imgs = tiny_mae(), torch.randn(2, 3, 32, 32)
    patches = mae.patchify(imgs)
    assert patches.shape == (2, L, PATCH_DIM)  # [N, L, p*p*3]
    row, col = 1, 2
    by_hand = imgs[:, :, 8 * row : 8 * row + 8, 8 * col : 8 * col + 8].permute(0, 2, 3, 1).reshape(2, -1)
    assert torch.equal(patches[:, row * 4 + col], by_hand)
    assert torch.equal(mae.unpatchify(patches), imgs)


@pytest.mark.parametrize(
    ("length", "ratio", "kept"), [(16, 0.0, 16), (16, 0.5, 8), (16, 0.75, 4), (16, 0.9, 2), (49, 0.75, 12)]
)
def test_random_masking_keeps_round_l_times_one_minus_ratio(length: int, ratio: float, kept: int) -> None:
    assert kept == round(length * (1 - ratio))
    x = torch.randn(5, length, 6)
    x_kept, mask, ids_restore = MaskedAutoencoder.random_masking(x, ratio, torch.Generator().manual_seed(0))
    assert x_kept.shape == (5, kept, 6) and mask.shape == (5, length) and ids_restore.shape == (5, length)
    assert torch.equal(mask.sum(dim=1), torch.full((5,), float(length - kept)))
    assert set(mask.unique().tolist()) <= {0.0, 1.0}
    # putting the kept tokens back (zeros for removed ones) with ids_restore gives x where mask == 0, else 0
    padded = torch.cat([x_kept, torch.zeros(5, length - kept, 6)], dim=1)
    restored = torch.gather(padded, 1, ids_restore[:, :, None].expand(-1, -1, 6))
    torch.testing.assert_close(restored, x * (1 - mask)[:, :, None], rtol=0, atol=0)


def test_random_masking_is_seeded_and_differs_between_samples() -> None:
    x = torch.randn(8, L, 4)
    first = MaskedAutoencoder.random_masking(x, 0.75, torch.Generator().manual_seed(7))[1]
    again = MaskedAutoencoder.random_masking(x, 0.75, torch.Generator().manual_seed(7))[1]
    assert torch.equal(first, again)
    assert len({tuple(m.tolist()) for m in first}) > 1
    with pytest.raises(ValueError, match="mask_ratio"):
        MaskedAutoencoder.random_masking(x, 1.0)


def test_every_mae_method_returns_the_documented_shape() -> None:
    mae, imgs = tiny_mae(), torch.randn(3, 3, 32, 32)
    latent, mask, ids_restore = mae.forward_encoder(imgs, 0.75)
    assert latent.shape == (3, 1 + 4, D)  # [N, 1 + K, D]
    assert mask.shape == (3, L) and ids_restore.shape == (3, L)  # [N, L]
    pred = mae.forward_decoder(latent, ids_restore)
    assert pred.shape == (3, L, PATCH_DIM)  # [N, L, p*p*3]
    loss = mae.forward_loss(imgs, pred, mask)
    assert loss.shape == () and torch.isfinite(loss)
    loss, pred, mask = mae(imgs)
    assert loss.shape == () and pred.shape == (3, L, PATCH_DIM) and mask.shape == (3, L)
    assert mae.patch_target(imgs).shape == (3, L, PATCH_DIM)
    figure = mae.eval().reconstruct(imgs)
    assert {k: tuple(v.shape) for k, v in figure.items()} == {
        "masked": (3, 3, 32, 32),
        "reconstruction": (3, 3, 32, 32),
        "pasted": (3, 3, 32, 32),
        "mask": (3, 1, 32, 32),
    }
    assert set(mae.encoder_state_dict()) == set(build_encoder(SPEC).state_dict())


def test_loss_is_taken_on_removed_patches_only() -> None:
    mae, imgs = tiny_mae(), torch.randn(2, 3, 32, 32)
    loss, pred, mask = mae(imgs, torch.Generator().manual_seed(0))
    visible = (mask == 0)[:, :, None].expand_as(pred)
    changed_visible = torch.where(visible, torch.randn_like(pred) * 100, pred)
    assert mae.forward_loss(imgs, changed_visible, mask) == loss
    changed_removed = torch.where(visible, pred, torch.randn_like(pred) * 100)
    assert mae.forward_loss(imgs, changed_removed, mask) > 100 * loss
    # and it is the mean over removed patches of the per-patch MSE against the normalised target
    per_patch = ((pred - mae.patch_target(imgs)) ** 2).mean(dim=-1)  # [N, L]
    torch.testing.assert_close(loss, per_patch[mask == 1].mean())


def test_normalised_pixel_target_has_zero_mean_unit_variance_and_inverts() -> None:
    imgs = structured_images(2)
    mae = tiny_mae()
    target = mae.patch_target(imgs)
    torch.testing.assert_close(target.mean(dim=-1), torch.zeros(2, L), atol=1e-5, rtol=0)
    torch.testing.assert_close(target.var(dim=-1), torch.ones(2, L), atol=1e-3, rtol=0)
    torch.testing.assert_close(mae.prediction_to_pixels(target, imgs), mae.patchify(imgs), atol=1e-5, rtol=0)
    raw = tiny_mae(norm_pix_loss=False)
    assert torch.equal(raw.patch_target(imgs), raw.patchify(imgs))


def test_reconstruct_pastes_visible_patches_from_the_input(trained) -> None:
    mae, imgs, _, _ = trained
    figure = mae.reconstruct(imgs, torch.Generator().manual_seed(3))
    removed = figure["mask"].expand_as(imgs) == 1
    assert removed.float().mean().item() == pytest.approx(0.75)
    assert torch.equal(figure["pasted"][~removed], imgs[~removed])
    assert torch.equal(figure["pasted"][removed], figure["reconstruction"][removed])
    assert torch.equal(figure["masked"][removed], torch.zeros(int(removed.sum())))
    # a learned reconstruction of the removed patches is closer to the truth than the masked image is
    assert (figure["pasted"] - imgs).pow(2).mean() < (figure["masked"] - imgs).pow(2).mean()


def test_mae_encoder_without_masking_equals_the_timm_forward() -> None:
    mae, imgs = tiny_mae().eval(), torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        latent = mae.forward_encoder(imgs, 0.0)[0]  # tokens shuffled: attention is order-free, [CLS] unchanged
        torch.testing.assert_close(latent[:, 0], mae.encoder(imgs), atol=1e-5, rtol=1e-5)


def test_mae_learns_structured_images(trained) -> None:
    """60 AdamW steps cut the loss on removed patches by more than 40 % (measured: about 1.27 → 0.49)."""
    _, _, before, after = trained
    assert after < 0.6 * before, f"MAE loss {before:.3f} → {after:.3f} after {LEARN_STEPS} steps"
    assert after < 0.75  # well below 1.0, the loss of predicting every removed patch as its mean


# --- heads, weight transfer, checkpoints -------------------------------------------------------------------


@pytest.mark.parametrize("make", [lambda enc: FaceAgeModel(enc, init_age=50.0), FaceSurvivalModel])
def test_mae_encoder_weights_give_identical_cls_features_in_head_models(trained, make) -> None:
    mae, imgs, _, _ = trained
    model = make(build_encoder(SPEC))
    load_encoder(model, mae.encoder_state_dict())
    model.eval()
    for key, value in mae.encoder_state_dict().items():
        assert torch.equal(model.encoder.state_dict()[key], value), key
    with torch.no_grad():
        assert torch.equal(model.features(imgs), mae.encoder(imgs))
        torch.testing.assert_close(model.features(imgs), mae.forward_encoder(imgs, 0.0)[0][:, 0], atol=1e-5, rtol=1e-5)
        assert model(imgs).shape == (8,)  # [N]


def test_load_encoder_names_missing_unexpected_and_mismatched_keys() -> None:
    model = FaceSurvivalModel(build_encoder(ViTSpec(32, 8, 32, 3, 2)))
    with pytest.raises(ValueError, match=r"missing keys \(12\): \['blocks\.2\."):
        load_encoder(model, build_encoder(SPEC).state_dict())
    with pytest.raises(ValueError, match=r"unexpected keys \(50\): \['decoder_blocks\.0\."):
        load_encoder(model, tiny_mae().state_dict())
    wider = build_encoder(ViTSpec(32, 8, 48, 2, 2)).state_dict()
    mismatch = r"shape mismatches \(30\): \['blocks\.0\.attn\.proj\.bias: checkpoint \(48,\) vs model \(32,\)"
    with pytest.raises(ValueError, match=mismatch):
        load_encoder(FaceSurvivalModel(build_encoder(SPEC)), wider)


def test_head_models_start_from_init_age_and_zero_risk() -> None:
    imgs = torch.randn(4, 3, 32, 32)
    age = FaceAgeModel(build_encoder(SPEC), init_age=42.5).eval()
    assert age.head.weight.abs().max() < 0.1  # small initial weights
    with torch.no_grad():
        age.head.weight.zero_()
        torch.testing.assert_close(age(imgs), torch.full((4,), 42.5))
        assert age.features(imgs).shape == (4, D)
        survival = FaceSurvivalModel(build_encoder(SPEC)).eval()
        survival.head.weight.zero_()
        assert torch.equal(survival(imgs), torch.zeros(4))


def test_checkpoint_round_trips_with_weights_only(tmp_path) -> None:
    model = FaceAgeModel(build_encoder(SPEC), init_age=40.0)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    imgs = torch.randn(2, 3, 32, 32)
    model(imgs).sum().backward()
    opt.step()
    extra = {
        "epoch": 3,
        "metrics": {"mae_years": 7.5, "note": None},
        "history": [1.0, 2.0],
        "optimizer": opt.state_dict(),
    }
    path = save_checkpoint(tmp_path / "faceage.pt", model, extra)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["faceage.pt"]  # no temporary file left behind
    raw = torch.load(path, weights_only=True)  # loads with no allow-listing
    assert set(raw) == {"format", "model", "extra"}
    fresh = FaceAgeModel(build_encoder(SPEC), init_age=0.0)
    loaded = load_weights(path, fresh)
    assert loaded["epoch"] == 3 and loaded["metrics"] == extra["metrics"] and loaded["history"] == [1.0, 2.0]
    for key, value in model.state_dict().items():
        assert torch.equal(fresh.state_dict()[key], value), key
    opt_fresh = torch.optim.AdamW(fresh.parameters(), lr=1e-3)
    opt_fresh.load_state_dict(loaded["optimizer"])  # the optimizer state resumes too
    with torch.no_grad():
        assert torch.equal(fresh.eval()(imgs), model.eval()(imgs))


def test_save_checkpoint_refuses_non_plain_extra_and_writes_nothing(tmp_path) -> None:
    model = FaceSurvivalModel(build_encoder(SPEC))
    with pytest.raises(TypeError, match=r"extra\['metrics'\]\['c_index'\] is a numpy.float64"):
        save_checkpoint(tmp_path / "facesurvival.pt", model, {"metrics": {"c_index": np.float64(0.7)}})
    assert list(tmp_path.iterdir()) == []


def test_load_checkpoint_refuses_a_file_it_did_not_write(tmp_path) -> None:
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a checkpoint written by fahr"):
        load_weights(tmp_path / "other.pt", FaceSurvivalModel(build_encoder(SPEC)))
