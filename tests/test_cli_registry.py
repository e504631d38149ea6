"""The CLI is a registry the core does not know about, and the core never reaches up."""

import argparse
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
            "bad = sorted(m for m in sys.modules if m == 'torch' or m.startswith('solvers.')\n"
            "             and not hasattr(sys.modules[m], '__path__'))  # subpackages: docstrings only\n"
            "assert not bad, bad[:5]\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "helmholtz" in out.stdout and "Neural Helmholtz" in out.stdout


def test_bare_command_prints_help_and_fails(capsys):
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().out


def _shadow_tree(tmp_path: Path) -> Path:
    """A working directory with a user's own ``solvers/`` and ``equations/`` packages."""
    for pkg, body in (("solvers", "raise SystemExit('the fake solvers package was imported')"),
                      ("equations", "raise SystemExit('the fake equations package was imported')")):
        (tmp_path / pkg).mkdir()
        (tmp_path / pkg / "__init__.py").write_text(f'"""A user\'s own {pkg}."""\n{body}\n')
    (tmp_path / "solvers" / "poisson.py").write_text('"""FAKE poisson."""\n')
    return tmp_path


def test_a_folder_named_solvers_in_the_working_directory_does_not_shadow_ours(tmp_path):
    cwd = _shadow_tree(tmp_path)
    env = {**__import__("os").environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-m", "pinnsiren", "solve", "poisson", "--help"], cwd=cwd, env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "Poisson image reconstruction" in r.stdout and "--help-all" in r.stdout  # our module's parser
    assert "FAKE" not in r.stdout and "fake" not in r.stderr
    for pkg in ("solvers", "equations"):  # the note names both paths
        assert f"{cwd / pkg} shadows pinnsiren's own {pkg!r} package; using {ROOT / pkg}" in r.stderr
    r = subprocess.run([sys.executable, "-m", "pinnsiren", "--help"], cwd=cwd, env=env, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0 and "neural Helmholtz" in r.stdout, r.stderr  # the demo's help, from our module


def test_an_already_imported_foreign_package_is_a_clear_error(tmp_path, monkeypatch):
    import types

    from pinnsiren.cli import ensure_own_package

    fake = types.ModuleType("solvers")
    fake.__path__ = [str(tmp_path / "solvers")]
    monkeypatch.setitem(sys.modules, "solvers", fake)
    with pytest.raises(CommandRegistryError) as err:
        ensure_own_package("solvers.poisson")
    msg = str(err.value)
    assert str(tmp_path / "solvers") in msg and str(ROOT / "solvers") in msg and "rename" in msg


def _command_words() -> list[list[str]]:
    """The words of every registered command that takes flags, e.g. ``["solve", "poisson"]``."""
    out = []
    for c in registered_commands():
        if c.name:
            out.append([c.group, c.name])
            continue
        parser = build_parser([c.group])
        sub = next(a for a in parser._actions if isinstance(a, __import__("argparse")._SubParsersAction))
        inner = [a for a in sub.choices[c.group]._actions if isinstance(a, __import__("argparse")._SubParsersAction)]
        out += [[c.group, n] for n in inner[0].choices] if inner else [[c.group]]
    return out


@pytest.mark.parametrize("words", _command_words(), ids=" ".join)
def test_help_fits_on_one_screen_and_help_all_lists_every_flag(words, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    with pytest.raises(SystemExit):
        main([*words, "--help"])
    short = capsys.readouterr().out
    assert len(short.splitlines()) <= 50, (words, len(short.splitlines()))
    assert "--help-all" in short and "torchrun --nproc-per-node" not in short
    with pytest.raises(SystemExit):
        main([*words, "--help-all"])
    full = capsys.readouterr().out
    parser = build_parser(words)
    for w in words:
        parser = next(a for a in parser._actions if hasattr(a, "choices") and isinstance(a.choices, dict)
                      and w in a.choices).choices[w]
    flags = {s for a in parser._actions for s in a.option_strings}
    assert flags and not [f for f in flags if f not in full], words
    assert ":class:" not in full and "``" not in full


def test_the_torchrun_note_is_in_the_top_level_help_once(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    assert capsys.readouterr().out.count("torchrun --nproc-per-node") == 1


def test_every_command_takes_threads_and_the_driver_sets_them(monkeypatch):
    """``--threads N`` is on every command (the driver adds it where a command has none) and reaches torch
    before the command's work starts."""
    import torch

    loaded = 0
    for c in registered_commands():
        words = [c.group] + ([c.name] if c.name else [])
        sub = build_parser(words)
        for w in words:
            sub = next(a for a in sub._actions if isinstance(a, argparse._SubParsersAction)).choices[w]
        if getattr(sub, "_pinnsiren_loaded", False):
            loaded += 1
            assert "--threads" in sub._option_string_actions, words
    assert loaded >= 8
    seen = {}

    def fake_main(args):
        seen["n"] = torch.get_num_threads()
        return 0

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    monkeypatch.setattr("solvers.pde.poisson.main", fake_main)
    try:
        assert main(["solve", "poisson", "--threads", "2"]) == 0
    finally:
        torch.set_num_threads(before)
    assert seen["n"] == 2
