"""Short rooms: no function over 60 lines and no module over 600 lines in pinnsiren/, reference/,
equations/, solvers/ and benchmarks/ (every module, found by a scan).

"""

import ast
import glob
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FOLDERS = ("pinnsiren", "reference", "solvers", "equations", "benchmarks")
FILES = sorted(os.path.relpath(p, ROOT).replace(os.sep, "/") for d in FOLDERS
               for p in glob.glob(os.path.join(ROOT, d, "**", "*.py"), recursive=True))
LIMIT = 60  # lines per function or method
MODULE_LIMIT = 600  # lines per module


def long_functions(source: str, limit: int = LIMIT) -> list[tuple[str, int]]:
    """``(name, lines)`` of every function or method longer than ``limit`` lines."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            n = node.end_lineno - node.lineno + 1
            if n > limit:
                out.append((node.name, n))
    return out


def module_lines(source: str) -> int:
    return len(source.splitlines())


def test_checker_finds_a_long_function():
    body = "\n".join(f"    x{i} = {i}" for i in range(LIMIT))
    assert long_functions(f"def f():\n{body}\n") == [("f", LIMIT + 1)]
    assert long_functions("def g():\n    return 1\n") == []
    assert long_functions(f"def f():\n{body}\n", LIMIT + 1) == []


def test_checker_counts_module_lines():
    assert module_lines("a = 1\n" * (MODULE_LIMIT + 1)) == MODULE_LIMIT + 1
    assert module_lines("a = 1\nb = 2") == 2


def test_the_scan_finds_every_folder():
    for d in FOLDERS:
        assert any(f.startswith(d + "/") for f in FILES), d
    assert {"pinnsiren/compiler.py", "pinnsiren/jet.py", "reference/fwi/admm.py", "equations/helmholtz.py"} <= set(FILES)


@pytest.mark.parametrize("path", FILES)
def test_no_long_function(path):
    with open(os.path.join(ROOT, path)) as fh:
        assert long_functions(fh.read()) == [], path


@pytest.mark.parametrize("path", FILES)
def test_no_long_module(path):
    with open(os.path.join(ROOT, path)) as fh:
        n = module_lines(fh.read())
    assert n <= MODULE_LIMIT, f"{path}: {n} lines (split it by job; at most {MODULE_LIMIT})"
