"""Split-conformal intervals for an age estimate (Vovk et al. 2005; Lei et al. 2018, "Distribution-free predictive
inference for regression"): the absolute errors of a model on held-out photos it never trained on give, for a new
photo, an interval ``prediction ± q`` that holds the true age with probability at least ``1 − alpha``, whatever the
model, provided the new photo is exchangeable with the held-out ones.

One width for every age would cover the middle decades too widely and the ends of the lifespan too narrowly, so
the held-out photos are grouped by the decade of their *prediction* (known for a new photo too: Mondrian
conformal prediction, Vovk et al. 2005, ch. 4), neighbouring decades merged until each group holds at least
``min_photos``; within each group the guarantee holds as above.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Calibration:
    """Half-widths (years) of the ``1 − alpha`` interval for predictions in ``[edges[i], edges[i + 1])``."""

    alpha: float
    edges: tuple[float, ...]  # len(halfwidths) + 1; the first is -inf, the last +inf
    halfwidths: tuple[float, ...]
    photos: tuple[int, ...]  # held-out photos behind each half-width

    def to_dict(self) -> dict:
        return {k: [None if math.isinf(x) else x for x in v] if isinstance(v, tuple) else v
                for k, v in asdict(self).items()}  # fmt: skip

    @classmethod
    def from_dict(cls, d: dict) -> Calibration:
        edges = [(-math.inf if i == 0 else math.inf) if x is None else float(x) for i, x in enumerate(d["edges"])]
        return cls(float(d["alpha"]), tuple(edges), tuple(map(float, d["halfwidths"])), tuple(map(int, d["photos"])))


def quantile(errors: np.ndarray, alpha: float) -> float:
    """The split-conformal quantile: the ⌈(n + 1)(1 − alpha)⌉-th smallest of the ``n`` absolute errors (inf when
    that rank exceeds n: too few photos for this ``alpha``)."""
    errors = np.sort(np.abs(np.asarray(errors, dtype=float)))
    rank = math.ceil((len(errors) + 1) * (1 - alpha))
    return float(errors[rank - 1]) if 1 <= rank <= len(errors) else math.inf


def fit(predicted: np.ndarray, truth: np.ndarray, alpha: float = 0.1, width: float = 10.0,
        min_photos: int = 50) -> Calibration:  # fmt: skip
    """The ``Calibration`` of a model from held-out predictions and true ages (years)."""
    predicted, truth = np.asarray(predicted, dtype=float), np.asarray(truth, dtype=float)
    if len(predicted) != len(truth) or len(predicted) == 0 or not 0 < alpha < 1:
        raise ValueError(f"need as many predictions as ages (got {len(predicted)} and {len(truth)}) and 0 < alpha < 1")
    bands = np.floor(predicted / width)
    groups: list[list[float]] = []  # each group: the decades it covers, in ascending order
    current: list[float] = []
    for band in np.unique(bands):  # a group closes once it holds min_photos; what is left joins the last one
        current.append(band)
        if np.isin(bands, current).sum() >= min_photos:
            groups.append(current)
            current = []
    if current:
        if groups:
            groups[-1] += current
        else:
            groups.append(current)
    edges = [-math.inf] + [float(groups[i][0] * width) for i in range(1, len(groups))] + [math.inf]
    errors = np.abs(predicted - truth)
    halfwidths, photos = [], []
    for group in groups:
        inside = np.isin(bands, group)
        halfwidths.append(quantile(errors[inside], alpha))
        photos.append(int(inside.sum()))
    return Calibration(alpha, tuple(edges), tuple(halfwidths), tuple(photos))


def interval(predicted: np.ndarray, calibration: Calibration) -> tuple[np.ndarray, np.ndarray]:
    """(lower, upper) years of each prediction's interval."""
    predicted = np.asarray(predicted, dtype=float)
    group = np.clip(np.searchsorted(np.asarray(calibration.edges), predicted, side="right") - 1, 0,
                    len(calibration.halfwidths) - 1)  # fmt: skip
    half = np.asarray(calibration.halfwidths)[group]
    return predicted - half, predicted + half


def coverage(predicted: np.ndarray, truth: np.ndarray, calibration: Calibration, width: float = 10.0) -> pd.DataFrame:
    """Per decade of true age and over all photos: photos, the share whose interval holds the true age, and the
    mean interval width (years)."""
    truth = np.asarray(truth, dtype=float)
    lower, upper = interval(predicted, calibration)
    frame = pd.DataFrame({"decade": (np.floor(truth / width) * width).astype(int), "covered": (lower <= truth) &
                          (truth <= upper), "width": upper - lower})  # fmt: skip
    rows = []
    for name, part in [*((f"{d}–{d + int(width) - 1}", g) for d, g in frame.groupby("decade")), ("all", frame)]:
        rows.append({"age": name, "photos": len(part), "coverage": float(part["covered"].mean()),
                     "mean width (years)": float(part["width"].mean())})  # fmt: skip
    return pd.DataFrame(rows).set_index("age")
