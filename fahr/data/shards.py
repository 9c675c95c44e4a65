"""WebDataset tar shards: the photos of a manifest packed for streaming (the ``paper`` profile, many GPUs).

A shard member is one photo: key = ``image_id`` (hashed, ``shard_key``, where it holds a dot or a slash), the
image file's bytes as they are under its extension (``png``, ``jpg``, …) and the row's manifest columns under
``json``. ``write_shards`` writes a shard set into
its own folder atomically, with ``<prefix>.index.csv`` (the manifest plus ``shard`` and ``shard_position``)
beside the shards. ``ShardDataset`` streams them back as the same dicts ``FaceDataset`` returns, split over
DDP ranks and DataLoader workers by shard; a corrupt member is skipped with a warning.
"""

from __future__ import annotations

import glob
import hashlib
import itertools
import json
import logging
import random
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
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
    empty = ids[ids.str.strip() == ""]
    if len(empty):
        raise ValueError(f"image_id must be non-empty to be a shard key; rows {empty.index[:5].tolist()} are empty")
    duplicated = ids[ids.duplicated()]
    if len(duplicated):
        raise ValueError(f"image_id must be unique to be a shard key; duplicated: {duplicated.head(5).tolist()}")


def shard_key(image_id: str) -> str:
    """A photo's key in a shard: its image_id, or where that holds a dot or a slash (which WebDataset reads as the
    start of an extension or a folder, as in the real datasets' ``utkface/30_0_0_x.jpg``) a hash of it; the
    image_id itself is always in the member's JSON."""
    if "." in image_id or "/" in image_id:
        return "id-" + hashlib.sha1(image_id.encode()).hexdigest()[:24]
    return image_id


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
                        "__key__": shard_key(str(record["image_id"])),
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


def open_shards(shards: Iterable[dict[str, str]], handler: Callable[[Exception], bool]) -> Iterator[dict[str, Any]]:
    """Open each shard (a path or any ``webdataset.gopen`` URL) and close it once it has been read; a missing,
    failing or truncated shard goes to ``handler`` (True: go on; False: stop)."""
    for shard in shards:
        try:
            stream = wds.gopen(shard["url"], "rb")
        except Exception as err:  # a missing file, a failing pipe: URL, …
            if handler(err):
                continue
            break
        truncated = _truncation(shard["url"])
        if truncated and not handler(CorruptSample(f"{shard['url']}: truncated shard ({truncated})")):
            stream.close()
            break
        try:
            yield {**shard, "stream": stream}  # a truncated shard still gives the samples before the cut
        finally:
            stream.close()


