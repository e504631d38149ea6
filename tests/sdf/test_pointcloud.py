"""Point-cloud input: .xyz validation, mesh readers and area-weighted sampling, normalisation."""

import numpy as np
import pytest
import torch

from solvers.sdf.pointcloud import (
    load_cloud, mesh_signed_volume, normalize, read_mesh, read_xyz, sample_mesh, shape_cloud, shape_sdf,
    write_mesh, write_xyz,
)


def sphere_mesh(res=40, r=0.5):
    """Marching-cubes sphere (independent of solvers.sdf.meshing), faces wound outward."""
    from skimage.measure import marching_cubes

    lin = np.linspace(-1, 1, res)
    g = np.linalg.norm(np.stack(np.meshgrid(lin, lin, lin, indexing="ij"), -1), axis=-1) - r
    h = lin[1] - lin[0]
    v, f, _, _ = marching_cubes(g, 0.0, spacing=(h, h, h), gradient_direction="ascent")
    return v - 1.0, f[:, ::-1].astype(np.int64)


@pytest.mark.parametrize("ext", [".ply", ".obj", ".off"])
def test_mesh_sampling_unit_outward_normals(tmp_path, ext):
    v, f = sphere_mesh()
    path = tmp_path / f"s{ext}"
    write_mesh(path, v, f)
    v2, f2 = read_mesh(path)
    assert v2.shape == v.shape and np.array_equal(f2, f)
    p, n = sample_mesh(v2, f2, 5000, rng=3)
    assert np.allclose(np.linalg.norm(n, axis=1), 1, atol=1e-12)
    radial = p / np.linalg.norm(p, axis=1, keepdims=True)
    cos = np.einsum("ij,ij->i", n, radial)
    assert cos.min() > 0.9 and cos.mean() > 0.995
    assert np.abs(np.linalg.norm(p, axis=1) - 0.5).max() < 0.01
    # an inside-out copy is re-oriented from its signed volume
    _, n_flip = sample_mesh(v2, f2[:, ::-1], 5000, rng=3)
    assert np.allclose(n_flip, n)
    assert mesh_signed_volume(v2, f2) == pytest.approx(4 / 3 * np.pi * 0.125, rel=0.01)


def test_ply_polygons_are_triangulated(tmp_path):
    path = tmp_path / "quad.ply"
    path.write_text("ply\nformat ascii 1.0\nelement vertex 4\nproperty float x\nproperty float y\nproperty float z\n"
                    "element face 1\nproperty list uchar int vertex_indices\nend_header\n"
                    "0 0 0\n1 0 0\n1 1 0\n0 1 0\n4 0 1 2 3\n")
    v, f = read_mesh(path)
    assert f.tolist() == [[0, 1, 2], [0, 2, 3]]
    p, n = sample_mesh(v, f, 100, rng=0, orient=False)
    assert np.allclose(n, [0, 0, 1])


@pytest.mark.parametrize(
    "bad, what",
    [
        ("0 0 0 1 0", "expected 6 numbers"),
        ("0 0 nan 1 0 0", "non-finite"),
        ("0 0 0 0 0 0", "zero-length normal"),
        ("0 0 x 1 0 0", "not a number"),
    ],
)
def test_malformed_xyz_refused_with_line_number(tmp_path, bad, what):
    path = tmp_path / "bad.xyz"
    path.write_text("# header\n0.1 0.2 0.3 0 0 1\n" + bad + "\n1 1 1 1 0 0\n")
    with pytest.raises(ValueError, match=rf"bad.xyz:3: .*{what}"):
        read_xyz(path)


def test_xyz_roundtrip_and_normalisation(tmp_path):
    p, n = shape_cloud("box", 2000, rng=1)
    p = p * 3.0 + np.array([5.0, -2.0, 1.0])
    write_xyz(tmp_path / "b.xyz", p, 2.0 * n)
    p2, n2, info = load_cloud(str(tmp_path / "b.xyz"))
    assert info["kind"] == "xyz" and np.allclose(p2, p, atol=1e-6) and np.allclose(n2, n, atol=1e-7)
    q, tr = normalize(p2, margin=0.9)
    # largest half-extent maps to the margin, aspect ratio kept, transform invertible
    assert np.abs(q).max() == pytest.approx(0.9)
    assert np.ptp(q, axis=0) / np.ptp(q, axis=0)[0] == pytest.approx(np.ptp(p2, axis=0) / np.ptp(p2, axis=0)[0])
    assert np.allclose(tr.invert(q), p2)


