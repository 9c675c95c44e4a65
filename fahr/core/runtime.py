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
    ``fahr.models.save_checkpoint``) on the CPU, loaded with ``weights_only=True``: tensors and plain types only."""
    return torch.load(Path(path), map_location="cpu", weights_only=True)
