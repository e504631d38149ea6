"""Chamfer-L1 and normal consistency against independently computed answers."""

import numpy as np
import pytest

from solvers.sdf.geometry_metrics import (
    chamfer_l1,
    gradient_norm_stats,
    normal_consistency,
    point_to_mesh_distance,
    surface_chamfer_l1,
)
from solvers.sdf.pointcloud import sample_mesh

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


def _dense_triangle_distance(p, tri, n=300):
    """Independent answer: distance to a dense barycentric sampling of each triangle (an upper bound)."""
    from scipy.spatial import cKDTree

    u, v = np.meshgrid(np.linspace(0, 1, n), np.linspace(0, 1, n))
    keep = u + v <= 1
    u, v = u[keep][:, None], v[keep][:, None]
    best = np.full(len(p), np.inf)
    for a, b, c in tri:
        best = np.minimum(best, cKDTree(a + u * (b - a) + v * (c - a)).query(p)[0])
    return best


def test_point_to_mesh_distance_matches_dense_sampling():
    rng = np.random.default_rng(0)
    v = rng.normal(size=(12, 3))
    f = np.array([[0, 1, 2], [3, 4, 5], [6, 7, 8], [9, 10, 11], [0, 3, 6], [1, 1, 2]])  # last one degenerate
    p = rng.normal(size=(400, 3)) * 1.5
    d = point_to_mesh_distance(p, v, f, k=1)  # k=1 forces the widening of the candidate set
    ref = _dense_triangle_distance(p, v[f])
    spacing = np.linalg.norm(v[f] - v[f].mean(1, keepdims=True), axis=2).max() * 2 / 300
    assert np.all(d <= ref + 1e-12)  # exact distance never exceeds a sampled one
    assert np.all(ref - d <= spacing)
    assert (ref - d).max() > 0  # the sampled answer is really coarser (the test can tell them apart)


def test_surface_chamfer_is_floor_free_and_measures_a_shift():
    v, f = sphere_mesh()
    pp, _ = sample_mesh(v, f, 20000, rng=1)
    gp, _ = sample_mesh(v, f, 20000, rng=2)
    same = surface_chamfer_l1(pp, v, f, gp, gt_mesh=(v, f))
    assert same["surface_chamfer_l1"] < 1e-12  # samples lie on both meshes: no sampling floor
    assert chamfer_l1(pp, gp)["chamfer_l1"] > 1e-3  # while the sampled Chamfer has one
    shift = np.array([0.0, 0.0, 0.01])
    moved = surface_chamfer_l1(pp + shift, v + shift, f, gp, gt_mesh=(v, f))
    # a sphere moved by s along z: mean distance |s cos(theta)| over the sphere = s / 2 (to first order)
    assert moved["surface_chamfer_l1"] == pytest.approx(0.005, rel=0.05)
