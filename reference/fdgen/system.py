"""Assemble a spec into grid rows: PDE rows inside, boundary-condition rows on the faces.

State layout: one block of ``N`` grid values per *slot*: one slot per field,
plus one more (``w = u_t``) for every field that appears with a second time
derivative (the first-order reformulation ``u_t = w, w_t = ...``). The
unknown vector is ``U`` of length ``n_slots * N``, block after block, each
block the grid flattened in C order.

Boundary nodes carry the boundary conditions: a node on several faces
(edge, corner) takes, for each field, the condition with no derivatives
(Dirichlet) if one of its faces has one, else the first face's condition.
In a steady problem a field with no condition on a face whose equations hold
only its first derivative normal to that face (a pressure, which they fix
through its gradient) takes there the first equation that holds it, with
one-sided stencils: for incompressible flow, the normal momentum equation on
the wall, the usual pressure boundary condition. A field with a second normal
derivative still needs a declared condition.
When every boundary row is linear in the unknowns it is eliminated,
``U_b = P U_i + q(t)``, leaving equations for the inside nodes only (this is
how Dirichlet data reach a symmetric interior matrix, and how a
time-dependent problem becomes a system of ODEs).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import sympy

from .discrete import GridResidual, Layout, symbolise
from .spec import Spec, SpecError

__all__ = ["System"]


class _FaceEquation:
    """A steady equation used as a field's condition on a face that declares none (named for messages)."""

    def __init__(self, name: str) -> None:
        self.name = name


