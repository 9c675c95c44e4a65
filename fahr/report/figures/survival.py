"""Figures of the FaceSurvival chapter."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from fahr.report.figures.common import forest

QUARTILE_COLOURS = {"Q1": "#4C72B0", "Q2": "#55A868", "Q3": "#DD8452", "Q4": "#C44E52"}


def km_quartiles(frames: dict[str, pd.DataFrame], title: str = "FaceSurvival risk quartile") -> plt.Figure:
    """Kaplan–Meier curves by risk quartile, one panel per cohort, numbers at risk under each panel."""
    from lifelines import KaplanMeierFitter
    from lifelines.plotting import add_at_risk_counts

    fig, axes = plt.subplots(1, len(frames), figsize=(5.6 * len(frames), 4.9), sharey=True, squeeze=False)
    for ax, (name, frame) in zip(axes.ravel(), frames.items(), strict=True):
        fits = []
        for q, g in sorted(frame.groupby("quartile"), key=lambda kv: kv[0]):
            fit = KaplanMeierFitter(label=q).fit(g["time"], g["event"])
            fit.plot_survival_function(ax=ax, ci_show=True, ci_alpha=0.12, color=QUARTILE_COLOURS.get(q))
            fits.append(fit)
        ax.set(title=f"{name}: by {title}", xlabel="years since photo", ylabel="survival", ylim=(0, 1.02))
        ax.legend(fontsize=8, frameon=False, title="quartile", title_fontsize=8)
        ax.set_xticks(np.arange(0, np.ceil(frame["time"].max()) + 1, 1.0))
        add_at_risk_counts(*fits, ax=ax, rows_to_show=["At risk"], fig=fig)
    fig.tight_layout()
    return fig


def concordance_bars(table: pd.DataFrame) -> plt.Figure:
    """Concordance per score and cohort with bootstrap 95 % CIs (``table``: cohort, score, C, lower, upper)."""
    cohorts_ = list(dict.fromkeys(table["cohort"]))
    scores_ = list(dict.fromkeys(table["score"]))
    fig, ax = plt.subplots(figsize=(6.8, 0.8 + 0.55 * len(scores_)))
    height = 0.8 / len(cohorts_)
    colours = ["#4C72B0", "#DD8452", "#55A868"]
    for k, cohort in enumerate(cohorts_):
        t = table[table["cohort"] == cohort].set_index("score").reindex(scores_)
        y = np.arange(len(scores_))[::-1] + (k - (len(cohorts_) - 1) / 2) * height
        ax.barh(y, t["C"] - 0.5, left=0.5, height=height * 0.9, color=colours[k % 3], label=cohort)
        ax.errorbar(t["C"], y, xerr=[t["C"] - t["lower"], t["upper"] - t["C"]], fmt="none", ecolor="black", lw=0.8)
    ax.set_yticks(np.arange(len(scores_))[::-1], scores_, fontsize=8)
    ax.axvline(0.5, color="grey", lw=0.8)
    ax.set(xlabel="concordance (0.5 = chance)", xlim=(0.4, 1.0), title="Harrell's C with bootstrap 95 % CI")
    ax.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig


def auc_curves(table: pd.DataFrame) -> plt.Figure:
    """Time-dependent AUC per score against the horizon, one panel per cohort."""
    grid = sns.relplot(data=table, x="year", y="auc", hue="score", col="cohort", kind="line", marker="o",
                       height=3.2, aspect=1.15, facet_kws={"sharey": True})  # fmt: skip
    grid.set(ylim=(0.4, 1.0), xlabel="horizon (years)", ylabel="time-dependent AUC")
    for ax in grid.axes.ravel():
        ax.axhline(0.5, color="grey", lw=0.8)
    grid.set_titles("{col_name}")
    return grid.figure


def headline_forest(head: pd.DataFrame) -> plt.Figure:
    """The headline hazard ratios of both cohorts (``survival.headline``) as a forest plot, with the oracle's
    beside them where there is one (FAHR-Synth)."""
    rows = head.assign(label=head["cohort"].str[0] + " · " + head["quantity"], HR=head["aHR"])
    truth = "oracle aHR" in head.columns
    title = "Adjusted hazard ratios in cohorts A and B" + (": model and oracle" if truth else "")
    return forest(rows.rename(columns={"oracle aHR": "oracle"}), truth="oracle" if truth else None, title=title)
