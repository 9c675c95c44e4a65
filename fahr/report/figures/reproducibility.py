"""Figures of the Reproducibility chapter."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

NO_TIMINGS = "No other chapter has been executed yet."


def matmul_throughput(table: pd.DataFrame) -> plt.Figure:
    """Bar chart of fp32 matmul GFLOP/s per matrix size (``fahr.bench.matmul_gflops``)."""
    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    sns.barplot(data=table, x="size", y="gflops", color="#4C72B0", ax=ax)
    ax.set(xlabel="square matrix size n (n×n @ n×n, fp32)", ylabel="GFLOP/s",
           title=f"Matrix-multiply throughput, {int(table['threads'].iloc[0])} threads")  # fmt: skip
    fig.tight_layout()
    return fig


def chapter_times(table: pd.DataFrame) -> plt.Figure:
    """Horizontal bars: seconds per chapter at its last execution (``reproducibility.timings_table``); with no
    chapter executed yet, a note that says so."""
    fig, ax = plt.subplots(figsize=(5.5, 0.5 + 0.45 * max(len(table), 1)))
    if table.empty:
        ax.text(0.5, 0.5, NO_TIMINGS, ha="center", va="center", transform=ax.transAxes)
        ax.set(xticks=[], yticks=[])
    else:
        ax.barh(table.index[::-1], table["seconds"][::-1], color="#55A868")
    ax.set(xlabel="seconds (last execution)", title="Time per chapter")
    fig.tight_layout()
    return fig
