"""Importing the published checkpoints: a file saved the way the authors saved theirs (a dict with
``model_state_dict`` and an optimizer state) from a `transformers` ViT, a `transformers` ViTMAE or a timm ViT with
random weights is imported into the project's encoder and FaceAge head, which then give the same [CLS] features and
the same ages as the module the file came from, on the same images (fp32, CPU). Files that do not fit fail with
one error naming what is left on both sides; the pipeline's stages and `fahr predict` use imported files.

`transformers` (a dev dependency) is imported by a fixture, not at the top: it takes 5-20 s to import and the
rest of the suite does not need it.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import timm
import torch
from PIL import Image
from torch import nn

from fahr import predict
from fahr.analysis import faceage as age_analysis
from fahr.analysis import pretraining
from fahr.core import config
from fahr.models import importer
from fahr.models.mae import MaskedAutoencoder
from fahr.models.vit import ViTSpec, build_encoder, sincos_pos_embed_2d
from fahr.report import reproducibility
from fahr.report.figures import faceage as age_figures
from fahr.train import common, faceage, facesurvival, pretrain

TOLERANCE = 1e-5  # largest absolute difference allowed between the project's model and the source module (fp32)
TINY = {"hidden": 64, "layers": 2, "heads": 2, "image": 64, "patch": 8, "decoder": (32, 1, 2)}  # the smoke encoder
PAPER = {"hidden": 768, "layers": 12, "heads": 12, "image": 112, "patch": 16, "decoder": (512, 8, 16)}  # ViT-B/16
SIZES = [pytest.param(TINY, id="tiny"), pytest.param(PAPER, id="paper", marks=pytest.mark.slow)]
# transformers 5 renamed ViT's modules; the published files (2025) carry the names of transformers 4
TRANSFORMERS_4_NAMES = [
    (r"(^|\.)layers\.(\d+)\.", r"\1encoder.layer.\2."),
    (r"\.attention\.q_proj\.", ".attention.attention.query."),
    (r"\.attention\.k_proj\.", ".attention.attention.key."),
    (r"\.attention\.v_proj\.", ".attention.attention.value."),
    (r"\.attention\.o_proj\.", ".attention.output.dense."),
    (r"\.mlp\.fc1\.", ".intermediate.dense."),
    (r"\.mlp\.fc2\.", ".output.dense."),
]


@pytest.fixture(scope="module")
def hf():
    import transformers

    return transformers


def hf_config(hf, size: dict, mae: bool = False):
    """A `transformers` ViT (or ViTMAE, mask ratio 0: the unmasked path) configuration of the given size."""
    shape = dict(hidden_size=size["hidden"], num_hidden_layers=size["layers"], num_attention_heads=size["heads"],
                 intermediate_size=4 * size["hidden"], image_size=size["image"], patch_size=size["patch"])  # fmt: skip
    if not mae:
        return hf.ViTConfig(**shape)
    width, depth, heads = size["decoder"]
    return hf.ViTMAEConfig(**shape, mask_ratio=0.0, decoder_hidden_size=width, decoder_num_hidden_layers=depth,
                           decoder_num_attention_heads=heads, decoder_intermediate_size=4 * width)  # fmt: skip


def randomise(module: nn.Module, seed: int) -> nn.Module:
    """Random weights of ViT-like scale (N(0, 0.02²); layer-norm weights around 1), drawn from ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in module.state_dict().items():
            if tensor.is_floating_point():
                noise = torch.randn(tensor.shape, generator=generator) * 0.02
                tensor.copy_(noise + 1.0 if re.search(r"norm\w*\.weight$", name) else noise)
    return module.eval()


