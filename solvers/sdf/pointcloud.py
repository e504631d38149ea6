"""Oriented point clouds for SDF fitting: file readers, mesh sampling, shapes, normalisation.

A *cloud* is a pair ``(points, normals)`` of float64 arrays of shape
``(N, d)`` (``d`` = 3, or 2 for planar curves) with unit outward normals.

* :func:`read_xyz` reads ``x y z nx ny nz`` text files and refuses malformed
  lines (wrong column count, non-finite values, zero-length normals) naming
  the line number.
* :func:`read_mesh` reads ASCII/binary PLY, OBJ and OFF triangle meshes;
  :func:`sample_mesh` samples them area-weighted with outward face normals.
* :func:`shape_cloud` samples the analytic shapes of :mod:`reference.analytic`
  (``sphere``, ``box``, ``torus``, ``union``; 2-D: ``circle``, ``square``) and
  :func:`shape_sdf` gives their exact signed distance.
* :func:`normalize` maps a cloud into ``[-margin, margin]^d`` keeping the
  aspect ratio and returns the :class:`Transform` that maps results back.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from reference.analytic import sample_box, sample_sphere, sample_torus, sdf_box, sdf_circle, sdf_sphere, sdf_torus

__all__ = [
    "Transform",
    "read_xyz",
    "write_xyz",
    "read_mesh",
    "write_mesh",
    "sample_mesh",
    "mesh_signed_volume",
    "normalize",
    "SHAPES",
    "shape_cloud",
    "shape_sdf",
    "load_cloud",
    "point_areas",
    "winding_number",
]


# ------------------------------------------------------------------ .xyz


def read_xyz(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read an oriented point cloud ``x y z nx ny nz`` (one point per line).

    Blank lines and lines starting with ``#`` are skipped; commas count as
    separators. Normals are normalised to unit length.

    Returns
    -------
    points, normals : ndarray, shape (N, 3)

    Raises
    ------
    ValueError
        Naming the file and line number for a line without exactly six
        numbers, a non-finite value, or a zero-length normal.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"point cloud file not found: {path}")
    rows = []
    with open(path, encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, start=1):
            s = line.strip()
            if not s or s.startswith("#"):
                continue
            parts = s.replace(",", " ").split()
            if len(parts) != 6:
                raise ValueError(
                    f"{path}:{lineno}: expected 6 numbers 'x y z nx ny nz', got {len(parts)} columns: {s[:80]!r}"
                )
            try:
                vals = [float(p) for p in parts]
            except ValueError:
                raise ValueError(f"{path}:{lineno}: not a number in {s[:80]!r}") from None
            if not all(math.isfinite(v) for v in vals):
                raise ValueError(f"{path}:{lineno}: non-finite value (NaN or inf) in {s[:80]!r}")
            if math.hypot(*vals[3:]) < 1e-12:
                raise ValueError(
                    f"{path}:{lineno}: zero-length normal; every point needs an outward normal"
                )
            rows.append(vals)
    if not rows:
        raise ValueError(f"{path}: no points found")
    a = np.asarray(rows, dtype=np.float64)
    n = a[:, 3:] / np.linalg.norm(a[:, 3:], axis=1, keepdims=True)
    return a[:, :3], n


def write_xyz(path: str | Path, points: np.ndarray, normals: np.ndarray) -> None:
    """Write ``x y z nx ny nz`` lines."""
    np.savetxt(path, np.hstack([points, normals]), fmt="%.8g")


# ------------------------------------------------------------------ meshes

_PLY_TYPES = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1", "short": "i2", "int16": "i2",
    "ushort": "u2", "uint16": "u2", "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
    "float": "f4", "float32": "f4", "double": "f8", "float64": "f8",
}


def _triangulate(faces: list[list[int]]) -> np.ndarray:
    tris = [(f[0], f[i], f[i + 1]) for f in faces for i in range(1, len(f) - 1)]
    return np.asarray(tris, dtype=np.int64).reshape(-1, 3)


def _read_ply(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with open(path, "rb") as fh:
        if fh.readline().strip() != b"ply":
            raise ValueError(f"{path}: not a PLY file (first line is not 'ply')")
        fmt = None
        elements: list[tuple[str, int, list]] = []
        while True:
            line = fh.readline()
            if not line:
                raise ValueError(f"{path}: PLY header has no end_header")
            tok = line.decode("ascii", "replace").split()
            if not tok or tok[0] in ("comment", "obj_info"):
                continue
            if tok[0] == "format":
                fmt = tok[1]
            elif tok[0] == "element":
                elements.append((tok[1], int(tok[2]), []))
            elif tok[0] == "property":
                elements[-1][2].append(tok[1:])
            elif tok[0] == "end_header":
                break
        if fmt not in ("ascii", "binary_little_endian", "binary_big_endian"):
            raise ValueError(f"{path}: unsupported PLY format {fmt!r}")
        verts = faces = None
        if fmt == "ascii":
            lines = (ln for ln in fh.read().decode("ascii", "replace").splitlines() if ln.strip())
            for name, count, props in elements:
                data = [next(lines).split() for _ in range(count)]
                if name == "vertex":
                    names = [p[-1] for p in props]
                    idx = [names.index(c) for c in "xyz"]
                    verts = np.asarray([[float(r[i]) for i in idx] for r in data])
                elif name == "face":
                    faces = _triangulate([[int(v) for v in r[1 : 1 + int(r[0])]] for r in data])
        else:
            end = "<" if fmt == "binary_little_endian" else ">"
            for name, count, props in elements:
                if props and props[0][0] == "list":
                    if len(props) != 1:
                        raise ValueError(f"{path}: binary PLY face element with extra properties is not supported")
                    ct, it = end + _PLY_TYPES[props[0][1]], end + _PLY_TYPES[props[0][2]]
                    rows = []
                    for _ in range(count):
                        k = int(np.frombuffer(fh.read(np.dtype(ct).itemsize), ct)[0])
                        rows.append(np.frombuffer(fh.read(k * np.dtype(it).itemsize), it).tolist())
                    if name == "face":
                        faces = _triangulate(rows)
                else:
                    dt = np.dtype([(p[1], end + _PLY_TYPES[p[0]]) for p in props])
                    arr = np.frombuffer(fh.read(count * dt.itemsize), dt)
                    if name == "vertex":
                        verts = np.stack([arr[c].astype(np.float64) for c in "xyz"], axis=1)
    if verts is None or faces is None:
        raise ValueError(f"{path}: PLY file needs 'vertex' and 'face' elements")
    return verts, faces


def _read_obj(path: Path) -> tuple[np.ndarray, np.ndarray]:
    verts, faces = [], []
    with open(path, encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, start=1):
            tok = line.split()
            if not tok:
                continue
            if tok[0] == "v":
                verts.append([float(t) for t in tok[1:4]])
            elif tok[0] == "f":
                idx = [int(t.split("/")[0]) for t in tok[1:]]
                idx = [i - 1 if i > 0 else len(verts) + i for i in idx]
                if len(idx) < 3:
                    raise ValueError(f"{path}:{lineno}: face with fewer than 3 vertices")
                faces.append(idx)
    return np.asarray(verts, dtype=np.float64).reshape(-1, 3), _triangulate(faces)


def _read_off(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with open(path, encoding="utf-8", errors="replace") as fh:
        lines = [ln.split("#")[0].strip() for ln in fh]
    lines = [ln for ln in lines if ln]
    if not lines or not lines[0].startswith("OFF"):
        raise ValueError(f"{path}: not an OFF file (first line is not 'OFF')")
    head = lines[0][3:].split() or lines.pop(1).split()
    nv, nf = int(head[0]), int(head[1])
    body = lines[1:]
    verts = np.asarray([[float(t) for t in body[i].split()[:3]] for i in range(nv)])
    faces = [[int(t) for t in body[nv + i].split()[1 : 1 + int(body[nv + i].split()[0])]] for i in range(nf)]
    return verts, _triangulate(faces)


def read_mesh(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a triangle mesh (``.ply`` ASCII or binary, ``.obj``, ``.off``).

    Polygons are fan-triangulated. Returns ``vertices (V, 3)`` float64 and
    ``faces (F, 3)`` int64.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"mesh file not found: {path}")
    ext = path.suffix.lower()
    readers = {".ply": _read_ply, ".obj": _read_obj, ".off": _read_off}
    if ext not in readers:
        raise ValueError(f"unknown mesh format {ext!r}; must be one of {sorted(readers)}")
    v, f = readers[ext](path)
    if len(f) == 0:
        raise ValueError(f"{path}: mesh has no faces")
    if f.min() < 0 or f.max() >= len(v):
        raise ValueError(f"{path}: face index out of range (mesh has {len(v)} vertices)")
    bad = ~np.isfinite(v).all(1)
    if bad.any():
        raise ValueError(f"{path}: {int(bad.sum())} vertices have non-finite coordinates "
                         f"(first: vertex {int(np.nonzero(bad)[0][0])}); fix or remove them")
    edges = mesh_edges(f)
    if edges["boundary"] or edges["nonmanifold"]:
        import warnings

        warnings.warn(f"{path}: the mesh is not a closed manifold ({edges['boundary']} edges on one face, "
                      f"{edges['nonmanifold']} on more than two); its inside is not defined, so the signed "
                      "distance learned from it, and the Chamfer distance measured against it, may be wrong "
                      "near those edges", UserWarning, stacklevel=2)
    return v, f


def mesh_edges(faces: np.ndarray) -> dict[str, int]:
    """Counts of a triangle mesh's undirected edges by the number of faces that use them:
    ``boundary`` (one face: a hole), ``manifold`` (two), ``nonmanifold`` (three or more)."""
    e = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1)
    _, counts = np.unique(e, axis=0, return_counts=True)
    return {"boundary": int((counts == 1).sum()), "manifold": int((counts == 2).sum()),
            "nonmanifold": int((counts > 2).sum())}


def write_mesh(path: str | Path, vertices: np.ndarray, faces: np.ndarray) -> None:
    """Write a triangle mesh as ASCII ``.ply`` or ``.obj`` (by extension)."""
    path = Path(path)
    ext = path.suffix.lower()
    if ext == ".ply":
        with open(path, "w") as fh:
            fh.write(
                f"ply\nformat ascii 1.0\nelement vertex {len(vertices)}\nproperty float x\nproperty float y\n"
                f"property float z\nelement face {len(faces)}\nproperty list uchar int vertex_indices\nend_header\n"
            )
            np.savetxt(fh, vertices, fmt="%.7g")
            np.savetxt(fh, np.hstack([np.full((len(faces), 1), 3), faces]), fmt="%d")
    elif ext == ".obj":
        with open(path, "w") as fh:
            np.savetxt(fh, vertices, fmt="v %.7g %.7g %.7g")
            np.savetxt(fh, faces + 1, fmt="f %d %d %d")
    elif ext == ".off":
        with open(path, "w") as fh:
            fh.write(f"OFF\n{len(vertices)} {len(faces)} 0\n")
            np.savetxt(fh, vertices, fmt="%.7g")
            np.savetxt(fh, np.hstack([np.full((len(faces), 1), 3), faces]), fmt="%d")
    else:
        raise ValueError(f"unknown mesh format {ext!r}; must be one of ['.obj', '.off', '.ply']")


def mesh_signed_volume(vertices: np.ndarray, faces: np.ndarray) -> float:
    """Signed enclosed volume (positive when faces wind counter-clockwise seen from outside)."""
    a, b, c = (vertices[faces[:, i]] for i in range(3))
    return float(np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6.0)


def sample_mesh(
    vertices: np.ndarray, faces: np.ndarray, n: int, rng: np.random.Generator | int | None = None,
    orient: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Sample ``n`` points uniformly by area on a triangle mesh, with unit face normals.

    Parameters
    ----------
    orient : bool
        Flip all normals when the mesh's signed volume is negative (an
        inside-out closed mesh), so normals point outward.

    Returns
    -------
    points, normals : ndarray, shape (n, 3)
    """
    rng = np.random.default_rng(rng)
    a, b, c = (vertices[faces[:, i]] for i in range(3))
    cr = np.cross(b - a, c - a)
    area2 = np.linalg.norm(cr, axis=1)
    if not (area2.sum() > 0):
        raise ValueError("mesh has zero total area")
    tri = rng.choice(len(faces), size=n, p=area2 / area2.sum())
    r1, r2 = rng.random(n), rng.random(n)
    s = np.sqrt(r1)
    w = np.stack([1 - s, s * (1 - r2), s * r2], axis=1)
    pts = w[:, :1] * a[tri] + w[:, 1:2] * b[tri] + w[:, 2:] * c[tri]
    good = area2 > 0
    nrm = np.zeros_like(cr)
    nrm[good] = cr[good] / area2[good, None]
    if orient and mesh_signed_volume(vertices, faces) < 0:
        nrm = -nrm
    return pts, nrm[tri]


