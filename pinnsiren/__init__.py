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
