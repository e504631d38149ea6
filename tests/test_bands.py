"""First-layer bands balanced by the PDE's terms (pinnsiren.bands), against hand-computed factors."""

import math

import numpy as np
import pytest
import sympy
import torch

from pinnsiren import Box, Constraint, Field, Problem, SpaceTime
from pinnsiren.bands import operator_bands
from pinnsiren.train import recommended_model

x, y, t = sympy.symbols("x y t")


def test_a_heat_equation_narrows_the_diffusive_coordinate_to_the_time_derivative():
    # u_t = kx u_xx + ky u_yy on [0,1]^2 x [0,5]: at band w, t's term is w / 2.5, y's is ky (w / 0.5)^2;
    # kx = 1/(500 pi)^2 is negligible, so x keeps its band; y's factor s solves ky (s w / 0.5)^2 = w / 2.5
    u = Field("u", (x, y, t))
    ky = 1 / math.pi**2
    pde = u.diff(t) - (u.diff(x, 2) / (500 * sympy.pi) ** 2 + u.diff(y, 2) / sympy.pi**2)
    w = 10.0
    s = operator_bands(pde, (x, y, t), [(0, 1), (0, 1), (0, 5)], w)
    want = math.sqrt((w / 2.5) / (ky * (w / 0.5) ** 2))
    np.testing.assert_allclose(s, [1.0, want, 1.0], rtol=1e-12)


@pytest.mark.parametrize("c", [0.5, 2.0, 3.0])
def test_a_wave_with_speed_c_gets_bands_in_the_ratio_of_the_characteristics(c):
    # u_tt = c^2 u_xx on the unit square: x's band is 1/c of t's (c > 1), t's is c of x's (c < 1)
    u = Field("u", (x, t))
    s = operator_bands(u.diff(t, 2) - c**2 * u.diff(x, 2), (x, t), [(0, 1), (0, 1)], 15.0)
    np.testing.assert_allclose(s, [1 / c, 1.0] if c > 1 else [1.0, c], rtol=1e-12)


def test_isotropic_operators_and_terms_without_derivatives_keep_the_default():
    u = Field("u", (x, y))
    for pde in (u.diff(x, 2) + u.diff(y, 2) + 16 * u, u.diff(x, 2) + u.diff(y, 2) - sympy.sin(x) * 5):
        np.testing.assert_array_equal(operator_bands(pde, (x, y), [(-1, 1), (-1, 1)], 15.0), [1.0, 1.0])
    # a rectangle is not isotropic in normalised coordinates: the long side's terms are softer
    s = operator_bands(u.diff(x, 2) + u.diff(y, 2), (x, y), [(0, 4), (0, 1)], 15.0)
    np.testing.assert_allclose(s, [1.0, 0.25], rtol=1e-12)


def test_field_dependent_coefficients_count_the_field_as_one_and_mixed_derivatives_are_left_out():
    # Burgers: u_t + u u_x - nu u_xx on [-1,1] x [0,1]: t's term 1 * w / 0.5, x's max(1 * w / 1, nu w^2) = w
    u = Field("u", (x, t))
    pde = u.diff(t) + u * u.diff(x) - 0.01 / sympy.pi * u.diff(x, 2) + u.diff(x, t)
    np.testing.assert_allclose(operator_bands(pde, (x, t), [(-1, 1), (0, 1)], 15.0), [1.0, 0.5], rtol=1e-12)