# ------------------------------------------------------------------ normalisation


@dataclass
class Transform:
    """``p_normalised = (p - center) * scale``; distances scale by ``scale``."""

    center: list[float]
    scale: float

    def apply(self, p: np.ndarray) -> np.ndarray:
        return (np.asarray(p) - np.asarray(self.center)) * self.scale

    def invert(self, q: np.ndarray) -> np.ndarray:
        return np.asarray(q) / self.scale + np.asarray(self.center)

    def as_dict(self) -> dict:
        return asdict(self)


def normalize(points: np.ndarray, margin: float = 0.9) -> tuple[np.ndarray, Transform]:
    """Centre the bounding box at 0 and scale uniformly so the largest half-extent is ``margin``.

    Returns the normalised points and the :class:`Transform` (normals are
    unchanged by a uniform scale).
    """
    if not 0 < margin <= 1:
        raise ValueError(f"margin must be in (0, 1], got {margin}")
    lo, hi = points.min(axis=0), points.max(axis=0)
    half = float((hi - lo).max()) / 2
    if half <= 0:
        raise ValueError("point cloud has zero extent")
    t = Transform(center=((lo + hi) / 2).tolist(), scale=margin / half)
    return t.apply(points), t


# ------------------------------------------------------------------ inside / outside


def point_areas(points: np.ndarray, k: int = 8) -> np.ndarray:
    """Surface area each point of a cloud stands for: ``pi r_k^2 / k`` (``r_k`` its ``k``-th neighbour distance).

    For a uniform sampling of a surface of area ``A`` by ``N`` points this is
    about ``A / N``; in 2-D (curves) the analogue is the length ``2 r_k / k``.
    """
    from scipy.spatial import cKDTree

    kk = min(k + 1, len(points))
    r = cKDTree(points).query(points, k=kk)[0][:, -1]
    if points.shape[1] == 2:
        return 2.0 * r / (kk - 1)
    return np.pi * r**2 / (kk - 1)


