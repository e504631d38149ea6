"""The indexed point-to-mesh distance against brute force, and the one-pass Chamfer/normal metrics."""

import numpy as np
import pytest

from solvers.sdf.geometry_metrics import (
    TriangleIndex,
    brute_force_distance,
    chamfer_and_normals,
    chamfer_l1,
    closest_point_on_triangles,
    normal_consistency,
    point_to_mesh_distance,
)
from solvers.sdf.pointcloud import sample_mesh

from .test_pointcloud import sphere_mesh


def _mixed_mesh():
    """A small closed sphere mesh plus large, skinny and degenerate triangles (uneven sizes)."""
    v, f = sphere_mesh(res=12, r=0.5)
    extra_v = np.array([
        [-0.9, -0.9, 0.7], [0.9, -0.8, 0.7], [0.0, 0.9, 0.75],          # a large triangle above the sphere
        [-0.8, 0.0, -0.7], [0.8, 0.01, -0.7], [0.8, 0.0, -0.69],        # a long skinny one below
        [0.6, 0.6, 0.0], [0.6, 0.6, 0.0], [0.7, 0.7, 0.1],              # degenerate (two equal vertices)
    ])
    o = len(v)
    f = np.vstack([f, [[o, o + 1, o + 2], [o + 3, o + 4, o + 5], [o + 6, o + 7, o + 8]]])
    return np.vstack([v, extra_v]), f


@pytest.mark.parametrize("k", [1, 8])
def test_indexed_distance_equals_brute_force(k):
    v, f = _mixed_mesh()
    rng = np.random.default_rng(3)
    near, _ = sample_mesh(v, f, 1500, rng=4, orient=False)
    p = np.vstack([near + rng.normal(scale=0.01, size=near.shape),   # near the surface
                   rng.uniform(-1.5, 1.5, size=(1500, 3)),             # everywhere, incl. far outside
                   np.zeros((1, 3))])                                  # the centre: all sphere points equidistant
    idx = TriangleIndex(v, f)
    d, c = idx.distance(p, k=k, return_closest=True)
    ref = brute_force_distance(p, v, f)
    np.testing.assert_allclose(d, ref, rtol=0, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(c - p, axis=1), d, rtol=0, atol=1e-12)
    # the wrapper gives the same numbers
    np.testing.assert_allclose(point_to_mesh_distance(p, v, f, k=k), ref, rtol=0, atol=1e-12)


def test_proxies_cover_every_triangle_within_the_radius():
    v, f = _mixed_mesh()
    idx = TriangleIndex(v, f, radius=0.05)
    assert len(idx.proxies) > len(f)  # the large triangles were subdivided
    rng = np.random.default_rng(0)
    tri = v[f]
    r1, r2 = rng.random((2, len(f), 50))
    s = np.sqrt(r1)
    pts = ((1 - s)[..., None] * tri[:, None, 0] + (s * (1 - r2))[..., None] * tri[:, None, 1]
           + (s * r2)[..., None] * tri[:, None, 2])
    for t in range(len(f)):
        own = idx.proxies[idx.owner == t]
        gap = np.linalg.norm(pts[t][:, None] - own[None], axis=2).min(1)
        assert gap.max() <= idx.radius * (1 + 1e-9)
    assert idx.radius <= 0.05 * (1 + 1e-12)


def test_closest_point_kernel_beats_every_vertex_and_lies_on_the_triangle():
    rng = np.random.default_rng(1)
    a, b, c, p = (rng.normal(size=(2000, 3)) for _ in range(4))
    q = closest_point_on_triangles(p, a, b, c)
    d = np.linalg.norm(q - p, axis=1)
    for w in (a, b, c, (a + b) / 2, (a + b + c) / 3):
        assert np.all(d <= np.linalg.norm(w - p, axis=1) + 1e-12)
    # q is in the plane of the triangle, with barycentric coordinates in [0, 1]
    m = np.stack([b - a, c - a], axis=2)
    lam = np.linalg.lstsq(m[0], (q - a)[0], rcond=None)[0]
    assert np.all(lam >= -1e-9) and lam.sum() <= 1 + 1e-9


def test_one_pass_chamfer_and_normals_match_the_separate_functions():
    v, f = sphere_mesh()
    p, n = sample_mesh(v, f, 2000, rng=0)
    q, m = sample_mesh(v * 1.02, f, 2500, rng=1)
    one = chamfer_and_normals(p, n, q, m)
    for key, val in {**chamfer_l1(p, q), **normal_consistency(p, n, q, m)}.items():
        assert one[key] == pytest.approx(val, rel=1e-12)
    # percentiles against an independent brute-force nearest-neighbour search
    d = np.sqrt(((p[:, None, :] - q[None, :, :]) ** 2).sum(2)).min(1)
    assert one["a_to_b_p90"] == pytest.approx(np.percentile(d, 90), rel=1e-9)
    assert one["a_to_b_p99"] == pytest.approx(np.percentile(d, 99), rel=1e-9)
