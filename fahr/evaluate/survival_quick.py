"""Concordance, the one survival statistic the models chapters need before the clinical chapter's routines."""

from __future__ import annotations

from lifelines.utils import concordance_index


def c_index(risk, time, event) -> float:
    """Harrell's C: the share of comparable pairs in which the higher risk dies first (0.5 = chance)."""
    return float(concordance_index(time, -1.0 * risk, event))
