"""Saliency: which pixels and facial regions FaceAge and FaceSurvival use, and how far to trust each map.

Three maps per photo (``fahr.explain.attribution``) relative to the average face of the photos explained, their
faithfulness (``fahr.explain.faithfulness``) and the share of saliency in each named facial region
(``fahr.explain.regions``), beside the regions where FAHR-Synth painted its age and frailty cues.

Privacy: maps of clinical-cohort photos are only ever averaged; ``explain`` keeps no individual clinical image.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from fahr import predict
from fahr.analysis.headline import Result
from fahr.data import align
from fahr.data.synth import cohorts, truth
from fahr.data.synth.render import render
from fahr.explain.attribution import CONTROL, METHODS, attribute, forward
from fahr.explain.faithfulness import Faithfulness, deletion_insertion
from fahr.explain.regions import density, distinctness, landmark_regions, profile, rank_correlation, regional
from fahr.stats import ALPHA
from fahr.train import common


def cue_alignment(shares: np.ndarray, areas: np.ndarray, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """For each planted signal: the share of saliency in the regions where its cues are painted beside those
    regions' share of the area, and the Spearman correlation (95 % bootstrap interval over photos) of the
    area-normalised regional profile with the number of cues painted per region."""
    planted = truth.planted_cues()
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(shares), size=(n_boot, len(shares)))
    rows = {}
    for column in planted.columns:
        counts = planted[column].to_numpy()
        inside = counts > 0
        boot = [rank_correlation(density(shares[d], areas[d]), counts) for d in draws]
        rows[column.replace(" cues", "")] = {
            "saliency share in cue regions": shares[:, inside].sum(1).mean(),
            "area share of cue regions": areas[:, inside].sum(1).mean(),
            "Spearman with cue count": rank_correlation(density(shares, areas), counts),
            "CI low": np.nanquantile(boot, 0.025),
            "CI high": np.nanquantile(boot, 0.975),
        }
    return pd.DataFrame(rows).T.rename_axis("planted signal")


@dataclass
class Explained:
    """Maps of one model on photos of one cohort. ``images`` is kept only for non-clinical cohorts."""

    model: str
    cohort: str
    image_ids: list[str]
    outputs: np.ndarray  # [N] the model's output on each photo
    baseline_output: float  # the output on the average face
    maps: dict[str, np.ndarray]  # method -> [N, H, W] signed
    regions: np.ndarray  # [N, H, W] region labels
    mean_image: np.ndarray  # [H, W, 3] in [0, 1]: the average face (the baseline)
    seconds: dict[str, float]
    ig_delta: np.ndarray  # [N] integrated-gradients completeness error
    faithfulness: Faithfulness | None = None
    images: np.ndarray | None = field(default=None, repr=False)  # [N, H, W, 3], non-clinical cohorts only
    landmarks_found: np.ndarray | None = None  # [N] real photos: HOG found the face the regions follow
    people: int = 1  # different people among the photos (an average is shown only over enough patients)

    @property
    def clinical(self) -> bool:
        return self.cohort.startswith("clinical")

    @property
    def label(self) -> str:
        return f"{self.model} on {self.cohort} ({len(self.image_ids)} photos)"

    def shares(self, method: str) -> tuple[np.ndarray, np.ndarray]:
        return regional(self.maps[method], self.regions)


def photos(cfg, cohort: str, split: str = "test", n: int | None = None) -> tuple[torch.Tensor, pd.DataFrame]:
    """``n`` (default ``cfg.saliency.photos``) photos of a cohort's split, drawn with the profile's seed, as the
    models see them (eval transform, [0, 1]), with their manifest rows (on FAHR-Synth, their rows of planted truth)."""
    table = common.cohort(cfg, cohort, split)
    n = min(n or cfg.saliency.photos, len(table))
    table = table.sample(n=n, random_state=cfg.seed).sort_values("image_id").reset_index(drop=True)
    dataset = common.dataset(table, cfg, "eval")
    items = [dataset[i] for i in range(len(dataset))]
    if any(item is None for item in items):
        raise RuntimeError(f"unreadable photos in {cohort}: {dataset.failures}")
    images = torch.stack([item["image"] for item in items])
    if cfg.data.source == "real":
        return images, table
    _, rows, _ = cohorts.load(cfg.profile, cohort)
    return images, table[["image_id"]].merge(rows, on="image_id")


def region_maps(rows: pd.DataFrame, size: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Named-region label maps ``[N, H, W]``: FAHR-Synth photos' own, rendered again from their truth rows; real
    photos', laid out on each face's own 68 landmarks (``landmark_regions``; ``template_regions`` is the layout
    of an average face, for comparison), with whether each face's landmarks were found on it (None for FAHR-Synth's
    rendered maps)."""
    if "texture_seed" not in rows.columns:  # no truth rows: real aligned photos
        points, found = align.file_landmarks(rows["path"].tolist(), size)
        return landmark_regions(points, size), found
    return np.stack(
        [render(*cohorts.face_of(cohorts.plain_row(row)), size=size, with_regions=True).regions
         for row in rows.to_dict("records")]
    ), None  # fmt: skip


