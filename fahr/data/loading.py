"""Torch datasets, transforms and samplers: photos of a manifest in, batches of tensors and labels out.

``FaceDataset`` reads the photos of a manifest (one row per photo, see ``fahr.data.manifest``) and returns one
dict per photo: ``image`` (float32, 3×H×W, values in [0, 1]), ``image_id`` and the requested labels. A photo
that is missing or cannot be decoded never stops a run: it is logged once, recorded in ``failures`` and
returned as None, which ``collate`` drops from the batch.

Samplers: ``AgeBalancedSampler`` (FaceAge stage 2: every age bin equally often) and ``EventBatchSampler``
(FaceSurvival: the Cox partial likelihood needs deaths in every batch). Both are seeded, change with
``set_epoch`` and split one global draw over DDP ranks.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset, Sampler, default_collate
from torchvision import tv_tensors
from torchvision.transforms import InterpolationMode, v2

from fahr.data import manifest
from fahr.data.photo import read_rgb

logger = logging.getLogger(__name__)

STAGES = ("pretrain", "finetune", "eval")
LABEL_DTYPES = {
    "age": torch.float32,
    "time": torch.float32,
    "event": torch.bool,
    "stage": torch.int64,
    "ecog": torch.int64,
}
FINETUNE_SCALE = (0.8, 1.0)
FINETUNE_RATIO = (0.9, 1.1)  # aligned faces: keep the aspect ratio close to the crop's
FINETUNE_JITTER = {"brightness": 0.1, "contrast": 0.1, "saturation": 0.1, "hue": 0.02}
PRETRAIN_SCALE = (0.2, 1.0)  # He et al. (MAE): RandomResizedCrop(0.2, 1) and a horizontal flip, nothing else

Size = int | tuple[int, int]


def image_size(size: Size) -> tuple[int, int]:
    """``size`` as (height, width) in pixels; an int means a square."""
    height, width = (size, size) if isinstance(size, int) else size
    if height < 1 or width < 1:
        raise ValueError(f"image size must be positive, got {size!r}")
    return int(height), int(width)


def read_image(source: Path | bytes, size: Size) -> tv_tensors.Image:
    """Decode a photo (a file or its bytes) to a uint8 RGB image [3, H, W], resized to ``size`` if it differs."""
    height, width = image_size(size)
    rgb = read_rgb(source)  # upright; grey, 16-bit, palette and RGBA photos become 8-bit RGB
    pixels = torch.from_numpy(rgb.copy()).permute(2, 0, 1)  # [3, H, W] uint8
    if pixels.shape[1:] != (height, width):
        pixels = v2.functional.resize(pixels, [height, width], antialias=True)
    return tv_tensors.Image(pixels)


def transforms(stage: str, size: Size) -> v2.Compose:
    """The augmentation of a training stage for uint8 images; the output is float32 in [0, 1] at ``size``.

    ``pretrain``: the MAE recipe (random resized crop, scale 0.2–1, and a horizontal flip);
    ``finetune``: a mild crop (scale 0.8–1), a flip and a small colour jitter; ``eval``: a resize only.
    """
    hw = list(image_size(size))
    if stage == "pretrain":
        steps = [
            v2.RandomResizedCrop(hw, scale=PRETRAIN_SCALE, interpolation=InterpolationMode.BICUBIC, antialias=True),
            v2.RandomHorizontalFlip(),
        ]
    elif stage == "finetune":
        steps = [
            v2.RandomResizedCrop(hw, scale=FINETUNE_SCALE, ratio=FINETUNE_RATIO, antialias=True),
            v2.RandomHorizontalFlip(),
            v2.ColorJitter(**FINETUNE_JITTER),
        ]
    elif stage == "eval":
        steps = [v2.Resize(hw, antialias=True)]
    else:
        raise ValueError(f"unknown transform stage {stage!r}; the stages are {', '.join(STAGES)}")
    return v2.Compose([*steps, v2.ToDtype(torch.float32, scale=True)])


def label_value(column: str, value: Any) -> torch.Tensor | str:
    """One label as the training code wants it: age and time float32 (years), event bool, stage and ecog int64.

    Other numeric columns become float32, text stays text. A missing float label is NaN; a missing event, stage
    or ecog is an error (drop such rows before training).
    """
    dtype = LABEL_DTYPES.get(column)
    if dtype is None and isinstance(value, str):
        return value
    dtype = dtype or torch.float32
    if value is None or pd.isna(value):
        if dtype.is_floating_point:
            return torch.tensor(float("nan"), dtype=dtype)
        raise ValueError(f"label {column!r} is missing")
    return torch.tensor(value, dtype=dtype)


def labels(row: Mapping[str, Any], columns: Sequence[str]) -> dict[str, torch.Tensor | str]:
    """The requested label columns of one manifest row."""
    missing = [c for c in columns if c not in row]
    if missing:
        raise KeyError(f"label columns {missing} not in the row (it has {sorted(row)})")
    return {c: label_value(c, row[c]) for c in columns}


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value (so labels() sees float NaN, str and int alike)."""
    return value.item() if isinstance(value, np.generic) else value


