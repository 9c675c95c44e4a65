"""Saliency: which pixels and facial regions FaceAge and FaceSurvival use, and how far to trust each map.

Three maps per photo, each a signed per-pixel contribution ``[N, H, W]`` to the model's scalar output
(years for FaceAge, log hazard for FaceSurvival) relative to a baseline image (here the average face of the
photos explained):

- **occlusion** (captum ``Occlusion``): the output change when a square is replaced by the baseline, averaged
  over the squares covering a pixel. Slow but model-agnostic: the faithful reference.
- **integrated gradients** (captum ``IntegratedGradients``): gradients along the straight path from the
  baseline; the contributions sum to f(x) − f(baseline) (completeness).
- **grad-cam**: Grad-CAM on the patch tokens entering the last transformer block, weighted by the gradient
  of the output, reshaped to the patch grid and upsampled; kept signed (no ReLU) so that it can be ordered
  like the others. Chosen over attention rollout because rollout ignores the head: it would give FaceAge and
  FaceSurvival the same map wherever their encoders agree, which is exactly the comparison at stake.

Faithfulness (Petsiuk et al. 2018's deletion and insertion): pixels are removed from the photo (set to the
baseline) or inserted into the baseline in the order of a map, the output is tracked as a share of
f(x) − f(baseline), and the area under each curve is reported (deletion: lower is better; insertion: higher).
Regions: the share of absolute saliency in each named FAHR-Synth region, raw and divided by its area.

Privacy: maps of clinical-cohort photos are only ever averaged; ``example_figure`` refuses them and
``explain`` keeps no individual clinical image.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch
from scipy import stats
from torch import nn

from fahr.data.synth import world
from fahr.data.synth.render import REGIONS

METHODS = ("occlusion", "integrated gradients", "grad-cam")
MIN_AVERAGED = 16  # photos at least in any clinical-cohort average shown (privacy: no individual patient)
CONTROL = "random"  # a random ordering: the floor every map must beat


def _check(model: nn.Module, x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[1] != 3 or not x.is_floating_point():
        shape = tuple(x.shape) if hasattr(x, "shape") else type(x).__name__
        raise ValueError(f"images must be a float tensor [N, 3, H, W], got {shape}")
    encoder = getattr(model, "encoder", None)
    size = getattr(getattr(encoder, "patch_embed", None), "img_size", None)
    if size is not None and tuple(x.shape[2:]) != tuple(size):
        raise ValueError(f"images are {tuple(x.shape[2:])} pixels but the model takes {tuple(size)}")


def _baseline(x: torch.Tensor, baseline: torch.Tensor | float) -> torch.Tensor:
    b = torch.as_tensor(baseline, dtype=x.dtype)
    try:
        return b.expand_as(x).contiguous()
    except RuntimeError:
        raise ValueError(f"baseline of shape {tuple(b.shape)} does not broadcast to images {tuple(x.shape)}") from None


@torch.no_grad()
def forward(model: nn.Module, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """The model's scalar output ``[N]`` in batches."""
    return torch.cat([model(x[i : i + batch_size]).reshape(-1) for i in range(0, len(x), batch_size)])


