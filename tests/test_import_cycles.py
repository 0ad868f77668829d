"""No import circles among the project's modules (issue 15).

A static scan: every `import` and `from ... import` statement of every
module of the repository's packages, at module level and inside functions
alike (a function-level import only hides a circle until the function
runs).  `from package import name` counts as an import of the submodule
`package.name` when there is one, else of the package.  Importing
`a.b.c` also runs `a/__init__.py` and `a/b/__init__.py`; those implicit
imports of parent packages are not edges, or every package whose
`__init__` re-exports a submodule would be a circle with that submodule.

A circle found here fails the test unless it is in KNOWN, which may only
shrink: a listed circle that is gone fails too, so that its entry is
deleted with the fix.
"""
from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("upas", "auth", "lib", "bench", "fuzz", "tests")

# Circles still being removed, each a sorted tuple of module names (a
# strongly connected component).  Remove an entry when its circle goes;
# never add one.
KNOWN: set[tuple[str, ...]] = set()


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def modules() -> dict[str, Path]:
    return {module_name(p): p for pkg in PACKAGES for p in sorted((REPO / pkg).rglob("*.py"))
            if ".venv" not in p.parts}


def _absolute(node: ast.ImportFrom, name: str, is_package: bool) -> str:
    """The module a `from` statement names, relative levels resolved."""
    if not node.level:
        return node.module or ""
    base = name.split(".")
    base = base[:len(base) - node.level + (1 if is_package else 0)]
    return ".".join(base + ([node.module] if node.module else []))


def _known(target: str) -> str | None:
    """The project module an import of `target` runs, the longest prefix
    of it that is one (`upas.ninep.Client` -> `upas.ninep`)."""
    mods = modules()
    while target and target not in mods:
        target = target.rpartition(".")[0]
    return target or None


@cache
def imports(name: str) -> frozenset[str]:
    """The project modules `name` imports anywhere in its text."""
    path = modules()[name]
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(filter(None, (_known(a.name) for a in node.names)))
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, name, is_package)
            for a in node.names:
                sub = f"{base}.{a.name}"
                found.add(sub if sub in modules() else _known(base) or "")
    found.discard("")
    found.discard(name)
    return frozenset(found)


def cycles() -> set[tuple[str, ...]]:
    """The graph's strongly connected components of more than one module
    (Tarjan's algorithm, iterative: the graph has hundreds of nodes)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: set[tuple[str, ...]] = set()
    for root in sorted(modules()):
        if root in index:
            continue
        work = [(root, iter(sorted(imports(root))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            nxt = next(edges, None)
            if nxt is not None:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(imports(nxt)))))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                scc = []
                while True:
                    m = stack.pop()
                    on_stack.discard(m)
                    scc.append(m)
                    if m == node:
                        break
                if len(scc) > 1:
                    out.add(tuple(sorted(scc)))
    return out


def test_scanner_sees_function_level_and_relative_imports():
    # upas/ns.py imports the 9P client inside functions; upas.ninep's
    # __init__ imports .client relatively
    assert "upas.ninep.client" in imports("upas.ns")
    assert "upas.ninep.client" in imports("upas.ninep")
    assert "upas.ninep.client" not in imports("upas.ninep.codec")


def test_no_new_import_cycles():
    new = cycles() - KNOWN
    assert not new, "import circles: " + "; ".join(" <-> ".join(c) for c in sorted(new))


def test_known_cycles_still_exist():
    gone = KNOWN - cycles()
    assert not gone, ("circles gone, delete them from KNOWN: "
                      + "; ".join(" <-> ".join(c) for c in sorted(gone)))


def test_factotum_client_needs_no_factotum_server():
    # lib/ is what the servers use; it must not pull in the factotum
    # server (its key ring, its protocols) to parse a reply's attributes
    reached = {m for m in modules() if m.startswith("lib.")}
    todo = list(reached)
    while todo:
        for m in imports(todo.pop()) - reached:
            reached.add(m)
            todo.append(m)
    assert not {m for m in reached if m.startswith("auth.factotum")}
