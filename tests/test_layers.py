"""The toolkit's four layers hold: a module's path says its layer, and imports only go down.

model (the monorepo as data) imports no other layer and no driver, Invoke or rich; database (PostgreSQL) and
checks (the audit) import model and never each other; scaffold and integrations sit beside them; only cli
(every entry point) imports everything. Lazy imports inside functions count: they are still an edge.
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "tools" / "migratekit"
BASE = {
    "migratekit.collector",
    "migratekit.errors",
    "migratekit.files",
    "migratekit.interrupts",
    "migratekit.version",
}  # from every layer
PUBLIC = {"migratekit", "migratekit.__main__", "migratekit.tasks"}  # the package's face and its entry points
MAY_IMPORT = {
    "model": {"model"},
    "database": {"model", "database"},
    "checks": {"model", "checks"},
    "scaffold": {"model", "scaffold"},
    "integrations": {"model", "database", "integrations"},
    "cli": {"model", "database", "checks", "scaffold", "integrations", "cli"},
}
# model may not talk to a database, a terminal or Invoke; psycopg.conninfo is libpq's URL parser (it opens no
# connection), which identity needs to tell two spellings of one server apart.
MODEL_FORBIDS = ("psycopg", "invoke", "rich", "testcontainers", "docker", "kubernetes")
MODEL_ALLOWS = {"psycopg.conninfo"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every module `path` imports, at the top or inside a function, resolved to migratekit's module names."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules = {f"{node.module}.{a.name}" for a in node.names if _exists(f"{node.module}.{a.name}")}
            found |= modules  # `from migratekit.database import apply` imports the module apply
            if len(modules) < len(node.names):  # and a name of the package itself, when one is not a module
                found.add(node.module)
    return found


def _exists(dotted: str) -> bool:
    if not dotted.startswith("migratekit."):
        return False
    base = PACKAGE.parent.joinpath(*dotted.split("."))
    return base.with_suffix(".py").exists() or (base / "__init__.py").exists()


MODULES = {module_name(p): imports(p) for p in sorted(PACKAGE.rglob("*.py")) if "templates" not in p.parts}


def layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in MAY_IMPORT else None


def test_every_migratekit_module_imported_exists() -> None:
    """Lazy imports inside functions included (mypy, told to ignore missing imports, would not say)."""
    missing = {
        (module, target)
        for module, targets in MODULES.items()
        for target in targets
        if target.startswith("migratekit.") and target not in MODULES
    }
    assert missing == set()


def test_every_module_but_the_base_and_the_entry_points_is_in_a_layer() -> None:
    assert {m for m in MODULES if layer(m) is None} == BASE | PUBLIC


@pytest.mark.parametrize("module", sorted(m for m in MODULES if layer(m)))
def test_a_module_imports_only_its_own_layer_and_the_ones_below(module: str) -> None:
    own = layer(module)
    assert own is not None
    upward = {
        target
        for target in MODULES[module]
        if target.startswith("migratekit") and target not in BASE and layer(target) not in MAY_IMPORT[own]
    }
    assert upward == set(), f"{module} ({own}) may import only {sorted(MAY_IMPORT[own])}"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if layer(m) == "model"))
def test_the_model_talks_to_no_database_terminal_or_invoke(module: str) -> None:
    outside = {t for t in MODULES[module] if t.split(".")[0] in MODEL_FORBIDS and t not in MODEL_ALLOWS}
    assert outside == set()


def test_no_module_imports_itself_back_through_others() -> None:
    graph = {m: {t for t in targets if t in MODULES and t != m} for m, targets in MODULES.items()}
    # a package imports its submodules' names only through them; the package itself is not an edge back
    graph = {m: {t for t in ts if not m.startswith(t + ".")} for m, ts in graph.items()}
    graphlib.TopologicalSorter(graph).prepare()  # raises CycleError naming the cycle


def test_read_only_commands_read_settings_without_the_runner() -> None:
    """status, drift, verify and baseline learn a service's settings from service.settings: they import the
    scheduler not at all, and the runner only to replay (apply_service), never for settings."""
    readers = ["migratekit.database.drift", "migratekit.database.verify", "migratekit.database.history"]
    for reader in readers:
        tree = ast.parse((PACKAGE.parent / Path(*reader.split("."))).with_suffix(".py").read_text())
        names = {
            (node.module, alias.name)
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom)
            for alias in node.names
        }
        assert not {n for n in names if n[0] == "migratekit.database.orchestrate"}, reader
        assert {n for n in names if n[0] == "migratekit.database.apply"} <= {
            ("migratekit.database.apply", "apply_service"),
            ("migratekit.database.apply", "run_again"),
        }, reader


def test_the_layout_section_is_the_code_as_it_is() -> None:
    """docs/development.md's Layout section is generated from the modules' docstrings (python tools/layout.py)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("layout", PACKAGE.parents[1] / "tools" / "layout.py")
    assert spec is not None and spec.loader is not None
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    assert tool.current(tool.PAGE.read_text()) == tool.section(), "stale: run python tools/layout.py"
