"""Figures of the Saliency chapter. Privacy: every face and map is drawn through ``fahr.report.figures.faces``,
which refuses one made from fewer clinical patients than ``privacy.min_people``: maps of clinical-cohort photos
are shown only as averages over at least that many patients, and ``example_figure`` (single photos) never shows
them."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from fahr.analysis.saliency import Explained
from fahr.data.photo import Face
from fahr.data.synth import truth
from fahr.data.synth.render import REGIONS
from fahr.explain.attribution import METHODS
from fahr.report.figures import faces


def _average(maps: np.ndarray) -> np.ndarray:
    """Mean over photos of |map|, each photo's map first scaled to sum 1 (every photo weighs the same)."""
    a = np.abs(maps)
    return (a / np.maximum(a.sum(axis=(1, 2), keepdims=True), 1e-12)).mean(0)


def average_figure(explained: list[Explained], methods=METHODS) -> plt.Figure:
    """Rows of runs: the average face, then each method's population-averaged |saliency| over it."""
    size = (2.3 * (1 + len(methods)), 2.75 * len(explained))
    fig, axes = plt.subplots(len(explained), 1 + len(methods), figsize=size, squeeze=False)
    for e in explained:  # every average checked before anything is drawn
        faces.check(Face(e.mean_image, e.cohort, e.people))
    for row, e in zip(axes, explained, strict=True):
        face = np.clip(e.mean_image, 0, 1)
        faces.draw(row[0], Face(face, e.cohort, e.people))
        row[0].set_title(f"average face\n{e.cohort}, {len(e.image_ids)} photos", fontsize=8)
        for ax, method in zip(row[1:], methods, strict=True):
            heat = _average(e.maps[method])
            faces.draw(ax, Face(face.mean(-1), e.cohort, e.people), cmap="gray", vmin=0, vmax=1)
            faces.draw(ax, Face(heat, e.cohort, e.people), cmap="inferno", alpha=0.6, vmin=0,
                       vmax=np.quantile(heat, 0.995))  # fmt: skip
            ax.set_title(f"{e.model}\n{method}", fontsize=8)
        for ax in row:
            ax.axis("off")
    fig.tight_layout(pad=0.4)
    return fig


def example_figure(e: Explained, photos_: int = 4, methods=METHODS) -> plt.Figure:
    """Individual photos and their maps: non-clinical cohorts only (the book never shows a patient's face)."""
    if e.clinical or e.images is None:
        raise ValueError(f"individual maps are shown only for non-clinical cohorts, not {e.cohort!r}")
    k = min(photos_, len(e.image_ids))
    fig, axes = plt.subplots(k, 1 + len(methods), figsize=(2.0 * (1 + len(methods)), 2.1 * k), squeeze=False)
    for i, row in enumerate(axes):
        faces.draw(row[0], Face(np.clip(e.images[i], 0, 1), e.cohort, 1))
        row[0].set_title(f"{e.model}: {e.outputs[i]:.1f}", fontsize=8)
        for ax, method in zip(row[1:], methods, strict=True):
            m = e.maps[method][i]
            lim = np.quantile(np.abs(m), 0.995) or 1.0
            faces.draw(ax, Face(e.images[i].mean(-1), e.cohort, 1), cmap="gray", vmin=0, vmax=1)
            faces.draw(ax, Face(m, e.cohort, 1), cmap="RdBu_r", alpha=0.65, vmin=-lim, vmax=lim)
            ax.set_title(method, fontsize=8)
        for ax in row:
            ax.axis("off")
    fig.tight_layout(pad=0.4)
    return fig


def regions_figure(table: pd.DataFrame, planted: bool = True) -> plt.Figure:
    """Saliency share / area share per region for each run, beside (``planted``: FAHR-Synth) the number of cues
    planted there."""
    regions = [r for r in REGIONS if r in set(table["region"])]
    fig, axes = plt.subplots(1, 1 + planted, figsize=(12 if planted else 8, 3.8), squeeze=False,
                             gridspec_kw={"width_ratios": [3, 1.2] if planted else [1]})  # fmt: skip
    ax = axes[0, 0]
    sns.barplot(data=table, x="region", y="share / area", hue="run", order=regions, ax=ax)
    ax.axhline(1.0, color="grey", lw=0.8, ls="--")
    ax.set(ylabel="saliency share / area share", xlabel="")
    ax.tick_params(axis="x", rotation=40)
    ax.legend(fontsize=7, frameon=False)
    if planted:
        truth.planted_cues().loc[regions].plot.barh(ax=axes[0, 1], color=["#4C72B0", "#C44E52"])
        axes[0, 1].invert_yaxis()
        axes[0, 1].set(xlabel="planted cues painted there", ylabel="", title="FAHR-Synth truth")
        axes[0, 1].legend(fontsize=7, frameon=False)
    fig.tight_layout()
    return fig


def faithfulness_figure(explained: list[Explained]) -> plt.Figure:
    """Deletion and insertion curves of every method (and the random ordering) for each run."""
    runs = [e for e in explained if e.faithfulness is not None]
    fig, axes = plt.subplots(len(runs), 2, figsize=(9, 3.0 * len(runs)), squeeze=False, sharex=True)
    for row, e in zip(axes, runs, strict=True):
        curves = e.faithfulness.curves()
        for ax, kind in zip(row, ("deletion", "insertion"), strict=True):
            sns.lineplot(data=curves[curves["curve"] == kind], x="fraction", y="output", hue="method", ax=ax)
            ax.axhline(0, color="grey", lw=0.6)
            ax.set(title=f"{e.model} on {e.cohort}: {kind}", xlabel=f"share of pixels {kind[:-3]}ed",
                   ylabel="normalised output")  # fmt: skip
            ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    return fig
