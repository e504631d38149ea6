"""Near-surface targets, the winding number and the sign prior against exact SDFs of analytic shapes."""

import numpy as np
import pytest
import torch

from solvers.sdf.pointcloud import point_areas, shape_cloud, shape_sdf, winding_number
from solvers.sdf.sdf import NearSurface, SDFConfig, sdf_problem, sign_prior_pool


def test_winding_number_of_a_sphere_cloud():
    p, n = shape_cloud("sphere", 2000, rng=0)  # radius 0.5
    a = point_areas(p)
    assert a.sum() == pytest.approx(np.pi, rel=0.1)  # the sphere's area 4 pi r^2
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, (1500, 3))
    r = np.linalg.norm(x, axis=1)
    keep = np.abs(r - 0.5) > 0.15  # a few sample spacings (0.04) from the surface
    w = winding_number(p, n, a, x[keep])
    np.testing.assert_allclose(w, (r[keep] < 0.5).astype(float), atol=0.05)


def test_near_surface_targets_are_close_to_the_exact_sdf():
    p, n = shape_cloud("sphere", 20000, rng=0)
    region = NearSurface(p, n, scale=1.0)
    x, data = region.sample(4000, 0, torch.Generator().manual_seed(0))
    x, sd = x.numpy(), data["sd"].numpy()
    ex = np.linalg.norm(x, axis=1) - 0.5
    spacing = np.sqrt(np.pi / 20000)
    assert np.median(region.sigma) == pytest.approx(2 * spacing, rel=0.5)  # the 8th neighbour: ~1.6 spacings
    # tangent plane of the nearest sample: error O(spacing^2 / r + d^2 / r), far below the offsets themselves
    err = np.abs(sd - ex)
    assert err.mean() < 0.1 * np.abs(ex).mean()
    # the sign is wrong only within the tangent-plane error of the surface
    wrong = np.sign(sd) != np.sign(ex)
    assert wrong.mean() < 0.01 and np.all(np.abs(ex[wrong]) < 2e-3)


@pytest.mark.parametrize("shape", ["torus", "box"])
def test_sign_prior_pool_never_contradicts_the_exact_sdf(shape):
    p, n = shape_cloud(shape, 10000, rng=0)
    x, s, lb = sign_prior_pool(p, n, 5000, seed=0, sub=2000)
    ex = shape_sdf(shape, x)
    assert len(x) > 3500 and (s < 0).sum() > 50  # most points labelled, some of them inside
    assert np.all(np.sign(ex) == s)
    assert np.all(s * ex >= lb)  # the bound holds: the prior costs the exact SDF nothing
    assert np.mean(lb / np.abs(ex)) > 0.5  # and it is not vacuous


def test_sign_prior_costs_the_exact_sdf_nothing_and_a_flipped_one_a_lot():
    p, n = shape_cloud("sphere", 4000, rng=0)
    prob = sdf_problem(p, n, SDFConfig(batch=2000, sign_prior=1.0, bbox_prior=0), sign_pool=4000)

    class Exact(torch.nn.Module):
        def __init__(self, sign):
            super().__init__()
            self.sign = sign
            self.dummy = torch.nn.Parameter(torch.zeros((), dtype=torch.float64))

        def forward(self, x):
            return self.sign * (x.norm(dim=1, keepdim=True) - 0.5) + 0 * self.dummy

    g = torch.Generator().manual_seed(0)
    assert float(prob.losses(Exact(1.0), 1, g)["sign_prior"].detach()) == 0.0
    flipped = float(prob.losses(Exact(-1.0), 1, g)["sign_prior"].detach())
    assert flipped > 0.1  # mean |SDF| + lb over [-1, 1]^3 is about 0.4
