"""Jet (Taylor-mode) path against autograd and against closed form."""

import numpy as np
import pytest
import torch

from pinnsiren.jet import derivatives, jet_supported
from pinnsiren.jet_keys import Laplacian
from pinnsiren.networks import MLP, Siren

from .analytic import all_keys, channel_derivatives, siren_sympy, tiny_siren

NEEDS3 = [(c, a) for c in range(2) for a in [(0, 0, 0), (1, 0, 0), (0, 0, 1), (2, 0, 0), (1, 1, 0), (0, 1, 2), (0, 0, 2), (1, 0, 1)]]


def _models():
    torch.manual_seed(7)
    yield "siren", Siren(3, 2, 16, 1)
    for act in ("relu", "tanh", "sigmoid", "softplus", "elu", "selu"):
        yield act, MLP(3, 2, 16, 1, act)
    yield "relu+pe", MLP(3, 2, 16, 1, "relu", "pe", num_frequencies=4)
    yield "rbf", MLP(3, 2, 16, 1, "relu", "rbf", rbf_centers=32)
    yield "tanh+rbf", MLP(3, 2, 16, 1, "tanh", "rbf", rbf_centers=32)
    yield "elu+pe", MLP(3, 2, 16, 1, "elu", "pe", num_frequencies=3)


@pytest.mark.parametrize("name,model", list(_models()), ids=[n for n, _ in _models()])
def test_jet_matches_autograd(name, model):
    model = model.double()
    assert jet_supported(model)
    g = torch.Generator().manual_seed(3)
    x = torch.rand(64, 3, generator=g, dtype=torch.float64) * 2 - 1
    needs = [(c, a) for c, a in NEEDS3 if sum(a) <= 2]
    J = derivatives(model, x, needs, method="jet")
    A = derivatives(model, x, needs, method="autograd")
    assert set(J) == set(needs)
    for k in needs:
        scale = A[k].abs().max().item() + 1e-12
        assert torch.allclose(J[k], A[k], rtol=0, atol=1e-10 * scale + 1e-13), (name, k)
    # parameter gradients through the jet agree too
    loss_j = sum((J[k] ** 2).mean() for k in needs)
    loss_a = sum((A[k] ** 2).mean() for k in needs)
    gj = torch.autograd.grad(loss_j, list(model.parameters()), allow_unused=True)
    ga = torch.autograd.grad(loss_a, list(model.parameters()), allow_unused=True)
    for a, b in zip(gj, ga):
        if a is None or b is None:
            continue
        assert torch.allclose(a, b, rtol=1e-8, atol=1e-10 * (b.abs().max().item() + 1e-12))


def test_relu_second_derivative_is_zero():
    model = MLP(2, 1, 16, 1, "relu").double()
    x = torch.rand(20, 2, dtype=torch.float64)
    J = derivatives(model, x, [(0, (2, 0)), (0, (1, 1))], method="jet")
    assert torch.all(J[(0, (2, 0))] == 0) and torch.all(J[(0, (1, 1))] == 0)


def test_jet_matches_closed_form_siren():
    m = tiny_siren(2)
    ref = channel_derivatives(siren_sympy(m))
    pts = np.random.default_rng(5).uniform(-1, 1, size=(50, 2))
    J = derivatives(m, torch.from_numpy(pts), all_keys(2), method="jet")
    for k, f in ref.items():
        want = np.broadcast_to(f(pts[:, 0], pts[:, 1]), (50,))
        np.testing.assert_allclose(J[k].detach().numpy(), want, rtol=1e-10, atol=1e-12)


def test_higher_order_falls_back_to_autograd():
    m = tiny_siren(1)
    import sympy
    from .analytic import X, Y
    (u,) = siren_sympy(m)
    pts = np.random.default_rng(6).uniform(-1, 1, size=(10, 2))
    D = derivatives(m, torch.from_numpy(pts), [(0, (3, 1)), (0, (0, 4))])
    for a, v in (((3, 1), D[(0, (3, 1))]), ((0, 4), D[(0, (0, 4))])):
        f = sympy.lambdify((X, Y), sympy.diff(u, X, a[0], Y, a[1]), "numpy")
        np.testing.assert_allclose(v.detach().numpy(), f(pts[:, 0], pts[:, 1]), rtol=1e-9, atol=1e-10)
    with pytest.raises(ValueError, match="orders <= 2"):
        derivatives(m, torch.from_numpy(pts), [(0, (3, 0))], method="jet")


