"""impose_exactly's lift (the transfinite blend of the pieces' data) holds the data on every piece."""

import sympy
import torch

from pinnsiren import Box, BoxBoundary, Constraint, Field, Problem, Siren, TimeSlice, impose_exactly

x, t = sympy.symbols("x t")


def _problem(u0, wall):
    u = Field("u", (x, t))
    bounds = [(-1, 1), (0, 1)]
    return Problem([u], (x, t), [
        Constraint(u.diff(t) - u.diff(x, 2), where=Box(bounds), n=64, name="pde"),
        Constraint(u - u0, where=TimeSlice([(-1, 1)], 1, 0.0), n=16, name="initial"),
        Constraint(u - wall, where=BoxBoundary(bounds, faces=[(0, 0), (0, 1)]), n=16, name="walls")])


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


def test_incompatible_data_keep_the_transfinite_blend_and_hold_on_every_piece():
    # u0 = 1 - x^2 / 2 is 1/2 at the walls, where u = 0: the data disagree at the corners
    model, _ = impose_exactly(_problem(1 - x**2 / 2, 0), Siren(2, 1, 8, 1))
    assert model.g[0].expr.has(sympy.Piecewise)  # the blend, defined at the corners too
    _check_pieces(model, lambda xs: 1 - xs**2 / 2)
