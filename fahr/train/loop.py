"""The one training loop that MAE pretraining, FaceAge and FaceSurvival share.

A stage brings a model, a ``TrainSpec`` and three functions:

- ``loss_fn(model, batch) -> (loss, metrics)``: the loss of one micro-batch (a 0-d tensor, a *mean* over its
  samples) and other numbers to log (0-d tensors or floats, the same keys every call). ``model`` may be wrapped
  in DistributedDataParallel and ``torch.compile`` (``TrainSpec.compile_model``): call ``model(...)``, not a
  submodule's method, so that gradients are synchronised and the compiled graph is the one that runs.
  Tensors in ``batch`` (also inside dicts, lists and tuples) are already on the training device.
- ``make_batches(epoch, rank, world_size) -> iterable of batches``: this process's batches of one epoch. The
  same arguments must give the same batches (a seeded sampler with ``set_epoch``: a resumed epoch rebuilds them
  and skips those already done), every rank must get the same number, and the iterable must have ``len()``
  unless ``Trainer(batches_per_epoch=...)`` says how many there are. An iterable with ``iter_from(done)``
  (``fahr.data.shards.StreamBatches``) is asked for the batches after ``done`` instead of being read through.
- ``evaluate(model) -> {name: float}`` (optional): validation metrics at the end of every epoch, computed on
  rank 0 only with the unwrapped model in eval mode under ``torch.no_grad`` (so any metric is exact, a C-index
  included), then broadcast to every rank. ``select=(name, "min" | "max")`` keeps the best epoch in ``best.pt``.

Files in ``out_dir``, written by rank 0 only: ``last.pt`` (all a resume needs), ``best.pt`` (the model of the
best epoch by the selection metric), ``metrics.jsonl`` (one JSON object per log event; ``read_metrics``):
``event="train"`` every ``log_every`` optimizer steps and at the end of each epoch (``epoch`` as a fraction,
``step``, ``lr``, ``loss`` and the ``loss_fn`` metrics averaged over the steps since the last event and over the
ranks, ``grad_norm`` with clipping, ``images_per_s``, ``elapsed_s``); ``event="eval"`` after each epoch (the
``evaluate`` metrics, ``is_best`` with ``select``).

Resume: ``Trainer.fit()`` on an ``out_dir`` holding ``last.pt`` continues from it, mid-epoch included, and ends
with the same weights, metrics and log (apart from ``TIMING_FIELDS``) as a run that was never stopped. Every
epoch starts from random states seeded by (seed, epoch, rank); a resumed epoch rebuilds its batches, skips the
ones already done, then restores the random states saved in the checkpoint; the log is cut back to the lines
the checkpoint had seen. A resume needs the same spec (but for ``RESUME_MAY_CHANGE``; a field the checkpoint
predates counts as its default) and number of processes.
Checkpoints hold only tensors and plain Python values: they load with ``torch.load(weights_only=True)``.
The model's initial weights are the caller's: ``seed_everything(spec.seed)`` before building it.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import math
import os
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from fahr.core import provenance
from fahr.core.runtime import load_checkpoint, seed_everything
from fahr.models.vit import checkpoint_activations

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger(__name__)

LossFn = Callable[[nn.Module, Any], tuple[torch.Tensor, Mapping[str, Any]]]
MakeBatches = Callable[[int, int, int], Iterable[Any]]
Evaluate = Callable[[nn.Module], Mapping[str, float]]

CHECKPOINT_FORMAT = 1
TIMING_FIELDS = ("images_per_s", "elapsed_s")  # the only fields of metrics.jsonl that differ between reruns
NO_DECAY_NAMES = ("pos_embed", "cls_token", "mask_token", "dist_token", "reg_token")  # besides biases and norms
RESUME_MAY_CHANGE = frozenset({"checkpoint_every", "log_every", "device"})  # the spec fields a resume may change
TRAIN_KEYS = frozenset({"event", "epoch", "step", "lr", "loss", "grad_norm", *TIMING_FIELDS})
EVAL_KEYS = frozenset({"event", "epoch", "step", "is_best", *TIMING_FIELDS})
_END = object()


@dataclass(frozen=True)
class TrainSpec:
    """The recipe of one training run (batch sizes in images, learning rates per optimizer step)."""

    epochs: int
    batch_size: int  # micro-batch per process: make_batches uses it; the global batch is batch × accum × ranks
    lr: float  # peak learning rate, reached at the end of the warm-up
    accum_steps: int = 1  # micro-batches per optimizer step
    min_lr: float = 0.0  # where the cosine ends, at the last step
    warmup_epochs: float = 0.0  # linear warm-up from 0, in epochs (fractions allowed)
    weight_decay: float = 0.05  # AdamW, on weight matrices only (see param_groups)
    betas: tuple[float, float] = (0.9, 0.999)
    grad_clip: float | None = None  # clip the global gradient norm to this (None: no clipping)
    precision: str = "bf16"  # "bf16" (autocast, used on CUDA only; fp32 on CPU) or "fp32"
    seed: int = 0
    checkpoint_every: int | None = 1000  # optimizer steps between checkpoints, besides the end of every epoch
    log_every: int = 10  # optimizer steps between log events, besides the end of every epoch
    device: str = "auto"  # "auto" | "cpu" | "cuda"
    fused_adamw: bool = False  # AdamW's fused kernel (one launch for all parameters; numerics differ by rounding)
    activation_checkpointing: bool = False  # recompute each transformer block in the backward pass: less memory
    compile_model: bool = False  # torch.compile the training forward and backward (numerics differ by rounding)

    def __post_init__(self) -> None:
        object.__setattr__(self, "betas", tuple(float(b) for b in self.betas))  # YAML gives a list
        problems = [
            f"{name} must be at least 1, got {getattr(self, name)}"
            for name in ("epochs", "batch_size", "accum_steps", "log_every")
            if getattr(self, name) < 1
        ]
        if not 0 <= self.min_lr <= self.lr:
            problems.append(f"need 0 <= min_lr <= lr, got min_lr={self.min_lr}, lr={self.lr}")
        if self.warmup_epochs < 0 or self.weight_decay < 0:
            problems.append("warmup_epochs and weight_decay must not be negative")
        if self.grad_clip is not None and self.grad_clip <= 0:
            problems.append(f"grad_clip must be positive or None, got {self.grad_clip}")
        if self.checkpoint_every is not None and self.checkpoint_every < 1:
            problems.append(f"checkpoint_every must be at least 1 or None, got {self.checkpoint_every}")
        if self.precision not in ("bf16", "fp32"):
            problems.append(f"precision must be 'bf16' or 'fp32', got {self.precision!r}")
        if self.device not in ("auto", "cpu", "cuda"):
            problems.append(f"device must be 'auto', 'cpu' or 'cuda', got {self.device!r}")
        if problems:
            raise ValueError("invalid TrainSpec: " + "; ".join(problems))

    def global_batch(self, world_size: int) -> int:
        """Images per optimizer step over all processes."""
        return self.batch_size * self.accum_steps * world_size


@dataclass(frozen=True)
class TrainResult:
    """What ``Trainer.fit`` returns: final and best validation metrics, the files, and the speed of this call."""

    metrics: dict[str, float]  # the last evaluation (empty without evaluate)
    loss: float | None  # mean training loss over the last log window
    best_value: float | None  # the best value of the selection metric (None without select)
    best_epoch: int | None  # the epoch (1-based) that reached it
    epochs: int
    steps: int  # optimizer steps in all
    global_batch: int
    rank: int  # of this process: only rank 0 should write what follows training
    world_size: int  # processes that trained
    precision: str  # what was actually used: bf16 only on CUDA
    images_per_s: float | None  # training images per second of this call, all ranks (None: it trained nothing)
    resumed_at_step: int | None  # the step of the checkpoint this call resumed from (None: a fresh start)
    last_path: Path
    best_path: Path | None
    log_path: Path


# ---------------------------------------------------------------------------------------------- pure helpers


def lr_at(step: float, total: int, warmup: int, peak: float, min_lr: float) -> float:
    """Learning rate after ``step`` of ``total`` optimizer steps: linear from 0 to ``peak`` at ``warmup``,
    then half a cosine down to ``min_lr`` at ``total`` (and ``min_lr`` beyond). The loop gives the k-th update
    (k = 1, 2, …, total) the rate ``lr_at(k, …)``, so the first update is not wasted on a rate of 0."""
    step = max(step, 0)
    if step < warmup:
        return peak * (step / warmup)
    if step >= total:
        return min_lr
    weight = 0.5 * (1.0 + math.cos(math.pi * (step - warmup) / (total - warmup)))  # 1 → 0
    return weight * peak + (1.0 - weight) * min_lr


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups: decay on weight matrices; none on biases, norms, position embeddings and special tokens.

    Names come from ``NO_DECAY_NAMES`` and the model's own ``no_weight_decay()`` (the timm convention).
    Frozen parameters (``requires_grad=False``, e.g. MAE's fixed sin-cos embeddings) are left out.
    """
    skip = set(model.no_weight_decay()) if hasattr(model, "no_weight_decay") else set()
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        leaf = name.rsplit(".", 1)[-1]
        exempt = param.ndim <= 1 or leaf in NO_DECAY_NAMES or name in skip or leaf in skip
        (no_decay if exempt else decay).append(param)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return [group for group in groups if group["params"]]


