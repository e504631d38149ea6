"""The PDE catalog, written in SymPy only (no torch).

Each function takes a field (made with :func:`pinnsiren.Field`) and the
equation's parameters, and returns SymPy residual expressions or
:class:`pinnsiren.symbolic.Constraint` objects without a region (place them
with ``constraint.on(region, n)``). Coefficients given as strings become
named coefficient functions of the field's coordinates, whose values are
supplied at call time.
"""

from . import eikonal, helmholtz, poisson, wave

__all__ = ["poisson", "eikonal", "helmholtz", "wave"]
