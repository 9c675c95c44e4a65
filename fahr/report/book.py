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
from fahr.data.real import prepare

# Execution order. The Reproducibility chapter comes first in the book but runs last, so that it can
# report how long every other chapter of this build took.
CHAPTERS: tuple[str, ...] = (
    "cohorts", "pretraining", "faceage", "facesurvival", "subgroups", "robustness", "saliency", "report",
    "reproducibility",
)  # fmt: skip


# The cohorts each chapter reads on real data (``prepare.COHORT_DATASETS`` names their datasets). A chapter whose
# cohorts are not all present renders a short page naming the datasets to provide; the rest of the book builds.
# ``pretrain`` stands for the encoder: a published foundation model (``pretrain.weights``) replaces it, except in
# the chapter about pretraining itself.
NEEDS: dict[str, tuple[str, ...]] = {
    "cohorts": (), "pretraining": ("pretrain",), "faceage": ("pretrain", "age"),
    "facesurvival": ("pretrain", "clinical-a", "clinical-b"),
    "subgroups": ("pretrain", "age", "clinical-a", "clinical-b"), "robustness": ("pretrain", "age"),
    "saliency": ("pretrain", "age"), "report": (), "reproducibility": (),
}  # fmt: skip
SOURCES = ("synth", "real")  # a cell tagged with one of them is kept only on that data source


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
    absent = [e.name for e, _ in missing_data(cfg, name)]
    return cache.digest(cache.file_digest(nb), cfg.hash, cache.code_fingerprint(notebook_modules(nb)), lock, upstream,
                        absent)  # fmt: skip


def missing_data(cfg: Config, name: str) -> list[tuple[prepare.Expected, Path]]:
    """The real datasets chapter ``name`` needs and does not find (none on FAHR-Synth)."""
    if cfg.data.source != "real":
        return []
    wanted = [c for c in NEEDS[name] if not (c == "pretrain" and name != "pretraining" and cfg.pretrain.weights)]
    seen, out = set(), []
    for cohort in wanted:
        for expected, folder in prepare.cohort_missing(cfg, cohort):
            if expected.name not in seen:
                seen.add(expected.name)
                out.append((expected, folder))
    return out


def needs_text(absent: list[tuple[prepare.Expected, Path]]) -> str:
    """The names of missing datasets in words: those of a cohort built from any of them (the age datasets) as
    "one of a / b / c"."""
    names = [e.name for e, _ in absent]
    out = []
    for cohort in prepare.ANY_OF:
        group = [n for n in prepare.COHORT_DATASETS[cohort] if n in names]
        if len(group) > 1:
            out.append("one of " + " / ".join(group))
            names = [n for n in names if n not in group]
    return ", ".join(names + out)


def source_view(nb: nbformat.NotebookNode, source: str) -> nbformat.NotebookNode:
    """The chapter for one data source: cells tagged with the other source (``SOURCES``) removed."""
    others = set(SOURCES) - {source}
    nb.cells = [c for c in nb.cells if not others & set(c.get("metadata", {}).get("tags", []))]
    return nb


def title(name: str) -> str:
    """A chapter's title: the first heading of its notebook."""
    for cell in nbformat.read(notebook_path(name), as_version=4).cells:
        if cell.cell_type == "markdown" and cell.source.startswith("# "):
            return cell.source.splitlines()[0][2:].strip()
    return name


def missing_page(cfg: Config, name: str, absent: list[tuple[prepare.Expected, Path]]) -> nbformat.NotebookNode:
    """The page a chapter renders when its real datasets are missing: what to put where, and how to rebuild."""
    lines = [f"# {title(name)}", "", "```{note}", f"This chapter needs real datasets that are not under "
             f"`data.root` = `{prepare.root(cfg)}`, so it was not run. The chapters whose datasets are present "
             "were built as usual.", "```", "", "To build it, provide:", ""]  # fmt: skip
    lines += [f"- **{e.name}** ({e.used_for}): {e.what}, in `{folder}/` (from {e.source})." for e, folder in absent]
    if len([e for e, _ in absent if e.name in prepare.COHORT_DATASETS["age"]]) > 1:
        lines += ["", "Any one of the age datasets is enough; each one added widens the FaceAge test."]
    lines += ["", f"then rerun `make book PROFILE={cfg.profile}`: only the chapters that changed are executed."]
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("\n".join(lines))]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


