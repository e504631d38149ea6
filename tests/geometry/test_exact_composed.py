"""impose_exactly on composed 2-D regions: phi > 0 inside, zero on exactly the imposed pieces, data held."""

import pytest
import sympy
import torch
from torch import nn

from pinnsiren import (
    Ball, Box, Constraint, Field, Polygon, Problem, Siren, SpaceTime, impose_exactly,
    normal_derivative,
)
from pinnsiren.compiler import compile_residual

x, y, t = sympy.symbols("x y t")
u = Field("u", (x, y))


class _Shifted(nn.Module):
    """``net + 1``: two networks whose exact-BC outputs differ by phi."""

    def __init__(self, net):
        super().__init__()
        self.net = net
        self.out_features = 1

    def forward(self, z):
        return self.net(z) + 1


def _check(domain, pdec, conds, imposed, n_inside=100_000):
    """Impose; then phi > 0 inside, |phi| < 1e-6 and u = data on each imposed piece, outputs never pinned."""
    prob = Problem([u], (x, y), [pdec] + conds)
    torch.manual_seed(0)
    net = Siren(2, 1, 16, 2).double()
    model, rest = impose_exactly(prob, net)
    model2, _ = impose_exactly(prob, _Shifted(net))
    assert sorted(model.imposed) == sorted(imposed)
    assert sorted(rest.constraints) == sorted(c.name for c in [pdec] + conds if c.name not in imposed)
    gen = torch.Generator().manual_seed(7)
    xi, _ = domain.sample(n_inside, 0, gen)
    phi = model.phi.fn(None, xi)
    assert float(phi.min()) > 0, f"phi <= 0 at {int((phi <= 0).sum())} interior points"
    with torch.no_grad():
        diff = model2(xi)[:, 0] - model(xi)[:, 0]
    torch.testing.assert_close(diff, phi, rtol=1e-9, atol=1e-12)  # the network moves the output everywhere
    for c in conds:
        if c.name not in imposed:
            continue
        xb, data = c.where.sample(2000, 0, gen)
        step = 1e-7 * data["normal"]
        xb = xb[domain.contains(xb + step) != domain.contains(xb - step)]  # on the region's boundary
        assert xb.shape[0] > 50
        assert float(model.phi.fn(None, xb).abs().max()) < 1e-6
        h = sympy.sympify(c.expr).subs(u, 0) * -1
        want = compile_residual(h, [], (x, y))(None, xb) if h.free_symbols else torch.full((xb.shape[0],), float(h))
        with torch.no_grad():
            got = model(xb)[:, 0]
        torch.testing.assert_close(got, want.to(got.dtype), atol=1e-6, rtol=0)
    return model


def _pde(domain):
    return Constraint(u.diff(x, 2) + u.diff(y, 2) + 1, domain, n=64, name="pde")


def test_back_step_with_its_faces_declared_one_by_one():
    outer, block = Box([(0, 4), (0, 2)]), Box([(0, 2), (0, 1)])
    dom = outer - block
    conds = [Constraint(u - 4 * (y - 1) * (2 - y), outer.boundary(faces=[(0, 0)]), n=8, name="inlet"),
             Constraint(u, outer.boundary(faces=[(1, 0), (1, 1)]), n=8, name="walls"),
             Constraint(u, block.boundary(faces=[(0, 1), (1, 1)]), n=8, name="step"),
             Constraint(normal_derivative(u, (x, y)), outer.boundary(faces=[(0, 1)]), n=8, name="outlet")]
    _check(dom, _pde(dom), conds, ["inlet", "walls", "step"])


def test_back_step_with_the_block_boundary_and_some_pieces_soft():
    outer, block = Box([(0, 4), (0, 2)]), Box([(0, 2), (0, 1)])
    dom = outer - block
    conds = [Constraint(u, block.boundary(), n=8, name="step"),
             Constraint(u - 1, outer.boundary(faces=[(1, 1)]), n=8, name="top", weight=2.0),
             Constraint(normal_derivative(u, (x, y)), outer.boundary(faces=[(0, 0), (0, 1)]), n=8,
                        name="ends")]
    # the top (u = 1) and the step (u = 0) do not meet: both are imposed
    _check(dom, _pde(dom), conds, ["step", "top"])


