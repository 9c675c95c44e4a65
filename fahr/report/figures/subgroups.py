"""Figures of the Subgroups chapter."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from fahr.report.figures.common import forest


def subgroup_mae(table: pd.DataFrame) -> plt.Figure:
    """FaceAge MAE with 95 % CIs per level, one panel per subgroup variable (``subgroups.faceage_mae``)."""
    variables = list(dict.fromkeys(table["variable"]))
    fig, axes = plt.subplots(1, len(variables), figsize=(3.1 * len(variables), 3.4), sharey=True, squeeze=False)
    for ax, variable in zip(axes.ravel(), variables, strict=True):
        t = table[table["variable"] == variable]
        x = np.arange(len(t))
        ax.bar(x, t["MAE"], color="#4C72B0", alpha=0.85)
        ax.errorbar(x, t["MAE"], yerr=[t["MAE"] - t["lower"], t["upper"] - t["MAE"]], fmt="none", ecolor="black")
        ax.set_xticks(x, [s.replace("synth-", "") for s in t["level"]], rotation=40, ha="right", fontsize=8)
        ax.set(title=variable, xlabel="")
    axes[0, 0].set_ylabel("FaceAge MAE (years)")
    fig.tight_layout()
    return fig


def subgroup_forest(table: pd.DataFrame, title: str) -> plt.Figure:
    """Forest plot of subgroup hazard ratios (``subgroups.survival_hr``), subgroups without an estimate omitted."""
    t = table.dropna(subset=["HR"])
    t = t.assign(label=t["variable"] + ": " + t["level"] + " (" + t["deaths"].astype(str) + " deaths)")
    return forest(t, truth="oracle HR", title=title)


def subgroup_forests(table: pd.DataFrame) -> list[plt.Figure]:
    """One ``subgroup_forest`` per cohort of ``subgroups.survival_tables``."""
    return [
        subgroup_forest(g, title=f"Cohort {label}: FaceSurvival aHR per SD by subgroup")
        for label, g in table.groupby("cohort", sort=False)
    ]
