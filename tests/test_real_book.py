"""The whole book on real data, without real data: FAHR-Synth exported in the real datasets' own formats
(``fahr synth --export``), then the smoke book built from that tree with ``data.source=real`` and every stage
trained from shards — every chapter, no planted or oracle number anywhere, the privacy scan clean; and a tree with
datasets missing builds the chapters it can and a page naming what to provide for the others."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest

from fahr.analysis import crosspath
from fahr.report import book

pytestmark = pytest.mark.book

# real data, every stage trained from WebDataset shards as on the paper profile
REAL = ("--set", "data.source=real", "--set", "data.prealigned=[]", "--set", "data.format=shards")
# The mechanism, not the models' quality, is under test: fewer photos to export and align (the clinical cohorts keep
# the smoke size, so the Cox models have their deaths) and shorter training than the FAHR-Synth smoke book.
SMALLER_EXPORT = ("--set", "synth.pretrain_n=150", "--set", "synth.age_n=100", "--set", "synth.pairs_n=4")
SHORTER = ("--set", "faceage.stage1.epochs=4", "--set", "baselines.data_fractions=[]", "--set",
           "statistics.bootstrap=30")  # fmt: skip


def fahr(artifacts: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "FAHR_ARTIFACTS": str(artifacts)}
    return subprocess.run([sys.executable, "-m", "fahr.cli", *args], capture_output=True, text=True, env=env)


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    """FAHR-Synth's smoke cohorts exported in the real datasets' formats (the cohorts themselves stay beside the
    tree, in ``synth-artifacts``, for the cross-path check)."""
    folder = tmp_path_factory.mktemp("export")
    artifacts, target = folder / "synth-artifacts", folder / "data"
    out = fahr(artifacts, "synth", "--profile", "smoke", *SMALLER_EXPORT, "--export", str(target))
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return target


@pytest.fixture(scope="module")
def built(tree, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """The smoke book from the exported tree, into an empty artifacts folder."""
    artifacts = tmp_path_factory.mktemp("real-artifacts")
    out = fahr(artifacts, "book", "--profile", "smoke", *REAL, *SHORTER, "--set", f"data.root={tree}")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-6000:]
    return artifacts, out


def code_outputs(path: Path) -> str:
    """Every text a chapter's code cells printed or displayed (not its prose)."""
    texts = []
    for cell in nbformat.read(path, as_version=4).cells:
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            data = output.get("data", {})
            texts += [output.get("text", ""), data.get("text/plain", ""), data.get("text/html", ""),
                      data.get("text/markdown", "")]  # fmt: skip
    return "\n".join(t if isinstance(t, str) else "".join(t) for t in texts)


def test_every_chapter_runs_on_the_exported_real_tree(built) -> None:
    artifacts, _ = built
    html = artifacts / "smoke" / "html"
    for name in book.CHAPTERS:
        assert (html / "chapters" / f"{name}.html").is_file(), name
        executed = nbformat.read(artifacts / "smoke" / "book" / "chapters" / f"{name}.ipynb", as_version=4)
        assert "was not run" not in "".join(c.source for c in executed.cells), f"{name} rendered the missing page"
    record = json.loads((artifacts / "smoke" / "html.build.json").read_text())
    assert record["data_source"] == "real"


def test_no_planted_or_oracle_number_appears_on_real_data(built) -> None:
    artifacts, _ = built
    results = json.loads((artifacts / "smoke" / "results.json").read_text())
    assert results["data"].startswith("real data")
    assert results["results"] and all(r.get("planted") is None and r.get("oracle") is None for r in results["results"])
    for name in book.CHAPTERS:
        shown = code_outputs(artifacts / "smoke" / "book" / "chapters" / f"{name}.ipynb").lower()
        for word in ("planted", "oracle", "bio_gap", "frailty", "apparent_age"):
            assert word not in shown, f"{name} shows {word!r} on real data"


def test_the_real_numbers_stand_beside_the_papers(built) -> None:
    artifacts, _ = built
    table = {r["key"]: r for r in json.loads((artifacts / "smoke" / "results.json").read_text())["results"]}
    for key in ("faceage.mae", "faceage.mae.appa-real", "survival.A.q4_vs_q1", "survival.B.q4_vs_q1"):
        assert np.isfinite(table[key]["value"]), key
    assert table["faceage.mae.appa-real"]["paper"] == 5.1
    assert {"faceage.mae.utkface", "faceage.mae.imdb", "faceage.mae.agedb"} <= set(table)
    assert "reproduced on real data" in code_outputs(artifacts / "smoke" / "book" / "chapters" / "report.ipynb")


def test_the_real_book_passes_the_privacy_scan(built) -> None:
    artifacts, _ = built
    env = {**os.environ, "FAHR_ARTIFACTS": str(artifacts)}
    out = subprocess.run([sys.executable, "-m", "fahr.privacy", "--profile", "smoke"], capture_output=True, text=True,
                         env=env)  # fmt: skip
    assert "clinical-a" in str(sorted((artifacts / "smoke" / "real").iterdir()))  # the real patients were indexed
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]


