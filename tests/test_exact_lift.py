"""impose_exactly's lift (the initial data carried in time, else the transfinite blend) holds the data on every piece."""

import pytest
import sympy
import torch

from pinnsiren import Box, Constraint, Field, Problem, Siren, SpaceTime, impose_exactly
from pinnsiren.adf import transfinite

x, t = sympy.symbols("x t")


def _problem(u0, wall):
    u = Field("u", (x, t))
    bounds = [(-1, 1), (0, 1)]
    return Problem([u], (x, t), [
        Constraint(u.diff(t) - u.diff(x, 2), where=Box(bounds), n=64, name="pde"),
        Constraint(u - u0, where=SpaceTime(Box([(-1, 1)]), (0, 1), t_index=1).initial(), n=16, name="initial"),
        Constraint(u - wall, where=Box(bounds).boundary(faces=[(0, 0), (0, 1)]), n=16, name="walls")])


def _check_pieces(model, u0):
    gen = torch.Generator().manual_seed(4)
    xs = torch.rand(200, generator=gen, dtype=torch.float64) * 1.8 - 0.9  # away from the corners
    ts = torch.rand(200, generator=gen, dtype=torch.float64) * 0.9 + 0.1
    init = torch.stack([xs, torch.zeros_like(xs)], 1)
    wall = torch.stack([torch.ones_like(ts), ts], 1)
    with torch.no_grad():
        model.double()
        torch.testing.assert_close(model(init)[:, 0], u0(xs), atol=1e-9, rtol=0)
        torch.testing.assert_close(model(wall)[:, 0], torch.zeros_like(ts), atol=1e-9, rtol=0)


def test_compatible_data_are_held_on_both_pieces():
    model, rest = impose_exactly(_problem(-sympy.sin(sympy.pi * x), 0), Siren(2, 1, 8, 1))
    assert list(rest.constraints) == ["pde"]
    _check_pieces(model, lambda xs: -torch.sin(torch.pi * xs))


def test_data_discontinuous_at_a_corner_stay_soft_and_are_named():
    # u0 = 1 - x^2 / 2 is 1/2 at the walls, where u = 0: the data disagree at the corners (x = +-1, t = 0)
    with pytest.warns(UserWarning, match=r"'initial'.*discontinuous at a corner") as rec:
        model, rest = impose_exactly(_problem(1 - x**2 / 2, 0), Siren(2, 1, 8, 1))
    assert "'walls'" in str(rec[0].message)
    assert sorted(rest.constraints) == ["initial", "pde", "walls"]  # nothing imposed: both stay loss terms
    assert set(model.soft) == {"initial", "walls"} and not hasattr(model, "imposed")


def test_only_the_pieces_that_meet_discontinuously_go_soft():
    u = Field("u", (x, t))
    bounds = [(-1, 1), (0, 1)]
    prob = Problem([u], (x, t), [
        Constraint(u.diff(t) - u.diff(x, 2), where=Box(bounds), n=64, name="pde"),
        Constraint(u - (1 - x**2), where=SpaceTime(Box([(-1, 1)]), (0, 1), t_index=1).initial(), n=16, name="initial"),
        Constraint(u, where=Box(bounds).boundary(faces=[(0, 0)]), n=16, name="left"),
        Constraint(u - 3, where=Box(bounds).boundary(faces=[(0, 1)]), n=16, name="right")])
    with pytest.warns(UserWarning, match="'right'"):
        model, rest = impose_exactly(prob, Siren(2, 1, 8, 1))
    # right (u = 3) meets initial (0 at x = 1): both of that pair stay soft; left agrees with both
    assert model.imposed == ["left"]
    assert sorted(rest.constraints) == ["initial", "pde", "right"]
    ts = torch.linspace(0.0, 1.0, 50, dtype=torch.float64)
    with torch.no_grad():
        model.double()
        torch.testing.assert_close(model(torch.stack([-torch.ones_like(ts), ts], 1))[:, 0], 0 * ts, atol=1e-12, rtol=0)


def test_time_varying_wall_data_are_held_by_the_lift_carried_in_time():
    # walls u(+-1, t) = t * (1 + x) / 2 (0 on the left, t on the right), u0 = 0 agrees with them at t = 0
    model, _ = impose_exactly(_problem(0, t * (1 + x) / 2), Siren(2, 1, 8, 1))
    gen = torch.Generator().manual_seed(5)
    ts = torch.rand(100, generator=gen, dtype=torch.float64)
    with torch.no_grad():
        model.double()
        right = model(torch.stack([torch.ones_like(ts), ts], 1))[:, 0]
        left = model(torch.stack([-torch.ones_like(ts), ts], 1))[:, 0]
    torch.testing.assert_close(right, ts, atol=1e-9, rtol=0)
    torch.testing.assert_close(left, torch.zeros_like(ts), atol=1e-9, rtol=0)


def test_the_network_a_smooth_solution_needs_stays_bounded_at_the_initial_line_and_wall_edge():
    # u = exp(-pi^2 t) sin(pi x) solves u_t = u_xx; N = (u - g) / phi is what the network must represent.
    # The lift carried in time (g = u0) leaves N bounded where the initial line meets a wall; the
    # transfinite blend of both pieces (weights jumping between them there) makes N grow like 1 / distance.
    model, _ = impose_exactly(_problem(sympy.sin(sympy.pi * x), 0), Siren(2, 1, 8, 1))
    d = torch.tensor([1e-2, 1e-3, 1e-4], dtype=torch.float64)
    p = torch.stack([1 - d, d], 1)  # toward the corner (1, 0) along the diagonal
    u = torch.exp(-torch.pi**2 * p[:, 1]) * torch.sin(torch.pi * p[:, 0])
    with torch.no_grad():
        g = model.g[0](p).reshape(-1).double()
        phi = model.phi(p).reshape(-1).double()
    need = ((u - g) / phi).abs()
    assert float(need.max()) < 50.0 and float(need[-1] / need[0]) < 1.5
    blend = transfinite([(t, sympy.sin(sympy.pi * x)), ((1 - x**2) / 2, 0)])
    gb = torch.as_tensor([float(blend.subs({x: a, t: b})) for a, b in p.tolist()], dtype=torch.float64)
    grows = ((u - gb) / phi).abs()
    assert float(grows[-1] / grows[0]) > 50.0
