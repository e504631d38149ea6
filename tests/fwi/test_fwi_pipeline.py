"""The ``pinnsiren fwi`` pipeline and the neural FWI problem, smoke-sized."""

import h5py
import numpy as np
import pytest
import torch

from reference.fwi import Acquisition, simulate_data, slowness_model


@pytest.fixture(scope="module")
def tiny_data():
    acq = Acquisition.paper()
    return acq, simulate_data(acq, slowness_model("circle"), n=61)


def test_neural_slowness_parametrisation(tiny_data):
    """m = 1 + max(q, -0.999) inside |x|_inf <= 0.75, exactly 1 outside."""
    from solvers.fwi.fwi_neural import NeuralFWIConfig, build_problems

    acq, obs = tiny_data
    _, _, m_fn = build_problems(acq, obs.d, NeuralFWIConfig(m_param="official"))

    class Const(torch.nn.Module):
        def __init__(self, q):
            super().__init__()
            self.q = q
            self.lin = torch.nn.Linear(2, 11)  # gives the model a dtype/device; output overwritten

        def forward(self, x):
            out = torch.zeros(x.shape[0], 11, dtype=x.dtype) + 0 * self.lin(x)
            out[:, 10] = self.q
            return out

    pts = torch.tensor([[0.0, 0.0], [0.7, -0.7], [0.8, 0.0], [0.0, -0.95]], dtype=torch.float32)
    np.testing.assert_allclose(m_fn(Const(0.5), pts).detach().numpy(), [1.5, 1.5, 1.0, 1.0], atol=1e-6)
    np.testing.assert_allclose(m_fn(Const(-5.0), pts).detach().numpy(), [0.001, 0.001, 1.0, 1.0], atol=1e-6)


class _ConstQ(torch.nn.Module):
    """11 channels, all zero except the raw slowness output ``q``."""

    def __init__(self, q):
        super().__init__()
        self.q = q
        self.lin = torch.nn.Linear(2, 11)

    def forward(self, x):
        out = torch.zeros(x.shape[0], 11, dtype=x.dtype) + 0 * self.lin(x)
        out[:, 10] = self.q
        return out


@pytest.mark.parametrize("param", ["bounded", "clamp"])
def test_neural_bounded_slowness(tiny_data, param):
    """Bounded parametrisations: q = 0 gives m = 1, and m stays in the ADMM bounds [1/9, 4]; 1 outside."""
    from solvers.fwi.fwi_neural import NeuralFWIConfig, build_problems

    acq, obs = tiny_data
    _, _, m_fn = build_problems(acq, obs.d, NeuralFWIConfig(m_param=param))
    pts = torch.tensor([[0.0, 0.0], [0.7, -0.7], [0.8, 0.0], [0.0, -0.95]], dtype=torch.float32)
    for q, inner in [(0.0, 1.0), (50.0, 4.0), (-50.0, 1 / 9)]:
        np.testing.assert_allclose(m_fn(_ConstQ(q), pts).detach().numpy(), [inner, inner, 1.0, 1.0], atol=1e-5)
    with pytest.raises(ValueError, match="m_param"):
        build_problems(acq, obs.d, NeuralFWIConfig(m_param="nope"))


def test_neural_stage2_slowness_term_and_auto_weight(tiny_data):
    """slowness_weight_fwi > 0 keeps ||m - 1||_1 in stage 2; source_weight='auto' balances pde_src with pde."""
    from pinnsiren import Siren
    from solvers.fwi.fwi_neural import NeuralFWIConfig, _auto_weight, build_problems

    acq, obs = tiny_data
    cfg = NeuralFWIConfig(batch=64, slowness_weight_fwi=0.1, source_weight="auto")
    torch.manual_seed(0)
    model = Siren(2, 11, 32, 2)
    lam = _auto_weight(acq, obs.d, cfg, model)
    assert np.isfinite(lam) and lam > 0
    _, fwi, _ = build_problems(acq, obs.d, cfg, lam)
    lf = fwi.losses(model, 0, torch.Generator().manual_seed(0))
    assert set(lf) == {"pde", "pde_src", "data", "slowness"}


def test_neural_losses_names_and_data_term(tiny_data):
    """The stage losses exist with the documented names and are finite on a fresh SIREN."""
    from pinnsiren import Siren
    from solvers.fwi.fwi_neural import NeuralFWIConfig, build_problems

    acq, obs = tiny_data
    pre, fwi, _ = build_problems(acq, obs.d, NeuralFWIConfig(batch=64, slowness_weight_fwi=0.0))  # paper stage 2
    torch.manual_seed(0)
    model = Siren(2, 11, 32, 2)
    g = torch.Generator().manual_seed(0)
    lp, lf = pre.losses(model, 0, g), fwi.losses(model, 0, g)
    assert set(lp) == {"pde", "pde_src", "slowness"} and set(lf) == {"pde", "pde_src", "data"}
    assert all(torch.isfinite(v) for v in [*lp.values(), *lf.values()])
    # the data term is lambda_data * mean over receivers of sum_s |u_s - d_s|
    with torch.no_grad():
        out = model(torch.as_tensor(acq.receivers, dtype=torch.float32)).double().numpy()
    u = np.stack([out[:, 2 * s] + 1j * out[:, 2 * s + 1] for s in range(5)], 1)
    expect = 10.0 * np.mean(np.abs(u - obs.d).sum(1))
    assert float(lf["data"].detach()) == pytest.approx(expect, rel=1e-4)


