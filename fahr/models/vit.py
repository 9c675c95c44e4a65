"""The encoder: a timm Vision Transformer with a fixed 2-D sine-cosine position embedding, and its FLOP count.

The same encoder (same module names, same weights) is pretrained inside the MAE and then fine-tuned into
FaceAge and FaceSurvival, so its state dict moves between them unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import torch
import torch.utils.checkpoint
from timm.layers import LayerNorm
from timm.models.vision_transformer import Block, VisionTransformer
from torch import nn


@dataclass(frozen=True)
class ViTSpec:
    """The shape of a ViT: input size and patch size in pixels, width, depth, heads, MLP ratio, stochastic depth,
    and the epsilon of its layer norms (timm's 1e-6 for the project's models; Hugging Face's ViT uses 1e-12)."""

    img_size: int
    patch_size: int
    embed_dim: int
    depth: int
    num_heads: int
    mlp_ratio: float = 4.0
    drop_path: float = 0.0
    layer_norm_eps: float = 1e-6

    def __post_init__(self) -> None:
        if self.img_size % self.patch_size:
            raise ValueError(f"img_size {self.img_size} is not a multiple of patch_size {self.patch_size}")
        if self.embed_dim % self.num_heads:
            raise ValueError(f"embed_dim {self.embed_dim} is not a multiple of num_heads {self.num_heads}")
        if self.embed_dim % 4:
            raise ValueError(f"embed_dim {self.embed_dim} must be a multiple of 4 for the 2-D sin-cos embedding")

    @property
    def grid_size(self) -> int:
        """Patches along one side of the image."""
        return self.img_size // self.patch_size

    @property
    def num_patches(self) -> int:
        """Patches per image (tokens without [CLS])."""
        return self.grid_size**2


def sincos_pos_embed_1d(embed_dim: int, positions: torch.Tensor) -> torch.Tensor:
    """Sine-cosine embedding of 1-D positions: first half sin(pos·ω_k), second half cos(pos·ω_k)."""
    omega = 1.0 / 10000 ** (torch.arange(embed_dim // 2, dtype=torch.float64) / (embed_dim / 2))  # [D/2]
    angles = positions.to(torch.float64)[:, None] * omega[None, :]  # [M, D/2]
    return torch.cat([angles.sin(), angles.cos()], dim=1)  # [M, D]


def sincos_pos_embed_2d(embed_dim: int, grid_size: int, cls_token: bool = True) -> torch.Tensor:
    """Fixed 2-D sine-cosine position embedding of a square patch grid, row-major, as in MAE.

    The first half of the channels encodes the column of a patch, the second half its row. With
    ``cls_token`` a row of zeros for [CLS] comes first. Returns float32 ``[1, (1 +) grid², embed_dim]``.
    """
    if embed_dim % 4:
        raise ValueError(f"embed_dim {embed_dim} must be a multiple of 4 for the 2-D sin-cos embedding")
    rows, cols = torch.meshgrid(torch.arange(grid_size), torch.arange(grid_size), indexing="ij")  # [g, g] each
    emb_col = sincos_pos_embed_1d(embed_dim // 2, cols.flatten())  # [g*g, D/2]
    emb_row = sincos_pos_embed_1d(embed_dim // 2, rows.flatten())  # [g*g, D/2]
    emb = torch.cat([emb_col, emb_row], dim=1)  # [g*g, D]
    if cls_token:
        emb = torch.cat([torch.zeros(1, embed_dim, dtype=emb.dtype), emb], dim=0)  # [1 + g*g, D]
    return emb.float()[None]  # [1, (1 +) g*g, D]


def build_encoder(spec: ViTSpec) -> VisionTransformer:
    """A randomly initialised timm ViT whose forward returns the normalised [CLS] feature ``[N, embed_dim]``.

    The learned position embedding is replaced by the fixed 2-D sin-cos one (``requires_grad=False``).
    Never loads pretrained weights.
    """
    encoder = VisionTransformer(
        img_size=spec.img_size,
        patch_size=spec.patch_size,
        embed_dim=spec.embed_dim,
        depth=spec.depth,
        num_heads=spec.num_heads,
        mlp_ratio=spec.mlp_ratio,
        drop_path_rate=spec.drop_path,
        num_classes=0,
        global_pool="token",
        class_token=True,
        qkv_bias=True,
        norm_layer=partial(LayerNorm, eps=spec.layer_norm_eps),
    )
    with torch.no_grad():
        encoder.pos_embed.copy_(sincos_pos_embed_2d(spec.embed_dim, spec.grid_size))  # [1, 1 + L, D]
    encoder.pos_embed.requires_grad_(False)
    return encoder


def kept_patches(num_patches: int, mask_ratio: float) -> int:
    """How many of ``num_patches`` patches the MAE encoder sees at ``mask_ratio``: round(L · (1 − ratio)), ≥ 1."""
    if not 0.0 <= mask_ratio < 1.0:
        raise ValueError(f"mask_ratio must be in [0, 1), got {mask_ratio}")
    return max(1, round(num_patches * (1 - mask_ratio)))


def transformer_block_flops(tokens: int, dim: int, mlp_ratio: float) -> float:
    """Forward FLOPs of one pre-norm transformer block on ``tokens`` tokens (matmuls only, 2 FLOPs per MAC)."""
    hidden = int(dim * mlp_ratio)
    qkv = tokens * dim * 3 * dim
    scores = tokens * tokens * dim  # q @ k^T, summed over heads
    mix = tokens * tokens * dim  # attn @ v
    proj = tokens * dim * dim
    mlp = 2 * tokens * dim * hidden
    return 2.0 * (qkv + scores + mix + proj + mlp)


def encoder_flops(spec: ViTSpec, mask_ratio: float = 0.0) -> float:
    """Forward FLOPs per image of the encoder: patch embedding of every patch, then the blocks on [CLS] plus
    the kept patches (all of them when ``mask_ratio`` is 0). Matmuls only; norms, softmax, GELU are ignored."""
    patch_embed = 2.0 * spec.num_patches * (spec.patch_size**2 * 3) * spec.embed_dim
    tokens = 1 + kept_patches(spec.num_patches, mask_ratio)
    return patch_embed + spec.depth * transformer_block_flops(tokens, spec.embed_dim, spec.mlp_ratio)


def checkpoint_activations(model: nn.Module) -> int:
    """Make every transformer block of ``model`` (the encoder's and MAE's decoder's, all timm ``Block``s) recompute
    its activations in the backward pass instead of keeping them: less memory for about a third more compute.
    Only while gradients are being recorded; the weights and their names are untouched. Returns the blocks changed."""
    count = 0
    for module in model.modules():
        if isinstance(module, Block) and not getattr(module, "_recomputes", False):
            plain = module.forward

            def forward(*args, _plain=plain, **kwargs):
                if torch.is_grad_enabled():
                    return torch.utils.checkpoint.checkpoint(_plain, *args, use_reentrant=False, **kwargs)
                return _plain(*args, **kwargs)

            module.forward, module._recomputes = forward, True
            count += 1
    return count
