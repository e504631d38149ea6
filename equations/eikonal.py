"""Signed distance functions from oriented point clouds (paper Eq. 6).

Loss terms (all ``l1``, i.e. mean absolute value), with the official code's
weights:

* ``eikonal``: ``|∇u| - 1`` everywhere (surface and off-surface points), 5e1;
* ``sdf``: ``u`` on surface points, 3e3;
* ``normal``: ``1 - <∇u, n>`` on surface points, ``n`` the normals given as
  coefficient names (point-set data), 1e2;
* ``off_surface``: ``exp(-alpha |u|)`` off the surface, alpha = 100, 1e2.

Example
-------
>>> x, y, z = sympy.symbols("x y z")
>>> u = Field("u", (x, y, z))
>>> terms = eikonal.sdf_constraints(u, normal=("nx", "ny", "nz"))
>>> terms["sdf"].on(PointSet(pts, {"nx": n[:, 0], ...}), n=4096)
"""

from __future__ import annotations

from typing import Sequence

import sympy

from pinnsiren.symbolic import Constraint, coefficient, gradient

from ._util import coords_of

__all__ = ["OFFICIAL_WEIGHTS", "ALPHA", "sdf_constraints", "eikonal_residual"]

#: weights of the official SIREN SDF loss
OFFICIAL_WEIGHTS = {"sdf": 3e3, "off_surface": 1e2, "normal": 1e2, "eikonal": 5e1}
#: decay of the off-surface penalty exp(-alpha |u|)
ALPHA = 100


def eikonal_residual(u: sympy.Expr) -> sympy.Expr:
    """``|∇u| - 1``."""
    g = gradient(u, coords_of(u))
    return sympy.sqrt(sympy.Add(*[gi**2 for gi in g])) - 1


def sdf_constraints(
    u: sympy.Expr,
    normal: Sequence[str] = ("nx", "ny", "nz"),
    alpha: float = ALPHA,
    weights: dict[str, float] | None = None,
) -> dict[str, Constraint]:
    """The four SDF loss terms as region-less constraints (keys as in :data:`OFFICIAL_WEIGHTS`).

    Parameters
    ----------
    u : Field
        The (real) distance field.
    normal : sequence of str
        Coefficient names of the normal components (one per coordinate).
    alpha : float
        Decay of the off-surface penalty.
    weights : dict, optional
        Overrides of :data:`OFFICIAL_WEIGHTS`.
    """
    c = coords_of(u)
    if len(normal) != len(c):
        raise ValueError(f"{len(normal)} normal components given for {len(c)} coordinates")
    w = dict(OFFICIAL_WEIGHTS, **(weights or {}))
    n = [coefficient(name, c) for name in normal]
    grad = gradient(u, c)
    return {
        "sdf": Constraint(u, weight=w["sdf"], norm="l1", name="sdf"),
        "normal": Constraint(1 - sympy.Add(*[gi * ni for gi, ni in zip(grad, n)]), weight=w["normal"], norm="l1", name="normal"),
        "off_surface": Constraint(sympy.exp(-alpha * sympy.Abs(u)), weight=w["off_surface"], norm="l1", name="off_surface"),
        "eikonal": Constraint(eikonal_residual(u), weight=w["eikonal"], norm="l1", name="eikonal"),
    }