def explain(cfg, model_name: str, cohort: str, split: str = "test", faithful: bool = True) -> Explained:
    """Every map of ``model_name`` (a key of ``fahr.predict.MODELS``) on ``cfg.saliency.photos`` photos of a
    FAHR-Synth cohort, with the average face as baseline, region maps and (``faithful``) deletion/insertion."""
    spec = predict.MODELS[model_name]
    model = spec.load(spec.train(cfg)).eval()
    x, rows = photos(cfg, cohort, split)
    baseline = x.mean(0, keepdim=True)
    maps, seconds, delta = attribute(model, x, baseline, cfg.saliency)
    faith = None
    if faithful:
        started = time.perf_counter()
        faith = deletion_insertion(model, x, baseline, maps, seed=cfg.seed)
        seconds["deletion and insertion"] = time.perf_counter() - started
    clinical = cohort.startswith("clinical")
    regions, found = region_maps(rows, x.shape[-1])
    return Explained(
        model=model_name, cohort=cohort, image_ids=rows["image_id"].tolist(), outputs=forward(model, x).numpy(),
        baseline_output=float(forward(model, baseline)[0]), maps={k: v.numpy() for k, v in maps.items()},
        regions=regions, mean_image=baseline[0].permute(1, 2, 0).numpy(), seconds=seconds,
        ig_delta=delta.numpy(), faithfulness=faith, landmarks_found=found, people=int(rows["subject_id"].nunique()),
        images=None if clinical else x.permute(0, 2, 3, 1).numpy(),
    )  # fmt: skip


def describe(cfg, age: Explained, survival: Explained | None) -> str:
    """A Markdown sentence on what was explained: photos of the age datasets (``age``) and of the clinical cohort
    (``survival``; None without clinical cohort A), image size (pixels), seed, occlusion square and stride (pixels),
    integrated-gradients steps and, on real photos, on how many the regions' landmarks were found on the face."""
    s = cfg.saliency
    clinical = (
        f"**{len(survival.image_ids)}** of clinical cohort A (FaceSurvival, and FaceAge again on the same photos)"
        if survival is not None
        else "none of clinical cohort A, which is not provided (so no FaceSurvival)"
    )
    text = (
        f"**{len(age.image_ids)} test photos** of the age datasets (FaceAge) and {clinical}, {cfg.synth.image_size}×"
        f"{cfg.synth.image_size} pixels, drawn with seed {cfg.seed}. Occlusion square {s.occlusion_window} px, "
        f"stride {s.occlusion_stride} px; integrated gradients with {s.ig_steps} steps."
    )
    found = [run.landmarks_found for run in (age, survival) if run is not None and run.landmarks_found is not None]
    if found:
        text += " The facial regions follow each face's own 68 landmarks: " + align.landmarks_sentence(
            np.concatenate(found), "photos"
        )
    return text


def ig_completeness_error(explained: list[Explained]) -> float:
    """The worst integrated-gradients completeness error over runs: per run, the largest |Σ attributions −
    (f(x) − f(baseline))| over photos divided by the mean |f(x) − f(baseline)|; a share (0 = complete)."""
    return max(
        float(np.abs(e.ig_delta).max() / max(np.abs(e.outputs - e.baseline_output).mean(), 1e-12)) for e in explained
    )


def faithfulness_reading(
    faith: pd.DataFrame, trusted: str, age: Explained, survival: Explained | None, ig_error: float
) -> str:
    """A Markdown paragraph from ``faithfulness_table``: the ``trusted`` method's deletion and insertion AUC for
    FaceAge (``age``) and FaceSurvival (``survival``; None without clinical cohort A) beside a random order's, and
    the integrated-gradients completeness error ``ig_error`` (a share, from ``ig_completeness_error``) in per cent."""

    def auc(run: Explained, method: str, curve: str) -> float:
        return faith.loc[(run.label, method), f"{curve} AUC"]

    def pair(run: Explained) -> str:
        return (
            f"deletion {auc(run, trusted, 'deletion'):.2f} and insertion {auc(run, trusted, 'insertion'):.2f} against "
            f"{auc(run, CONTROL, 'deletion'):.2f} and {auc(run, CONTROL, 'insertion'):.2f} for a random order"
        )

    both = survival is not None
    return (
        f"{'Averaged over both models' if both else 'For FaceAge'}, **{trusted}** orders pixels most faithfully "
        f"(highest insertion minus deletion AUC): for FaceAge {pair(age)}"
        + (f"; for FaceSurvival {pair(survival)}. " if both else ". ")
        + f"Integrated gradients are complete to within {100 * ig_error:.2g} % of the mean output gap. The regional "
        f"analysis below uses **{trusted}**; the tables also give the others."
    )