def epoch_seed(seed: int, epoch: int, rank: int) -> int:
    """The seed of one epoch on one rank: independent streams from one run seed."""
    return int(np.random.SeedSequence([seed, epoch, rank]).generate_state(1)[0])


def rng_state() -> dict[str, Any]:
    """The global random states as tensors and plain Python values (loadable with ``weights_only=True``)."""
    version, internal, gauss = random.getstate()
    _, keys, pos, has_gauss, cached = np.random.get_state()  # noqa: NPY002
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else []
    return {
        "python": {"version": version, "state": list(internal), "gauss": gauss},
        "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos), "has_gauss": int(has_gauss),
                  "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state(),
        "cuda": cuda,
    }  # fmt: skip


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore what ``rng_state`` captured."""
    py = state["python"]
    random.setstate((py["version"], tuple(py["state"]), py["gauss"]))
    npy = state["numpy"]
    keys = npy["keys"].numpy().astype(np.uint32)
    np.random.set_state(("MT19937", keys, npy["pos"], npy["has_gauss"], npy["cached_gaussian"]))  # noqa: NPY002
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def to_device(batch: Any, device: torch.device) -> Any:
    """``batch`` with every tensor (also inside dicts, lists, tuples) moved to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return {key: to_device(value, device) for key, value in batch.items()}
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # a namedtuple
        return type(batch)(*(to_device(value, device) for value in batch))
    if isinstance(batch, list | tuple):
        return type(batch)(to_device(value, device) for value in batch)
    return batch


