import numpy as np
import pytest

from reference.grid import Grid, GridField


def test_node_and_cell_coordinates():
    g = Grid(((-1, 1), (0, 2)), (5, 3))
    assert g.spacing == pytest.approx((0.5, 1.0))
    X, Y = g.coords()
    assert X.shape == (5, 3) and X[1, 0] == pytest.approx(-0.5) and Y[0, 2] == pytest.approx(2.0)
    assert g.points().shape == (15, 2)
    np.testing.assert_allclose(g.points()[5], [-0.5, 2.0])
    c = Grid(((0, 1),), (4,), centering="cell")
    np.testing.assert_allclose(c.axes()[0], [0.125, 0.375, 0.625, 0.875])


def test_bad_grid_is_refused():
    with pytest.raises(ValueError, match="low < high"):
        Grid(((1, 0),), (3,))
    with pytest.raises(ValueError, match="one \\(low, high\\) per axis"):
        Grid(((0, 1),), (3, 3))


def test_hdf5_roundtrip(tmp_path):
    g = Grid(((-1, 1), (-2, 2)), (7, 9))
    rng = np.random.default_rng(0)
    v = rng.normal(size=g.shape) + 1j * rng.normal(size=g.shape)
    f = GridField(g, v, {"k": 20.0, "scheme": 9, "name": "x"})
    f.to_hdf5(tmp_path / "f.h5")
    f2 = GridField.from_hdf5(tmp_path / "f.h5")
    assert f2.grid == g
    np.testing.assert_array_equal(f2.values, v)
    assert f2.values.dtype == np.complex128
    assert f2.params == {"k": 20.0, "scheme": 9, "name": "x"}


def test_bilinear_sampling_is_exact_on_bilinear_functions():
    g = Grid(((-1, 1), (0, 3)), (11, 17))
    X, Y = g.coords()
    fun = lambda x, y: 1.5 - 2 * x + 0.5 * y + 3 * x * y  # noqa: E731
    f = GridField(g, fun(X, Y) + 1j * fun(Y, X))
    rng = np.random.default_rng(1)
    p = np.stack([rng.uniform(-1, 1, 200), rng.uniform(0, 3, 200)], axis=1)
    p[0] = [1.0, 3.0]  # corner
    np.testing.assert_allclose(f.sample(p), fun(p[:, 0], p[:, 1]) + 1j * fun(p[:, 1], p[:, 0]), rtol=0, atol=1e-12)


def test_sampling_nonlinear_is_second_order():
    errs = []
    for n in (21, 41):
        g = Grid.square(n)
        X, Y = g.coords()
        f = GridField(g, np.sin(2 * X) * np.cos(3 * Y))
        p = np.random.default_rng(2).uniform(-1, 1, (300, 2))
        errs.append(np.abs(f.sample(p) - np.sin(2 * p[:, 0]) * np.cos(3 * p[:, 1])).max())
    assert 3.2 < errs[0] / errs[1] < 4.8


def test_outside_point_is_refused_and_named():
    f = GridField(Grid.square(5), np.zeros((5, 5)))
    with pytest.raises(ValueError, match=r"point 1 = \[1.5, 0.0\]"):
        f.sample(np.array([[0.0, 0.0], [1.5, 0.0]]))


def test_shape_mismatch_is_refused():
    with pytest.raises(ValueError, match="reshape"):
        GridField(Grid.square(5), np.zeros((4, 5)))


def test_interpolation_matrix_matches_sample():
    g = Grid(((-1, 1), (0, 3)), (9, 13))
    v = np.random.default_rng(5).normal(size=g.shape)
    p = np.random.default_rng(6).uniform([-1, 0], [1, 3], (50, 2))
    R = g.interpolation_matrix(p)
    assert R.shape == (50, g.size)
    np.testing.assert_allclose(R @ v.ravel(), GridField(g, v).sample(p), rtol=1e-13)
    np.testing.assert_allclose(R.sum(axis=1), 1.0)


def test_three_d_trilinear_exact():
    g = Grid(((0, 1), (0, 2), (-1, 1)), (4, 5, 6))
    X, Y, Z = g.coords()
    fun = lambda x, y, z: 1 + x - 2 * y + 3 * z + x * y * z  # noqa: E731
    p = np.random.default_rng(7).uniform([0, 0, -1], [1, 2, 1], (40, 3))
    np.testing.assert_allclose(GridField(g, fun(X, Y, Z)).sample(p), fun(*p.T), atol=1e-12)
