"""Figures of the Cohorts chapter."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from fahr.data.photo import Face
from fahr.report.figures import faces


def age_distributions(ages: pd.DataFrame) -> plt.Figure:
    """Histograms of chronological age (years), one panel per dataset."""
    datasets = list(dict.fromkeys(ages["dataset"]))
    cols = 4
    rows = int(np.ceil(len(datasets) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(11, 2.3 * rows), sharex=True, squeeze=False)
    for ax in axes.ravel()[len(datasets) :]:
        ax.axis("off")
    for ax, name in zip(axes.ravel(), datasets, strict=False):
        sns.histplot(ages.loc[ages["dataset"] == name, "age"], bins=np.arange(0, 105, 5), ax=ax, color="#4C72B0")
        ax.set(title=name, xlabel="age (years)", ylabel="photos", xlim=(0, 100))
    fig.tight_layout()
    return fig


def region_map(image: Face, regions: np.ndarray, names: tuple[str, ...]) -> plt.Figure:
    """A face beside its named-region label map, with a legend."""
    palette = sns.color_palette("tab10", len(names))
    colours = np.array([(1.0, 1.0, 1.0)] + palette[1:], dtype=float)
    fig, axes = plt.subplots(1, 2, figsize=(6.4, 3.0))
    faces.draw(axes[0], image)
    faces.draw(axes[1], image)
    faces.draw(axes[1], Face(colours[regions], image.cohort, image.people), alpha=0.65)  # the face's own regions
    for ax in axes:
        ax.axis("off")
    handles = [plt.Rectangle((0, 0), 1, 1, color=colours[i]) for i in range(1, len(names))]
    fig.legend(handles, names[1:], loc="center right", fontsize=8, frameon=False)
    fig.subplots_adjust(right=0.75, wspace=0.05)
    return fig


def km_by_group(truth: pd.DataFrame, group: str, title: str, ax: plt.Axes | None = None) -> plt.Axes:
    """Kaplan–Meier survival curves (lifelines) by ``group``; time in years."""
    from lifelines import KaplanMeierFitter

    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 3.8))
    for name, g in truth.groupby(group):
        KaplanMeierFitter(label=f"{name} (n={len(g)})").fit(g["time"], g["event"]).plot_survival_function(
            ax=ax, ci_show=False
        )
    ax.set(title=title, xlabel="years since photo", ylabel="survival", ylim=(0, 1.02))
    ax.legend(fontsize=7, frameon=False)
    return ax


def km_panels(frames: dict[str, pd.DataFrame], group: str) -> plt.Figure:
    """Side-by-side Kaplan–Meier panels, one per cohort."""
    fig, axes = plt.subplots(1, len(frames), figsize=(5.4 * len(frames), 3.9), sharey=True, squeeze=False)
    for ax, (name, truth) in zip(axes.ravel(), frames.items(), strict=True):
        km_by_group(truth, group, f"{name}: by {group.replace('_', ' ')}", ax=ax)
    fig.tight_layout()
    return fig


def alignment_example(photo: Face, landmarks: np.ndarray, crop: np.ndarray, template: np.ndarray) -> plt.Figure:
    """A photo with its five detected landmarks, and the aligned crop (of the same photo) with the template points."""
    shape = photo.pixels.shape
    fig, axes = plt.subplots(1, 2, figsize=(6.4, 3.1), gridspec_kw={"width_ratios": [shape[1] / shape[0], 1]})
    faces.draw(axes[0], photo)
    axes[0].scatter(landmarks[:, 0], landmarks[:, 1], s=14, c="#DD3333")
    axes[0].set_title("photo and five detected landmarks", fontsize=9)
    faces.draw(axes[1], Face(crop, photo.cohort, photo.people))
    axes[1].scatter(template[:, 0], template[:, 1], s=14, facecolors="none", edgecolors="#33DD33")
    axes[1].set_title(f"aligned {crop.shape[0]}×{crop.shape[1]} crop, template ○", fontsize=9)
    for ax in axes:
        ax.axis("off")
    fig.tight_layout()
    return fig
