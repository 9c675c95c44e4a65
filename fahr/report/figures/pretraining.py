"""Figures of the Pretraining chapter."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

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
    images = [pictures[name][i] for i in range(len(pictures[names[0]])) for name in names]
    return face_grid(images, names * len(pictures[names[0]]), columns=len(names), scale=1.5)
