"""The package's import graph, read from the source: no cycles, and imports only point down.

Every ``import`` of every module counts, at module level, inside functions and under
``TYPE_CHECKING`` alike (a lazy import can close a cycle as well as an eager one). Layers, top
down: the faces (``cli``, ``notebook``, ``lab``), ``report``, ``engine``, the parts (``store``,
``proposers``, ``executors``, ``importers``) and ``core``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import autoresearch_jupyter

PACKAGE = Path(autoresearch_jupyter.__file__).parent
ROOT = PACKAGE.name
FACES = {"cli", "notebook", "lab"}
PARTS = {"store", "proposers", "executors", "importers"}
FORBIDDEN = {  # package -> packages it must never import
    "core": FACES | PARTS | {"engine", "report"},
    "engine": FACES | {"report", "importers"},
    **{part: FACES | {"engine", "report"} for part in PARTS},
    "report": FACES,
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports_of(name: str) -> set[str]:
    """The project modules that module ``name`` imports (a package counts as its ``__init__``)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            # `from pkg import mod` imports the module pkg.mod when there is one
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:  # `import a.b.c` names module a.b.c, else a.b ...
                target = target.rpartition(".")[0]
            if target.startswith(ROOT) and target != name:
                out.add(target)
    return out


GRAPH = {name: imports_of(name) for name in MODULES}


def layer(module: str) -> str:
    """The package a module belongs to below the root ("" for the root's own modules)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and (PACKAGE / parts[1]).is_dir() else ""


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a list of nodes (first == last), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_graph_is_read_from_every_module():
    assert len(MODULES) > 40
    assert "autoresearch_jupyter.core.node" in GRAPH["autoresearch_jupyter.core.tree"]
    assert "autoresearch_jupyter.engine.callbacks" in GRAPH["autoresearch_jupyter.engine.search"]
    # a cycle is found when there is one
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_between_modules():
    cycle = find_cycle(GRAPH)
    assert cycle is None, " -> ".join(cycle or [])


def test_no_import_cycle_between_packages():
    packages: dict[str, set[str]] = {}
    for module, targets in GRAPH.items():
        mine = layer(module)
        if not mine:  # the root's modules (__init__, __main__, testing) sit above every layer
            continue
        packages.setdefault(mine, set()).update(layer(t) for t in targets if layer(t) not in ("", mine))
    cycle = find_cycle(packages)
    assert cycle is None, " -> ".join(cycle or [])


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_only_point_down(package):
    wrong = sorted(
        f"{module} imports {target}"
        for module, targets in GRAPH.items()
        if layer(module) == package
        for target in targets
        if layer(target) in FORBIDDEN[package] or (package == "core" and layer(target) == "")
    )
    assert not wrong, "\n".join(wrong)


# The LLM settings are read through proposers._config until the typed run settings replace them.
PENDING = {
    "autoresearch_jupyter.cli.run imports autoresearch_jupyter.proposers._config",
    "autoresearch_jupyter.engine.options imports autoresearch_jupyter.proposers._config",
}


def test_no_private_module_of_another_package_is_imported():
    wrong = sorted(
        f"{module} imports {target}"
        for module, targets in GRAPH.items()
        for target in targets
        if target.rpartition(".")[2].startswith("_") and not target.endswith("__init__")
        and layer(target) != layer(module) and layer(module) != ""
    )
    wrong = [w for w in wrong if w not in PENDING]
    assert not wrong, "\n".join(wrong)