class System:
    """Grid rows of a spec.

    Parameters
    ----------
    spec : Spec
    shape : nodes per space axis (int or tuple)
    order : {2, 4}
    conservative : bool
        Flux form for ``d/dx(a du/dx)`` at second order.
    """

    def _slots(self, spec: Any, where: str) -> list:
        """Symbolise the equations; one slot per field, plus ``w = u_t`` for each field with a ``u_tt``
        (``second``, ``slot_names``, ``n_slots``, ``w_slot``). Returns the symbolised equations."""
        if not spec.equations:
            raise SpecError(f"no PDE: the spec has no equation imposed inside the {where}")
        nf = len(spec.fields)
        sym = [symbolise(e, spec, name) for name, e in spec.equations]
        self.second = sorted({i for _, keys, _ in sym for (i, to, _) in keys if to >= 2})
        for _, keys, _ in sym:
            for (i, to, _) in keys:
                if to > 2:
                    raise SpecError(f"time derivative of order {to} of {spec.field_name(i)}: the solver marches up to u_tt")
        self.slot_names = [spec.field_name(i) for i in range(nf)] + [spec.field_name(i) + "_t" for i in self.second]
        self.n_slots = nf + len(self.second)
        self.w_slot = {i: nf + j for j, i in enumerate(self.second)}
        return sym

    def __init__(self, spec: Spec, shape: Any, order: int = 2, conservative: bool = True) -> None:
        self.spec = spec
        self.layout = lay = Layout(spec, shape, order)
        N = lay.N
        nf = len(spec.fields)
        sym = self._slots(spec, "box")
        self._sym = sym
        self._face_pde: dict[tuple[int, int, int], Any] = {}
        self.face_equations: list[str] = []  # which steady equation stands in for a missing face condition
        self.inner = np.flatnonzero(~lay.boundary)
        self.bnodes = np.flatnonzero(lay.boundary)
        self.N = N
        self.conservative = conservative
        if spec.time is None:
            if len(spec.equations) != nf:
                raise SpecError(
                    f"{len(spec.equations)} equations for {nf} fields {[spec.field_name(i) for i in range(nf)]}: "
                    "a steady problem needs one equation per field"
                )
            self.pde = [self._residual(e, k, fn, self.inner, name) for (name, _), (e, k, fn) in zip(spec.equations, sym)]
            self.pde_slots = list(range(nf))
        else:
            self._time_rows(sym)
        self._boundary_rows()

    # ------------------------------------------------------------ helpers
    def slot_of(self, i: int, t_order: int, where: str) -> int:
        if t_order == 0:
            return i
        if t_order == 1 and i in self.w_slot:
            return self.w_slot[i]
        name = self.spec.field_name(i)
        raise SpecError(
            f"{where}: a time derivative of {name} appears where the solver needs values on the grid "
            f"(mixed time-space derivative, or u_t in a condition of a first-order field)"
        )

    def _residual(self, expr, keys, funcs, rows, where) -> GridResidual:
        return GridResidual(expr, keys, self.slot_of, self.layout, rows, self.n_slots, self.conservative, funcs, where)

    # ------------------------------------------------------- time problems
    def _time_rows(self, sym) -> None:
        spec = self.spec
        nf = len(spec.fields)
        owner: dict[int, int] = {}
        rhs: dict[int, GridResidual] = {}
        for (name, _), (e, keys, funcs) in zip(spec.equations, sym):
            tops = {}
            for (i, to, alpha), s in keys.items():
                if to and s in e.free_symbols:
                    if any(alpha) and not (to == 1 and i in self.w_slot):
                        raise SpecError(
                            f"{name}: term {s} mixes time and space derivatives of {spec.field_name(i)}; "
                            "the method of lines needs u_t alone"
                        )
                    if not any(alpha):
                        tops[i] = max(tops.get(i, 0), to)
            want = {i: to for i, to in tops.items() if to == (2 if i in self.w_slot else 1)}
            if len(want) != 1:
                names = sorted(spec.field_name(i) for i in want) or ["none"]
                raise SpecError(
                    f"{name}: cannot solve for one time derivative (found the leading time derivatives of {names}); "
                    "each equation must contain the time derivative of exactly one field"
                )
            (i, to), = want.items()
            if i in owner:
                raise SpecError(f"{name} and {spec.equations[owner[i]][0]} both march field {spec.field_name(i)}")
            owner[i] = len(owner)
            s = keys[(i, to, (0,) * len(spec.space_axes))]
            c = sympy.diff(e, s)
            state = set(keys.values())
            if c == 0 or c.free_symbols & state:
                raise SpecError(
                    f"{name}: the coefficient of {s} is {c}; it must be nonzero and independent of the fields"
                )
            g = -e.xreplace({s: 0}) / c
            slot = self.w_slot[i] if to == 2 else i
            rhs[slot] = self._residual(g, {k: v for k, v in keys.items() if v != s}, funcs, self.inner, name)
        for i in range(nf):
            if i not in owner:
                raise SpecError(f"field {spec.field_name(i)} has no time derivative in any equation (algebraic fields are not supported)")
        self.pde = []
        self.pde_slots = list(range(self.n_slots))
        for slot in range(self.n_slots):
            self.pde.append(rhs.get(slot))  # None: u' = w for the u-slot of a second-order field

    # ------------------------------------------------------- boundary rows
    def _boundary_rows(self) -> None:
        spec, lay = self.spec, self.layout
        nf = len(spec.fields)
        face_conds: dict[tuple[int, int, int], list] = {}
        for c in spec.conditions:
            exprs = [(c.expr, 0)]
            for (e, extra) in exprs:
                se, keys, funcs = symbolise(e, spec, f"constraint {c.name!r}")
                present = sorted({i for (i, to, a), s in keys.items() if s in se.free_symbols})
                if not present:
                    raise SpecError(f"constraint {c.name!r} on face {self._face(c.face)} involves no field")
                values = [i for i in present if any(k[0] == i and not any(k[2]) and not k[1] for k in keys)]
                i = values[0] if values else present[0]
                face_conds.setdefault((c.face[0], c.face[1], i), []).append((c, se, keys, funcs))
                if i in self.w_slot:  # the same condition differentiated in time, for w = u_t
                    t = spec.coords[spec.time]
                    se2, keys2, funcs2 = symbolise(sympy.diff(c.expr, t), spec, f"constraint {c.name!r} (d/dt)")
                    face_conds.setdefault((c.face[0], c.face[1], self.w_slot[i]), []).append((c, se2, keys2, funcs2))
        for key, lst in face_conds.items():
            if len(lst) > 1:
                names = [x[0].name for x in lst]
                raise SpecError(
                    f"constraints {names} all impose a condition on {self.slot_names[key[2]]} on face "
                    f"{self._face(key[:2])}; give one per field and face"
                )
        self.bc: list[tuple[int, GridResidual]] = []
        for slot in range(self.n_slots):
            chosen: dict[int, list[int]] = {}
            conds = []
            for node in self.bnodes:
                faces = [f for f, m in lay.faces.items() if m[node]]
                cands = [face_conds[(f[0], f[1], slot)][0] for f in faces if (f[0], f[1], slot) in face_conds]
                if not cands:
                    cands = [c for c in (self._pde_on_face(f, slot) for f in faces) if c is not None][:1]
                if not cands:
                    f = faces[0]
                    raise SpecError(
                        f"face {self._face(f)} has no boundary condition for {self.slot_names[slot]}; add a constraint "
                        "on that face (or declare the axis periodic)"
                    )
                dirichlet = [c for c in cands if all(not any(k[2]) for k, s in c[2].items() if s in c[1].free_symbols)]
                pick = (dirichlet or cands)[0]
                if not any(pick is c for c in conds):
                    conds.append(pick)
                chosen.setdefault(next(j for j, c in enumerate(conds) if c is pick), []).append(node)
            for j, nodes in chosen.items():
                c, se, keys, funcs = conds[j]
                self.bc.append((slot, self._residual(se, keys, funcs, np.array(nodes), f"constraint {c.name!r}")))

    def _pde_on_face(self, face: tuple[int, int], slot: int) -> Any:
        """The steady equation imposed on ``face`` for a field with no condition there: the first that holds
        the field's derivative normal to the face (None in a time problem, or when no equation does)."""
        spec = self.spec
        if spec.time is not None or slot >= len(spec.fields) or face[0] not in spec.space_axes:
            return None
        key = (face[0], face[1], slot)
        if key not in self._face_pde:
            alpha = tuple(int(a == face[0]) for a in spec.space_axes)
            self._face_pde[key] = None
            second = tuple(2 * a for a in alpha)
            if any(keys.get((slot, 0, second)) in se.free_symbols for se, keys, _ in self._sym):
                return None  # a field with a second normal derivative needs a declared condition
            for (name, _), (se, keys, funcs) in zip(spec.equations, self._sym):
                s = keys.get((slot, 0, alpha))
                if s is not None and s in se.free_symbols:
                    self._face_pde[key] = (_FaceEquation(f"{name} (on the face, for {self.slot_names[slot]})"),
                                           se, keys, funcs)
                    self.face_equations.append(f"{self.slot_names[slot]} on {self._face(face)}: {name}")
                    break
        return self._face_pde[key]

    def _face(self, f) -> str:
        return f"({self.spec.coords[f[0]]}, {'lo' if f[1] == 0 else 'hi'})"

    # ------------------------------------------------------------ state
    @property
    def dtype(self):
        return np.complex128 if any(self.spec.complex) else np.float64

    def inner_index(self) -> np.ndarray:
        """Indices of the inside unknowns in the full state (slot after slot)."""
        return np.concatenate([s * self.N + self.inner for s in range(self.n_slots)])

    def boundary_index(self) -> np.ndarray:
        """Indices of the boundary unknowns, in the order of the boundary rows."""
        return np.concatenate([slot * self.N + r.rows for slot, r in self.bc]) if self.bc else np.zeros(0, int)

    @property
    def linear_boundary(self) -> bool:
        return all(r.linear and r.time_free_jac for _, r in self.bc)

    def eliminate(self) -> "Elimination":
        """``U = T y + Eb q(t)`` with ``y`` the inside unknowns (requires linear boundary rows)."""
        return Elimination(self)

    def bc_residual(self, U: np.ndarray, t: float = 0.0) -> np.ndarray:
        return np.concatenate([r(U, t) for _, r in self.bc]) if self.bc else np.zeros(0)

    def bc_jacobian(self, U: np.ndarray, t: float = 0.0) -> sp.csr_matrix:
        if not self.bc:
            return sp.csr_matrix((0, self.n_slots * self.N))
        return sp.vstack([r.jacobian(U, t) for _, r in self.bc]).tocsr()

    def pde_residual(self, U: np.ndarray, t: float = 0.0) -> np.ndarray:
        """PDE rows (steady residual, or the time derivative of the inside unknowns), slot after slot."""
        out = []
        for slot, r in zip(self.pde_slots, self.pde):
            if r is None:  # u' = w
                w = self.w_slot[slot]
                out.append(U[w * self.N + self.inner])
            else:
                out.append(r(U, t))
        return np.concatenate(out)

    def pde_jacobian(self, U: np.ndarray, t: float = 0.0) -> sp.csr_matrix:
        blocks = []
        ni = len(self.inner)
        for slot, r in zip(self.pde_slots, self.pde):
            if r is None:
                w = self.w_slot[slot]
                blocks.append(sp.csr_matrix((np.ones(ni), (np.arange(ni), w * self.N + self.inner)),
                                            shape=(ni, self.n_slots * self.N)))
            else:
                blocks.append(r.jacobian(U, t))
        return sp.vstack(blocks).tocsr()

    @property
    def linear(self) -> bool:
        return all(r is None or r.linear for r in self.pde) and all(r.linear for _, r in self.bc)


