"""Every catalog equation, compiled, against SymPy's own answer (jet and autograd paths)."""

import numpy as np
import pytest
import sympy
import torch

import equations
from pinnsiren import Field, compile_residual

from .analytic import TrigExpField, X, Y, siren_sympy, sympy_reference, tiny_siren

T = sympy.Symbol("t", real=True)
RNG = np.random.default_rng(11)
PTS2 = RNG.uniform(-1, 1, size=(40, 2))
PTS2[:4] = [[0.0, 0.3], [0.7, 0.0], [0.9, -0.95], [0.0, 0.0]]  # on the kinks of |x|: PML still finite
PTS3 = RNG.uniform(-1, 1, size=(30, 3))

TORCH_M = lambda x: 1 + 0.5 * x[:, 0] ** 2 + torch.sin(x[:, 1])  # noqa: E731
SYM_M = lambda c: 1 + sympy.Rational(1, 2) * c[0] ** 2 + sympy.sin(c[1])  # noqa: E731


def _u0_torch(x):
    return torch.exp(1j * (x[:, 0] + 2 * x[:, 1])) * (1 + x[:, 0] * x[:, 1])


def _u0_sym(c):
    return sympy.exp(sympy.I * (c[0] + 2 * c[1])) * (1 + c[0] * c[1])


def _models(channels, d=2):
    if d == 2:
        yield "jet", tiny_siren(channels), siren_sympy(tiny_siren(channels))
        trig = TrigExpField(channels)
        yield "autograd", trig, trig.sympy()
    else:
        m = tiny_siren(channels, in_features=3)
        yield "jet", m, siren_sympy(m, (X, Y, T))
        yield "autograd", _Wrapped(m), siren_sympy(m, (X, Y, T))


class _Wrapped(torch.nn.Module):
    """A Siren hidden behind a plain Module: forces the autograd fallback."""

    def __init__(self, m):
        super().__init__()
        self.m = m
        self.out_features = m.out_features

    def forward(self, x):
        return self.m(x)


def _field_map(fields, forms):
    out, ch = {}, 0
    for f in fields:
        if getattr(f.func, "pinn_complex", False):
            out[f] = forms[ch] + sympy.I * forms[ch + 1]
            ch += 2
        else:
            out[f] = forms[ch]
            ch += 1
    return out


def _check(expr, fields, coords, pts, coef_sym=None, coef_torch=None, n_channels=1, d=2):
    r = compile_residual(expr, fields, coords, coefficients=list(coef_torch or {}))
    for path, model, forms in _models(n_channels, d):
        reps = _field_map(fields, forms)
        for name, e in (coef_sym or {}).items():
            reps[sympy.Function(name)(*coords)] = e
        want, scale = sympy_reference(expr if not isinstance(expr, list) else sympy.Matrix(expr), coords, reps, pts) if not isinstance(expr, list) else (None, None)
        got = r(model, torch.from_numpy(pts), **(coef_torch or {})).detach().numpy()
        if isinstance(expr, list):
            for j, ej in enumerate(expr):
                w, s = sympy_reference(ej, coords, reps, pts)
                np.testing.assert_array_less(np.abs(got[:, j] - w), 1e-8 * s + 1e-12)
        else:
            assert np.all(np.isfinite(want)), path
            np.testing.assert_array_less(np.abs(got - want), 1e-8 * np.maximum(scale, 1e-300) + 1e-12)


def test_poisson():
    u = Field("u", (X, Y))
    f = sympy.sin(3 * X) * Y
    _check(equations.poisson.poisson(u, f), [u], (X, Y), PTS2)
    _check(equations.poisson.poisson(u, "f"), [u], (X, Y), PTS2, {"f": SYM_M((X, Y))}, {"f": TORCH_M})
    _check(equations.poisson.laplacian_supervised(u, "lap"), [u], (X, Y), PTS2, {"lap": SYM_M((X, Y))}, {"lap": TORCH_M})
    g = equations.poisson.gradient_supervised(u, [X * Y, "gy"])
    _check(g, [u], (X, Y), PTS2, {"gy": SYM_M((X, Y))}, {"gy": TORCH_M})


