from __future__ import annotations

import pytest

from fahr.core import cache, paths


@pytest.fixture
def fake_repo(tmp_path, monkeypatch):
    """A tiny package named fahr in a temporary repository: a -> b (relative) -> c; d stands alone."""
    pkg = tmp_path / "fahr"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("import os\nfrom fahr.sub import b\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "b.py").write_text("from . import c\nfrom ..d import thing\n")
    (pkg / "sub" / "c.py").write_text("VALUE = 1\n")
    (pkg / "d.py").write_text("thing = 2\n")
    (pkg / "e.py").write_text("import numpy\n")
    monkeypatch.setattr(paths, "REPO", tmp_path)
    cache._module_closure.cache_clear()
    yield pkg
    cache._module_closure.cache_clear()


def test_import_graph_follows_absolute_and_relative_imports(fake_repo) -> None:
    assert cache.module_closure(["fahr.a"]) == {"fahr", "fahr.a", "fahr.sub", "fahr.sub.b", "fahr.sub.c", "fahr.d"}
    assert cache.module_closure(["fahr.e"]) == {"fahr", "fahr.e"}


def test_code_fingerprint_changes_only_with_code_that_is_imported(fake_repo) -> None:
    before_a, before_e = cache.code_fingerprint(["fahr.a"]), cache.code_fingerprint(["fahr.e"])
    (fake_repo / "sub" / "c.py").write_text("VALUE = 2\n")
    assert cache.code_fingerprint(["fahr.a"]) != before_a
    assert cache.code_fingerprint(["fahr.e"]) == before_e


def test_unknown_module_is_an_error(fake_repo) -> None:
    with pytest.raises(ModuleNotFoundError, match="fahr.nothing"):
        cache.module_closure(["fahr.nothing"])


def test_the_real_book_module_depends_on_config_and_paths() -> None:
    closure = cache.module_closure(["fahr.report.book"])
    assert {
        "fahr.report.book",
        "fahr.core.config",
        "fahr.core.paths",
        "fahr.core.provenance",
        "fahr.core.cache",
    } <= closure
    assert "fahr.cli" not in closure
