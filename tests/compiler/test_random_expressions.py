""">= 1000 random expressions: compiled residual vs SymPy's own answer.

Each example draws an expression over a real field ``u`` and a complex field
``v`` (nested elementary functions, products, powers, Piecewise/Max/Abs,
mixed first and second derivatives, derivatives of composite expressions).
The reference substitutes the fields' closed forms: SymPy differentiates the
closed forms (precomputed once) and numpy evaluates the expression; torch is
not involved. The compiled residual runs on the jet path (a tiny Siren) and
on the autograd fallback (a trig/exp module), float64, and must agree to
``1e-8`` relative to the size of the expression's terms.
"""

from __future__ import annotations

import numpy as np
import sympy
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pinnsiren import compiler
from pinnsiren.symbolic import Field

from .analytic import COORDS, MULTI, TrigExpField, X, Y, channel_derivatives, siren_sympy, tiny_siren

U = Field("u", COORDS)
V = Field("v", COORDS, complex=True)
K = sympy.Symbol("k")
FIELDS = [U, V]  # channels: u -> 0, v -> (1, 2)

SIREN = tiny_siren(3)
TRIG = TrigExpField(3)
REF = {"jet": channel_derivatives(siren_sympy(SIREN)), "autograd": channel_derivatives(TRIG.sympy())}
MODELS = {"jet": SIREN, "autograd": TRIG}


def _d(f, a):
    out = f
    for var, n in zip(COORDS, a):
        if n:
            out = sympy.Derivative(out, (var, n))
    return out


real_leaf = st.sampled_from(
    [X, Y, K, U] + [_d(U, a) for a in MULTI[1:]] + [sympy.Rational(1, 3), sympy.Rational(-5, 2), sympy.Integer(2), sympy.pi]
)
complex_leaf = st.sampled_from([V] + [_d(V, a) for a in MULTI[1:]] + [sympy.I * X, 1 + 2 * sympy.I])
plain_real = st.sampled_from([X, Y, U])
plain_complex = st.sampled_from([V, V * U, V + X])


def _real_unary(a):
    return st.sampled_from(
        [
            sympy.sin(a), sympy.cos(a), sympy.tanh(a), sympy.atan(a), sympy.exp(sympy.tanh(a)),
            sympy.sqrt(1 + a**2), a**2, a**3, sympy.log(1 + a**2), 1 / (2 + sympy.sin(a)),
            sympy.sinh(sympy.tanh(a)), sympy.cosh(sympy.sin(a)), sympy.Abs(a), sympy.Max(a, sympy.Rational(1, 5)),
            sympy.Piecewise((a, X > 0), (-a, True)), sympy.Heaviside(Y) * a, sympy.asinh(a),
        ]
    )


@st.composite
def real_expr(draw, depth=3):
    if depth == 0:
        return draw(real_leaf)
    kind = draw(st.integers(0, 8))
    if kind <= 1:
        return draw(real_leaf)
    if kind == 2:
        return draw(real_expr(depth - 1)) + draw(real_expr(depth - 1))
    if kind == 3:
        return draw(real_expr(depth - 1)) * draw(real_expr(depth - 1))
    if kind in (4, 5):
        return draw(_real_unary(draw(real_expr(depth - 1))))
    if kind == 6:
        c = draw(complex_expr(depth - 1))
        return draw(st.sampled_from([sympy.re(c), sympy.im(c), sympy.Abs(c)]))
    if kind == 7:
        # SymPy differentiates a composite of order-0 fields (mixed orders <= 2)
        inner = draw(_real_unary(draw(plain_real) * draw(st.sampled_from([U, X, Y + 1]))))
        a = draw(st.sampled_from(MULTI[1:]))
        return sympy.diff(inner, *[(v, n) for v, n in zip(COORDS, a) if n])
    return sympy.Min(draw(real_expr(depth - 1)), draw(real_expr(depth - 1)))


@st.composite
def complex_expr(draw, depth=3):
    if depth == 0:
        return draw(complex_leaf)
    kind = draw(st.integers(0, 6))
    if kind <= 1:
        return draw(complex_leaf)
    if kind == 2:
        return draw(complex_expr(depth - 1)) + draw(real_expr(depth - 1))
    if kind == 3:
        return draw(complex_expr(depth - 1)) * draw(st.one_of(real_expr(depth - 1), complex_expr(depth - 1)))
    if kind == 4:
        return sympy.conjugate(draw(complex_expr(depth - 1)))
    if kind == 5:
        inner = draw(plain_complex) * draw(st.sampled_from([sympy.sin(U), X, sympy.conjugate(V)]))
        a = draw(st.sampled_from(MULTI[1:]))
        return sympy.diff(inner, *[(v, n) for v, n in zip(COORDS, a) if n])
    return sympy.exp(sympy.I * draw(real_expr(depth - 1))) * draw(complex_expr(depth - 1))


# DiracDelta (from differentiating Heaviside/Abs/Max) is zero a.e.
MODULES = [{"DiracDelta": lambda z, *order: 0.0 * z}, "numpy"]


def _reference(expr, path, pts, kval):
    """Evaluate expr with numpy, fields replaced by their SymPy-differentiated closed forms."""
    ref = REF[path]
    subs = {}
    syms = []
    vals = []
    for i, a in enumerate(MULTI):
        su, svr, svi = sympy.symbols(f"U{i} VR{i} VI{i}", real=True)
        for f, val in ((U, su), (V, svr + sympy.I * svi)):
            subs[_d(f, a) if sum(a) else f] = val
        syms += [su, svr, svi]
        vals += [ref[(c, a)](pts[:, 0], pts[:, 1]) * np.ones(len(pts)) for c in range(3)]
    e = expr.xreplace(subs)
    assert not e.atoms(sympy.Derivative), e
    fn = sympy.lambdify((X, Y, K, *syms), e, MODULES)
    val = np.broadcast_to(np.asarray(fn(pts[:, 0], pts[:, 1], kval, *vals), dtype=complex), (len(pts),))
    terms = sympy.Add.make_args(sympy.expand(e, deep=False, mul=False, power_exp=False, log=False, multinomial=False))
    scale = np.zeros(len(pts))
    for t in terms:
        tf = sympy.lambdify((X, Y, K, *syms), t, MODULES)
        scale = scale + np.abs(np.asarray(tf(pts[:, 0], pts[:, 1], kval, *vals), dtype=complex))
    return val, scale


def _check(expr, seed):
    rng = np.random.default_rng(seed)
    pts = rng.uniform(-1, 1, size=(4, 2))
    kval = 0.7
    r = compiler.compile_residual(expr, FIELDS, COORDS, parameters=[K])
    for path in ("jet", "autograd"):
        want, scale = _reference(expr, path, pts, kval)
        if not np.all(np.isfinite(want)):
            continue
        got = r(MODELS[path], torch.from_numpy(pts), k=kval).detach().numpy()
        err = np.abs(got - want)
        tol = 1e-8 * np.maximum(scale, np.abs(want)) + 1e-12
        assert np.all(err <= tol), (path, expr, got, want, scale)


@settings(max_examples=700, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(real_expr(), st.integers(0, 2**31))
def test_random_real_expressions(expr, seed):
    _check(expr, seed)


@settings(max_examples=400, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(complex_expr(), st.integers(0, 2**31))
def test_random_complex_expressions(expr, seed):
    _check(expr, seed)
