"""Figures the chapters show; each function takes tidy tables and returns a matplotlib Figure."""

from __future__ import annotations

import matplotlib.pyplot as plt
import matplotlib.ticker as mticker
import numpy as np
import pandas as pd
import seaborn as sns

sns.set_theme(style="whitegrid", context="notebook")


def matmul_throughput(table: pd.DataFrame) -> plt.Figure:
    """Bar chart of fp32 matmul GFLOP/s per matrix size (``fahr.bench.matmul_gflops``)."""
    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    sns.barplot(data=table, x="size", y="gflops", color="#4C72B0", ax=ax)
    ax.set(xlabel="square matrix size n (n×n @ n×n, fp32)", ylabel="GFLOP/s",
           title=f"Matrix-multiply throughput, {int(table['threads'].iloc[0])} threads")  # fmt: skip
    fig.tight_layout()
    return fig


def chapter_times(table: pd.DataFrame) -> plt.Figure:
    """Horizontal bars: seconds per chapter at its last execution (``reproducibility.timings_table``)."""
    fig, ax = plt.subplots(figsize=(5.5, 0.5 + 0.45 * max(len(table), 1)))
    ax.barh(table.index[::-1], table["seconds"][::-1], color="#55A868")
    ax.set(xlabel="seconds (last execution)", title="Time per chapter")
    fig.tight_layout()
    return fig


def face_grid(images: list, labels: list[str], columns: int, scale: float = 1.35) -> plt.Figure:
    """A grid of face images with a caption under each."""
    rows = int(np.ceil(len(images) / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(scale * columns, scale * 1.18 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, img, label in zip(axes.ravel(), images, labels, strict=False):
        ax.imshow(img)
        ax.set_title(label, fontsize=7, pad=2)
    fig.tight_layout(pad=0.3)
    return fig


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


def region_map(image: np.ndarray, regions: np.ndarray, names: tuple[str, ...]) -> plt.Figure:
    """A face beside its named-region label map, with a legend."""
    palette = sns.color_palette("tab10", len(names))
    colours = np.array([(1.0, 1.0, 1.0)] + palette[1:], dtype=float)
    fig, axes = plt.subplots(1, 2, figsize=(6.4, 3.0))
    axes[0].imshow(image)
    axes[1].imshow(image)
    axes[1].imshow(colours[regions], alpha=0.65)
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


def alignment_example(photo: np.ndarray, landmarks: np.ndarray, crop: np.ndarray, template: np.ndarray) -> plt.Figure:
    """A photo with its five detected landmarks, and the aligned crop with the template points."""
    fig, axes = plt.subplots(
        1, 2, figsize=(6.4, 3.1), gridspec_kw={"width_ratios": [photo.shape[1] / photo.shape[0], 1]}
    )
    axes[0].imshow(photo)
    axes[0].scatter(landmarks[:, 0], landmarks[:, 1], s=14, c="#DD3333")
    axes[0].set_title("photo and five detected landmarks", fontsize=9)
    axes[1].imshow(crop)
    axes[1].scatter(template[:, 0], template[:, 1], s=14, facecolors="none", edgecolors="#33DD33")
    axes[1].set_title(f"aligned {crop.shape[0]}×{crop.shape[1]} crop, template ○", fontsize=9)
    for ax in axes:
        ax.axis("off")
    fig.tight_layout()
    return fig


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


def gap_recovery(frame: pd.DataFrame, model: str = "faceage") -> plt.Figure:
    """FaceAge's gap (prediction − chronological age) against the biological-age gap FAHR-Synth planted."""
    fig, ax = plt.subplots(figsize=(5, 4))
    sns.regplot(x=frame["bio_gap"], y=frame[model] - frame["true_age"], scatter_kws={"s": 8, "alpha": 0.4}, ax=ax,
                line_kws={"color": "#C44E52"})  # fmt: skip
    lim = [frame["bio_gap"].min(), frame["bio_gap"].max()]
    ax.plot(lim, lim, color="grey", lw=1, ls="--", label="perfect recovery")
    ax.set(xlabel="planted biological-age gap (years)", ylabel="FaceAge − chronological age (years)")
    ax.legend(frameon=False)
    fig.tight_layout()
    return fig


def efficiency_curve(table: pd.DataFrame) -> plt.Figure:
    """Validation FaceAge MAE and FaceSurvival concordance against the share of labelled data used."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, metric in zip(axes, ("FaceAge val MAE (years)", "FaceSurvival val C"), strict=True):
        sns.lineplot(data=table, x="fraction", y=metric, hue="encoder", marker="o", ax=ax)
        ax.set(xscale="log", xlabel="share of the labelled training data")
    axes[1].axhline(0.5, color="grey", lw=0.8, ls="--")
    fig.tight_layout()
    return fig


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


def log_hr_axis(ax: plt.Axes) -> None:
    """A log-scale hazard-ratio axis labelled in plain numbers (0.5, 1, 2, 4), not powers of ten."""
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(mticker.LogLocator(base=2))
    ax.xaxis.set_major_formatter(mticker.FormatStrFormatter("%g"))
    ax.xaxis.set_minor_formatter(mticker.NullFormatter())


def forest(table: pd.DataFrame, label: str = "label", truth: str | None = None, title: str = "") -> plt.Figure:
    """Forest plot of hazard ratios (log scale) with 95 % CIs; ``table`` has ``label``, HR, lower, upper and
    optionally a ``truth`` column drawn as a hollow diamond (planted value or oracle)."""
    rows = table.reset_index(drop=True)
    fig, ax = plt.subplots(figsize=(7.6, 1.1 + 0.34 * len(rows)))
    y = np.arange(len(rows))[::-1]
    ax.errorbar(rows["HR"], y, xerr=[rows["HR"] - rows["lower"], rows["upper"] - rows["HR"]], fmt="s",
                color="#333333", ecolor="#4C72B0", capsize=2, ms=4, label="model (95 % CI)")  # fmt: skip
    if truth is not None and rows[truth].notna().any():
        ax.scatter(rows[truth], y, marker="D", facecolors="none", edgecolors="#C44E52", s=32, zorder=3, label=truth)
    ax.axvline(1.0, color="grey", lw=0.8, ls="--")
    log_hr_axis(ax)
    if rows.empty:
        ax.text(0.5, 0.5, "no subgroup has enough deaths for an estimate", ha="center", va="center",
                transform=ax.transAxes, fontsize=9)  # fmt: skip
    ax.set_yticks(y, rows[label], fontsize=8)
    ax.set(xlabel="hazard ratio (log scale)", title=title)
    ax.legend(
        fontsize=7, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.16 - 1.5 / (len(rows) + 4)), ncol=2
    )
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


def report_summary(t: pd.DataFrame, data: str) -> plt.Figure:
    """Three headline panels of the reproduction report from ``fahr.results.table``: FaceAge error, the adjusted
    top-vs-bottom quartile hazard ratio, and concordance — each model beside the oracle and the paper."""
    fig, axes = plt.subplots(1, 3, figsize=(13.5, 3.9))
    ax = axes[0]
    names = {"faceage.mae": "FaceAge", "faceage.mae.stage1": "stage 1 only", "faceage.mae.scratch": "from scratch",
             "faceage.mae.mean_baseline": "mean age"}  # fmt: skip
    keys = [k for k in names if k in t.index]
    ax.barh([names[k] for k in keys][::-1], [t.loc[k, "value"] for k in keys][::-1], color="#4C72B0")
    if keys:
        ax.axvline(t.loc[keys[0], "oracle"], color="#C44E52", ls="--", label="oracle floor")
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
        if oracle_key in t.index:
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