def test_recommended_model_scales_the_first_layer_columns_by_the_factors():
    u = Field("u", (x, y, t))
    dom = SpaceTime(Box([(0, 1), (0, 1)]), (0, 5))
    pde = u.diff(t) - u.diff(y, 2) / sympy.pi**2 - u.diff(x, 2) / (500 * sympy.pi) ** 2
    problem = Problem([u], (x, y, t), [Constraint(pde, dom, n=10, name="pde"),
                                       Constraint(u, dom.boundary(), n=10, name="walls")])
    bounds = [(0, 1), (0, 1), (0, 5)]
    torch.manual_seed(3)
    plain = recommended_model(bounds)
    torch.manual_seed(3)
    balanced = recommended_model(bounds, problem=problem)
    assert plain.bands is None
    np.testing.assert_allclose(balanced.bands, operator_bands(pde, (x, y, t), bounds, 10.0), rtol=1e-12)
    w0, w1 = plain.net.layers[0].weight, balanced.net.layers[0].weight
    torch.testing.assert_close(w1, w0 * torch.as_tensor(balanced.bands, dtype=w0.dtype))
    torch.testing.assert_close(plain.net.layers[1].weight, balanced.net.layers[1].weight)
    with pytest.raises(ValueError, match="coordinates"):
        recommended_model(bounds[:2], problem=problem)


def _heat(u0, kx=1 / (500 * sympy.pi) ** 2, eq=False):
    u = Field("u", (x, y, t))
    dom = SpaceTime(Box([(0, 1), (0, 1)]), (0, 5), t_index=2)
    pde = u.diff(t) - kx * u.diff(x, 2) - u.diff(y, 2) / sympy.pi**2
    box = Box([(0, 1), (0, 1), (0, 5)])
    return Problem([u], (x, y, t), [Constraint(pde, dom, n=10, name="pde"),
                                    Constraint(sympy.Eq(u, u0) if eq else u - u0, dom.initial(), n=10, name="initial"),
                                    Constraint(u, box.boundary([(0, 0), (0, 1), (1, 0), (1, 1)]), n=10,
                                               name="walls")])


def test_the_data_frequency_along_each_coordinate_is_the_sobolev_quotient_on_normalised_coordinates():
    # sin(20 pi x) sin(pi y) at t = 0: 20 pi and pi rad per unit, half-widths 0.5: 10 pi and pi / 2; t is not
    # spanned by the initial slice and the walls' data are zero
    from pinnsiren.bands import data_frequencies

    f = data_frequencies(_heat(sympy.sin(20 * sympy.pi * x) * sympy.sin(sympy.pi * y)), [(0, 1), (0, 1), (0, 5)])
    np.testing.assert_allclose(f, [10 * math.pi, math.pi / 2, 0.0], rtol=0.03)
    # a polynomial: 4x(1-x) has ||g'|| / ||g|| = sqrt(10), i.e. sqrt(10) / 2 on [-1, 1]
    f = data_frequencies(_heat(4 * x * (1 - x)), [(0, 1), (0, 1), (0, 5)])
    np.testing.assert_allclose(f, [math.sqrt(10) / 2, 0.0, 0.0], rtol=0.03)
    # the same condition written as an equation, and constant data (no frequency)
    f = data_frequencies(_heat(4 * x * (1 - x), eq=True), [(0, 1), (0, 1), (0, 5)])
    np.testing.assert_allclose(f, [math.sqrt(10) / 2, 0.0, 0.0], rtol=0.03)
    np.testing.assert_array_equal(data_frequencies(_heat(1), [(0, 1), (0, 1), (0, 5)]), [0.0, 0.0, 0.0])


def test_data_faster_than_the_band_widen_it_to_their_frequency_and_slow_data_change_nothing():
    bounds = [(0, 1), (0, 1), (0, 5)]
    fast = sympy.sin(20 * sympy.pi * x) * sympy.sin(sympy.pi * y)
    slow = sympy.sin(sympy.pi * x) * sympy.sin(sympy.pi * y)
    wide = recommended_model(bounds, problem=_heat(fast)).bands
    narrow = recommended_model(bounds, problem=_heat(slow)).bands
    ops = operator_bands(_heat(slow).constraints["pde"].expr, (x, y, t), bounds, 10.0)
    np.testing.assert_allclose(narrow, ops, rtol=1e-12)  # pi / 2 < the band 30 / 3: the operator's factors
    np.testing.assert_allclose(wide, [math.pi, ops[1], 1.0], rtol=0.03)  # x: 10 pi / 10
