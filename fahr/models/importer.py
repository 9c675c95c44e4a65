"""Importing published checkpoints (the authors' ``fahr_face.pth`` and ``fahr_faceage.pth``) into the project's
timm encoder (``fahr.models.vit``) and FaceAge head (``fahr.models.heads``).

A file is read with ``torch.load(weights_only=True)`` (never arbitrary unpickling), unwrapped (``model_state_dict``,
``state_dict``, ``model``; ``module.`` and ``_orig_mod.`` prefixes) and its key layout detected:

- ``hf-vit``: Hugging Face ``transformers`` ViT (``ViTModel``, under any prefix such as ``vit.``), with the module
  names of transformers 4 (``encoder.layer.N.attention.attention.query``) or of transformers 5
  (``layers.N.attention.q_proj``); its pooler (dense + tanh), when present, is reported and not used;
- ``hf-vitmae``: the same encoder with a ViTMAE decoder beside it (reported, not imported: the project's MAE
  decoder is its own);
- ``timm``: timm's ``VisionTransformer`` names (``blocks.N.attn.qkv``), MAE's decoder beside it reported likewise.

The encoder is mapped onto timm's (separate query/key/value fused into ``qkv``), the age head found by its shape
(a ``[1, D]`` weight and a ``[1]`` bias, whatever its name). The import is strict: every tensor of the file is used
or reported, every tensor of the model filled, or a ``WeightsImportError`` lists what is left on both sides.

What the file cannot say is assumed and recorded: the layer-norm epsilon (1e-12 for Hugging Face, 1e-6 for timm),
the number of heads (width / 64 unless given), and the input normalisation, which is folded into the patch
embedding so that the imported model takes the project's images (RGB in [0, 1]) like every other model here.
"""

from __future__ import annotations

import functools
import hashlib
import math
import pickle
import re
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fahr.core import runtime
from fahr.core.cache import digest
from fahr.models.heads import CHECKPOINT_FORMAT, FaceAgeModel, save_checkpoint
from fahr.models.vit import ViTSpec, build_encoder, sincos_pos_embed_2d

IMPORTER_VERSION = 1
KINDS = ("foundation", "faceage")
# input normalisation (per-channel mean, std of RGB in [0, 1]) the published models are assumed to expect
NORMALISATIONS: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),  # MAE's and HF ViTMAE's image processor
    "half": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),  # HF ViTImageProcessor's default, ArcFace-style (x - 127.5) / 127.5
    "none": ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
}
HEAD_DIM = 64  # width per attention head of every standard ViT (Ti, S, B, L): how heads are inferred
_WRAPPERS = ("model_state_dict", "state_dict", "model", "module")
_STRIPPED_PREFIXES = ("module.", "_orig_mod.")
_DECODER = re.compile(r"(^|\.)(decoder_embed|decoder_pos_embed|decoder_blocks|decoder_layers|decoder_norm|decoder_pred)"
                      r"(\.|$)|(^|\.)decoder\.mask_token$|^mask_token$")  # fmt: skip
_DECODER_NOTE = "MAE decoder: not imported (the project's MAE decoder is its own, rebuilt by pretraining)"


class WeightsImportError(ValueError):
    """A file that cannot be imported, with what is unmatched on both sides and the layouts tried."""


@dataclass(frozen=True)
class _Rule:
    """One tensor of the project's model, made from ``sources`` of the file by ``make``."""

    sources: tuple[str, ...]
    make: Callable[..., torch.Tensor] = lambda t: t


@dataclass
class _Layout:
    """A layout found in the file: its encoder's prefix, naming, and the rules that fill the project's encoder."""

    name: str  # hf-vit, hf-vitmae or timm
    prefix: str
    naming: str | None  # Hugging Face: "transformers 4" or "transformers 5"
    layer_keys: dict[str, str]  # timm block module name → the file's, with "{i}" for the block index
    extras: dict[str, str] = field(default_factory=dict)  # file keys under the prefix, reported unused, and why


@dataclass(frozen=True)
class ImportedModel:
    """An imported foundation encoder (``model`` is the timm ViT) or FaceAge model, its spec and provenance."""

    kind: str
    model: nn.Module
    spec: ViTSpec
    provenance: dict[str, Any]


# ----------------------------------------------------------------------------------------------- reading the file


