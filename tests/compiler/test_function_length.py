"""Short rooms: no function over 60 lines and no module over 600 lines in pinnsiren/, reference/,
equations/, solvers/ and benchmarks/ (every module, found by a scan).

A file on the allow-list below is held to the older rule only (no function over 80 lines, no
module limit) while another engineer owns it; take it off the list when its split lands.
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
OLD_LIMIT = 80  # the rule before, for the allow-list

#: files owned by other engineers right now (being rewritten or reorganised); each still gets
#: the old 80-line function check. Do not add a file here to make a new offender pass.
ALLOWED_PREFIXES = (
    "pinnsiren/train.py",     # the trainer (rewrite in progress)
    "pinnsiren/settings.py",  # the trainer's settings (same rewrite)
    "pinnsiren/lbfgs.py",     # the trainer's L-BFGS phase (same rewrite)
)


def allowed(path: str) -> bool:
    return path.startswith(ALLOWED_PREFIXES)


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
    assert long_functions(f"def f():\n{body}\n", OLD_LIMIT) == []


def test_checker_counts_module_lines():
    assert module_lines("a = 1\n" * (MODULE_LIMIT + 1)) == MODULE_LIMIT + 1
    assert module_lines("a = 1\nb = 2") == 2


def test_the_scan_finds_every_folder():
    for d in FOLDERS:
        assert any(f.startswith(d + "/") for f in FILES), d
    assert {"pinnsiren/compiler.py", "pinnsiren/jet.py", "reference/fwi/admm.py", "equations/helmholtz.py"} <= set(FILES)


def test_the_allow_list_holds_only_the_owned_files():
    """The allow-list names the trainer files and whole folders owned elsewhere, nothing in
    reference/ or equations/ and no other pinnsiren module."""
    assert not any(allowed(f) for f in FILES if f.startswith(("reference/", "equations/", "solvers/", "benchmarks/")))
    assert {f for f in FILES if f.startswith("pinnsiren/") and allowed(f)} <= {
        "pinnsiren/train.py", "pinnsiren/settings.py", "pinnsiren/lbfgs.py"}
    assert not allowed("pinnsiren/jet.py") and not allowed("pinnsiren/trainer_extra.py")


@pytest.mark.parametrize("path", FILES)
def test_no_long_function(path):
    with open(os.path.join(ROOT, path)) as fh:
        assert long_functions(fh.read(), OLD_LIMIT if allowed(path) else LIMIT) == [], path


@pytest.mark.parametrize("path", [f for f in FILES if not allowed(f)])
def test_no_long_module(path):
    with open(os.path.join(ROOT, path)) as fh:
        n = module_lines(fh.read())
    assert n <= MODULE_LIMIT, f"{path}: {n} lines (split it by job; at most {MODULE_LIMIT})"