def test_l_shape_as_a_polygon_and_as_a_difference():
    poly = Polygon([(0, 0), (2, 0), (2, 1), (1, 1), (1, 2), (0, 2)])
    for dom in (poly, Box([(0, 2), (0, 2)]) - Box([(1, 2), (1, 2)])):
        conds = [Constraint(u - x * y, dom.boundary(), n=8, name="all")]
        _check(dom, _pde(dom), conds, ["all"])
    # the two edges of the reentrant corner only
    re = [Constraint(u, Box([(1, 2), (1, 2)]).boundary(faces=[(0, 0), (1, 0)]), n=8, name="corner"),
          Constraint(u - x, Box([(0, 2), (0, 2)]).boundary(faces=[(1, 0)]), n=8, name="bottom")]
    _check(poly, _pde(poly), re, ["corner", "bottom"])


def test_square_minus_four_discs_with_two_holes_imposed():
    sq = Box([(-0.5, 0.5)] * 2)
    holes = [Ball([a, b], 0.1) for a in (0.3, -0.3) for b in (0.3, -0.3)]
    dom = sq
    for h in holes:
        dom = dom - h
    conds = [Constraint(u - 1, sq.boundary(), n=8, name="edges")]
    conds += [Constraint(u - x, h.boundary(), n=8, name=f"hole{i}") for i, h in enumerate(holes[:2])]
    conds += [Constraint(normal_derivative(u, (x, y)), holes[2].boundary(), n=8, name="flux")]
    _check(dom, _pde(dom), conds, ["edges", "hole0", "hole1"])


def test_disc_minus_a_square_cut_through_its_circle():
    disc, sq = Ball([0, 0], 1.0), Box([(0.5, 2), (-0.3, 0.3)])
    dom = disc - sq
    conds = [Constraint(u - y, disc.boundary(), n=8, name="arc"),
             Constraint(u - y, sq.boundary(), n=8, name="notch")]
    _check(dom, _pde(dom), conds, ["arc", "notch"])
    # the arc alone: the notch is free, so phi must not vanish there
    m = _check(dom, _pde(dom), conds[:1], ["arc"])
    xn = torch.tensor([[0.5, 0.0], [0.7, 0.3], [0.7, -0.3]], dtype=torch.float64)
    assert float(m.phi.fn(None, xn).min()) > 1e-3


def test_polygon_with_a_hole_and_space_time_over_it():
    poly = Polygon([(0, 0), (3, 0), (3, 1), (2, 1), (2, 2), (0, 2)])
    dom = poly - Ball([1.0, 1.0], 0.4)
    _check(dom, _pde(dom), [Constraint(u - x, dom.boundary(), n=8, name="all")], ["all"])
    w = Field("w", (x, y, t))
    st = SpaceTime(dom, (0.0, 1.0))
    prob = Problem([w], (x, y, t), [
        Constraint(w.diff(t) - w.diff(x, 2) - w.diff(y, 2), st, n=64, name="pde"),
        Constraint(w - x * t, SpaceTime(Box([(0, 3), (0, 2)]), (0.0, 1.0)).boundary(), n=8, name="outer"),
        Constraint(w, st.initial(), n=8, name="initial")])
    model, rest = impose_exactly(prob, Siren(3, 1, 16, 2).double())
    assert sorted(model.imposed) == ["initial", "outer"]
    xi, _ = st.sample(50_000, 0, torch.Generator().manual_seed(1))
    assert float(model.phi.fn(None, xi).min()) > 0


def test_a_point_weight_leaves_the_piece_soft_and_says_so():
    sq = Box([(-1, 1)] * 2)
    left_only = sympy.Heaviside(-x)  # the data are meant for the left half of the edges only
    prob = Problem([u], (x, y), [_pde(sq),
                                 Constraint(u - 1, sq.boundary(), n=8, name="edges", weight=left_only),
                                 Constraint(u, sq.boundary(faces=[(0, 1)]), n=8, name="right", weight=0)])
    with pytest.warns(UserWarning) as rec:
        model, rest = impose_exactly(prob, Siren(2, 1, 8, 1))
    msg = str(rec[0].message)
    assert "'edges': its weight Heaviside(-x) varies from point to point" in msg
    assert "'right': its weight is 0" in msg
    assert sorted(rest.constraints) == ["edges", "pde", "right"] and sorted(model.soft) == ["edges", "right"]