def occlusion(
    model: nn.Module, x: torch.Tensor, baseline: torch.Tensor | float, window: int, stride: int, batch_size: int = 256
) -> torch.Tensor:
    """Occlusion map ``[N, H, W]``: f(x) − f(x with a window × window square set to the baseline), averaged over
    the squares covering each pixel (captum; ``batch_size`` images per forward)."""
    from captum.attr import Occlusion

    _check(model, x)
    if not 1 <= window <= min(x.shape[2:]) or stride < 1:
        raise ValueError(f"occlusion window {window} and stride {stride} do not fit {tuple(x.shape[2:])} images")
    attr = Occlusion(model).attribute(
        x,
        sliding_window_shapes=(3, window, window),
        strides=(3, stride, stride),
        baselines=_baseline(x, baseline),
        perturbations_per_eval=max(1, batch_size // len(x)),
    )
    return attr.mean(1)  # the square spans the channels: every channel holds the same value


def integrated_gradients(
    model: nn.Module, x: torch.Tensor, baseline: torch.Tensor | float, steps: int, batch_size: int = 256
) -> tuple[torch.Tensor, torch.Tensor]:
    """Integrated gradients (captum, Gauss–Legendre, ``steps`` points) summed over channels: ``[N, H, W]``, and
    the completeness error Σ attributions − (f(x) − f(baseline)) per photo ``[N]``."""
    from captum.attr import IntegratedGradients

    _check(model, x)
    attr, delta = IntegratedGradients(model).attribute(
        x,
        baselines=_baseline(x, baseline),
        n_steps=steps,
        internal_batch_size=batch_size,
        return_convergence_delta=True,
    )
    return attr.sum(1).detach(), delta.detach()


def grad_cam(model: nn.Module, x: torch.Tensor, batch_size: int = 128) -> torch.Tensor:
    """Signed Grad-CAM ``[N, H, W]`` on the patch tokens entering the last block (its first LayerNorm's output):
    Σ_d mean_tokens(∂f/∂a_d) · a_d per token, on the patch grid, bilinearly upsampled to the image."""
    _check(model, x)
    encoder = getattr(model, "encoder", None)
    if encoder is None or not hasattr(encoder, "blocks"):
        raise ValueError("grad-cam needs a model with a timm VisionTransformer at .encoder")
    grid = encoder.patch_embed.grid_size
    prefix = encoder.num_prefix_tokens
    captured: list[torch.Tensor] = []
    handle = encoder.blocks[-1].norm1.register_forward_hook(lambda _m, _i, out: captured.append(out))
    maps = []
    try:
        for i in range(0, len(x), batch_size):
            captured.clear()
            with torch.enable_grad():
                out = model(x[i : i + batch_size].detach().requires_grad_(True))
                (grad,) = torch.autograd.grad(out.sum(), captured[0])
            tokens, grad = captured[0][:, prefix:].detach(), grad[:, prefix:]  # [n, L, D]
            cam = (tokens * grad.mean(1, keepdim=True)).sum(-1)  # [n, L]
            maps.append(cam.reshape(-1, 1, *grid))
    finally:
        handle.remove()
    cam = torch.cat(maps)
    return nn.functional.interpolate(cam, size=x.shape[2:], mode="bilinear", align_corners=False)[:, 0]


def attribute(
    model: nn.Module, x: torch.Tensor, baseline: torch.Tensor, settings, methods=METHODS
) -> tuple[dict[str, torch.Tensor], dict[str, float], torch.Tensor]:
    """Every map of ``methods`` with the settings of ``cfg.saliency``: (maps, seconds per method, IG
    completeness error)."""
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        raise ValueError(f"unknown saliency methods {unknown}; methods: {', '.join(METHODS)}")
    maps, seconds, delta = {}, {}, torch.zeros(len(x))
    for method in methods:
        started = time.perf_counter()
        if method == "occlusion":
            maps[method] = occlusion(model, x, baseline, settings.occlusion_window, settings.occlusion_stride)
        elif method == "integrated gradients":
            maps[method], delta = integrated_gradients(model, x, baseline, settings.ig_steps)
        else:
            maps[method] = grad_cam(model, x)
        seconds[method] = time.perf_counter() - started
    return maps, seconds, delta


# ----------------------------------------------------------------------------------------------- faithfulness


@dataclass
class Faithfulness:
    """Deletion and insertion curves: per method and kind, ``[N, steps + 1]`` signed output moves
    s_i·(f(x_ik) − f(b_i)), where s_i is the sign of f(x_i) − f(b_i); ``scale`` is mean_i |f(x_i) − f(b_i)|."""

    fractions: np.ndarray
    moves: dict[tuple[str, str], np.ndarray]
    scale: float

    def curves(self) -> pd.DataFrame:
        """Mean curves, normalised: 1 = the photo's own output, 0 = the baseline's."""
        rows = [
            {"method": method, "curve": kind, "fraction": f, "output": v / self.scale}
            for (method, kind), m in self.moves.items()
            for f, v in zip(self.fractions, m.mean(0), strict=True)
        ]
        return pd.DataFrame(rows)

    def auc(self, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
        """Area under each normalised curve with a 95 % bootstrap interval over photos."""
        rng = np.random.default_rng(seed)
        n = next(iter(self.moves.values())).shape[0]
        draws = rng.integers(0, n, size=(n_boot, n))
        scales = self._scales()
        rows = []
        for (method, kind), m in self.moves.items():
            per_photo = np.trapezoid(m, self.fractions, axis=1)  # [N]
            boot = per_photo[draws].mean(1) / scales[draws].mean(1)
            rows.append({"method": method, "curve": kind, "AUC": per_photo.mean() / self.scale,
                         "CI low": np.quantile(boot, 0.025), "CI high": np.quantile(boot, 0.975)})  # fmt: skip
        table = pd.DataFrame(rows).pivot(index="method", columns="curve")
        table.columns = [f"{kind} {stat}" for stat, kind in table.columns]
        return table[[f"{k} {s}" for k in ("deletion", "insertion") for s in ("AUC", "CI low", "CI high")]]

    def _scales(self) -> np.ndarray:
        key = next(k for k in self.moves if k[1] == "deletion")
        return self.moves[key][:, 0]  # at fraction 0 the move is |f(x) − f(b)|


@torch.no_grad()
def deletion_insertion(
    model: nn.Module,
    x: torch.Tensor,
    baseline: torch.Tensor | float,
    maps: dict[str, torch.Tensor],
    steps: int = 10,
    seed: int = 0,
    batch_size: int = 256,
) -> Faithfulness:
    """Deletion and insertion curves of every map (and of a random ordering, ``CONTROL``).

    Pixels are ordered by the map in the direction of the photo's output (s_i·map, most supporting first); at
    each of ``steps + 1`` fractions that share of pixels is set to the baseline (deletion) or copied from the
    photo into the baseline (insertion).
    """
    _check(model, x)
    b = _baseline(x, baseline)
    n, _, h, w = x.shape
    for name, m in maps.items():
        if tuple(m.shape) != (n, h, w):
            raise ValueError(f"map {name!r} has shape {tuple(m.shape)}, expected {(n, h, w)}")
    fx, fb = forward(model, x, batch_size), forward(model, b, batch_size)
    sign = torch.where(fx >= fb, 1.0, -1.0)
    g = torch.Generator().manual_seed(seed)
    orders = {**maps, CONTROL: torch.rand(n, h, w, generator=g)}
    fractions = np.linspace(0.0, 1.0, steps + 1)
    counts = torch.as_tensor(np.round(fractions * h * w).astype(int))
    per_forward = max(1, batch_size // n)  # fractions evaluated in one forward pass
    moves = {}
    for method, m in orders.items():
        key = (m.reshape(n, -1) * (sign[:, None] if method != CONTROL else 1.0)).float()
        key = key + 1e-6 * key.std().clamp_min(1e-12) * torch.rand(key.shape, generator=g)  # break ties at random
        rank = key.argsort(dim=1, descending=True).argsort(dim=1).reshape(1, n, 1, h, w)  # 0 = most supporting
        for kind in ("deletion", "insertion"):
            outputs = []
            for part in counts.split(per_forward):
                chosen = rank < part[:, None, None, None, None]  # [k, n, 1, h, w]
                image = torch.where(chosen, b, x) if kind == "deletion" else torch.where(chosen, x, b)
                outputs.append(model(image.reshape(-1, 3, h, w)).reshape(len(part), n))
            moves[(method, kind)] = (sign[:, None] * (torch.cat(outputs).T - fb[:, None])).numpy()
    return Faithfulness(fractions, moves, float((fx - fb).abs().mean()))


# ---------------------------------------------------------------------------------------------------- regions


def regional(maps: torch.Tensor | np.ndarray, regions: np.ndarray, names=REGIONS) -> tuple[np.ndarray, np.ndarray]:
    """Per photo and region: the share of absolute saliency ``[N, R]`` (each row sums to 1) and the share of the
    image's area ``[N, R]``, for region label maps ``[N, H, W]`` (indices into ``names``)."""
    s = np.abs(np.asarray(maps, dtype=np.float64))
    labels = np.asarray(regions)
    if s.shape != labels.shape or s.ndim != 3:
        raise ValueError(f"maps {s.shape} and region label maps {labels.shape} must both be [N, H, W]")
    if labels.min() < 0 or labels.max() >= len(names):
        raise ValueError(f"region labels must lie in 0…{len(names) - 1}, found {labels.min()}…{labels.max()}")
    n, r = len(s), len(names)
    flat = labels.reshape(n, -1) + r * np.arange(n)[:, None]
    mass = np.bincount(flat.ravel(), weights=s.reshape(n, -1).ravel(), minlength=n * r).reshape(n, r)
    area = np.bincount(flat.ravel(), minlength=n * r).reshape(n, r) / labels[0].size
    total = mass.sum(1, keepdims=True)
    shares = np.divide(mass, total, out=np.full_like(mass, 1.0 / r), where=total > 0)
    return shares, area


def profile(shares: np.ndarray, areas: np.ndarray, names=REGIONS) -> pd.DataFrame:
    """Mean share of saliency, mean share of area and their ratio (> 1: more saliency than its size) per region."""
    share, area = shares.mean(0), areas.mean(0)
    density = np.divide(share, area, out=np.full_like(share, np.nan), where=area > 0)
    return pd.DataFrame({"share": share, "area": area, "share / area": density}, index=pd.Index(names, name="region"))


def planted_cues(names=REGIONS) -> pd.DataFrame:
    """How many of FAHR-Synth's planted age and frailty cues (``world.CUE_REGIONS``) are painted in each region."""
    counts = {
        signal: [sum(region in where for where in cues_.values()) for region in names]
        for signal, cues_ in world.CUE_REGIONS.items()
    }
    return pd.DataFrame({f"{s} cues": c for s, c in counts.items()}, index=pd.Index(names, name="region"))


def cue_alignment(shares: np.ndarray, areas: np.ndarray, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """For each planted signal: the share of saliency in the regions where its cues are painted beside those
    regions' share of the area, and the Spearman correlation (95 % bootstrap interval over photos) of the
    area-normalised regional profile with the number of cues painted per region."""
    planted = planted_cues()
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(shares), size=(n_boot, len(shares)))
    rows = {}
    for column in planted.columns:
        counts = planted[column].to_numpy()
        inside = counts > 0
        boot = [_rho(_density(shares[d], areas[d]), counts) for d in draws]
        rows[column.replace(" cues", "")] = {
            "saliency share in cue regions": shares[:, inside].sum(1).mean(),
            "area share of cue regions": areas[:, inside].sum(1).mean(),
            "Spearman with cue count": _rho(_density(shares, areas), counts),
            "CI low": np.nanquantile(boot, 0.025),
            "CI high": np.nanquantile(boot, 0.975),
        }
    return pd.DataFrame(rows).T.rename_axis("planted signal")


def _density(shares: np.ndarray, areas: np.ndarray) -> np.ndarray:
    area = areas.mean(0)
    return np.divide(shares.mean(0), area, out=np.zeros_like(area), where=area > 0)


def _rho(a: np.ndarray, b: np.ndarray) -> float:
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(stats.spearmanr(a, b).statistic)


def distinctness(
    shares_a: np.ndarray, shares_b: np.ndarray, areas: np.ndarray, n_boot: int = 1000, n_perm: int = 1000, seed=0
) -> dict[str, float]:
    """Do two models use different regions of the same photos?

    ``spearman``: rank correlation of their area-normalised regional profiles (1 = same ranking of regions),
    with a 95 % bootstrap interval over photos. ``distance``: Σ_r |mean share_a − mean share_b| (0 = identical
    profiles, 2 = disjoint), with a paired permutation test (each photo's two profiles swapped at random) of
    the null hypothesis that both models have the same regional profile.
    """
    a, b, area = (np.asarray(v, dtype=float) for v in (shares_a, shares_b, areas))
    if not a.shape == b.shape == area.shape or a.ndim != 2:
        raise ValueError(
            f"shares and areas must be [photos, regions] of one shape, got {a.shape}, {b.shape}, {area.shape}"
        )
    rng = np.random.default_rng(seed)
    n = len(a)
    draws = rng.integers(0, n, size=(n_boot, n))
    boot = np.array([_rho(_density(a[d], area[d]), _density(b[d], area[d])) for d in draws])
    diff = a - b
    observed = float(np.abs(diff.mean(0)).sum())
    flips = rng.choice([-1.0, 1.0], size=(n_perm, n))
    null = np.abs(flips @ diff / n).sum(1)
    return {
        "photos": n,
        "spearman": _rho(_density(a, area), _density(b, area)),
        "spearman CI low": float(np.nanquantile(boot, 0.025)),
        "spearman CI high": float(np.nanquantile(boot, 0.975)),
        "distance": observed,
        "permutation p": float((1 + (null >= observed).sum()) / (1 + n_perm)),
    }


# ------------------------------------------------------------------------------------------- the FAHR-Synth run


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
    from fahr.data.synth import cohorts
    from fahr.train import common

    table = common.cohort(cfg, cohort, split)
    n = min(n or cfg.saliency.photos, len(table))
    table = table.sample(n=n, random_state=cfg.seed).sort_values("image_id").reset_index(drop=True)
    dataset = common.dataset(table, cfg, "eval")
    items = [dataset[i] for i in range(len(dataset))]
    if any(item is None for item in items):
        raise RuntimeError(f"unreadable photos in {cohort}: {dataset.failures}")
    _, truth, _ = cohorts.load(cfg.profile, cohort)
    return torch.stack([item["image"] for item in items]), table[["image_id"]].merge(truth, on="image_id")


def region_maps(truth: pd.DataFrame, size: int) -> np.ndarray:
    """Named-region label maps ``[N, H, W]`` of FAHR-Synth photos, rendered again from their truth rows."""
    from fahr.data.synth import cohorts
    from fahr.data.synth.render import render

    return np.stack(
        [render(*cohorts.face_of(cohorts._python(row)), size=size, with_regions=True).regions
         for row in truth.to_dict("records")]
    )  # fmt: skip


def explain(cfg, model_name: str, cohort: str, split: str = "test", faithful: bool = True) -> Explained:
    """Every map of ``model_name`` (a key of ``fahr.predict.MODELS``) on ``cfg.saliency.photos`` photos of a
    FAHR-Synth cohort, with the average face as baseline, region maps and (``faithful``) deletion/insertion."""
    from fahr import predict

    spec = predict.MODELS[model_name]
    model = spec.load(spec.train(cfg)).eval()
    x, truth = photos(cfg, cohort, split)
    baseline = x.mean(0, keepdim=True)
    maps, seconds, delta = attribute(model, x, baseline, cfg.saliency)
    faith = None
    if faithful:
        started = time.perf_counter()
        faith = deletion_insertion(model, x, baseline, maps, seed=cfg.seed)
        seconds["deletion and insertion"] = time.perf_counter() - started
    clinical = cohort.startswith("clinical")
    return Explained(
        model=model_name, cohort=cohort, image_ids=truth["image_id"].tolist(), outputs=forward(model, x).numpy(),
        baseline_output=float(forward(model, baseline)[0]), maps={k: v.numpy() for k, v in maps.items()},
        regions=region_maps(truth, x.shape[-1]), mean_image=baseline[0].permute(1, 2, 0).numpy(), seconds=seconds,
        ig_delta=delta.numpy(), faithfulness=faith,
        images=None if clinical else x.permute(0, 2, 3, 1).numpy(),
    )  # fmt: skip


def regional_table(explained: list[Explained], method: str) -> pd.DataFrame:
    """Regional profiles of several runs side by side (long format), with the planted cue counts."""
    frames = [profile(*e.shares(method)).assign(run=e.label).reset_index() for e in explained]
    return pd.concat(frames, ignore_index=True).merge(planted_cues().reset_index(), on="region")


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


def benchmark(cfg) -> list[dict]:
    """Throughput of each map (images/s) with a randomly initialised model of the profile's ViT, for
    ``make bench``: min(cfg.saliency.photos, 16) random photos at the profile's image size."""
    from fahr.models.heads import FaceAgeModel
    from fahr.models.vit import build_encoder
    from fahr.train import common

    torch.manual_seed(cfg.seed)
    model = FaceAgeModel(build_encoder(common.vit_spec(cfg)), init_age=50.0, age_scale=15.0).eval()
    size, n = cfg.synth.image_size, min(cfg.saliency.photos, 16)
    x = torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(cfg.seed))
    baseline = x.mean(0, keepdim=True)
    attribute(model, x[:2], baseline, cfg.saliency)  # warm-up
    maps, seconds, _ = attribute(model, x, baseline, cfg.saliency)
    started = time.perf_counter()
    deletion_insertion(model, x, baseline, maps)
    seconds["deletion and insertion"] = time.perf_counter() - started
    return [
        {"benchmark": "saliency", "setting": f"{method}, {n} photos {size}px", "value": n / s, "unit": "img/s"}
        for method, s in seconds.items()
    ]


# ---------------------------------------------------------------------------------------------------- figures


def _average(maps: np.ndarray) -> np.ndarray:
    """Mean over photos of |map|, each photo's map first scaled to sum 1 (every photo weighs the same)."""
    a = np.abs(maps)
    return (a / np.maximum(a.sum(axis=(1, 2), keepdims=True), 1e-12)).mean(0)


def average_figure(explained: list[Explained], methods=METHODS) -> plt.Figure:
    """Rows of runs: the average face, then each method's population-averaged |saliency| over it."""
    size = (2.3 * (1 + len(methods)), 2.75 * len(explained))
    fig, axes = plt.subplots(len(explained), 1 + len(methods), figsize=size, squeeze=False)
    for e in explained:
        if e.clinical and len(e.image_ids) < MIN_AVERAGED:
            raise ValueError(f"{e.label}: a clinical average needs at least {MIN_AVERAGED} photos, so that it shows no "
                             "individual patient")  # fmt: skip
    for row, e in zip(axes, explained, strict=True):
        face = np.clip(e.mean_image, 0, 1)
        row[0].imshow(face)
        row[0].set_title(f"average face\n{e.cohort}, {len(e.image_ids)} photos", fontsize=8)
        for ax, method in zip(row[1:], methods, strict=True):
            heat = _average(e.maps[method])
            ax.imshow(face.mean(-1), cmap="gray", vmin=0, vmax=1)
            ax.imshow(heat, cmap="inferno", alpha=0.6, vmin=0, vmax=np.quantile(heat, 0.995))
            ax.set_title(f"{e.model}\n{method}", fontsize=8)
        for ax in row:
            ax.axis("off")
    fig.tight_layout(pad=0.4)
    return fig


def example_figure(e: Explained, photos_: int = 4, methods=METHODS) -> plt.Figure:
    """Individual photos and their maps: non-clinical cohorts only (the book never shows a patient's face)."""
    if e.clinical or e.images is None:
        raise ValueError(f"individual maps are shown only for non-clinical cohorts, not {e.cohort!r}")
    k = min(photos_, len(e.image_ids))
    fig, axes = plt.subplots(k, 1 + len(methods), figsize=(2.0 * (1 + len(methods)), 2.1 * k), squeeze=False)
    for i, row in enumerate(axes):
        row[0].imshow(np.clip(e.images[i], 0, 1))
        row[0].set_title(f"{e.model}: {e.outputs[i]:.1f}", fontsize=8)
        for ax, method in zip(row[1:], methods, strict=True):
            m = e.maps[method][i]
            lim = np.quantile(np.abs(m), 0.995) or 1.0
            ax.imshow(e.images[i].mean(-1), cmap="gray", vmin=0, vmax=1)
            ax.imshow(m, cmap="RdBu_r", alpha=0.65, vmin=-lim, vmax=lim)
            ax.set_title(method, fontsize=8)
        for ax in row:
            ax.axis("off")
    fig.tight_layout(pad=0.4)
    return fig


def regions_figure(table: pd.DataFrame) -> plt.Figure:
    """Saliency share / area share per region for each run, beside the number of cues planted there."""
    regions = [r for r in REGIONS if r in set(table["region"])]
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.8), gridspec_kw={"width_ratios": [3, 1.2]})
    sns.barplot(data=table, x="region", y="share / area", hue="run", order=regions, ax=axes[0])
    axes[0].axhline(1.0, color="grey", lw=0.8, ls="--")
    axes[0].set(ylabel="saliency share / area share", xlabel="")
    axes[0].tick_params(axis="x", rotation=40)
    axes[0].legend(fontsize=7, frameon=False)
    planted = planted_cues().loc[regions]
    planted.plot.barh(ax=axes[1], color=["#4C72B0", "#C44E52"])
    axes[1].invert_yaxis()
    axes[1].set(xlabel="planted cues painted there", ylabel="", title="FAHR-Synth truth")
    axes[1].legend(fontsize=7, frameon=False)
    fig.tight_layout()
    return fig


def faithfulness_figure(explained: list[Explained]) -> plt.Figure:
    """Deletion and insertion curves of every method (and the random ordering) for each run."""
    runs = [e for e in explained if e.faithfulness is not None]
    fig, axes = plt.subplots(len(runs), 2, figsize=(9, 3.0 * len(runs)), squeeze=False, sharex=True)
    for row, e in zip(axes, runs, strict=True):
        curves = e.faithfulness.curves()
        for ax, kind in zip(row, ("deletion", "insertion"), strict=True):
            sns.lineplot(data=curves[curves["curve"] == kind], x="fraction", y="output", hue="method", ax=ax)
            ax.axhline(0, color="grey", lw=0.6)
            ax.set(title=f"{e.model} on {e.cohort}: {kind}", xlabel=f"share of pixels {kind[:-3]}ed",
                   ylabel="normalised output")  # fmt: skip
            ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    return fig


def headline_results(distinct: pd.DataFrame, alignment: pd.DataFrame, trusted: str) -> list:
    """The Saliency chapter's numbers for the reproduction report (``fahr.results.Result`` each)."""
    from fahr.results import Result

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
