"""The book as a reader sees it: code folded, parameter cells gone, a rerun line in every chapter header; and
chapters executed over a private IPC socket (no TCP port, no warning per chapter)."""

from __future__ import annotations

from pathlib import Path

import nbformat

from fahr.core import config
from fahr.report import book
from fahr.report.notebook import Chapter


def test_code_is_folded_and_parameter_cells_are_removed() -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# A chapter"),
        nbformat.v4.new_code_cell('profile = "demo"', metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell('profile = "smoke"', metadata={"tags": ["injected-parameters"]}),
        nbformat.v4.new_code_cell("table"),
        nbformat.v4.new_code_cell("figure", metadata={"tags": ["remove-input"]}),
    ]
    view = book.reader_view(nb)
    tags = [c.metadata.get("tags") for c in view.cells]
    assert tags == [None, ["parameters", "remove-cell"], ["injected-parameters", "remove-cell"], ["hide-input"],
                    ["remove-input"]]  # fmt: skip
    assert book.reader_view(view).cells[3].metadata["tags"] == ["hide-input"]  # idempotent


def test_every_chapter_header_gives_the_command_that_reruns_it() -> None:
    cfg = config.load("smoke", {})
    header = Chapter("faceage", cfg, {"seed": 1}, "2026-01-01 00:00").header()
    assert '`make chapter NB=faceage PROFILE=smoke SET="seed=1"`' in header
    plain = Chapter("cohorts", cfg, {}, "2026-01-01 00:00").header()
    assert "`make chapter NB=cohorts PROFILE=smoke`" in plain


def test_the_kernel_talks_over_a_private_socket_folder_that_is_removed_afterwards() -> None:
    km = book.IpcKernelManager(kernel_name="python3")
    folder = Path(km.socket_dir)
    assert km.transport == "ipc" and km.ip.startswith(str(folder)) and folder.is_dir()
    km.cleanup_resources()
    assert not folder.exists()
