"""Profiles: YAML files under ``configs/`` loaded into typed, frozen config objects.

Every key is required in every profile (no silent defaults), any key can be overridden with a dotted
``key=value`` (CLI ``--set``, papermill ``overrides``), and the resolved config has a stable hash.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from fahr.core import paths


class ConfigError(ValueError):
    """A profile or an override that cannot be used, with where and why."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class SynthConfig(_Section):
    """FAHR-Synth: image size (pixels), cohort sizes (photos or people), render processes."""

    image_size: int = Field(ge=16)
    pretrain_n: int = Field(ge=1)
    age_n: int = Field(ge=1)  # people per age dataset, before its relative size
    repeat_photo_rate: float = Field(ge=0, le=1)  # share of age-dataset people photographed 2–3 times, years apart
    clinical_a_n: int = Field(ge=1)
    clinical_b_n: int = Field(ge=1)
    pairs_n: int = Field(ge=1)  # people in the perturbation pairs
    workers: int = Field(ge=0)


class ModelConfig(_Section):
    """The ViT encoder shared by MAE, FaceAge and FaceSurvival (input size is synth.image_size or 112)."""

    patch_size: int = Field(ge=1)
    embed_dim: int = Field(ge=1)
    depth: int = Field(ge=1)
    num_heads: int = Field(ge=1)
    drop_path: float = Field(ge=0, lt=1)

    @model_validator(mode="after")
    def _heads_divide_width(self) -> ModelConfig:
        if self.embed_dim % self.num_heads:
            raise ValueError(f"embed_dim {self.embed_dim} is not divisible by num_heads {self.num_heads}")
        return self


class PretrainConfig(_Section):
    """MAE pretraining (He et al. 2022): learning rate is base_lr x global batch / 256."""

    epochs: int = Field(ge=1)
    batch_size: int = Field(ge=1)
    accum_steps: int = Field(ge=1)
    base_lr: float = Field(gt=0)
    warmup_epochs: float = Field(ge=0)
    weight_decay: float = Field(ge=0)
    mask_ratio: float = Field(gt=0, lt=1)
    decoder_dim: int = Field(ge=1)
    decoder_depth: int = Field(ge=1)
    decoder_heads: int = Field(ge=1)
    weights: str | None  # a published foundation model (fahr_face.pth) to import instead of pretraining; see README


class FineTuneStage(_Section):
    """One fine-tuning stage: epochs, images per batch, peak learning rate."""

    epochs: int = Field(ge=1)
    batch_size: int = Field(ge=1)
    lr: float = Field(gt=0)
    warmup_epochs: float = Field(ge=0)


class FaceAgeConfig(_Section):
    """FaceAge: stage 1 on the natural age distribution, stage 2 on an age-balanced stream at a lower rate."""

    loss: Literal["l1", "mse"]
    weight_decay: float = Field(ge=0)
    stage1: FineTuneStage
    stage2: FineTuneStage
    bin_width: float = Field(gt=0)  # years per age bin of the balanced sampler
    balanced_samples: int = Field(ge=1)  # images drawn per stage-2 epoch
    weights: str | None  # a published FaceAge model (fahr_faceage.pth) to import instead of fine-tuning; see README


class FaceSurvivalConfig(_Section):
    """FaceSurvival: Cox partial likelihood (Efron ties) on clinical cohort A's training split."""

    epochs: int = Field(ge=1)
    batch_size: int = Field(ge=2)  # a Cox partial likelihood needs two patients
    lr: float = Field(gt=0)
    warmup_epochs: float = Field(ge=0)
    weight_decay: float = Field(ge=0)
    min_events: int = Field(ge=1)  # events in every batch


class PublishedConfig(_Section):
    """How the authors' published checkpoints are used (``pretrain.weights``, ``faceage.weights``, ``fahr predict``)."""

    # the input normalisation they expect, folded into the imported patch embedding (fahr.models.importer):
    # imagenet (MAE's mean/std), half ((x - 0.5) / 0.5) or none. Not published: an assumption until confirmed.
    normalisation: Literal["imagenet", "half", "none"]


class BaselinesConfig(_Section):
    """Baselines that make the claims testable."""

    data_fractions: list[float]  # shares of labelled data for the data-efficiency curve (1.0 = the main models)


# the real datasets by folder name (fahr.data.real.prepare.EXPECTED says what goes in each)
RealDataset = Literal["webface", "utkface", "appa-real", "imdb-wiki", "agedb", "clinical-a", "clinical-b"]


class DataConfig(_Section):
    """Which data the profile runs on: the built-in FAHR-Synth cohort, or real datasets under ``root``."""

    source: Literal["synth", "real"]
    root: str  # folder of the real datasets (relative to the repository unless absolute); see fahr.data.real.prepare
    prealigned: list[RealDataset]  # real datasets whose photos are already aligned face crops: resized, not re-detected
    format: Literal["files", "shards"]  # training reads the loose photos, or streams WebDataset shards of them
    shard_size: int = Field(ge=1)  # photos per shard when a stage writes its shards (format: shards)
    shuffle_buffer: int = Field(ge=0)  # photos in the streaming shuffle buffer of each DataLoader worker