def test_bad_requests():
    m = tiny_siren(1)
    x = torch.zeros(3, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match="channel 1"):
        derivatives(m, x, [(1, (0, 0))])
    with pytest.raises(ValueError, match="multi-index needs 2"):
        derivatives(m, x, [(0, (1,))])
    with pytest.raises(ValueError, match="unknown method"):
        derivatives(m, x, [(0, (0, 0))], method="fd")


@pytest.mark.parametrize("needs", [
    [(0, (0, 0, 0))],
    [(0, (1, 0, 0)), (1, (0, 0, 1))],
    [(0, (2, 0, 0)), (0, (0, 2, 0))],
    [(c, a) for c, a in NEEDS3 if sum(a) <= 2],
], ids=["value", "first", "laplacian", "mixed"])
def test_fused_siren_matches_generic(needs):
    """The fused SIREN path (x without grad) equals the composable path (x with grad)."""
    torch.manual_seed(11)
    model = Siren(3, 2, 24, 2).double()
    x = torch.rand(40, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64) * 2 - 1
    F = derivatives(model, x, needs, method="jet")
    Gn = derivatives(model, x.clone().requires_grad_(True), needs, method="jet")
    A = derivatives(model, x, needs, method="autograd")
    for k in needs:
        scale = A[k].abs().max().item() + 1e-12
        assert torch.allclose(F[k], Gn[k], rtol=0, atol=1e-11 * scale + 1e-13), k
        assert torch.allclose(F[k], A[k], rtol=0, atol=1e-10 * scale + 1e-13), k
    w = {k: torch.randn(x.shape[0], dtype=torch.float64, generator=torch.Generator().manual_seed(i))
         for i, k in enumerate(needs)}
    gf = torch.autograd.grad(sum((w[k] * F[k]).sum() for k in needs), list(model.parameters()))
    gg = torch.autograd.grad(sum((w[k] * Gn[k]).sum() for k in needs), list(model.parameters()))
    for a, b in zip(gf, gg):
        assert torch.allclose(a, b, rtol=1e-9, atol=1e-11 * (b.abs().max().item() + 1e-12))


# ---------------------------------------------------------------- collapsed (forward-Laplacian) slot


def _lap_cases(x):
    """Laplacian, constant-weighted, per-point weighted (wave-type: -c(x)^2 on space, 1 on time)."""
    c2 = (1 + x[:, 0] / 4) ** 2
    return {
        "laplacian": [(1.0, 1.0, 1.0)],
        "weighted": [(2.0, 0.0, -0.5)],
        "wave": [(-c2, -c2, 1.0)],
        "two groups": [(0.0, 0.0, 1.0), (1.0, 1.0, 0.0)],
    }


@pytest.mark.parametrize("case", ["laplacian", "weighted", "wave", "two groups"])
@pytest.mark.parametrize("name,model", list(_models()) + [("siren-deep", Siren(3, 2, 24, 2))],
                         ids=[n for n, _ in _models()] + ["siren-deep"])
def test_collapsed_slot_matches_full_jet_and_autograd(case, name, model):
    """One collapsed slot == the weighted sum of the full jet's pure second derivatives
    == the same sum by nested autograd; values and parameter gradients; fused
    SIREN path (x without grad) and generic path (x with grad)."""
    model = model.double()
    x = torch.rand(48, 3, generator=torch.Generator().manual_seed(4), dtype=torch.float64) * 2 - 1
    groups = [Laplacian(w) for w in _lap_cases(x)[case]]
    needs = [(c, g) for g in groups for c in (0, 1)] + [(0, (1, 0, 0)), (1, (0, 0, 0))]
    pure = [(c, tuple(2 * (i == k) for i in range(3))) for c in (0, 1) for k in range(3)]
    full = derivatives(model, x, pure + needs[-2:], method="jet")
    ref = derivatives(model, x, pure + needs[-2:], method="autograd")
    results = {"fused": derivatives(model, x, needs, method="jet"),
               "generic": derivatives(model, x.clone().requires_grad_(True), needs, method="jet"),
               "autograd": derivatives(model, x, needs, method="autograd")}
    want = {}
    for c, g in needs[:-2]:
        ws = [w if torch.is_tensor(w) else torch.full((48,), float(w), dtype=torch.float64) for w in g.weights]
        want[(c, g)] = (sum(w * full[(c, a)] for w, (_, a) in zip(ws, pure[3 * c: 3 * c + 3])),
                        sum(w * ref[(c, a)] for w, (_, a) in zip(ws, pure[3 * c: 3 * c + 3])))
    for k in needs[-2:]:
        want[k] = (full[k], ref[k])
    probe = {k: torch.randn(48, dtype=torch.float64, generator=torch.Generator().manual_seed(i)) for i, k in enumerate(needs)}
    g_want = torch.autograd.grad(sum((probe[k] * want[k][1]).sum() for k in needs), list(model.parameters()),
                                 allow_unused=True)
    for path, D in results.items():
        for k in needs:
            scale = want[k][1].abs().max().item() + 1e-12
            assert torch.allclose(D[k], want[k][0], rtol=0, atol=1e-11 * scale + 1e-13), (path, k)
            assert torch.allclose(D[k], want[k][1], rtol=0, atol=1e-10 * scale + 1e-13), (path, k)
        g_got = torch.autograd.grad(sum((probe[k] * D[k]).sum() for k in needs), list(model.parameters()),
                                    allow_unused=True)
        for a, b in zip(g_got, g_want):
            if a is None or b is None:
                assert (a is None or a.abs().max() == 0) and (b is None or b.abs().max() == 0), path
                continue
            assert torch.allclose(a, b, rtol=1e-8, atol=1e-10 * (b.abs().max().item() + 1e-12)), path


