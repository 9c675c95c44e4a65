"""Masked autoencoder pretraining (He et al. 2022) around the timm encoder of ``fahr.models.vit``.

Shapes: N images, L patches per image, K kept patches, D encoder width, Dd decoder width, p patch size.
The encoder sees [CLS] plus the K kept patches; the decoder sees all L positions (mask tokens where a patch
was removed) and predicts each patch's pixels, normalised per patch. The loss is taken on removed patches only.
"""

from __future__ import annotations

import torch
from timm.layers import LayerNorm
from timm.models.vision_transformer import Block
from torch import nn

from fahr.models.vit import (
    ViTSpec,
    build_encoder,
    encoder_flops,
    kept_patches,
    sincos_pos_embed_2d,
    transformer_block_flops,
)


class MaskedAutoencoder(nn.Module):
    """A ViT encoder (``self.encoder``, the weights FaceAge and FaceSurvival start from) and a small decoder."""

    def __init__(
        self,
        spec: ViTSpec,
        decoder_dim: int = 512,
        decoder_depth: int = 8,
        decoder_heads: int = 16,
        mask_ratio: float = 0.75,
        norm_pix_loss: bool = True,
    ) -> None:
        super().__init__()
        kept_patches(spec.num_patches, mask_ratio)  # validates the ratio
        self.spec, self.mask_ratio, self.norm_pix_loss = spec, mask_ratio, norm_pix_loss
        self.encoder = build_encoder(spec)
        self.decoder_embed = nn.Linear(spec.embed_dim, decoder_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_dim))
        pos = sincos_pos_embed_2d(decoder_dim, spec.grid_size)  # [1, 1 + L, Dd]
        self.decoder_pos_embed = nn.Parameter(pos, requires_grad=False)
        self.decoder_blocks = nn.Sequential(
            *[Block(decoder_dim, decoder_heads, spec.mlp_ratio, qkv_bias=True) for _ in range(decoder_depth)]
        )  # pre-norm blocks with LayerNorm(eps=1e-6), as in the encoder
        self.decoder_norm = LayerNorm(decoder_dim)
        self.decoder_pred = nn.Linear(decoder_dim, spec.patch_size**2 * 3)
        self._init_decoder()

    def _init_decoder(self) -> None:
        """MAE's initialisation of the decoder: Xavier-uniform linear layers, zero biases, mask token N(0, 0.02)."""
        nn.init.normal_(self.mask_token, std=0.02)
        for module in [self.decoder_embed, *self.decoder_blocks.modules(), self.decoder_pred]:
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)

    def patchify(self, imgs: torch.Tensor) -> torch.Tensor:
        """Images ``[N, 3, H, W]`` → patches ``[N, L, p*p*3]``, row-major, pixels in (row, col, channel) order."""
        p, g = self.spec.patch_size, self.spec.grid_size
        x = imgs.reshape(imgs.shape[0], 3, g, p, g, p)  # [N, 3, g, p, g, p]
        x = torch.einsum("nchpwq->nhwpqc", x)  # [N, g, g, p, p, 3]
        return x.reshape(imgs.shape[0], g * g, p * p * 3)  # [N, L, p*p*3]

    def unpatchify(self, x: torch.Tensor) -> torch.Tensor:
        """Patches ``[N, L, p*p*3]`` → images ``[N, 3, H, W]`` (the inverse of ``patchify``)."""
        p, g = self.spec.patch_size, self.spec.grid_size
        x = x.reshape(x.shape[0], g, g, p, p, 3)  # [N, g, g, p, p, 3]
        x = torch.einsum("nhwpqc->nchpwq", x)  # [N, 3, g, p, g, p]
        return x.reshape(x.shape[0], 3, g * p, g * p)  # [N, 3, H, W]

    @staticmethod
    def random_masking(
        x: torch.Tensor, mask_ratio: float, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Keep a random subset of round(L·(1 − mask_ratio)) tokens per sample (argsort of uniform noise).

        Returns the kept tokens ``[N, K, D]`` (in shuffled order), the mask ``[N, L]`` (1 = removed, in the
        original order) and ``ids_restore`` ``[N, L]``, which puts shuffled positions back in order.
        """
        n, length, dim = x.shape
        keep = kept_patches(length, mask_ratio)
        noise_device = generator.device if generator is not None else x.device
        noise = torch.rand(n, length, generator=generator, device=noise_device).to(x.device)  # [N, L]
        ids_shuffle = torch.argsort(noise, dim=1)  # [N, L], ascending: the first K are kept
        ids_restore = torch.argsort(ids_shuffle, dim=1)  # [N, L]
        ids_keep = ids_shuffle[:, :keep]  # [N, K]
        x_kept = torch.gather(x, 1, ids_keep[:, :, None].expand(-1, -1, dim))  # [N, K, D]
        mask = torch.ones(n, length, device=x.device)  # [N, L] in shuffled order
        mask[:, :keep] = 0
        mask = torch.gather(mask, 1, ids_restore)  # [N, L] in patch order
        return x_kept, mask, ids_restore

    def forward_encoder(
        self, imgs: torch.Tensor, mask_ratio: float, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Encode [CLS] and the kept patches: latent ``[N, 1 + K, D]``, mask ``[N, L]``, ids_restore ``[N, L]``."""
        enc = self.encoder
        x = enc.patch_embed(imgs)  # [N, L, D]
        x = x + enc.pos_embed[:, 1:]  # [N, L, D]
        x, mask, ids_restore = self.random_masking(x, mask_ratio, generator)  # [N, K, D]
        cls = (enc.cls_token + enc.pos_embed[:, :1]).expand(x.shape[0], -1, -1)  # [N, 1, D]
        x = torch.cat([cls, x], dim=1)  # [N, 1 + K, D]
        x = enc.blocks(x)  # [N, 1 + K, D]
        return enc.norm(x), mask, ids_restore  # [N, 1 + K, D]

    def forward_decoder(self, latent: torch.Tensor, ids_restore: torch.Tensor) -> torch.Tensor:
        """Predict every patch from the latent of the kept ones: ``[N, L, p*p*3]`` (normalised pixels)."""
        x = self.decoder_embed(latent)  # [N, 1 + K, Dd]
        n, length = ids_restore.shape
        masks = self.mask_token.expand(n, length + 1 - x.shape[1], -1)  # [N, L - K, Dd]
        x_ = torch.cat([x[:, 1:], masks], dim=1)  # [N, L, Dd] in shuffled order
        x_ = torch.gather(x_, 1, ids_restore[:, :, None].expand(-1, -1, x.shape[2]))  # [N, L, Dd] in patch order
        x = torch.cat([x[:, :1], x_], dim=1) + self.decoder_pos_embed  # [N, 1 + L, Dd]
        x = self.decoder_norm(self.decoder_blocks(x))  # [N, 1 + L, Dd]
        return self.decoder_pred(x)[:, 1:]  # [N, L, p*p*3]

    def patch_target(self, imgs: torch.Tensor) -> torch.Tensor:
        """What the decoder predicts: each patch's pixels, normalised to zero mean and unit variance when
        ``norm_pix_loss``: ``[N, L, p*p*3]``."""
        target = self.patchify(imgs).float()  # [N, L, p*p*3]
        if not self.norm_pix_loss:
            return target
        mean, var = target.mean(dim=-1, keepdim=True), target.var(dim=-1, keepdim=True)  # [N, L, 1]
        return (target - mean) / (var + 1e-6) ** 0.5  # [N, L, p*p*3]

    def prediction_to_pixels(self, pred: torch.Tensor, imgs: torch.Tensor) -> torch.Tensor:
        """Undo ``patch_target``'s normalisation with the per-patch mean and variance of ``imgs``: ``[N, L, p*p*3]``."""
        if not self.norm_pix_loss:
            return pred
        patches = self.patchify(imgs).float()  # [N, L, p*p*3]
        mean, var = patches.mean(dim=-1, keepdim=True), patches.var(dim=-1, keepdim=True)  # [N, L, 1]
        return pred * (var + 1e-6) ** 0.5 + mean  # [N, L, p*p*3]

    def forward_loss(self, imgs: torch.Tensor, pred: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Mean squared error per patch, averaged over removed patches only (a scalar)."""
        target = self.patch_target(imgs)  # [N, L, p*p*3]
        loss = ((pred.float() - target) ** 2).mean(dim=-1)  # [N, L]
        return (loss * mask).sum() / mask.sum()  # []

    def forward(
        self, imgs: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Mask, encode, decode: (loss ``[]``, pred ``[N, L, p*p*3]``, mask ``[N, L]``)."""
        latent, mask, ids_restore = self.forward_encoder(imgs, self.mask_ratio, generator)  # [N, 1 + K, D]
        pred = self.forward_decoder(latent, ids_restore)  # [N, L, p*p*3]
        return self.forward_loss(imgs, pred, mask), pred, mask

    @torch.no_grad()
    def reconstruct(self, imgs: torch.Tensor, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Images for a figure, each ``[N, 3, H, W]`` in the input's pixel space (call in eval mode).

        ``masked``: the input with removed patches set to 0; ``reconstruction``: the prediction of every
        patch; ``pasted``: visible patches from the input, removed ones from the prediction; ``mask``:
        ``[N, 1, H, W]``, 1 where a patch was removed. With ``norm_pix_loss`` the model predicts each patch's
        shape but not its brightness or contrast: those are taken from the input's own patch (as in MAE's
        figures), so the reconstruction shows structure, not the absolute level of a removed patch.
        """
        _, pred, mask = self(imgs, generator)  # [N, L, p*p*3], [N, L]
        patch_mask = mask[:, :, None].expand_as(pred)  # [N, L, p*p*3]
        recon = self.unpatchify(self.prediction_to_pixels(pred, imgs))  # [N, 3, H, W]
        image_mask = self.unpatchify(patch_mask)  # [N, 3, H, W]
        return {
            "masked": imgs * (1 - image_mask),
            "reconstruction": recon,
            "pasted": imgs * (1 - image_mask) + recon * image_mask,
            "mask": image_mask[:, :1],
        }

    def encoder_state_dict(self) -> dict[str, torch.Tensor]:
        """The encoder's weights only, keyed as in a bare ``build_encoder`` ViT (what ``load_encoder`` takes)."""
        return self.encoder.state_dict()

    def flops_per_image(self) -> float:
        """Forward FLOPs per image of one MAE step (matmuls only): encoder on the kept tokens, then the decoder."""
        spec, tokens = self.spec, 1 + self.spec.num_patches
        dd = self.decoder_embed.out_features
        kept = 1 + kept_patches(spec.num_patches, self.mask_ratio)
        embed = 2.0 * kept * spec.embed_dim * dd
        blocks = len(self.decoder_blocks) * transformer_block_flops(tokens, dd, spec.mlp_ratio)
        pred = 2.0 * tokens * dd * self.decoder_pred.out_features
        return encoder_flops(spec, self.mask_ratio) + embed + blocks + pred
