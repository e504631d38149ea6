"""The discrete residual of one SymPy expression on a tensor grid, and its exact sparse Jacobian.

Every field value and derivative in the expression, ``D^alpha u_f``, becomes
a plain symbol ``s_j`` whose grid values are ``M_j @ U_f`` for a sparse
stencil matrix ``M_j`` (a Kronecker product of 1-D matrices, one-sided near
the boundary). The residual at the grid rows is then the lambdified
expression ``R(x, t, s_1, ..., s_J)`` evaluated pointwise, and its Jacobian
with respect to the grid unknowns follows by the chain rule through the
stencils::

    dR/dU_f = sum_j diag(dR/ds_j) M_j        (j over the symbols of field f)

with ``dR/ds_j`` differentiated by SymPy, so Newton and the stiff
integrators get the exact Jacobian of the discrete equations.

At second order, a pair ``a u_xx + (da/dx) u_x`` with a known coefficient
``a(x)`` (SymPy's product-rule expansion of ``d/dx(a du/dx)``) is recognised
and discretised in conservative flux form with ``a`` at the half-points,
``(a_{i+1/2}(u_{i+1}-u_i) - a_{i-1/2}(u_i-u_{i-1})) / h^2``: the classical
scheme of ``reference.poisson`` and ``reference.helmholtz`` (``scheme=5``).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import numpy as np
import scipy.sparse as sp
import sympy

from .spec import Spec, SpecError, TorchOnly
from .stencils import MAX_DERIVATIVE, ORDERS, derivative_matrix, flux_matrix

__all__ = ["Layout", "GridResidual", "Term", "symbolise"]

_NON_HOLOMORPHIC = (sympy.conjugate, sympy.re, sympy.im, sympy.Abs, sympy.arg)


class Layout:
    """The spatial tensor grid of a spec: nodes, spacings, boundary faces, stencil matrices.

    Parameters
    ----------
    spec : Spec
    shape : int or sequence of int
        Nodes per spatial axis, both ends included (a periodic axis stores
        ``n - 1`` distinct nodes, its ``hi`` end being the ``lo`` one).
    order : {2, 4}
        Accuracy order of the stencils.
    """

    def __init__(self, spec: Spec, shape: Any, order: int = 2) -> None:
        axes = spec.space_axes
        if isinstance(shape, (int, np.integer)):
            shape = (int(shape),) * len(axes)
        shape = tuple(int(n) for n in shape)
        if len(shape) != len(axes):
            raise SpecError(
                f"grid shape {shape} has {len(shape)} sizes but there are {len(axes)} space coordinates "
                f"{[spec.coords[k] for k in axes]}"
            )
        if order not in ORDERS:
            raise SpecError(f"order {order!r} is not in the stencil set; choose one of {list(ORDERS)}")
        self.spec, self.order, self.axes = spec, order, axes
        self.full_shape = shape
        self.periodic = [k in spec.periodic for k in axes]
        self.shape = tuple(n - 1 if p else n for n, p in zip(shape, self.periodic))
        self.h = [(spec.bounds[k][1] - spec.bounds[k][0]) / (n - 1) for k, n in zip(axes, shape)]
        self.lines = [spec.bounds[k][0] + h * np.arange(n) for k, h, n in zip(axes, self.h, self.shape)]
        self.N = int(np.prod(self.shape))
        mesh = np.meshgrid(*self.lines, indexing="ij")
        self.X = [m.ravel() for m in mesh]  # coordinate of every node, per space axis
        idx = np.unravel_index(np.arange(self.N), self.shape)
        self.faces: dict[tuple[int, int], np.ndarray] = {}
        on_boundary = np.zeros(self.N, dtype=bool)
        for a, k in enumerate(axes):
            if self.periodic[a]:
                continue
            for side, at in ((0, 0), (1, self.shape[a] - 1)):
                m = idx[a] == at
                self.faces[(k, side)] = m
                on_boundary |= m
        self.boundary = on_boundary

    @functools.lru_cache(maxsize=None)
    def d1(self, a: int, m: int) -> sp.csr_matrix:
        return derivative_matrix(self.shape[a], self.h[a], m, self.order, self.periodic[a])

    @functools.lru_cache(maxsize=None)
    def matrix(self, alpha: tuple[int, ...]) -> sp.csr_matrix:
        """``D^alpha`` on the flattened grid (alpha over the space axes), shape (N, N)."""
        M = sp.identity(self.N, format="csr")
        for a, m in enumerate(alpha):
            if m == 0:
                continue
            left = sp.identity(int(np.prod(self.shape[:a])), format="csr")
            right = sp.identity(int(np.prod(self.shape[a + 1 :])), format="csr")
            M = M @ sp.kron(sp.kron(left, self.d1(a, m)), right, format="csr")
        return M.tocsr()

    def half_points(self, a: int) -> list[np.ndarray]:
        """Node coordinates with axis ``a`` moved to its midpoints (flattened in that grid's C order)."""
        lines = list(self.lines)
        x = lines[a]
        lines[a] = x + 0.5 * self.h[a] if self.periodic[a] else 0.5 * (x[1:] + x[:-1])
        return [m for m in np.meshgrid(*lines, indexing="ij")]


@dataclasses.dataclass
class Term:
    """One symbol of a residual: ``s = M @ U[slot]`` (slot: a state block of length N)."""

    symbol: sympy.Symbol
    slot: int
    matrix: sp.csr_matrix
    label: str


def _alpha(deriv: sympy.Derivative, spec: Spec) -> tuple[int, tuple[int, ...]]:
    counts = dict.fromkeys(range(len(spec.coords)), 0)
    for v, c in deriv.variable_count:
        if v not in spec.coords:
            raise SpecError(f"term {deriv}: derivative with respect to {v}, which is not a coordinate {spec.coords}")
        counts[spec.coords.index(v)] += int(c)
    t_order = counts[spec.time] if spec.time is not None else 0
    alpha = tuple(counts[k] for k in spec.space_axes)
    for k, m in zip(spec.space_axes, alpha):
        if m > MAX_DERIVATIVE:
            raise SpecError(
                f"term {deriv}: derivative order {m} in {spec.coords[k]} is not in the stencil set "
                f"(orders up to {MAX_DERIVATIVE} per axis)"
            )
    return t_order, alpha


def symbolise(expr: sympy.Expr, spec: Spec, where: str) -> tuple[sympy.Expr, dict, dict]:
    """Replace field values/derivatives by symbols and known values by numbers.

    Returns
    -------
    (expr, keys, funcs): ``keys[(field, t_order, alpha)] = symbol``; ``funcs`` the numpy
    callables of coefficient functions (by name), for lambdify.

    Raises
    ------
    SpecError naming the term: unknown symbol or function, a derivative of a
    coefficient function, a non-holomorphic function of a complex field.
    """
    fields = {f.func: i for i, f in enumerate(spec.fields)}
    keys: dict[tuple[int, int, tuple[int, ...]], sympy.Symbol] = {}

    def sym(i: int, t_order: int, alpha: tuple[int, ...]) -> sympy.Symbol:
        key = (i, t_order, alpha)
        if key not in keys:
            label = spec.field_name(i) + "".join(
                f"_{spec.coords[k]}{m if m > 1 else ''}" for k, m in zip(spec.space_axes, alpha) if m
            ) + (f"_t{t_order}" if t_order else "")
            keys[key] = sympy.Dummy(label) if spec.complex[i] else sympy.Dummy(label, real=True)
        return keys[key]

    repl = {}
    for d in expr.atoms(sympy.Derivative):
        f = d.expr
        if isinstance(f, sympy.core.function.AppliedUndef) and f.func in fields:
            repl[d] = sym(fields[f.func], *_alpha(d, spec))
        else:
            raise SpecError(
                f"{where}: term {d} differentiates {f}, which is not a field; give its derivative as its own "
                "coefficient or write it in closed form"
            )
    e = expr.xreplace(repl)
    zero = (0,) * len(spec.space_axes)
    e = e.xreplace({f: sym(i, 0, zero) for f, i in ((f, i) for i, f in enumerate(spec.fields))})
    subs, funcs = _known_values(e, spec, keys, where)
    e = e.xreplace(subs)
    _check_holomorphic(e, spec, keys, where)
    return e, keys, funcs


def _known_values(e: sympy.Expr, spec: Spec, keys: dict, where: str) -> tuple[dict, dict]:
    """``(subs, funcs)``: numbers for the parameters (symbols) and constant coefficients, and the
    numpy callables of the coefficient functions (by name)."""
    subs, funcs = {}, {}
    for s in e.free_symbols - set(spec.coords) - set(keys.values()):
        if s.name not in spec.values:
            raise SpecError(f"{where}: symbol {s} has no value; pass values={{'{s.name}': ...}}")
        v = spec.values[s.name]
        if callable(v) and not isinstance(v, sympy.Basic):
            raise SpecError(f"{where}: parameter {s} must be a number, got a callable")
        subs[s] = sympy.sympify(v)
    for a in e.atoms(sympy.core.function.AppliedUndef):
        name = a.func.__name__
        if name not in spec.values:
            raise SpecError(
                f"{where}: coefficient {a} has no value; pass values={{'{name}': number or numpy function of "
                f"{', '.join(map(str, spec.coords))}}}"
            )
        v = spec.values[name]
        if isinstance(v, TorchOnly):
            raise SpecError(
                f"{where}: coefficient {a} is a callable of the Problem (it takes torch tensors); pass its numpy "
                f"version: values={{'{name}': f({', '.join(map(str, spec.coords))})}}"
            )
        if isinstance(v, (int, float, complex, sympy.Basic)):
            subs[a] = sympy.sympify(v)
        else:
            pos = [spec.coords.index(v) if v in spec.coords else -1 for v in a.args]
            if not pos or min(pos) < 0 or pos != sorted(set(pos)):  # all coordinates, or some of them in order
                raise SpecError(f"{where}: coefficient {a} must be applied to the coordinates {spec.coords} "
                                "(or to some of them, in that order)")
            funcs[name] = v
    return subs, funcs


def _check_holomorphic(e: sympy.Expr, spec: Spec, keys: dict, where: str) -> None:
    """Refuse a term that is not complex-differentiable in a complex field (Newton needs a holomorphic residual)."""
    cplx = {keys[k] for k in keys if spec.complex[k[0]]}
    for node in sympy.preorder_traversal(e):
        if isinstance(node, _NON_HOLOMORPHIC) and node.free_symbols & cplx:
            raise SpecError(
                f"{where}: term {node} is not complex-differentiable in a complex field; the grid solver's Newton "
                "step needs a holomorphic residual (split the field into real and imaginary fields)"
            )


def _lambdify(args: list, expr: sympy.Expr, funcs: dict):
    f = sympy.lambdify(args, expr, modules=[funcs, "numpy"]) if funcs else sympy.lambdify(args, expr, "numpy")
    return f


class GridResidual:
    """One residual expression imposed at a set of grid rows.

    Parameters
    ----------
    expr : SymPy expression (already symbolised: see :func:`symbolise`)
    keys : mapping (field, t_order, alpha) -> symbol, from :func:`symbolise`
    slot_of : callable (field, t_order) -> state slot index (raises SpecError if the term is not a state)
    layout : Layout
    rows : bool mask (N,) or index array: the grid nodes where the residual is imposed
    n_slots : number of state blocks (the unknown vector has ``n_slots * N`` entries)
    conservative : recognise flux pairs at second order (see module docstring)
    funcs : numpy callables for coefficient functions
    where : name used in error messages
    """

    def __init__(self, expr, keys, slot_of, layout: Layout, rows, n_slots: int, conservative: bool = True,
                 funcs: dict | None = None, where: str = "residual") -> None:
        self.layout, self.n_slots, self.where = layout, n_slots, where
        self.rows = np.flatnonzero(rows) if np.asarray(rows).dtype == bool else np.asarray(rows)
        self.funcs = funcs or {}
        spec = layout.spec
        self.t = sympy.Symbol("t_fd_time", real=True)
        if spec.time is not None:
            expr = expr.xreplace({spec.coords[spec.time]: self.t})
        self.space = [spec.coords[k] for k in spec.space_axes]
        terms: list[Term] = []
        for (i, t_order, alpha), s in keys.items():
            if s not in expr.free_symbols:
                continue
            terms.append(Term(s, slot_of(i, t_order, where), layout.matrix(alpha), str(s)))
        if conservative and layout.order == 2:
            expr, terms = self._flux_pairs(expr, keys, slot_of, terms)
        self.expr, self.terms = expr, terms
        syms = [tm.symbol for tm in terms]
        self._args = self.space + [self.t] + syms
        self._f = _lambdify(self._args, expr, self.funcs)
        self.partials = [sympy.diff(expr, s) for s in syms]
        state = set(syms)
        self.const = [not (p.free_symbols & (state | {self.t})) for p in self.partials]
        self.linear = all(not (p.free_symbols & state) for p in self.partials)
        self.time_free_jac = all(self.t not in p.free_symbols for p in self.partials)
        self._df = [_lambdify(self._args, p, self.funcs) for p in self.partials]
        n = len(self.rows)
        self._x = [X[self.rows] for X in layout.X]
        self._M = [tm.matrix[self.rows] for tm in terms]
        self._Memb = []
        for tm, M in zip(terms, self._M):
            E = sp.csr_matrix((M.data, M.indices + tm.slot * layout.N, M.indptr), shape=(n, n_slots * layout.N))
            self._Memb.append(E)
        self._jac_cache: sp.csr_matrix | None = None

    # ----------------------------------------------------------- flux form
    def _flux_pairs(self, expr, keys, slot_of, terms):
        spec, lay = self.layout.spec, self.layout
        state = {tm.symbol for tm in terms}
        zero = [0] * len(spec.space_axes)
        for (i, t_order, alpha), s2 in list(keys.items()):
            if t_order or s2 not in expr.free_symbols:
                continue
            for a, m in enumerate(alpha):
                if m != 2 or sum(alpha) != 2:
                    continue
                e1 = list(zero)
                e1[a] = 1
                s1 = keys.get((i, 0, tuple(e1)))
                coef2 = sympy.diff(expr, s2)
                coef1 = sympy.diff(expr, s1) if s1 is not None else sympy.S.Zero
                if (coef2.free_symbols | coef1.free_symbols) & (state | {self.t}) or coef2 == 0:
                    continue
                xk = self.space[a]
                k = spec.space_axes[a]
                ends = [lay.faces[(k, side)][self.rows] for side in (0, 1) if (k, side) in lay.faces]
                if any(e.any() for e in ends):  # the flux stencil has no rows at the ends of the axis
                    continue
                if not self._is_derivative(coef1, coef2, xk):
                    continue
                a_fn = _lambdify(self.space, coef2, self.funcs)
                pts = lay.half_points(a)
                shp = pts[0].shape
                a_half = np.broadcast_to(np.asarray(a_fn(*pts)), shp)
                F = flux_matrix(lay.shape, a, a_half, lay.h[a], lay.periodic[a])
                sf = sympy.Dummy(f"flux_{spec.field_name(i)}_{xk}")
                expr = expr.xreplace({s2: 0, **({s1: 0} if s1 is not None else {})}) + sf
                terms = [tm for tm in terms if tm.symbol in expr.free_symbols]
                terms.append(Term(sf, slot_of(i, 0, self.where), F, f"d/d{xk}(({coef2}) d{spec.field_name(i)}/d{xk})"))
        return expr, terms

    def _is_derivative(self, b, a, xk) -> bool:
        """Numerically: is ``b == da/dx_k`` over the box (random points, tolerance 1e-9 relative)?"""
        spec = self.layout.spec
        real = {c: sympy.Dummy(c.name, real=True) for c in self.space}  # d|x|/dx = sign(x) needs real x
        a, b = a.xreplace(real), b.xreplace(real)
        da = sympy.diff(a, real[xk])
        if sympy.expand(b - da) == 0:
            return True
        rng = np.random.default_rng(1234)
        pts = [rng.uniform(*spec.bounds[k], 64) for k in spec.space_axes]
        args = [real[c] for c in self.space]
        try:
            bv = np.broadcast_to(np.asarray(_lambdify(args, b, self.funcs)(*pts), dtype=complex), (64,))
            dv = np.broadcast_to(np.asarray(_lambdify(args, da, self.funcs)(*pts), dtype=complex), (64,))
        except Exception:  # a derivative numpy cannot evaluate: use the plain stencils
            return False
        scale = max(np.max(np.abs(dv)), np.max(np.abs(bv)), 1.0)
        return bool(np.all(np.isfinite(bv)) and np.max(np.abs(bv - dv)) <= 1e-9 * scale)

    # ----------------------------------------------------------- evaluation
    def _values(self, U: np.ndarray) -> list[np.ndarray]:
        N = self.layout.N
        return [M @ U[tm.slot * N:(tm.slot + 1) * N] for tm, M in zip(self.terms, self._M)]

    def __call__(self, U: np.ndarray, t: float = 0.0) -> np.ndarray:
        """Residual at the rows, shape (len(rows),)."""
        v = self._f(*self._x, t, *self._values(U))
        return np.broadcast_to(np.asarray(v), (len(self.rows),))

    def jacobian(self, U: np.ndarray, t: float = 0.0) -> sp.csr_matrix:
        """Exact Jacobian of the rows w.r.t. the full state, shape (len(rows), n_slots * N)."""
        if self._jac_cache is not None:
            return self._jac_cache
        n = len(self.rows)
        vals = self._values(U) if not all(self.const) else [None] * len(self.terms)
        J = sp.csr_matrix((n, self.n_slots * self.layout.N))
        for df, E, c in zip(self._df, self._Memb, self.const):
            g = np.asarray(df(*self._x, t, *vals))
            g = np.broadcast_to(g.astype(np.result_type(g.dtype, np.float64)), (n,))
            J = J + sp.diags(g) @ E
        J = J.tocsr()
        if all(self.const):
            self._jac_cache = J
        return J
