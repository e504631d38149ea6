import numpy as np
import pytest

from reference.analytic import gaussian_pulse_wave
from reference.wave import cfl_limit, laplacian, solve_wave

T = 0.2


def _error(n, order):
    (f,) = solve_wave(n, [T], order=order, amplitude=1.0, sponge_width=0.0, half_width=0.5)
    s = (n - 1) // 64  # compare on the common 65x65 sub-grid
    X, Y = (c[::s, ::s] for c in f.grid.coords())
    v = f.values[::s, ::s]
    r = np.hypot(X, Y)
    m = r < 0.35  # the pulse has not reached the walls at t = 0.2
    ex = gaussian_pulse_wave(r[m], T)
    return np.linalg.norm(v[m] - ex) / np.linalg.norm(ex)


def test_second_order_convergence_against_exact_pulse():
    ns = np.array([65, 129, 257])
    errs = [_error(n, 2) for n in ns]
    slope = np.polyfit(np.log(1.0 / (ns - 1)), np.log(errs), 1)[0]
    assert abs(slope - 2.0) <= 0.3, (errs, slope)
    assert errs[-1] < 0.03


def test_fourth_order_space_is_more_accurate():
    assert _error(129, 4) < 0.2 * _error(129, 2)


def test_laplacian_orders():
    for order, expect in ((2, 2.0), (4, 4.0)):
        errs = []
        for n in (32, 64):
            h = 1.0 / (n + 1)
            x = np.arange(1, n + 1) * h
            X, Y = np.meshgrid(x, x, indexing="ij")
            u = np.sin(np.pi * X) * np.sin(2 * np.pi * Y)
            L = laplacian(u, (h, h), order)
            inner = (slice(3, -3), slice(3, -3))
            errs.append(np.abs(L[inner] + 5 * np.pi**2 * u[inner]).max())
        assert abs(np.log2(errs[0] / errs[1]) - expect) < 0.3


def test_energy_conserved_without_sponge_and_decays_with_it():
    _, E = solve_wave(65, [0.8], c=lambda x, y: 1 + 0.3 * (x > 0), sponge_width=0.0, return_energy=True)
    assert np.abs(E - E[0]).max() <= 1e-10 * E[0]
    _, E = solve_wave(129, [1.5], sponge_width=0.3, return_energy=True)
    assert np.all(np.diff(E) <= 1e-12 * E[0])
    assert E[-1] < 0.01 * E[0]  # the sponge absorbed the pulse


def test_cfl_violation_refused_with_limit():
    h = 2.0 / 64
    limit = cfl_limit((h, h), 1.0, 2)
    assert limit == pytest.approx(h / np.sqrt(2))
    with pytest.raises(ValueError, match=f"CFL limit {limit:.6g}"):
        solve_wave(65, [0.1], dt=1.01 * limit)
    with pytest.raises(ValueError, match="CFL limit"):
        solve_wave(65, [0.1], order=4, dt=0.99 * limit)  # 4th order has the tighter limit
    solve_wave(65, [0.1], dt=0.99 * limit)  # just below is accepted


def test_snapshots_and_amplitude():
    fs = solve_wave(65, [0.0, 0.05, 0.1])
    assert [f.params["t"] for f in fs] == [0.0, 0.05, 0.1]
    assert fs[0].values.max() == pytest.approx(0.02)
    assert fs[0].values.shape == (65, 65)
