"""Normalised coordinates (chain rule against SymPy) and exact Dirichlet transforms."""

import math

import pytest
import sympy
import torch
from torch import nn

from pinnsiren import (
    Ball, Box, Constraint, ExactDirichlet, Field, Normalized, Problem, Siren, SpaceTime, derivatives, transfinite,
)
from pinnsiren.adf import r_and
from pinnsiren.jet_keys import Laplacian

x, y, t = sympy.symbols("x y t")
KEYS2 = [(0, (0, 0)), (0, (1, 0)), (0, (0, 1)), (0, (2, 0)), (0, (1, 1)), (0, (0, 2))]


def _siren_expr(net: Siren, xi):
    """The SIREN as a SymPy expression of its inputs (float64 weights)."""
    h = list(xi)
    layers = list(net.layers)
    for layer, w0 in zip(layers[:-1], net.omegas):
        W, b = layer.weight.detach().double().tolist(), layer.bias.detach().double().tolist()
        h = [sympy.sin(w0 * (sum(wij * hj for wij, hj in zip(Wi, h)) + bi)) for Wi, bi in zip(W, b)]
    W, b = layers[-1].weight.detach().double().tolist(), layers[-1].bias.detach().double().tolist()
    return [sum(wij * hj for wij, hj in zip(Wi, h)) + bi for Wi, bi in zip(W, b)]


def _sympy_derivs(expr, pts, coords=(x, t)):
    out = {}
    for c, a in KEYS2:
        e = expr
        for s, k in zip(coords, a):
            if k:
                e = sympy.diff(e, s, k)
        out[(c, a)] = torch.tensor([float(e.subs(dict(zip(coords, p)))) for p in pts.tolist()], dtype=torch.float64)
    return out