def winding_number(points: np.ndarray, normals: np.ndarray, areas: np.ndarray, x: np.ndarray,
                   chunk: int = 2048) -> np.ndarray:
    """Generalised winding number of an oriented cloud at ``x (M, d)`` (1 inside, 0 outside).

    ``w(x) = sum_i a_i <p_i - x, n_i> / (4 pi |p_i - x|^3)`` in 3-D
    (``/ (2 pi |p_i - x|^2)`` in 2-D): the solid angle the oriented surface
    elements subtend, as in Barill et al. 2018, "Fast winding numbers for
    soups and clouds" (direct sum, no tree). Accurate for points farther from
    the cloud than its sample spacing; about 1/2 next to holes and open
    boundaries, which is why callers should trust only values near 0 or 1.
    """
    p = np.asarray(points, dtype=np.float64)
    an = np.asarray(normals, dtype=np.float64) * np.asarray(areas, dtype=np.float64)[:, None]
    d = p.shape[1]
    c = 4 * np.pi if d == 3 else 2 * np.pi
    out = np.empty(len(x))
    for s in range(0, len(x), chunk):
        r = p[None, :, :] - x[s : s + chunk, None, :]                   # (m, N, d)
        n2 = np.maximum(np.einsum("mnd,mnd->mn", r, r), 1e-24)
        num = np.einsum("mnd,nd->mn", r, an)
        out[s : s + chunk] = (num / (n2 ** (d / 2))).sum(1) / c
    return out


