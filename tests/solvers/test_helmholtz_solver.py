"""Neural Helmholtz pipeline: the compiled spec agrees with the FD solver, and the pipeline runs end to end.

A SIREN fitted by plain regression to the FD solution must (nearly) satisfy the
compiled PML-Helmholtz residual; fitted to the wrong-time-sign field conj(u_FD),
it violates it in the PML; fitted to 2 u_FD, it violates it at the source.
This catches a flipped PML sign, a wrong convention or a wrong source scaling
in either the spec or the reference solver, without a long training run.
"""

import math

import numpy as np
import pytest
import torch

import solvers.pde.helmholtz as H
from pinnsiren import Siren
from pinnsiren.io import read_result


@pytest.fixture(scope="module")
def setup():
    torch.set_num_threads(1)
    cfg = H.HelmholtzConfig(k=6.0, source_var=4e-3, grid_n=128)
    ref = H.reference_solution(cfg)
    g = torch.Generator().manual_seed(1)
    x = torch.rand(4000, 2, generator=g) * 2 - 1
    s = math.sqrt(cfg.source_var)
    xs = torch.randn(1000, 2, generator=g) * s
    return cfg, ref, x, xs


def _fit(ref, target, steps=800):
    torch.manual_seed(0)
    m = Siren(2, 2, 64, 2, first_omega_0=10.0)
    X = torch.tensor(ref.grid.points(), dtype=torch.float32)
    Y = torch.tensor(np.stack([target.real, target.imag], 1), dtype=torch.float32)
    opt = torch.optim.Adam(m.parameters(), 1e-3)
    g = torch.Generator().manual_seed(2)
    for _ in range(steps):
        i = torch.randint(0, len(X), (4096,), generator=g)
        loss = ((m(X[i]) - Y[i]) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return m


def _relative_residuals(cfg, m, x, xs):
    prob = H.pose(cfg, 1.0)
    r = prob.residual("pde", m, x).detach()
    rs = prob.residual("pde", m, xs).detach()
    with torch.no_grad():
        o = m(x)
    u = torch.complex(o[:, 0], o[:, 1])
    scale = float((cfg.k**2 * u).abs().mean())  # one global scale
    pml = x.abs().max(1).values > 0.55
    f = torch.exp(-(xs**2).sum(1) / (2 * cfg.source_var)) / (2 * math.pi * cfg.source_var)
    return float(r[pml].abs().mean()) / scale, float(rs.abs().mean() / f.mean())


@pytest.mark.slow
def test_fd_solution_satisfies_compiled_spec_and_wrong_ones_do_not(setup):
    cfg, ref, x, xs = setup
    U = ref.values.ravel()
    good_pml, good_src = _relative_residuals(cfg, _fit(ref, U), x, xs)
    conj_pml, _ = _relative_residuals(cfg, _fit(ref, U.conj()), x, xs)
    _, twice_src = _relative_residuals(cfg, _fit(ref, 2 * U), x, xs)
    print(dict(good_pml=good_pml, good_src=good_src, conj_pml=conj_pml, twice_src=twice_src))
    assert good_pml < 0.5 * conj_pml
    assert good_src < 0.5 * twice_src


def test_pipeline_runs_and_writes_results(tmp_path):
    cfg = H.HelmholtzConfig(k=5.0, source_var=1e-2, hidden=16, layers=1, points=128, source_points=32,
                            steps=6, grid_n=48, eval_every=3, progress=False)
    res = H.run(cfg, ["siren", "tanh"], tmp_path)
    r = read_result(res["h5"])
    assert r["attrs"]["kind"] == "helmholtz"
    assert {"threads", "world_size", "commit", "seed", "device", "torch_version"} <= set(r["attrs"])  # provenance
    assert {"rel_l2_siren", "rel_l2_far_siren", "rel_l2_tanh"} <= set(r["metrics"])
    assert list(r["history"]["siren/eval_step"]) == [3, 6]
    assert r["fields"]["reference"].dtype.kind == "c"
    assert res["png"].stat().st_size > 20_000
    # the metric is what it says: the stored network against the stored FD field
    ev = H._Evaluator(res["reference"], cfg.source_position())
    assert ev(res["results"]["siren"]["model"])["rel_l2"] == pytest.approx(r["metrics"]["rel_l2_siren"], rel=1e-6)


def test_relative_errors_definition():
    u_ref = np.array([1.0, 1j, -1.0, 2.0])
    far = np.array([True, True, False, True])
    e = H.relative_errors(u_ref * 1.1, u_ref, far)
    assert e["rel_l2"] == pytest.approx(0.1) and e["rel_l2_far"] == pytest.approx(0.1)
    assert e["mse"] == pytest.approx(0.01 * np.mean(np.abs(u_ref) ** 2))


def test_bad_configuration_is_refused():
    with pytest.raises(ValueError, match="must be one of"):
        H.HelmholtzConfig(medium="lens").validate()
    with pytest.raises(ValueError, match="PML"):
        H.HelmholtzConfig(source=(0.7, 0.0)).validate()


def test_scattered_formulation_background_and_total_field():
    """Scattered formulation: m0 is uniform unless the source sits in m != 1 (layered); the loss vanishes for
    us = 0 only when m = m0, and TotalField(0) is u0 (the FD background) at the nodes."""
    from solvers.fwi.fwi_background import CubicInterpolant

    circ = H.HelmholtzConfig(k=6.0, source_var=4e-3, grid_n=64, medium="circle", formulation="scattered")
    lay = H.HelmholtzConfig(k=6.0, source_var=4e-3, grid_n=64, medium="layered", formulation="scattered")
    assert H._m0_numpy(circ) == 1.0
    m0 = H._m0_numpy(lay)
    sx, sy = lay.source_position()
    assert m0(np.array([sx]), np.array([sy]))[0] == pytest.approx(1 / 1.2**2)  # the source's layer
    assert m0(np.array([0.3]), np.array([0.3]))[0] == 1.0

    class Zero(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(()))

        def forward(self, x):
            return torch.zeros(x.shape[0], 2, dtype=x.dtype) + self.w

    u0 = H.background(circ)
    g = torch.Generator().manual_seed(0)
    loss_circ = float(H.pose(circ, u0=u0).losses(Zero(), 0, g)["pde"])
    uni = H.HelmholtzConfig(k=6.0, source_var=4e-3, grid_n=64, medium="uniform", formulation="scattered")
    loss_uni = float(H.pose(uni).losses(Zero(), 0, g)["pde"])
    assert loss_uni == 0.0 and loss_circ > 1e-3
    pts = u0.grid.points()[::7]
    tf = H.TotalField(Zero(), u0)
    out = tf(torch.tensor(pts)).detach().numpy()
    np.testing.assert_allclose(out[:, 0] + 1j * out[:, 1], u0.values.ravel()[::7], atol=1e-12)
    assert isinstance(tf.u0, CubicInterpolant)


def test_scattered_formulation_refuses_unknown_choices():
    with pytest.raises(ValueError, match="formulation"):
        H.HelmholtzConfig(formulation="nope").validate()
    with pytest.raises(ValueError, match="m0"):
        H.HelmholtzConfig(m0="nope").validate()


def test_method_defaults_follow_the_formulation():
    """Fields left at None take the chosen formulation's measured recipe; explicit values win."""
    from solvers.pde import helmholtz as H

    tot, sca = H.HelmholtzConfig(), H.HelmholtzConfig(formulation="scattered")
    assert (tot.norm, tot.lstsq_every, tot.lstsq_points, tot.scatterer_points, tot.smooth_medium) == ("l1", 0, 0, 0, 0.0)
    assert (sca.norm, sca.lstsq_every, sca.lstsq_points, sca.scatterer_points, sca.smooth_medium) == (
        "l2", 1, 16384, 512, 0.01)
    assert H.HelmholtzConfig(formulation="scattered", lstsq_every=0, norm="l1").lstsq_every == 0
    tot.validate()
    sca.validate()
    with pytest.raises(ValueError, match="norm"):
        H.HelmholtzConfig(norm="l3").validate()
