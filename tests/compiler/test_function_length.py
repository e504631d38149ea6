"""No function over 80 lines in the engine's modules (compiler, jet, networks, coefficients, symbolic)."""

import ast
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FILES = ["pinnsiren/compiler.py", "pinnsiren/jet.py", "pinnsiren/networks.py", "pinnsiren/coefficients.py",
         "pinnsiren/symbolic.py"]
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


@pytest.mark.parametrize("path", FILES)
def test_no_function_over_80_lines(path):
    with open(os.path.join(ROOT, path)) as fh:
        assert long_functions(fh.read()) == [], path
