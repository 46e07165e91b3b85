"""The import graph of our packages: no cycles, and the layer rules of the design."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("ledger", "commands", "projections")


def module_name(path: Path) -> str:
    """``commands/engine/operation.py`` -> ``commands.engine.operation``."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def our_modules() -> dict[str, Path]:
    """Every module of our packages, by dotted name."""
    return {module_name(p): p for package in PACKAGES for p in (ROOT / package).rglob("*.py")}


def imports_of(path: Path, name: str, known: set[str]) -> set[str]:
    """Our modules ``path`` imports anywhere (module level, functions, TYPE_CHECKING)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            # "from a.b import c": the module a.b.c when c is one, else a.b itself.
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                       for alias in node.names]
        for target in targets:
            # The innermost of our modules the name falls in ("import a.b.c" imports a.b.c).
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = our_modules()
    known = set(modules)
    return {name: imports_of(path, name, known) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph.get(node, ())):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_cycle_finder_sees_a_cycle_through_a_function_level_import() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_function_level_imports_count(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from commands.engine import operation\n")
    assert imports_of(source, "commands.x", {"commands.engine.operation", "commands"}) \
        == {"commands.engine.operation"}


def test_no_import_cycles_among_our_modules() -> None:
    assert cycles(import_graph()) == []


def _importers(prefix: str, forbidden: tuple[str, ...]) -> list[str]:
    return sorted(
        f"{name} imports {target}"
        for name, targets in import_graph().items() if name.startswith(prefix)
        for target in targets if target.startswith(forbidden))


def test_ledger_imports_nothing_of_ours_outside_it() -> None:
    assert _importers("ledger", ("commands", "projections")) == []


def test_projections_never_import_drivers_or_toolstacks() -> None:
    assert _importers("projections", ("commands.drivers", "commands.toolstacks")) == []


@pytest.mark.parametrize("layer", ["commands.handlers", "commands.planning", "commands.engine",
                                   "commands.drivers", "commands.toolstacks",
                                   "commands.config", "commands.state"])
def test_layers_below_the_cli_never_import_it(layer: str) -> None:
    assert _importers(layer, ("commands.cli",)) == []


def layer_of(module: str) -> str:
    """``commands.engine.operation`` -> ``commands.engine``; ``ledger.storage.sqlite`` ->
    ``ledger.storage``; a top-level module of ``commands`` is its own layer."""
    parts = module.split(".")
    if parts[0] == "projections":
        return "projections"
    if parts[0] == "ledger":
        return "ledger.storage" if parts[1:2] == ["storage"] else "ledger"
    return ".".join(parts[:2])


#: Which layers each layer may import: README's flow (CLI -> handler -> plan -> step engine
#: -> drivers/toolstacks -> ledger) and design.md's rules (``ledger`` imports neither
#: ``commands`` nor ``projections``; ``projections`` never runs a side effect: it imports
#: nothing of ``commands``). The service sits on top: it runs the CLI.
MAY_IMPORT: dict[str, set[str]] = {
    "commands.__main__": {"commands.service", "commands.cli"},
    "commands.service": {"commands", "commands.cli", "commands.bootstrap", "commands.config",
                         "commands.errors", "ledger", "ledger.storage", "projections"},
    "commands.cli": {"commands.bootstrap", "commands.handlers", "commands.planning",
                     "commands.config", "commands.state", "commands.drivers",
                     "commands.errors", "ledger", "ledger.storage", "projections"},
    "commands.bootstrap": {"commands.engine", "commands.toolstacks", "commands.drivers",
                           "commands.config", "commands.state", "commands.errors", "ledger",
                           "ledger.storage", "projections"},
    "commands.handlers": {"commands.bootstrap", "commands.planning", "commands.engine",
                          "commands.toolstacks", "commands.drivers", "commands.config",
                          "commands.state", "commands.errors", "ledger", "ledger.storage",
                          "projections"},
    "commands.planning": {"commands.engine", "commands.toolstacks", "commands.drivers",
                          "commands.config", "commands.state", "commands.errors", "ledger"},
    "commands.engine": {"commands.toolstacks", "commands.drivers", "commands.config",
                        "commands.state", "commands.errors", "ledger"},
    "commands.toolstacks": {"commands.drivers", "commands.config", "commands.errors"},
    "commands.state": {"commands.drivers", "commands.config", "commands.errors", "ledger",
                       "ledger.storage", "projections"},
    "commands.config": {"commands.errors"},
    "commands.errors": {"commands.drivers", "ledger"},
    "commands.drivers": set(),
    "projections": {"ledger", "ledger.storage"},
    "ledger": {"ledger.storage"},
    "ledger.storage": {"ledger"},
}


def test_every_layer_is_in_the_table() -> None:
    layers = {layer_of(m) for m in our_modules()} - {"commands"}
    assert layers == set(MAY_IMPORT)


def test_each_layer_imports_only_what_the_table_allows() -> None:
    wrong = sorted(f"{name} imports {target}"
                   for name, targets in import_graph().items() for target in targets
                   if layer_of(target) != layer_of(name) and layer_of(name) != "commands"
                   and layer_of(target) not in MAY_IMPORT[layer_of(name)])
    assert wrong == []


def test_the_aggregate_imports_no_storage_adapter() -> None:
    """The domain model is infrastructure-free (eventsourcing's examples): its events
    and invariants never import the SQLite or PostgreSQL adapters."""
    assert _importers("ledger.domain", ("ledger.storage", "ledger.app")) == []
    assert _importers("ledger.storage.sqlite", ("ledger.domain",)) == []
    assert _importers("ledger.storage.postgres", ("ledger.domain",)) == []
