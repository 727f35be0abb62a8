"""The layers of the package: labeling and simulation side by side above the round engine.

Imports are read from the source (``ast``), function-level ones included.
"""

import ast
from pathlib import Path

from test_imports import import_graph

import skal_cxr

PACKAGE = Path(skal_cxr.__file__).parent


def _imports(path, module):
    """``(module imported, [names])`` of every import in ``path``, as absolute names."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    is_package = path.name == "__init__.py"
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.extend((alias.name, []) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            out.append((target, [alias.name for alias in node.names]))
    return out


def private_simulation_imports(folder, root=PACKAGE.parent):
    """``file: imported`` for every private module or name of ``skal_cxr.simulation``.

    ``root`` is the folder holding the ``skal_cxr`` package.
    """
    found = []
    for path in sorted(folder.rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        for target, names in _imports(path, module):
            if target != "skal_cxr.simulation" and not target.startswith("skal_cxr.simulation."):
                continue
            private = [n for n in names if n.startswith("_")]
            if any(p.startswith("_") for p in target.split(".")) or private:
                found.append(f"{path.name}: {target} {private or ''}".strip())
    return found


def test_the_checker_sees_a_private_import(tmp_path):
    fake = tmp_path / "skal_cxr" / "labeling"
    fake.mkdir(parents=True)
    (fake / "_x.py").write_text(
        "def f():\n    from ..simulation._runner import query_round\n"
        "from ..simulation import _private, simulate\n"
        "from ..engine import query_round\n"
    )
    found = private_simulation_imports(fake, tmp_path)
    assert sorted(found) == [
        "_x.py: skal_cxr.simulation ['_private']",
        "_x.py: skal_cxr.simulation._runner",
    ]


def test_labeling_imports_nothing_private_of_simulation():
    assert private_simulation_imports(PACKAGE / "labeling") == []


def _reaches(graph, start, prefix):
    """Whether a module of ``start``'s package imports, directly or not, one under ``prefix``."""
    seen, todo = set(), [m for m in graph if m == start or m.startswith(start + ".")]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        for nxt in graph[module]:
            if nxt == prefix or nxt.startswith(prefix + "."):
                return module, nxt
            todo.append(nxt)
    return None


def test_simulation_and_labeling_sit_above_the_engine():
    graph = import_graph()
    for user in ("skal_cxr.simulation", "skal_cxr.labeling"):
        assert any(
            t.startswith("skal_cxr.engine")
            for m, ts in graph.items()
            if m.startswith(user)
            for t in ts
        ), user
    for above in ("skal_cxr.simulation", "skal_cxr.labeling", "skal_cxr.report", "skal_cxr.cli"):
        assert _reaches(graph, "skal_cxr.engine", above) is None, above
    # side by side: neither imports the other
    assert _reaches(graph, "skal_cxr.labeling", "skal_cxr.simulation") is None
    assert _reaches(graph, "skal_cxr.simulation", "skal_cxr.labeling") is None


#: The most lines a module of the package may have (small focused modules).
MAX_LINES = 500


def _long_modules(root):
    return sorted(
        (str(p.relative_to(root)), n)
        for p in root.rglob("*.py")
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    )


def test_the_length_check_sees_a_long_module(tmp_path):
    (tmp_path / "short.py").write_text("x = 1\n" * MAX_LINES)
    (tmp_path / "long.py").write_text("x = 1\n" * (MAX_LINES + 1))
    assert _long_modules(tmp_path) == [("long.py", MAX_LINES + 1)]


def test_no_module_over_500_lines():
    assert _long_modules(PACKAGE) == []


def test_label_studio_sits_above_the_engine_beside_labeling_and_simulation():
    graph = import_graph()
    assert _reaches(graph, "skal_cxr.engine", "skal_cxr.label_studio") is None
    for other in ("skal_cxr.labeling", "skal_cxr.simulation"):
        assert _reaches(graph, "skal_cxr.label_studio", other) is None, other
        assert _reaches(graph, other, "skal_cxr.label_studio") is None, other


def test_label_studio_uses_the_engine_in_one_module():
    # one place to switch when the engine's public names change
    users = sorted(
        m
        for m, ts in import_graph().items()
        if m.startswith("skal_cxr.label_studio")
        and any(t.startswith("skal_cxr.engine") for t in ts)
    )
    assert users == ["skal_cxr.label_studio._engine"]


#: The one module that fits a learner round after round (the engine's loop).
LOOP_MODULE = "skal_cxr/engine/_loop.py"


