"""Headline numbers: every chapter records its own, and the reproduction report gathers them into one
``results.json`` per profile — each number with the chapter that produced it, that chapter's provenance and,
on FAHR-Synth, the planted value and the oracle beside it."""

from __future__ import annotations

import json
from dataclasses import asdict, fields, replace
from pathlib import Path
from typing import Any

import pandas as pd

from fahr.analysis.headline import Result
from fahr.core import paths, provenance
from fahr.report.paper import PAPER


def folder(profile: str) -> Path:
    return paths.stage_dir(profile, "results")


def path(profile: str) -> Path:
    return paths.profile_dir(profile) / "results.json"


def _plain(value: Any) -> Any:
    return None if value is None else float(value)


def record(chapter: Any, results: list[Result]) -> pd.DataFrame:
    """Write a chapter's headline numbers (atomically, with its provenance) and return them as a table."""
    keys = [r.key for r in results]
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        raise ValueError(f"chapter {chapter.name!r} records {', '.join(duplicates)} more than once")
    rows = [{k: (_plain(v) if k not in ("key", "quantity", "unit") else v) for k, v in asdict(r).items()}
            for r in (replace(r, paper=PAPER.get(r.key, r.paper)) for r in results)]  # fmt: skip
    body = {"chapter": chapter.name, "data": data_label(chapter.cfg), "provenance": chapter.provenance(),
            "results": rows}  # fmt: skip
    provenance.write_text(folder(chapter.cfg.profile) / f"{chapter.name}.json", json.dumps(body, indent=1) + "\n")
    columns = [f.name for f in fields(Result)]  # an empty table too (a chapter whose data gave it no number)
    return pd.DataFrame(rows, columns=columns).set_index("key").dropna(axis=1, how="all")


def data_label(cfg: Any) -> str:
    """What the numbers were computed on: FAHR-Synth, or the real datasets under ``data.root``."""
    if cfg.data.source == "real":
        return f"real data ({cfg.profile} profile, data.root {cfg.data.root})"
    return f"FAHR-Synth ({cfg.profile} profile)"


def data_name(cfg: Any) -> str:
    """The data a verdict is about, in two words: FAHR-Synth or real data."""
    return "real data" if cfg.data.source == "real" else "FAHR-Synth"


def collect(cfg: Any, chapters: list[str], write: bool = True) -> dict[str, Any]:
    """Gather the recorded numbers of ``chapters`` (in order) into ``results.json`` (not written with ``write``
    False: a reader such as ``fahr verdicts``) and return its content."""
    entries, sources = [], {}
    for name in chapters:
        file = folder(cfg.profile) / f"{name}.json"
        if not file.is_file():
            continue
        body = json.loads(file.read_text())
        sources[name] = body["provenance"]
        entries += [{**r, "chapter": name} for r in body["results"]]
    content = {"profile": cfg.profile, "data": data_label(cfg), "config_hash": cfg.hash,
               "chapters": sources, "results": entries}  # fmt: skip
    if write:
        provenance.write_text(path(cfg.profile), json.dumps(content, indent=1) + "\n")
    return content


SHOWN = ("chapter", "quantity", "value", "seed SD", "unit", "lower", "upper", "p", "planted", "oracle", "paper")


def shown(t: pd.DataFrame) -> pd.DataFrame:
    """The columns of a ``table`` the report shows, each only where some number has it (no truth columns on real
    data)."""
    return t[[c for c in SHOWN if c in t.columns and t[c].notna().any()]]


def table(content: dict[str, Any]) -> pd.DataFrame:
    """The results of ``collect`` as a table indexed by key (empty, with the columns of a ``Result``, when no
    chapter recorded a number: a build on real data whose datasets were all missing)."""
    columns = ["key", *(f.name for f in fields(Result) if f.name != "key"), "chapter"]
    return pd.DataFrame(content["results"], columns=None if content["results"] else columns).set_index("key")
