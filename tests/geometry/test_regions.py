"""Composed regions: volumes, boundary measures and normals against closed forms."""

import math

import numpy as np
import pytest
import sympy
import torch
from torch import nn

from pinnsiren import (
    Ball, Box, Constraint, Field, Polygon, Problem, Siren, SpaceTime, normal, normal_derivative,
)

x, y, z, t = sympy.symbols("x y z t")


def _g(seed=0):
    return torch.Generator().manual_seed(seed)


def square_minus_discs():
    dom = Box([(-0.5, 0.5)] * 2)
    for cx in (0.3, -0.3):
        for cy in (0.3, -0.3):
            dom = dom - Ball([cx, cy], 0.1)
    return dom


def _check_normals(region, xb, nrm, eps=1e-6, corner_tol=1e-4):
    """Unit length; stepping along +n leaves the region, along -n enters it (away from corners)."""
    torch.testing.assert_close(nrm.norm(dim=1), torch.ones(len(nrm), dtype=torch.float64), rtol=0, atol=1e-12)
    out = region.contains(xb + eps * nrm)
    inn = region.contains(xb - eps * nrm)
    # points within corner_tol of a corner may step across another face: allow a tiny fraction
    assert (~out).double().mean().item() >= 0.999
    assert inn.double().mean().item() >= 0.999


def test_square_minus_four_discs_area_length_and_normals():
    dom = square_minus_discs()
    g = _g(1)
    xi, data = dom.sample(5000, 0, g)
    assert xi.shape == (5000, 2) and data == {}
    assert bool(dom.contains(xi).all())  # no point wasted
    # the holes are empty and the rest is uniformly covered: area fractions
    area = 1 - 4 * math.pi * 0.01
    assert dom.volume(400_000, 0, g) == pytest.approx(area, abs=0.004)
    # fraction of interior points with |x| < 0.2 (no hole there): 0.16 / area
    frac = (xi.abs().max(1).values < 0.2).double().mean().item()
    assert frac == pytest.approx(0.16 / area, abs=0.015)
    bnd = dom.boundary()
    assert bnd.measure(200_000, 0, g) == pytest.approx(4 + 8 * math.pi * 0.1, rel=1e-12)  # circles fully inside
    xb, data = bnd.sample(20_000, 0, g)
    nrm = data["normal"]
    assert xb.shape == nrm.shape == (20_000, 2)
    on_circle = ((xb.abs() - 0.3).norm(dim=1) - 0.1).abs() < 1e-12
    on_square = (xb.abs().max(1).values - 0.5).abs() < 1e-15
    assert bool((on_circle | on_square).all())
    # uniform by length: share of the circles
    share = 0.8 * math.pi / (4 + 0.8 * math.pi)
    assert on_circle.double().mean().item() == pytest.approx(share, abs=0.012)
    # on a hole the outward normal points to the hole's centre
    c = xb[on_circle].sign() * 0.3
    torch.testing.assert_close(nrm[on_circle], (c - xb[on_circle]) / 0.1, rtol=0, atol=1e-12)
    # on the square it is the face normal
    sq = xb[on_square]
    ax = sq.abs().argmax(1)
    want = torch.zeros_like(sq)
    want[torch.arange(len(sq)), ax] = sq[torch.arange(len(sq)), ax].sign()
    torch.testing.assert_close(nrm[on_square], want, rtol=0, atol=0)
    _check_normals(dom, xb, nrm)


def test_union_of_overlapping_discs():
    r, d = 0.5, 0.6
    U = Ball([0, 0], r) | Ball([d, 0], r)
    lens = 2 * r * r * math.acos(d / (2 * r)) - 0.5 * d * math.sqrt(4 * r * r - d * d)
    assert U.volume(400_000, 0, _g(2)) == pytest.approx(2 * math.pi * r * r - lens, rel=0.006)
    perim = 4 * r * (math.pi - math.acos(d / (2 * r)))
    assert U.boundary().measure(200_000, 0, _g(3)) == pytest.approx(perim, rel=0.006)
    xb, data = U.boundary().sample(4000, 0, _g(4))
    # no boundary point lies inside the other disc
    assert bool(((xb.norm(dim=1) >= r - 1e-12) & ((xb - torch.tensor([d, 0.0], dtype=torch.float64)).norm(dim=1) >= r - 1e-12)).all())
    _check_normals(U, xb, data["normal"])
    # intersection = the lens, its boundary = two arcs of angle 2 acos(d / 2r)
    L = Ball([0, 0], r) & Ball([d, 0], r)
    assert L.volume(400_000, 0, _g(5)) == pytest.approx(lens, rel=0.01)
    assert L.boundary().measure(200_000, 0, _g(6)) == pytest.approx(4 * r * math.acos(d / (2 * r)), rel=0.006)
    xb, data = L.boundary().sample(3000, 0, _g(7))
    _check_normals(L, xb, data["normal"])