def file_sha256(path: Path) -> str:
    """The SHA-256 (hex) of a file's bytes, computed once per (path, size, modification time) in a process."""
    stat = Path(path).stat()
    return _sha256(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


@functools.cache
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 24), b""):
            sha.update(block)
    return sha.hexdigest()


def read_file(path: Path) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU (memory-mapped when the format allows), with a clear error
    for a file that holds other objects than tensors and plain Python types."""
    path = Path(path)
    try:
        runtime.check_checkpoint_file(path)
    except runtime.CheckpointError as err:
        raise WeightsImportError(str(err)) from None
    try:
        try:
            return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as err:  # the legacy (non-zip) format cannot be memory-mapped
            if "mmap" not in str(err):
                raise
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if "weights_only" not in str(err) and "Weights only" not in str(err):
            raise WeightsImportError(f"{path}: not a readable checkpoint ({runtime.unreadable_reason(err)})") from None
        raise WeightsImportError(
            f"{path} holds objects other than tensors and plain Python types, which fahr never unpickles "
            f"(torch.load(weights_only=True) refused: {str(err).splitlines()[0]}). Re-save only the weights: "
            "torch.save({'model_state_dict': model.state_dict()}, 'weights.pth')"
        ) from None
    except Exception as err:  # truncated zip, EOF, garbage bytes …
        raise WeightsImportError(f"{path}: not a readable checkpoint ({runtime.unreadable_reason(err)})") from None


def is_project_checkpoint(payload: Any) -> bool:
    """Whether a loaded file was written by ``fahr.models.save_checkpoint``."""
    return isinstance(payload, dict) and payload.get("format") == CHECKPOINT_FORMAT


def _is_state_dict(obj: Any) -> bool:
    return isinstance(obj, dict) and bool(obj) and all(isinstance(v, torch.Tensor) for v in obj.values())


def _count_tensors(obj: Any) -> int:
    if isinstance(obj, torch.Tensor):
        return 1
    if isinstance(obj, dict):
        return sum(_count_tensors(v) for v in obj.values())
    if isinstance(obj, list | tuple):
        return sum(_count_tensors(v) for v in obj)
    return 0


def _describe(obj: Any) -> str:
    """A short description of a non-weight entry of the file (an optimizer state, an epoch number…)."""
    tensors = _count_tensors(obj)
    if tensors:
        return f"{type(obj).__name__} with {tensors} tensors, not used"
    text = repr(obj)
    return f"{type(obj).__name__} {text[:60]}{'…' if len(text) > 60 else ''}"


def unwrap(payload: Any, source: str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The model's state dict inside a loaded file and a description of everything else in it.

    Accepts a bare state dict or one under ``model_state_dict``, ``state_dict``, ``model`` or ``module`` (nested
    too); strips the ``module.`` (DDP) and ``_orig_mod.`` (torch.compile) prefixes of every key."""
    others: dict[str, str] = {}
    trail = ""
    while not _is_state_dict(payload):
        if not isinstance(payload, dict):
            raise WeightsImportError(f"{source}: expected a state dict (or a dict holding one), found {type(payload)}")
        wrapper = next((k for k in _WRAPPERS if isinstance(payload.get(k), dict)), None)
        if wrapper is None:
            raise WeightsImportError(f"{source}: no state dict in the file: its top-level keys are {sorted(payload)}; "
                                     f"expected a dict of tensors or one under {', '.join(_WRAPPERS)}")  # fmt: skip
        others.update({f"{trail}{k}": _describe(v) for k, v in payload.items() if k != wrapper})
        trail += f"{wrapper}/"
        payload = payload[wrapper]
    state = {}
    for key, value in payload.items():
        name = key
        while name.startswith(_STRIPPED_PREFIXES):
            name = name.removeprefix("module.").removeprefix("_orig_mod.")
        if name in state:
            raise WeightsImportError(f"{source}: two tensors become {name!r} once module./_orig_mod. are stripped")
        state[name] = value
    return state, others


# ------------------------------------------------------------------------------------------------ layout detection