@pytest.mark.parametrize("name", ["sphere", "box", "torus", "union", "circle", "square"])
def test_shape_samples_lie_on_the_surface(name):
    p, n = shape_cloud(name, 3000, rng=2)
    assert np.abs(shape_sdf(name, p)).max() < 1e-12
    # stepping along the normal increases the distance by the step (outward, unit); for the union
    # a few points next to the intersection curve come closer to the other solid
    ok = np.isclose(shape_sdf(name, p + 1e-3 * n), 1e-3, atol=2e-5)
    assert ok.mean() > (0.99 if name == "union" else 1 - 1e-12)


def test_unknown_source():
    with pytest.raises(ValueError, match="neither a shape name"):
        load_cloud("no_such_file.xyz.gz")


class _SphereSDF(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.r = torch.nn.Parameter(torch.tensor(0.5))  # evaluate_points reads dtype/device from a parameter

    def forward(self, x):
        return x.norm(dim=1, keepdim=True) - self.r


class _Linear(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor([[0.3], [-0.2], [0.1]]))

    def forward(self, x):
        return x @ self.w + 2.0


def test_sparse_grid_matches_dense_where_it_matters():
    from solvers.sdf.meshing import evaluate_grid, extract_mesh

    dense, _ = evaluate_grid(_SphereSDF(), 97, sparse=False)
    sparse, info = evaluate_grid(_SphereSDF(), 97, sparse=True)
    assert info["evaluated"] < 0.5 * 97**3  # only blocks near the surface are evaluated finely
    near = np.abs(dense) < 0.05
    np.testing.assert_array_equal(sparse[near], dense[near])
    assert np.array_equal(np.sign(sparse), np.sign(dense))
    assert extract_mesh(sparse)[0].shape == extract_mesh(dense)[0].shape
    # far from the surface the fill interpolates the coarse grid linearly: exact for a linear function
    lin_sparse, info = evaluate_grid(_Linear(), 98, sparse=True)  # 97 intervals: the last block is short
    assert info["active_blocks"] == 0
    lin98, _ = evaluate_grid(_Linear(), 98, sparse=False)
    np.testing.assert_allclose(lin_sparse, lin98, atol=1e-5)


def test_read_mesh_names_nan_vertices_and_warns_on_an_open_or_nonmanifold_mesh(tmp_path):
    import warnings

    from solvers.sdf.pointcloud import mesh_edges, read_mesh

    tet = "v 0 0 0\nv 1 0 0\nv 0 1 0\nv 0 0 1\nf 1 3 2\nf 1 2 4\nf 2 3 4\nf 1 4 3\n"
    (tmp_path / "tet.obj").write_text(tet)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        v, f = read_mesh(tmp_path / "tet.obj")  # closed: no warning
    assert mesh_edges(f) == {"boundary": 0, "manifold": 6, "nonmanifold": 0}
    (tmp_path / "open.obj").write_text(tet.rsplit("f", 1)[0])  # one face removed: three edges on one face
    with pytest.warns(UserWarning, match=r"open\.obj: the mesh is not a closed manifold \(3 edges on one face, 0"):
        read_mesh(tmp_path / "open.obj")
    (tmp_path / "fin.obj").write_text(tet + "v 1 1 1\nf 1 2 5\n")  # a fin on edge 1-2: three faces there
    with pytest.warns(UserWarning, match=r"1 on more than two"):
        read_mesh(tmp_path / "fin.obj")
    (tmp_path / "nan.obj").write_text(tet.replace("v 0 1 0", "v 0 nan 0"))
    with pytest.raises(ValueError, match=r"nan\.obj: 1 vertices have non-finite coordinates \(first: vertex 2\)"):
        read_mesh(tmp_path / "nan.obj")
