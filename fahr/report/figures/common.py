"""Figure helpers the chapters share: a grid of faces, a log hazard-ratio axis in plain numbers, the forest plot."""

from __future__ import annotations

import matplotlib.pyplot as plt
import matplotlib.ticker as mticker
import numpy as np
import pandas as pd

from fahr.data.photo import Face
from fahr.report.figures import faces


def face_grid(images: list[Face], labels: list[str], columns: int, scale: float = 1.35) -> plt.Figure:
    """A grid of face images with a caption under each, through the book's one face writer
    (``fahr.report.figures.faces.grid``: a clinical image made from too few patients is refused)."""
    return faces.grid(images, labels, columns, scale)


def log_hr_axis(ax: plt.Axes) -> None:
    """A log-scale hazard-ratio axis labelled in plain numbers (0.5, 1, 2, 4), not powers of ten."""
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(mticker.LogLocator(base=2))
    ax.xaxis.set_major_formatter(mticker.FormatStrFormatter("%g"))
    ax.xaxis.set_minor_formatter(mticker.NullFormatter())


def forest(table: pd.DataFrame, label: str = "label", truth: str | None = None, title: str = "") -> plt.Figure:
    """Forest plot of hazard ratios (log scale) with 95 % CIs; ``table`` has ``label``, HR, lower, upper and
    optionally a ``truth`` column drawn as a hollow diamond (planted value or oracle)."""
    rows = table.reset_index(drop=True)
    fig, ax = plt.subplots(figsize=(7.6, 1.1 + 0.34 * len(rows)))
    y = np.arange(len(rows))[::-1]
    ax.errorbar(rows["HR"], y, xerr=[rows["HR"] - rows["lower"], rows["upper"] - rows["HR"]], fmt="s",
                color="#333333", ecolor="#4C72B0", capsize=2, ms=4, label="model (95 % CI)")  # fmt: skip
    if truth is not None and truth in rows.columns and rows[truth].notna().any():
        ax.scatter(rows[truth], y, marker="D", facecolors="none", edgecolors="#C44E52", s=32, zorder=3, label=truth)
    ax.axvline(1.0, color="grey", lw=0.8, ls="--")
    log_hr_axis(ax)
    if rows.empty:
        ax.text(0.5, 0.5, "no subgroup has enough deaths for an estimate", ha="center", va="center",
                transform=ax.transAxes, fontsize=9)  # fmt: skip
    ax.set_yticks(y, rows[label], fontsize=8)
    ax.set(xlabel="hazard ratio (log scale)", title=title)
    ax.legend(
        fontsize=7, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.16 - 1.5 / (len(rows) + 4)), ncol=2
    )
    fig.tight_layout()
    return fig
