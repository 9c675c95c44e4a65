"""Fingerprints that decide when something must be rebuilt: code (by import graph), config, files."""

from __future__ import annotations

import ast
import hashlib
import json
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

from fahr.core import paths

PACKAGE = "fahr"


def digest(*parts: Any) -> str:
    """sha256 (16 hex digits) of the canonical JSON of ``parts``."""
    text = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def file_digest(path: Path) -> str:
    """sha256 (16 hex digits) of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def _module_file(module: str) -> Path | None:
    base = paths.REPO.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported_fahr_modules(source: str, module: str = "", is_package: bool = False) -> set[str]:
    """The ``fahr`` modules that Python ``source`` (of ``module``) imports directly, relative imports included."""
    found: set[str] = set()
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            if name == PACKAGE or name.startswith(PACKAGE + "."):
                # every parent package's __init__ runs on import, so it is a dependency too
                parts = name.split(".")
                found.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return {m for m in found if _module_file(m)}


@cache
def _module_closure(module: str) -> frozenset[str]:
    seen: set[str] = set()
    parts = module.split(".")
    todo = [".".join(parts[:i]) for i in range(1, len(parts) + 1)]  # importing a module runs its parents
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        path = _module_file(current)
        todo.extend(imported_fahr_modules(path.read_text(), current, path.name == "__init__.py") - seen)
    return frozenset(seen)


def module_closure(modules: Iterable[str]) -> set[str]:
    """``modules`` and every ``fahr`` module they import, transitively."""
    closure: set[str] = set()
    for module in modules:
        if _module_file(module) is None:
            raise ModuleNotFoundError(f"no fahr module {module!r} under {paths.REPO}")
        closure |= _module_closure(module)
    return closure


def code_fingerprint(modules: Iterable[str]) -> str:
    """A digest of the source of ``modules`` and everything they import from ``fahr``."""
    closure = sorted(module_closure(modules))
    return digest([(m, file_digest(_module_file(m))) for m in closure])