def batch_size_of(batch: Any) -> int:
    """Images in ``batch``: the leading size of its first tensor (searched through dicts, lists, tuples)."""
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0]) if batch.ndim else 1
    values = batch.values() if isinstance(batch, Mapping) else batch if isinstance(batch, list | tuple) else ()
    for value in values:
        if size := batch_size_of(value):
            return size
    return 0


def write_checkpoint(path: Path, state: Mapping[str, Any]) -> Path:
    """``torch.save`` ``state`` to ``path`` atomically: a failed or killed write leaves the old file as it was."""
    with provenance.atomic_path(Path(path)) as tmp:
        torch.save(dict(state), tmp)
    return Path(path)


def read_metrics(path: Path, event: str | None = None) -> pd.DataFrame:
    """``metrics.jsonl`` (or the ``out_dir`` holding it) as a DataFrame; ``event``: only "train" or "eval" rows."""
    import pandas as pd

    path = Path(path)
    path = path / "metrics.jsonl" if path.is_dir() else path
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    table = pd.DataFrame(rows)
    return table[table["event"] == event].reset_index(drop=True) if event and len(table) else table


# -------------------------------------------------------------------------------------------- distribution


@dataclass(frozen=True)
class DistContext:
    """This process's place in the job: rank, number of processes, local GPU, and the collectives the loop uses."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def all_sum(self, values: torch.Tensor) -> torch.Tensor:
        """Element-wise sum over ranks (in place)."""
        if self.world_size > 1:
            dist.all_reduce(values)
        return values

    def all_max(self, values: torch.Tensor) -> torch.Tensor:
        """Element-wise maximum over ranks (in place)."""
        if self.world_size > 1:
            dist.all_reduce(values, op=dist.ReduceOp.MAX)
        return values

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank."""
        if self.world_size == 1:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj``, in rank order, on every rank."""
        if self.world_size == 1:
            return [obj]
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def barrier(self) -> None:
        if self.world_size > 1:
            dist.barrier()


def current_world_size() -> int:
    """Processes in this job before or during training: the process group's size, else torchrun's WORLD_SIZE, else 1
    (e.g. to scale a learning rate by the global batch before ``Trainer.fit`` brings the group up)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return int(os.environ.get("WORLD_SIZE", "1"))


