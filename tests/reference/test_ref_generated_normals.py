"""reference.fdgen: the outward unit normal of each box face for ``n_x, n_y`` (normal_derivative).

A Robin condition ``u + du/dn = h`` on one face (Dirichlet on the others) of
``[0, 1] x [0, 2]``, with ``h`` computed from the closed form and the outward
normal of that face; the grid solution must match the closed form to the
discretisation error, which must fall at second order between two grids.
"""

import numpy as np
import pytest
import sympy

from reference import fdgen
from reference.fdgen import SpecError

x, y = sympy.symbols("x y")
BOX = [(0.0, 1.0), (0.0, 2.0)]
UE = sympy.exp(x) * sympy.sin(2 * y) + x * y + 1
FACES = [(0, 0), (0, 1), (1, 0), (1, 1)]


def _outward(face):
    axis, side = face
    n = [0, 0]
    n[axis] = 1 if side else -1
    return n


def _robin_data(face):
    """h = u + n . grad u of the closed form, with the face's outward normal (independently of fdgen)."""
    n = _outward(face)
    return UE + n[0] * UE.diff(x) + n[1] * UE.diff(y)


def _err(sol):
    X, Y = sol["u"].grid.coords()
    ue = sympy.lambdify((x, y), UE, "numpy")(X, Y)
    return float(np.linalg.norm(sol["u"].values - ue) / np.linalg.norm(ue))


def _sympy_solve(face, n, values=None):
    from pinnsiren.symbolic import normal_derivative  # sympy only: no torch

    u = sympy.Function("u", real=True)(x, y)
    lap = lambda v: v.diff(x, 2) + v.diff(y, 2)  # noqa: E731
    conds = [(u + normal_derivative(u, (x, y)) - _robin_data(face), face)]
    conds += [(u - UE, f) for f in FACES if f != face]
    return fdgen.solve_pde(sympy.Eq(lap(u), lap(UE)), [u], (x, y), BOX, conditions=conds, shape=n, values=values)


@pytest.mark.parametrize("face", FACES)
def test_robin_normal_derivative_each_face_from_sympy(face):
    e1, e2 = _err(_sympy_solve(face, (17, 33))), _err(_sympy_solve(face, (33, 65)))
    # second order: halving h divides the error by ~4 (a wrong normal sign gives O(0.1) errors that do not fall)
    assert e2 < 2e-3
    assert 3.0 < e1 / e2 < 5.0


@pytest.mark.parametrize("face", FACES)
def test_robin_normal_derivative_each_face_problem(face):
    pinn = pytest.importorskip("pinnsiren")
    from pinnsiren.symbolic import normal_derivative

    u = pinn.Field("u", (x, y))
    lap = lambda v: v.diff(x, 2) + v.diff(y, 2)  # noqa: E731
    cons = [pinn.Constraint(sympy.Eq(lap(u), lap(UE)), pinn.Box(BOX), n=8, name="pde"),
            pinn.Constraint(u + normal_derivative(u, (x, y)) - _robin_data(face), pinn.Box(BOX).boundary(faces=[face]),
                            n=8, name="robin")]
    others = [f for f in FACES if f != face]
    cons.append(pinn.Constraint(u - UE, pinn.Box(BOX).boundary(faces=others), n=8, name="dirichlet"))
    prob = pinn.Problem([u], (x, y), cons)
    e1, e2 = _err(fdgen.solve(prob, (17, 33))), _err(fdgen.solve(prob, (33, 65)))
    assert e2 < 2e-3
    assert 3.0 < e1 / e2 < 5.0
    # a value that agrees with the face's outward normal is accepted (same answer) ...
    n = _outward(face)
    agree = {"n_x": n[0], "n_y": n[1]}
    assert _err(fdgen.solve(prob, (17, 33), values=agree)) == pytest.approx(e1, rel=1e-10)
    # ... one that contradicts it is refused, naming the symbol
    wrong = {"n_x": -n[0], "n_y": n[1]} if face[0] == 0 else {"n_x": n[0], "n_y": -n[1]}
    with pytest.raises(SpecError, match="outward unit normal"):
        fdgen.solve(prob, 17, values=wrong)


def test_contradicting_value_refused_from_sympy():
    with pytest.raises(SpecError, match=r"n_x = 1 but on the face \(x, lo\)"):
        _sympy_solve((0, 0), 9, values={"n_x": 1})
    with pytest.raises(SpecError, match="n_y"):
        _sympy_solve((0, 0), 9, values={"n_y": 0.5})  # off the face's axis the normal is 0


def test_normals_substituted_per_face():
    from pinnsiren.symbolic import normal

    nx, ny = normal((x, y))
    u = sympy.Function("u")(x, y)
    spec = fdgen.from_sympy(u.diff(x, 2), [u], (x, y), BOX,
                            conditions=[(nx * u.diff(x) + ny * u.diff(y), f) for f in FACES])
    got = {c.face: c.expr for c in spec.conditions}
    assert got[(0, 0)] == -u.diff(x) and got[(0, 1)] == u.diff(x)
    assert got[(1, 0)] == -u.diff(y) and got[(1, 1)] == u.diff(y)