def test_normalized_chain_rule_against_sympy_jet_path():
    torch.manual_seed(3)
    net = Siren(2, 1, 5, 1, first_omega_0=2.0, hidden_omega_0=2.0).double()
    bounds = [(-0.5, 0.5), (0.0, 5.0)]  # space and a long time interval
    m = Normalized(net, bounds, scale=0.7, shift=0.2)
    xi = [(x - 0.0) / 0.5, (t - 2.5) / 2.5]
    u = 0.2 + 0.7 * _siren_expr(net, xi)[0]
    pts = torch.tensor([[0.1, 0.3], [-0.4, 4.9], [0.25, 2.0], [0.0, 0.0]], dtype=torch.float64)
    want = _sympy_derivs(u, pts)
    got = derivatives(m, pts, KEYS2)  # jet path inside
    for k in KEYS2:
        torch.testing.assert_close(got[k], want[k], rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(m(pts)[:, 0], want[(0, (0, 0))], rtol=1e-12, atol=1e-14)
    # the t-derivative is scaled by 1 / 2.5 and the x-derivative by 1 / 0.5
    raw = derivatives(net, m.normalize(pts), KEYS2)
    torch.testing.assert_close(got[(0, (0, 2))], 0.7 * raw[(0, (0, 2))] / 2.5**2)
    torch.testing.assert_close(got[(0, (1, 1))], 0.7 * raw[(0, (1, 1))] / (0.5 * 2.5))


class _Known(nn.Module):
    """A closed-form network (autograd path): f(xi) = sin(2 xi_0) exp(xi_1) + xi_0^2 xi_1."""

    out_features = 1

    def __init__(self):
        super().__init__()
        self.p = nn.Parameter(torch.ones((), dtype=torch.float64))

    def forward(self, q):
        return (self.p * torch.sin(2 * q[:, 0]) * torch.exp(q[:, 1]) + q[:, 0] ** 2 * q[:, 1])[:, None]


def test_normalized_chain_rule_against_sympy_autograd_path():
    m = Normalized(_Known(), [(1.0, 3.0), (-4.0, 0.0)])
    a, b = (x - 2.0) / 1.0, (t + 2.0) / 2.0
    u = sympy.sin(2 * a) * sympy.exp(b) + a**2 * b
    pts = torch.tensor([[1.5, -1.0], [2.9, -3.5], [2.0, 0.0]], dtype=torch.float64)
    want = _sympy_derivs(u, pts)
    got = derivatives(m, pts, KEYS2)
    for k in KEYS2:
        torch.testing.assert_close(got[k], want[k], rtol=1e-12, atol=1e-12)


def test_normalized_residual_in_physical_coordinates():
    """A compiled PDE in physical coordinates gets physical derivatives from a normalised model."""
    u = Field("u", (x, t))
    m = Normalized(_Known(), [(1.0, 3.0), (-4.0, 0.0)])
    prob = Problem([u], (x, t), [Constraint(u.diff(t) - 0.1 * u.diff(x, 2), Box([(1, 3), (-4, 0)]), n=16, name="pde")])
    pts = torch.tensor([[1.5, -1.0], [2.9, -3.5]], dtype=torch.float64)
    a, b = (x - 2.0), (t + 2.0) / 2.0
    ue = sympy.sin(2 * a) * sympy.exp(b) + a**2 * b
    r = ue.diff(t) - 0.1 * ue.diff(x, 2)
    want = torch.tensor([float(r.subs({x: p[0], t: p[1]})) for p in pts.tolist()], dtype=torch.float64)
    torch.testing.assert_close(prob.residual("pde", m, pts), want, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="lo < hi"):
        Normalized(_Known(), [(1.0, 1.0)])


def _square_minus_discs():
    centres = [(a, b) for a in (0.3, -0.3) for b in (0.3, -0.3)]
    holes = [Ball(c, 0.1) for c in centres]
    sq = Box([(-0.5, 0.5)] * 2)
    dom = sq
    for h in holes:
        dom = dom - h
    return sq, holes, dom


def test_exact_dirichlet_holds_on_boundary_samples_and_matches_autograd():
    sq, holes, dom = _square_minus_discs()
    phi = dom.adf((x, y))
    hphi = None
    for h in holes:
        hphi = -h.adf((x, y)) if hphi is None else r_and(hphi, -h.adf((x, y)))
    g = transfinite([(sq.adf((x, y)), 1), (hphi, 0)])
    torch.manual_seed(0)
    model = ExactDirichlet(Normalized(Siren(2, 1, 32, 2).double(), dom), (x, y), phi, g)
    gen = torch.Generator().manual_seed(1)
    xb, _ = dom.boundary().sample(2000, 0, gen)
    on_sq = (xb.abs().max(1).values - 0.5).abs() < 1e-12
    ub = model(xb)[:, 0]
    torch.testing.assert_close(ub, on_sq.double(), rtol=0, atol=1e-10)  # u = 1 on the edges, 0 on the circles
    # the ADF: zero on the boundary, positive inside, unit normal derivative on smooth parts
    xi, _ = dom.sample(500, 0, gen)
    f = model.phi.fn
    assert f(None, xb).abs().max().item() < 1e-12 and f(None, xi).min().item() > 0
    # the transform is not trivial inside
    assert model(xi)[:, 0].std().item() > 1e-3
    # engine (jet inside, Leibniz outside) against autograd through forward
    p = xi[:40]
    got = derivatives(model, p, KEYS2)
    q = p.clone().requires_grad_(True)
    u = model(q)[:, 0]
    gr = torch.autograd.grad(u.sum(), q, create_graph=True)[0]
    hx = torch.autograd.grad(gr[:, 0].sum(), q, retain_graph=True)[0]
    hy = torch.autograd.grad(gr[:, 1].sum(), q)[0]
    want = {(0, (0, 0)): u, (0, (1, 0)): gr[:, 0], (0, (0, 1)): gr[:, 1], (0, (2, 0)): hx[:, 0],
            (0, (1, 1)): hx[:, 1], (0, (0, 2)): hy[:, 1]}
    for k in KEYS2:
        torch.testing.assert_close(got[k], want[k].detach(), rtol=1e-9, atol=1e-9)
    # gradients reach the network parameters through the transform
    sum((got[k] ** 2).mean() for k in KEYS2).backward()
    assert model.net.net.layers[0].weight.grad.abs().sum().item() > 0


def test_exact_initial_and_boundary_data_space_time():
    st = SpaceTime(Box([(-1, 1)]), (0.0, 1.0))
    torch.manual_seed(2)
    g0 = -sympy.sin(sympy.pi * x)
    model = ExactDirichlet(Normalized(Siren(2, 1, 16, 2).double(), [(-1, 1), (0, 1)]), (x, t), st.adf((x, t)), g0)
    gen = torch.Generator().manual_seed(3)
    p0, _ = st.initial().sample(300, 0, gen)
    torch.testing.assert_close(model(p0)[:, 0], -torch.sin(math.pi * p0[:, 0]), rtol=0, atol=1e-12)
    pb, _ = st.boundary().sample(300, 0, gen)
    assert model(pb)[:, 0].abs().max().item() < 1e-12
    # a PDE residual with the transform trains the inner network only
    u = Field("u", (x, t))
    prob = Problem([u], (x, t), [Constraint(u.diff(t) + u * u.diff(x) - 0.01 / math.pi * u.diff(x, 2), st, n=64)])
    prob.validate(model)
    L = prob.losses(model, 0, gen)
    assert math.isfinite(L["c0"].item()) and L["c0"].item() > 0
    # only some channels, and a wrong number of data expressions
    with pytest.raises(ValueError, match="2 data expressions for 1 channels"):
        ExactDirichlet(Siren(2, 1, 8, 1), (x, t), t, [0, 1])
    with pytest.raises(ValueError, match="not coordinates"):
        ExactDirichlet(Siren(2, 1, 8, 1), (x, t), t * y)


def test_adf_zero_on_boundary_positive_inside_and_normalised():
    from pinnsiren import Polygon
    from pinnsiren.compiler import compile_residual

    gen = torch.Generator().manual_seed(4)
    shapes = {
        "square_minus_discs": _square_minus_discs()[2],
        "convex_polygon": Polygon([[0, 0], [2, 0], [2.5, 1], [1, 2], [-0.5, 1]]),
        "union_of_discs": Ball([0, 0], 0.5) | Ball([0.6, 0], 0.5),
        "box_and_disc": Box([(-1, 1), (-1, 1)]) & Ball([1, 1], 1.2),
        # a non-convex L-shape as a union of overlapping convex polygons
        "l_shape": Polygon([[0, 0], [2, 0], [2, 1], [0, 1]]) | Polygon([[0, 0], [1, 0], [1, 2], [0, 2]]),
    }
    for name, s in shapes.items():
        phi = compile_residual(s.adf((x, y)), [], (x, y))
        xb, data = s.boundary().sample(500, 0, gen)
        xi, _ = s.sample(500, 0, gen)
        assert phi(None, xb).abs().max().item() < 1e-9, name
        assert phi(None, xi).min().item() > 0, name
        # outside: negative
        assert phi(None, xb + 1e-3 * data["normal"]).max().item() < 0, name
        pn = compile_residual(s.adf((x, y), normalize=True), [], (x, y))
        assert pn(None, xi).max().item() == pytest.approx(1.0, abs=0.05), name
    # the disc's ADF has unit normal derivative on its circle
    d = Ball([0.2, -0.1], 0.3).adf((x, y))
    grad = [sympy.diff(d, c).subs({x: 0.5, y: -0.1}) for c in (x, y)]
    assert float(grad[0]) == pytest.approx(-1.0) and float(grad[1]) == pytest.approx(0.0)
    # the smooth (polynomial) box ADF: zero on the faces, unit normal derivative at a square's face midpoints
    b = Box([(-1, 3), (0, 1)])
    sb = compile_residual(b.adf((x, y), smooth=True), [], (x, y))
    xb, _ = b.boundary().sample(200, 0, gen)
    assert sb(None, xb).abs().max().item() < 1e-12
    # peak: geometric mean of the quarter widths, sqrt(1 * 0.25)
    assert sb(None, torch.tensor([[1.0, 0.5]], dtype=torch.float64)).item() == pytest.approx(0.5)
    sq = Box([(-0.5, 0.5)] * 2).adf((x, y), smooth=True)
    assert float(sympy.diff(sq, x).subs({x: -0.5, y: 0})) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="for a Box"):
        Ball([0, 0], 1).adf((x, y), smooth=True)
    with pytest.raises(NotImplementedError, match="convex"):
        Polygon([[0, 0], [2, 0], [2, 1], [1, 1], [1, 2], [0, 2]]).adf((x, y))