def test_the_real_path_sees_the_same_people_as_fahr_synths_own(built, tree) -> None:
    """``fahr crosspath`` (finding the exported cohorts from the export key's provenance record, in
    ``synth-artifacts``): on every test photo that both paths hold, the labels are the same, and the real-data
    build's FaceAge and FaceSurvival read the prepared crop as they read FAHR-Synth's rendered one — MAE, per-photo
    agreement and hazard ratios within the stated tolerances — while the same checks with the photos dealt to the
    wrong people fail where they must."""
    artifacts, _ = built
    out = fahr(artifacts, "crosspath", "--profile", "smoke", *REAL, *SHORTER, "--set", f"data.root={tree}")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    table = pd.read_csv(artifacts / "smoke" / "crosspath.csv")
    assert table["within"].all(), table.to_string()
    assert set(table["quantity"]) == set(crosspath.TOLERANCES)
    assert (table["photos"].str.split().str[0].astype(int) >= 20).all()  # most test photos were matched
    must_fail = table["quantity"].isin(["age label", "time label", "event label", "FaceAge agreement",
                                        "FaceSurvival agreement"])  # fmt: skip
    assert not table.loc[must_fail, "control within"].any(), table.to_string()
    judged = int(table["judged"].sum())
    assert judged == len(table) - 1 and f"{judged} of {judged} checks within tolerance" in out.stdout
    # the same check in the book: the Reproducibility chapter found the exported cohorts by the key's record
    shown = code_outputs(artifacts / "smoke" / "book" / "chapters" / "reproducibility.ipynb")
    assert f"{judged} of {judged} checks** are within tolerance" in shown and "FaceAge agreement" in shown


def test_make_spread_rebuilds_with_another_seed_and_the_report_decides_with_both(built, tree) -> None:
    """``fahr spread --seeds 2``: the chapters again with seed 1 in their own folder, then the report shows every
    number's SD across the two seeds and decides each claim only where both seeds agree."""
    artifacts, _ = built
    out = fahr(artifacts, "spread", "--profile", "smoke", "--seeds", "2", *REAL, *SHORTER, "--set", f"data.root={tree}")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-6000:]
    assert (artifacts / "smoke" / "spread" / "seed-1" / "smoke" / "results.json").is_file()
    seeds = {json.loads((root / "smoke" / "results.json").read_text())["chapters"]["faceage"]["seed"]
             for root in (artifacts, artifacts / "smoke" / "spread" / "seed-1")}  # fmt: skip
    assert seeds == {0, 1}
    chapters = artifacts / "smoke" / "book" / "chapters"
    report = code_outputs(chapters / "report.ipynb")
    assert "rebuilt with **2 seeds**" in report and "seed SD" in report and "of 2 seeds" in report
    assert "rebuilt with **2 seeds**" in code_outputs(chapters / "reproducibility.ipynb")
    assert "faceage.mae" in out.stdout  # the spread table, printed


def test_a_missing_dataset_removes_only_the_chapters_that_need_it(built, tree, tmp_path) -> None:
    """With only the independent clinical cohort, the Cohorts chapter describes it (as averages) and every chapter
    that needs more renders a page naming the folders to fill; the book still renders. With the public datasets
    alone every chapter but FaceSurvival and Subgroups runs. Last in the module: it rebuilds the book in the full
    build's folder."""
    artifacts, _ = built
    partial = tmp_path / "data"
    partial.mkdir()
    os.symlink(tree / "clinical-b", partial / "clinical-b")
    out = fahr(artifacts, "book", "--profile", "smoke", *REAL, *SHORTER, "--set", f"data.root={partial}")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-6000:]
    chapters = artifacts / "smoke" / "book" / "chapters"
    for name in ("pretraining", "faceage", "facesurvival", "subgroups", "robustness", "saliency"):
        page = "".join(c.source for c in nbformat.read(chapters / f"{name}.ipynb", as_version=4).cells)
        assert "was not run" in page and f"{partial / 'webface'}/" in page, name
    assert f"{partial / 'clinical-a'}/" in "".join(
        c.source for c in nbformat.read(chapters / "facesurvival.ipynb", as_version=4).cells
    )
    cohorts = code_outputs(chapters / "cohorts.ipynb")
    assert "clinical-b" in cohorts and "utkface" not in cohorts
    report = code_outputs(chapters / "report.ipynb")
    assert "Chapters not run for want of data" in report and "0 recorded numbers" in report
    assert (artifacts / "smoke" / "html" / "chapters" / "facesurvival.html").is_file()

    # a reviewer with the public datasets alone: every chapter but the clinical ones, FaceAge's half of
    # Robustness (painted makeup included) and of Saliency, with the reason for the other half
    public = tmp_path / "public"
    public.mkdir()
    for name in ("webface", "utkface", "appa-real", "imdb-wiki", "agedb"):
        os.symlink(tree / name, public / name)
    out = fahr(artifacts, "book", "--profile", "smoke", *REAL, *SHORTER, "--set", f"data.root={public}")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-6000:]
    for name in book.CHAPTERS:
        page = "".join(c.source for c in nbformat.read(chapters / f"{name}.ipynb", as_version=4).cells)
        assert ("was not run" in page) == (name in ("facesurvival", "subgroups")), name
    robustness, saliency = (code_outputs(chapters / f"{name}.ipynb") for name in ("robustness", "saliency"))
    assert "makeup" in robustness and "no FaceSurvival without clinical cohort A" in robustness
    assert "none of clinical cohort A, which is not provided" in saliency
