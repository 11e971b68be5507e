"""The package's shape: imports run one way (lazy imports inside functions included), the library never imports
Gradio, no tab of the app imports another tab, ``import prunelab`` stays light."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import prunelab

ROOT = Path(prunelab.__file__).parent.parent
PACKAGE = ROOT / "prunelab"
PACKAGES = ("prunelab", "ui")
TABS = "ui.tabs"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    """Every module of the library and of the app, by dotted name."""
    return {_module_name(p): p for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py"))}


def _resolve(module: str, node: ast.ImportFrom, is_package: bool) -> list[str]:
    """Absolute names an ``ImportFrom`` refers to (the module and, for ``from pkg import sub``, the submodules)."""
    if node.level:
        base = module.split(".")
        base = base[: len(base) - node.level + (1 if is_package else 0)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    return [target] + [f"{target}.{a.name}" for a in node.names]


def _is_type_checking(node: ast.AST) -> bool:
    """``if TYPE_CHECKING:`` / ``if typing.TYPE_CHECKING:``, whose body never runs."""
    test = node.test if isinstance(node, ast.If) else None
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _import_nodes(tree: ast.AST, *, type_checking: bool) -> list[ast.Import | ast.ImportFrom]:
    """Every Import/ImportFrom anywhere in ``tree``: module level, inside functions, classes, ``try`` and ``if``
    blocks. ``type_checking=False`` leaves out the bodies of ``if TYPE_CHECKING:`` (annotations only: they
    never run, so they import nothing)."""
    found, todo = [], [tree]
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        if not type_checking and _is_type_checking(node):
            todo.extend(node.orelse)
            continue
        todo.extend(ast.iter_child_nodes(node))
    return found


def _imports(path: Path, *, type_checking: bool = False) -> set[str]:
    """The absolute names ``path`` imports anywhere in it."""
    module, is_package = _module_name(path), path.name == "__init__.py"
    found: set[str] = set()
    for node in _import_nodes(ast.parse(path.read_text(encoding="utf-8")), type_checking=type_checking):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        else:
            found.update(_resolve(module, node, is_package))
    return found


def _graph() -> dict[str, set[str]]:
    """module -> the modules of prunelab and ui it imports (at import time or inside a function)."""
    modules = _modules()
    graph = {}
    for name, path in modules.items():
        deps = {d for d in _imports(path) if d in modules}
        # importing a.b.c runs a/__init__ and a/b/__init__ first
        for d in list(deps):
            parts = d.split(".")
            deps.update(".".join(parts[:i]) for i in range(2, len(parts)) if ".".join(parts[:i]) in modules)
        graph[name] = deps - {name} - {n for n in modules if name.startswith(n + ".")}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` (``[a, b, ..., a]``), or None when imports run one way."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, stack: list[str]) -> list[str] | None:
        state[node] = 1
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                return stack[stack.index(dep):] + [dep]
            if dep not in state and (cycle := visit(dep, stack + [dep])):
                return cycle
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node, [node])):
            return cycle
    return None


def test_the_scan_finds_imports_inside_functions_and_cycles_through_them():
    tree = ast.parse("import a\ndef f():\n    from .b import c\n    if x:\n        import d\n"
                     "if TYPE_CHECKING:\n    from .e import E\n")
    assert sorted(ast.unparse(n) for n in _import_nodes(tree, type_checking=False)) == [
        "from .b import c", "import a", "import d"]
    assert len(_import_nodes(tree, type_checking=True)) == 4
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_library_never_imports_gradio():
    for path in PACKAGE.rglob("*.py"):
        bad = {m for m in _imports(path, type_checking=True) if m.split(".")[0] in ("gradio", "gradio_client", "ui")}
        assert not bad, f"{path} imports {bad}"


def test_no_import_cycles_between_modules():
    """Lazy imports (inside functions) count: a cycle through one is a cycle of the design, even if it runs."""
    graph = _graph()
    assert {"prunelab.compression.compress", "prunelab.speech_model", "ui.session", "ui.tabs.compress"} <= set(graph)
    assert "prunelab.models.load" in graph["prunelab.models"]  # the scan sees imports at module level ...
    assert "prunelab.models.tiny" in graph["prunelab.models.load"]  # ... and inside functions
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_no_tab_imports_another_tab():
    """What two tabs share lives beside them (``ui/session.py``, ``ui/sliders.py``, ...) or in the library:
    ``ui/tabs/X.py`` never imports ``ui/tabs/Y.py`` (type-only imports under ``if TYPE_CHECKING:`` aside, for
    the other tab's components that ``wire`` receives)."""
    graph = _graph()
    tabs = [m for m in graph if m.startswith(TABS + ".")]
    assert "ui.tabs.compress" in tabs and "ui.tabs.tuning" in tabs
    for tab in tabs:
        others = sorted(d for d in graph[tab] if d.startswith(TABS + ".") and d != tab)
        assert not others, f"{tab} imports {others}: move what they share to ui/ (beside ui/session.py) or the library"


def test_leaf_modules_depend_on_nothing_heavier():
    graph = _graph()
    for leaf in ("prunelab.errors", "prunelab.speech_model", "prunelab.groups", "prunelab.progress"):
        assert graph[leaf] <= {"prunelab"}, f"{leaf} imports {graph[leaf]}"
    assert not any(d.startswith(("prunelab.compression", "prunelab.models", "prunelab.speech."))
                   for d in graph["prunelab.methods.clustering"] | graph["prunelab.modules"])


def test_import_prunelab_stays_light():
    code = ("import sys, prunelab; heavy = [m for m in ('gradio', 'matplotlib', 'jiwer', 'transformers', 'scipy', "
            "'sklearn', 'librosa') if m in sys.modules]; print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"import prunelab loaded {out}"
