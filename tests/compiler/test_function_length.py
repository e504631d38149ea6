"""No function over 80 lines in pinnsiren/, reference/, solvers/ and equations/ (every module, found by a scan)."""

import ast
import glob
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FOLDERS = ("pinnsiren", "reference", "solvers", "equations")
FILES = sorted(os.path.relpath(p, ROOT).replace(os.sep, "/") for d in FOLDERS
               for p in glob.glob(os.path.join(ROOT, d, "**", "*.py"), recursive=True))
LIMIT = 80


def long_functions(source: str, limit: int = LIMIT) -> list[tuple[str, int]]:
    """``(name, lines)`` of every function or method longer than ``limit`` lines."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            n = node.end_lineno - node.lineno + 1
            if n > limit:
                out.append((node.name, n))
    return out


def test_checker_finds_a_long_function():
    body = "\n".join(f"    x{i} = {i}" for i in range(LIMIT))
    assert long_functions(f"def f():\n{body}\n") == [("f", LIMIT + 1)]
    assert long_functions("def g():\n    return 1\n") == []


def test_the_scan_finds_every_folder():
    for d in FOLDERS:
        assert any(f.startswith(d + "/") for f in FILES), d
    assert {"pinnsiren/compiler.py", "reference/fwi/admm.py", "solvers/fwi.py", "equations/helmholtz.py"} <= set(FILES)


@pytest.mark.parametrize("path", FILES)
def test_no_function_over_80_lines(path):
    with open(os.path.join(ROOT, path)) as fh:
        assert long_functions(fh.read()) == [], path