def test_cli_fwi_smoke(tmp_path, capsys):
    from pinnsiren.cli import main

    rc = main(["fwi", "--quick", "--n", "31", "--admm-iters", "2", "--adjoint-iters", "2", "--pretrain-steps", "2",
               "--fwi-steps", "2", "--hidden", "16", "--layers", "1", "--batch", "32", "--out", str(tmp_path),
               "--noise-snr", "30", "--reparam-iterations", "3"])
    assert rc == 0
    text = capsys.readouterr().out
    for name in ("uniform start", "ADMM (IR-WRI)", "adjoint-state", "PINN-FWI total (paper)", "PINN-FWI scattered",
                 "neural-reparameterised"):
        assert f"| {name} |" in text
    with h5py.File(tmp_path / "fwi.h5", "r") as f:
        assert f.attrs["kind"] == "fwi"
        assert {"threads", "world_size", "commit", "seed", "device", "torch_version"} <= set(f.attrs)  # provenance
        for k in ("velocity_true", "velocity_admm", "velocity_adjoint", "velocity_neural", "wavefields_admm",
                  "wavefields_neural", "velocity_neural_scattered", "velocity_reparam", "wavefields_reparam",
                  "data_observed"):
            assert k in f["fields"], k
        assert f["fields/wavefields_admm"].shape == (5, 31, 31)
        assert f["metrics"].attrs["admm/velocity_mse"] > 0
        assert "admm.velocity_mse" in f["history"]
    assert (tmp_path / "fwi.png").stat().st_size > 10_000


def test_cli_fwi_rejects_bad_grid(tmp_path):
    from pinnsiren.cli import main

    assert main(["fwi", "--quick", "--n", "11", "--skip-neural", "--out", str(tmp_path)]) == 1


@pytest.mark.slow
def test_scattered_pinn_fwi_stage1_returns_zero_scattered_field(tiny_data):
    """Scattered formulation: stage 1 (m = m0) has no forcing, so it drives us to ~0, while u0 carries the field;
    the data term targets d - u0 at the receivers."""
    from solvers.fwi.fwi_neural import NeuralFWIConfig, build_problems, evaluate_model, neural_fwi

    acq, obs = tiny_data
    cfg = NeuralFWIConfig(formulation="scattered", hidden=32, layers=2, pretrain_steps=40,
                          fwi_steps=0, batch=128, lr=1e-4, u0_grid=129)
    t = np.linspace(-0.5, 0.5, 41)
    X, Y = np.meshgrid(t, t, indexing="ij")
    r = neural_fwi(acq, obs.d, cfg, progress=False)
    assert r.history_pretrain["loss.pde"][0] < 1e-12  # starts at the exact solution of stage 1
    m, us = evaluate_model(r.model, r.m_fn, (X, Y), 5)
    _, u_total = evaluate_model(r.model, r.m_fn, (X, Y), 5, background=r.background)
    u0 = u_total - us
    assert np.linalg.norm(us) < 0.02 * np.linalg.norm(u0)
    np.testing.assert_allclose(m, 1.0, atol=0.02)
    # u0 is the uniform-medium field: close to the FD field of the true model away from the disc, at the receivers
    u0_rec = np.stack([f(torch.as_tensor(acq.receivers)).numpy() for f in r.background], 1)
    uni = simulate_data(acq, 1.0, n=129).d
    assert np.linalg.norm(u0_rec - uni) / np.linalg.norm(uni) < 0.01
    _, fwi, _ = build_problems(acq, obs.d, cfg, u0=r.background)
    assert set(fwi.losses(r.model, 0, torch.Generator().manual_seed(0))) == {"pde", "data", "slowness"}


def test_cli_fwi_paper_data_file(tmp_path, capsys):
    """`pinnsiren fwi --data FILE.mat` inverts the paper's own data (skips where the file is absent)."""
    from pinnsiren.cli import main
    from reference.fwi import paper_data_path

    p = paper_data_path()
    if not p.is_file():
        pytest.skip(f"the paper's FWI data file is absent ({p}); it is never bundled")
    rc = main(["fwi", "--quick", "--n", "31", "--admm-iters", "3", "--adjoint-iters", "3", "--skip-pinn",
               "--reparam-iterations", "3", "--no-figure", "--data", str(p), "--out", str(tmp_path)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "rec_val / -(1+i)" in text and "| ADMM (IR-WRI) |" in text
    with h5py.File(tmp_path / "fwi.h5", "r") as f:
        from reference.fwi import load_paper_data

        np.testing.assert_allclose(f["fields/data_observed"][()], load_paper_data(p)[1])
