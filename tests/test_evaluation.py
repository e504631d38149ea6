"""pinnsiren.evaluate: chunked == unchunked, numpy in -> numpy out, torch in -> torch out, structures, grad."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pinnsiren.evaluation import evaluate
from pinnsiren.networks import Siren


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(3)
    return Siren(2, 3, 16, 2, first_omega_0=5.0).double()


@pytest.mark.parametrize("chunk", [1, 7, 100, 1000])
def test_chunked_equals_unchunked(net, chunk):
    x = np.random.default_rng(0).uniform(-1, 1, (123, 2))
    with torch.no_grad():
        full = net(torch.as_tensor(x)).numpy()
    out = evaluate(net, x, chunk=chunk)
    assert isinstance(out, np.ndarray) and out.shape == (123, 3)
    np.testing.assert_allclose(out, full, rtol=0, atol=1e-14)


def test_torch_in_torch_out_dtype_follows_model(net):
    x = torch.rand(50, 2, dtype=torch.float32)
    out = evaluate(net, x, chunk=16)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float64 and not out.requires_grad
    torch.testing.assert_close(out, net(x.double()).detach(), rtol=0, atol=1e-14)


def test_structures_and_grad(net):
    x = np.random.default_rng(1).uniform(-1, 1, (40, 2))

    def fn(m, xb):
        xb.requires_grad_(True)
        u = m(xb)[:, 0]
        (g,) = torch.autograd.grad(u.sum(), xb)
        return {"u": u, "pair": (g[:, 0], g[:, 1])}

    out = evaluate(net, x, chunk=9, fn=fn, grad=True)
    xt = torch.as_tensor(x).requires_grad_(True)
    u = net(xt)[:, 0]
    (g,) = torch.autograd.grad(u.sum(), xt)
    np.testing.assert_allclose(out["u"], u.detach().numpy(), atol=1e-14)
    np.testing.assert_allclose(out["pair"][0], g[:, 0].numpy(), atol=1e-12)
    np.testing.assert_allclose(out["pair"][1], g[:, 1].numpy(), atol=1e-12)
    with pytest.raises(RuntimeError):  # no graph without grad=True
        evaluate(net, x, chunk=9, fn=fn)


def test_no_graph_and_empty(net):
    out = evaluate(net, torch.rand(5, 2, dtype=torch.float64), chunk=2, fn=lambda m, x: m(x) * 2)
    assert not out.requires_grad and out.grad_fn is None
    assert evaluate(net, np.zeros((0, 2))).shape == (0,)
    with pytest.raises(ValueError, match="chunk"):
        evaluate(net, np.zeros((3, 2)), chunk=0)
