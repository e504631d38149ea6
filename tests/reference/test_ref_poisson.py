import numpy as np
import pytest

from reference.analytic import poisson_manufactured
from reference.grid import Grid
from reference.image import (discrete_laplacian, psnr, reconstruct_from_gradient, reconstruct_from_laplacian,
                             sobel_gradient)
from reference.poisson import solve_poisson_dirichlet, solve_poisson_neumann

NS = (33, 65, 129)


def _order(errs):
    return np.polyfit(np.log(1.0 / (np.array(NS) - 1)), np.log(errs), 1)[0]


@pytest.mark.parametrize("method", ["dst", "amg"])
def test_dirichlet_manufactured_second_order(method):
    u, lap, _ = poisson_manufactured("gauss", 0.5)
    errs = []
    for n in NS:
        g = Grid(((0, 1), (-0.5, 1)), (n, n))
        X, Y = g.coords()
        f = solve_poisson_dirichlet(g, lap(X, Y), u(X, Y), method=method)
        errs.append(np.abs(f.values - u(X, Y)).max())
    assert abs(_order(errs) - 2) <= 0.3 and errs[-1] < 1e-4, errs


@pytest.mark.parametrize("method", ["dct", "amg"])
def test_neumann_manufactured_second_order(method):
    u, lap, grad = poisson_manufactured("gauss", 0.5)
    errs = []
    for n in NS:
        g = Grid(((0, 1), (-0.5, 1)), (n, n))
        X, Y = g.coords()
        gx, gy = grad(X, Y)
        f = solve_poisson_neumann(g, lap(X, Y), (-gx[0], gx[-1], -gy[:, 0], gy[:, -1]), method=method)
        ue = u(X, Y)
        d = f.values - ue
        errs.append(np.abs(d - d.mean()).max())
    assert abs(_order(errs) - 2) <= 0.3 and errs[-1] < 2e-4, errs


def test_dst_and_amg_agree():
    g = Grid.square(40)
    f = np.random.default_rng(0).normal(size=g.shape)
    a = solve_poisson_dirichlet(g, f, method="dst").values
    b = solve_poisson_dirichlet(g, f, method="amg").values
    np.testing.assert_allclose(a, b, atol=1e-8 * np.abs(a).max())


def test_cameraman_from_sobel_gradient_and_laplacian():
    skdata = pytest.importorskip("skimage.data")
    img = skdata.camera().astype(float) / 255.0
    gx, gy = sobel_gradient(img)
    rec = reconstruct_from_gradient(gx, gy, mean=img.mean())
    assert psnr(rec, img, 1.0) >= 40.0
    rec2 = reconstruct_from_laplacian(discrete_laplacian(img), mean=img.mean())
    assert psnr(rec2, img, 1.0) >= 40.0
    # and the gradient is a real derivative: a ramp has gradient 1 in the interior
    X, Y = np.meshgrid(np.arange(8.0), np.arange(6.0), indexing="ij")
    rx, ry = sobel_gradient(2 * X + 3 * Y)
    np.testing.assert_allclose(rx[1:-1, 1:-1], 2.0)
    np.testing.assert_allclose(ry[1:-1, 1:-1], 3.0)
