"""Figures of the Pretraining chapter."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from fahr.data.photo import Face
from fahr.report.figures.common import face_grid


def pretrain_curves(log: pd.DataFrame) -> plt.Figure:
    """MAE pretraining: training loss by optimizer step and validation loss at the end of each epoch."""
    fig, ax = plt.subplots(figsize=(6, 3.4))
    train = log[log["event"] == "train"]
    ax.plot(train["step"], train["loss"], color="#4C72B0", label="training loss (masked patches)")
    evals = log[log["event"] == "eval"]
    ax.plot(evals["step"], evals["val_loss"], "o-", color="#DD8452", label="validation loss (fixed masks)")
    ax.set(xlabel="optimizer step", ylabel="normalised-pixel MSE", title="MAE pretraining")
    ax.legend(frameon=False)
    fig.tight_layout()
    return fig


def reconstructions(pictures: dict[str, np.ndarray]) -> plt.Figure:
    """Rows of faces: original, masked input, reconstruction, reconstruction pasted into the visible patches."""
    names = list(pictures)
    # validation photos of the unlabelled pretraining corpus: one person each
    images = [Face(pictures[name][i], "pretrain", 1) for i in range(len(pictures[names[0]])) for name in names]
    return face_grid(images, names * len(pictures[names[0]]), columns=len(names), scale=1.5)


def label_efficiency(table: pd.DataFrame) -> plt.Figure | None:
    """The age probes' test MAE against the share of labelled training people, one line per kind of features
    (``fahr.analysis.pretraining.label_efficiency``); None without an age dataset."""
    if table.empty:
        return None
    fig, ax = plt.subplots(figsize=(6, 3.4))
    for (name, rows), colour in zip(table.groupby("features", sort=False), ("#4C72B0", "#DD8452", "#55A868"),
                                    strict=False):  # fmt: skip
        ax.plot(100 * rows["share"], rows["test MAE (years)"], "o-", color=colour, label=name)
    ax.set_xscale("log")
    ticks = sorted(100 * table["share"].unique())
    ax.set_xticks(ticks, [f"{t:g} %" for t in ticks])
    ax.minorticks_off()
    ax.set(xlabel="labelled training people used", ylabel="test MAE (years)", title="Age probes on frozen features")
    ax.legend(frameon=False)
    fig.tight_layout()
    return fig
