"""What every chapter does first: resolve its config, fix seeds and threads, and show its provenance."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd
from pandas.io.formats.style import Styler

from fahr.core import config, provenance, runtime


@dataclass(frozen=True)
class Chapter:
    """A chapter's resolved config, where its profile's artifacts live, and when it started."""

    name: str
    cfg: config.Config
    overrides: dict[str, Any]
    started: str

    def provenance(self) -> dict[str, Any]:
        return provenance.record(self.cfg, f"chapter:{self.name}", self.started, ended=provenance.now())

    def header(self) -> str:
        """A Markdown line that states the profile, config hash, commit and device this chapter was built with."""
        git = provenance.git_state()
        commit = (git["commit"] or "no git")[:10] + (" (uncommitted changes)" if git["dirty"] else "")
        overrides = ", ".join(f"`{k}={v}`" for k, v in self.overrides.items()) or "none"
        device = provenance.resolve_device(self.cfg.device)
        sets = "".join(f" {k}={v}" for k, v in self.overrides.items())
        rerun = f"make chapter NB={self.name} PROFILE={self.cfg.profile}" + (f' SET="{sets.strip()}"' if sets else "")
        return (
            f"**Built with** profile `{self.cfg.profile}` · config `{self.cfg.hash}` · overrides {overrides} · "
            f"commit `{commit}` · device `{device}` · {self.started} UTC  \n"
            f"**Rerun this chapter:** `{rerun}` (or download the notebook above and run it with papermill)"
        )


def number(x: float) -> str:
    """How a chapter's plain tables show a float: whole numbers without decimals, others with four significant
    digits (``1.0`` → ``1``, ``2.640920`` → ``2.641``, ``0.004387`` → ``0.004387``), tiny ones in scientific form."""
    if x != x:  # NaN
        return "NaN"
    if float(x).is_integer() and abs(x) < 1e15:
        return f"{x:.0f}"
    if abs(x) >= 1e4:
        return f"{x:.1f}"
    return f"{x:.4g}" if abs(x) >= 1e-4 else f"{x:.2e}"


def start(name: str, profile: str, overrides: Any = None) -> Chapter:
    """Load the chapter's config (profile + papermill ``overrides``), seed, set threads, print the header."""
    from IPython.display import Markdown, display

    values = config.normalise_overrides(overrides)
    cfg = config.load(profile, values)
    runtime.set_threads(cfg.torch_threads)
    runtime.seed_everything(cfg.seed)
    pd.set_option("display.float_format", number)  # not six decimals on every float of a plain table
    chapter = Chapter(name=name, cfg=cfg, overrides=values, started=provenance.now())
    display(Markdown(chapter.header()))
    return chapter


def styled(table: pd.DataFrame, formats: Mapping[str, str], na_rep: str = "—") -> Styler:
    """``table`` for display with the number format of each named column that it has (a column that only exists
    on FAHR-Synth, such as an oracle's, is simply absent on real data); missing values shown as ``na_rep``."""
    present = {column: fmt for column, fmt in formats.items() if column in table.columns}
    return table.style.format(present, na_rep=na_rep)
