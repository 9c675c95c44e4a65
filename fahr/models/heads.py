"""FaceAge and FaceSurvival: a linear head on the encoder's [CLS] feature; loading MAE weights; checkpoints.

Checkpoints hold plain tensors and Python types only, so ``torch.load(path, weights_only=True)`` reads them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from timm.models.vision_transformer import VisionTransformer
from torch import nn

from fahr.core.errors import CheckpointError
from fahr.core.provenance import atomic_path
from fahr.core.runtime import load_checkpoint

CHECKPOINT_FORMAT = "fahr-checkpoint-1"
_PLAIN_LEAVES = (type(None), bool, int, float, str)


class _LinearHeadModel(nn.Module):
    """A ViT encoder followed by one linear output per image."""

    def __init__(self, encoder: VisionTransformer) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(encoder.embed_dim, 1)
        nn.init.normal_(self.head.weight, std=0.01)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The normalised [CLS] feature of images ``[N, 3, H, W]``: ``[N, D]``."""
        return self.encoder(x)  # [N, D]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x)).squeeze(-1)  # [N]


class FaceAgeModel(_LinearHeadModel):
    """FaceAge: linear regression on [CLS]; ``forward`` returns the predicted age in years ``[N]``.

    The head works in standardised units, ``age = init_age + age_scale * (w·cls + b)`` (``init_age`` and
    ``age_scale`` are the training set's mean and SD, fixed buffers), so that the regression starts from the
    mean-age predictor and its weights need not grow to tens of years before the model predicts anything.
    """

    def __init__(self, encoder: VisionTransformer, init_age: float, age_scale: float = 1.0) -> None:
        super().__init__(encoder)
        nn.init.zeros_(self.head.bias)
        self.register_buffer("init_age", torch.tensor(float(init_age)))
        self.register_buffer("age_scale", torch.tensor(float(age_scale)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.init_age + self.age_scale * super().forward(x)  # [N] years


class FaceSurvivalModel(_LinearHeadModel):
    """FaceSurvival: ``forward`` returns a log-risk score ``[N]`` (higher = higher hazard, shorter survival).

    The bias starts at 0 (the Cox partial likelihood does not depend on it) and the weights near zero.
    """

    def __init__(self, encoder: VisionTransformer) -> None:
        super().__init__(encoder)
        nn.init.zeros_(self.head.bias)


def load_encoder(model: FaceAgeModel | FaceSurvivalModel, state_dict: dict[str, torch.Tensor]) -> None:
    """Load an encoder state dict (``MaskedAutoencoder.encoder_state_dict()``) into ``model.encoder``, strictly.

    Raises ValueError naming every missing, unexpected and wrongly shaped key.
    """
    expected = model.encoder.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    wrong_shape = [
        f"{k}: checkpoint {tuple(state_dict[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in sorted(set(expected) & set(state_dict))
        if state_dict[k].shape != expected[k].shape
    ]
    if missing or unexpected or wrong_shape:

        def listed(keys: list[str]) -> str:
            return f"({len(keys)}): {keys[:12]}" + (" …" if len(keys) > 12 else "")

        raise ValueError(
            "the encoder state dict does not fit this model's encoder "
            "(was it made with the same ViTSpec? pass MaskedAutoencoder.encoder_state_dict(), not the MAE's own):\n"
            f"  missing keys {listed(missing)}\n"
            f"  unexpected keys {listed(unexpected)}\n"
            f"  shape mismatches {listed(wrong_shape)}"
        )
    model.encoder.load_state_dict(state_dict, strict=True)


def _check_plain(obj: Any, where: str) -> None:
    """Raise TypeError unless ``obj`` is built only of tensors, None, bool, int, float, str, lists, tuples, dicts."""
    if isinstance(obj, torch.Tensor) or type(obj) in _PLAIN_LEAVES:
        return
    if isinstance(obj, list | tuple):
        for i, item in enumerate(obj):
            _check_plain(item, f"{where}[{i}]")
        return
    if isinstance(obj, dict):
        for key, value in obj.items():
            _check_plain(key, f"{where} key {key!r}")
            _check_plain(value, f"{where}[{key!r}]")
        return
    raise TypeError(
        f"{where} is a {type(obj).__module__}.{type(obj).__qualname__}; a checkpoint holds only tensors and "
        "plain Python types (convert it, e.g. float(x), str(path), x.tolist())"
    )


def save_checkpoint(path: Path, model: nn.Module, extra: dict[str, Any]) -> Path:
    """Write ``model``'s weights and ``extra`` (epoch, optimizer state, metrics…) atomically to ``path``."""
    _check_plain(extra, "extra")
    weights = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    payload = {"format": CHECKPOINT_FORMAT, "model": weights, "extra": extra}
    with atomic_path(Path(path)) as tmp:
        torch.save(payload, tmp)
    return Path(path)


def read_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint written by ``save_checkpoint`` (format checked); a missing, truncated or foreign file is a
    ``CheckpointError`` naming it."""
    payload = load_checkpoint(path)
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT or "extra" not in payload:
        raise CheckpointError(f"{path}: not a checkpoint written by fahr.models.save_checkpoint ({CHECKPOINT_FORMAT})")
    return payload


def load_weights(path: Path, model: nn.Module, payload: dict[str, Any] | None = None) -> dict[str, Any]:
    """Load weights written by ``save_checkpoint`` into ``model`` (strictly, on CPU) and return its ``extra``;
    ``payload``: the file's ``read_checkpoint``, if already read."""
    payload = payload if payload is not None else read_checkpoint(path)
    try:
        model.load_state_dict(payload["model"], strict=True)
    except (RuntimeError, KeyError) as err:  # another architecture or size
        raise CheckpointError(f"{path}: its weights do not fit this model ({str(err).splitlines()[0][:200]})") from None
    return payload["extra"]
