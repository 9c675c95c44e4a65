"""WebDataset tar shards: the photos of a manifest packed for streaming (the ``paper`` profile, many GPUs).

A shard member is one photo: key = ``image_id``, the image file's bytes as they are under its extension
(``png``, ``jpg``, …) and the row's manifest columns under ``json``. ``write_shards`` writes a shard set into
its own folder atomically, with ``<prefix>.index.csv`` (the manifest plus ``shard`` and ``shard_position``)
beside the shards. ``ShardDataset`` streams them back as the same dicts ``FaceDataset`` returns, split over
DDP ranks and DataLoader workers by shard; a corrupt member is skipped with a warning.
"""

from __future__ import annotations

import glob
import json
import logging
import random
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch
import webdataset as wds
from torch.utils.data import DataLoader
from torchvision import tv_tensors
from tqdm import tqdm
from webdataset.tariterators import group_by_keys, tar_file_expander
from webdataset.utils import pytorch_worker_info

from fahr.core import provenance
from fahr.data import manifest
from fahr.data.loading import Size, collate, image_size, labels, read_image, transforms

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = ("png", "jpg", "jpeg", "webp", "bmp", "tif", "tiff")


@dataclass(frozen=True)
class ShardSet:
    """What ``write_shards`` wrote: the shard files, the index (manifest rows with ``shard`` and
    ``shard_position``) and the rows it could not write (``image_id, path, reason``)."""

    paths: list[Path]
    index: pd.DataFrame
    skipped: pd.DataFrame


class CorruptSample(ValueError):
    """A shard member that cannot be decoded; the message names the shard, the key and the reason."""


def warn_and_skip(exn: Exception) -> bool:
    """WebDataset handler: log and warn about a corrupt shard or member, then go on with the next one."""
    message = f"skipped an unreadable shard or sample: {exn}"
    logger.warning(message)
    warnings.warn(message, stacklevel=2)
    return True


def _check_keys(df: pd.DataFrame) -> None:
    ids = df["image_id"].astype(str)
    bad = ids[ids.str.contains(".", regex=False) | (ids.str.strip() == "")]
    if len(bad):
        raise ValueError(
            f"image_id must be non-empty and without '.' to be a shard key (WebDataset splits names at the "
            f"first dot); offending ids: {bad.head(5).tolist()}"
        )
    duplicated = ids[ids.duplicated()]
    if len(duplicated):
        raise ValueError(f"image_id must be unique to be a shard key; duplicated: {duplicated.head(5).tolist()}")


def write_shards(
    df: pd.DataFrame,
    root: Path,
    out_dir: Path,
    maxcount: int = 10_000,
    prefix: str = "faces",
    maxsize: float = 1e9,
    progress: bool = False,
) -> ShardSet:
    """Pack the photos of a manifest into ``out_dir/<prefix>-000000.tar``, … (at most ``maxcount`` photos or
    ``maxsize`` bytes per shard). ``out_dir`` belongs to this shard set and is replaced as a whole, atomically.

    Photo paths are resolved against ``root``; a missing file or an unknown extension is logged and listed in
    ``skipped``. The tar members have a fixed time stamp, so the same inputs give the same bytes.
    """
    df = df.reset_index(drop=True)
    _check_keys(df)
    records = json.loads(df.to_json(orient="records", double_precision=15, date_format="iso"))
    out_dir = Path(out_dir)
    written, skipped = [], []
    with provenance.atomic_path(out_dir) as tmp:
        tmp.mkdir()
        with wds.ShardWriter(
            str(tmp / f"{prefix}-%06d.tar"), maxcount=maxcount, maxsize=maxsize, verbose=0, mtime=0
        ) as sink:
            for i, record in enumerate(tqdm(records, desc="shards", disable=not progress)):
                path = manifest.resolve_path(record["path"], Path(root))
                extension = path.suffix.lower().lstrip(".")
                if extension not in IMAGE_EXTENSIONS:
                    reason = f"not an image extension ({', '.join(IMAGE_EXTENSIONS)})"
                elif not path.is_file():
                    reason = "missing image file"
                else:
                    sample = {
                        "__key__": str(record["image_id"]),
                        extension: path.read_bytes(),
                        "json": json.dumps(record),
                    }
                    sink.write(sample)
                    written.append((i, Path(sink.fname).name, sink.count - 1))
                    continue
                logger.warning("not sharding image %s (%s): %s", record["image_id"], path, reason)
                skipped.append((str(record["image_id"]), str(path), reason))
        if not written:
            raise ValueError(f"no photo of the manifest could be written to shards in {out_dir}")
        rows, shard, position = zip(*written, strict=True)
        index = df.loc[list(rows)].assign(shard=shard, shard_position=position).reset_index(drop=True)
        index.to_csv(tmp / f"{prefix}.index.csv", index=False)
    paths = [out_dir / name for name in dict.fromkeys(shard)]
    return ShardSet(paths, index, pd.DataFrame(skipped, columns=["image_id", "path", "reason"]))


def _truncation(url: str) -> str | None:
    """Why a local shard file looks cut short, or None. Python's tarfile ends a stream silently at a cut that
    falls on a header, so check the tar layout: whole 512-byte blocks ending in the two zero blocks of the
    end-of-archive marker. URLs that are not local files are not checked."""
    path = Path(url)
    if not path.is_file():
        return None
    size = path.stat().st_size
    if size % 512:
        return f"{size} bytes is not a whole number of 512-byte tar blocks"
    with path.open("rb") as f:
        f.seek(max(size - 1024, 0))
        if size < 1024 or f.read().strip(b"\0"):
            return "no end-of-archive marker"
    return None