_HF_NAMING = {
    "transformers 4": {
        "layer": "encoder.layer.{i}.", "norm1": "layernorm_before", "norm2": "layernorm_after",
        "q": "attention.attention.query", "k": "attention.attention.key", "v": "attention.attention.value",
        "attn.proj": "attention.output.dense", "mlp.fc1": "intermediate.dense", "mlp.fc2": "output.dense",
    },
    "transformers 5": {
        "layer": "layers.{i}.", "norm1": "layernorm_before", "norm2": "layernorm_after",
        "q": "attention.q_proj", "k": "attention.k_proj", "v": "attention.v_proj",
        "attn.proj": "attention.o_proj", "mlp.fc1": "mlp.fc1", "mlp.fc2": "mlp.fc2",
    },
}  # fmt: skip
_HF_ANCHOR = "embeddings.patch_embeddings.projection.weight"
_TIMM_ANCHOR = "patch_embed.proj.weight"
_TIMM_LAYER = {"layer": "blocks.{i}.", "norm1": "norm1", "norm2": "norm2", "qkv": "attn.qkv",
               "attn.proj": "attn.proj", "mlp.fc1": "mlp.fc1", "mlp.fc2": "mlp.fc2"}  # fmt: skip


def _prefixes(state: dict[str, torch.Tensor], anchor: str) -> list[str]:
    return sorted(k[: -len(anchor)] for k in state if k == anchor or k.endswith("." + anchor))


def _find_hf(state: dict[str, torch.Tensor]) -> tuple[_Layout | None, str]:
    prefixes = _prefixes(state, _HF_ANCHOR)
    if len(prefixes) != 1:
        return None, f"{len(prefixes)} keys end in {_HF_ANCHOR!r} (one encoder expected)"
    prefix = prefixes[0]
    naming = next((n for n, names in _HF_NAMING.items()
                   if any(k.startswith(prefix + names["layer"].split("{")[0]) for k in state)), None)  # fmt: skip
    if naming is None:
        return None, f"no transformer layers under {prefix!r} (neither encoder.layer.N. nor layers.N.)"
    decoder = any(_DECODER.search(k) for k in state)
    pooler = "Hugging Face pooler (dense + tanh): the age head is taken to read the layer-normed [CLS] token instead"
    extras = {
        prefix + "pooler.dense.weight": pooler,
        prefix + "pooler.dense.bias": pooler,
        prefix + "embeddings.mask_token": "mask token of masked image modelling, unused at inference",
    }
    return _Layout("hf-vitmae" if decoder else "hf-vit", prefix, naming, _HF_NAMING[naming], extras), ""


def _find_timm(state: dict[str, torch.Tensor]) -> tuple[_Layout | None, str]:
    prefixes = _prefixes(state, _TIMM_ANCHOR)
    if len(prefixes) != 1:
        return None, f"{len(prefixes)} keys end in {_TIMM_ANCHOR!r} (one encoder expected)"
    return _Layout("timm", prefixes[0], None, _TIMM_LAYER), ""


# ----------------------------------------------------------------------------------------------------- mapping


def _depth(state: dict[str, torch.Tensor], layout: _Layout) -> int:
    """Blocks in the file: the indices N of ``<prefix><layer N>.`` keys, which must run 0…depth-1."""
    start = layout.prefix + layout.layer_keys["layer"].split("{")[0]
    found = {int(m.group(1)) for k in state if (m := re.match(re.escape(start) + r"(\d+)\.", k))}
    if found and found != set(range(max(found) + 1)):
        raise WeightsImportError(f"the blocks under {start!r} are numbered {sorted(found)}, not 0…{max(found)}")
    return len(found)


def _encoder_rules(layout: _Layout, depth: int) -> dict[str, _Rule]:
    """For every tensor of the project's timm encoder, the file's tensors that make it."""
    p, names = layout.prefix, layout.layer_keys
    if layout.name == "timm":
        rules = {k: _Rule((p + k,)) for k in ("cls_token", "pos_embed", "norm.weight", "norm.bias")}
        rules |= {f"patch_embed.proj.{w}": _Rule((f"{p}patch_embed.proj.{w}",)) for w in ("weight", "bias")}
    else:
        rules = {"cls_token": _Rule((p + "embeddings.cls_token",)),
                 "pos_embed": _Rule((p + "embeddings.position_embeddings",)),
                 "norm.weight": _Rule((p + "layernorm.weight",)),
                 "norm.bias": _Rule((p + "layernorm.bias",))}  # fmt: skip
        rules |= {f"patch_embed.proj.{w}": _Rule((f"{p}embeddings.patch_embeddings.projection.{w}",))
                  for w in ("weight", "bias")}  # fmt: skip
    for i in range(depth):
        layer = p + names["layer"].format(i=i)
        for w in ("weight", "bias"):
            for ours in ("norm1", "norm2", "attn.proj", "mlp.fc1", "mlp.fc2"):
                rules[f"blocks.{i}.{ours}.{w}"] = _Rule((f"{layer}{names[ours]}.{w}",))
            if "qkv" in names:
                rules[f"blocks.{i}.attn.qkv.{w}"] = _Rule((f"{layer}{names['qkv']}.{w}",))
            else:  # separate query, key, value → timm's fused qkv, [3D, D] weight and [3D] bias
                qkv = tuple(f"{layer}{names[x]}.{w}" for x in ("q", "k", "v"))
                rules[f"blocks.{i}.attn.qkv.{w}"] = _Rule(qkv, lambda q, k, v: torch.cat([q, k, v], dim=0))
    return rules


