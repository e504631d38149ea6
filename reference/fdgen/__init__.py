"""Finite differences generated from a SymPy spec: the grid check of any PDE you declare.

The same equations a user trains a network on (a pinnsiren ``Problem``, read
duck-typed, or plain SymPy objects) are discretised on a tensor grid with
centred differences (2nd order by default, 4th optional; one-sided at the
boundary), boundary conditions as the constraints state them (Dirichlet,
Neumann, Robin: any residual on a box face; periodic axes), and solved:

* steady linear: one sparse solve (SuperLU, or pyamg);
* steady nonlinear: Newton with the exact sparse Jacobian + line search;
* time-dependent (one coordinate declared time): method of lines, BDF/Radau
  with the exact sparse Jacobian, or Crank-Nicolson; ``u_tt`` as a first-order system.

numpy / scipy / sympy (/ pyamg) only: no torch, no pinnsiren import.

Example
-------
>>> sol = fdgen.solve(problem, shape=65)                  # a pinnsiren Problem
>>> sol["u"].values, sol["u"].grid.coords()
>>> sol = fdgen.solve_pde(eq, [u], (x, y), [(-1, 1), (-1, 1)],
...                       conditions=[(u - g, (x, "lo")), ...], shape=65)
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from .discrete import GridResidual, Layout
from .exact import burgers_cole_hopf
from .solve import INTEGRATORS, METHODS, FDSolution, solve_spec
from .spec import Condition, Spec, SpecError, from_problem, from_sympy
from .stencils import MAX_DERIVATIVE, ORDERS, derivative_matrix, fd_weights, flux_matrix
from .system import System

__all__ = [
    "solve", "solve_pde", "FDSolution", "SpecError", "Spec", "Condition", "from_problem", "from_sympy",
    "System", "Layout", "GridResidual", "fd_weights", "derivative_matrix", "flux_matrix", "ORDERS",
    "MAX_DERIVATIVE", "METHODS", "INTEGRATORS", "burgers_cole_hopf",
]

_SOLVE_DOC = """
    shape : int or sequence of int
        Nodes per space axis, both ends included.
    order : {2, 4}
        Accuracy order of the stencils.
    method : {"auto", "direct", "amg"}
        Linear solver (auto: SuperLU, pyamg above 250 000 real unknowns).
    conservative : bool
        At order 2, discretise ``d/dx(a du/dx)`` (recognised in its expanded
        form ``a u_xx + a_x u_x``) in flux form with ``a`` at half-points.
    guess : array or callable ``f(*space_coords)``, optional
        Newton's initial guess (default 0).
    tol, max_iter : Newton stopping rule (step size relative to the solution) and cap.
    times : int or array
        Output times of a time-dependent problem (count, evenly spaced, or the times).
    integrator : {"BDF", "Radau", "CN"}
        ``solve_ivp`` stiff methods with the exact sparse Jacobian, or Crank-Nicolson.
    rtol, atol : solve_ivp tolerances.
    steps : int, optional
        Crank-Nicolson steps over the whole interval (default 10 per output interval).

    Returns
    -------
    FDSolution: ``sol[name]`` is a ``GridField`` per field (all coordinates, time included),
    ``sol.stats`` CPU seconds for assembly and solve, iterations, residual norm.

    Raises
    ------
    SpecError
        Naming what cannot be discretised: a region without a grid view (or a composed
        region that is not 2-D: see docs/reference.md, "Composed regions"), a derivative
        order the stencil set lacks, a missing boundary condition or value, a
        non-holomorphic function of a complex field, an equation with no time derivative.
"""


def solve(
    problem: Any,
    shape: Any = 65,
    *,
    time: Any = None,
    periodic: Sequence[Any] = (),
    values: Mapping[str, Any] | None = None,
    bounds: Sequence[Sequence[float]] | None = None,
    skip: Sequence[str] = (),
    **options: Any,
) -> FDSolution:
    """Solve a pinnsiren ``Problem`` (or a :class:`Spec`) on a grid.

    Parameters
    ----------
    problem : Problem or Spec
        Read duck-typed: ``fields``, ``coords``, ``constraints`` (on a ``Box``,
        ``Box.boundary(faces)`` and ``SpaceTime(Box(...), (t0, t1)).initial()``,
        or on composed regions), ``coefficients``, ``parameters``.
    time : Symbol or int, optional
        The time coordinate (default: the time axis of a ``SpaceTime.initial()`` constraint).
    periodic : periodic axes (symbols or indices).
    values : numbers or numpy callables ``f(*coords)`` for coefficient functions and parameters;
        a field named here is held known (e.g. an inverse problem's coefficient, a function of its own
        coordinates ``f(x, y)``), the others are solved for.
    bounds : fixed box, overriding the Problem's interior region.
    skip : names of constraints to leave out (e.g. an inverse problem's observations).
    """
    spec = problem if isinstance(problem, Spec) else from_problem(problem, time, periodic, values, bounds, skip)
    return solve_spec(spec, shape, **options)


def solve_pde(
    equations: Any,
    fields: Sequence[Any],
    coords: Sequence[Any],
    bounds: Sequence[Sequence[float]],
    conditions: Sequence[tuple[Any, Any]] = (),
    initial: Any = (),
    *,
    shape: Any = 65,
    time: Any = None,
    periodic: Sequence[Any] = (),
    values: Mapping[Any, Any] | None = None,
    complex_fields: Sequence[Any] = (),
    **options: Any,
) -> FDSolution:
    """Solve PDEs given as plain SymPy objects (no Problem).

    Parameters
    ----------
    equations : Eq / expression or a sequence, one per field (residuals inside the box).
    fields : applied functions of exactly ``coords``, e.g. ``sympy.Function("u")(x, t)``.
    coords : coordinate symbols, in axis order.
    bounds : ``[(lo, hi), ...]`` per coordinate.
    conditions : ``[(residual, (axis, side)), ...]``, axis a symbol or index, side 0/"lo" or 1/"hi";
        on the time axis' lo face: an initial condition.
    initial : initial-condition residual(s), alternatively.
    complex_fields : fields with complex values.
    """
    spec = from_sympy(equations, fields, coords, bounds, conditions, initial, time, periodic, values, complex_fields)
    return solve_spec(spec, shape, **options)


solve.__doc__ = (solve.__doc__ or "").rstrip() + _SOLVE_DOC
solve_pde.__doc__ = (solve_pde.__doc__ or "").rstrip() + _SOLVE_DOC
