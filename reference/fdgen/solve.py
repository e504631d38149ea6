"""Solve the grid system: one sparse solve, Newton with line search, or the method of lines.

* Steady and linear: one sparse solve, direct (SuperLU) or pyamg (smoothed
  aggregation + CG for a symmetric definite real matrix, GMRES otherwise).
* Steady and nonlinear: Newton with the exact sparse Jacobian and a
  backtracking (Armijo) line search on the residual norm.
* Time-dependent: method of lines; ``scipy.integrate.solve_ivp`` with BDF or
  Radau given the exact sparse Jacobian, or Crank-Nicolson with Newton at each
  step. ``u_tt`` is marched as ``(u, w = u_t)``.
"""

from __future__ import annotations

import dataclasses
import time as _time
from typing import Any

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import sympy

from threadpoolctl import threadpool_limits

from ..ordering import nested_dissection
from ..grid import Grid, GridField
from .discrete import symbolise
from .spec import Spec, SpecError
from .system import System
from .validate import check_solve

__all__ = ["FDSolution", "solve_spec", "METHODS", "INTEGRATORS"]

#: linear solvers
METHODS = ("auto", "direct", "amg")
#: time integrators
INTEGRATORS = ("BDF", "Radau", "CN")


@dataclasses.dataclass
class FDSolution:
    """Grid solution of a spec.

    Attributes
    ----------
    fields : dict name -> GridField
        One per field, on the node grid over all coordinates (the time axis,
        if any, sampled at the output times), in coordinate order.
    stats : dict
        ``assemble_s``, ``solve_s`` (CPU seconds), ``unknowns``, ``linear``, Newton iterations
        or integrator counts, the residual norm reached.
    system : System
        The assembled rows (stencils, boundary rows), for inspection.
    """

    fields: dict
    stats: dict
    system: Any

    def __getitem__(self, name: str) -> GridField:
        return self.fields[name]


def _linear_solve(A: sp.spmatrix, b: np.ndarray, method: str, tol: float,
                  grid_shape: tuple[int, int] | None = None) -> tuple[np.ndarray, str]:
    if method not in METHODS:
        raise ValueError(f"Invalid method {method!r}. Must be one of {list(METHODS)}")
    real = not np.iscomplexobj(A) and not np.iscomplexobj(b)
    if method == "auto":
        method = "amg" if real and A.shape[0] > 250_000 else "direct"
    if method == "direct":
        if grid_shape is not None and grid_shape[0] * grid_shape[1] == A.shape[0] and _compact(A, grid_shape):
            # one field on a 2-D grid: nested dissection + SuperLU without column reordering, as
            # reference.factor.SparseLU does for the hand-written solvers
            perm = nested_dissection(*grid_shape)
            Ap = A.tocsr()[perm][:, perm].tocsc()
            try:
                with threadpool_limits(1):
                    lu = spla.splu(Ap, permc_spec="NATURAL", diag_pivot_thresh=0.0, options={"SymmetricMode": True})
                    x = np.empty(len(b), dtype=np.result_type(A.dtype, b.dtype))
                    x[perm] = lu.solve(np.asarray(b[perm], dtype=x.dtype))
                return x, "direct-nd"
            except RuntimeError:  # a zero pivot without pivoting: fall back to COLAMD with pivoting
                pass
        with threadpool_limits(1):
            x = spla.splu(A.tocsc()).solve(np.asarray(b, dtype=np.result_type(A.dtype, b.dtype)))
        return x, "direct"
    import pyamg

    sym = abs(A - A.T).max() <= 1e-12 * abs(A).max()
    s = -1.0 if A.diagonal().real.mean() < 0 else 1.0  # make a definite matrix positive for CG
    ml = pyamg.smoothed_aggregation_solver((s * A).tocsr())
    x = ml.solve(s * b, tol=tol, accel="cg" if sym else "gmres", maxiter=500)
    return x, "amg"