class Elimination:
    """Boundary unknowns as an affine function of the inside ones: ``U = T y + Eb q(t)``."""

    def __init__(self, system: System) -> None:
        if not system.linear_boundary:
            bad = next(r.where for _, r in system.bc if not (r.linear and r.time_free_jac))
            raise SpecError(f"{bad}: boundary rows must be linear with time-independent coefficients here")
        n = system.n_slots * system.N
        self.system = system
        self.I = system.inner_index()
        self.B = system.boundary_index()
        Z = np.zeros(n, dtype=system.dtype)
        J = system.bc_jacobian(Z).astype(system.dtype).tocsc()
        Jbb, Jbi = J[:, self.B].tocsc(), J[:, self.I].tocsc()
        self._inv = _block_inverse(Jbb) if len(self.B) else None
        P = -(self._inv @ Jbi).tocsr() if len(self.B) else None
        Ei = sp.csr_matrix((np.ones(len(self.I)), (self.I, np.arange(len(self.I)))), shape=(n, len(self.I)))
        self.Eb = sp.csr_matrix((np.ones(len(self.B)), (self.B, np.arange(len(self.B)))), shape=(n, len(self.B)))
        self.T = (Ei + self.Eb @ P).tocsr() if len(self.B) else Ei.tocsr()
        self.T.eliminate_zeros()
        self._zero = Z

    def q(self, t: float = 0.0) -> np.ndarray:
        if not len(self.B):
            return np.zeros(0)
        r0 = self.system.bc_residual(self._zero, t)
        return -(self._inv @ np.asarray(r0, dtype=self._zero.dtype))

    def full(self, y: np.ndarray, t: float = 0.0) -> np.ndarray:
        U = self.T @ y
        if len(self.B):
            U = U + self.Eb @ self.q(t)
        return U