def _attempt_store() -> dist.Store:
    """A client of torchrun's store whose keys belong to this attempt: after an elastic restart
    (``--max-restarts``) the store still holds the dead processes' addresses under the default keys, where the new
    process group would look for its peers and find no one there."""
    store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), is_master=False,
                          timeout=datetime.timedelta(minutes=30))  # fmt: skip
    return dist.PrefixStore(f"fahr/attempt-{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}", store)


@contextlib.contextmanager
def distributed_context(device: str = "auto") -> Iterator[DistContext]:
    """This process's place in a ``torchrun`` job, with the process group up while the block runs.

    Reads torchrun's RANK, WORLD_SIZE and LOCAL_RANK (MASTER_ADDR and MASTER_PORT are read by
    ``init_process_group``); NCCL on CUDA (one GPU per process, ``cuda:LOCAL_RANK``), gloo on CPU. Without that
    environment: rank 0 of 1 and no process group, the same code path. A group that is already up is used and
    left up; one made here is destroyed at the end.
    """
    kind = provenance.resolve_device(device)
    created = False
    if dist.is_available() and dist.is_initialized():
        rank, world_size = dist.get_rank(), dist.get_world_size()
    else:
        rank, world_size = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    where = torch.device("cuda", local_rank) if kind == "cuda" else torch.device("cpu")
    if kind == "cuda":
        torch.cuda.set_device(where)
    if world_size > 1 and not dist.is_initialized():
        backend = "nccl" if kind == "cuda" else "gloo"
        if os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True":  # torchrun's agent hosts the store
            dist.init_process_group(backend, store=_attempt_store(), rank=rank, world_size=world_size)
        else:
            dist.init_process_group(backend)
        created = True
    yield DistContext(rank=rank, world_size=world_size, local_rank=local_rank, device=where)
    if created:
        dist.destroy_process_group()


# ---------------------------------------------------------------------------------------------- bookkeeping


@dataclass(frozen=True)
class _Schedule:
    """Steps of the run, fixed by the length of epoch 0."""

    batches_per_epoch: int
    steps_per_epoch: int
    total_steps: int
    warmup_steps: int


@dataclass
class _Position:
    """Where the run is: what a checkpoint must hold besides model, optimizer and random states."""

    epoch: int = 0  # the epoch in progress (0-based); equals spec.epochs when the run is done
    batches_done: int = 0  # micro-batches of that epoch already trained on
    step: int = 0  # optimizer steps done
    best_value: float | None = None
    best_epoch: int | None = None
    metrics: dict[str, float] = field(default_factory=dict)  # the last evaluation
    loss: float | None = None  # the last logged training loss
    elapsed_s: float = 0.0  # training time of earlier calls (a timing field)


class _Window:
    """Sums of the logged numbers over the optimizer steps since the last log event (this rank's share)."""

    def __init__(self, device: torch.device, sums: Mapping[str, float] | None = None, steps: int = 0) -> None:
        self.device = device
        self.sums = {k: torch.tensor(v, dtype=torch.float64, device=device) for k, v in (sums or {}).items()}
        self.steps = steps
        self.images = 0
        self.started = time.perf_counter()

    def add(self, values: Mapping[str, torch.Tensor], images: int) -> None:
        for key, value in values.items():
            self.sums[key] = self.sums[key] + value if key in self.sums else value
        self.steps += 1
        self.images += images

    def reduce(self, ctx: DistContext) -> tuple[dict[str, float], int]:
        """The sums averaged over ranks, and the images of all ranks (one collective, one device sync)."""
        keys = sorted(self.sums)
        count = torch.tensor(float(self.images), dtype=torch.float64, device=self.device)
        values = ctx.all_sum(torch.stack([*(self.sums[k] for k in keys), count])).tolist()
        return {k: v / ctx.world_size for k, v in zip(keys, values, strict=False)}, int(values[-1])


