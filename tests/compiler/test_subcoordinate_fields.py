"""Fields over a subset of the coordinates: Field("a", (x, y)) in a problem over (x, y, t).

The compiler evaluates that field's channels with the left-out coordinates set
to LEFT_OUT_VALUE (0), so the field cannot depend on them and its derivatives
along them are exactly zero. Checked against closed forms.
"""

import math

import pytest
import sympy

torch = pytest.importorskip("torch")

from pinnsiren import Field, Siren  # noqa: E402
from pinnsiren.compiler import compile_residual  # noqa: E402
from pinnsiren.compiler_handlers import CompileError  # noqa: E402
from pinnsiren.compiler_layout import LEFT_OUT_VALUE, field_axes, project  # noqa: E402

x, y, t = sympy.symbols("x y t")
U = Field("u", (x, y, t))
A = Field("a", (x, y))


class Closed(torch.nn.Module):
    """Channels u = sin(x) cos(2y) e^{-t} and c1 = x^2 y + cos(y) + t^2 (depends on t: the compiler must not see it)."""

    def __init__(self):
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros((), dtype=torch.float64))

    def forward(self, p):
        X, Y, T = p.unbind(1)
        u = torch.sin(X) * torch.cos(2 * Y) * torch.exp(-T)
        c1 = X ** 2 * Y + torch.cos(Y) + T ** 2
        return torch.stack([u, c1], 1) + 0 * self.dummy


def _pts(n=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, generator=g, dtype=torch.float64) * 2 - 1


@pytest.mark.parametrize("engine", ["autograd", "auto"])
def test_values_and_derivatives_closed_form(engine):
    p = _pts()
    X, Y, T = p.unbind(1)
    r = compile_residual([A, A.diff(x), A.diff(y, 2), A.diff(x, y), A.diff(t), sympy.Derivative(A, t, x)],
                         [U, A], (x, y, t), engine=engine)
    got = r(Closed(), p)
    t0 = LEFT_OUT_VALUE
    want = torch.stack([X ** 2 * Y + torch.cos(Y) + t0 ** 2, 2 * X * Y, -torch.cos(Y), 2 * X,
                        torch.zeros_like(X), torch.zeros_like(X)], 1)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_jet_and_autograd_agree_on_a_siren():
    torch.manual_seed(1)
    model = Siren(3, 2, 24, 2).double()
    lap = U.diff(x, 2) + U.diff(y, 2)
    exprs = [U.diff(t) - A * lap - A.diff(x) * U.diff(x), A.diff(x, 2) + A.diff(y, 2), A.diff(t)]
    p = _pts(seed=5)
    got = {e: compile_residual(exprs, [U, A], (x, y, t), engine=e)(model, p) for e in ("jet", "autograd")}
    torch.testing.assert_close(got["jet"], got["autograd"], rtol=1e-9, atol=1e-9)
    assert got["jet"][:, 2].abs().max().item() == 0.0


def test_mixed_residual_closed_form():
    """u_t - a (u_xx + u_yy): full field at the points, a at (x, y, 0)."""
    p = _pts(seed=1)
    X, Y, T = p.unbind(1)
    lap = U.diff(x, 2) + U.diff(y, 2)
    r = compile_residual(sympy.Eq(U.diff(t), A * lap), [U, A], (x, y, t))
    u = torch.sin(X) * torch.cos(2 * Y) * torch.exp(-T)
    a = X ** 2 * Y + torch.cos(Y)
    want = -u - a * (-5 * u)
    torch.testing.assert_close(r(Closed(), p), want, rtol=1e-12, atol=1e-12)


def test_siren_field_is_independent_of_left_out_coordinate():
    torch.manual_seed(0)
    model = Siren(3, 2, 32, 2).double()
    r = compile_residual([A, A.diff(x, 2) + A.diff(y, 2)], [U, A], (x, y, t))
    p = _pts(seed=2)
    q = p.clone()
    q[:, 2] = torch.linspace(-1, 1, len(p), dtype=torch.float64)
    v1, v2 = r(model, p), r(model, q)
    torch.testing.assert_close(v1, v2, rtol=0, atol=0)
    # and equals the model's channel at t = LEFT_OUT_VALUE, its Laplacian by autograd
    z = project(p, (0, 1)).requires_grad_(True)
    a = model(z)[:, 1]
    g = torch.autograd.grad(a.sum(), z, create_graph=True)[0]
    lap = sum(torch.autograd.grad(g[:, k].sum(), z, retain_graph=True)[0][:, k] for k in (0, 1))
    torch.testing.assert_close(v1[:, 0], a.detach(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(v1[:, 1], lap.detach(), rtol=1e-9, atol=1e-9)
    # the gradient w.r.t. the parameters flows through the projected evaluation
    r(model, p)[:, 0].sum().backward()
    assert all(q.grad is not None for q in model.parameters())


def test_complex_subfield_and_field_axes():
    b = Field("b", (y,), complex=True)
    assert field_axes(b, (x, y, t)) == (1,) and field_axes(U, (x, y, t)) == (0, 1, 2)
    r = compile_residual(b.diff(y) - sympy.I * b, [U, b], (x, y, t))

    class M(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones((), dtype=torch.float64))

        def forward(self, p):  # b = cos(y) + i sin(y) + x (the x part must be projected away)
            return torch.stack([p[:, 0], torch.cos(p[:, 1]) + p[:, 0], torch.sin(p[:, 1]) * self.w], 1)

    got = r(M(), _pts(seed=3))
    assert got.abs().max().item() < 1e-12  # d/dy e^{iy} = i e^{iy}


def test_bad_subsets_refused():
    with pytest.raises(CompileError, match="some of them in that order"):
        compile_residual(Field("c", (y, x)), [U, Field("c", (y, x))], (x, y, t))
    with pytest.raises(CompileError, match="is applied to"):
        compile_residual(A.func(x, t), [U, A], (x, y, t))


def test_known_coefficient_over_subset():
    k = sympy.Function("k")(x, y)
    r = compile_residual(U.diff(t) - k * U.diff(x, 2), [U, A], (x, y, t), coefficients=[k])
    p = _pts(seed=4)
    X, Y, T = p.unbind(1)
    kv = 1 + X * Y
    u = torch.sin(X) * torch.cos(2 * Y) * torch.exp(-T)
    torch.testing.assert_close(r(Closed(), p, k=lambda q: 1 + q[:, 0] * q[:, 1]), -u + kv * u, rtol=1e-12, atol=1e-12)
    assert math.isfinite(float(r(Closed(), p, k=2.0).sum()))