@pytest.mark.parametrize("wrap", ["normalized", "exact+normalized"])
def test_laplacian_keys_pass_through_wrappers_as_collapsed_slots(wrap, monkeypatch):
    """A Laplacian key (constant and per-point weights) through ``Normalized`` and
    ``ExactDirichlet(Normalized(...))``: the Siren inside is asked for a Laplacian
    (its collapsed slot), and values and parameter gradients equal nested autograd
    through the wrapper's forward."""
    from pinnsiren import jet, transforms

    torch.manual_seed(3)
    net = Siren(2, 2, 24, 2).double()
    model = Normalized(net, [(-0.5, 2.5), (0.25, 0.75)], scale=(1.7, -0.4), shift=(0.3, 2.0))
    if wrap != "normalized":
        model = ExactDirichlet(model, (x, t), (x + 0.5) * (2.5 - x) * (t - 0.25), [x * t + 1, 0], channels=[0, 1])
    gen = torch.Generator().manual_seed(8)
    p = torch.rand(50, 2, dtype=torch.float64, generator=gen) * torch.tensor([3.0, 0.5], dtype=torch.float64) \
        + torch.tensor([-0.5, 0.25], dtype=torch.float64)
    wx = 1 + p[:, 0] ** 2
    laps = [Laplacian((1.0, 1.0)), Laplacian((-2.0, 0.5)), Laplacian((wx, -wx))]
    keys = [(c, lap) for lap in laps for c in (0, 1)] + [(1, (1, 0))]
    seen = []
    engine = jet.derivatives

    def spy(m, pts, needs, method="auto", channels=None):
        if m is net:
            seen.extend(a for _, a in needs)
        return engine(m, pts, needs, method=method, channels=channels)

    monkeypatch.setattr(transforms, "derivatives", spy)
    got = derivatives(model, p, keys)
    assert sum(isinstance(a, Laplacian) for a in set(seen)) == len(laps)  # one collapsed slot per request
    assert not any(not isinstance(a, Laplacian) and max(a) == 2 for a in seen)  # no pure seconds asked
    q = p.clone().requires_grad_(True)
    u = model(q)
    want = {}
    for c in (0, 1):
        gr = torch.autograd.grad(u[:, c].sum(), q, create_graph=True)[0]
        hxx = torch.autograd.grad(gr[:, 0].sum(), q, create_graph=True)[0][:, 0]
        htt = torch.autograd.grad(gr[:, 1].sum(), q, create_graph=True)[0][:, 1]
        for lap in laps:
            w0, w1 = lap.weights
            want[(c, lap)] = w0 * hxx + w1 * htt
        if c == 1:
            want[(1, (1, 0))] = gr[:, 0]
    probe = {k: torch.randn(50, dtype=torch.float64, generator=gen) for k in keys}
    params = list(net.parameters())
    g_got = torch.autograd.grad(sum((probe[k] * got[k]).sum() for k in keys), params)
    g_want = torch.autograd.grad(sum((probe[k] * want[k]).sum() for k in keys), params, allow_unused=True)
    for k in keys:
        scale = want[k].abs().max().item()
        torch.testing.assert_close(got[k], want[k], rtol=0, atol=1e-10 * scale)
    for a, b in zip(g_got, g_want):
        b = torch.zeros_like(a) if b is None else b  # the output bias: no derivative depends on it
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10 * (b.abs().max().item() + 1e-12))
