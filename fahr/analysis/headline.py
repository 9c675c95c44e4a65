"""A headline number: what a chapter's analysis hands to the reproduction report (``fahr.report.results``)."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Result:
    """One headline number. ``planted`` and ``oracle`` are FAHR-Synth's truth (None on real data); ``paper`` the
    paper's value, which the report fills in from ``fahr.report.paper.PAPER``."""

    key: str  # stable identifier, e.g. "survival.A.q4_vs_q1"
    quantity: str  # what it is, in words
    value: float
    unit: str = ""
    lower: float | None = None  # 95 % interval
    upper: float | None = None
    p: float | None = None
    planted: float | None = None
    oracle: float | None = None
    paper: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.value, int | float) or math.isnan(float(self.value)):
            raise ValueError(f"result {self.key!r}: value must be a number, got {self.value!r}")