# ------------------------------------------------------------------ analytic shapes

#: CSG union: a sphere and a box overlapping along x
_U_SPHERE = dict(radius=0.35, center=(0.3, 0.0, 0.0))
_U_BOX = dict(half_sizes=(0.35, 0.25, 0.2), center=(-0.25, 0.0, 0.0))
_SQUARE = 0.5


def _sdf_union(p: np.ndarray) -> np.ndarray:
    c = np.asarray(_U_BOX["center"])
    return np.minimum(sdf_sphere(p, **_U_SPHERE), sdf_box(p - c, _U_BOX["half_sizes"]))


def _sdf_square(p: np.ndarray) -> np.ndarray:
    q = np.abs(p) - _SQUARE
    return np.linalg.norm(np.maximum(q, 0), axis=1) + np.minimum(q.max(axis=1), 0)


_SDFS: dict[str, tuple[int, Callable[[np.ndarray], np.ndarray]]] = {
    "sphere": (3, sdf_sphere),
    "box": (3, sdf_box),
    "torus": (3, sdf_torus),
    "union": (3, _sdf_union),
    "circle": (2, sdf_circle),
    "square": (2, _sdf_square),
}
#: names accepted by :func:`shape_cloud` and the command line
SHAPES = tuple(_SDFS)


def _check_shape(name: str) -> None:
    if name not in _SDFS:
        raise ValueError(f"unknown shape {name!r}; must be one of {list(SHAPES)}")


