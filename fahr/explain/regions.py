"""Facial regions: the share of absolute saliency in each named region, raw and divided by its area, and whether
two models use different regions of the same photos."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from scipy import stats

from fahr.data.synth.render import REGIONS


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


def density(shares: np.ndarray, areas: np.ndarray) -> np.ndarray:
    area = areas.mean(0)
    return np.divide(shares.mean(0), area, out=np.zeros_like(area), where=area > 0)


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
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
    boot = np.array([rank_correlation(density(a[d], area[d]), density(b[d], area[d])) for d in draws])
    diff = a - b
    observed = float(np.abs(diff.mean(0)).sum())
    flips = rng.choice([-1.0, 1.0], size=(n_perm, n))
    null = np.abs(flips @ diff / n).sum(1)
    return {
        "photos": n,
        "spearman": rank_correlation(density(a, area), density(b, area)),
        "spearman CI low": float(np.nanquantile(boot, 0.025)),
        "spearman CI high": float(np.nanquantile(boot, 0.975)),
        "distance": observed,
        "permutation p": float((1 + (null >= observed).sum()) / (1 + n_perm)),
    }


def template_regions(size: int) -> np.ndarray:
    """A named-region label map ``[size, size]`` (indices into ``REGIONS``) for any face aligned to the five-point
    template (``fahr.data.align``): alignment puts every face's eyes, nose tip and mouth corners at the template's
    points, so the regions are laid out around those points, in units of the distance between the eyes. This is
    what real photos get (they carry no per-pixel region map); FAHR-Synth's photos are re-rendered with their own."""
    from fahr.data.align import template

    (lx, ly), (rx, ry), (nx, ny), (mlx, mly), (mrx, mry) = template(size)
    d, eye_y, mouth_y = rx - lx, (ly + ry) / 2, (mly + mry) / 2
    cx = (lx + rx) / 2
    y, x = np.mgrid[0:size, 0:size] + 0.5
    half_height = 1.45 * (mouth_y - eye_y + d) / 2
    face = ((x - cx) / (1.05 * d)) ** 2 + ((y - (eye_y + mouth_y) / 2 + 0.1 * d) / half_height) ** 2 <= 1
    index = {name: i for i, name in enumerate(REGIONS)}
    labels = np.full((size, size), index["background"], dtype=np.int64)
    labels[(~face) & (y < eye_y - 0.2 * d)] = index["hair"]
    labels[face] = index["skin"]
    labels[face & (y < eye_y - 0.35 * d)] = index["forehead"]
    labels[face & (np.abs(y - eye_y) < 0.3 * d) & (np.abs(x - cx) > 0.8 * d)] = index["temples"]
    band = (y > eye_y + 0.25 * d) & (y < mouth_y + 0.1 * d) & (np.abs(x - cx) > 0.3 * d)
    labels[face & band] = index["cheeks"]
    labels[face & (y > mouth_y + 0.25 * d)] = index["chin"]
    for ex, ey in ((lx, ly), (rx, ry)):
        labels[((x - ex) / (0.38 * d)) ** 2 + ((y - ey) / (0.25 * d)) ** 2 <= 1] = index["periorbital"]
    labels[(np.abs(x - cx) < 0.2 * d) & (y > eye_y + 0.15 * d) & (y < ny + 0.12 * d)] = index["nose"]
    half = (mrx - mlx) / 2 + 0.1 * d
    labels[((x - (mlx + mrx) / 2) / half) ** 2 + ((y - mouth_y) / (0.2 * d)) ** 2 <= 1] = index["mouth"]
    return labels


def landmark_regions(points: np.ndarray, size: int) -> np.ndarray:
    """Named-region label maps ``[N, size, size]`` (indices into ``REGIONS``) laid out on each face's own 68
    landmarks ``[N, 68, 2]`` (dlib's iBUG 300-W order, x, y pixels of the ``size`` image; ``fahr.data.align
    .crop_landmarks``): the face is the jaw line closed above the brows by a forehead as tall as the eyes are
    apart; eyes, nose and lips are the landmark polygons (eyes widened to the periorbital ellipse of
    ``template_regions``); temples, cheeks and chin are bands of the face set by the eye, nose and mouth points,
    in units of the distance between the eyes, as in ``template_regions``. What real photos get."""
    from skimage.draw import polygon2mask

    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 3 or pts.shape[1:] != (68, 2):
        raise ValueError(f"landmark regions need 68-point landmarks [N, 68, 2] (x, y pixels), got {pts.shape}")
    index = {name: i for i, name in enumerate(REGIONS)}
    y, x = np.mgrid[0:size, 0:size] + 0.5

    def fill(poly: np.ndarray) -> np.ndarray:
        return polygon2mask((size, size), poly[:, ::-1])  # (row, col)

    out = np.full((len(pts), size, size), index["background"], dtype=np.int64)
    for labels, p in zip(out, pts, strict=True):
        eyes = np.stack([p[36:42].mean(0), p[42:48].mean(0)])
        d = float(np.linalg.norm(eyes[1] - eyes[0]))
        eye_y, mouth_y = eyes[:, 1].mean(), p[48:60, 1].mean()
        brows = p[17:27]
        lifted = brows - np.array([0.0, d])
        face = fill(np.concatenate([p[0:17], lifted[::-1]]))
        labels[(~face) & (y < eye_y - 0.2 * d)] = index["hair"]
        labels[face] = index["skin"]
        labels[face & fill(np.concatenate([brows, lifted[::-1]]))] = index["forehead"]
        lateral = (x < p[36, 0] - 0.1 * d) | (x > p[45, 0] + 0.1 * d)
        labels[face & lateral & (y > brows[:, 1].min()) & (y < eye_y + 0.3 * d)] = index["temples"]
        nose_x = p[27:36, 0].mean()
        band = (y > eye_y + 0.25 * d) & (y < mouth_y + 0.1 * d) & (np.abs(x - nose_x) > 0.3 * d)
        labels[face & band] = index["cheeks"]
        labels[face & (y > p[48:60, 1].max() + 0.1 * d)] = index["chin"]
        for (ex, ey), corners in zip(eyes, (p[[36, 39]], p[[42, 45]]), strict=True):
            half = max(0.38 * d, np.abs(corners[1, 0] - corners[0, 0]) / 2 + 0.1 * d)
            labels[((x - ex) / half) ** 2 + ((y - ey) / (0.25 * d)) ** 2 <= 1] = index["periorbital"]
        bridge = np.array([[p[27, 0] - 0.12 * d, p[27, 1]], [p[27, 0] + 0.12 * d, p[27, 1]]])
        labels[fill(np.concatenate([bridge[1:], p[[35, 34, 33, 32, 31]], bridge[:1]]))] = index["nose"]
        labels[fill(p[48:60])] = index["mouth"]
    return out
