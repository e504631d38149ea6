"""reference/ and equations/ (and the symbolic half of pinnsiren) import without torch."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _modules(package: str) -> list[str]:
    """Every module of ``package`` found on disk, subpackages included."""
    base = ROOT / package
    out = []
    for path in sorted(base.rglob("*.py")):
        rel = path.relative_to(ROOT).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__main__":
            continue
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out.append(".".join(parts))
    return out


def test_every_reference_and_equations_module_imports_without_torch():
    mods = _modules("reference") + _modules("equations") + ["pinnsiren", "pinnsiren.symbolic"]
    assert "reference.fwi.admm" in mods and "equations.helmholtz" in mods
    code = (
        "import importlib, sys\n"
        f"for m in {mods!r}:\n"
        "    importlib.import_module(m)\n"
        "bad = sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.'))\n"
        "assert not bad, bad[:5]\n"
        "print(len(sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_the_check_fails_when_torch_is_imported():
    code = "import sys, pinnsiren\npinnsiren.Siren\nassert 'torch' in sys.modules\n"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_no_torch_in_source():
    files = list((ROOT / "reference").rglob("*.py")) + list((ROOT / "equations").rglob("*.py"))
    assert any(p.parent.name == "fwi" for p in files) and any(p.parent.name == "fdgen" for p in files)
    for path in files:
        text = path.read_text()
        assert "import torch" not in text and "from torch" not in text, path


def test_reference_reads_problems_duck_typed():
    """reference/ never imports pinnsiren: a Problem is read by its attributes."""
    for path in (ROOT / "reference").rglob("*.py"):
        assert not re.search(r"^\s*(import|from)\s+pinnsiren", path.read_text(), flags=re.M), path
