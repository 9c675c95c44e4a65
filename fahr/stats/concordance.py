"""Concordance of survival risk scores: Harrell's and Uno's C, time-dependent AUC, and a vectorised paired bootstrap.

Convention everywhere: a higher score means a higher risk, i.e. a shorter survival. ``time`` is in years (> 0) and
``event`` is 1 for an observed event, 0 for censoring.

Comparable pairs and ties (the rule shared by torchsurv and lifelines, used by every function here):

* a pair (i, j) is comparable when subject i has an event and either ``time_i < time_j``, or the times are equal and
  j is censored (a subject censored at the time of an event is taken to have outlived it); two events at the same
  time are not comparable, and a censored subject never starts a pair;
* a comparable pair counts 1 when ``score_i > score_j`` (concordant), 0.5 when the scores are equal, 0 otherwise.

Times are compared in float64 here; torchsurv compares them after casting to float32 and treats scores within 1e-8
of each other (in float32) as tied, so the two can differ only for values closer than float32 resolution.
"""

from __future__ import annotations

import time as clock
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from numpy.typing import ArrayLike
from scipy import stats
from torchsurv.metrics.auc import Auc
from torchsurv.metrics.cindex import ConcordanceIndex
from torchsurv.stats.ipcw import get_ipcw

from fahr.core.runtime import single_threaded

Kind = Literal["harrell", "uno"]

# Elements of one chunk of the pair matrix K (float32): bounds the working memory of the bootstrap at ~32 MB per chunk.
CHUNK_ELEMENTS = 2**23


# ---------------------------------------------------------------------------------------------------------------------
# Input validation
# ---------------------------------------------------------------------------------------------------------------------


