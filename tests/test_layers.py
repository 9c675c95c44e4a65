"""The package's layers: each module imports only from its own layer and the layers below it (DESIGN.md), read
from the source with the project's own import reader, imports inside functions included."""

from __future__ import annotations

from pathlib import Path

import pytest

from fahr.core import cache, paths

# bottom to top; a module may import its own layer and any layer before it
LAYERS = (
    ("core", ("fahr.core",)),
    ("stats", ("fahr.stats",)),  # pure statistics: imports core only (the thread limiter), never the pipeline
    ("data", ("fahr.data",)),
    ("models", ("fahr.models",)),
    ("train", ("fahr.train",)),
    ("predict", ("fahr.predict",)),
    ("explain", ("fahr.explain",)),
    ("analysis", ("fahr.analysis",)),
    ("report", ("fahr.report",)),
    ("application", ("fahr.cli", "fahr.bench", "fahr.privacy", "fahr.publish")),
)
PACKAGE_ROOT = "fahr"


def modules() -> dict[str, Path]:
    """Every module of the package, by dotted name (packages by their ``__init__``)."""
    found = {}
    for path in sorted(paths.REPO.joinpath(PACKAGE_ROOT).rglob("*.py")):
        parts = path.relative_to(paths.REPO).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def layer_of(module: str) -> int | None:
    """Index of a module's layer; None for the package roots, which import nothing."""
    for index, (_, prefixes) in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return index
    return None


def direct_imports(module: str, path: Path) -> set[str]:
    """The fahr modules ``module`` names in its imports (parent packages left out: they are import-free)."""
    found = cache.imported_fahr_modules(path.read_text(), module, path.name == "__init__.py")
    return {m for m in found if not any(other.startswith(m + ".") for other in found)} - {module}


def test_every_module_belongs_to_a_layer() -> None:
    roots = {PACKAGE_ROOT, *(f"{PACKAGE_ROOT}.{name}" for name in ("data.synth", "data.real"))}
    homeless = [m for m in modules() if layer_of(m) is None and m not in {PACKAGE_ROOT}]
    assert not homeless, f"modules outside every layer of DESIGN.md: {homeless}"
    assert roots  # the sub-packages are inside the data layer


def test_package_inits_import_nothing_from_fahr() -> None:
    offenders = {m: sorted(direct_imports(m, p)) for m, p in modules().items()
                 if p.name == "__init__.py" and m != "fahr.models" and direct_imports(m, p)}  # fmt: skip
    assert not offenders, f"package __init__ files that import fahr modules (a hidden dependency): {offenders}"


def test_no_module_imports_against_the_direction_of_the_layers() -> None:
    violations = []
    for module, path in modules().items():
        mine = layer_of(module)
        if mine is None:
            continue
        for target in direct_imports(module, path):
            theirs = layer_of(target)
            if theirs is not None and theirs > mine:
                violations.append(f"{module} ({LAYERS[mine][0]}) imports {target} ({LAYERS[theirs][0]})")
    assert not violations, "imports against the layers:\n" + "\n".join(sorted(violations))


def test_statistics_import_nothing_of_the_pipeline() -> None:
    allowed = {"fahr.core.runtime"}
    reaching = {m: sorted(direct_imports(m, p) - allowed) for m, p in modules().items()
                if layer_of(m) == 1 and direct_imports(m, p) - allowed}  # fmt: skip
    assert not reaching, f"fahr.stats must stay pure: {reaching}"


def test_real_data_code_never_imports_the_synthetic_cohort() -> None:
    real = {m: p for m, p in modules().items() if m.startswith("fahr.data.real")}
    reaching = {m: sorted(t for t in direct_imports(m, p) if t.startswith("fahr.data.synth")) for m, p in real.items()}
    assert not any(reaching.values()), f"the real-data path must not know FAHR-Synth: {reaching}"


def test_there_is_no_import_cycle() -> None:
    graph = {m: direct_imports(m, p) for m, p in modules().items()}
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join(trail[trail.index(nxt) :] + [nxt]) if nxt in trail else nxt)
            elif nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for module in graph:
        if module not in state:
            visit(module, [module])
    assert not cycles, f"import cycles: {cycles}"


@pytest.mark.parametrize(
    ("source", "module", "expected"),
    [
        ("from fahr.analysis import survival\n", "fahr.stats.cox", {"fahr.analysis.survival"}),
        ("def f():\n    from fahr.report import claims\n", "fahr.train.loop", {"fahr.report.claims"}),
        ("from . import cox\n", "fahr.stats.concordance", {"fahr.stats.cox"}),
    ],
)
def test_the_import_reader_sees_top_level_function_level_and_relative_imports(source, module, expected) -> None:
    found = cache.imported_fahr_modules(source, module)
    assert expected <= found
