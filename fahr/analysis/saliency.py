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
from fahr.data.synth import cohorts, truth
from fahr.data.synth.render import render
from fahr.explain.attribution import CONTROL, METHODS, attribute, forward
from fahr.explain.faithfulness import Faithfulness, deletion_insertion
from fahr.explain.regions import density, distinctness, profile, rank_correlation, regional
from fahr.train import common

MIN_AVERAGED = 16  # photos at least in any clinical-cohort average shown (privacy: no individual patient)


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
    models see them (eval transform, [0, 1]), with their rows of planted truth."""
    table = common.cohort(cfg, cohort, split)
    n = min(n or cfg.saliency.photos, len(table))
    table = table.sample(n=n, random_state=cfg.seed).sort_values("image_id").reset_index(drop=True)
    dataset = common.dataset(table, cfg, "eval")
    items = [dataset[i] for i in range(len(dataset))]
    if any(item is None for item in items):
        raise RuntimeError(f"unreadable photos in {cohort}: {dataset.failures}")
    _, rows, _ = cohorts.load(cfg.profile, cohort)
    return torch.stack([item["image"] for item in items]), table[["image_id"]].merge(rows, on="image_id")


def region_maps(rows: pd.DataFrame, size: int) -> np.ndarray:
    """Named-region label maps ``[N, H, W]`` of FAHR-Synth photos, rendered again from their truth rows."""
    return np.stack(
        [render(*cohorts.face_of(cohorts._python(row)), size=size, with_regions=True).regions
         for row in rows.to_dict("records")]
    )  # fmt: skip


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
    return Explained(
        model=model_name, cohort=cohort, image_ids=rows["image_id"].tolist(), outputs=forward(model, x).numpy(),
        baseline_output=float(forward(model, baseline)[0]), maps={k: v.numpy() for k, v in maps.items()},
        regions=region_maps(rows, x.shape[-1]), mean_image=baseline[0].permute(1, 2, 0).numpy(), seconds=seconds,
        ig_delta=delta.numpy(), faithfulness=faith,
        images=None if clinical else x.permute(0, 2, 3, 1).numpy(),
    )  # fmt: skip


def regional_table(explained: list[Explained], method: str) -> pd.DataFrame:
    """Regional profiles of several runs side by side (long format), with the planted cue counts."""
    frames = [profile(*e.shares(method)).assign(run=e.label).reset_index() for e in explained]
    return pd.concat(frames, ignore_index=True).merge(truth.planted_cues().reset_index(), on="region")


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


def timings(explained: list[Explained]) -> pd.DataFrame:
    """Seconds and photos per second of every method in every run."""
    rows = [{"run": e.label, "method": m, "seconds": s, "photos per s": len(e.image_ids) / s}
            for e in explained for m, s in e.seconds.items()]  # fmt: skip
    return pd.DataFrame(rows)


def headline_results(distinct: pd.DataFrame, alignment: pd.DataFrame, trusted: str) -> list:
    """The Saliency chapter's numbers for the reproduction report (``Result`` each)."""
    d = distinct.loc[trusted]
    out = [
        Result("saliency.distinct.spearman", f"FaceAge vs FaceSurvival regional profiles, Spearman ({trusted})",
               float(d["spearman"]), "", lower=float(d["spearman CI low"]), upper=float(d["spearman CI high"]),
               p=float(d["permutation p"])),
    ]  # fmt: skip
    for (run, signal), row in alignment.iterrows():
        model = run.split(" on ")[0]
        if (model, signal) not in (("faceage", "age"), ("facesurvival", "frailty")):
            continue
        out.append(Result(f"saliency.{model}.{signal}_cue_share", f"{model}: saliency share in {signal}-cue regions",
                          float(row["saliency share in cue regions"]), ""))  # fmt: skip
        out.append(Result(f"saliency.{model}.{signal}_cue_area", f"{model}: area share of the {signal}-cue regions",
                          float(row["area share of cue regions"]), ""))  # fmt: skip
    return out
