"""pinnsiren: solve PDEs declared in SymPy with SIRENs, and compare against grid solvers."""

from .diagnostics import init_statistics
from .networks import ARCHITECTURES, MLP, Siren, build_model, model_from_config

__version__ = "0.1.0"

__all__ = [
    "ARCHITECTURES",
    "MLP",
    "Siren",
    "build_model",
    "model_from_config",
    "init_statistics",
    "__version__",
]

# symbolic spec, compiler, derivative engine, problems (issue 3)
from .symbolic import Constraint, Field, coefficient, normal, normal_derivative  # noqa: E402
from .compiler import CompiledResidual, CompileError, compile_residual  # noqa: E402
from .jet import derivatives  # noqa: E402
from .coefficients import GridInterpolant  # noqa: E402
from .problem import Ball, Box, BoxBoundary, Cone, Disk, NearPoint, PointSet, Problem, TimeSlice  # noqa: E402
from .geometry import (  # noqa: E402
    Boundary, Difference, Intersection, Polygon, Shape, SpaceTime, Union, transfinite,
)
from .transforms import ExactDirichlet, Normalized  # noqa: E402
from .exact import impose_exactly  # noqa: E402

__all__ += [
    "Field",
    "coefficient",
    "Constraint",
    "compile_residual",
    "CompiledResidual",
    "CompileError",
    "derivatives",
    "GridInterpolant",
    "Problem",
    "Box",
    "BoxBoundary",
    "Ball",
    "Disk",
    "TimeSlice",
    "NearPoint",
    "PointSet",
    "Cone",
    "normal",
    "normal_derivative",
    "Shape",
    "Polygon",
    "Union",
    "Intersection",
    "Difference",
    "Boundary",
    "SpaceTime",
    "transfinite",
    "Normalized",
    "ExactDirichlet",
    "impose_exactly",
]
