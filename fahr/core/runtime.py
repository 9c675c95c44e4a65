"""The process's random state, thread pools and checkpoints: the one ``seed_everything``, the one thread limiter
and the one checkpoint reader."""

from __future__ import annotations

import random
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fahr.core.errors import CheckpointError


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global random generators (torch's on every GPU too)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - third-party code draws from the legacy global generator
    torch.manual_seed(seed)


def set_threads(threads: int) -> None:
    """Use ``threads`` torch threads from now on (0 or less: leave torch's default)."""
    if threads > 0:
        torch.set_num_threads(threads)


@contextmanager
def single_threaded() -> Iterator[None]:
    """torch (and OpenCV, when it is loaded) on one thread each, for the duration.

    Small alternating operations lose to thread start-up: torchsurv's per-event loop runs ~20x slower with two
    threads on a 2-core machine (13 s instead of 0.6 s for 4,000 subjects), and the privacy scan's products and
    image operations 3-4x slower with two pools spinning against each other."""
    cv2 = sys.modules.get("cv2")
    threads = torch.get_num_threads()
    cv_threads = cv2.getNumThreads() if cv2 is not None else None
    torch.set_num_threads(1)
    if cv2 is not None:
        cv2.setNumThreads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        if cv2 is not None:
            cv2.setNumThreads(cv_threads)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint written by this project (the training loop's ``last.pt``/``best.pt``, or a model file of
    ``fahr.models.save_checkpoint``) on the CPU, loaded with ``weights_only=True``: tensors and plain types only.
    A file that cannot be one is a ``CheckpointError`` naming it and why."""
    path = Path(path)
    check_checkpoint_file(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises RuntimeError, EOFError, UnpicklingError, zip errors … for a bad file
        raise CheckpointError(f"{path}: not a readable checkpoint ({unreadable_reason(err)})") from None


def check_checkpoint_file(path: Path) -> None:
    """Refuse, before opening it, a checkpoint path that is missing, a folder or a special file (a FIFO would block),
    or empty."""
    import stat

    try:
        st = Path(path).stat()
    except OSError:
        raise CheckpointError(f"{path}: no such checkpoint file") from None
    if not stat.S_ISREG(st.st_mode):
        raise CheckpointError(f"{path}: not a regular file (a folder, FIFO or device), so not a checkpoint")
    if st.st_size == 0:
        raise CheckpointError(f"{path}: the checkpoint file is empty (0 bytes)")


def unreadable_reason(err: Exception) -> str:
    """What a failed ``torch.load`` says, in one line."""
    text = str(err).splitlines()[0] if str(err) else ""
    return f"truncated, or not a PyTorch file: {type(err).__name__}{': ' + text[:160] if text else ''}"
