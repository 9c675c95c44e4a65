"""Figures of the Robustness chapter; each function takes tidy tables from ``fahr.analysis.robustness`` and returns a
matplotlib Figure."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from fahr.analysis.robustness import SURGERY, UNITS, level_label
from fahr.stats.agreement import mean_ci


def paired_differences(panels: dict[str, pd.DataFrame]) -> plt.Figure:
    """One panel per measure: every person's change (perturbed − reference) at every condition and strength,
    with the mean and its 95 % CI; the dashed line is no change (the planted truth: the age did not change)."""
    first = next(iter(panels.values()))
    levels = list(dict.fromkeys(level_label(c, s) for c, s in zip(first["condition"], first["strength"], strict=True)))
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 0.32 * len(levels) + 1.2), sharey=True)
    for ax, (title, pairs) in zip(np.atleast_1d(axes), panels.items(), strict=True):
        data = pairs.assign(level=[level_label(c, s) for c, s in zip(pairs["condition"], pairs["strength"],
                                                                        strict=True)])  # fmt: skip
        sns.stripplot(data=data, x="difference", y="level", order=levels, size=2.5, alpha=0.45, color="#4C72B0",
                      jitter=0.25, ax=ax)  # fmt: skip
        for i, level in enumerate(levels):
            mean, low, high = mean_ci(data.loc[data["level"] == level, "difference"])
            ax.plot([low, high], [i, i], color="#C44E52", lw=2)
            ax.plot(mean, i, "o", color="#C44E52", ms=4)
        ax.axvline(0, color="grey", lw=1, ls="--")
        ax.set(title=title, xlabel="perturbed − reference", ylabel="")
    fig.tight_layout()
    return fig


def bland_altman(pairs: pd.DataFrame, unit: str) -> plt.Figure:
    """Bland–Altman panels, one per condition at its strongest positive strength: difference against mean of
    the two photos, with the bias and the 95 % limits of agreement."""
    strongest = pairs.groupby("condition", sort=False)["strength"].max()
    cols = 4
    rows = int(np.ceil(len(strongest) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(12, 2.8 * rows), squeeze=False, sharey=True)
    for ax in axes.ravel()[len(strongest) :]:
        ax.axis("off")
    for ax, (condition, strength) in zip(axes.ravel(), strongest.items(), strict=False):
        g = pairs[(pairs["condition"] == condition) & (pairs["strength"] == strength)]
        mean = (g["reference"] + g["perturbed"]) / 2
        d = g["difference"]
        bias, sd = d.mean(), d.std(ddof=1)
        ax.scatter(mean, d, s=9, alpha=0.6, color="#4C72B0", linewidth=0)
        ax.axhline(bias, color="#C44E52", lw=1.2)
        for limit in (bias - 1.96 * sd, bias + 1.96 * sd):
            ax.axhline(limit, color="#C44E52", lw=0.9, ls="--")
        ax.axhline(0, color="grey", lw=0.7)
        ax.set_title(level_label(condition, strength), fontsize=9)
        ax.set(xlabel=f"mean of the two ({unit})", ylabel=f"difference ({unit})")
    fig.tight_layout()
    return fig


def dose_response(dose: pd.DataFrame, unit: str, title: str) -> plt.Figure:
    """Mean shift (95 % CI, blue) against strength for every condition (strength 0 = the reference photo); with
    an ``MAE vs truth`` column, the error against the true age on a second axis (orange, dashed)."""
    conditions = list(dict.fromkeys(dose["condition"]))
    cols = 4
    rows = int(np.ceil(len(conditions) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(12, 2.7 * rows), squeeze=False)
    for ax in axes.ravel()[len(conditions) :]:
        ax.axis("off")
    for ax, condition in zip(axes.ravel(), conditions, strict=False):
        g = dose[dose["condition"] == condition]
        ax.fill_between(g["strength"], g["shift CI low"], g["shift CI high"], color="#4C72B0", alpha=0.2)
        ax.plot(g["strength"], g["mean shift"], "o-", color="#4C72B0", ms=3, label="mean shift")
        ax.axhline(0, color="grey", lw=0.7)
        ax.set_title(condition, fontsize=9)
        ax.set(
            xlabel=f"strength{' (' + UNITS[condition] + ')' if condition in UNITS else ''}", ylabel=f"shift ({unit})"
        )
        if "MAE vs truth" in g:
            twin = ax.twinx()
            twin.plot(g["strength"], g["MAE vs truth"], "s--", color="#DD8452", ms=3)
            twin.set_ylim(0, max(dose["MAE vs truth"].max() * 1.15, 1e-9))
            twin.tick_params(axis="y", colors="#DD8452", labelsize=7)
            twin.grid(False)
            if ax is axes.ravel()[cols - 1] or ax is axes.ravel()[len(conditions) - 1]:
                twin.set_ylabel(f"MAE vs true age ({unit})", color="#DD8452", fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def surgery(frame: pd.DataFrame, conditions: Sequence[str] = SURGERY) -> plt.Figure:
    """FaceAge's change after each operation of ``conditions`` (rows of ``fahr.analysis.robustness.surgery``)
    against the planted years-equivalent change of the visible cues, per person; the diagonal is a model that
    reads exactly the planted change, the horizontal line the true age (unchanged)."""
    fig, ax = plt.subplots(figsize=(5.6, 4.4))
    frame = frame[frame["condition"].isin(conditions)]
    data = frame.assign(operation=[level_label(c, s) for c, s in zip(frame["condition"], frame["strength"],
                                                                        strict=True)])  # fmt: skip
    sns.scatterplot(data=data, x="years equivalent", y="age_pred change", hue="operation", s=22, alpha=0.8, ax=ax)
    low = min(data["years equivalent"].min(), data["age_pred change"].min(), -1.0)
    high = max(data["years equivalent"].max(), data["age_pred change"].max(), 1.0)
    ax.plot([low, high], [low, high], color="grey", lw=1, ls="--", label="reads the planted change")
    ax.axhline(0, color="black", lw=0.8)
    ax.set(xlabel="planted change of the visible cues (years equivalent)", ylabel="FaceAge after − before (years)")
    ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    return fig


def warp_vs_render(table: pd.DataFrame, unit: str) -> plt.Figure:
    """Mean shift under the rendered condition against the same condition as a 2-D image operation."""
    fig, ax = plt.subplots(figsize=(5.0, 4.4))
    sns.scatterplot(data=table, x="rendered", y="image operation", hue="condition", s=40, ax=ax)
    for strength, x, y in zip(table["strength"], table["rendered"], table["image operation"], strict=True):
        ax.annotate(f"{strength:g}", (x, y), fontsize=6, xytext=(3, 2), textcoords="offset points")
    lim = np.abs(table[["rendered", "image operation"]].to_numpy()).max() * 1.1 + 1e-9
    ax.plot([-lim, lim], [-lim, lim], color="grey", lw=1, ls="--")
    ax.set(xlabel=f"rendered by FAHR-Synth: mean shift ({unit})", ylabel=f"2-D image operation: mean shift ({unit})")
    ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    return fig