def _as_vector(values: ArrayLike, name: str) -> np.ndarray:
    """A 1-D float64 copy of ``values`` (numpy array, pandas Series, list), or ValueError naming ``name``."""
    if isinstance(values, pd.Series | pd.Index):
        values = values.to_numpy()
    try:
        array = np.array(values, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be numeric: {err}") from err
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional; got shape {array.shape}")
    return array


def _check_survival(time: ArrayLike, event: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Validated float64 ``time`` (> 0) and ``event`` (0.0/1.0) of equal length, with at least one event."""
    t, e = _as_vector(time, "time"), _as_vector(event, "event")
    if len(t) != len(e):
        raise ValueError(f"lengths differ: time has {len(t)} values but event has {len(e)}")
    if len(t) < 2:
        raise ValueError(f"need at least 2 subjects; got {len(t)}")
    for name, values in (("time", t), ("event", e)):
        if np.isnan(values).any():
            raise ValueError(f"{name} contains NaN ({int(np.isnan(values).sum())} values)")
        if np.isinf(values).any():
            raise ValueError(f"{name} contains infinite values ({int(np.isinf(values).sum())} values)")
    bad = ~np.isin(e, (0.0, 1.0))
    if bad.any():
        raise ValueError(f"event must be 0/1 (or boolean); found other values: {np.unique(e[bad])[:5].tolist()}")
    if (t <= 0).any():
        raise ValueError(f"time must be > 0 (years); {int((t <= 0).sum())} values are <= 0")
    if not e.any():
        raise ValueError("no events: every subject is censored, so concordance is undefined")
    return t, e


def _check_score(score: ArrayLike, n: int, name: str = "score") -> np.ndarray:
    """A validated float64 score of length ``n`` (finite, no NaN)."""
    s = _as_vector(score, name)
    if len(s) != n:
        raise ValueError(f"lengths differ: {name} has {len(s)} values but time has {n}")
    if np.isnan(s).any():
        raise ValueError(f"{name} contains NaN ({int(np.isnan(s).sum())} values)")
    if np.isinf(s).any():
        raise ValueError(f"{name} contains infinite values ({int(np.isinf(s).sum())} values)")
    return s


def _check_tau(tau: float | None) -> float | None:
    if tau is None:
        return None
    if not np.isfinite(tau) or tau <= 0:
        raise ValueError(f"tau must be a finite time > 0 (years) or None; got {tau}")
    return float(tau)


def _tensors(time: np.ndarray, event: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """float64 time and boolean event tensors, as torchsurv expects them."""
    return torch.as_tensor(time, dtype=torch.float64), torch.as_tensor(event, dtype=torch.float64).bool()


def censoring_weights(time: ArrayLike, event: ArrayLike) -> np.ndarray:
    """Inverse probability of censoring weights 1/G(time_i), G the Kaplan–Meier censoring survival (torchsurv)."""
    t, e = _check_survival(time, event)
    tt, ee = _tensors(t, e)
    with single_threaded():
        return get_ipcw(ee, tt).double().numpy()


# ---------------------------------------------------------------------------------------------------------------------
# Point estimates (torchsurv)
# ---------------------------------------------------------------------------------------------------------------------


def harrell(score: ArrayLike, time: ArrayLike, event: ArrayLike) -> float:
    """Harrell's C of a risk score (higher = shorter survival), computed with torchsurv."""
    t, e = _check_survival(time, event)
    s = _check_score(score, len(t))
    _require_pairs(_Pairs.build(t, e))
    tt, ee = _tensors(t, e)
    with single_threaded():
        c = ConcordanceIndex()(torch.as_tensor(s, dtype=torch.float64), ee, tt, instate=False)
    return float(c)


def uno(score: ArrayLike, time: ArrayLike, event: ArrayLike, tau: float | None = None) -> float:
    """Uno's IPCW C of a risk score, truncated at ``tau`` years (None: no truncation), computed with torchsurv.

    The censoring distribution G is the Kaplan–Meier estimate on these same data (``torchsurv.stats.ipcw.get_ipcw``);
    each comparable pair (i, j) is weighted by 1/G(time_i)², and only pairs with ``time_i < tau`` count.
    """
    t, e = _check_survival(time, event)
    s = _check_score(score, len(t))
    tau = _check_tau(tau)
    weight = censoring_weights(t, e)
    _require_pairs(_Pairs.build(t, e, weight**2, tau))
    tt, ee = _tensors(t, e)
    tmax = None if tau is None else torch.tensor(tau, dtype=torch.float64)
    with single_threaded():
        c = ConcordanceIndex()(torch.as_tensor(s, dtype=torch.float64), ee, tt, weight=torch.as_tensor(weight),
                               tmax=tmax, instate=False)  # fmt: skip
    return float(c)


def time_auc(score: ArrayLike, time: ArrayLike, event: ArrayLike, years: Sequence[float], ipcw: bool = True
             ) -> pd.DataFrame:  # fmt: skip
    """Cumulative/dynamic time-dependent AUC of a risk score at each horizon in ``years`` (torchsurv ``Auc``).

    AUC(t) is the probability that a subject with an event by t scores higher than one still event-free after t;
    cases are weighted by 1/G(time_i) (Uno 2007) unless ``ipcw`` is False. Returns one row per requested horizon,
    in the order given, with columns ``year`` and ``auc``. A horizon outside the follow-up window
    [min(time), max(time)) has no controls or no cases: its AUC is NaN (not dropped) and a warning names it. A
    horizon inside the window but before the first event also has no cases, and torchsurv returns NaN for it.
    """
    t, e = _check_survival(time, event)
    s = _check_score(score, len(t))
    horizons = _as_vector(list(years), "years")
    if len(horizons) == 0 or not np.isfinite(horizons).all():
        raise ValueError(f"years must be a non-empty list of finite horizons; got {list(years)}")
    # torchsurv checks the window in float32, so decide validity the same way
    h32, t32 = horizons.astype(np.float32), t.astype(np.float32)
    inside = (h32 >= t32.min()) & (h32 < t32.max())
    if not inside.all():
        warnings.warn(f"time_auc: horizons {horizons[~inside].tolist()} lie outside the follow-up window "
                      f"[{t.min():g}, {t.max():g}) years; their AUC is NaN", UserWarning, stacklevel=2)  # fmt: skip
    auc = np.full(len(horizons), np.nan)
    if inside.any():
        new_time = np.unique(h32[inside]).astype(np.float64)
        tt, ee = _tensors(t, e)
        nt = torch.as_tensor(new_time)
        with single_threaded():
            weights = {"weight": get_ipcw(ee, tt).double(), "weight_new_time": get_ipcw(ee, tt, nt).double()}
            values = Auc()(torch.as_tensor(s), ee, tt, auc_type="cumulative", new_time=nt, instate=False,
                           **(weights if ipcw else {}))  # fmt: skip
        lookup = dict(zip(new_time.tolist(), values.double().numpy().tolist(), strict=True))
        auc[inside] = [lookup[float(h)] for h in h32[inside]]
    return pd.DataFrame({"year": horizons, "auc": auc})


# ---------------------------------------------------------------------------------------------------------------------
# Vectorised bootstrap
# ---------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Pairs:
    """The comparable-pair structure, shared by every score.

    Subjects are sorted by time, events before censorings within a tie, so that the subjects comparable to an event
    row i are exactly the sorted positions ``start_i, …, n-1`` (censored at the same time, then all later times).
    """

    order: np.ndarray  # sorted position -> original index
    rows: np.ndarray  # sorted positions of the event rows that enter C (rows with zero weight or time >= tau dropped)
    start: np.ndarray  # per row: first comparable sorted position; non-decreasing
    weight: np.ndarray  # per row: float64 pair weight (1 for Harrell, 1/G(time_i)² for Uno)

    @classmethod
    def build(cls, time: np.ndarray, event: np.ndarray, weight: np.ndarray | None = None, tau: float | None = None
              ) -> _Pairs:  # fmt: skip
        order = np.lexsort((1.0 - event, time))
        t, e = time[order], event[order]
        left, right = np.searchsorted(t, t, side="left"), np.searchsorted(t, t, side="right")
        events_before = np.concatenate([[0], np.cumsum(e, dtype=np.int64)])
        start = left + (events_before[right] - events_before[left])  # first censored position in the tie group
        w = np.ones(len(t)) if weight is None else np.asarray(weight, dtype=np.float64)[order]
        keep = (e == 1) & (w > 0) & (start < len(t))
        if tau is not None:
            keep &= t < tau
        rows = np.flatnonzero(keep)
        return cls(order=order, rows=rows, start=start[rows], weight=w[rows])


def _require_pairs(pairs: _Pairs) -> None:
    if len(pairs.rows) == 0:
        raise ValueError("no comparable pairs (no event is followed by a later time, or none before tau)")


def _sums(counts: np.ndarray, ranks: np.ndarray, pairs: _Pairs) -> tuple[np.ndarray, np.ndarray]:
    """Weighted concordant-pair and comparable-pair sums for every resample and score.

    ``counts`` is (B, n) float32 resample counts in sorted order, ``ranks`` (k, n) dense score ranks in sorted order.
    Returns ``num`` (B, k) = Σ_i w_bi ω_i Σ_j K_ij w_bj and ``den`` (B,) = Σ_i w_bi ω_i Σ_j D_ij w_bj (float64).

    D is handled by a cumulative sum, since row i of D is the run of positions ``start_i…n-1``. K is built in chunks
    of event rows; a chunk only needs the columns from its first row's ``start`` on (K is upper triangular in time
    order), which halves the work of the float32 matmul. K holds 0, 0.5 and 1 and counts are small integers, so the
    float32 products are exact (for n < 2²³); the IPCW weights ω are applied afterwards in float64.
    """
    n_boot, n = counts.shape
    k = len(ranks)
    rows, start, omega = pairs.rows, pairs.start, pairs.weight
    row_counts = counts[:, rows].astype(np.float64) * omega  # (B, m): w_bi ω_i
    cum = np.zeros((n_boot, n + 1), dtype=np.float32)  # integer partial sums <= n: exact in float32
    np.cumsum(counts, axis=1, out=cum[:, 1:])
    den = np.einsum("bm,bm->b", row_counts, cum[:, -1:] - cum[:, start])
    del cum

    num = np.zeros((n_boot, k))
    chunk = max(16, CHUNK_ELEMENTS // (k * n))
    for r0 in range(0, len(rows), chunk):
        r1 = min(r0 + chunk, len(rows))
        p0 = start[r0]
        cols = ranks[:, p0:]  # (k, n - p0)
        mine = ranks[:, rows[r0:r1], None]  # (k, r, 1)
        pair = np.greater(mine, cols[:, None, :]).astype(np.float32)
        pair += np.greater_equal(mine, cols[:, None, :])
        pair *= 0.5  # K_ij = 1 if score_i > score_j, 0.5 if equal
        before = np.arange(p0, start[r1 - 1])[None, :] < start[r0:r1, None]  # positions before each row's start
        pair[:, :, : before.shape[1]][:, before] = 0.0
        per_row = counts[:, p0:] @ pair.reshape(k * (r1 - r0), n - p0).T  # (B, k·r): Σ_j K_ij w_bj
        per_row = per_row.reshape(n_boot, k, r1 - r0).astype(np.float64)
        num += np.einsum("br,bkr->bk", row_counts[:, r0:r1], per_row)
    return num, den


def resample_indices(n: int, n_resamples: int, seed: int = 0) -> np.ndarray:
    """The bootstrap's resample indices, shape (n_resamples, n): row b draws n subjects with replacement.

    Resample b's multinomial counts are ``np.bincount(indices[b], minlength=n)``; exposed so that a reference
    implementation can reproduce exactly the resamples :func:`bootstrap` uses.
    """
    return np.random.default_rng(seed).integers(0, n, size=(n_resamples, n))


def _counts(indices: np.ndarray, n: int, out: np.ndarray) -> None:
    """Write into ``out`` (B, n) the multinomial counts of each of n slots in each row of ``indices``."""
    block = max(1, 2**22 // n)
    for b0 in range(0, len(indices), block):
        part = indices[b0 : b0 + block]
        flat = (part + n * np.arange(len(part))[:, None]).ravel()
        out[b0 : b0 + len(part)] = np.bincount(flat, minlength=len(part) * n).reshape(len(part), n)


@dataclass(frozen=True, eq=False)
class BootstrapResult:
    """Full-sample concordance of several scores and their paired bootstrap replicates (same resamples for all).

    ``estimates`` holds the full-sample C per score; ``replicates`` the (n_resamples, k) bootstrap C's, columns in
    the order of ``estimates``. A resample without a comparable pair gives NaN and is ignored by the summaries.
    """

    estimates: pd.Series
    replicates: np.ndarray
    kind: Kind
    seed: int
    tau: float | None = None

    def __post_init__(self) -> None:
        self.replicates.setflags(write=False)

    @property
    def names(self) -> list[str]:
        """Score names, in column order."""
        return list(self.estimates.index)

    @property
    def frame(self) -> pd.DataFrame:
        """The bootstrap C's as a DataFrame: one row per resample, one column per score."""
        return pd.DataFrame(self.replicates, columns=self.estimates.index).rename_axis("resample")

    @property
    def se(self) -> pd.Series:
        """Bootstrap standard error of each score's C (standard deviation of the replicates, ddof=1)."""
        return pd.Series(np.nanstd(self.replicates, axis=0, ddof=1), index=self.estimates.index, name="se")

    def table(self, alpha: float = 0.05) -> pd.DataFrame:
        """Per score: full-sample C, percentile (1 − alpha) CI (``lower``, ``upper``) and bootstrap SE."""
        lower, upper = np.nanquantile(self.replicates, [alpha / 2, 1 - alpha / 2], axis=0)
        table = pd.DataFrame({"C": self.estimates, "lower": lower, "upper": upper, "se": self.se})
        return table.rename_axis("score")

    def _column(self, name: str) -> int:
        if name not in self.estimates.index:
            raise ValueError(f"unknown score {name!r}; known scores: {self.names}")
        return self.names.index(name)

    def difference(self, a: str, b: str, alpha: float = 0.05) -> pd.Series:
        """Paired difference C_a − C_b: estimate, percentile (1 − alpha) CI, bootstrap SE, z and two-sided p.

        The p-value is the normal approximation z = difference / SE, p = 2·(1 − Φ(|z|)); when the SE is 0 (e.g. a
        score against itself) p is 1 if the difference is 0 and 0 otherwise, never NaN.
        """
        ia, ib = self._column(a), self._column(b)
        diffs = self.replicates[:, ia] - self.replicates[:, ib]
        diffs = diffs[~np.isnan(diffs)]
        estimate = float(self.estimates.iloc[ia] - self.estimates.iloc[ib])
        lower, upper = np.quantile(diffs, [alpha / 2, 1 - alpha / 2])
        se = float(np.std(diffs, ddof=1)) if len(diffs) > 1 else np.nan
        if se > 0:
            z = estimate / se
            p = float(2 * stats.norm.sf(abs(z)))
        elif se == 0:
            z = 0.0 if estimate == 0 else float(np.sign(estimate) * np.inf)
            p = 1.0 if estimate == 0 else 0.0
        else:  # fewer than two usable resamples
            z = p = np.nan
        values = {"difference": estimate, "lower": float(lower), "upper": float(upper), "se": se, "z": z, "p": p}
        return pd.Series(values, name=f"{a} − {b}")


def bootstrap(scores: Mapping[str, ArrayLike] | pd.DataFrame, time: ArrayLike, event: ArrayLike,
              n_resamples: int = 1000, seed: int = 0, kind: Kind = "harrell", tau: float | None = None
              ) -> BootstrapResult:  # fmt: skip
    """Full-sample C and paired bootstrap replicates of every score, all resamples in a few matrix products.

    With resample counts W (B × n), resample b's C is C_b = (w_bᵀ K w_b) / (w_bᵀ D w_b), D_ij = 1 for a comparable
    pair (see the module docstring for ties) and K_ij = D_ij · (1 if score_i > score_j, 0.5 if equal). Every score is
    evaluated on the same resamples (:func:`resample_indices` with ``seed``), so differences are paired. The
    full-sample estimate is the same formula with w = 1, and equals :func:`harrell` / :func:`uno`.

    ``kind="uno"`` weights row i by 1/G(time_i)² and keeps pairs with time_i < ``tau``. Approximation: G is the
    Kaplan–Meier censoring distribution estimated once on the full sample, not re-estimated in each resample.

    Memory peaks at about 24·B·n bytes (int64 resample indices, float32 counts and cumulative counts) plus
    ~100 MB of working chunks: ~0.3 GB for 1000 resamples of 10,000 subjects. Exact for n < 2²³ subjects.
    """
    if kind not in ("harrell", "uno"):
        raise ValueError(f"kind must be 'harrell' or 'uno'; got {kind!r}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1; got {n_resamples}")
    items = list(scores.items())
    if not items:
        raise ValueError("scores is empty: pass at least one named score")
    t, e = _check_survival(time, event)
    values = np.stack([_check_score(s, len(t), name=f"score {name!r}") for name, s in items])
    tau = _check_tau(tau) if kind == "uno" else None
    pairs = _Pairs.build(t, e, censoring_weights(t, e) ** 2, tau) if kind == "uno" else _Pairs.build(t, e)
    _require_pairs(pairs)

    sorted_values = values[:, pairs.order]
    ranks = np.stack([np.unique(v, return_inverse=True)[1] for v in sorted_values]).astype(np.int32)
    position = np.argsort(pairs.order)  # original index -> sorted position
    counts = np.empty((n_resamples + 1, len(t)), dtype=np.float32)
    counts[0] = 1.0  # row 0: the full sample
    _counts(position[resample_indices(len(t), n_resamples, seed)], len(t), out=counts[1:])
    num, den = _sums(counts, ranks, pairs)
    with np.errstate(invalid="ignore", divide="ignore"):
        c = num / den[:, None]
    names = [str(name) for name, _ in items]
    return BootstrapResult(estimates=pd.Series(c[0], index=pd.Index(names, name="score"), name="C"),
                           replicates=c[1:], kind=kind, seed=seed, tau=tau)  # fmt: skip


def benchmark(n: int = 10_000, resamples: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Time :func:`bootstrap` (Harrell) for two scores on synthetic data: n patients, about half with an event."""
    rng = np.random.default_rng(seed)
    risk = rng.normal(size=n)
    event_time = rng.exponential(5.0 / np.exp(risk))
    censor_time = rng.exponential(5.0, size=n)
    time, event = np.minimum(event_time, censor_time), (event_time <= censor_time).astype(float)
    scores = {"model": risk + rng.normal(size=n), "noise": rng.normal(size=n)}
    started = clock.perf_counter()
    bootstrap(scores, time, event, n_resamples=resamples, seed=seed)
    seconds = clock.perf_counter() - started
    return {"patients": n, "resamples": resamples, "seconds": seconds, "resamples_per_second": resamples / seconds}