class FaceDataset(Dataset):
    """The photos of a manifest as dicts of ``image`` (float32 [3, H, W] in [0, 1]), ``image_id`` and labels.

    A missing or unreadable photo is logged once (file and reason), appended to ``failures`` as
    ``(image_id, path, reason)`` and returned as None; use ``collate`` to drop it. With DataLoader workers
    each worker process keeps its own ``failures``: the list of the main process is complete only with
    ``num_workers=0`` (the log lines are complete either way).

    With ``keep_decoded`` (training: several epochs) and read in the main process (``num_workers=0``), a dataset
    whose decoded photos fit in ``DECODED_CACHE_BYTES`` keeps them, so that later epochs skip the file read and the
    decoding (about 0.6 ms a photo, up to a fifth of a CPU training step); the augmentation still draws anew.
    """

    DECODED_CACHE_BYTES = 1 << 30

    def __init__(
        self,
        df: pd.DataFrame,
        root: Path,
        size: Size = 112,
        transform: Callable[[tv_tensors.Image], torch.Tensor] | None = None,
        label_columns: Sequence[str] = (),
        keep_decoded: bool = False,
    ) -> None:
        missing = [c for c in ("image_id", "path", *label_columns) if c not in df.columns]
        if missing:
            raise ValueError(f"manifest lacks the columns {missing} (it has {list(df.columns)})")
        self.root = Path(root)
        self.size = image_size(size)
        self.transform = transform or transforms("eval", self.size)
        self.label_columns = tuple(label_columns)
        self.image_ids = df["image_id"].astype(str).tolist()
        self.paths = df["path"].astype(str).tolist()
        for column in self.label_columns:
            dtype = LABEL_DTYPES.get(column)
            absent = np.flatnonzero(df[column].isna().to_numpy())
            if dtype is not None and not dtype.is_floating_point and len(absent):
                rows = (absent[:10] + 1).tolist()
                raise ValueError(f"label {column!r} is missing in manifest rows {rows} (1-based); drop those rows")
        self.columns = {c: df[c].to_numpy() for c in self.label_columns}
        self.failures: list[tuple[str, str, str]] = []
        fits = len(self.paths) * 3 * self.size[0] * self.size[1] <= self.DECODED_CACHE_BYTES
        self._decoded: dict[int, tv_tensors.Image] | None = {} if keep_decoded and fits else None

    @classmethod
    def from_manifest(cls, path: Path, split: str | None = None, **kwargs: Any) -> FaceDataset:
        """The dataset of a manifest file (optionally one split); photo paths are relative to its folder."""
        df = manifest.read(Path(path))
        if split is not None:
            df = df[df["split"] == split].reset_index(drop=True)
        return cls(df, Path(path).parent, **kwargs)

    def __len__(self) -> int:
        return len(self.image_ids)

    def row(self, i: int) -> dict[str, Any]:
        """The label columns of photo ``i`` as Python values."""
        return {c: _plain(values[i]) for c, values in self.columns.items()}

    def __getitem__(self, i: int) -> dict[str, Any] | None:
        keep = self._decoded is not None and torch.utils.data.get_worker_info() is None
        image = self._decoded.get(i) if keep else None
        if image is None:
            path = manifest.resolve_path(self.paths[i], self.root)
            try:
                image = read_image(path, self.size)
            except FileNotFoundError:
                return self._fail(i, path, "missing image file")
            except Exception as err:  # PIL raises many types (OSError, SyntaxError, DecompressionBombError, …)
                return self._fail(i, path, f"unreadable image ({type(err).__name__}: {err})")
            if keep:
                self._decoded[i] = image
        pixels = self.transform(image.clone() if keep else image).as_subclass(torch.Tensor)  # [3, H, W] float32
        return {"image": pixels, "image_id": self.image_ids[i], **labels(self.row(i), self.label_columns)}

    def _fail(self, i: int, path: Path, reason: str) -> None:
        if all(f[0] != self.image_ids[i] for f in self.failures):
            logger.warning("skipping image %s (%s): %s", self.image_ids[i], path, reason)
            self.failures.append((self.image_ids[i], str(path), reason))
        return None