DATA_TOO_SMALL = ("TooFewDeaths",)  # errors a chapter raises when its data cannot support it (not a bug)


def small_data_page(name: str, message: str) -> nbformat.NotebookNode:
    """The page of a chapter whose data is too small for its analyses: the reason, instead of a traceback."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(f"# {title(name)}\n\n```{{warning}}\nThis chapter could not be "
                                              f"computed on this data.\n```\n\n{message}")]  # fmt: skip
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


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
    """Execute one chapter with papermill unless its fingerprint is unchanged since its last execution; on real
    data, a chapter whose datasets are missing is written as a page that names them."""
    fingerprint = chapter_fingerprint(name, cfg, upstream)
    out = executed_path(cfg.profile, name)
    stamp = out.with_suffix(".fingerprint")
    if not force and out.is_file() and stamp.is_file() and stamp.read_text().strip() == fingerprint:
        return ChapterRun(name, False, 0.0, fingerprint)
    print(f"[book] executing chapter {name!r} (profile {cfg.profile}, config {cfg.hash})", flush=True)
    stamp.unlink(missing_ok=True)
    failed = out.with_name(f"{name}.failed.ipynb")
    started = time.perf_counter()
    absent = missing_data(cfg, name)
    with provenance.atomic_path(out) as tmp, tempfile.TemporaryDirectory(prefix="fahr-chapter-") as work:
        if absent:
            nbformat.write(missing_page(cfg, name, absent), tmp)
            _forget_results(cfg, name)
        else:
            view = Path(work) / f"{name}.ipynb"
            nbformat.write(source_view(nbformat.read(notebook_path(name), as_version=4), cfg.data.source), view)
            _execute(name, view, tmp, cfg, overrides, failed)
    seconds = time.perf_counter() - started
    failed.unlink(missing_ok=True)
    provenance.write_text(stamp, fingerprint + "\n")
    timings = _read_timings(cfg.profile)
    timings[name] = {"seconds": round(seconds, 2), "executed_at": provenance.now(), "fingerprint": fingerprint}
    provenance.write_json(timings_path(cfg.profile), timings)
    return ChapterRun(name, True, seconds, fingerprint)


def _forget_results(cfg: Config, name: str) -> None:
    """Drop the numbers a chapter recorded in an earlier build: it recorded none this time (its page says why)."""
    (paths.stage_dir(cfg.profile, "results") / f"{name}.json").unlink(missing_ok=True)


def _execute(name: str, view: Path, out: Path, cfg: Config, overrides: dict[str, Any], failed: Path) -> None:
    """Run one chapter's notebook (its data source's view) with papermill into ``out``; on failure keep the
    executed copy at ``failed`` and raise ``ChapterFailed``."""
    import papermill

    try:
        papermill.execute_notebook(
            str(view),
            str(out),
            parameters={"profile": cfg.profile, "overrides": overrides},
            kernel_name="python3",
            cwd=str(paths.NOTEBOOKS),
            progress_bar=False,
            kernel_manager_class=IpcKernelManager,
        )
    except papermill.PapermillExecutionError as err:
        if err.ename in DATA_TOO_SMALL:  # the data cannot support the chapter: say so on its page
            nbformat.write(small_data_page(name, err.evalue), out)
            _forget_results(cfg, name)
            return
        if out.exists():
            shutil.copyfile(out, failed)
        raise ChapterFailed(f"chapter {name!r} failed; executed copy kept at {failed}\n{err}") from None


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