def shape_sdf(name: str, p: np.ndarray) -> np.ndarray:
    """Exact signed distance of an analytic shape (the union's is exact outside, a bound inside)."""
    _check_shape(name)
    return _SDFS[name][1](p)


def shape_dim(name: str) -> int:
    _check_shape(name)
    return _SDFS[name][0]


def shape_cloud(name: str, n: int, rng: np.random.Generator | int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Area-uniform (length-uniform in 2-D) surface samples and outward normals of a shape."""
    _check_shape(name)
    rng = np.random.default_rng(rng)
    if name == "sphere":
        return sample_sphere(n, rng=rng)
    if name == "box":
        return sample_box(n, rng=rng)
    if name == "torus":
        return sample_torus(n, rng=rng)
    if name == "circle":
        t = rng.uniform(0, 2 * np.pi, n)
        nrm = np.stack([np.cos(t), np.sin(t)], axis=1)
        return 0.5 * nrm, nrm
    if name == "square":
        side = rng.integers(0, 4, n)
        s = rng.uniform(-_SQUARE, _SQUARE, n)
        axis, sign = side % 2, np.where(side < 2, 1.0, -1.0)
        pts = np.zeros((n, 2))
        nrm = np.zeros((n, 2))
        pts[np.arange(n), axis] = sign * _SQUARE
        pts[np.arange(n), 1 - axis] = s
        nrm[np.arange(n), axis] = sign
        return pts, nrm
    # union: sample both surfaces in proportion to area, keep the parts outside the other solid
    rs, hs = _U_SPHERE["radius"], np.asarray(_U_BOX["half_sizes"])
    a_s = 4 * np.pi * rs**2
    a_b = 8 * (hs[0] * hs[1] + hs[1] * hs[2] + hs[0] * hs[2])
    out_p, out_n, got = [], [], 0
    c_b = np.asarray(_U_BOX["center"])
    while got < n:
        m = 2 * n
        k = rng.binomial(m, a_s / (a_s + a_b))
        ps, ns = sample_sphere(k, rng=rng, **_U_SPHERE)
        pb, nb = sample_box(m - k, tuple(hs), rng=rng)
        pb = pb + c_b
        keep_s = sdf_box(ps - c_b, tuple(hs)) > 0
        keep_b = sdf_sphere(pb, **_U_SPHERE) > 0
        p = np.vstack([ps[keep_s], pb[keep_b]])
        q = np.vstack([ns[keep_s], nb[keep_b]])
        perm = rng.permutation(len(p))
        out_p.append(p[perm]); out_n.append(q[perm]); got += len(p)  # noqa: E702
    return np.vstack(out_p)[:n], np.vstack(out_n)[:n]


def load_cloud(
    source: str, n: int = 20000, rng: np.random.Generator | int | None = 0
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Points and normals from a shape name, an ``.xyz`` file, or a mesh file.

    Returns ``points (N, d), normals (N, d), info`` where ``info`` has
    ``kind`` (``shape``/``xyz``/``mesh``), ``name`` and, for meshes, the
    vertex and face arrays (original frame). Not yet normalised.
    """
    if source in _SDFS:
        p, nrm = shape_cloud(source, n, rng)
        return p, nrm, dict(kind="shape", name=source)
    path = Path(source)
    ext = path.suffix.lower()
    if ext == ".xyz":
        p, nrm = read_xyz(path)
        return p, nrm, dict(kind="xyz", name=str(path))
    if ext in (".ply", ".obj", ".off"):
        v, f = read_mesh(path)
        p, nrm = sample_mesh(v, f, n, rng)
        return p, nrm, dict(kind="mesh", name=str(path), vertices=v, faces=f)
    if not path.exists():
        raise ValueError(
            f"{source!r} is neither a shape name ({', '.join(SHAPES)}) nor an existing .xyz/.ply/.obj/.off file"
        )
    raise ValueError(f"unknown input format {ext!r} for {source}; use .xyz, .ply, .obj or .off")
