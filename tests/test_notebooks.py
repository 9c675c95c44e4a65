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
