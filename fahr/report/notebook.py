"""What every chapter does first: resolve its config, fix seeds and threads, and show its provenance."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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
        return (
            f"**Built with** profile `{self.cfg.profile}` · config `{self.cfg.hash}` · overrides {overrides} · "
            f"commit `{commit}` · device `{device}` · {self.started} UTC"
        )


def start(name: str, profile: str, overrides: Any = None) -> Chapter:
    """Load the chapter's config (profile + papermill ``overrides``), seed, set threads, print the header."""
    from IPython.display import Markdown, display

    values = config.normalise_overrides(overrides)
    cfg = config.load(profile, values)
    runtime.set_threads(cfg.torch_threads)
    runtime.seed_everything(cfg.seed)
    chapter = Chapter(name=name, cfg=cfg, overrides=values, started=provenance.now())
    display(Markdown(chapter.header()))
    return chapter