def _block_inverse(A: sp.spmatrix, max_block: int = 256) -> sp.csr_matrix:
    """Sparse inverse of a matrix that is block diagonal up to a permutation (boundary rows couple
    only nearby boundary nodes): each connected block is inverted densely."""
    from scipy.sparse.csgraph import connected_components

    A = sp.csr_matrix(A)
    n = A.shape[0]
    pattern = sp.csr_matrix((np.ones(len(A.data)), A.indices, A.indptr), shape=A.shape)
    ncomp, labels = connected_components(pattern, directed=False)
    order = np.argsort(labels, kind="stable")
    starts = np.searchsorted(labels[order], np.arange(ncomp + 1))
    sizes = np.diff(starts)
    if sizes.max() > max_block:
        return sp.csr_matrix(spla.inv(A.tocsc()))
    rows, cols, vals = [], [], []
    for size in np.unique(sizes):  # batch the blocks of equal size
        comps = np.flatnonzero(sizes == size)
        idx = np.stack([order[starts[c]:starts[c] + size] for c in comps])  # (nb, size)
        sub = np.stack([A[i][:, i].toarray() for i in idx]) if size > 1 else A.diagonal()[idx][:, :, None]
        inv = np.linalg.inv(sub)
        rows.append(np.repeat(idx, size, axis=1).ravel())
        cols.append(np.tile(idx, (1, size)).ravel())
        vals.append(inv.ravel())
    return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))
