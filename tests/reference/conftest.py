import sys
from pathlib import Path

# make the repository root importable when pytest is run without installing the package
_root = str(Path(__file__).resolve().parents[2])
if _root not in sys.path:
    sys.path.insert(0, _root)
