"""pinnsiren: solve PDEs declared in SymPy with SIRENs, and compare against grid solvers.

The package imports lazily (PEP 562): ``import pinnsiren`` and the symbolic
half (``pinnsiren.symbolic``: Field, Constraint, the SymPy helpers) load
without torch, so a spec can be written, printed and discretised on a grid
on a machine that has no torch. A name such as ``pinnsiren.Siren`` imports
its module, and torch with it, the first time it is used.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

__version__ = "0.1.0"

#: public name -> submodule that defines it
_EXPORTS: dict[str, str] = {
    "ARCHITECTURES": "networks",
    "MLP": "networks",
    "Siren": "networks",
    "build_model": "networks",
    "model_from_config": "networks",
    "init_statistics": "diagnostics",
    # symbolic spec (no torch)
    "Field": "symbolic",
    "coefficient": "symbolic",
    "Constraint": "symbolic",
    "normal": "symbolic",
    "normal_derivative": "symbolic",
    # compiler, derivative engine, problems
    "compile_residual": "compiler",
    "CompiledResidual": "compiler",
    "CompileError": "compiler_handlers",
    "derivatives": "jet",
    "Laplacian": "jet_keys",
    "GridInterpolant": "coefficients",
    "Problem": "problem",
    "NearPoint": "regions",
    "PointSet": "regions",
    "Cone": "regions",
    # geometry: composed regions with outward normals, space-time, lifts
    "Shape": "geometry",
    "Box": "geometry",
    "Ball": "geometry",
    "Polygon": "geometry",
    "Union": "geometry",
    "Intersection": "geometry",
    "Difference": "geometry",
    "Boundary": "geometry",
    "SpaceTime": "geometry",
    "transfinite": "adf",
    # normalised coordinates and exact conditions
    "Normalized": "transforms",
    "ExactDirichlet": "transforms",
    "impose_exactly": "exact",
    # one network per unknown field (a coefficient's own network) and its regularisation
    "FieldNetworks": "fieldnets",
    "smoothness": "fieldnets",
    # chunked evaluation of a network
    "evaluate": "evaluation",
    # training
    "TrainConfig": "train",
    "Adam": "phases",
    "LBFGS": "phases",
    "RAD": "phases",
    "GradNorm": "phases",
    "Causal": "phases",
    "Checkpoint": "phases",
    "recommended_model": "train",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        # ``pinnsiren.train`` etc. after a bare ``import pinnsiren``
        if importlib.util.find_spec(f"{__name__}.{name}") is None:
            raise AttributeError(f"module 'pinnsiren' has no attribute {name!r}")
        return importlib.import_module(f".{name}", __name__)
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