class MetricsLog:
    """``metrics.jsonl``: one JSON object per line, appended by rank 0; ``lines`` is counted on every rank."""

    def __init__(self, path: Path, keep: int, active: bool) -> None:
        self.path, self.active, self.lines = Path(path), active, keep
        if active:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        if active and self.path.exists():
            lines = self.path.read_text().splitlines(keepends=True)
            complete = [line for line in lines[:keep] if line.endswith("\n")]
            if len(complete) < keep:
                logger.warning("%s has %d complete lines, the checkpoint saw %d", self.path, len(complete), keep)
            provenance.write_text(self.path, "".join(complete))

    def write(self, record: Mapping[str, Any]) -> None:
        if self.active:
            with self.path.open("a") as f:
                f.write(json.dumps(record) + "\n")
        self.lines += 1


# ------------------------------------------------------------------------------------------------- trainer


class Trainer:
    """Train ``model`` by ``spec`` with AdamW, warm-up and cosine, accumulation and DDP; keep files in ``out_dir``.

    ``fit()`` starts fresh, or resumes from ``out_dir/last.pt``; see the module docstring for the contracts of
    ``loss_fn``, ``make_batches`` and ``evaluate``. After ``fit()``, ``model`` holds the final weights.
    """

    def __init__(
        self,
        model: nn.Module,
        spec: TrainSpec,
        out_dir: Path,
        loss_fn: LossFn,
        make_batches: MakeBatches,
        evaluate: Evaluate | None = None,
        select: tuple[str, str] | None = None,
        *,
        batches_per_epoch: int | None = None,
        progress: bool = True,
    ) -> None:
        if select is not None:
            if evaluate is None:
                raise ValueError("select needs evaluate: the selection metric comes from the validation metrics")
            if select[1] not in ("min", "max"):
                raise ValueError(f"select must be (metric, 'min' | 'max'), got {select!r}")
        if batches_per_epoch is not None and batches_per_epoch < 1:
            raise ValueError(f"batches_per_epoch must be at least 1, got {batches_per_epoch}")
        self.model, self.spec, self.out_dir = model, spec, Path(out_dir)
        self.loss_fn, self.make_batches, self.evaluate, self.select = loss_fn, make_batches, evaluate, select
        self.batches_per_epoch, self.progress = batches_per_epoch, progress

    @property
    def last_path(self) -> Path:
        return self.out_dir / "last.pt"

    @property
    def best_path(self) -> Path:
        return self.out_dir / "best.pt"

    @property
    def log_path(self) -> Path:
        return self.out_dir / "metrics.jsonl"

    def fit(self) -> TrainResult:
        """Train to the end of ``spec.epochs`` (resuming from ``last.pt`` if there is one) and say how it went."""
        with distributed_context(self.spec.device) as ctx:
            return _Session(self, ctx).run()

    def epoch_length(self, batches: Iterable[Any], epoch: int) -> int:
        """Micro-batches in one epoch: ``batches_per_epoch`` if given, else ``len(batches)``."""
        if self.batches_per_epoch is not None:
            return self.batches_per_epoch
        try:
            return len(batches)  # type: ignore[arg-type]
        except TypeError:
            raise TypeError(
                f"make_batches(epoch={epoch}) returned a {type(batches).__name__} without len(); "
                "pass Trainer(batches_per_epoch=...)"
            ) from None


