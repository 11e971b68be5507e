"""Prepare a scratch copy of the tree for mutmut: registrations as calls instead of decorators.

mutmut 3 does not mutate decorated functions (a decorator runs at definition time, its trampoline could not
switch mutants), and every per-layer method is registered with ``@register_method(...)``. In the COPY that
``benchmarks/mutation.sh`` tests (never in the working tree), each

    @register_method("kmeans", ...)
    def kmeans_channels(...): ...

becomes the same function followed by ``register_method("kmeans", ...)(kmeans_channels)``: the registry then
holds mutmut's trampoline and the method's body gets mutated like any other function. Same behaviour:
``register_method(...)`` returns the function unchanged.

    python benchmarks/mutation_prepare.py TREE
    python benchmarks/mutation_prepare.py --reset-survivors TREE   # survivors of an earlier run: test again
"""
from __future__ import annotations

import sys
from pathlib import Path

import json

import libcst as cst

DECORATORS = {"register_method"}


class Undecorate(cst.CSTTransformer):
    def __init__(self) -> None:
        self.count = 0

    def leave_Module(self, original: cst.Module, updated: cst.Module) -> cst.Module:
        body: list[cst.CSTNode] = []
        for stmt in updated.body:
            call = _registration(stmt)
            if call is None:
                body.append(stmt)
                continue
            body.append(stmt.with_changes(decorators=[], leading_lines=[*stmt.leading_lines]))
            register = cst.Call(func=call, args=[cst.Arg(cst.Name(stmt.name.value))])
            body.append(cst.SimpleStatementLine([cst.Expr(register)]))
            self.count += 1
        return updated.with_changes(body=body)


def _registration(stmt: cst.CSTNode) -> cst.Call | None:
    """The ``register_method(...)`` call decorating a top-level function, if that is its only decorator."""
    if not isinstance(stmt, cst.FunctionDef) or len(stmt.decorators) != 1:
        return None
    deco = stmt.decorators[0].decorator
    if isinstance(deco, cst.Call) and isinstance(deco.func, cst.Name) and deco.func.value in DECORATORS:
        return deco
    return None


def prepare(tree: Path) -> int:
    total = 0
    for path in sorted((tree / "prunelab" / "methods").glob("*.py")):
        module = cst.parse_module(path.read_text(encoding="utf-8"))
        transform = Undecorate()
        new = module.visit(transform)
        if transform.count:
            path.write_text(new.code, encoding="utf-8")
            total += transform.count
    return total


def reset_survivors(tree: Path) -> int:
    """Forget mutmut's "survived" verdicts (exit code 0) in TREE/mutants/**/*.meta; returns how many.

    mutmut re-tests a mutant only when its function changes, not when a test is added."""
    count = 0
    for meta in (tree / "mutants").rglob("*.meta"):
        data = json.loads(meta.read_text(encoding="utf-8"))
        codes = data.get("exit_code_by_key", {})
        for key, code in codes.items():
            if code == 0:
                codes[key] = None
                count += 1
        meta.write_text(json.dumps(data, indent=4), encoding="utf-8")
    return count


if __name__ == "__main__":
    if sys.argv[1] == "--reset-survivors":
        print(f"mutation_prepare: {reset_survivors(Path(sys.argv[2]))} surviving mutants will be tested again")
    else:
        n = prepare(Path(sys.argv[1]))
        print(f"mutation_prepare: {n} method registrations turned from decorators into calls")