class StatisticsConfig(_Section):
    """The clinical statistics (FaceSurvival and Subgroups chapters)."""

    bootstrap: int = Field(ge=10)  # resamples for concordance confidence intervals and paired differences
    auc_years: list[float]  # horizons (years) of the time-dependent AUC


class SaliencyConfig(_Section):
    """Saliency maps (Saliency chapter)."""

    photos: int = Field(ge=1)  # test photos per cohort whose maps are computed and averaged
    ig_steps: int = Field(ge=2)  # integrated-gradients steps along the path from the baseline
    occlusion_window: int = Field(ge=1)  # side of the occluding square, pixels
    occlusion_stride: int = Field(ge=1)  # pixels between occlusion positions


class PrivacyConfig(_Section):
    """What the book may show of a clinical cohort (``fahr.report.figures.faces``)."""

    min_people: int = Field(ge=2)  # an image made from fewer clinical patients than this is refused


class Config(_Section):
    """The resolved configuration of one run."""

    profile: str
    seed: int = Field(ge=0)
    device: Literal["auto", "cpu", "cuda"]
    num_workers: int = Field(ge=0)
    torch_threads: int = Field(ge=0)  # 0: let torch decide
    precision: Literal["fp32", "bf16"]
    fused_adamw: bool  # AdamW's fused kernel in every stage
    activation_checkpointing: bool  # recompute transformer blocks in the backward pass (less memory, more compute)
    compile_model: bool  # torch.compile the training forward and backward of every stage (numerics differ by rounding)
    data: DataConfig
    synth: SynthConfig
    model: ModelConfig
    pretrain: PretrainConfig
    faceage: FaceAgeConfig
    facesurvival: FaceSurvivalConfig
    published: PublishedConfig
    baselines: BaselinesConfig
    statistics: StatisticsConfig
    saliency: SaliencyConfig
    privacy: PrivacyConfig

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @property
    def hash(self) -> str:
        """A stable 12-hex-digit hash of the resolved config (key order and formatting do not matter)."""
        return config_hash(self.to_dict())


def config_hash(values: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON of ``values``, first 12 hex digits."""
    text = json.dumps(values, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def available_profiles() -> list[str]:
    return sorted(p.stem for p in paths.CONFIGS.glob("*.yaml"))


def profile_path(profile: str) -> Path:
    path = paths.CONFIGS / f"{profile}.yaml"
    if not path.is_file():
        raise ConfigError(f"unknown profile {profile!r}: no {path}; available: {', '.join(available_profiles())}")
    return path


def parse_override(item: str) -> tuple[str, Any]:
    """Split ``"a.b=value"`` into the dotted key and the YAML-parsed value (``3`` is an int, ``x`` a string)."""
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {item!r} is not of the form key=value")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as err:
        raise ConfigError(f"override {item!r}: value is not valid YAML ({err})") from err
    return key.strip(), value


def normalise_overrides(overrides: Mapping[str, Any] | Iterable[str] | str | None) -> dict[str, Any]:
    """Accept overrides as a mapping, a list of ``key=value`` strings, or one comma-separated string."""
    if overrides is None:
        return {}
    if isinstance(overrides, Mapping):
        return dict(overrides)
    if isinstance(overrides, str):
        overrides = [part for part in overrides.split(",") if part.strip()]
    return dict(parse_override(item) for item in overrides)


def _apply(values: dict[str, Any], key: str, value: Any, source: str) -> None:
    node = values
    parts = key.split(".")
    for depth, part in enumerate(parts):
        if not isinstance(node, dict) or part not in node:
            where = ".".join(parts[:depth]) or "the top level"
            known = sorted(node) if isinstance(node, dict) else []
            hint = difflib.get_close_matches(part, known, n=1)
            suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
            raise ConfigError(
                f"{source}: unknown key {key!r} ({part!r} is not in {where}; known: {', '.join(known)}){suggestion}"
            )
        if depth == len(parts) - 1:
            node[part] = value
        else:
            node = node[part]


def _format_validation_error(err: ValidationError, source: str) -> str:
    lines = [f"{source}: invalid configuration"]
    for problem in err.errors():
        key = ".".join(str(p) for p in problem["loc"])
        given = problem.get("input")
        lines.append(f"  {key}: {problem['msg']} (got {given!r})")
    return "\n".join(lines)


def load(profile: str = "demo", overrides: Mapping[str, Any] | Iterable[str] | str | None = None) -> Config:
    """Load ``configs/<profile>.yaml``, apply dotted overrides, validate types, and return a frozen Config."""
    path = profile_path(profile)
    try:
        values = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({err})") from err
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: expected a mapping of keys to values")
    if values.get("profile") != profile:
        raise ConfigError(f"{path}: 'profile' must be {profile!r}, found {values.get('profile')!r}")
    source = str(path)
    for key, value in normalise_overrides(overrides).items():
        if key == "profile":
            raise ConfigError("the profile is chosen by --profile, not overridden with --set")
        _apply(values, key, value, f"{source} override {key}={value!r}")
    try:
        return Config.model_validate(values)
    except ValidationError as err:
        raise ConfigError(_format_validation_error(err, source)) from None