def transformers_4_names(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    renamed = {}
    for key, value in state.items():
        for pattern, replacement in TRANSFORMERS_4_NAMES:
            key = re.sub(pattern, replacement, key)
        renamed[key] = value
    return renamed


def save_published(path: Path, model: nn.Module, state: dict[str, torch.Tensor] | None = None) -> Path:
    """Save ``model`` as the authors saved theirs: ``model_state_dict`` beside an AdamW state and an epoch."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.0)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    optimizer.step()  # zero gradients, no decay: the weights stay, the optimizer state gets its tensors
    state = transformers_4_names(model.state_dict()) if state is None else state
    torch.save({"model_state_dict": state, "optimizer_state_dict": optimizer.state_dict(), "epoch": 7}, path)
    return path


class ViTForAgeEstimation(nn.Module):
    """What the authors' FaceAge is taken to be: a `transformers` ViT and a linear regression on its [CLS] token."""

    def __init__(self, hf, cfg, pooler: bool = True) -> None:
        super().__init__()
        self.vit = hf.ViTModel(cfg, add_pooling_layer=pooler)
        self.regressor = nn.Linear(cfg.hidden_size, 1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.vit(pixel_values=x).last_hidden_state[:, 0]  # [N, D]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.regressor(self.features(x)).squeeze(-1)  # [N]


def images(size: int, n: int = 4, seed: int = 0) -> torch.Tensor:
    """A batch of random RGB images in [0, 1], ``[N, 3, size, size]``."""
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def normalised(x: torch.Tensor, name: str) -> torch.Tensor:
    mean, std = (torch.tensor(v)[None, :, None, None] for v in importer.NORMALISATIONS[name])
    return (x - mean) / std


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max())


# ------------------------------------------------------------------------------------------- proof of equality


@pytest.mark.parametrize("size", SIZES)
def test_an_hf_vit_faceage_file_gives_the_same_features_and_ages(hf, tmp_path, size) -> None:
    source = randomise(ViTForAgeEstimation(hf, hf_config(hf, size)), seed=1)
    path = save_published(tmp_path / "fahr_faceage.pth", source)
    heads = None if size["hidden"] == 64 * size["heads"] else size["heads"]  # the paper's ViT-B: inferred, 768 / 64
    start = time.perf_counter()
    imported = importer.import_file(path, "faceage", normalisation="imagenet", num_heads=heads)
    seconds = time.perf_counter() - start
    x = images(size["image"])
    with torch.no_grad():
        want_features, want_age = source.features(normalised(x, "imagenet")), source(normalised(x, "imagenet"))
        got_features, got_age = imported.model.features(x), imported.model(x)
    print(f"\n[hf-vit {size['layers']}x{size['hidden']}] import {seconds:.2f} s; max |Δ| features "
          f"{max_diff(got_features, want_features):.2e}, ages {max_diff(got_age, want_age):.2e}")  # fmt: skip
    assert max_diff(got_features, want_features) <= TOLERANCE
    assert max_diff(got_age, want_age) <= TOLERANCE
    p = imported.provenance
    found = (p["layout"], p["hf_naming"], p["prefix"], p["age_head"])
    assert found == ("hf-vit", "transformers 4", "vit.", "regressor")
    assert p["file_config"] == {"depth": size["layers"], "embed_dim": size["hidden"], "num_heads": size["heads"],
                                "patch_size": size["patch"], "image_size": size["image"], "mlp_ratio": 4.0}  # fmt: skip
    assert imported.spec.layer_norm_eps == 1e-12 and p["position_embedding"] == "learned"
    assert sorted(sum(p["unused"].values(), [])) == ["vit.pooler.dense.bias", "vit.pooler.dense.weight"]
    assert set(p["other_contents"]) == {"optimizer_state_dict", "epoch"}


@pytest.mark.parametrize("size", SIZES)
def test_an_hf_vitmae_foundation_file_gives_the_same_unmasked_features(hf, tmp_path, size) -> None:
    source = randomise(hf.ViTMAEForPreTraining(hf_config(hf, size, mae=True)), seed=2)
    grid = size["image"] // size["patch"]
    with torch.no_grad():  # MAE's fixed sin-cos positions, as the published foundation model has them
        source.vit.embeddings.position_embeddings.copy_(sincos_pos_embed_2d(size["hidden"], grid))
    path = save_published(tmp_path / "fahr_face.pth", source)
    heads = None if size["hidden"] == 64 * size["heads"] else size["heads"]
    imported = importer.import_file(path, "foundation", normalisation="half", num_heads=heads)
    x = images(size["image"])
    in_order = torch.arange(grid * grid, dtype=torch.float32).expand(len(x), -1)  # no shuffling of the patches
    with torch.no_grad():
        want = source.vit(pixel_values=normalised(x, "half"), noise=in_order).last_hidden_state[:, 0]  # [N, D]
        got = imported.model(x)  # [N, D]
    print(f"\n[hf-vitmae {size['layers']}x{size['hidden']}] max |Δ| features {max_diff(got, want):.2e}")
    assert max_diff(got, want) <= TOLERANCE
    p = imported.provenance
    assert (p["layout"], p["position_embedding"], p["age_head"]) == ("hf-vitmae", "sin-cos", None)
    width, depth, _ = size["decoder"]
    assert p["mae_decoder"] == {"tensors": 16 * depth + 8, "width": width, "depth": depth}


@pytest.mark.parametrize("size", SIZES)
def test_a_timm_vit_faceage_file_gives_the_same_features_and_ages(tmp_path, size) -> None:
    source = randomise(timm.models.vision_transformer.VisionTransformer(
        img_size=size["image"], patch_size=size["patch"], embed_dim=size["hidden"], depth=size["layers"],
        num_heads=size["heads"], num_classes=1), seed=3)  # fmt: skip
    path = save_published(tmp_path / "timm.pth", source, {f"module.{k}": v for k, v in source.state_dict().items()})
    imported = importer.import_file(path, "faceage", normalisation="imagenet", num_heads=size["heads"])
    x = images(size["image"])
    with torch.no_grad():
        features = source.forward_features(normalised(x, "imagenet"))  # [N, 1 + L, D]
        want_features = source.forward_head(features, pre_logits=True)  # [N, D]
        want_age, got_age = source.forward_head(features).squeeze(-1), imported.model(x)
        got_features = imported.model.features(x)
    print(f"\n[timm {size['layers']}x{size['hidden']}] max |Δ| features {max_diff(got_features, want_features):.2e}, "
          f"ages {max_diff(got_age, want_age):.2e}")  # fmt: skip
    assert max_diff(got_features, want_features) <= TOLERANCE
    assert max_diff(got_age, want_age) <= TOLERANCE
    assert (imported.provenance["layout"], imported.provenance["age_head"]) == ("timm", "head")


def test_an_mae_checkpoint_in_timm_names_imports_as_foundation_with_its_decoder_reported() -> None:
    mae = randomise(MaskedAutoencoder(ViTSpec(64, 8, 64, 2, 2), decoder_dim=32, decoder_depth=1, decoder_heads=2), 17)
    state, _ = importer.unwrap({"model": mae.state_dict(), "epoch": 3}, "mae.pth")  # facebookresearch/mae's layout
    imported = importer.import_state(state, "foundation", "mae.pth", normalisation="none", num_heads=2)
    x = images(64)
    with torch.no_grad():
        assert max_diff(imported.model(x), mae.encoder(x)) <= TOLERANCE
    assert (imported.provenance["layout"], imported.provenance["prefix"]) == ("timm", "encoder.")
    assert imported.provenance["mae_decoder"] == {"tensors": 12 + 8, "width": 32, "depth": 1}


def test_transformers_5_names_import_as_well(hf, tmp_path) -> None:
    source = randomise(ViTForAgeEstimation(hf, hf_config(hf, TINY), pooler=False), seed=4)
    path = save_published(tmp_path / "v5.pth", source, source.state_dict())
    imported = importer.import_file(path, "faceage", normalisation="none", num_heads=TINY["heads"])
    x = images(TINY["image"])
    with torch.no_grad():
        assert max_diff(imported.model(x), source(x)) <= TOLERANCE
    assert imported.provenance["hf_naming"] == "transformers 5" and imported.provenance["unused"] == {}


def test_the_transformers_4_names_of_these_tests_are_the_ones_transformers_reads(hf, tmp_path) -> None:
    """The renaming above is checked against transformers' own reading of old checkpoints."""
    from safetensors.torch import save_file

    for model in (hf.ViTModel(hf_config(hf, TINY)), hf.ViTMAEForPreTraining(hf_config(hf, TINY, mae=True))):
        randomise(model, seed=5)
        folder = tmp_path / type(model).__name__
        model.config.save_pretrained(folder)
        old = {k: v.contiguous() for k, v in transformers_4_names(model.state_dict()).items()}
        assert any(".attention.attention.query." in k for k in old)
        save_file(old, str(folder / "model.safetensors"), metadata={"format": "pt"})
        reread = type(model).from_pretrained(folder).state_dict()
        assert reread.keys() == model.state_dict().keys()
        assert all(torch.equal(reread[k], v) for k, v in model.state_dict().items())


def test_the_imported_model_is_a_project_checkpoint_that_loads_with_weights_only(hf, tmp_path) -> None:
    source = randomise(ViTForAgeEstimation(hf, hf_config(hf, TINY)), seed=6)
    imported = importer.import_file(save_published(tmp_path / "a.pth", source), "faceage", num_heads=TINY["heads"])
    saved = importer.save(imported, tmp_path / "faceage.pt")
    extra = torch.load(saved, weights_only=True)["extra"]
    assert extra["imported"]["sha256"] == importer.file_sha256(tmp_path / "a.pth") and extra["spec"]["depth"] == 2
    x = images(TINY["image"])
    with torch.no_grad():
        assert torch.equal(faceage.load(saved)(x), imported.model(x))


# ------------------------------------------------------------------------------------------------ strictness


@pytest.fixture(scope="module")
def tiny_state(hf) -> dict[str, torch.Tensor]:
    return transformers_4_names(randomise(ViTForAgeEstimation(hf, hf_config(hf, TINY)), seed=7).state_dict())


def test_a_missing_tensor_fails_naming_the_model_tensor_it_would_fill(tiny_state) -> None:
    state = {k: v for k, v in tiny_state.items() if k != "vit.encoder.layer.1.attention.attention.key.bias"}
    with pytest.raises(importer.WeightsImportError) as err:
        importer.import_state(state, "faceage", "x.pth", num_heads=2)
    message = str(err.value)
    assert "model tensors not filled (1)" in message and "blocks.1.attn.qkv.bias" in message
    assert "vit.encoder.layer.1.attention.attention.key.bias" in message and "layouts tried" in message


def test_an_extra_tensor_fails_naming_it_on_the_file_side(tiny_state) -> None:
    state = {**tiny_state, "vit.encoder.layer.0.attention.attention.gate.weight": torch.zeros(64, 64)}
    with pytest.raises(
        importer.WeightsImportError, match=r"file tensors not matched \(1\):\n.*gate\.weight \[64, 64\]"
    ):
        importer.import_state(state, "faceage", "x.pth", num_heads=2)


def test_an_unknown_layout_fails_listing_the_layouts_tried_and_every_key() -> None:
    resnet = {"conv1.weight": torch.zeros(64, 3, 7, 7), "fc.weight": torch.zeros(1, 512), "fc.bias": torch.zeros(1)}
    with pytest.raises(importer.WeightsImportError) as err:
        importer.import_state(resnet, "faceage", "resnet.pth")
    message = str(err.value)
    assert "hf-vit / hf-vitmae: 0 keys end in" in message and "timm: 0 keys end in" in message
    assert "conv1.weight [64, 3, 7, 7]" in message and "fc.bias [1]" in message


def test_a_foundation_file_has_no_age_head_to_import_as_faceage(hf, tmp_path) -> None:
    mae = randomise(hf.ViTMAEForPreTraining(hf_config(hf, TINY, mae=True)), seed=8)
    with pytest.raises(importer.WeightsImportError, match="age regression head"):
        importer.import_file(save_published(tmp_path / "f.pth", mae), "faceage", num_heads=2)


def test_a_faceage_file_imports_as_foundation_with_its_head_reported_unused(tiny_state) -> None:
    imported = importer.import_state(tiny_state, "foundation", "x.pth", num_heads=2)
    assert isinstance(imported.model, timm.models.vision_transformer.VisionTransformer)
    reported = sum(imported.provenance["unused"].values(), [])
    assert {"regressor.weight", "regressor.bias", "vit.pooler.dense.weight"} <= set(reported)


def test_a_file_with_objects_other_than_tensors_is_refused_without_unpickling(tmp_path, tiny_state) -> None:
    torch.save({"model_state_dict": tiny_state, "args": argparse.Namespace(lr=1)}, tmp_path / "pickled.pth")
    with pytest.raises(importer.WeightsImportError, match="never unpickles.*Re-save"):
        importer.import_file(tmp_path / "pickled.pth", "faceage")


def test_heads_are_inferred_as_width_over_64_or_must_be_given(tiny_state) -> None:
    assert importer.import_state(tiny_state, "faceage", "x.pth").spec.num_heads == 1  # 64 wide: one head of 64
    wide = {k: v for k, v in tiny_state.items()}
    wide["vit.embeddings.patch_embeddings.projection.weight"] = torch.zeros(96, 3, 8, 8)
    with pytest.raises(importer.WeightsImportError, match="cannot infer the number of heads"):
        importer.import_state(wide, "faceage", "x.pth")


def test_another_image_size_resizes_the_position_embedding_with_a_warning(hf, tmp_path, tiny_state) -> None:
    with pytest.warns(UserWarning, match="interpolated bicubically for 32-px input"):
        imported = importer.import_state(tiny_state, "faceage", "x.pth", num_heads=2, image_size=32)
    assert imported.model.encoder.pos_embed.shape == (1, 1 + 16, 64)
    assert imported.model(images(32)).shape == (4,)
    mae = randomise(hf.ViTMAEForPreTraining(hf_config(hf, TINY, mae=True)), seed=9)
    with torch.no_grad():
        mae.vit.embeddings.position_embeddings.copy_(sincos_pos_embed_2d(64, 8))
    state, _ = importer.unwrap({"model_state_dict": transformers_4_names(mae.state_dict())}, "mae.pth")
    with pytest.warns(UserWarning, match="recomputed"):
        encoder = importer.import_state(state, "foundation", "mae.pth", num_heads=2, image_size=32).model
    assert torch.allclose(encoder.pos_embed[:, 1:], sincos_pos_embed_2d(64, 4, cls_token=False))


def test_the_config_knows_the_importers_normalisations() -> None:
    from typing import get_args

    assert set(get_args(config.PublishedConfig.model_fields["normalisation"].annotation)) == set(
        importer.NORMALISATIONS
    )


# ------------------------------------------------------------------------------------------ stages and CLI


@pytest.fixture()
def artifacts(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("FAHR_ARTIFACTS", str(tmp_path / "artifacts"))
    return tmp_path / "artifacts"


@pytest.mark.slow  # trains or runs the command line
def test_pretrain_weights_replace_pretraining_and_their_sha256_is_in_the_fingerprint(hf, tmp_path, artifacts) -> None:
    mae = randomise(hf.ViTMAEForPreTraining(hf_config(hf, TINY, mae=True)), seed=10)
    path = save_published(tmp_path / "fahr_face.pth", mae)
    cfg = config.load("smoke", [f"pretrain.weights={path}"])
    checkpoint = pretrain.run(cfg, progress=False)
    assert not (common.model_dir("smoke", pretrain.NAME) / "metrics.jsonl").exists()  # nothing was trained
    spec, state = pretrain.encoder_state(cfg)
    assert spec.layer_norm_eps == 1e-12 and spec.num_heads == cfg.model.num_heads
    x = images(64)
    in_order = torch.arange(64, dtype=torch.float32).expand(len(x), -1)
    encoder = build_encoder(spec)
    encoder.load_state_dict(state)
    with torch.no_grad():
        want = mae.vit(pixel_values=normalised(x, "imagenet"), noise=in_order).last_hidden_state[:, 0]
        assert max_diff(encoder.eval()(x), want) <= TOLERANCE
    before = pretrain.fingerprint(cfg)
    assert pretrain.run(cfg, progress=False) == checkpoint
    save_published(path, randomise(mae, seed=11))  # another file at the same path
    assert pretrain.fingerprint(cfg) != before


@pytest.mark.slow  # trains or runs the command line
def test_faceage_weights_make_the_faceage_stage_return_the_imported_model(hf, tmp_path, artifacts) -> None:
    source = randomise(ViTForAgeEstimation(hf, hf_config(hf, TINY)), seed=12)
    path = save_published(tmp_path / "fahr_faceage.pth", source)
    cfg = config.load("smoke", [f"faceage.weights={path}"])
    checkpoint = faceage.run(cfg, progress=False)
    assert checkpoint == faceage.checkpoint_path("smoke")
    x = images(64)
    with torch.no_grad():
        assert max_diff(faceage.load(checkpoint)(x), source(normalised(x, "imagenet"))) <= TOLERANCE
    assert common.read_done("smoke", "faceage")["imported"]["sha256"] == importer.file_sha256(path)
    plain = config.load("smoke")  # the baselines still train, and do not depend on the imported file
    for pretrained, fraction in ((False, 1.0), (True, 0.3)):
        assert faceage.fingerprint(cfg, pretrained, fraction) == faceage.fingerprint(plain, pretrained, fraction)

    # the chapters in evaluate-only mode: the published model alone, beside the baselines; nothing fine-tuned
    assert age_analysis.networks(cfg) == ("faceage", "faceage-scratch")  # no stage 1 of a published model
    assert age_analysis.networks(plain) == age_analysis.NETWORKS
    assert age_analysis.models(cfg) == ["faceage", "faceage-scratch", "mean-age baseline", age_analysis.HANDMADE]
    sentence = age_analysis.evaluated_sentence(cfg)
    assert "fahr_faceage.pth" in sentence and "rendered" in sentence and age_analysis.evaluated_sentence(plain) == ""
    efficiency = pretraining.efficiency(cfg)
    assert efficiency.empty and age_figures.efficiency_curve(efficiency) is None
    assert not common.model_dir("smoke", faceage.name(True, 0.3)).exists()  # no share of the labels was trained
    table = pd.DataFrame({"faceage": [6.0], "mean-age baseline": [15.0], age_analysis.HANDMADE: [9.0]},
                         index=pd.Index(["all datasets"]))  # fmt: skip
    assert "stage 1" not in age_analysis.summary_sentence(table)
    keys = {r.key for r in age_analysis.headline(table, pd.DataFrame(), None, efficiency)}
    assert "faceage.mae" in keys and "faceage.mae.stage1" not in keys
    listed = reproducibility.imported_table("smoke")  # the Reproducibility chapter names the file and its hash
    assert list(listed.index) == ["faceage"] and listed.loc["faceage", "sha256"] == importer.file_sha256(path)
    assert listed.loc["faceage", "file"] == "fahr_faceage.pth" and "hf-vit" in listed.loc["faceage", "layout"]
    assert importer.file_sha256(path)[:12] in reproducibility.imported_sentence(listed)


def test_a_published_file_of_another_shape_names_the_model_keys_to_set(hf, tmp_path, artifacts) -> None:
    small = dict(TINY, hidden=128)
    path = save_published(tmp_path / "wide.pth", randomise(ViTForAgeEstimation(hf, hf_config(hf, small)), seed=13))
    cfg = config.load("smoke", [f"faceage.weights={path}"])
    with pytest.raises(config.ConfigError, match=r"--set model.embed_dim=128 --set model.num_heads=2"):
        faceage.run(cfg, progress=False)
    with pytest.raises(config.ConfigError, match="faceage.weights: no file at"):
        faceage.run(config.load("smoke", [f"faceage.weights={tmp_path / 'absent.pth'}"]), progress=False)


@pytest.mark.slow  # trains or runs the command line
def test_facesurvival_fine_tunes_from_the_imported_foundation_model(hf, tmp_path, artifacts) -> None:
    mae = randomise(hf.ViTMAEForPreTraining(hf_config(hf, TINY, mae=True)), seed=14)
    path = save_published(tmp_path / "fahr_face.pth", mae)
    cfg = config.load("smoke", [f"pretrain.weights={path}", "facesurvival.epochs=1"])
    checkpoint = facesurvival.run(cfg, progress=False)
    extra = torch.load(checkpoint, weights_only=True)["extra"]
    assert extra["pretrained"] and extra["spec"]["layer_norm_eps"] == 1e-12
    assert common.read_done("smoke", pretrain.NAME)["imported"]["layout"] == "hf-vitmae"


def face_photos(folder: Path) -> Path:
    from skimage import data

    folder.mkdir()
    Image.fromarray(data.astronaut()).save(folder / "astronaut.jpg")
    Image.fromarray(data.coffee()).save(folder / "coffee.jpg")
    return folder


@pytest.mark.slow  # trains or runs the command line
def test_fahr_predict_runs_on_a_raw_published_faceage_file(hf, tmp_path, artifacts) -> None:
    size = dict(TINY, image=112, patch=16)
    source = randomise(ViTForAgeEstimation(hf, hf_config(hf, size)), seed=15)
    with torch.no_grad():
        source.regressor.bias.fill_(45.0)
    path = save_published(tmp_path / "fahr_faceage.pth", source)
    photos = face_photos(tmp_path / "photos")
    command = ["predict", str(photos), "--faceage", str(path), "-o", str(tmp_path / "ages.csv"), "--profile", "smoke"]
    out = subprocess.run([sys.executable, "-m", "fahr.cli", *command], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    table = pd.read_csv(tmp_path / "ages.csv").set_index("flag")
    assert np.isfinite(table.loc["ok", "age_pred"]) and np.isnan(table.loc["no_face", "age_pred"])
    cached = list((artifacts / "imported").glob("*-faceage-*.pt"))
    assert len(cached) == 1 and cached[0].name.startswith(importer.file_sha256(path)[:16])
    again = predict.photos([photos / "astronaut.jpg"], path, progress=False)  # the cached import, same ages
    assert again["age_pred"].iloc[0] == pytest.approx(table.loc["ok", "age_pred"], abs=1e-4)
    assert list((artifacts / "imported").glob("*.pt")) == cached


@pytest.mark.slow  # trains or runs the command line
def test_fahr_import_weights_writes_a_checkpoint_and_says_what_it_assumed(hf, tmp_path, artifacts) -> None:
    mae = randomise(hf.ViTMAEForPreTraining(hf_config(hf, TINY, mae=True)), seed=16)
    path = save_published(tmp_path / "fahr_face.pth", mae)
    out = subprocess.run([sys.executable, "-m", "fahr.cli", "import-weights", str(path), "--as", "foundation",
                          "--num-heads", "2", "--out", str(tmp_path / "encoder.pt"), "--profile", "smoke"],
                         capture_output=True, text=True)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    assert "layout hf-vitmae" in out.stdout and "MAE decoder" in out.stdout and "assumed: layer-norm eps" in out.stdout
    assert (tmp_path / "encoder.pt").is_file() and (tmp_path / "encoder.pt.provenance.json").is_file()
    bad = subprocess.run([sys.executable, "-m", "fahr.cli", "import-weights", str(path), "--as", "faceage",
                          "--profile", "smoke"], capture_output=True, text=True)  # fmt: skip
    assert bad.returncode == 2 and "age regression head" in bad.stderr
