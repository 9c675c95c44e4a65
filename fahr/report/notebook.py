"""What every chapter does first: resolve its config, fix seeds and threads, and show its provenance."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd
from pandas.io.formats.style import Styler

from fahr.core import config, provenance, runtime
from fahr.report.figures import faces


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


def start(name: str, profile: str, overrides: Any = None) -> Chapter:
    """Load the chapter's config (profile + papermill ``overrides``), seed, set threads, print the header."""
    from IPython.display import Markdown, display

    values = config.normalise_overrides(overrides)
    cfg = config.load(profile, values)
    runtime.set_threads(cfg.torch_threads)
    runtime.seed_everything(cfg.seed)
    faces.configure(cfg.privacy.min_people)  # the face writer refuses what this profile may not show
    chapter = Chapter(name=name, cfg=cfg, overrides=values, started=provenance.now())
    display(Markdown(chapter.header()))
    return chapter


def styled(table: pd.DataFrame, formats: Mapping[str, str], na_rep: str = "—") -> Styler:
    """``table`` for display with the number format of each named column that it has (a column that only exists
    on FAHR-Synth, such as an oracle's, is simply absent on real data); missing values shown as ``na_rep``."""
    present = {column: fmt for column, fmt in formats.items() if column in table.columns}
    return table.style.format(present, na_rep=na_rep)
