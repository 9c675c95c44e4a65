"""The book: execute each chapter notebook with papermill (only when its inputs changed), then render
the HTML with Jupyter Book 1.x, strictly, into a temporary folder swapped in only on success."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
from jupyter_client.manager import KernelManager

from fahr.core import cache, paths, provenance
from fahr.core.config import Config

# Execution order. The Reproducibility chapter comes first in the book but runs last, so that it can
# report how long every other chapter of this build took.
CHAPTERS: tuple[str, ...] = (
    "cohorts", "pretraining", "faceage", "facesurvival", "subgroups", "robustness", "saliency", "report",
    "reproducibility",
)  # fmt: skip


class ChapterFailed(RuntimeError):
    """A chapter notebook raised; the message carries its traceback and where the failed copy was kept."""


@dataclass(frozen=True)
class ChapterRun:
    name: str
    executed: bool
    seconds: float
    fingerprint: str


def notebook_path(name: str) -> Path:
    path = paths.NOTEBOOKS / f"{name}.ipynb"
    if not path.is_file():
        raise FileNotFoundError(f"no chapter notebook {path}; chapters: {', '.join(CHAPTERS)}")
    return path


def executed_path(profile: str, name: str) -> Path:
    return paths.book_dir(profile) / "chapters" / f"{name}.ipynb"


def timings_path(profile: str) -> Path:
    return paths.book_dir(profile) / "timings.json"


def notebook_modules(path: Path) -> set[str]:
    """The ``fahr`` modules a notebook imports (from its code cells), and theirs, transitively."""
    nb = nbformat.read(path, as_version=4)
    source = "\n".join(
        line
        for cell in nb.cells
        if cell.cell_type == "code"
        for line in cell.source.splitlines()
        if not line.lstrip().startswith(("%", "!"))
    )
    return cache.module_closure(cache.imported_fahr_modules(source))


def chapter_fingerprint(name: str, cfg: Config, upstream: list[str]) -> str:
    """What a chapter's output depends on: its notebook, the resolved config, the ``fahr`` code it imports,
    the locked environment, and the chapters executed before it (whose artifacts it may read)."""
    nb = notebook_path(name)
    lock = cache.file_digest(paths.LOCK_FILE) if paths.LOCK_FILE.is_file() else None
    return cache.digest(cache.file_digest(nb), cfg.hash, cache.code_fingerprint(notebook_modules(nb)), lock, upstream)


def _read_timings(profile: str) -> dict[str, Any]:
    path = timings_path(profile)
    return json.loads(path.read_text()) if path.is_file() else {}


class IpcKernelManager(KernelManager):
    """A chapter's kernel talks over IPC sockets in a private temporary folder: no TCP port opened on the machine,
    and no warning per chapter about one being unencrypted."""

    def __init__(self, **kwargs: Any) -> None:
        self.socket_dir = tempfile.mkdtemp(prefix="fahr-kernel-")
        kwargs.setdefault("transport", "ipc")
        kwargs.setdefault("ip", os.path.join(self.socket_dir, "kernel"))
        super().__init__(**kwargs)

    def cleanup_resources(self, restart: bool = False) -> None:
        super().cleanup_resources(restart=restart)
        if not restart:
            shutil.rmtree(self.socket_dir, ignore_errors=True)


def run_chapter(name: str, cfg: Config, overrides: dict[str, Any], upstream: list[str], force: bool) -> ChapterRun:
    """Execute one chapter with papermill unless its fingerprint is unchanged since its last execution."""
    import papermill

    fingerprint = chapter_fingerprint(name, cfg, upstream)
    out = executed_path(cfg.profile, name)
    stamp = out.with_suffix(".fingerprint")
    if not force and out.is_file() and stamp.is_file() and stamp.read_text().strip() == fingerprint:
        return ChapterRun(name, False, 0.0, fingerprint)
    print(f"[book] executing chapter {name!r} (profile {cfg.profile}, config {cfg.hash})", flush=True)
    stamp.unlink(missing_ok=True)
    failed = out.with_name(f"{name}.failed.ipynb")
    started = time.perf_counter()
    with provenance.atomic_path(out) as tmp:
        try:
            papermill.execute_notebook(
                str(notebook_path(name)),
                str(tmp),
                parameters={"profile": cfg.profile, "overrides": overrides},
                kernel_name="python3",
                cwd=str(paths.NOTEBOOKS),
                progress_bar=False,
                kernel_manager_class=IpcKernelManager,
            )
        except papermill.PapermillExecutionError as err:
            if tmp.exists():
                shutil.copyfile(tmp, failed)
            raise ChapterFailed(f"chapter {name!r} failed; executed copy kept at {failed}\n{err}") from None
    seconds = time.perf_counter() - started
    failed.unlink(missing_ok=True)
    provenance.write_text(stamp, fingerprint + "\n")
    timings = _read_timings(cfg.profile)
    timings[name] = {"seconds": round(seconds, 2), "executed_at": provenance.now(), "fingerprint": fingerprint}
    provenance.write_json(timings_path(cfg.profile), timings)
    return ChapterRun(name, True, seconds, fingerprint)


def run_chapters(
    cfg: Config, overrides: dict[str, Any], only: str | None = None, force: bool = False
) -> list[ChapterRun]:
    """Execute the chapters in order (each only if needed); ``only`` forces one chapter and skips the rest."""
    if only is not None and only not in CHAPTERS:
        raise ValueError(f"unknown chapter {only!r}; chapters: {', '.join(CHAPTERS)}")
    runs: list[ChapterRun] = []
    upstream: list[str] = []
    for name in CHAPTERS:
        if only is None or name == only:
            run = run_chapter(name, cfg, overrides, upstream, force=force or name == only)
            runs.append(run)
            upstream.append(run.fingerprint)
        else:
            upstream.append(chapter_fingerprint(name, cfg, list(upstream)))
    return runs


def _book_sources_digest() -> list[tuple[str, str]]:
    return [
        (str(p.relative_to(paths.BOOK_SOURCES)), cache.file_digest(p))
        for p in sorted(paths.BOOK_SOURCES.rglob("*"))
        if p.is_file() and "_build" not in p.parts
    ]


HIDDEN_CELLS = ("parameters", "injected-parameters")  # papermill's parameter cells: not for the reader


def reader_view(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """An executed chapter as the reader sees it: every code cell folded (its code one click away, its output
    shown) and the parameter cells removed; the downloadable notebook keeps them all."""
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        tags = cell.metadata.setdefault("tags", [])
        wanted = "remove-cell" if any(t in tags for t in HIDDEN_CELLS) else "hide-input"
        if wanted not in tags and "remove-input" not in tags:
            tags.append(wanted)
    return nb


def build_record_path(profile: str) -> Path:
    """Where the rendered book notes what it was built from (``html.build.json`` beside the HTML)."""
    return paths.html_dir(profile).with_name("html.build.json")


def build_record(profile: str) -> dict[str, Any] | None:
    """The commit, tree state and data source the profile's rendered book stands for; None if never rendered."""
    path = build_record_path(profile)
    return (
        json.loads(path.read_text()) if path.is_file() and (paths.html_dir(profile) / "index.html").is_file() else None
    )