def _compact(A: sp.spmatrix, grid_shape: tuple[int, int]) -> bool:
    """True if every coupling is to a node of the 3 x 3 block around it: then one grid line
    separates, as the nested-dissection ordering assumes (4th-order stencils reach two lines)."""
    C = sp.coo_matrix(A)
    ny = grid_shape[1]
    return bool(np.all(np.abs(C.row // ny - C.col // ny) <= 1) and np.all(np.abs(C.row % ny - C.col % ny) <= 1))


def constant_null_groups(A: sp.spmatrix, slots: np.ndarray) -> list[int]:
    """The slots (fields) whose constant is in the null space of ``A``: ``A @ 1_slot ~ 0``.

    A pure-Neumann (or periodic) problem fixes a field only up to an additive constant; its matrix is
    then singular. ``slots[i]``: the slot of unknown ``i``."""
    scale = float(abs(A).sum(1).max()) if A.nnz else 0.0
    out = []
    for k in np.unique(slots):
        v = (slots == k).astype(float)
        if scale > 0 and float(np.abs(A @ v).max()) <= 1e-9 * scale:
            out.append(int(k))
    return out


def _bordered_solve(A: sp.spmatrix, b: np.ndarray, slots: np.ndarray, null: list[int]) -> np.ndarray:
    """Solve ``A x = b`` with ``mean(x) = 0`` on each slot in ``null`` (a bordered, nonsingular system);
    the least-squares part of an incompatible right-hand side goes into the multipliers."""
    V = sp.csc_matrix(np.stack([(slots == k).astype(float) / max(int((slots == k).sum()), 1) for k in null], 1))
    K = sp.bmat([[A, V], [V.T, None]]).tocsc()
    rhs = np.concatenate([b, np.zeros(len(null), dtype=b.dtype)])
    with threadpool_limits(1):
        x = spla.splu(K).solve(np.asarray(rhs, dtype=np.result_type(K.dtype, rhs.dtype)))
    return x[: A.shape[0]]


def _newton(F, J, y0: np.ndarray, method: str, tol: float, max_iter: int, linear: bool,
            grid_shape: tuple[int, int] | None = None, slots: np.ndarray | None = None) -> tuple[np.ndarray, dict]:
    y = y0.copy()
    r = F(y)
    norm0 = norm = float(np.linalg.norm(r))
    its = 0
    used = "direct"
    null: list[int] | None = None
    for its in range(1, max_iter + 1):
        if norm == 0.0:
            its -= 1
            break
        Jy = J(y)
        if null is None:
            null = constant_null_groups(Jy, slots) if slots is not None else []
        if null:
            dy, used = _bordered_solve(Jy, -r, slots, null), "direct-bordered"
        else:
            dy, used = _linear_solve(Jy, -r, method, tol=min(1e-12, tol), grid_shape=grid_shape)
        if linear:
            y = y + dy
            r = F(y)
            norm = float(np.linalg.norm(r))
            break
        step = 1.0
        while True:  # backtracking (Armijo) line search on the residual norm
            yn = y + step * dy
            rn = F(yn)
            nn = float(np.linalg.norm(rn))
            if np.isfinite(nn) and nn <= (1 - 1e-4 * step) * norm:
                break
            step *= 0.5
            if step < 1e-10:
                break
        if step < 1e-10:
            if norm <= 1e-9 * norm0:  # no decrease left at round-off level: converged
                break
            raise RuntimeError(
                f"Newton line search failed at iteration {its}: residual {norm:.3e}; "
                "give a better initial guess (guess=...) or a finer grid"
            )
        y, r, norm = yn, rn, nn
        if np.max(np.abs(step * dy)) <= tol * (1 + np.max(np.abs(y))):
            break
    else:
        raise RuntimeError(f"Newton did not converge in {max_iter} iterations (residual {norm:.3e})")
    return y, {"newton_iterations": its, "residual_initial": norm0, "residual": norm, "linear_solver": used,
               "null_slots": null or []}


def _initial_state(system: System) -> np.ndarray:
    """Initial grid values of every slot from the initial conditions (each linear in one slot's value)."""
    spec, lay = system.spec, system.layout
    t0 = spec.bounds[spec.time][0]
    U0 = np.full(system.n_slots * system.N, np.nan, dtype=system.dtype)
    for name, expr in spec.initial:
        e, keys, funcs = symbolise(expr, spec, f"constraint {name!r}")
        e = e.xreplace({spec.coords[spec.time]: sympy.Float(t0)})
        present = [(k, s) for k, s in keys.items() if s in e.free_symbols]
        if len(present) != 1 or any(present[0][0][2]):
            raise SpecError(
                f"constraint {name!r}: an initial condition must give one field (or its u_t) pointwise, "
                f"found {[str(s) for _, s in present] or 'no field'}"
            )
        (i, to, _), s = present[0]
        slot = system.slot_of(i, to, f"constraint {name!r}")
        c = sympy.diff(e, s)
        if c == 0 or s in c.free_symbols:
            raise SpecError(f"constraint {name!r}: the initial condition must be linear in {s}")
        val = -e.xreplace({s: 0}) / c
        f = sympy.lambdify([spec.coords[k] for k in spec.space_axes], val, modules=[funcs, "numpy"])
        U0[slot * system.N:(slot + 1) * system.N] = np.broadcast_to(f(*lay.X), (system.N,))
    missing = [system.slot_names[s] for s in range(system.n_slots) if np.isnan(U0[s * system.N])]
    if missing:
        raise SpecError(f"no initial condition for {missing}; add a constraint on SpaceTime(...).initial()")
    return U0


def solve_spec(
    spec: Spec,
    shape: Any,
    order: int = 2,
    method: str = "auto",
    conservative: bool = True,
    guess: Any = None,
    tol: float = 1e-10,
    max_iter: int = 50,
    times: Any = 11,
    integrator: str = "BDF",
    rtol: float = 1e-6,
    atol: float = 1e-9,
    steps: int | None = None,
) -> FDSolution:
    """Discretise and solve a spec; see :func:`reference.fdgen.solve` for the parameters."""
    if getattr(spec, "region", None) is not None:  # a composed region (reference/fdgen/composed.py)
        from .composed import solve_cut

        return solve_cut(spec, shape, order, method, conservative, guess, tol, max_iter, times, integrator, rtol,
                         atol, steps)
    if integrator not in INTEGRATORS:
        raise ValueError(f"Invalid integrator {integrator!r}. Must be one of {list(INTEGRATORS)}")
    shape = check_solve(spec, shape, order, method)  # bad shape, non-finite data: SpecError before any work
    c0 = _time.process_time()
    system = System(spec, shape, order, conservative)
    stats: dict[str, Any] = {"unknowns": system.n_slots * system.N, "order": order, "linear": system.linear}
    if system.face_equations:
        stats["face_equations"] = "; ".join(system.face_equations)
    if spec.time is None:
        U, more = _steady(system, method, guess, tol, max_iter, stats, c0)
        stats.update(more)
        values = _unflatten(system, U)
        grid = _grid(system)
        fields = {system.slot_names[i]: GridField(grid, values[i], _params(system, stats))
                  for i in range(len(spec.fields))}
    else:
        tt, Us = _march(system, times, integrator, rtol, atol, steps, method, tol, max_iter, stats, c0)
        fields = {}
        grid = _grid(system, tt)
        per_time = [_unflatten(system, U) for U in Us]
        for i in range(len(spec.fields)):
            v = np.moveaxis(np.stack([vals[i] for vals in per_time], 0), 0, spec.time)
            fields[system.slot_names[i]] = GridField(grid, v, _params(system, stats))
    return FDSolution(fields, stats, system)


def _steady(system: System, method, guess, tol, max_iter, stats, c0):
    n = system.n_slots * system.N
    U0 = np.zeros(n, dtype=system.dtype)
    if guess is not None:
        U0 = _guess(system, guess).astype(system.dtype)
    if system.linear_boundary:
        el = system.eliminate()
        q = el.q()
        F = lambda y: system.pde_residual(el.T @ y + el.Eb @ q)  # noqa: E731
        J = lambda y: (system.pde_jacobian(el.T @ y + el.Eb @ q) @ el.T).tocsr()  # noqa: E731
        y0 = U0[el.I]
        J(y0)  # assemble (the Jacobian of linear rows is cached)
        stats["assemble_s"] = _time.process_time() - c0
        c1 = _time.process_time()
        lay = system.layout
        inner_shape = tuple(n if p else n - 2 for n, p in zip(lay.shape, lay.periodic))
        gs = inner_shape if system.n_slots == 1 and len(inner_shape) == 2 and not any(lay.periodic) else None
        y, more = _newton(F, J, y0, method, tol, max_iter, system.linear, gs, slots=np.asarray(el.I) // system.N)
        U = el.T @ y + el.Eb @ q
    else:
        F = lambda U: np.concatenate([system.pde_residual(U), system.bc_residual(U)])  # noqa: E731
        J = lambda U: sp.vstack([system.pde_jacobian(U), system.bc_jacobian(U)]).tocsr()  # noqa: E731
        stats["assemble_s"] = _time.process_time() - c0
        c1 = _time.process_time()
        U, more = _newton(F, J, U0, method, tol, max_iter, system.linear, slots=np.arange(n) // system.N)
    more["solve_s"] = _time.process_time() - c1
    _zero_mean(system, U, more)
    return U, more


def _zero_mean(system: System, U: np.ndarray, more: dict) -> None:
    """A field fixed only up to a constant (pure Neumann / periodic, or a pressure) gets the level its gauge
    declares (``Gauge``: its value at one point, interpolated on the grid), else zero mean over its grid
    nodes; the stats say which (``null_space``, ``gauges``)."""
    spec = system.spec
    gauges = {g.field: g for g in getattr(spec, "gauges", [])}
    names, used = [], []
    for k in more.pop("null_slots", []):
        block = U[k * system.N:(k + 1) * system.N]
        ok = np.isfinite(block)
        name = system.slot_names[k]
        if name in gauges and k < len(spec.fields):
            g = gauges.pop(name)
            block -= _at_point(system, block, g.point) - g.value
            used.append(f"{name} = {g.value:g} at {g.point} ({g.name!r})")
            continue
        block[ok] -= block[ok].mean()
        names.append(name if k < len(spec.fields) else f"slot {k}")
    if names:
        more["null_space"] = (f"{', '.join(names)}: determined only up to an additive constant (no condition "
                              "fixes its level); the constant is chosen so its mean over the grid nodes is 0")
    if used:
        more["gauges"] = "the level of " + "; ".join(used)
    if gauges:
        more["gauges_unused"] = (f"{', '.join(g.name for g in gauges.values())}: the field's level is fixed by its "
                                 "other conditions on the grid; the one-point gauge was not imposed")


def _at_point(system: System, block: np.ndarray, point: tuple) -> Any:
    """The grid values ``block`` (one slot) at ``point`` (space coordinates), multilinear between nodes."""
    from scipy.interpolate import RegularGridInterpolator

    lay = system.layout
    if len(point) != len(lay.lines):
        raise SpecError(f"a gauge point has {len(point)} coordinates; the grid has {len(lay.lines)} space axes")
    v = block.reshape(lay.shape)
    lines = [ln if not per else np.append(ln, ln[-1] + h) for ln, per, h in zip(lay.lines, lay.periodic, lay.h)]
    for a, per in enumerate(lay.periodic):
        if per:
            v = np.concatenate([v, np.take(v, [0], axis=a)], axis=a)
    f = RegularGridInterpolator(lines, v, method="linear", bounds_error=False, fill_value=None)
    return f(np.asarray(point, dtype=float)[None])[0]


def _march(system: System, times, integrator, rtol, atol, steps, method, tol, max_iter, stats, c0):
    from scipy.integrate import solve_ivp

    spec = system.spec
    t0, t1 = spec.bounds[spec.time]
    tt = np.linspace(t0, t1, int(times)) if np.ndim(times) == 0 else np.asarray(times, dtype=float)
    if tt.ndim != 1 or tt[0] != t0 or tt[-1] != t1 or np.any(np.diff(tt) <= 0):
        raise ValueError(f"times must increase from t0 = {t0} to t1 = {t1}; give a count or such an array")
    el = system.eliminate()
    U0 = _initial_state(system)
    y0 = U0[el.I]
    const_jac = all(r is None or (all(r.const)) for r in system.pde)

    def fun(t, y):
        return system.pde_residual(el.full(y, t), t)

    jac_cache = {}

    def jac(t, y):
        if const_jac and "J" in jac_cache:
            return jac_cache["J"]
        Jm = (system.pde_jacobian(el.full(y, t), t) @ el.T).tocsc()
        if const_jac:
            jac_cache["J"] = Jm
        return Jm

    jac(t0, y0)
    stats["assemble_s"] = _time.process_time() - c0
    c1 = _time.process_time()
    if integrator in ("BDF", "Radau"):
        out = solve_ivp(fun, (t0, t1), y0, method=integrator, t_eval=tt, jac=jac, rtol=rtol, atol=atol)
        if not out.success:
            raise RuntimeError(f"time integration failed: {out.message}")
        Y = out.y.T
        stats.update({"integrator": integrator, "nfev": int(out.nfev), "njev": int(out.njev), "nlu": int(out.nlu)})
    else:
        Y, more = _crank_nicolson(fun, jac, y0, tt, steps, method, tol, max_iter)
        stats.update(more)
    stats["solve_s"] = _time.process_time() - c1
    Us = [el.full(y, t) for y, t in zip(Y, tt)]
    return tt, Us


def _crank_nicolson(fun, jac, y0, tt, steps, method, tol, max_iter):
    """Fixed-step Crank-Nicolson, ``steps`` steps over the whole interval (output times on the step grid)."""
    t0, t1 = tt[0], tt[-1]
    nsteps = int(steps) if steps else 10 * (len(tt) - 1)
    grid_t = np.linspace(t0, t1, nsteps + 1)
    dt = grid_t[1] - grid_t[0]
    Y, y, its = [], y0.copy(), 0
    out_i = 0
    ident = sp.identity(len(y0), format="csc")
    for k in range(nsteps + 1):
        t = grid_t[k]
        while out_i < len(tt) and abs(tt[out_i] - t) <= 1e-9 * max(1.0, abs(t1)):
            Y.append(y.copy())
            out_i += 1
        if k == nsteps:
            break
        tn = grid_t[k + 1]
        f0 = fun(t, y)
        F = lambda z: z - y - 0.5 * dt * (f0 + fun(tn, z))  # noqa: E731
        Jz = lambda z: (ident - 0.5 * dt * jac(tn, z)).tocsr()  # noqa: E731
        y, info = _newton(F, Jz, y, method, tol, max_iter, linear=False)
        its += info["newton_iterations"]
    if len(Y) != len(tt):
        raise ValueError("Crank-Nicolson: the output times must lie on the step grid (times evenly spaced, "
                         "steps a multiple of len(times) - 1)")
    return np.array(Y), {"integrator": "CN", "steps": nsteps, "newton_iterations": its}


def _unflatten(system: System, U: np.ndarray) -> list[np.ndarray]:
    """Per slot, the grid values on the full node grid (a periodic axis gets its hi end back)."""
    lay = system.layout
    out = []
    for s in range(system.n_slots):
        v = U[s * system.N:(s + 1) * system.N].reshape(lay.shape)
        for a, per in enumerate(lay.periodic):
            if per:
                v = np.concatenate([v, np.take(v, [0], axis=a)], axis=a)
        field = s if s < len(system.spec.fields) else system.second[s - len(system.spec.fields)]
        out.append(v if system.spec.complex[field] else v.real)
    return out


def _grid(system: System, tt: np.ndarray | None = None) -> Grid:
    spec, lay = system.spec, system.layout
    if tt is None:
        return Grid(tuple(spec.bounds[k] for k in spec.space_axes), lay.full_shape)
    bounds, shape = [], []
    it = iter(lay.full_shape)
    for k in range(len(spec.coords)):
        if k == spec.time:
            if not np.allclose(np.diff(tt), tt[1] - tt[0], rtol=1e-9, atol=0):
                raise ValueError("output times must be evenly spaced to form a grid")
            bounds.append((tt[0], tt[-1]))
            shape.append(len(tt))
        else:
            bounds.append(spec.bounds[k])
            shape.append(next(it))
    return Grid(tuple(bounds), tuple(shape))


def _guess(system: System, guess: Any) -> np.ndarray:
    """Newton's initial guess as a full state: an array of all unknowns, or a callable of the space
    coordinates giving one field's grid values (or all slots stacked, shape (n_slots, N))."""
    n = system.n_slots * system.N
    g = np.asarray(guess(*system.layout.X)) if callable(guess) else np.asarray(guess)
    if g.size == system.N:
        g = np.tile(g.ravel(), system.n_slots)
    if g.size != n:
        raise ValueError(f"guess has {g.size} values; the grid has {system.n_slots} x {system.N} unknowns")
    return g.ravel()


def _params(system: System, stats: dict) -> dict:
    spec = system.spec
    return {
        "solver": "reference.fdgen", "order": system.layout.order, "coords": [str(c) for c in spec.coords],
        "fields": [spec.field_name(i) for i in range(len(spec.fields))],
        "equations": [str(e) for _, e in spec.equations], "periodic": sorted(int(p) for p in spec.periodic),
        "time_axis": spec.time,
        "stats": {k: v for k, v in stats.items() if isinstance(v, (int, float, str, bool))},
    }
