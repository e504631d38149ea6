"""Scattered-field Helmholtz: the values-only spec, background fields and the cubic interpolant."""

import numpy as np
import pytest
import sympy
import torch

from pinnsiren import Field, compile_residual

K, N, VAR, SRC = 20.0, 257, 1e-4, (-0.3, 0.0)


def _bump(X, Y):
    """A C^2 compact low-velocity-contrast bump (m 0.5 at the centre), away from the source."""
    r2 = (X**2 + Y**2) / 0.15**2
    return 1 - 0.5 * np.maximum(0, 1 - r2) ** 3


@pytest.fixture(scope="module")
def fd_fields():
    from solvers.fwi.fwi_background import background_fields

    u0 = background_fields([SRC], K, VAR, N)[0]
    u = background_fields([SRC], K, VAR, N, m0=_bump)[0]
    return u0, u


class _FieldNet(torch.nn.Module):
    """A 'network' whose output is the cubic interpolant of FD node values (2 channels: re, im)."""

    def __init__(self, values):
        super().__init__()
        from solvers.fwi.fwi_background import CubicInterpolant

        self.i = CubicInterpolant(values, [(-1, 1), (-1, 1)])

    def forward(self, x):
        z = self.i(x)
        return torch.stack([z.real, z.imag], 1)


@pytest.mark.parametrize("m0, conj, ok", [(1.0, False, True), (1.05, False, False), (1.0, True, False)])
def test_scattered_spec_reproduces_fd_total_field(fd_fields, m0, conj, ok):
    """H(m) us + k^2 e_x e_y (m - m0) u0 vanishes for us = u_FD - u0_FD (rel. 1.5 %, FD + interpolation error),
    and is O(1) relative to the forcing for a wrong m0 or a conjugated u0."""
    from equations.helmholtz import helmholtz_scattered
    from solvers.fwi.fwi_background import CubicInterpolant

    u0, u = fd_fields
    x, y = sympy.symbols("x y", real=True)
    us = Field("us", (x, y), complex=True)
    r = compile_residual(helmholtz_scattered(us, K, m="m", m0=m0, u0="u0"), [us], (x, y), coefficients=["m", "u0"])
    g = np.linspace(-0.45, 0.45, 90) + 0.0029  # off the nodes
    X, Y = np.meshgrid(g, g, indexing="ij")
    pts = torch.tensor(np.stack([X.ravel(), Y.ravel()], 1))
    u0i = CubicInterpolant(u0.values.conj() if conj else u0.values, [(-1, 1), (-1, 1)])
    m = torch.tensor(_bump(X.ravel(), Y.ravel()))
    res = r(_FieldNet(u.values - u0.values), pts, m=m, u0=u0i(pts)).detach().numpy()
    force = K**2 * (m.numpy() - 1) * u0i(pts).detach().numpy()
    rel = np.linalg.norm(res) / np.linalg.norm(force)
    if ok:
        assert rel < 0.05
    else:
        assert rel > 0.5


def test_scattered_spec_is_zero_for_m_equal_m0():
    """For m = m0 the spec is H(m0) us: no forcing, so us = 0 solves it exactly."""
    from equations.helmholtz import helmholtz_scattered

    x, y = sympy.symbols("x y", real=True)
    us = Field("us", (x, y), complex=True)
    expr = helmholtz_scattered(us, K, m=1, m0=1, u0="u0")
    assert not expr.has(sympy.Function("u0")(x, y))


def test_cubic_interpolant_exact_for_cubics_and_beats_bilinear_near_source():
    from pinnsiren.coefficients import GridInterpolant
    from solvers.fwi.fwi_background import CubicInterpolant

    n = 21
    t = np.linspace(-1, 1, n)
    X, Y = np.meshgrid(t, t, indexing="ij")
    f = lambda a, b: 1 + a - 2 * b + a**3 * b**2 - 0.5 * b**3 + 1j * a**2 * b  # noqa: E731
    pts = np.random.default_rng(0).uniform(-1, 1, (200, 2))
    got = CubicInterpolant(f(X, Y), [(-1, 1), (-1, 1)])(torch.tensor(pts)).numpy()
    np.testing.assert_allclose(got, f(pts[:, 0], pts[:, 1]), atol=1e-12)
    # near the paper's narrow source (std 0.01): a 513^2 FD field, subsampled to 257^2 and interpolated back
    from solvers.fwi.fwi_background import background_fields

    fine = background_fields([SRC], K, VAR, 513)[0]
    coarse = fine.values[::2, ::2]
    Xf, Yf = fine.grid.coords()
    near = (Xf - SRC[0]) ** 2 + (Yf - SRC[1]) ** 2 < 0.05**2
    p = torch.tensor(np.stack([Xf[near], Yf[near]], 1))
    ref = fine.values[near]
    e_cub = np.linalg.norm(CubicInterpolant(coarse, [(-1, 1), (-1, 1)])(p).numpy() - ref) / np.linalg.norm(ref)
    e_lin = np.linalg.norm(GridInterpolant(coarse, [(-1, 1), (-1, 1)])(p).numpy() - ref) / np.linalg.norm(ref)
    assert e_cub < 0.002 and e_cub < 0.3 * e_lin  # measured 0.0008 vs 0.008


