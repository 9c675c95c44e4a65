"""Figures of the reproduction report."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from fahr.report.figures.common import log_hr_axis


def report_summary(t: pd.DataFrame, data: str) -> plt.Figure:
    """Three headline panels of the reproduction report from ``fahr.report.results.table``: FaceAge error, the adjusted
    top-vs-bottom quartile hazard ratio, and concordance — each model beside the oracle and the paper."""
    fig, axes = plt.subplots(1, 3, figsize=(13.5, 3.9))
    ax = axes[0]
    names = {"faceage.mae": "FaceAge", "faceage.mae.appa-real": "FaceAge, APPA-REAL test",
             "faceage.mae.stage1": "stage 1 only", "faceage.mae.scratch": "from scratch",
             "faceage.mae.mean_baseline": "mean age"}  # fmt: skip
    keys = [k for k in names if k in t.index]
    ax.barh([names[k] for k in keys][::-1], [t.loc[k, "value"] for k in keys][::-1], color="#4C72B0")
    if keys and pd.notna(t.loc[keys[0]].get("oracle")):
        ax.axvline(t.loc[keys[0], "oracle"], color="#C44E52", ls="--", label="oracle floor")
    if keys and pd.notna(t.loc[keys[0]].get("paper")):
        ax.axvline(t.loc[keys[0], "paper"], color="#55A868", ls=":", label="paper (APPA-REAL)")
    ax.set(xlabel="test MAE (years)", title="FaceAge: age error")
    ax.legend(fontsize=7, frameon=False, loc="lower right")
    ax = axes[1]
    for i, c in enumerate("AB"):
        key = f"survival.{c}.q4_vs_q1"
        if key not in t.index:
            continue
        r = t.loc[key]
        label = "model (95 % CI)" if i == 0 else None
        ax.errorbar(r["value"], i, xerr=[[r["value"] - r["lower"]], [r["upper"] - r["value"]]], fmt="s",
                    color="#333333", ecolor="#4C72B0", capsize=3, label=label)  # fmt: skip
        if pd.notna(r.get("oracle")):
            ax.scatter(r["oracle"], i, marker="D", facecolors="none", edgecolors="#C44E52", s=40,
                       label="oracle" if i == 0 else None)  # fmt: skip
        if pd.notna(r.get("paper")):
            ax.scatter(r["paper"], i, marker="*", color="#55A868", s=90, label="paper")
    ax.axvline(1, color="grey", lw=0.8)
    log_hr_axis(ax)
    ax.set_yticks([0, 1], ["cohort A (test)", "cohort B"])
    ax.set(ylim=(-0.6, 1.6), xlabel="adjusted HR, top vs bottom quartile", title="FaceSurvival: Q4 vs Q1")
    ax.legend(fontsize=7, frameon=False, loc="lower right")
    ax = axes[2]
    scores = ["FaceAge", "FaceSurvival", "FaceAge + FaceSurvival"]
    for i, c in enumerate("AB"):
        for j, s in enumerate(scores):
            key = f"c.{c}.{s}"
            if key not in t.index:
                continue
            r = t.loc[key]
            y = i * (len(scores) + 1) + j
            ax.errorbar(r["value"], y, xerr=[[r["value"] - r["lower"]], [r["upper"] - r["value"]]], fmt="o",
                        color=["#4C72B0", "#DD8452", "#55A868"][j], capsize=2)  # fmt: skip
        oracle_key = f"c.{c}.FaceSurvival"
        if oracle_key in t.index and pd.notna(t.loc[oracle_key].get("oracle")):
            top = i * (len(scores) + 1)
            ax.plot([t.loc[oracle_key, "oracle"]] * 2, [top - 0.4, top + len(scores) - 0.6], color="#C44E52", ls="--")
    ticks = [i * (len(scores) + 1) + j for i in range(2) for j in range(len(scores))]
    ax.set_yticks(ticks, [f"{c}: {s}" for c in "AB" for s in scores], fontsize=8)
    ax.invert_yaxis()
    ax.axvline(0.5, color="grey", lw=0.8)
    ax.set(xlabel="Harrell's C (dashed: oracle)", title="Concordance")
    fig.suptitle(f"FAHR-Face, reproduced — {data}", fontsize=11)
    fig.tight_layout()
    return fig