def test_polygon_area_by_shoelace_length_and_normals():
    verts = np.array([[0, 0], [2, 0], [2, 1], [1, 1], [1, 2], [0, 2]], dtype=float)[::-1]  # clockwise: L-shape
    P = Polygon(verts)
    shoelace = 0.5 * abs(np.dot(verts[:, 0], np.roll(verts[:, 1], -1)) - np.dot(verts[:, 1], np.roll(verts[:, 0], -1)))
    assert P.area == pytest.approx(shoelace) and shoelace == 3.0
    assert Shape_volume(P) == pytest.approx(3.0, abs=0.02)
    xi, _ = P.sample(3000, 0, _g(8))
    assert bool(((xi[:, 0] <= 1 + 1e-12) | (xi[:, 1] <= 1 + 1e-12)).all())  # never in the cut-out corner
    assert P.boundary().measure(100_000, 0, _g(9)) == pytest.approx(8.0)
    xb, data = P.boundary().sample(4000, 0, _g(10))
    _check_normals(P, xb, data["normal"])
    # the inner corner edges have normals +x (x = 1, 1 < y < 2) and +y (y = 1, 1 < x < 2)
    m = ((xb[:, 0] - 1).abs() < 1e-12) & (xb[:, 1] > 1)
    torch.testing.assert_close(data["normal"][m], torch.tensor([[1.0, 0.0]], dtype=torch.float64).expand(int(m.sum()), 2))
    # a triangle minus a disc inside it
    T = Polygon([[0, 0], [1, 0], [0, 1]]) - Ball([0.25, 0.25], 0.1)
    assert T.volume(400_000, 0, _g(11)) == pytest.approx(0.5 - math.pi * 0.01, abs=0.003)


def Shape_volume(s):
    from pinnsiren.geometry import Shape

    return Shape.volume(s, 400_000, 0, _g(12))  # Monte Carlo, not the closed form


def test_ball_minus_box_in_3d():
    B = Ball([0, 0, 0], 1.0) - Box([(0, 2)] * 3)  # remove one octant
    assert B.volume(400_000, 0, _g(13)) == pytest.approx(7 / 8 * 4 / 3 * math.pi, rel=0.01)
    area = 7 / 8 * 4 * math.pi + 3 * math.pi / 4
    assert B.boundary().measure(300_000, 0, _g(14)) == pytest.approx(area, rel=0.01)
    xb, data = B.boundary().sample(6000, 0, _g(15))
    nrm = data["normal"]
    _check_normals(B, xb, nrm)
    flat = xb.abs().min(1).values < 1e-15  # on a cut face: normal points into the removed octant
    assert flat.double().mean().item() == pytest.approx((3 * math.pi / 4) / area, abs=0.02)
    ax = xb[flat].abs().argmin(1)
    torch.testing.assert_close(nrm[flat][torch.arange(int(flat.sum())), ax], torch.ones(int(flat.sum()), dtype=torch.float64))


def test_space_time_parts():
    st = SpaceTime(Box([(-1, 1)]), (0.0, 2.0))
    p, _ = st.sample(1000, 0, _g(16))
    assert p.shape == (1000, 2) and p[:, 1].min() >= 0 and p[:, 1].max() <= 2
    p, d = st.boundary().sample(500, 0, _g(17))
    assert bool((p[:, 0].abs() == 1).all())
    torch.testing.assert_close(d["normal"], torch.stack([p[:, 0], torch.zeros(500, dtype=torch.float64)], 1))
    p, d = st.initial().sample(200, 0, _g(18))
    assert bool((p[:, 1] == 0).all()) and bool((d["normal"][:, 1] == -1).all())
    st2 = SpaceTime(Ball([0, 0], 1), (0, 1), t_index=0)
    p, d = st2.boundary().sample(300, 0, _g(19))
    torch.testing.assert_close(p[:, 1:].norm(dim=1), torch.ones(300, dtype=torch.float64))
    assert bool((d["normal"][:, 0] == 0).all())


