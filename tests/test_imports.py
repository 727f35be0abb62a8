"""The package's import graph has no cycle, function-level imports included.

Each module's imports are read from its source (``ast``), so an import hidden
inside a function counts as much as one at the top: either way the two
modules depend on each other, and the cycle shows in the design.
"""

import ast
from pathlib import Path

import skal_cxr

PACKAGE = Path(skal_cxr.__file__).parent


def _module_name(path):
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(module, node, is_package):
    """Absolute names of the modules an ``import`` / ``from ... import`` node reads."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:
        base = module.split(".")
        base = base[: len(base) - node.level + (1 if is_package else 0)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module
    # ``from pkg import name`` reads pkg, or the submodule pkg.name if it is one
    return [target] + [f"{target}.{alias.name}" for alias in node.names]


def import_graph():
    """``{module: set of skal_cxr modules it imports}`` for every module of the package."""
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for module, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        targets = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                targets.update(_resolve(module, node, path.name == "__init__.py"))
        graph[module] = {t for t in targets if t in files and t != module}
    return graph


def find_cycle(graph):
    """One import cycle as a list of modules (first == last), or None."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_cycle_finder_finds_function_level_cycles(tmp_path):
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    source = "def f():\n    from ..report import make_report\n"
    node = ast.parse(source).body[0].body[0]
    assert _resolve("skal_cxr.simulation._simulate", node, False)[0] == "skal_cxr.report"


def test_graph_sees_the_package():
    graph = import_graph()
    assert "skal_cxr.strategies._base" in graph["skal_cxr.strategies._bayesian"]
    assert "skal_cxr.learner" in graph["skal_cxr.engine._loop"]
    assert "skal_cxr._lazy_names" in graph["skal_cxr"]  # its public names load on first use


def test_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)
