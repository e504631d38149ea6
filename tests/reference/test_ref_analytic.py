import numpy as np
import pytest
from scipy.integrate import quad
from scipy.special import hankel1, j0

from reference import analytic as an


def test_green_convention_and_equation():
    k, r = 20.0, np.array([0.3, 0.7])
    np.testing.assert_allclose(an.helmholtz_green(r, k), np.conj(0.25j * hankel1(0, k * r)), rtol=1e-14)
    # satisfies the radial Helmholtz equation u'' + u'/r + k^2 u = 0 away from 0
    h, r0 = 1e-3, 0.5
    u = an.helmholtz_green(np.array([r0 - h, r0, r0 + h]), k)
    res = (u[2] - 2 * u[1] + u[0]) / h**2 + (u[2] - u[0]) / (2 * h * r0) + k**2 * u[1]
    assert abs(res) < 1e-3 * k**2 * abs(u[1])
    # outgoing in the exp(+i w t) convention: phase ~ -k r
    rr = np.array([5.0, 5.01])
    dphi = np.angle(an.helmholtz_green(rr[1:], k) / an.helmholtz_green(rr[:1], k))[0]
    assert dphi == pytest.approx(-k * 0.01, abs=1e-3)


def test_gaussian_factor_by_quadrature():
    # 2 pi int g(rho) J0(k rho) rho drho = exp(-k^2 s^2 / 2) for the unit-mass Gaussian
    k, var = 20.0, 1e-3
    val = quad(lambda p: np.exp(-p**2 / (2 * var)) / (2 * np.pi * var) * j0(k * p) * 2 * np.pi * p, 0, 1, limit=200)[0]
    assert val == pytest.approx(np.exp(-k**2 * var / 2), rel=1e-10)
    np.testing.assert_allclose(an.helmholtz_gaussian(0.4, k, var), an.helmholtz_green(0.4, k) * val, rtol=1e-9)


def test_gaussian_pulse_initial_data_and_speed():
    r = np.linspace(0, 0.2, 11)
    np.testing.assert_allclose(an.gaussian_pulse_wave(r, 0.0, amplitude=0.02), 0.02 * np.exp(-r**2 / 1e-3),
                               atol=1e-12)
    # at t = 0.5 the pulse is near r = 0.5 (and gone from the origin)
    r = np.linspace(0, 0.9, 181)
    u = an.gaussian_pulse_wave(r, 0.5)
    assert abs(r[np.argmax(np.abs(u))] - 0.5) < 0.05
    assert abs(u[0]) < 0.05 * np.abs(u).max()


def test_sdfs_exact_values():
    assert an.sdf_sphere(np.array([[1.0, 0, 0], [0, 0, 0]])) == pytest.approx([0.5, -0.5])
    assert an.sdf_circle(np.array([[0.0, 2.0]]), 1.0) == pytest.approx([1.0])
    box = an.sdf_box(np.array([[1.0, 0, 0], [0, 0, 0], [1.5, 1.3, 0.0]]), (0.5, 0.3, 0.2))
    assert box == pytest.approx([0.5, -0.2, np.hypot(1.0, 1.0)])
    tor = an.sdf_torus(np.array([[0.5, 0, 0], [0, 0, 0], [0.5, 0, 1.0]]), 0.5, 0.2)
    assert tor == pytest.approx([-0.2, 0.3, 0.8])
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        an.sdf_sphere(np.zeros((4, 2)))


@pytest.mark.parametrize("name", ["sphere", "box", "torus"])
def test_surface_samplers_on_surface_with_sdf_gradient_normals(name):
    sdf = getattr(an, f"sdf_{name}")
    pts, nrm = getattr(an, f"sample_{name}")(500, rng=np.random.default_rng(0))
    assert pts.shape == nrm.shape == (500, 3)
    np.testing.assert_allclose(sdf(pts), 0.0, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(nrm, axis=1), 1.0, atol=1e-12)
    eps = 1e-6
    grad = np.stack([(sdf(pts + eps * e) - sdf(pts - eps * e)) / (2 * eps) for e in np.eye(3)], axis=1)
    ok = np.linalg.norm(grad, axis=1) > 0.999  # away from box edges the SDF is differentiable
    assert ok.mean() > 0.95
    np.testing.assert_allclose(grad[ok], nrm[ok], atol=1e-5)


@pytest.mark.parametrize("kind", ["sin", "cos", "gauss"])
def test_manufactured_laplacian_and_gradient(kind):
    u, lap, grad = an.poisson_manufactured(kind, 1.0)
    x, y, h = 0.31, 0.47, 1e-4
    fd_lap = (u(x + h, y) + u(x - h, y) + u(x, y + h) + u(x, y - h) - 4 * u(x, y)) / h**2
    assert fd_lap == pytest.approx(lap(x, y), rel=1e-5, abs=1e-5)
    gx, gy = grad(x, y)
    assert gx == pytest.approx((u(x + h, y) - u(x - h, y)) / (2 * h), rel=1e-6)
    assert gy == pytest.approx((u(x, y + h) - u(x, y - h)) / (2 * h), rel=1e-6)
