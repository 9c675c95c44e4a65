"""Provenance: who made an artifact, from what code and config, on which machine, and when.

Every artifact gets a ``<name>.provenance.json`` beside it, written *after* the artifact itself, so its
presence marks a complete artifact. Artifacts are written to a temporary name and renamed (``atomic_path``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import glob
import json
import os
import platform
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

from fahr.core import paths
from fahr.core.config import Config

KEY_PACKAGES = (
    "fahr", "torch", "torchvision", "timm", "torchsurv", "lifelines", "statsmodels", "scikit-learn",
    "numpy", "pandas", "pyarrow", "matplotlib", "seaborn", "papermill", "jupyter-book", "captum",
)  # fmt: skip


def now() -> str:
    """The current UTC time, ISO 8601 with seconds."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def git_state(repo: Path = paths.REPO) -> dict[str, Any]:
    """The commit of ``repo`` and whether its tracked files differ from it (``commit`` is None outside git)."""

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no") if commit else None
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def package_versions(names: tuple[str, ...] = KEY_PACKAGES) -> dict[str, str | None]:
    """Installed versions of the named distributions (None where one is not installed)."""
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def all_package_versions() -> dict[str, str]:
    """Every installed distribution and its version, sorted by name (the environment of this build)."""
    found = {dist.metadata["Name"].lower(): dist.version for dist in metadata.distributions()}
    return dict(sorted(found.items()))


def _memory_gib() -> float | None:
    try:
        import psutil
    except ImportError:  # pragma: no cover - psutil is a declared dependency
        return None
    return round(psutil.virtual_memory().total / 2**30, 1)


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def hardware() -> dict[str, Any]:
    """The machine this runs on: CPU, cores usable by this process, memory, the CPU kernels torch uses, GPUs seen by
    torch."""
    import torch

    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": _cpu_model(),
        "cpu_cores_usable": usable,
        "memory_gib": _memory_gib(),
        "torch_threads": torch.get_num_threads(),
        "cpu_kernels": torch.backends.cpu.get_cpu_capability(),  # the vector kernels torch dispatches to (AVX512, …)
        "cuda_available": torch.cuda.is_available(),
        "gpus": gpus,
    }


def resolve_device(requested: str) -> str:
    """Turn the config's ``auto|cpu|cuda`` into the device actually used; ``cuda`` without a GPU is an error."""
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device=cuda was requested but torch sees no GPU; use --set device=cpu or auto")
    return requested


def record(cfg: Config, stage: str, started: str, ended: str | None = None, **extra: Any) -> dict[str, Any]:
    """The provenance record of one artifact made by ``stage`` under ``cfg``."""
    return {
        "stage": stage,
        "profile": cfg.profile,
        "config_hash": cfg.hash,
        "config": cfg.to_dict(),
        "git": git_state(),
        "packages": package_versions(),
        "hardware": hardware(),
        "device": resolve_device(cfg.device),
        "seed": cfg.seed,
        "started": started,
        "ended": ended or now(),
        **extra,
    }


def provenance_path(artifact: Path) -> Path:
    """Where the provenance record of ``artifact`` lives (``model.pt`` → ``model.pt.provenance.json``)."""
    return artifact.with_name(artifact.name + ".provenance.json")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def _remove_orphans(target: Path) -> None:
    """Delete the temporary files and folders that a killed writer of ``target`` left beside it (``atomic_path``
    names them with the writer's process id; a live writer's are kept)."""
    for tmp in target.parent.glob(f".{glob.escape(target.stem)}.*.tmp{glob.escape(target.suffix)}"):
        pid = tmp.name[len(target.stem) + 2 :].split(".", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid() or _alive(int(pid)):
            continue
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` only if the block succeeds.

    Works for files and folders. A killed or failed run leaves ``target`` as it was (old version or absent), and
    what it left half-written beside it is removed by the next write of ``target``.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_orphans(target)
    prefix = f".{target.stem}.{os.getpid()}."  # the writer's process id: a killed writer's leftovers can be known
    fd, name = tempfile.mkstemp(prefix=prefix, suffix=f".tmp{target.suffix}", dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    tmp.unlink()
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"nothing was written to the temporary path for {target}")
        if tmp.is_dir() and target.is_dir():
            old = target.with_name(f".{target.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            target.rename(old)
            tmp.rename(target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()


def write_text(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(Path(path)) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_json(path: Path, obj: Any) -> Path:
    """Write ``obj`` as indented JSON, atomically."""
    return write_text(path, json.dumps(obj, indent=2, default=str) + "\n")


@contextlib.contextmanager
def journal_writer(path: Path | None) -> Iterator[Callable[[dict[str, Any]], None]]:
    """A function appending one record to the JSON-lines journal ``path`` and flushing it, so that a kill loses at most
    the line being written (``read_journal`` drops it); with ``path`` None it does nothing."""
    if path is None:
        yield lambda record: None
        return
    with open(path, "a") as f:

        def write(record: dict[str, Any]) -> None:
            f.write(json.dumps(record) + "\n")
            f.flush()

        yield write


def read_journal(path: Path) -> list[dict[str, Any]]:
    """The records of a JSON-lines journal that a run appends to as it goes (``fahr prepare``, ``fahr predict``).
    A last line cut short by a kill is dropped from the file too, so that the next record starts a line."""
    if not Path(path).is_file():
        return []
    text = Path(path).read_text()
    whole = text[: text.rfind("\n") + 1]
    if whole != text:
        with open(path, "r+") as f:
            f.truncate(len(whole.encode()))
    return [json.loads(line) for line in whole.splitlines() if line.strip()]


def read(artifact: Path) -> dict[str, Any] | None:
    """The provenance record of ``artifact``, or None if it has none (then the artifact is incomplete)."""
    path = provenance_path(Path(artifact))
    return json.loads(path.read_text()) if path.is_file() else None


@contextlib.contextmanager
def artifact(target: Path, cfg: Config, stage: str, **extra: Any) -> Iterator[Path]:
    """Write one artifact atomically and its provenance record beside it.

    >>> with artifact(out / "predictions.parquet", cfg, "predict") as tmp:
    ...     table.to_parquet(tmp)
    """
    started = now()
    target = Path(target)
    with atomic_path(target) as tmp:
        yield tmp
        provenance_path(target).unlink(missing_ok=True)  # the old record must not vouch for the new file
    write_json(provenance_path(target), record(cfg, stage, started, **extra))
