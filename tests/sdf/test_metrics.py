"""Chamfer-L1 and normal consistency against independently computed answers."""

import numpy as np
import pytest

from solvers.geometry_metrics import chamfer_l1, gradient_norm_stats, normal_consistency
from solvers.pointcloud import sample_mesh

from .test_pointcloud import sphere_mesh


def test_chamfer_of_mesh_with_itself_is_zero():
    v, f = sphere_mesh()
    p, n = sample_mesh(v, f, 20000, rng=0)
    assert chamfer_l1(p, p)["chamfer_l1"] == 0.0
    assert normal_consistency(p, n, p, n)["normal_consistency"] == pytest.approx(1.0)
    # independent samplings: only the sampling floor ~ 0.5 sqrt(area / M) per direction remains
    q, m = sample_mesh(v, f, 20000, rng=1)
    floor = 0.5 * np.sqrt(np.pi / 20000)
    assert chamfer_l1(p, q)["chamfer_l1"] < 1.2 * floor
    assert normal_consistency(p, n, q, m)["normal_consistency"] > 0.99


@pytest.mark.parametrize("shift", [0.02, 0.1])
def test_chamfer_of_shifted_copy_is_the_shift(shift):
    # a flat square: every point's nearest neighbour on the shifted copy is straight above it
    rng = np.random.default_rng(0)
    side = np.sqrt(200_000)
    g = (np.stack(np.meshgrid(np.arange(side), np.arange(side), indexing="ij"), -1).reshape(-1, 2) + 0.5) / side
    p = np.hstack([g, np.zeros((len(g), 1))])
    q = p + np.array([0.0, 0.0, shift])
    r = chamfer_l1(p, q)
    # exact search within 0.05, a 1.05-approximate one beyond (documented)
    assert r["chamfer_l1"] == pytest.approx(shift, rel=1e-9 if shift < 0.05 else 0.05)
    assert r["chamfer_l1"] >= shift * (1 - 1e-9)
    # a shift along the surface by a fraction of the spacing is invisible up to that fraction
    r2 = chamfer_l1(p, p + rng.uniform(-0.2, 0.2, size=3) * [1 / side, 1 / side, 0] + [0, 0, shift])
    assert r2["chamfer_l1"] == pytest.approx(shift, rel=0.05)


def test_gradient_norm_stats():
    s = gradient_norm_stats(np.array([1.0, 1.0, 0.5, 1.5]))
    assert s["grad_norm_mean"] == 1.0 and s["grad_norm_abs_dev"] == 0.25