def _disc(X, Y):
    return np.where(X**2 + Y**2 < 0.01, 0.25, 1.0)


def test_scatterer_support_is_the_widened_inclusion():
    from solvers.fwi.fwi_background import scatterer_support

    s = scatterer_support(_disc, 1.0, n=257, margin=0.05)
    assert s.area == pytest.approx(np.pi * 0.15**2, rel=0.05)
    x, _ = s.sample(4000, 0, torch.Generator().manual_seed(0))
    r = x.norm(dim=1)
    h = 2 / 256
    assert float(r.max()) < 0.15 + 1.5 * h and float(r.min()) < 0.02
    # uniform over the set: the fraction inside the disc is its share of the area
    assert float((r < 0.1).double().mean()) == pytest.approx(np.pi * 0.01 / s.area, abs=0.04)
    assert scatterer_support(lambda X, Y: np.ones_like(X), 1.0) is None


def test_smoothed_medium_keeps_mass_and_follows_the_erf_profile():
    from scipy.special import erfc

    from solvers.fwi.fwi_background import smoothed

    sig = 0.01
    ms = smoothed(_disc, sig, n=513)
    lin = np.linspace(-0.3, 0.3, 241)
    X, Y = np.meshgrid(lin, lin, indexing="ij")
    dA = (lin[1] - lin[0]) ** 2
    # the filter conserves the integral of m - 1 (-0.75 pi 0.1^2)
    assert np.sum(ms(X, Y) - 1) * dA == pytest.approx(-0.75 * np.pi * 0.01, rel=0.02)
    # across the (large-radius) interface: 1 - 0.75 * erfc((r - R) / (sqrt 2 sig)) / 2
    r = np.array([0.08, 0.095, 0.1, 0.105, 0.12])
    want = 1 - 0.75 * 0.5 * erfc((r - 0.1) / (np.sqrt(2) * sig))
    got = ms(r, np.zeros_like(r))
    np.testing.assert_allclose(got, want, atol=0.02)
    assert abs(ms(np.array([0.0]), np.array([0.0]))[0] - 0.25) < 1e-3


def test_last_layer_least_squares_on_the_scattered_problem():
    """The scattered spec (data-backed m, m0, u0) is affine in us: the assembled system reproduces the
    network's residual (checked inside), and the solved layer gives the problem's own loss on those points."""
    from pinnsiren.lstsq import solve_last_layer
    from pinnsiren.networks import build_model
    from solvers.pde import helmholtz as H

    cfg = H.HelmholtzConfig(k=6.0, source_var=4e-3, grid_n=64, medium="circle", formulation="scattered", norm="l2",
                            points=256, scatterer_points=64, smooth_medium=0.02)
    prob = H.pose(cfg)
    assert set(prob.constraints) == {"pde", "scatterer"}
    assert prob.constraints["scatterer"].weight == pytest.approx(H.scatterer_region(cfg).area / 4)
    torch.manual_seed(0)
    net = build_model("siren", 2, 2, 32, 1, first_omega_0=10.0).double()
    g = torch.Generator().manual_seed(2)
    samples = {n: (c.where.sample(c.n, 0, g)[0].double(), {}) for n, c in prob.constraints.items()}
    info = solve_last_layer(prob, net, samples=samples)
    with torch.no_grad():
        loss = sum(float(prob.pointwise(n, net, x, d).mean()) for n, (x, d) in samples.items())
    assert loss == pytest.approx(info["loss_after"], rel=1e-6)
    assert info["loss_after"] < 0.5 * info["loss_before"]


def test_hybrid_scattered_solve_runs_and_reports():
    from solvers.pde import helmholtz as H

    cfg = H.HelmholtzConfig(k=6.0, source_var=4e-3, grid_n=64, medium="circle", formulation="scattered", norm="l2",
                            hidden=16, layers=1, points=128, source_points=0, scatterer_points=32, smooth_medium=0.02,
                            lstsq_every=1, lstsq_points=512, steps=3, eval_every=0, progress=False)
    r = H.solve(cfg)
    m = r["metrics"]
    assert m["lstsq_rank"] <= m["lstsq_unknowns"] == 2 * 17
    assert np.isfinite(m["rel_l2"])
    with pytest.raises(ValueError, match="scattered"):
        H.HelmholtzConfig(smooth_medium=0.01).validate()


def test_scattered_benchmark_smoke():
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=str(root), OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "benchmarks/helmholtz_scattered.py", "--quick", "--variants", "full,adam"],
                         capture_output=True, text=True, timeout=300, cwd=root, env=env)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout[out.stdout.index("{\n"):])
    assert set(data["results"]) == {"circle/full", "circle/adam"}
    assert all(np.isfinite(r["rel_l2"]) for r in data["results"].values())
