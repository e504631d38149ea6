"""No import circle between the project's modules (imports at module level; ``if TYPE_CHECKING:``
blocks and imports inside functions are not run at import time and are left out)."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("pinnsiren", "reference", "solvers", "equations")


def project_modules() -> dict[str, Path]:
    """Dotted name -> file, for every module of the project's packages."""
    out = {}
    for d in FOLDERS:
        for path in sorted((ROOT / d).rglob("*.py")):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            out[name.removesuffix(".__init__")] = path
    return out


def _top_level_imports(tree: ast.Module):
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        inner = ast.walk(node) if isinstance(node, (ast.If, ast.Try)) else [node]
        yield from (n for n in inner if isinstance(n, (ast.Import, ast.ImportFrom)))


def imports_of(name: str, source: str, is_package: bool, known) -> set[str]:
    """The project modules ``name`` imports when it is imported."""
    package = name if is_package else name.rpartition(".")[0]
    out = set()
    for node in _top_level_imports(ast.parse(source)):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
            continue
        base = package
        for _ in range(max(node.level - 1, 0)):
            base = base.rpartition(".")[0]
        target = (f"{base}.{node.module}" if node.module else base) if node.level else node.module
        out.add(target)
        out |= {f"{target}.{a.name}" for a in node.names}
    return {m for m in out if m in known and m != name}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = stack[stack.index(v):]
            del stack[stack.index(v):]
            if len(group) > 1:
                found.append(sorted(group))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_the_finder_sees_a_circle_and_skips_type_checking_imports():
    known = {"p.a", "p.b", "p.c"}
    a = imports_of("p.a", "from .b import x\n", False, known)
    b = imports_of("p.b", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import y\n", False, known)
    c = imports_of("p.c", "from . import a\nimport p.b\ndef f():\n    from .c import z\n", False, known)
    assert (a, b, c) == ({"p.b"}, set(), {"p.a", "p.b"})
    assert circles({"p.a": {"p.b"}, "p.b": set(), "p.c": {"p.a"}}) == []
    assert circles({"p.a": {"p.b"}, "p.b": {"p.c"}, "p.c": {"p.a"}, "p.d": {"p.a"}}) == [["p.a", "p.b", "p.c"]]


def test_no_import_circle():
    mods = project_modules()
    assert {"pinnsiren.train", "solvers.signals.inpaint", "reference.fdgen.composed"} <= set(mods)
    packages = {m for m, p in mods.items() if p.name == "__init__.py"}
    # a package's __init__ imports its children; an edge into a package is not a circle between modules
    graph = {m: imports_of(m, p.read_text(encoding="utf-8"), m in packages, mods) - packages
             for m, p in mods.items() if m not in packages}
    assert sum(map(len, graph.values())) > 100
    assert circles(graph) == []