def _learner_names(tree):
    """Names bound to ``ActiveLearner(...)`` (or ``make_learner(...)``) anywhere in ``tree``."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            func = node.value.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if called in ("ActiveLearner", "make_learner"):
                names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


def _fits_a_learner(call, learners):
    """Whether ``call`` is ``x.teach(...)`` or ``.fit(...)`` of an active learner."""
    func = call.func
    if not isinstance(func, ast.Attribute):
        return False
    if func.attr == "teach":
        return True
    if func.attr != "fit":
        return False
    receiver = func.value
    if isinstance(receiver, ast.Call):  # ActiveLearner(...).fit(...)
        inner = receiver.func
        name = inner.attr if isinstance(inner, ast.Attribute) else getattr(inner, "id", None)
        return name in ("ActiveLearner", "make_learner")
    if isinstance(receiver, ast.Attribute) and receiver.attr == "learner":
        return True  # self.learner.fit / loop.learner.fit
    return isinstance(receiver, ast.Name) and receiver.id in learners


def learner_loops(root, skip=(LOOP_MODULE,)):
    """``file:line`` of every loop (``for``/``while``) whose body fits an active learner.

    Scans every ``.py`` file under ``root``'s ``skal_cxr`` and ``benchmarks``
    folders except ``skip`` (paths relative to ``root``).
    """
    found = []
    for folder in ("skal_cxr", "benchmarks"):
        for path in sorted((root / folder).rglob("*.py")):
            rel = path.relative_to(root).as_posix()
            if rel in skip:
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"), rel)
            learners = _learner_names(tree)
            for loop in ast.walk(tree):
                if not isinstance(loop, (ast.For, ast.AsyncFor, ast.While)):
                    continue
                body = [n for stmt in loop.body + loop.orelse for n in ast.walk(stmt)]
                if any(isinstance(n, ast.Call) and _fits_a_learner(n, learners) for n in body):
                    found.append(f"{rel}:{loop.lineno}")
    return sorted(set(found))


def test_the_loop_checker_sees_a_round_written_again(tmp_path):
    for folder in ("skal_cxr/engine", "benchmarks"):
        (tmp_path / folder).mkdir(parents=True)
    (tmp_path / "skal_cxr/engine/_loop.py").write_text(
        "def step(learner, X, y):\n    for q in X:\n        learner.teach(q, y)\n"
    )
    (tmp_path / "benchmarks/bench_x.py").write_text(
        "from skal_cxr import ActiveLearner\n"
        "def run(net, X, y, points):\n"
        "    learner = ActiveLearner(net)\n"
        "    for n in points:\n"
        "        learner.fit(X[:n], y[:n])\n"
        "    while points:\n"
        "        fit = lambda q: learner.teach(X[q], y[q])\n"
        "        points.pop()\n"
        "    for n in points:\n"
        "        net.fit(X, y)  # a plain estimator: not a round\n"
    )
    assert learner_loops(tmp_path) == ["benchmarks/bench_x.py:4", "benchmarks/bench_x.py:6"]


def test_only_the_engine_loop_fits_a_learner_round_after_round():
    # every round (simulation, labeling worker, benchmarks) is ActiveLoop.step
    assert learner_loops(PACKAGE.parent) == []


#: The parts of skal_cxr.labeling, bottom first: a part imports only those of lower rows
#: (``store`` nothing above it; ``web`` and ``pacs`` nothing of each other).
LABELING_TIERS = (
    ("_settings", "_errors", "_scoring"),
    ("store",),
    ("worker", "read"),
    ("_project_images", "_project_review", "_project_serving"),
    ("_project", "_init_recovery", "_init_settings"),
    ("_init",),
    ("pacs", "web"),
    ("__init__", "_trainer"),
    ("_cli_options",),
    ("_commands",),
    ("cli",),
)


def _labeling_part(module):
    parts = module.split(".")
    return parts[2] if len(parts) > 2 else "__init__"


def _labeling_tier(part):
    return next((i for i, row in enumerate(LABELING_TIERS) if part in row), None)


def labeling_upward_imports(graph):
    """``importer -> imported`` for every import between labeling parts that is not downwards."""
    wrong = []
    for module, targets in sorted(graph.items()):
        if not (module + ".").startswith("skal_cxr.labeling."):
            continue
        part = _labeling_part(module)
        for target in sorted(targets):
            if not (target + ".").startswith("skal_cxr.labeling."):
                continue
            other = _labeling_part(target)
            if other == part:
                continue
            tier, other_tier = _labeling_tier(part), _labeling_tier(other)
            if tier is None or other_tier is None or other_tier >= tier:
                wrong.append(f"{module} -> {target}")
    return wrong


def test_the_labeling_layer_check_sees_an_upward_import():
    graph = {
        "skal_cxr.labeling.store._db": {"skal_cxr.labeling.web._app"},
        "skal_cxr.labeling.web._app": {"skal_cxr.labeling.store._db", "skal_cxr.labeling.pacs._x"},
        "skal_cxr.labeling.worker._rounds": {"skal_cxr.labeling._settings"},
    }
    assert labeling_upward_imports(graph) == [
        "skal_cxr.labeling.store._db -> skal_cxr.labeling.web._app",
        "skal_cxr.labeling.web._app -> skal_cxr.labeling.pacs._x",
    ]


def test_labeling_layers_import_only_downwards():
    # store below worker and read, below the project, below pacs and web: no cycle
    assert labeling_upward_imports(import_graph()) == []


# -- the labeling project's facade -------------------------------------------------------

#: The modules the project is made of: the facade and its mixins (``_project*.py``,
#: ``read/_views.py``), the exports and the rounds it runs, and the store below. Only they
#: may use the project's collaborators.
PROJECT_CORE = ("labeling/_project", "labeling/store/", "labeling/read/", "labeling/worker/")

#: What a caller may read of a project besides its methods (documented under Attributes).
PROJECT_DATA = {
    "path",
    "config",
    "round_config",
    "stop_set",
    "classes",
    "name",
    "scoring",
    "score_scheduler",
}


def project_parts(source=PACKAGE / "labeling" / "_project.py"):
    """The collaborators of ``LabelingProject``: what its ``__init__`` sets beyond its data."""
    tree = ast.parse(source.read_text(encoding="utf-8"))
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "LabelingProject")
    init = next(n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "__init__")
    return {
        target.attr
        for node in ast.walk(init)
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Attribute)
        and isinstance(target.value, ast.Name)
        and target.value.id == "self"
        and target.attr not in PROJECT_DATA
    }


def _holds_a_project(node):
    """``project``, ``self.project``, ``app.state.project``, ``old_project``..."""
    name = node.id if isinstance(node, ast.Name) else getattr(node, "attr", "")
    return "project" in name.lower()


def reaches_past_the_project(roots, parts, base=PACKAGE.parent):
    """``file:line: chain`` for every ``<project>.<part>`` outside :data:`PROJECT_CORE`."""
    found = []
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            rel = path.relative_to(base).as_posix()
            if any(rel.startswith("skal_cxr/" + core) for core in PROJECT_CORE):
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
            for node in ast.walk(tree):
                if (
                    isinstance(node, ast.Attribute)
                    and (node.attr in parts or node.attr.startswith("_"))
                    and not node.attr.startswith("__")
                    and _holds_a_project(node.value)
                ):
                    found.append((rel, node.lineno, ast.unparse(node)))
    return [f"{rel}:{line}: {chain}" for rel, line, chain in sorted(found)]


def test_the_facade_check_sees_a_caller_reaching_into_a_part(tmp_path):
    web = tmp_path / "skal_cxr" / "labeling" / "web"
    store = tmp_path / "skal_cxr" / "labeling" / "store"
    for folder in (web, store):
        folder.mkdir(parents=True)
    (web / "_routes.py").write_text(
        "def me(project, name):\n"
        "    project.queue.insert_round(name)\n"
        "    queue = request.app.state.project.queue\n"
        "    return project.classes, project.next_image(name), project._pool, rec.queue\n"
    )
    (store / "_leases.py").write_text("def release(project):\n    project.db.connect()\n")
    assert reaches_past_the_project([tmp_path / "skal_cxr"], {"queue", "db"}, tmp_path) == [
        "skal_cxr/labeling/web/_routes.py:2: project.queue",
        "skal_cxr/labeling/web/_routes.py:3: request.app.state.project.queue",
        "skal_cxr/labeling/web/_routes.py:4: project._pool",
    ]


def test_the_facade_check_knows_the_project_parts():
    assert {"db", "queue", "label_store", "review", "image_store", "training"} <= project_parts()


def test_callers_use_the_project_methods_not_its_parts():
    # web/, the commands, pacs/, label_studio/ and the benchmarks call the project's
    # operations; only the project and the layers it is made of reach its collaborators
    roots = [PACKAGE, PACKAGE.parent / "benchmarks"]
    assert reaches_past_the_project(roots, project_parts()) == []