def _find_head(leftover: dict[str, torch.Tensor], width: int) -> list[str]:
    """Modules of the file whose weight is ``[1, width]`` and bias ``[1]``: linear regression heads."""
    heads = []
    for key, value in leftover.items():
        if key.endswith(".weight") and tuple(value.shape) == (1, width):
            bias = leftover.get(key.removesuffix(".weight") + ".bias")
            if bias is not None and tuple(bias.shape) == (1,):
                heads.append(key.removesuffix(".weight"))
    return sorted(heads)


def _resized_pos_embed(pos: torch.Tensor, grid: int, kind: str) -> torch.Tensor:
    """``pos`` ``[1, 1 + g², D]`` at another grid: sin-cos recomputed, learned ones interpolated bicubically (as
    Hugging Face and timm do); [CLS]'s entry is kept."""
    dim = pos.shape[-1]
    if kind == "sin-cos":
        patches = sincos_pos_embed_2d(dim, grid, cls_token=False)  # [1, grid², D]
    else:
        old = math.isqrt(pos.shape[1] - 1)
        square = pos[:, 1:].reshape(1, old, old, dim).permute(0, 3, 1, 2).double()  # [1, D, g, g]
        square = nn.functional.interpolate(square, size=(grid, grid), mode="bicubic", align_corners=False)
        patches = square.permute(0, 2, 3, 1).reshape(1, grid * grid, dim).float()  # [1, grid², D]
    return torch.cat([pos[:, :1], patches], dim=1)  # [1, 1 + grid², D]


