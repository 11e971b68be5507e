"""The package's shape: imports run one way, the library never imports Gradio, ``import prunelab`` stays light."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import prunelab

PACKAGE = Path(prunelab.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(module: str, node: ast.ImportFrom, is_package: bool) -> list[str]:
    """Absolute names an ``ImportFrom`` refers to (the module and, for ``from pkg import sub``, the submodules)."""
    if node.level:
        base = module.split(".")
        base = base[: len(base) - node.level + (1 if is_package else 0)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    return [target] + [f"{target}.{a.name}" for a in node.names]


def _imports(path: Path, *, top_level_only: bool) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    module, is_package = _module_name(path), path.name == "__init__.py"
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.update(_resolve(module, node, is_package))
    return found


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        deps = {d for d in _imports(path, top_level_only=True) if d in modules and d != name}
        # importing a.b.c runs a/__init__ and a/b/__init__ first
        for d in list(deps):
            parts = d.split(".")
            deps.update(".".join(parts[:i]) for i in range(2, len(parts)) if ".".join(parts[:i]) in modules)
        graph[name] = deps - {name} - {n for n in modules if name.startswith(n + ".")}
    return graph


def test_library_never_imports_gradio():
    for path in PACKAGE.rglob("*.py"):
        bad = {m for m in _imports(path, top_level_only=False) if m.split(".")[0] in ("gradio", "gradio_client", "ui")}
        assert not bad, f"{path} imports {bad}"


def test_no_import_cycles_between_modules():
    graph = _graph()
    assert "prunelab.compression.compress" in graph and "prunelab.speech_model" in graph  # the scan sees the tree
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                cycle = stack[stack.index(dep):] + [dep]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if dep not in state:
                visit(dep, stack + [dep])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])


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