def test_neumann_condition_is_one_line_with_normals():
    u = Field("u", (x, y))
    dom = square_minus_discs()
    nx, ny = normal((x, y))
    c = Constraint(normal_derivative(u, (x, y)) - x * nx, dom.boundary(), n=64, name="neumann")
    prob = Problem([u], (x, y), [c, Constraint(u, dom, n=8, name="pde")])
    torch.manual_seed(0)
    model = Siren(2, 1, 16, 1).double()
    prob.validate(model)
    L = prob.losses(model, 0, _g(20))
    xb, data = dom.boundary().sample(64, 0, _g(20))
    p = xb.clone().requires_grad_(True)
    grad = torch.autograd.grad(model(p)[:, 0].sum(), p)[0]
    n = data["normal"]
    want = (((grad * n).sum(1) - xb[:, 0] * n[:, 0]) ** 2).mean()
    torch.testing.assert_close(L["neumann"], want, rtol=1e-10, atol=0)
    # box faces (Box.boundary()) carry normals too
    xb, data = Box([(-1, 1), (0, 2)]).boundary().sample(100, 0, _g(21))
    _check_normals(Box([(-1, 1), (0, 2)]), xb, data["normal"])


class _Fn(nn.Module):
    def __init__(self, f):
        super().__init__()
        self.f = f
        self.dummy = nn.Parameter(torch.zeros((), dtype=torch.float64))

    def forward(self, p):
        return self.f(p)[:, None] + 0 * self.dummy


def test_periodic_pair_by_direct_evaluation():
    u = Field("u", (x, y))
    left = Box([(-1, 1), (-1, 1)]).boundary(faces=[(0, 0)])
    c = Constraint([u, u.diff(x)], left, n=50, pair=(2, 0), name="per")
    prob = Problem([u], (x, y), [c])
    periodic = _Fn(lambda p: torch.sin(math.pi * p[:, 0]) * torch.exp(p[:, 1]) + p[:, 1] ** 2)
    assert prob.losses(periodic, 0, _g(22))["per"].item() < 1e-28
    # u = x + y: u(1, y) - u(-1, y) = 2, u_x equal: loss = 4
    lin = _Fn(lambda p: p[:, 0] + p[:, 1])
    assert prob.losses(lin, 0, _g(23))["per"].item() == pytest.approx(4.0, rel=1e-12)
    # a callable pair: x' = (x + 2, -y), odd reflection; value only
    c2 = Constraint(u, left, n=50, pair=lambda p: torch.stack([p[:, 0] + 2, -p[:, 1]], 1), name="refl")
    prob2 = Problem([u], (x, y), [c2])
    sq = _Fn(lambda p: p[:, 0] ** 2 + p[:, 1] ** 2)  # symmetric under both: zero
    assert prob2.losses(sq, 0, _g(24))["refl"].item() < 1e-28
    with pytest.raises(ValueError, match="pair shift"):
        Problem([u], (x, y), [Constraint(u, left, n=5, pair=(2, 0, 0))])


def test_periodic_pair_enforced_by_short_training():
    """Fit u = x on the interior while asking for periodicity in x: the jump u(1,y) - u(-1,y) must close."""
    u = Field("u", (x, y))
    box = Box([(-1, 1), (-1, 1)])
    left = Box([(-1, 1), (-1, 1)]).boundary(faces=[(0, 0)])
    prob = Problem([u], (x, y), [Constraint(u - sympy.sin(math.pi * x / 2), box, n=128, name="fit", weight=0.01),
                                 Constraint(u, left, n=64, pair=(2, 0), name="per")])
    torch.manual_seed(0)
    model = Siren(2, 1, 32, 2, first_omega_0=3.0).double()
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    g = _g(25)
    before = prob.losses(model, 0, _g(26))["per"].item()
    for step in range(300):
        L = prob.losses(model, step, g)
        opt.zero_grad()
        sum(L.values()).backward()
        opt.step()
    after = prob.losses(model, 0, _g(26))["per"].item()
    # without the pair term the fit alone would give a jump of sin(pi/2) - sin(-pi/2) = 2 (loss 4)
    assert after < 0.05 and after < before