def regional_table(explained: list[Explained], method: str, planted: bool = True) -> pd.DataFrame:
    """Regional profiles of several runs side by side (long format), with (``planted``: FAHR-Synth) the planted
    cue counts."""
    frames = [profile(*e.shares(method)).assign(run=e.label).reset_index() for e in explained]
    table = pd.concat(frames, ignore_index=True)
    return table.merge(truth.planted_cues().reset_index(), on="region") if planted else table


def regions_with_planted(regions: pd.DataFrame) -> pd.DataFrame:
    """A ``regional_table`` wide: one row per region, the share and share / area of every run side by side, then
    the number of age and frailty cues planted there (``truth.planted_cues``)."""
    wide = regions.pivot(index="region", columns="run", values=["share", "share / area"])
    planted = truth.planted_cues()
    return wide.join(planted.set_axis(pd.MultiIndex.from_product([["planted"], planted.columns]), axis=1))


def alignment_table(explained: list[Explained], method: str, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """``cue_alignment`` of every run's ``method`` maps, stacked with the run's label as the outer index level."""
    tables = {e.label: cue_alignment(*e.shares(method), n_boot=n_boot, seed=seed) for e in explained}
    return pd.concat(tables, names=["run"])


def faithfulness_table(explained: list[Explained], n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Deletion and insertion AUC (95 % bootstrap intervals) of every method, per run."""
    frames = [e.faithfulness.auc(n_boot, seed).assign(run=e.label) for e in explained if e.faithfulness]
    return pd.concat(frames).reset_index().set_index(["run", "method"])


def trusted_method(table: pd.DataFrame) -> str:
    """The method whose ordering is most faithful over all runs: the highest mean insertion − deletion AUC."""
    score = (table["insertion AUC"] - table["deletion AUC"]).groupby(level="method").mean()
    return str(score.drop(CONTROL, errors="ignore").idxmax())


def distinctness_table(a: Explained, b: Explained, n_boot: int = 1000, n_perm: int = 1000, seed=0) -> pd.DataFrame:
    """``distinctness`` of two models' regional profiles on the same photos, one row per method."""
    if a.image_ids != b.image_ids:
        raise ValueError(f"{a.label} and {b.label} are not maps of the same photos")
    rows = {}
    for method in METHODS:
        (shares_a, areas), (shares_b, _) = a.shares(method), b.shares(method)
        rows[method] = distinctness(shares_a, shares_b, areas, n_boot, n_perm, seed)
    return pd.DataFrame(rows).T.rename_axis("method")


def distinctness_reading(distinct: pd.DataFrame, trusted: str) -> str:
    """A Markdown sentence from ``distinctness_table``: the ``trusted`` method's Spearman (95 % CI), share-profile
    distance and permutation p, the range of the Spearman over the methods, and whether the profiles differ
    (permutation p below ``ALPHA``)."""
    d = distinct.loc[trusted]
    return (
        f"With {trusted} maps on {int(d['photos'])} clinical photos, the regional profiles of FaceAge and FaceSurvival "
        f"correlate with Spearman **{d['spearman']:.2f}** (95 % CI {d['spearman CI low']:.2f} to "
        f"{d['spearman CI high']:.2f}); their share profiles differ by {d['distance']:.3f} (permutation p = "
        f"{d['permutation p']:.3f}); over the three methods the correlation ranges from "
        f"{distinct['spearman'].astype(float).min():.2f} to {distinct['spearman'].astype(float).max():.2f}: "
        + (
            "no evidence that the two models use different regions."
            if d["permutation p"] >= ALPHA
            else "the two models distribute their saliency over the regions differently."
        )
    )


def top_regions(regions: pd.DataFrame, run: Explained, n: int = 2) -> list[str]:
    """The ``n`` regions of a ``regional_table`` where ``run`` looks most relative to their size (share / area)."""
    return regions[regions["run"] == run.label].nlargest(n, "share / area")["region"].tolist()


def reading(
    regions: pd.DataFrame,
    alignment: pd.DataFrame | None,
    distinct: pd.DataFrame | None,
    trusted: str,
    age: Explained,
    survival: Explained | None,
) -> str:
    """The chapter's closing paragraph (Markdown): where each model looks most (``regional_table``), on FAHR-Synth
    the share of its saliency in the regions of its planted cues against their area (``alignment_table``, in per
    cent; None on real data), and whether the two models' profiles differ (``distinctness_table``'s permutation p
    below ``ALPHA``). Without clinical cohort A (``survival`` and ``distinct`` None) FaceAge's regions alone."""
    age_top = top_regions(regions, age)
    text = (
        f"The {trusted} maps were the most faithful of the three, so they carry the reading. Relative to their "
        f"size, FaceAge looks most at the {age_top[0]} and {age_top[1]}"
    )
    if survival is None or distinct is None:
        return text + (
            ". Whether FaceSurvival looks elsewhere needs clinical cohort A, which is not provided. Saliency is a "
            "description of a model, not of biology; the regions are laid out on each face's own 68 landmarks."
        )
    d = distinct.loc[trusted]
    survival_top = top_regions(regions, survival)
    text += f", FaceSurvival at the {survival_top[0]} and {survival_top[1]}. "
    if alignment is not None:
        age_fit, surv_fit = alignment.loc[(age.label, "age")], alignment.loc[(survival.label, "frailty")]
        text += (
            f"FaceAge puts {100 * age_fit['saliency share in cue regions']:.0f} % of its saliency in the regions "
            f"where ageing cues were painted, which cover {100 * age_fit['area share of cue regions']:.0f} % of the "
            f"image; FaceSurvival puts {100 * surv_fit['saliency share in cue regions']:.0f} % in the frailty-cue "
            f"regions ({100 * surv_fit['area share of cue regions']:.0f} % of the image). "
        )
    text += f"On the same photos the two profiles correlate with Spearman {d['spearman']:.2f} " + (
        "and a permutation test finds no difference: on this build the two models do not look at measurably "
        "different places."
        if d["permutation p"] >= ALPHA
        else f"and differ beyond chance (p = {d['permutation p']:.3f}): the models weigh the regions differently, "
        "as the paper reports."
    )
    if alignment is not None:
        text += (
            " Saliency is a description of a model, not of biology: these are synthetic faces whose cues overlap "
            "in space (ageing and frailty are both painted around the eyes and on the cheeks), so distinct maps "
            "would be evidence of distinct cues only where the cues themselves are apart."
        )
    else:
        text += (
            " Saliency is a description of a model, not of biology; on real photos the regions are laid out on each "
            "face's own 68 landmarks (`landmark_regions`), which place the eyes, nose and lips but only estimate the "
            "forehead, temples and hairline."
        )
    return text


def timings(explained: list[Explained]) -> pd.DataFrame:
    """Seconds and photos per second of every method in every run."""
    rows = [{"run": e.label, "method": m, "seconds": s, "photos per s": len(e.image_ids) / s}
            for e in explained for m, s in e.seconds.items()]  # fmt: skip
    return pd.DataFrame(rows)


def headline_results(distinct: pd.DataFrame | None, alignment: pd.DataFrame | None, trusted: str) -> list:
    """The Saliency chapter's numbers for the reproduction report (``Result`` each); the two models' distinctness
    only with a ``distinctness_table`` (None without clinical cohort A); the planted-cue shares only with an
    ``alignment_table`` (FAHR-Synth)."""
    out = []
    if distinct is not None:
        d = distinct.loc[trusted]
        out.append(Result("saliency.distinct.spearman",
                          f"FaceAge vs FaceSurvival regional profiles, Spearman ({trusted})", float(d["spearman"]), "",
                          lower=float(d["spearman CI low"]), upper=float(d["spearman CI high"]),
                          p=float(d["permutation p"])))  # fmt: skip
    for (run, signal), row in (alignment if alignment is not None else pd.DataFrame()).iterrows():
        model = run.split(" on ")[0]
        if (model, signal) not in (("faceage", "age"), ("facesurvival", "frailty")):
            continue
        out.append(Result(f"saliency.{model}.{signal}_cue_share", f"{model}: saliency share in {signal}-cue regions",
                          float(row["saliency share in cue regions"]), ""))  # fmt: skip
        out.append(Result(f"saliency.{model}.{signal}_cue_area", f"{model}: area share of the {signal}-cue regions",
                          float(row["area share of cue regions"]), ""))  # fmt: skip
    return out