class _Session:
    """One call of ``Trainer.fit`` in one process."""

    def __init__(self, trainer: Trainer, ctx: DistContext) -> None:
        self.trainer, self.spec, self.ctx = trainer, trainer.spec, ctx
        self.precision = self.spec.precision if ctx.device.type == "cuda" else "fp32"
        if self.precision != self.spec.precision:
            logger.info("bf16 autocast is used on CUDA only; training in fp32 on %s", ctx.device)
        self.started = time.perf_counter()
        self.train_seconds, self.images = 0.0, 0
        saved = self._saved_state()
        self.resumed_at = saved["step"] if saved else None
        self.world_size = saved["world_size"] if saved else ctx.world_size  # of the run (a finished one may differ)
        self.pos = _Position(**{k: saved[k] for k in asdict(_Position())}) if saved else _Position()
        self.resume_rng = saved["rng"][ctx.rank] if saved and saved["batches_done"] else None
        self.window = _Window(ctx.device, **saved["window"]) if saved else _Window(ctx.device)
        self.log = MetricsLog(trainer.log_path, keep=saved["log_lines"] if saved else 0, active=ctx.is_main)
        self.model = trainer.model.to(ctx.device)
        if saved:
            self.model.load_state_dict(saved["model"])
        if self.spec.activation_checkpointing:
            checkpoint_activations(self.model)
        self.net: nn.Module = self.model
        if ctx.world_size > 1:
            ids = [ctx.device.index] if ctx.device.type == "cuda" else None
            self.net = DistributedDataParallel(self.model, device_ids=ids)
        if self.spec.compile_model:  # the training step only: evaluation and checkpoints use the plain module
            self.net = torch.compile(self.net, dynamic=False)  # type: ignore[assignment]
        self.optimizer = torch.optim.AdamW(param_groups(self.model, self.spec.weight_decay), lr=self.spec.lr,
                                           betas=self.spec.betas, fused=self.spec.fused_adamw or None)  # fmt: skip
        if saved and "optimizer" in saved:  # a finished run's last.pt has none: it trains no further
            self.optimizer.load_state_dict(saved["optimizer"])
        self.lr = 0.0

    # -- start

    def _saved_state(self) -> dict[str, Any] | None:
        """The checkpoint to resume from, checked against this run; on a fresh start, clear stale files."""
        trainer, ctx = self.trainer, self.ctx
        if not ctx.broadcast(trainer.last_path.is_file() if ctx.is_main else None):
            if ctx.is_main:
                trainer.best_path.unlink(missing_ok=True)
            return None
        saved = load_checkpoint(trainer.last_path)
        where = trainer.last_path
        if saved.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"{where} has format {saved.get('format')}; this loop reads format {CHECKPOINT_FORMAT}")
        if saved["world_size"] != ctx.world_size and saved["epoch"] < self.spec.epochs:
            raise ValueError(
                f"{where} was written by a run of {saved['world_size']} processes, this one has {ctx.world_size}: "
                "resume with the same number, or start a new out_dir from its model weights"
            )
        now = asdict(self.spec)
        defaults = {f.name: f.default for f in fields(TrainSpec) if f.default is not MISSING}  # for fields added later
        then = {k: saved["spec"].get(k, defaults.get(k)) for k in now}
        changed = sorted(k for k in now if k not in RESUME_MAY_CHANGE and then[k] != now[k])
        if changed:
            diffs = ", ".join(f"{k}: {then[k]!r} → {now[k]!r}" for k in changed)
            raise ValueError(f"{where} was made with another recipe ({diffs}); use the same spec or a new out_dir")
        logger.info("resuming %s at epoch %d, batch %d, step %d", where, saved["epoch"], saved["batches_done"],
                    saved["step"])  # fmt: skip
        return saved

    def _schedule(self) -> _Schedule:
        ctx, spec = self.ctx, self.spec
        n = self.trainer.epoch_length(self.trainer.make_batches(0, ctx.rank, ctx.world_size), 0)
        per_epoch = math.ceil(n / spec.accum_steps)
        total = per_epoch * spec.epochs
        return _Schedule(n, per_epoch, total, min(total, round(spec.warmup_epochs * per_epoch)))

    # -- the run

    def run(self) -> TrainResult:
        if self.pos.epoch < self.spec.epochs:
            self.schedule = self._schedule()
            for epoch in range(self.pos.epoch, self.spec.epochs):
                began = time.perf_counter()
                self._train_epoch(epoch)
                self.train_seconds += time.perf_counter() - began
                self._end_epoch(epoch)
        self.ctx.barrier()
        return self._result()

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.precision == "bf16":
            return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _epoch_batches(self, epoch: int) -> tuple[Iterator[Any], int]:
        """This epoch's batch iterator, positioned after the batches already done, and the epoch's length."""
        ctx = self.ctx
        seed_everything(epoch_seed(self.spec.seed, epoch, ctx.rank))
        batches = self.trainer.make_batches(epoch, ctx.rank, ctx.world_size)
        n = self.trainer.epoch_length(batches, epoch)
        lengths = ctx.all_max(torch.tensor([n, -n], device=ctx.device)).tolist()
        if lengths[0] != -lengths[1]:
            raise RuntimeError(f"epoch {epoch}: ranks have {-lengths[1]} to {lengths[0]} batches; they must be equal")
        skip = self.pos.batches_done
        if hasattr(batches, "iter_from"):  # a stream that skips what was done without reading it (shards)
            iterator, skip = batches.iter_from(skip), 0
        else:
            iterator = iter(batches)
        for i in range(skip):
            if next(iterator, _END) is _END:
                raise RuntimeError(f"make_batches(epoch={epoch}) ran out after {i} batches; the checkpoint is later")
        if self.resume_rng is not None:  # the random states of the moment the checkpoint was written
            set_rng_state(self.resume_rng)
            self.resume_rng = None
        return iterator, n

    def _train_epoch(self, epoch: int) -> None:
        spec, ctx = self.spec, self.ctx
        iterator, n = self._epoch_batches(epoch)
        self.net.train()
        bar = tqdm(total=n, initial=self.pos.batches_done, desc=f"epoch {epoch + 1}/{spec.epochs}",
                   disable=not (self.trainer.progress and ctx.is_main), dynamic_ncols=True)  # fmt: skip
        group: dict[str, torch.Tensor] = {}
        images = 0
        for i in range(self.pos.batches_done, n):
            batch = next(iterator, _END)
            if batch is _END:
                raise RuntimeError(f"make_batches(epoch={epoch}) yielded {i} batches, but its length is {n}")
            first = i - i % spec.accum_steps
            size = min(spec.accum_steps, n - first)  # micro-batches in this optimizer step
            closes = i + 1 == first + size
            sync = contextlib.nullcontext() if closes or ctx.world_size == 1 else self.net.no_sync()
            with sync:
                with self._autocast():
                    loss, metrics = self.trainer.loss_fn(self.net, to_device(batch, ctx.device))
                (loss / size).backward()
            self._accumulate(group, loss, metrics)
            images += batch_size_of(batch)
            bar.update()
            if closes:
                self._step({k: v / size for k, v in group.items()}, images)
                group, images = {}, 0
                self.pos.batches_done = i + 1
                self._after_step(epoch, n, bar)
        bar.close()
        if next(iterator, _END) is not _END:
            raise RuntimeError(f"make_batches(epoch={epoch}) yielded more than its length, {n} batches")

    def _accumulate(self, group: dict[str, torch.Tensor], loss: torch.Tensor, metrics: Mapping[str, Any]) -> None:
        if reserved := TRAIN_KEYS.intersection(metrics):
            raise ValueError(f"loss_fn returned metrics named {sorted(reserved)}; these names are the loop's")
        for key, value in {"loss": loss, **metrics}.items():
            value = torch.as_tensor(value).detach().to(self.ctx.device, torch.float64).reshape(())
            group[key] = group[key] + value if key in group else value

    def _step(self, values: dict[str, torch.Tensor], images: int) -> None:
        """One optimizer update, at the learning rate of its step number."""
        self.pos.step += 1
        s = self.schedule
        self.lr = lr_at(self.pos.step, s.total_steps, s.warmup_steps, self.spec.lr, self.spec.min_lr)
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr
        if self.spec.grad_clip is not None:
            norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.spec.grad_clip)
            values["grad_norm"] = norm.detach().to(torch.float64)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.window.add(values, images)

    def _after_step(self, epoch: int, n: int, bar: tqdm) -> None:
        spec, pos = self.spec, self.pos
        last = pos.batches_done == n
        if pos.step % spec.log_every == 0 or last:
            self._log_train(epoch, n, bar)
        if spec.checkpoint_every and pos.step % spec.checkpoint_every == 0 and not last:
            self._checkpoint()  # the end of the epoch writes one anyway

    def _log_train(self, epoch: int, n: int, bar: tqdm) -> None:
        sums, images = self.window.reduce(self.ctx)
        means = {k: v / self.window.steps for k, v in sums.items()}
        loss = means.pop("loss")
        if not math.isfinite(loss):
            raise FloatingPointError(f"training loss is {loss} at epoch {epoch + 1}, step {self.pos.step}; "
                                     "lower the learning rate or set grad_clip")  # fmt: skip
        seconds = time.perf_counter() - self.window.started
        self.log.write({
            "event": "train", "epoch": round(epoch + self.pos.batches_done / n, 6), "step": self.pos.step,
            "lr": self.lr, "loss": loss, **means, "images_per_s": images / seconds if seconds > 0 else None,
            "elapsed_s": round(self._elapsed(), 3),
        })  # fmt: skip
        bar.set_postfix(loss=f"{loss:.4g}", lr=f"{self.lr:.3g}")
        self.pos.loss = loss
        self.images += images
        self.window = _Window(self.ctx.device)

    def _elapsed(self) -> float:
        return self.pos.elapsed_s + time.perf_counter() - self.started

    # -- end of an epoch: evaluate, select, checkpoint

    def _evaluate(self) -> dict[str, float]:
        model = self.model
        model.eval()
        with torch.no_grad():
            metrics = {str(k): float(v) for k, v in self.trainer.evaluate(model).items()}
        model.train()
        if reserved := EVAL_KEYS.intersection(metrics):
            raise ValueError(f"evaluate returned metrics named {sorted(reserved)}; these names are the loop's")
        return metrics

    def _improves(self, metrics: Mapping[str, float]) -> bool:
        name, mode = self.trainer.select  # type: ignore[misc]
        if name not in metrics:
            raise KeyError(f"the selection metric {name!r} is not among the evaluated metrics {sorted(metrics)}")
        value, best = metrics[name], self.pos.best_value
        if math.isnan(value):
            return False
        return best is None or (value < best if mode == "min" else value > best)

    def _end_epoch(self, epoch: int) -> None:
        pos, trainer = self.pos, self.trainer
        if trainer.evaluate is not None:
            pos.metrics = self.ctx.broadcast(self._evaluate() if self.ctx.is_main else None)
            record: dict[str, Any] = {"event": "eval", "epoch": epoch + 1, "step": pos.step, **pos.metrics}
            if trainer.select is not None:
                record["is_best"] = self._improves(pos.metrics)
                if record["is_best"]:
                    pos.best_value, pos.best_epoch = pos.metrics[trainer.select[0]], epoch + 1
                    self._write_best(epoch)
            record["elapsed_s"] = round(self._elapsed(), 3)
            self.log.write(record)
        pos.epoch, pos.batches_done = epoch + 1, 0
        self._checkpoint()

    def _write_best(self, epoch: int) -> None:
        if not self.ctx.is_main:
            return
        name, mode = self.trainer.select  # type: ignore[misc]
        write_checkpoint(self.trainer.best_path, {
            "format": CHECKPOINT_FORMAT, "model": self.model.state_dict(), "spec": asdict(self.spec),
            "epoch": epoch + 1, "step": self.pos.step, "metric": name, "mode": mode, "value": self.pos.best_value,
            "metrics": dict(self.pos.metrics),
        })  # fmt: skip

    def _checkpoint(self) -> None:
        """Write ``last.pt``: every rank hands its random states and log window to rank 0, which writes.

        The end of the last epoch leaves out the optimizer state: ``epochs`` may not change on a resume, so a
        finished run never steps again, and at ViT-B size that saves 690 MB a stage.
        """
        rng = self.ctx.gather(rng_state())
        sums, _ = self.window.reduce(self.ctx)
        if not self.ctx.is_main:
            return
        state = {
            "format": CHECKPOINT_FORMAT,
            "model": self.model.state_dict(),
            # the optimizer's moments (twice the model's size) only while there is training left to resume
            **({"optimizer": self.optimizer.state_dict()} if self.pos.epoch < self.spec.epochs else {}),
            "spec": asdict(self.spec),
            "world_size": self.ctx.world_size,
            **asdict(self.pos),
            "elapsed_s": self._elapsed(),
            "log_lines": self.log.lines,
            "window": {"sums": sums, "steps": self.window.steps},
            "rng": rng,
        }
        write_checkpoint(self.trainer.last_path, state)

    def _result(self) -> TrainResult:
        pos, trainer, ctx = self.pos, self.trainer, self.ctx
        return TrainResult(
            metrics=dict(pos.metrics),
            loss=pos.loss,
            best_value=pos.best_value,
            best_epoch=pos.best_epoch,
            epochs=self.spec.epochs,
            steps=pos.step,
            global_batch=self.spec.global_batch(self.world_size),
            rank=ctx.rank,
            world_size=self.world_size,
            precision=self.precision,
            images_per_s=self.images / self.train_seconds if self.images and self.train_seconds > 0 else None,
            resumed_at_step=self.resumed_at,
            last_path=trainer.last_path,
            best_path=trainer.best_path if trainer.best_path.is_file() else None,
            log_path=trainer.log_path,
        )