def test_collapsed_weights_with_grad_flow_to_the_weights():
    """Per-point weights that require grad (e.g. a learnable wave speed): the engine
    takes the generic path and the weight gets its gradient."""
    torch.manual_seed(3)
    model = Siren(2, 1, 16, 1).double()
    x = torch.rand(30, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 2 - 1
    c = torch.tensor(1.7, dtype=torch.float64, requires_grad=True)
    w = (c * (1 + x[:, 0])) ** 2
    lap = Laplacian((w, 1.0))
    L = derivatives(model, x, [(0, lap)])[(0, lap)]
    (gc,) = torch.autograd.grad(L.sum(), c)
    D = derivatives(model, x, [(0, (2, 0))], method="autograd")[(0, (2, 0))]
    assert torch.allclose(gc, (2 * c * (1 + x[:, 0]) ** 2 * D).sum().detach(), rtol=1e-10)


def test_laplacian_request_errors():
    m = tiny_siren(1)
    x = torch.zeros(3, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match="2 coordinates"):
        derivatives(m, x, [(0, Laplacian((1.0,)))])
    with pytest.raises(ValueError, match="must be real"):
        derivatives(m, x, [(0, Laplacian((1j, 1.0)))])
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        derivatives(m, x, [(0, Laplacian((torch.ones(4, dtype=torch.float64), 1.0)))])


# ---------------------------------------------------------------- reused work buffers of the fused path


def _fused_step(model, x, needs, retain=False):
    model.zero_grad(set_to_none=True)
    D = derivatives(model, x, needs, method="jet")
    loss = sum((D[k] ** 2).mean() for k in needs)
    loss.backward(retain_graph=retain)
    return D, loss, [p.grad.clone() for p in model.parameters()]


def test_buffer_pool_reuses_buffers_and_never_overwrites_live_tensors(monkeypatch):
    """With every buffer pooled: the same numbers as without the pool, results of
    earlier steps that the caller keeps stay intact, a second backward through a
    retained graph gives the same gradient, and the pool stops growing."""
    from pinnsiren import buffers

    monkeypatch.setattr(buffers.BufferPool, "MIN_BYTES", 0)
    torch.manual_seed(5)
    model = Siren(3, 1, 16, 2).double()
    lap = Laplacian((1.0, -2.0, 0.5))
    needs = [(0, lap), (0, (0, 0, 0)), (0, (1, 0, 1))]
    xs = [torch.rand(40, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(i)) * 2 - 1 for i in range(4)]
    monkeypatch.setattr(buffers.POOL, "count", None)  # pooling off: the reference
    want = [_fused_step(model, x, needs) for x in xs]
    monkeypatch.undo()
    monkeypatch.setattr(buffers.BufferPool, "MIN_BYTES", 0)
    buffers.release_buffers()
    kept, sizes = [], []
    for x, (Dw, lw, gw) in zip(xs, want):
        D, loss, g = _fused_step(model, x, needs)
        kept.append((D, Dw))
        sizes.append(sum(len(v) for v in buffers.POOL.pool.values()))
        assert torch.allclose(loss, lw, rtol=1e-12, atol=0)
        for a, b in zip(g, gw):
            assert torch.allclose(a, b, rtol=1e-11, atol=1e-14)
    for D, Dw in kept:  # every step's results, read after all steps ran
        for k in needs:
            assert torch.equal(D[k].detach(), Dw[k].detach()), k
    assert sizes[0] > 0 and sizes[-1] <= sizes[1] + len(needs), sizes  # reuse, not growth
    # retain_graph: the backward writes no saved tensor, so a second pass repeats the first
    model.zero_grad(set_to_none=True)
    D = derivatives(model, xs[0], needs, method="jet")
    loss = sum((D[k] ** 2).mean() for k in needs)
    g1 = torch.autograd.grad(loss, list(model.parameters()), retain_graph=True)
    g2 = torch.autograd.grad(loss, list(model.parameters()))
    for a, b, c in zip(g1, g2, want[0][2]):
        assert torch.equal(a, b)
        assert torch.allclose(a, c, rtol=1e-11, atol=1e-14)
    # evaluation under inference_mode first, then training: no inference tensor is handed to training
    buffers.release_buffers()
    with torch.inference_mode():
        Di = derivatives(model, xs[1], needs, method="jet")
    _, loss, g = _fused_step(model, xs[1], needs)
    assert torch.allclose(loss, want[1][1], rtol=1e-12, atol=0)
    assert torch.allclose(Di[needs[0]], want[1][0][needs[0]].detach(), rtol=1e-12, atol=1e-14)
    buffers.release_buffers()
    assert not buffers.POOL.pool


# ---------------------------------------------------------------- reduced-precision backward products


def _bf16_step(precision, needs, x, model):
    from pinnsiren import precision as prec

    with prec.backward_precision(precision):
        return _fused_step(model, x, needs)


@pytest.mark.parametrize("needs", [
    [(0, Laplacian((1.0, 1.0, 1.0)))],
    [(c, a) for c, a in NEEDS3 if sum(a) <= 2],
], ids=["laplacian", "mixed"])
def test_bfloat16_backward_keeps_the_forward_and_bounds_the_gradient_error(needs):
    """backward_precision("bfloat16"): the jet and the loss are bit-identical to
    full precision; parameter gradients differ by the bfloat16 rounding (a
    relative error well above float32's, so the products did run in
    bfloat16, and below 1e-2 against float64)."""
    torch.manual_seed(3)
    model = Siren(3, 2, 64, 3)
    x = torch.rand(512, 3, generator=torch.Generator().manual_seed(4)) * 2 - 1
    D_full, loss_full, g_full = _bf16_step("full", needs, x, model)
    D_bf, loss_bf, g_bf = _bf16_step("bfloat16", needs, x, model)
    assert torch.equal(loss_full, loss_bf)
    for k in needs:
        assert torch.equal(D_full[k], D_bf[k])
    _, _, g64 = _fused_step(model.double(), x.double(), needs)
    model.float()
    flat = lambda gs: torch.cat([g.double().flatten() for g in gs])  # noqa: E731
    ref = flat(g64)
    err_full = ((flat(g_full) - ref).norm() / ref.norm()).item()
    err_bf = ((flat(g_bf) - ref).norm() / ref.norm()).item()
    assert all(g.dtype == torch.float32 for g in g_bf)
    assert err_full < 1e-5
    assert 1e-4 < err_bf < 1e-2, err_bf


def test_backward_precision_setting_is_scoped_and_checked():
    from pinnsiren import precision as prec

    assert prec.set_backward_precision("full") == "full"
    with prec.backward_precision("bfloat16"):
        assert prec._BACKWARD_LOWP is torch.bfloat16
        with pytest.raises(ValueError, match="must be one of"):
            prec.set_backward_precision("half")
    assert prec._BACKWARD_LOWP is None
    with pytest.raises(RuntimeError):
        with prec.backward_precision("bfloat16"):
            raise RuntimeError("inside")
    assert prec._BACKWARD_LOWP is None


def test_bfloat16_backward_leaves_float64_models_alone():
    """A float64 model keeps full-precision products (the setting is for float32)."""
    torch.manual_seed(5)
    model = Siren(2, 1, 16, 2).double()
    x = torch.rand(64, 2, dtype=torch.float64) * 2 - 1
    needs = [(0, Laplacian((1.0, 1.0)))]
    _, _, g_full = _bf16_step("full", needs, x, model)
    _, _, g_bf = _bf16_step("bfloat16", needs, x, model)
    for a, b in zip(g_full, g_bf):
        assert torch.equal(a, b)


def test_bfloat16_backward_warns_where_it_is_not_native(monkeypatch):
    from pinnsiren import precision as prec

    monkeypatch.setattr(prec, "native_bfloat16", lambda device="cpu": False)
    with pytest.warns(UserWarning, match="not native"):
        with prec.backward_precision("bfloat16"):
            pass
    assert prec._BACKWARD_LOWP is None
