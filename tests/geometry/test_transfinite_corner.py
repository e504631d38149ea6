"""Where two boundary pieces meet, the transfinite lift is the pieces' (shared) data, not 0/0."""

import sympy

from pinnsiren.adf import transfinite

x, t = sympy.symbols("x t")


def test_lift_at_a_corner_of_two_pieces_is_finite_and_exact_elsewhere():
    u0 = -sympy.sin(sympy.pi * x)
    g = transfinite([(t, u0), (1 - x**2, 0)])  # initial line t = 0 and the walls x = +-1
    f = sympy.lambdify((x, t), g, "math")
    assert abs(f(1.0, 0.0)) < 1e-12 and abs(f(-1.0, 0.0)) < 1e-12  # corners: was nan
    assert abs(f(0.3, 0.0) - float(u0.subs(x, 0.3))) < 1e-12      # on the initial line: u0
    assert abs(f(1.0, 0.4)) < 1e-12                                # on a wall: 0
    h = sympy.lambdify((x, t), transfinite([(t, 2), (1 - x**2, 2)]), "math")
    assert h(1.0, 0.0) == 2.0  # compatible data: the corner takes it
