from __future__ import annotations

import nbformat
import pytest
import yaml

from fahr.core import paths
from fahr.report import book

NOTEBOOKS = sorted(paths.NOTEBOOKS.glob("*.ipynb"))


def test_every_notebook_is_a_chapter_and_every_chapter_has_a_notebook() -> None:
    assert sorted(p.stem for p in NOTEBOOKS) == sorted(book.CHAPTERS)


def test_every_chapter_is_in_the_table_of_contents() -> None:
    toc = yaml.safe_load((paths.BOOK_SOURCES / "_toc.yml").read_text())
    files = [c["file"] for part in toc["parts"] for c in part["chapters"]]
    assert sorted(f.removeprefix("chapters/") for f in files if f.startswith("chapters/")) == sorted(book.CHAPTERS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_without_outputs(path) -> None:
    nb = nbformat.read(path, as_version=4)
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
    assert not dirty, f"{path.name}: cells {dirty} carry outputs; clear them before committing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_has_a_parameters_cell_with_profile_and_overrides(path) -> None:
    nb = nbformat.read(path, as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: expected exactly one cell tagged 'parameters'"
    names: dict = {}
    exec(tagged[0].source, {}, names)
    assert {"profile", "overrides"} <= set(names)
    assert names["profile"] == "demo", "the notebooks default to the demo profile, like make book"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_opens_with_a_title_and_shows_its_provenance(path) -> None:
    nb = nbformat.read(path, as_version=4)
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert f'start("{path.stem}", profile, overrides)' in code, "every chapter starts with fahr.report.notebook.start"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
@pytest.mark.parametrize("source", book.SOURCES)
def test_each_data_source_sees_one_title_one_start_and_no_cell_of_the_other(path, source) -> None:
    """A chapter as each data source runs it (``book.source_view``): one title, one ``start``, one record of its
    numbers at most; on real data no cell imports FAHR-Synth (its cohorts, truth or planted design)."""
    nb = book.source_view(nbformat.read(path, as_version=4), source)
    titles = [c for c in nb.cells if c.cell_type == "markdown" and c.source.startswith("# ")]
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    assert len(titles) == 1 and nb.cells.index(titles[0]) <= 1, f"{path.name} ({source}): one title, first"
    assert sum(f'start("{path.stem}", profile, overrides)' in c for c in code) == 1
    assert sum("results.record(" in c for c in code) <= 1
    other = ({"real"} if source == "synth" else {"synth"}) & {t for c in nb.cells for t in c.metadata.get("tags", [])}
    assert not other
    if source == "real":
        reached = [c for c in code if "fahr.data.synth" in c]
        assert not reached, f"{path.name}: real-data cells reach for FAHR-Synth: {reached}"
