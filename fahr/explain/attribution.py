"""Attribution maps: each a signed per-pixel contribution ``[N, H, W]`` to a model's scalar output (years for
FaceAge, log hazard for FaceSurvival) relative to a baseline image.

- **occlusion** (captum ``Occlusion``): the output change when a square is replaced by the baseline, averaged
  over the squares covering a pixel. Slow but model-agnostic: the faithful reference.
- **integrated gradients** (captum ``IntegratedGradients``): gradients along the straight path from the
  baseline; the contributions sum to f(x) − f(baseline) (completeness).
- **grad-cam**: Grad-CAM on the patch tokens entering the last transformer block, weighted by the gradient
  of the output, reshaped to the patch grid and upsampled; kept signed (no ReLU) so that it can be ordered
  like the others. Chosen over attention rollout because rollout ignores the head: it would give FaceAge and
  FaceSurvival the same map wherever their encoders agree, which is exactly the comparison at stake.
"""

from __future__ import annotations

import time

import torch
from torch import nn

METHODS = ("occlusion", "integrated gradients", "grad-cam")
CONTROL = "random"  # a random ordering: the floor every map must beat


def check_inputs(model: nn.Module, x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[1] != 3 or not x.is_floating_point():
        shape = tuple(x.shape) if hasattr(x, "shape") else type(x).__name__
        raise ValueError(f"images must be a float tensor [N, 3, H, W], got {shape}")
    encoder = getattr(model, "encoder", None)
    size = getattr(getattr(encoder, "patch_embed", None), "img_size", None)
    if size is not None and tuple(x.shape[2:]) != tuple(size):
        raise ValueError(f"images are {tuple(x.shape[2:])} pixels but the model takes {tuple(size)}")


def as_baseline(x: torch.Tensor, baseline: torch.Tensor | float) -> torch.Tensor:
    b = torch.as_tensor(baseline, dtype=x.dtype)
    try:
        return b.expand_as(x).contiguous()
    except RuntimeError:
        raise ValueError(f"baseline of shape {tuple(b.shape)} does not broadcast to images {tuple(x.shape)}") from None


@torch.no_grad()
def forward(model: nn.Module, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """The model's scalar output ``[N]`` in batches."""
    return torch.cat([model(x[i : i + batch_size]).reshape(-1) for i in range(0, len(x), batch_size)])


def occlusion(
    model: nn.Module, x: torch.Tensor, baseline: torch.Tensor | float, window: int, stride: int, batch_size: int = 256
) -> torch.Tensor:
    """Occlusion map ``[N, H, W]``: f(x) − f(x with a window × window square set to the baseline), averaged over
    the squares covering each pixel (captum; ``batch_size`` images per forward)."""
    from captum.attr import Occlusion

    check_inputs(model, x)
    if not 1 <= window <= min(x.shape[2:]) or stride < 1:
        raise ValueError(f"occlusion window {window} and stride {stride} do not fit {tuple(x.shape[2:])} images")
    attr = Occlusion(model).attribute(
        x,
        sliding_window_shapes=(3, window, window),
        strides=(3, stride, stride),
        baselines=as_baseline(x, baseline),
        perturbations_per_eval=max(1, batch_size // len(x)),
    )
    return attr.mean(1)  # the square spans the channels: every channel holds the same value


def integrated_gradients(
    model: nn.Module, x: torch.Tensor, baseline: torch.Tensor | float, steps: int, batch_size: int = 256
) -> tuple[torch.Tensor, torch.Tensor]:
    """Integrated gradients (captum, Gauss–Legendre, ``steps`` points) summed over channels: ``[N, H, W]``, and
    the completeness error Σ attributions − (f(x) − f(baseline)) per photo ``[N]``."""
    from captum.attr import IntegratedGradients

    check_inputs(model, x)
    attr, delta = IntegratedGradients(model).attribute(
        x,
        baselines=as_baseline(x, baseline),
        n_steps=steps,
        internal_batch_size=batch_size,
        return_convergence_delta=True,
    )
    return attr.sum(1).detach(), delta.detach()


def grad_cam(model: nn.Module, x: torch.Tensor, batch_size: int = 128) -> torch.Tensor:
    """Signed Grad-CAM ``[N, H, W]`` on the patch tokens entering the last block (its first LayerNorm's output):
    Σ_d mean_tokens(∂f/∂a_d) · a_d per token, on the patch grid, bilinearly upsampled to the image."""
    check_inputs(model, x)
    encoder = getattr(model, "encoder", None)
    if encoder is None or not hasattr(encoder, "blocks"):
        raise ValueError("grad-cam needs a model with a timm VisionTransformer at .encoder")
    grid = encoder.patch_embed.grid_size
    prefix = encoder.num_prefix_tokens
    captured: list[torch.Tensor] = []
    handle = encoder.blocks[-1].norm1.register_forward_hook(lambda _m, _i, out: captured.append(out))
    maps = []
    try:
        for i in range(0, len(x), batch_size):
            captured.clear()
            with torch.enable_grad():
                out = model(x[i : i + batch_size].detach().requires_grad_(True))
                (grad,) = torch.autograd.grad(out.sum(), captured[0])
            tokens, grad = captured[0][:, prefix:].detach(), grad[:, prefix:]  # [n, L, D]
            cam = (tokens * grad.mean(1, keepdim=True)).sum(-1)  # [n, L]
            maps.append(cam.reshape(-1, 1, *grid))
    finally:
        handle.remove()
    cam = torch.cat(maps)
    return nn.functional.interpolate(cam, size=x.shape[2:], mode="bilinear", align_corners=False)[:, 0]


def attribute(
    model: nn.Module, x: torch.Tensor, baseline: torch.Tensor, settings, methods=METHODS
) -> tuple[dict[str, torch.Tensor], dict[str, float], torch.Tensor]:
    """Every map of ``methods`` with the settings of ``cfg.saliency``: (maps, seconds per method, IG
    completeness error)."""
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        raise ValueError(f"unknown saliency methods {unknown}; methods: {', '.join(METHODS)}")
    maps, seconds, delta = {}, {}, torch.zeros(len(x))
    for method in methods:
        started = time.perf_counter()
        if method == "occlusion":
            maps[method] = occlusion(model, x, baseline, settings.occlusion_window, settings.occlusion_stride)
        elif method == "integrated gradients":
            maps[method], delta = integrated_gradients(model, x, baseline, settings.ig_steps)
        else:
            maps[method] = grad_cam(model, x)
        seconds[method] = time.perf_counter() - started
    return maps, seconds, delta
