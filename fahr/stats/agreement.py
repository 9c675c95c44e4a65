"""Agreement of paired measurements: Bland–Altman bias and limits, intraclass correlation (Shrout & Fleiss 1979;
McGraw & Wong 1996), Spearman rank stability, shifts in SD units and a t interval of the mean."""

from __future__ import annotations

import numpy as np
from scipy import stats


def _pair_arrays(reference, perturbed) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(reference, dtype=float), np.asarray(perturbed, dtype=float)
    if a.ndim != 1 or a.shape != b.shape:
        raise ValueError(f"paired values must be two 1-D arrays of one length, got shapes {a.shape} and {b.shape}")
    if len(a) < 2:
        raise ValueError(f"paired statistics need at least 2 pairs, got {len(a)}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("paired values contain NaN or infinite entries")
    return a, b


def bland_altman(reference, perturbed) -> dict[str, float]:
    """Bland–Altman agreement of ``perturbed`` with ``reference``: bias = mean(perturbed − reference), the SD of
    the differences (ddof 1) and the 95 % limits of agreement bias ± 1.96 SD."""
    a, b = _pair_arrays(reference, perturbed)
    d = b - a
    bias, sd = float(d.mean()), float(d.std(ddof=1))
    return {"bias": bias, "sd": sd, "loa_low": bias - 1.96 * sd, "loa_high": bias + 1.96 * sd, "n": len(d)}


def mean_squares(ratings) -> dict[str, float]:
    """Two-way ANOVA mean squares of an ``[n targets, k raters]`` table: rows (MSR), columns (MSC), residual
    (MSE) and within rows (MSW), as in Shrout & Fleiss (1979) Table 1."""
    x = np.asarray(ratings, dtype=float)
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 2:
        raise ValueError(f"ratings must be a [targets, raters] table with at least 2 of each, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("ratings contain NaN or infinite entries")
    n, k = x.shape
    grand = x.mean()
    ss_rows = k * ((x.mean(axis=1) - grand) ** 2).sum()
    ss_cols = n * ((x.mean(axis=0) - grand) ** 2).sum()
    ss_total = ((x - grand) ** 2).sum()
    ss_error = ss_total - ss_rows - ss_cols
    return {
        "MSR": float(ss_rows / (n - 1)),
        "MSC": float(ss_cols / (k - 1)),
        "MSE": float(ss_error / ((n - 1) * (k - 1))),
        "MSW": float((ss_cols + ss_error) / (n * (k - 1))),
        "n": n,
        "k": k,
    }


ICC_KINDS = ("1,1", "2,1", "3,1", "1,k", "2,k", "3,k")


def icc(ratings, kind: str = "2,1") -> float:
    """Intraclass correlation ICC(kind) of an ``[n targets, k raters]`` table (Shrout & Fleiss 1979).

    ``"2,1"``: two-way random, absolute agreement of single ratings (McGraw & Wong's ICC(A,1)): a shift of all
    perturbed photos lowers it. ``"3,1"``: two-way mixed, consistency (ICC(C,1)): a common shift does not.
    ``"1,1"`` one-way random; the ``",k"`` forms are the reliability of the mean of the k ratings.
    """
    if kind not in ICC_KINDS:
        raise ValueError(f"unknown ICC kind {kind!r}; kinds: {', '.join(ICC_KINDS)}")
    m = mean_squares(ratings)
    n, k, msr, msc, mse, msw = m["n"], m["k"], m["MSR"], m["MSC"], m["MSE"], m["MSW"]
    if kind == "1,1":
        return (msr - msw) / (msr + (k - 1) * msw)
    if kind == "2,1":
        return (msr - mse) / (msr + (k - 1) * mse + k * (msc - mse) / n)
    if kind == "3,1":
        return (msr - mse) / (msr + (k - 1) * mse)
    if kind == "1,k":
        return (msr - msw) / msr
    if kind == "2,k":
        return (msr - mse) / (msr + (msc - mse) / n)
    return (msr - mse) / msr


def spearman_stability(reference, perturbed) -> float:
    """Spearman's rank correlation of the values before and after (1 = the ranking of people is unchanged)."""
    a, b = _pair_arrays(reference, perturbed)
    return float(stats.spearmanr(a, b).statistic)


def shift_in_sd(reference, perturbed, scale: float) -> float:
    """Mean shift (perturbed − reference) in units of ``scale`` (e.g. the SD of the reference risk)."""
    a, b = _pair_arrays(reference, perturbed)
    if not np.isfinite(scale) or scale <= 0:
        raise ValueError(f"scale must be a positive number, got {scale}")
    return float((b - a).mean() / scale)


def mean_ci(values, level: float = 0.95) -> tuple[float, float, float]:
    """Mean and its t-based confidence interval."""
    x = np.asarray(values, dtype=float)
    mean = float(x.mean())
    if len(x) < 2:
        return mean, float("nan"), float("nan")
    half = float(stats.t.ppf(0.5 + level / 2, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x)))
    return mean, mean - half, mean + half
