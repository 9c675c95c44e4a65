"""Faithfulness of a map (Petsiuk et al. 2018's deletion and insertion): pixels are removed from the photo (set to
the baseline) or inserted into the baseline in the order of a map, the output is tracked as a share of
f(x) − f(baseline), and the area under each curve is reported (deletion: lower is better; insertion: higher)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from fahr.explain.attribution import CONTROL, as_baseline, check_inputs, forward


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
    check_inputs(model, x)
    b = as_baseline(x, baseline)
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