def collate(batch: Sequence[dict[str, Any] | None]) -> dict[str, Any] | None:
    """``default_collate`` without the photos that failed to load; None if every photo of the batch failed."""
    items = [item for item in batch if item is not None]
    return default_collate(items) if items else None


def _rank_check(rank: int, world_size: int) -> None:
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"need 0 <= rank < world_size, got rank={rank}, world_size={world_size}")


class AgeBalancedSampler(Sampler[int]):
    """Draw photos so that every non-empty age bin is equally frequent (FaceAge stage 2).

    Ages are binned by ``bin_width`` years (bins start at multiples of it). Either ``num_samples`` draws per
    epoch (default: as many as there are photos), each picking a bin uniformly and then a photo of it with
    replacement; or ``per_bin`` photos from every bin (the per-year target count of the FaceAge predecessor):
    a bin with at least ``per_bin`` photos gives distinct ones, a smaller bin is cycled through in random
    order. Seeded by ``seed`` and ``set_epoch``; under DDP every rank takes the positions ``rank::world_size``
    of the same global draw, padded with extra balanced draws to a multiple of ``world_size``.
    """

    def __init__(
        self,
        ages: Sequence[float] | np.ndarray | pd.Series,
        bin_width: float = 1.0,
        num_samples: int | None = None,
        per_bin: int | None = None,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        ages = np.asarray(ages, dtype=float)
        if ages.ndim != 1 or len(ages) == 0:
            raise ValueError("AgeBalancedSampler needs a non-empty list of ages (years)")
        if np.isnan(ages).any():
            where = np.flatnonzero(np.isnan(ages))[:10].tolist()
            raise ValueError(f"{np.isnan(ages).sum()} ages are missing (positions {where}…); drop those rows first")
        if bin_width <= 0:
            raise ValueError(f"bin_width must be positive (years), got {bin_width}")
        if num_samples is not None and per_bin is not None:
            raise ValueError("give num_samples or per_bin, not both")
        if (num_samples is not None and num_samples < 1) or (per_bin is not None and per_bin < 1):
            raise ValueError("num_samples and per_bin must be at least 1")
        _rank_check(rank, world_size)
        bins = np.floor(ages / bin_width).astype(np.int64)
        bin_ids, inverse, counts = np.unique(bins, return_inverse=True, return_counts=True)
        self.bin_lower = bin_ids * bin_width  # years, the lower edge of every non-empty bin
        self.bin_sizes = counts
        self._members = np.argsort(inverse, kind="stable")  # photo indices grouped by bin
        self._starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        self.per_bin = per_bin
        total = per_bin * len(counts) if per_bin is not None else (num_samples or len(ages))
        self.num_samples = math.ceil(total / world_size)  # per rank
        self.total = total
        self.seed, self.rank, self.world_size, self.epoch = seed, rank, world_size, 0

    def set_epoch(self, epoch: int) -> None:
        """Use the draw of ``epoch`` (call before each epoch, on every rank)."""
        self.epoch = epoch

    def _balanced(self, rng: np.random.Generator, n: int) -> np.ndarray:
        bins = rng.integers(len(self.bin_sizes), size=n)  # a uniform bin per draw
        within = rng.integers(0, self.bin_sizes[bins])  # a photo of that bin, with replacement
        return self._members[self._starts[bins] + within]

    def global_draw(self) -> np.ndarray:
        """The indices of this epoch over all ranks (length ``num_samples * world_size``)."""
        rng = np.random.default_rng([self.seed, self.epoch])
        size = self.num_samples * self.world_size
        if self.per_bin is None:
            return self._balanced(rng, size)
        chunks = [
            np.resize(rng.permutation(self._members[start : start + count]), self.per_bin)
            for start, count in zip(self._starts, self.bin_sizes, strict=True)
        ]
        drawn = np.concatenate([*chunks, self._balanced(rng, size - self.total)])
        return rng.permutation(drawn)

    def __iter__(self) -> Iterator[int]:
        return iter(self.global_draw()[self.rank :: self.world_size].tolist())

    def __len__(self) -> int:
        return self.num_samples


class EventBatchSampler(Sampler[list[int]]):
    """Batches of ``batch_size`` indices with at least ``min_events`` events each (FaceSurvival, Cox loss).

    The events of an epoch are shuffled and spread evenly over the batches, the censored photos fill the
    rest. ``drop_last=False`` (default) uses every photo once per epoch and pads the ragged end with photos
    drawn again (never twice in one batch); ``drop_last=True`` leaves out the ragged end (a different random
    set every epoch, events and censored in proportion) so that every photo is used at most once. Seeded by
    ``seed`` and ``set_epoch``; under DDP the number of batches is a multiple of ``world_size`` and each rank
    takes batches ``rank::world_size`` of the same global draw.
    """

    def __init__(
        self,
        events: Sequence[int] | np.ndarray | pd.Series,
        batch_size: int,
        min_events: int = 1,
        drop_last: bool = False,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        events = np.asarray(events, dtype=float)
        if events.ndim != 1 or not np.isin(events, (0, 1)).all():
            raise ValueError("events must be a 1-d list of 0 (censored) and 1 (event)")
        if not 0 <= min_events <= batch_size:
            raise ValueError(f"need 0 <= min_events <= batch_size, got {min_events} and {batch_size}")
        _rank_check(rank, world_size)
        n, group = len(events), batch_size * world_size
        if n < batch_size:
            raise ValueError(f"{n} samples are fewer than one batch of {batch_size}")
        batches = (n // group if drop_last else math.ceil(n / group)) * world_size
        if batches == 0:
            raise ValueError(f"{n} samples cannot fill one batch of {batch_size} on each of {world_size} ranks")
        n_events = int(events.sum())
        if n_events < batches * min_events:
            raise ValueError(
                f"only {n_events} events among {n} samples, but {batches} batches of {batch_size} with at least "
                f"{min_events} events each need {batches * min_events}; use a larger batch_size or fewer "
                "ranks, or lower min_events"
            )
        self.event_index = np.flatnonzero(events == 1)
        self.censored_index = np.flatnonzero(events == 0)
        self.n, self.batches, self.batch_size, self.min_events = n, batches, batch_size, min_events
        self.drop_last, self.seed, self.rank, self.world_size, self.epoch = drop_last, seed, rank, world_size, 0

    def set_epoch(self, epoch: int) -> None:
        """Use the batches of ``epoch`` (call before each epoch, on every rank)."""
        self.epoch = epoch

    def _kept(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """This epoch's shuffled events and censored photos; with drop_last, cut to exactly the batch slots."""
        events, censored = rng.permutation(self.event_index), rng.permutation(self.censored_index)
        if not self.drop_last:
            return events, censored
        slots, dropped = self.batches * self.batch_size, self.n - self.batches * self.batch_size
        keep = len(events) - round(dropped * len(events) / self.n)  # drop events and censored in proportion
        keep = int(np.clip(keep, self.batches * self.min_events, min(len(events), slots)))
        return events[:keep], censored[: slots - keep]

    def global_batches(self) -> list[np.ndarray]:
        """The batches of this epoch over all ranks, in the order they are handed out."""
        rng = np.random.default_rng([self.seed, self.epoch])
        events, censored = self._kept(rng)
        base, extra = divmod(len(events), self.batches)
        per_batch = base + (rng.permutation(self.batches) < extra)  # events per batch, as even as possible
        event_parts = np.split(events, np.cumsum(per_batch)[:-1])
        room = np.cumsum(self.batch_size - per_batch)[:-1]
        censored_parts = np.split(censored, np.minimum(room, len(censored)))
        everyone = np.arange(self.n)
        batches = []
        for event_part, censored_part in zip(event_parts, censored_parts, strict=True):
            batch = np.concatenate([event_part, censored_part])
            short = self.batch_size - len(batch)
            if short:  # the ragged end (drop_last=False): pad with photos not already in this batch
                batch = np.concatenate([batch, rng.choice(np.setdiff1d(everyone, batch), short, replace=False)])
            batches.append(rng.permutation(batch))
        return [batches[i] for i in rng.permutation(self.batches)]

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self.global_batches()[self.rank :: self.world_size]:
            yield batch.tolist()

    def __len__(self) -> int:
        return self.batches // self.world_size