def test_eikonal():
    u = Field("u", (X, Y))
    terms = equations.eikonal.sdf_constraints(u, normal=("nx", "ny"))
    assert {k: c.weight for k, c in terms.items()} == {"sdf": 3e3, "off_surface": 1e2, "normal": 1e2, "eikonal": 5e1}
    assert all(c.norm == "l1" for c in terms.values())
    nx, ny = sympy.cos(X + Y), sympy.sin(X + Y)
    tx = lambda x: torch.cos(x[:, 0] + x[:, 1])  # noqa: E731
    ty = lambda x: torch.sin(x[:, 0] + x[:, 1])  # noqa: E731
    for c in terms.values():
        _check(c.expr, [u], (X, Y), PTS2, {"nx": nx, "ny": ny}, {"nx": tx, "ny": ty})


@pytest.mark.parametrize("m", ["const", "expr", "named"])
def test_helmholtz_pml(m):
    u = Field("u", (X, Y), complex=True)
    mm = {"const": 1, "expr": SYM_M((X, Y)), "named": "m"}[m]
    expr = equations.helmholtz.helmholtz_pml(u, k=3, m=mm, x0=(0.1, -0.2), s2=sympy.Rational(1, 10))
    _check(expr, [u], (X, Y), PTS2, {"m": SYM_M((X, Y))}, {"m": TORCH_M} if m == "named" else None, n_channels=2)


def test_helmholtz_pml_matches_eq11_by_hand():
    """Outside the PML (|x|_inf < 0.5) the residual is Δu + k² m u + f; spot-check the stretch."""
    x, y = sympy.symbols("x y")
    e = equations.helmholtz.pml_stretch(x)
    assert e.subs(x, 0.3) == 1
    assert complex(e.subs(x, 0.75)) == pytest.approx(1 - 5j * (0.25 / 0.5) ** 2)
    assert complex(e.subs(x, -1)) == pytest.approx(1 - 5j)


def test_pml_settings_are_keywords_with_one_set_of_defaults():
    x = sympy.symbols("x")
    h = equations.helmholtz
    assert complex(h.pml_stretch(x, a0=2, L=1, inner=0).subs(x, 0.5)) == pytest.approx(1 - 0.5j)
    u = Field("u", (X, Y), complex=True)
    assert h.helmholtz_pml(u, k=3, **h.PML_DEFAULTS) == h.helmholtz_pml(u, k=3)
    assert h.helmholtz_scattered(u, 3, a0=2) != h.helmholtz_scattered(u, 3)
    with pytest.raises(TypeError, match="unknown PML setting"):
        h.helmholtz_pml(u, k=3, a00=1)
    with pytest.raises(TypeError, match="unknown PML setting"):
        h.helmholtz_scattered(u, 3, width=1)


def test_helmholtz_scattered():
    us = Field("us", (X, Y), complex=True)
    expr = equations.helmholtz.helmholtz_scattered_pml(us, k=2, m="m", s2=sympy.Rational(1, 5))
    _check(expr, [us], (X, Y), PTS2, {"m": SYM_M((X, Y)), "u0": _u0_sym((X, Y))},
           {"m": TORCH_M, "u0": _u0_torch}, n_channels=2)


def test_wave():
    u = Field("u", (X, Y, T))
    c = 1 + X**2 / 4
    pts = PTS3.copy()
    _check(equations.wave.wave(u, c), [u], (X, Y, T), pts, d=3)
    f = sympy.exp(-(X**2 + Y**2))
    ic = equations.wave.initial_conditions(u, f)
    pts[:, 2] = 0.0
    for e in ic:
        _check(e, [u], (X, Y, T), pts, d=3)
    cons = equations.wave.wave_constraints(u, "c", f)
    assert set(cons) == {"pde", "initial_value", "initial_velocity"}
