"""Adjoint-state gradient (Taylor test), IR-WRI (ADMM) and adjoint-state FWI on small grids."""

import numpy as np
import pytest

from reference.fwi import (Acquisition, InversionProblem, admm_fwi, adjoint_fwi, model_mse, simulate_data,
                           slowness_model, taylor_test, velocity_model)


@pytest.fixture(scope="module")
def circle61():
    acq = Acquisition.paper()
    obs = simulate_data(acq, slowness_model("circle"), n=121)  # finer than the inversion grid
    pb = InversionProblem(acq, obs.d, n=61)
    X, Y = pb.op.grid.coords()
    c_true = velocity_model("circle")(X, Y)
    mse = lambda m_full: {"mse": model_mse(1 / np.sqrt(m_full), c_true, (X, Y))}  # noqa: E731
    return pb, mse


@pytest.fixture(scope="module")
def small41():
    acq = Acquisition.paper()
    obs = simulate_data(acq, slowness_model("circle_large"), n=81)
    return InversionProblem(acq, obs.d, n=41)


def test_taylor_test_of_adjoint_gradient(small41):
    pb = small41
    rng = np.random.default_rng(1)
    m = pb.start() + 0.05 * rng.standard_normal(pb.n_free)
    dm = rng.standard_normal(pb.n_free)
    t = taylor_test(pb, m, dm, h0=1e-2, halvings=4)
    np.testing.assert_allclose(t["ratio0"][-2:], 2.0, atol=0.1)  # first-order remainder ~ h
    np.testing.assert_allclose(t["ratio1"], 4.0, atol=0.1)  # second-order remainder ~ h^2


def test_taylor_test_detects_a_wrong_gradient(small41):
    """Negative control: a gradient off by 20% gives ratio1 -> 2, not 4."""
    pb = small41

    class Wrong:
        def __getattr__(self, name):
            return getattr(pb, name)

        def objective_and_gradient(self, m):
            J, g, U = pb.objective_and_gradient(m)
            return J, 1.2 * g, U

    rng = np.random.default_rng(2)
    m = pb.start()
    # a direction with a clear slope (at the start, a random direction can be nearly orthogonal to g, and then
    # a 20 % error in g hides below the second-order term until tiny h)
    g = pb.objective_and_gradient(m)[1]
    dm = rng.standard_normal(pb.n_free) + g / np.abs(g).max()
    t = taylor_test(Wrong(), m, dm, h0=1e-2, halvings=4)
    assert t["ratio1"][-1] < 3.0  # measured 1.98
    assert taylor_test(pb, m, dm, h0=1e-2, halvings=4)["ratio1"][-1] > 3.8  # the right gradient: 4.00


def test_gradient_matches_finite_difference_in_one_coordinate(small41):
    pb = small41
    m = pb.start()
    J, g, _ = pb.objective_and_gradient(m)
    j = int(np.argmax(np.abs(g)))
    e = np.zeros_like(m)
    e[j] = 1e-5
    fd = (pb.objective_and_gradient(m + e)[0] - pb.objective_and_gradient(m - e)[0]) / 2e-5
    assert fd == pytest.approx(g[j], rel=1e-5)


def test_admm_woodbury_equals_normal_equations(small41):
    a = admm_fwi(small41, iterations=2, lam_rel=0.1, wavefield_solver="woodbury")
    b = admm_fwi(small41, iterations=2, lam_rel=0.1, wavefield_solver="normal")
    np.testing.assert_allclose(a.m, b.m, rtol=0, atol=1e-8)
    np.testing.assert_allclose(a.wavefields, b.wavefields, rtol=0, atol=1e-8 * np.abs(b.wavefields).max())
    with pytest.raises(ValueError, match="wavefield_solver must be one of"):
        admm_fwi(small41, iterations=1, wavefield_solver="cg")


def test_admm_halves_velocity_mse_on_circle(circle61):
    pb, mse = circle61
    r = admm_fwi(pb, iterations=20, lam_rel=0.1, tv=1.0, callback=mse)
    h = r.history["mse"]
    assert h[-1] <= 0.5 * h[0], h  # measured: 0.17 x the uniform start
    lo, hi = pb.m_bounds
    assert r.m.min() >= lo - 1e-12 and r.m.max() <= hi + 1e-12
    assert np.all(r.m[~np.pad(pb.free.reshape(59, 59), 1)] == 1.0)  # PML held at background
    assert r.history["source_residual"][-1] < r.history["source_residual"][0]


def test_adjoint_fwi_reduces_misfit_and_mse(circle61):
    pb, mse = circle61
    r = adjoint_fwi(pb, iterations=15, callback=mse)
    assert r.history["objective"][-1] < 0.1 * r.history["objective"][0]
    assert r.history["mse"][-1] < 0.8 * r.history["mse"][0]
    m_free = r.m[1:-1, 1:-1].ravel()[pb.free]
    assert pb.data_misfit(m_free) < 0.5 * pb.data_misfit(pb.start())


def test_problem_rejects_bad_data_shape():
    acq = Acquisition.paper()
    with pytest.raises(ValueError, match=r"shape \(n_receivers, n_sources\)"):
        InversionProblem(acq, np.zeros((5, 30)), n=21)