def buffer_shuffle(samples: Iterable[Any], size: int, rng: random.Random) -> Iterator[Any]:
    """Shuffle a stream within a buffer of ``size`` items (no shuffle when ``size`` <= 1)."""
    if size <= 1:
        yield from samples
        return
    buffer: list[Any] = []
    for sample in samples:
        if len(buffer) < size:
            buffer.append(sample)
            continue
        j = rng.randrange(len(buffer))
        yield buffer[j]
        buffer[j] = sample
    rng.shuffle(buffer)
    yield from buffer


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
        return open_shards(shards, self.handler)

    def _shuffle(self, samples: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        rank, _, worker, _ = pytorch_worker_info()
        return buffer_shuffle(samples, self.shuffle_buffer, random.Random(f"{self.seed}-{self.epoch}-{rank}-{worker}"))

    def _decode(self, sample: dict[str, Any]) -> dict[str, Any]:
        return decode(sample, self.size, self.transform, self.label_columns)


def decode(
    sample: dict[str, Any],
    size: tuple[int, int],
    transform: Callable[[tv_tensors.Image], torch.Tensor],
    label_columns: Sequence[str],
) -> dict[str, Any]:
    """A raw shard member as ``FaceDataset`` returns a photo: ``image`` (transformed), ``image_id``, the labels."""
    key, url = sample["__key__"], sample.get("__url__")
    try:
        extension = next((e for e in IMAGE_EXTENSIONS if e in sample), None)
        if extension is None:
            raise KeyError(f"no image member (members: {sorted(k for k in sample if not k.startswith('__'))})")
        row = sample["__row__"] if "__row__" in sample else json.loads(sample["json"]) if "json" in sample else {}
        image = read_image(sample[extension], size)
        pixels = transform(image).as_subclass(torch.Tensor)  # [3, H, W] float32
        return {"image": pixels, "image_id": str(row.get("image_id", key)), **labels(row, label_columns)}
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


class TrainingStream(torch.utils.data.IterableDataset):
    """One rank's training batches of one epoch, streamed from shards: exactly ``steps`` batches.

    Every epoch deals the shards, in an order shuffled by (seed, epoch) and the same on every rank, to the
    ``world_size × workers`` streams (stream ``rank × workers + worker`` takes every ``world_size × workers``-th
    shard); a stream cycles over its shards for as long as it needs, so every rank yields the same number of
    batches whatever the shard sizes. In each stream: ``keep`` (image_ids) filters the photos, ``weight`` (a
    function of the manifest row) repeats a photo floor(w) or ceil(w) times with mean w (age balancing), a
    buffer of ``shuffle_buffer`` photos shuffles, and each batch takes ``min_events`` photos with ``event == 1``
    first (the Cox loss needs deaths) and fills up with the earliest others. Batch ``i`` of the rank comes from
    worker ``i % workers``, the DataLoader's round-robin order.

    Every draw is keyed by (seed, epoch, rank, stream position) and each photo's augmentation by its place in
    the epoch, so ``start`` skips the batches already trained without decoding a photo, and what follows is
    what an unstopped run would have seen. Batch with ``batch_size=None`` (``StreamBatches`` does).
    """

    def __init__(
        self,
        shards: str | Path | Sequence[str | Path],
        batch_size: int,
        steps: int,
        *,
        epoch: int,
        rank: int = 0,
        world_size: int = 1,
        workers: int = 0,
        seed: int = 0,
        start: int = 0,
        size: Size = 112,
        transform: Callable[[tv_tensors.Image], torch.Tensor] | None = None,
        label_columns: Sequence[str] = (),
        shuffle_buffer: int = 0,
        keep: set[str] | None = None,
        weight: Callable[[dict[str, Any]], float] | None = None,
        min_events: int = 0,
        handler: Callable[[Exception], bool] = warn_and_skip,
    ) -> None:
        self.urls = shard_urls(shards)
        streams = world_size * max(1, workers)
        if streams > len(self.urls):
            raise ValueError(f"{len(self.urls)} shards cannot feed {world_size} rank(s) × {max(1, workers)} "
                             f"DataLoader worker(s): write at least {streams} shards (a smaller data.shard_size) "
                             "or use fewer workers")  # fmt: skip
        if not 0 <= min_events <= batch_size or batch_size < 1 or steps < 1 or not 0 <= start <= steps:
            raise ValueError(f"need 1 <= batch_size, 0 <= min_events <= batch_size, 1 <= steps and 0 <= start <= "
                             f"steps; got {batch_size}, {min_events}, {steps}, {start}")  # fmt: skip
        self.batch_size, self.steps, self.start = batch_size, steps, start
        self.epoch, self.rank, self.world_size, self.workers, self.seed = epoch, rank, world_size, max(1, workers), seed
        self.size = image_size(size)
        self.transform = transform or transforms("eval", self.size)
        self.label_columns = tuple(label_columns)
        self.shuffle_buffer, self.keep, self.weight, self.min_events = shuffle_buffer, keep, weight, min_events
        self.handler = handler

    def _worker(self) -> int:
        """This process's worker as the epoch counts it (a resumed loader's worker 0 makes batch ``start``)."""
        info = torch.utils.data.get_worker_info()
        if (info.num_workers if info else 1) != self.workers:
            raise RuntimeError(f"TrainingStream was made for {self.workers} workers, the DataLoader has "
                               f"{info.num_workers if info else 0}")  # fmt: skip
        return ((info.id if info else 0) + self.start) % self.workers

    def _photos(self, stream: int) -> Iterator[dict[str, Any]]:
        """This stream's raw photos (undecoded, ``__row__`` parsed), its shards cycled without end."""
        streams = self.world_size * self.workers
        rng = random.Random(f"{self.seed}-{self.epoch}-{stream}-copies")
        for cycle in itertools.count():
            urls = list(self.urls)
            random.Random(f"{self.seed}-{self.epoch}-{cycle}").shuffle(urls)
            members = tar_file_expander(open_shards(({"url": u} for u in urls[stream::streams]), self.handler),
                                        handler=self.handler)  # fmt: skip
            found = False
            for sample in group_by_keys(members, handler=self.handler):
                sample["__row__"] = json.loads(sample["json"])
                if self.keep is not None and str(sample["__row__"].get("image_id")) not in self.keep:
                    continue
                found = True
                w = 1.0 if self.weight is None else self.weight(sample["__row__"])
                copies = int(w) + (rng.random() < w - int(w))
                yield from itertools.repeat(sample, copies)
            if not found:
                raise ValueError(f"the shards of stream {stream} ({urls[stream::streams]}) hold no photo to train "
                                 "on; write smaller shards")  # fmt: skip

    def _batches(self, photos: Iterator[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
        """Raw batches: ``min_events`` events first (the earliest ones), then the earliest others."""
        pending: list[dict[str, Any]] = []
        for photo in photos:
            pending.append(photo)
            if len(pending) < self.batch_size:
                continue
            events = [i for i, p in enumerate(pending) if int(p["__row__"].get("event", 0)) == 1]
            if len(events) < self.min_events:
                continue
            chosen = set(events[: self.min_events])
            chosen.update([i for i in range(len(pending)) if i not in chosen][: self.batch_size - self.min_events])
            yield [p for i, p in enumerate(pending) if i in chosen]
            pending = [p for i, p in enumerate(pending) if i not in chosen]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        worker = self._worker()
        stream = self.rank * self.workers + worker
        shuffle = random.Random(f"{self.seed}-{self.epoch}-{stream}-shuffle")
        batches = self._batches(buffer_shuffle(self._photos(stream), self.shuffle_buffer, shuffle))
        for index, raw in zip(range(worker, self.steps, self.workers), batches, strict=False):
            if index < self.start:
                continue  # trained before the checkpoint: not decoded
            photos = []
            for position, sample in enumerate(raw):
                with torch.random.fork_rng(devices=[]):  # this photo's augmentation, whatever came before
                    torch.default_generator.manual_seed(
                        hash((self.seed, self.epoch, self.rank, index, position)) & 0x7FFF_FFFF
                    )
                    photos.append(decode(sample, self.size, self.transform, self.label_columns))
            yield collate(photos)


class StreamBatches:
    """A stage's ``make_batches`` result on shards: ``len()`` batches an epoch, and ``iter_from(done)``, with which
    the training loop resumes mid-epoch without decoding the batches already trained."""

    def __init__(self, make: Callable[[int], TrainingStream], workers: int) -> None:
        self.make, self.workers = make, workers
        self.steps = make(0).steps

    def __len__(self) -> int:
        return self.steps

    def iter_from(self, done: int) -> Iterator[dict[str, Any]]:
        return iter(DataLoader(self.make(done), batch_size=None, num_workers=self.workers))

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return self.iter_from(0)