def shard_urls(shards: str | Path | Sequence[str | Path]) -> list[str]:
    """The shard files named by a folder (its ``*.tar``), a brace pattern (``faces-{000000..000009}.tar``),
    a glob pattern or a list of paths."""
    if isinstance(shards, str | Path):
        text = str(shards)
        if Path(text).is_dir():
            urls = sorted(str(p) for p in Path(text).glob("*.tar"))
        elif "{" in text:
            urls = wds.shardlists.expand_urls(text)
        else:
            urls = sorted(glob.glob(text))
    else:
        urls = [str(p) for p in shards]
    if not urls:
        raise FileNotFoundError(f"no shards found for {shards!r}")
    return urls


class ShardDataset(wds.DataPipeline):
    """Stream shards as the dicts ``FaceDataset`` returns (``image``, ``image_id`` and the label columns).

    Shards are split over DDP ranks (``webdataset.split_by_node``: ``RANK``/``WORLD_SIZE`` or the initialised
    process group) and then over DataLoader workers (``split_by_worker``), so every photo is read once per
    epoch; write at least ``world_size × num_workers`` shards of similar size so that ranks stay in step.
    ``shuffle_buffer > 0`` shuffles the shard order (the same on every rank) and the photos within a buffer of
    that size, seeded by ``seed`` and ``set_epoch`` (call it before each epoch; with ``persistent_workers``
    the workers keep the epoch they started with). Corrupt shards or members go to ``handler``.
    """

    def __init__(
        self,
        shards: str | Path | Sequence[str | Path],
        size: Size = 112,
        transform: Callable[[tv_tensors.Image], torch.Tensor] | None = None,
        label_columns: Sequence[str] = (),
        shuffle_buffer: int = 0,
        seed: int = 0,
        handler: Callable[[Exception], bool] = warn_and_skip,
    ) -> None:
        self.urls = shard_urls(shards)
        self.size = image_size(size)
        self.transform = transform or transforms("eval", self.size)
        self.label_columns = tuple(label_columns)
        self.shuffle_buffer, self.seed, self.epoch = shuffle_buffer, seed, 0
        self.handler = handler
        super().__init__(
            self._shard_list,
            wds.split_by_node,
            wds.split_by_worker,
            self._open_shards,
            wds.pipelinefilter(tar_file_expander)(handler=handler),
            wds.pipelinefilter(group_by_keys)(handler=handler),
            self._shuffle,
            wds.map(self._decode, handler=handler),
        )

    def set_epoch(self, epoch: int) -> None:
        """Use the shuffle of ``epoch``."""
        self.epoch = epoch

    def _shard_list(self) -> Iterator[dict[str, str]]:
        _, world_size, _, _ = pytorch_worker_info()
        if world_size > len(self.urls):
            raise ValueError(f"{len(self.urls)} shards cannot be split over {world_size} ranks; write smaller shards")
        urls = list(self.urls)
        if self.shuffle_buffer > 0:
            random.Random(f"{self.seed}-{self.epoch}").shuffle(urls)  # the same order on every rank and worker
        for url in urls:
            yield {"url": url}

    def _open_shards(self, shards: Iterator[dict[str, str]]) -> Iterator[dict[str, Any]]:
        """Open each shard (a path or any ``webdataset.gopen`` URL) and close it once it has been read."""
        for shard in shards:
            try:
                stream = wds.gopen(shard["url"], "rb")
            except Exception as err:  # a missing file, a failing pipe: URL, …
                if self.handler(err):
                    continue
                break
            truncated = _truncation(shard["url"])
            if truncated and not self.handler(CorruptSample(f"{shard['url']}: truncated shard ({truncated})")):
                stream.close()
                break
            try:
                yield {**shard, "stream": stream}  # a truncated shard still gives the samples before the cut
            finally:
                stream.close()

    def _shuffle(self, samples: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        if self.shuffle_buffer <= 1:
            yield from samples
            return
        rank, _, worker, _ = pytorch_worker_info()
        rng = random.Random(f"{self.seed}-{self.epoch}-{rank}-{worker}")
        buffer: list[dict[str, Any]] = []
        for sample in samples:
            if len(buffer) < self.shuffle_buffer:
                buffer.append(sample)
                continue
            j = rng.randrange(len(buffer))
            yield buffer[j]
            buffer[j] = sample
        rng.shuffle(buffer)
        yield from buffer

    def _decode(self, sample: dict[str, Any]) -> dict[str, Any]:
        key, url = sample["__key__"], sample.get("__url__")
        try:
            extension = next((e for e in IMAGE_EXTENSIONS if e in sample), None)
            if extension is None:
                raise KeyError(f"no image member (members: {sorted(k for k in sample if not k.startswith('__'))})")
            row = json.loads(sample["json"]) if self.label_columns else {}
            image = read_image(sample[extension], self.size)
            pixels = self.transform(image).as_subclass(torch.Tensor)  # [3, H, W] float32
            return {"image": pixels, "image_id": key, **labels(row, self.label_columns)}
        except Exception as err:  # PIL, json and missing members raise many types
            raise CorruptSample(f"{url}: sample {key!r}: {type(err).__name__}: {err}") from err


def shard_loader(
    shards: str | Path | Sequence[str | Path],
    batch_size: int,
    size: Size = 112,
    transform: Callable[[tv_tensors.Image], torch.Tensor] | None = None,
    label_columns: Sequence[str] = (),
    shuffle_buffer: int = 0,
    seed: int = 0,
    num_workers: int = 0,
    **loader_kwargs: Any,
) -> DataLoader:
    """A DataLoader over shards: batches of ``ShardDataset`` dicts, collated by ``loading.collate``."""
    dataset = ShardDataset(shards, size, transform, label_columns, shuffle_buffer, seed)
    return DataLoader(dataset, batch_size=batch_size, num_workers=num_workers, collate_fn=collate, **loader_kwargs)
