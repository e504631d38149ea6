"""The CLI is a registry the core does not know about, and the core never reaches up."""

import ast
import configparser
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pinnsiren.cli import Command, CommandRegistryError, build_parser, main, registered_commands

ROOT = Path(__file__).resolve().parents[1]
UPPER = re.compile(r"^(solvers|equations|reference)(\.|$)")


def upward_imports(source: str) -> list[str]:
    """Imports of solvers/equations/reference in ``source``: statements and module-like strings."""
    hits = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            hits += [a.name for a in node.names if UPPER.match(a.name)]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and UPPER.match(node.module):
            hits.append(node.module)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and UPPER.match(node.value) \
                and " " not in node.value:
            hits.append(node.value)
    return hits


def test_the_checker_sees_statements_and_strings():
    src = "import solvers.fwi\nfrom reference import grid\nimportlib.import_module('equations.wave')\nx = 'solve a PDE'\n"
    assert upward_imports(src) == ["solvers.fwi", "reference", "equations.wave"]


def test_core_never_imports_upward():
    files = sorted((ROOT / "pinnsiren").rglob("*.py"))
    assert len(files) > 10
    bad = {str(p.relative_to(ROOT)): upward_imports(p.read_text()) for p in files}
    assert not {k: v for k, v in bad.items() if v}


def test_every_registered_command_exists_and_has_its_hooks():
    cfg = configparser.ConfigParser(inline_comment_prefixes=("#",))
    cfg.read(ROOT / "setup.cfg")
    declared = [ln.split("=")[0].strip() for ln in cfg["options.entry_points"]["pinnsiren.commands"].splitlines() if ln.strip()]
    cmds = registered_commands()
    assert sorted(c.group + ("." + c.name if c.name else "") for c in cmds) == sorted(declared)
    assert {"demo", "fwi", "reference"} <= {c.group for c in cmds}
    for c in cmds:
        spec = importlib.util.find_spec(c.module)
        assert spec is not None, c
        tree = ast.parse(Path(spec.origin).read_text())
        defs = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
        assert {"add_arguments", "main"} <= defs or "add_subcommands" in defs, c


def test_a_registered_module_that_is_missing_is_an_error():
    cmds = [Command("solve", "nothing", "solvers.no_such_module")]
    with pytest.raises(CommandRegistryError, match="solvers.no_such_module"):
        build_parser(["--help"], commands=cmds)


def test_only_the_command_being_run_is_imported(capsys):
    with pytest.raises(SystemExit):
        build_parser(["reference", "wave", "--help"]).parse_args(["reference", "wave", "--help"])
    assert "--n" in capsys.readouterr().out


def test_help_is_light():
    code = ("import sys\nfrom pinnsiren.cli import main\n"
            "try:\n    main(['solve', '--help'])\nexcept SystemExit:\n    pass\n"
            "bad = sorted(m for m in sys.modules if m == 'torch' or m.startswith('solvers.'))\n"
            "assert not bad, bad[:5]\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "helmholtz" in out.stdout and "Neural Helmholtz" in out.stdout


def test_bare_command_prints_help_and_fails(capsys):
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().out
