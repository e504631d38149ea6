"""The compiler's forward-Laplacian collapse: when it applies, and that it changes no number."""

import pytest
import sympy
import torch

from pinnsiren import Field, Siren, compile_residual
from pinnsiren.networks import MLP

x, y, t = sympy.symbols("x y t", real=True)
U2, V2 = Field("u", (x, y)), Field("v", (x, y))
W3 = Field("w", (x, y, t))
UC = Field("u", (x, y), complex=True)
C_NAMED = sympy.Function("c")(x, y, t)
M_NAMED = sympy.Function("m")(x, y, t)
UC3 = Field("u", (x, y, t), complex=True)


def _pml(c):
    l = sympy.Max(sympy.Abs(c) - sympy.Rational(1, 2), 0)
    return 1 - sympy.I * 5 * (2 * l) ** 2


EX, EY = _pml(x), _pml(y)
CASES = {
    # name: (expr, fields, coords, coefficients, collapsed groups expected)
    "laplacian": (U2.diff(x, 2) + U2.diff(y, 2) - sympy.sin(3 * x) * y, [U2], (x, y), [], 1),
    "weighted": (2 * U2.diff(x, 2) - (1 + x * y) * U2.diff(y, 2) + U2.diff(x) * U2, [U2], (x, y), [], 1),
    "wave": (W3.diff(t, 2) - (1 + x / 4) ** 2 * (W3.diff(x, 2) + W3.diff(y, 2)), [W3], (x, y, t), [], 1),
    "wave, named c": (W3.diff(t, 2) - C_NAMED**2 * (W3.diff(x, 2) + W3.diff(y, 2)), [W3], (x, y, t), ["c"], 1),
    "two fields": ([U2.diff(x, 2) + U2.diff(y, 2) + V2, V2.diff(x, 2) + V2.diff(y, 2) - U2 * V2],
                   [U2, V2], (x, y), [], 1),
    # complex per-point weights: two real slots (real and imaginary weights) instead of three
    "complex weights, named m": (M_NAMED * UC3.diff(x, 2) + UC3.diff(y, 2) - 1j * UC3.diff(t, 2) + 3 * UC3,
                                 [UC3], (x, y, t), ["m"], 1),
    "complex weights, real field": (sympy.I * W3.diff(x, 2) + W3.diff(y, 2) + x * W3.diff(t, 2), [W3], (x, y, t), [], 1),
    # not collapsed: nonlinear in u_xx; mixed only; complex PML weights save no slot
    "nonlinear": (U2.diff(x, 2) ** 2 + U2.diff(y, 2), [U2], (x, y), [], 0),
    "coupled": (U2 * U2.diff(x, 2) + U2.diff(y, 2), [U2], (x, y), [], 0),
    "mixed": (U2.diff(x, y) + U2.diff(x), [U2], (x, y), [], 0),
    "pml": (sympy.diff(EY / EX * UC.diff(x), x) + sympy.diff(EX / EY * UC.diff(y), y) + 400 * EX * EY * UC,
            [UC], (x, y), [], 0),
}


def _values(coefs, d):
    vals = {}
    if "c" in coefs:
        vals["c"] = lambda p: 1 + 0.3 * torch.sin(p[:, 0]) * p[:, 2]
    if "m" in coefs:
        vals["m"] = lambda p: (1 + 0.5 * p[:, 0] ** 2) * (1 - 0.7j * p[:, 1]) + p[:, 2]
    return vals


def _grads(r, model):
    g = torch.autograd.grad(r.abs().pow(2).sum(), list(model.parameters()), allow_unused=True)
    return [torch.zeros_like(p) if a is None else a for a, p in zip(g, model.parameters())]


@pytest.mark.parametrize("name", list(CASES))
def test_collapsed_equals_uncollapsed(name):
    """Collapsed residual == the one requesting every second derivative == autograd;
    values and parameter gradients; fused SIREN path, generic path, an MLP, autograd engine."""
    expr, fields, coords, coefs, groups = CASES[name]
    d = len(coords)
    r = compile_residual(expr, fields, coords, coefficients=coefs)
    full = compile_residual(expr, fields, coords, coefficients=coefs, collapse=False)
    assert len(r.laplacians) == groups, r.laplacians
    assert len(full.laplacians) == 0
    if groups:
        assert not any(sum(a) == 2 and max(a) == 2 for _, a in r.needs), r.needs
    C = sum(2 if f in (UC, UC3) else 1 for f in fields)
    torch.manual_seed(5)
    pts = torch.rand(37, d, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 2 - 1
    vals = _values(coefs, d)
    for model in (Siren(d, C, 20, 2).double(), MLP(d, C, 12, 1, "tanh").double()):
        ref = compile_residual(expr, fields, coords, coefficients=coefs, engine="autograd", collapse=False)(model, pts, **vals)
        g_ref = _grads(ref, model)
        auto = compile_residual(expr, fields, coords, coefficients=coefs, engine="autograd")
        for label, fn, p in (("collapsed", r, pts), ("collapsed, x with grad", r, pts.clone().requires_grad_(True)),
                             ("full jet", full, pts), ("collapsed, autograd engine", auto, pts)):
            got = fn(model, p, **vals)
            scale = ref.abs().max().item()
            assert torch.allclose(got, ref, rtol=0, atol=1e-10 * scale + 1e-12), (label, type(model).__name__)
            for a, b in zip(_grads(got, model), g_ref):
                assert torch.allclose(a, b, rtol=1e-8, atol=1e-10 * (b.abs().max().item() + 1e-12)), label


def test_learnable_wave_speed_gets_its_gradient_through_the_slot():
    c = sympy.Symbol("c")
    expr = W3.diff(t, 2) - c**2 * (1 + x) * (W3.diff(x, 2) + W3.diff(y, 2))
    r = compile_residual(expr, [W3], (x, y, t), parameters=[c])
    full = compile_residual(expr, [W3], (x, y, t), parameters=[c], collapse=False)
    assert len(r.laplacians) == 1
    torch.manual_seed(2)
    model = Siren(3, 1, 16, 1).double()
    pts = torch.rand(25, 3, dtype=torch.float64)
    grads = []
    for fn in (r, full):
        cp = torch.tensor(1.3, dtype=torch.float64, requires_grad=True)
        (g,) = torch.autograd.grad(fn(model, pts, c=cp).pow(2).sum(), cp)
        grads.append(g)
    assert torch.allclose(grads[0], grads[1], rtol=1e-10)


def test_channel_count_checked_once_per_model_without_extra_forward():
    """The layout check runs on a model's first call only, and needs no forward of its own."""
    r = compile_residual(U2.diff(x, 2) + U2.diff(y, 2), [U2], (x, y))
    model = Siren(2, 1, 8, 1).double()
    calls = []
    model.register_forward_hook(lambda *a: calls.append(1))
    pts = torch.rand(4, 2, dtype=torch.float64)
    r(model, pts)
    r(model, pts)
    assert calls == []  # the jet path never calls forward
    assert model in r._program.checked_models

    class Bare(torch.nn.Module):  # no out_features: the engine checks the count where it has the output
        def forward(self, p):
            return torch.stack([p[:, 0] ** 3, p[:, 1]], 1)

    with pytest.raises(ValueError, match=r"model has 2 output channels but the fields u \(real: 1\) need 1"):
        r(Bare(), pts)
