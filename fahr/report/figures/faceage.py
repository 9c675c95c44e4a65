"""Figures of the FaceAge chapter."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns


def decade_errors(long: pd.DataFrame) -> plt.Figure:
    """MAE and signed error (years) per age decade, one line per model."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6), sharex=True)
    for ax, metric in zip(axes, ("MAE", "signed error"), strict=True):
        sns.lineplot(data=long, x="decade", y=metric, hue="model", marker="o", ax=ax, sort=False)
        ax.set(xlabel="age decade (years)", ylabel=f"{metric} (years)")
        ax.tick_params(axis="x", rotation=45)
    axes[1].axhline(0, color="grey", lw=0.8)
    axes[1].get_legend().remove()
    fig.tight_layout()
    return fig


def predicted_vs_true(frame: pd.DataFrame, model: str) -> plt.Figure:
    """Predicted against true age (years) on the test photos, coloured by dataset, with the identity line."""
    fig, ax = plt.subplots(figsize=(5, 5))
    sns.scatterplot(data=frame, x="age", y=model, hue="dataset", s=10, alpha=0.6, ax=ax, linewidth=0)
    ax.plot([0, 100], [0, 100], color="grey", lw=1)
    ax.set(xlabel="age (years)", ylabel=f"{model} prediction (years)", xlim=(0, 100), ylim=(0, 100), aspect="equal")
    ax.legend(fontsize=7, frameon=False, markerscale=2)
    fig.tight_layout()
    return fig


def gap_recovery(frame: pd.DataFrame, model: str = "faceage") -> plt.Figure | None:
    """FaceAge's gap (prediction − chronological age) against the biological-age gap FAHR-Synth planted (None on
    real data, which has no planted gap)."""
    if "bio_gap" not in frame.columns:
        return None
    fig, ax = plt.subplots(figsize=(5, 4))
    sns.regplot(x=frame["bio_gap"], y=frame[model] - frame["true_age"], scatter_kws={"s": 8, "alpha": 0.4}, ax=ax,
                line_kws={"color": "#C44E52"})  # fmt: skip
    lim = [frame["bio_gap"].min(), frame["bio_gap"].max()]
    ax.plot(lim, lim, color="grey", lw=1, ls="--", label="perfect recovery")
    ax.set(xlabel="planted biological-age gap (years)", ylabel="FaceAge − chronological age (years)")
    ax.legend(frameon=False)
    fig.tight_layout()
    return fig


def efficiency_curve(table: pd.DataFrame) -> plt.Figure | None:
    """Validation FaceAge MAE and (where it was trained) FaceSurvival concordance against the share of labelled
    data used."""
    metrics = [m for m in ("FaceAge val MAE (years)", "FaceSurvival val C") if table[m].notna().any()]
    if not metrics:  # nothing was fine-tuned on shares of the labels (evaluate-only): no figure
        return None
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.6), squeeze=False)
    for ax, metric in zip(axes.ravel(), metrics, strict=True):
        sns.lineplot(data=table, x="fraction", y=metric, hue="encoder", marker="o", ax=ax)
        ax.set(xscale="log", xlabel="share of the labelled training data")
        if metric == "FaceSurvival val C":
            ax.axhline(0.5, color="grey", lw=0.8, ls="--")
    fig.tight_layout()
    return fig