def _record_build(profile: str, data_source: str, fingerprint: str) -> None:
    git = provenance.git_state()
    provenance.write_json(build_record_path(profile), {"profile": profile, "data_source": data_source,
                          "commit": git["commit"], "dirty": git["dirty"], "fingerprint": fingerprint,
                          "recorded": provenance.now()})  # fmt: skip


def build_html(profile: str, force: bool = False, data_source: str = "synth") -> bool:
    """Render the book strictly into a fresh folder and swap it in; skip if sources and chapters are unchanged.

    Returns True if the HTML was (re)built. A failed build raises and leaves the previous HTML as it was. Either
    way the build record (``build_record``) then names the current commit: unchanged chapters and sources mean
    the HTML is what this commit renders.
    """
    chapters = {name: executed_path(profile, name) for name in CHAPTERS}
    missing = [str(p) for p in chapters.values() if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"executed chapters missing (run the chapters first): {', '.join(missing)}")
    fingerprint = cache.digest(_book_sources_digest(), [cache.file_digest(p) for p in chapters.values()])
    html = paths.html_dir(profile)
    stamp = html.with_name("html.fingerprint")
    if not force and (html / "index.html").is_file() and stamp.is_file() and stamp.read_text().strip() == fingerprint:
        _record_build(profile, data_source, fingerprint)
        return False
    work = paths.profile_dir(profile) / ".book-build"
    shutil.rmtree(work, ignore_errors=True)
    source = work / "src"
    shutil.copytree(paths.BOOK_SOURCES, source, ignore=shutil.ignore_patterns("_build"))
    (source / "chapters").mkdir(exist_ok=True)
    for name, path in chapters.items():
        nbformat.write(reader_view(nbformat.read(path, as_version=4)), source / "chapters" / f"{name}.ipynb")
    summary = paths.stage_dir(profile, "report") / "summary.png"
    if summary.is_file():  # the report chapter's summary figure, shown on the intro page
        shutil.copyfile(summary, source / "summary.png")
    cmd = ["jupyter-book", "build", str(source), "--path-output", str(work), "--builder", "html",
           "-W", "-n", "--keep-going"]  # fmt: skip
    print(f"[book] rendering HTML: {' '.join(cmd)}", flush=True)
    jb = Path(sys.executable).with_name("jupyter-book")
    result = subprocess.run([str(jb) if jb.exists() else cmd[0], *cmd[1:]], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(
            f"jupyter-book build failed (exit {result.returncode}); the previous book at {html} is untouched\n"
            f"{result.stdout[-6000:]}\n{result.stderr[-6000:]}"
        )
    stamp.unlink(missing_ok=True)
    with provenance.atomic_path(html) as tmp:
        shutil.copytree(work / "_build" / "html", tmp)
    provenance.write_text(stamp, fingerprint + "\n")
    _record_build(profile, data_source, fingerprint)
    shutil.rmtree(work, ignore_errors=True)
    return True