def _fold_normalisation(weight: torch.Tensor, bias: torch.Tensor, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The patch embedding that gives on ``x`` what ``(weight, bias)`` gives on ``(x - mean) / std``: exact, since the
    patch convolution is linear and has no padding."""
    mean, std = (torch.tensor(v, dtype=torch.float64) for v in NORMALISATIONS[name])
    w = weight.double() / std[None, :, None, None]  # [D, 3, p, p]
    b = bias.double() - (w * mean[None, :, None, None]).sum(dim=(1, 2, 3))  # [D]
    return w.float(), b.float()


def _position_kind(pos: torch.Tensor) -> str:
    """``sin-cos`` when the patch positions are MAE's fixed 2-D sine-cosine embedding, else ``learned``."""
    grid = math.isqrt(pos.shape[1] - 1)
    if grid * grid != pos.shape[1] - 1 or pos.shape[-1] % 4:
        return "learned"
    reference = sincos_pos_embed_2d(pos.shape[-1], grid, cls_token=False)  # [1, L, D]
    return "sin-cos" if torch.allclose(pos[:, 1:].float(), reference, atol=1e-4) else "learned"


def _decoder_summary(state: dict[str, torch.Tensor], keys: list[str]) -> dict[str, int] | None:
    """Width, depth and tensor count of an MAE decoder found in the file (None without one)."""
    if not keys:
        return None
    embed = next((k for k in keys if re.search(r"decoder_embed\.weight$", k)), None)
    blocks = {m.group(1) for k in keys if (m := re.search(r"decoder_(?:layers|blocks)\.(\d+)\.", k))}
    return {"tensors": len(keys), "width": int(state[embed].shape[0]) if embed else -1, "depth": len(blocks)}


def _listed(items: list[str], limit: int = 40) -> str:
    shown = "\n".join(f"    {item}" for item in items[:limit])
    return (shown + (f"\n    … and {len(items) - limit} more" if len(items) > limit else "")) or "    (none)"


def _shape(state: dict[str, torch.Tensor], key: str) -> str:
    return f"{key} {list(state[key].shape)}"


# ------------------------------------------------------------------------------------------------------ import


def import_state(
    state: dict[str, torch.Tensor],
    kind: str,
    source: str,
    *,
    normalisation: str = "imagenet",
    image_size: int | None = None,
    num_heads: int | None = None,
    drop_path: float = 0.0,
) -> ImportedModel:
    """Map an unwrapped state dict onto the project's encoder (``kind="foundation"``) or FaceAge model
    (``kind="faceage"``), strictly. ``image_size`` (pixels) defaults to the file's own; ``num_heads`` to width / 64."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if normalisation not in NORMALISATIONS:
        raise ValueError(f"normalisation must be one of {sorted(NORMALISATIONS)}, got {normalisation!r}")
    tried, layout = [], None
    for name, finder in (("hf-vit / hf-vitmae", _find_hf), ("timm", _find_timm)):
        found, why = finder(state)
        tried.append(f"{name}: {why or 'found'}")
        layout = layout or found
    if layout is None:
        raise WeightsImportError(
            f"cannot import {source} as {kind}: no layout the importer knows.\nlayouts tried:\n"
            + "\n".join(f"  {t}" for t in tried)
            + f"\nfile tensors not matched ({len(state)}):\n{_listed([_shape(state, k) for k in sorted(state)])}"
        )
    depth = _depth(state, layout)
    rules = _encoder_rules(layout, depth)
    config, heads_note = _infer_spec(state, rules, layout, depth, num_heads)
    eps = 1e-6 if layout.name == "timm" else 1e-12  # not in the file: each library's default
    spec = ViTSpec(image_size or config["image_size"], config["patch_size"], config["embed_dim"], depth,
                   config["num_heads"], config["mlp_ratio"], drop_path, eps)  # fmt: skip
    encoder = build_encoder(spec)
    filled, unfilled, used = _fill(rules, encoder.state_dict(), state)
    unused, head, unmatched = _leftover(state, used, layout, kind, config["embed_dim"])
    if kind == "faceage" and head is None:
        unfilled.append("head.weight [1, D], head.bias [1] (the age regression head: no single module of the file "
                        "has a [1, D] weight and a [1] bias)")  # fmt: skip
    wrong = [f"{t}: file {list(v.shape)} vs model {list(encoder.state_dict()[t].shape)}" for t, v in filled.items()
             if t != "pos_embed" and v.shape != encoder.state_dict()[t].shape]  # fmt: skip
    if unfilled or unmatched or wrong:
        where = f"encoder under {layout.prefix!r}" + (f", {layout.naming} names" if layout.naming else "")
        raise WeightsImportError(
            f"cannot import {source} as {kind}: the {layout.name} layout ({where}) does not match it exactly.\n"
            "layouts tried:\n" + "\n".join(f"  {t}" for t in tried) + "\n"
            f"file tensors not matched ({len(unmatched)}):\n{_listed(unmatched)}\n"
            f"model tensors not filled ({len(unfilled)}):\n{_listed(unfilled)}\n"
            f"shape mismatches ({len(wrong)}):\n{_listed(wrong)}"
        )
    position = _position_kind(filled["pos_embed"])
    _prepare_embeddings(filled, spec, config["image_size"], position, normalisation, source)
    encoder.load_state_dict(filled, strict=True)
    model = encoder if head is None else _faceage(encoder, state, head)
    provenance = {
        "importer_version": IMPORTER_VERSION, "kind": kind, "layout": layout.name, "hf_naming": layout.naming,
        "prefix": layout.prefix, "file_config": config, "num_heads": heads_note, "image_size": spec.img_size,
        "position_embedding": position, "position_embedding_resized": spec.img_size != config["image_size"],
        "layer_norm_eps": eps, "layer_norm_eps_note": "assumed: the library's default (not in the file)",
        "normalisation": _normalisation_record(normalisation), "age_head": head,
        "age_head_note": "output taken as years (init_age 0, age_scale 1)" if head else None,
        "dtype": str(state[rules["patch_embed.proj.weight"].sources[0]].dtype).removeprefix("torch."),
        "mae_decoder": _decoder_summary(state, unused.get(_DECODER_NOTE, [])), "unused": unused,
    }  # fmt: skip
    return ImportedModel(kind, model.eval(), spec, provenance)


def _infer_spec(
    state: dict[str, torch.Tensor], rules: dict[str, _Rule], layout: _Layout, depth: int, num_heads: int | None
) -> tuple[dict[str, Any], str]:
    """Depth, width, heads, patch, MLP ratio and image size of the file's ViT, from the shapes of its tensors."""
    keys = [rules[k].sources[0] for k in ("patch_embed.proj.weight", "pos_embed", "blocks.0.mlp.fc1.weight")]
    missing = [k for k in keys if k not in state]
    if missing or depth == 0:
        raise WeightsImportError(f"the {layout.name} encoder under {layout.prefix!r} lacks {missing or 'its blocks'}")
    patch_weight, pos, fc1 = (state[k] for k in keys)  # [D, 3, p, p], [1, 1 + L, D], [hidden, D]
    width, channels, patch, patch_w = patch_weight.shape
    grid = math.isqrt(pos.shape[1] - 1)
    if channels != 3 or patch != patch_w or pos.ndim != 3 or grid * grid != pos.shape[1] - 1:
        raise WeightsImportError(
            f"unsupported ViT: patch embedding {list(patch_weight.shape)} (3 channels, square patches expected) and "
            f"position embedding {list(pos.shape)} ([1, 1 + grid², D] expected, [CLS] included)"
        )
    heads_note = "given"
    if num_heads is None:
        if width % HEAD_DIM:
            raise WeightsImportError(f"cannot infer the number of heads of a {width}-wide ViT (not a multiple of "
                                     f"{HEAD_DIM}): give it (--num-heads)")  # fmt: skip
        num_heads, heads_note = width // HEAD_DIM, f"inferred: width / {HEAD_DIM} (not in the file)"
    config = {"depth": depth, "embed_dim": int(width), "num_heads": int(num_heads), "patch_size": int(patch),
              "image_size": int(grid * patch), "mlp_ratio": fc1.shape[0] / width}  # fmt: skip
    return config, heads_note


def _fill(
    rules: dict[str, _Rule], expected: dict[str, torch.Tensor], state: dict[str, torch.Tensor]
) -> tuple[dict[str, torch.Tensor], list[str], set[str]]:
    """The project's encoder tensors made from the file's (fp32), the ones that cannot be made, the file keys used."""
    filled, unfilled, used = {}, [], set()
    for target, like in expected.items():
        rule = rules.get(target)
        absent = [s for s in rule.sources if s not in state] if rule else []
        if rule is None or absent:
            unfilled.append(f"{target} {list(like.shape)}" + (f" (needs {absent})" if absent else ""))
            continue
        filled[target] = rule.make(*(state[s] for s in rule.sources)).float()
        used.update(rule.sources)
    return filled, unfilled, used


def _leftover(
    state: dict[str, torch.Tensor], used: set[str], layout: _Layout, kind: str, width: int
) -> tuple[dict[str, list[str]], str | None, list[str]]:
    """What the encoder did not use: tensors reported as unused (by reason), the age head, and the unmatched rest."""
    leftover = {k: v for k, v in state.items() if k not in used}
    unused: dict[str, list[str]] = {}
    for key in sorted(leftover):
        if key in layout.extras:
            unused.setdefault(layout.extras[key], []).append(key)
        elif _DECODER.search(key):
            unused.setdefault(_DECODER_NOTE, []).append(key)
    heads = _find_head(leftover, width)
    head = heads[0] if kind == "faceage" and len(heads) == 1 else None
    for other in (h for h in heads if h != head):
        why = "a [1, D] regression head: " + ("one of several candidates" if kind == "faceage" else "not used by a "
                                               "foundation import")  # fmt: skip
        unused.setdefault(why, []).extend([other + ".weight", other + ".bias"])
    reported = {k for keys in unused.values() for k in keys} | ({head + ".weight", head + ".bias"} if head else set())
    if kind == "faceage" and len(heads) > 1:
        reported -= {k for h in heads for k in (h + ".weight", h + ".bias")}  # ambiguous: listed as unmatched
    return unused, head, [_shape(state, k) for k in sorted(leftover) if k not in reported]


def _prepare_embeddings(
    filled: dict[str, torch.Tensor], spec: ViTSpec, file_size: int, position: str, normalisation: str, source: str
) -> None:
    """Resize the position embedding to ``spec``'s grid (with a warning) and fold the normalisation into the patch
    embedding, in place."""
    if spec.img_size != file_size:
        how = "recomputed" if position == "sin-cos" else "interpolated bicubically"
        warnings.warn(
            f"{source}: the position embedding of a {file_size}-px model ({file_size // spec.patch_size}² patches) "
            f"is {how} for {spec.img_size}-px input ({spec.grid_size}² patches): predictions will differ from the "
            "published model's at its own size",
            stacklevel=3,
        )
        filled["pos_embed"] = _resized_pos_embed(filled["pos_embed"], spec.grid_size, position)
    filled["patch_embed.proj.weight"], filled["patch_embed.proj.bias"] = _fold_normalisation(
        filled["patch_embed.proj.weight"], filled["patch_embed.proj.bias"], normalisation
    )


def _faceage(encoder: nn.Module, state: dict[str, torch.Tensor], head: str) -> FaceAgeModel:
    """The FaceAge model of an imported encoder and age head; the head's output is taken as years."""
    model = FaceAgeModel(encoder, init_age=0.0, age_scale=1.0)
    with torch.no_grad():
        model.head.weight.copy_(state[head + ".weight"].float())  # [1, D]
        model.head.bias.copy_(state[head + ".bias"].float())  # [1]
    return model


def _normalisation_record(name: str) -> dict[str, Any]:
    mean, std = NORMALISATIONS[name]
    note = "assumed (not in the file); folded into the patch embedding: the model takes RGB in [0, 1]"
    return {"name": name, "mean": list(mean), "std": list(std), "note": note}


def import_file(
    path: Path,
    kind: str,
    *,
    normalisation: str = "imagenet",
    image_size: int | None = None,
    num_heads: int | None = None,
    drop_path: float = 0.0,
) -> ImportedModel:
    """Read a published file and import it (``import_state``); its name, SHA-256 and other contents go into the
    provenance."""
    path = Path(path)
    payload = read_file(path)
    if is_project_checkpoint(payload):
        raise WeightsImportError(f"{path} is already a project checkpoint ({CHECKPOINT_FORMAT}): use it as it is")
    state, others = unwrap(payload, str(path))
    imported = import_state(state, kind, path.name, normalisation=normalisation, image_size=image_size,
                            num_heads=num_heads, drop_path=drop_path)  # fmt: skip
    imported.provenance.update(source=path.name, sha256=file_sha256(path), bytes=path.stat().st_size,
                               other_contents=others)  # fmt: skip
    return imported


def save(imported: ImportedModel, path: Path) -> Path:
    """Write an imported model as a project checkpoint (``fahr.models.save_checkpoint``): the foundation encoder as
    the pretraining stage writes its encoder, FaceAge as the FaceAge stage writes its model."""
    extra: dict[str, Any] = {"spec": asdict(imported.spec), "imported": imported.provenance}
    if imported.kind == "faceage":
        extra |= {"init_age": 0.0, "age_scale": 1.0, "pretrained": True, "fraction": 1.0}
    return save_checkpoint(Path(path), imported.model, extra)


def cache_key(sha256: str, kind: str, normalisation: str, image_size: int | None, num_heads: int | None) -> str:
    """The file name under which an import of a file with these options is kept."""
    options = digest(IMPORTER_VERSION, kind, normalisation, image_size, num_heads)
    return f"{sha256[:16]}-{kind}-{options[:8]}.pt"


def cached_import(
    path: Path,
    kind: str,
    cache_dir: Path,
    *,
    normalisation: str = "imagenet",
    image_size: int | None = None,
    num_heads: int | None = None,
) -> Path:
    """A project checkpoint for ``path``: ``path`` itself when it already is one, else its import, made once and
    kept in ``cache_dir`` under the file's SHA-256 and the import options."""
    path = Path(path)
    if is_project_checkpoint(read_file(path)):
        return path
    out = Path(cache_dir) / cache_key(file_sha256(path), kind, normalisation, image_size, num_heads)
    if not out.is_file():
        imported = import_file(path, kind, normalisation=normalisation, image_size=image_size, num_heads=num_heads)
        save(imported, out)
    return out
