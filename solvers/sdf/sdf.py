"""Signed distance functions from oriented point clouds (paper §4.2, Eq. 6).

Pipeline: load a cloud (shape name, ``.xyz``, or a ``.ply/.obj/.off`` mesh
sampled by area, see :mod:`solvers.sdf.pointcloud`), normalise it into
``[-margin, margin]^d`` (the transform is reported), pose the loss of
:func:`equations.eikonal.sdf_constraints` as a :class:`pinnsiren.Problem`,
train a SIREN (or a ReLU / ReLU-PE baseline), extract the zero level set by
marching cubes (:mod:`solvers.sdf.meshing`) and measure it
(:mod:`solvers.sdf.geometry_metrics`).

Loss. Each step draws ``batch/2`` surface points (with normals) and
``batch/2`` uniform points of ``[-1, 1]^d``. The catalog's four terms
(``sdf`` |u| 3e3, ``normal`` 1 - <grad u, n> 1e2, ``off_surface``
exp(-100|u|) 1e2, ``eikonal`` ||grad u| - 1| 5e1: the official code's
weights; the paper's Eq. 6 writes one lambda for the off-surface term) are
grouped into two vector constraints, one per point set, so the network and
its gradient are evaluated once per set and step::

    surface: [w_sdf u, w_normal (1 - <grad u, n>), w_eik (|grad u| - 1)]   l1
    off:     [w_off exp(-100 |u|), w_eik (|grad u| - 1)]                 l1

Because l1 is homogeneous, ``mean_i sum_j |w_j r_ij|`` is exactly the sum of
the weighted per-term means. The official code averages every term over the
whole batch (masking the other half to zero); with equal halves that is half
of our per-set means, so all weights carry a factor 1/2 and the objective is
identical to the official one. The normal term is the paper's
``1 - <grad u, n>`` (the official code uses the cosine; equal where the
Eikonal term holds).

Not in the paper, each with its own term (see :func:`sdf_problem`): the
bounding-box prior and the winding-number sign prior (both on by default,
both satisfied by the exact SDF), and near-surface points with a
tangent-plane target (off by default). :func:`run` reports the wall and CPU
seconds of every phase (load, train, the parts of the evaluation, write).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import sympy
import torch
from torch import nn

from equations import eikonal
from pinnsiren.evaluation import evaluate
from pinnsiren.networks import ARCHITECTURES
from pinnsiren.geometry import Box
from pinnsiren.problem import Problem
from pinnsiren.regions import PointSet
from pinnsiren.symbolic import Constraint, Field, coefficient
from pinnsiren.settings import ModelSettings, TrainSettings, add_flags, from_args
from pinnsiren.phases import SCHEDULES
from pinnsiren.train import train

from . import geometry_metrics as gm
from .meshing import evaluate_grid, evaluate_points, extract_contours, extract_mesh, render_png
from .pointcloud import SHAPES, Transform, load_cloud, normalize, sample_mesh, shape_cloud, shape_dim, shape_sdf
from .pointcloud import point_areas, winding_number, write_mesh

__all__ = ["SDFConfig", "sdf_problem", "make_model", "fit_sdf", "evaluate_sdf", "run", "add_arguments", "main"]

COORDS = {2: sympy.symbols("x y", real=True), 3: sympy.symbols("x y z", real=True)}


@dataclass
class SDFConfig(ModelSettings, TrainSettings):
    """Settings of one SDF fit (defaults: tuned for the 20k-point torus on CPU, see docs/benchmarks.md (SDF section)).

    The paper's network is 256x3 with ``first_omega_0=30`` and Adam at a
    constant 1e-4; on the torus at a CPU budget of a few thousand steps that
    leaves spurious far-field zero sets (Chamfer 0.017-0.06). The defaults
    here: 128x3 (3x cheaper per step), ``first_omega_0=15`` (removes most
    strays), the bounding-box prior (``bbox_prior=100``: removes the far-field
    sign flips some seeds show without it) and Adam 5e-4 with cosine decay to
    5e-6 (the surface 15-20x closer than at a constant 1e-4: floor-free
    Chamfer 0.00018 vs 0.0034). On real shapes (a scanned bunny) ghost
    surfaces far from the data remained; the winding-number sign prior
    (``sign_prior=100``, :func:`sign_prior_pool`) removes them (Chamfer 16x
    -> 1.7x its sampling floor; docs/sdf.md). ``surface_points`` samples per
    surface go into the floor-free Chamfer (a Monte Carlo mean),
    ``eval_points`` into the sampled one (whose floor shrinks with them).
    """

    batch: int = 2000
    """Points per step (half on the surface, half uniform)."""
    off_points: int | None = None
    """Uniform points per step (default: batch/2)."""
    weights: dict[str, float] | None = None
    """Loss weights by term (off_surface, eikonal, sdf, normal; default: the catalog's)."""
    threads: int | None = None
    """Torch CPU threads (default min(available, 2); 1 is faster on a loaded machine)."""
    bbox_prior: float = 100.0
    """Weight of max(0, d_box - u) outside the data's bounding box (0 = off, as the paper)."""
    near_points: int = 0
    """Points per step near the surface (Gaussian offsets of cloud points; 0 = off, as the paper)."""
    near_weight: float = 0.0
    """Weight of |u - tangent-plane signed distance| on the near-surface points."""
    near_scale: float = 1.0
    """Std of the near-surface offsets in local sample spacings."""
    sign_prior: float = 100.0
    """Weight of the winding-number sign prior max(0, lb - s u) on uniform points (0 = off, as the paper)."""
    points: int = 20000
    """Samples drawn from shapes and meshes (the cloud's size)."""
    margin: float = 0.9
    """Largest half-extent after normalising the cloud."""
    resolution: int = 128
    """Marching-cubes grid side."""
    eval_points: int = 1_000_000
    """Samples per surface for the sampled Chamfer distance."""
    surface_points: int = 200_000
    """Samples per surface for the floor-free surface Chamfer (exact point-to-triangle distances)."""
    engine: str = "autograd"
    """Derivative engine of the residuals: auto, jet or autograd."""
    hidden: int = 128
    first_omega_0: float = 15.0
    steps: int = 2000
    lr: float = 5e-4
    schedule: str = "cosine"
    grad_clip: float | None = 1.0


class NearSurface(PointSet):
    """Points near an oriented cloud with Hoppe's tangent-plane signed distance as data.

    Each sample is a cloud point ``p_i`` moved by a Gaussian offset of
    standard deviation ``sigma_i`` (per point: ``scale`` times the distance to
    its ``k``-th nearest cloud neighbour, the local sample spacing). Its data
    ``sd`` is ``<x - p_j, n_j>`` with ``p_j`` the nearest cloud point of ``x``
    (Hoppe et al. 1992, "Surface reconstruction from unorganized points"):
    the signed distance to the tangent plane of the closest sample, which
    differs from the true signed distance by ``O(d^2 curvature)`` at distance
    ``d`` (plus the sampling error), so it is a good target only close to the
    surface; its sign is right wherever the nearest sample lies on the
    nearest sheet of the surface.

    A :class:`~pinnsiren.regions.PointSet` of the cloud whose :meth:`sample`
    returns fresh perturbed points (so the problem sees its data name ``sd``).
    """

    def __init__(self, points: np.ndarray, normals: np.ndarray, scale: float = 1.0, k: int = 8,
                 names: Sequence[str] = ("sd",)) -> None:
        from scipy.spatial import cKDTree

        super().__init__(points, {names[0]: np.zeros(len(points))})
        self.cloud = np.asarray(points, dtype=np.float64)
        self.normals = np.asarray(normals, dtype=np.float64)
        self.tree = cKDTree(self.cloud)
        kk = min(k + 1, len(self.points))
        dk = self.tree.query(self.cloud, k=kk)[0]
        self.sigma = scale * (dk[:, -1] if dk.ndim == 2 else dk)
        self.name = names[0]

    def sample(self, n, step, generator):
        m = len(self.cloud)
        idx = torch.randint(0, m, (n,), generator=generator).numpy()
        g = torch.randn(n, self.dim, generator=generator, dtype=torch.float64).numpy()
        x = np.clip(self.cloud[idx] + self.sigma[idx, None] * g, -1.0, 1.0)
        _, j = self.tree.query(x, k=1)
        sd = np.einsum("ij,ij->i", x - self.cloud[j], self.normals[j])
        return torch.from_numpy(x), {self.name: torch.from_numpy(sd)}


def sign_prior_pool(points: np.ndarray, normals: np.ndarray, n: int, seed: int = 0, sub: int = 4000,
                    k: int = 8, confident: float = 0.2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Uniform points of ``[-1, 1]^d`` with a trusted sign and a lower bound of ``|SDF|``.

    The sign comes from the generalised winding number ``w`` of (a random
    subset of ``sub`` points of) the oriented cloud: inside where
    ``|w - 1| < confident``, outside where ``|w| < confident``, else no label.
    The bound is ``lb = d_nn - h``: ``d_nn`` the distance to the nearest cloud
    point, ``h`` the 99th percentile of the cloud's ``k``-th neighbour
    distances (a generous covering radius: every surface point lies within
    about ``h`` of a sample, so the true distance is at least ``d_nn - h``).
    Only points with a label and ``lb > 0`` are returned:
    ``(x (M, d), sign (M,), lb (M,))``.
    """
    from scipy.spatial import cKDTree  # deferred: scipy.spatial loads only for the sign prior

    rng = np.random.default_rng(seed + 777)
    d = points.shape[1]
    tree = cKDTree(points)
    h = float(np.percentile(tree.query(points, k=min(k + 1, len(points)))[0][:, -1], 99))
    x = rng.uniform(-1, 1, size=(n, d))
    dnn = tree.query(x, k=1)[0]
    keep = dnn - h > 0
    x, dnn = x[keep], dnn[keep]
    idx = rng.choice(len(points), size=min(sub, len(points)), replace=False)
    w = winding_number(points[idx], normals[idx], point_areas(points[idx], k), x)
    inside, outside = np.abs(w - 1) < confident, np.abs(w) < confident
    lab = inside | outside
    return x[lab], np.where(inside[lab], -1.0, 1.0), dnn[lab] - h


def _check_cloud(points: np.ndarray, normals: np.ndarray, batch: int) -> int:
    """The dimension of the cloud ``points``, after checking it, its ``normals`` and ``batch``."""
    d = points.shape[1]
    if d not in COORDS:
        raise ValueError(f"points must be 2-D or 3-D, got dimension {d}")
    if normals.shape != points.shape:
        raise ValueError(f"normals have shape {normals.shape} but points {points.shape}")
    if batch < 2:
        raise ValueError(f"batch must be >= 2, got {batch}")
    return d


def sdf_problem(points: np.ndarray, normals: np.ndarray, cfg: SDFConfig | None = None,
                sign_pool: int = 32768) -> Problem:
    """The Eq. 6 loss as a :class:`~pinnsiren.Problem` over ``points/normals (N, d)``.

    The settings are ``cfg``'s (default ``SDFConfig()``: both priors on, as
    on the command line; ``SDFConfig(bbox_prior=0, sign_prior=0)`` is the
    paper's loss). ``batch/2`` surface points and ``batch/2`` uniform points
    of ``[-1, 1]^d`` per step (module docstring: grouping, factor 1/2).
    ``off_points`` overrides the number of uniform points per step (the
    surface half stays ``batch/2``; each set's terms are means over that set,
    so more uniform points lower the noise of the off-surface terms, not
    their weight). ``weights`` overrides the catalog's term weights.

    ``bbox_prior > 0`` adds (not in the paper) ``bbox_prior * max(0, d_box(x) - u)``
    on the uniform points outside the data's bounding box, ``d_box`` the
    distance to that box: there the true SDF is positive and at least
    ``d_box``, so this only removes zero sets and negative regions away from
    the data (the far-field sign ambiguity of Eq. 6).

    ``near_points > 0`` adds (not in the paper) that many points per step near
    the surface (:class:`NearSurface`, Gaussian offsets of ``near_scale``
    local sample spacings) with ``near_weight * |u - sd|`` (``sd`` Hoppe's
    tangent-plane signed distance) and the Eikonal term; with
    ``near_weight == 0`` only the Eikonal and off-surface terms act there.

    ``sign_prior > 0`` adds (not in the paper) ``sign_prior * max(0, lb - s u)``
    on a fixed pool of ``sign_pool`` uniform points (see :func:`sign_prior_pool`):
    ``s`` the inside/outside sign from the cloud's winding number where it is
    clearly 0 or 1, ``lb = d_nn - h`` the distance to the nearest cloud point
    less the cloud's sampling gap. The true SDF satisfies ``s u >= lb`` there,
    so, like the bounding-box prior, the term only removes zero sets and
    sign errors away from the data (ghost surfaces), now also inside the
    bounding box.
    """
    cfg = SDFConfig() if cfg is None else cfg
    d = _check_cloud(points, normals, cfg.batch)
    coords = COORDS[d]
    u = Field("u", coords)
    names = [f"n{c.name}" for c in coords]
    t = eikonal.sdf_constraints(u, normal=names, weights=cfg.weights)
    w = {k: 0.5 * float(c.weight) for k, c in t.items()}
    surface = PointSet(points, {nm: normals[:, i] for i, nm in enumerate(names)})
    half = cfg.batch // 2
    n_off = cfg.batch - half if cfg.off_points is None else cfg.off_points
    cons = [
        Constraint([w["sdf"] * t["sdf"].expr, w["normal"] * t["normal"].expr, w["eikonal"] * t["eikonal"].expr],
                   norm="l1", name="surface").on(surface, n=half),
        Constraint([w["off_surface"] * t["off_surface"].expr, w["eikonal"] * t["eikonal"].expr],
                   norm="l1", name="off_surface").on(Box([(-1.0, 1.0)] * d), n=n_off),
    ]
    if cfg.near_points > 0:
        cons.append(_near_constraint(points, normals, u, w["eikonal"] * t["eikonal"].expr, cfg.near_points,
                                     cfg.near_weight, cfg.near_scale))
    if cfg.sign_prior > 0:
        cons += _sign_constraint(points, normals, u, cfg.sign_prior, sign_pool, cfg.seed, n_off)
    if cfg.bbox_prior > 0:
        cons.append(_bbox_constraint(points, u, cfg.bbox_prior, n_off))
    return Problem([u], coords, cons, engine=cfg.engine)


def _near_constraint(points: np.ndarray, normals: np.ndarray, u: Any, eikonal_term: Any, n: int, weight: float,
                     scale: float) -> Constraint:
    """The Eikonal term (and ``weight * |u - sd|``) on ``n`` points per step near the surface."""
    sd = coefficient("sd", COORDS[points.shape[1]])
    comps = [eikonal_term]
    if weight > 0:
        comps.insert(0, 0.5 * weight * (u - sd))
    return Constraint(comps, norm="l1", name="near_surface").on(NearSurface(points, normals, scale=scale), n=n)


def _sign_constraint(points: np.ndarray, normals: np.ndarray, u: Any, weight: float, pool: int, seed: int,
                     n: int) -> list[Constraint]:
    """``weight * max(0, lb - s u)`` on the sign-prior pool (none when the pool is empty)."""
    coords = COORDS[points.shape[1]]
    xs, sgn, lb = sign_prior_pool(points, normals, pool, seed=seed)
    if not len(xs):
        return []
    sg, lo = coefficient("sgn", coords), coefficient("lb", coords)
    return [Constraint(weight * sympy.Max(0, lo - sg * u), norm="l1", name="sign_prior")
            .on(PointSet(xs, {"sgn": sgn, "lb": lb}), n=min(len(xs), n))]


def _bbox_constraint(points: np.ndarray, u: Any, weight: float, n: int) -> Constraint:
    """``weight * max(0, d_box - u)`` on ``n`` uniform points per step outside the data's bounding box."""
    d = points.shape[1]
    coords = COORDS[d]
    center = 0.5 * (points.max(0) + points.min(0))
    half = 0.5 * (points.max(0) - points.min(0))
    excess = [sympy.Abs(c - float(m)) - float(h) for c, m, h in zip(coords, center, half)]
    dbox = sympy.sqrt(sum(sympy.Max(0, e) ** 2 for e in excess))
    outside = sympy.Heaviside(sympy.Max(*excess), 0)
    return Constraint(weight * outside * sympy.Max(0, dbox - u), norm="l1", name="bbox_prior") \
        .on(Box([(-1.0, 1.0)] * d), n=n)


def make_model(cfg: SDFConfig, dim: int) -> nn.Module:
    """SIREN or baseline of ``cfg.arch`` mapping ``(N, dim) -> (N, 1)``."""
    cfg.check_arch()
    return cfg.build_model(dim, 1)


def fit_sdf(points: np.ndarray, normals: np.ndarray, cfg: SDFConfig,
            evaluate: Callable | None = None, eval_every: int = 0):
    """Train a network on a normalised cloud; returns the :class:`~pinnsiren.train.TrainResult`."""
    torch.manual_seed(cfg.seed)
    model = make_model(cfg, points.shape[1])
    problem = sdf_problem(points, normals, cfg)
    tc = cfg.train_config(log_every=max(1, cfg.steps // 200), eval_every=eval_every)
    return train(problem, model, tc, evaluate=evaluate)


def _gradient_norm(model: nn.Module, x: np.ndarray, chunk: int = 16384) -> np.ndarray:
    def norm(m: nn.Module, xb: torch.Tensor) -> torch.Tensor:
        xb.requires_grad_(True)
        (g,) = torch.autograd.grad(m(xb)[:, 0].sum(), xb)
        return g.norm(dim=1)

    return evaluate(model, x, chunk, norm, grad=True)


def _polyline_samples(lines: list[np.ndarray], n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    segs = np.concatenate([np.stack([c[:-1], c[1:]], 1) for c in lines if len(c) > 1])
    d = segs[:, 1] - segs[:, 0]
    ln = np.linalg.norm(d, axis=1)
    k = rng.choice(len(segs), n, p=ln / ln.sum())
    t = rng.random(n)[:, None]
    pts = segs[k, 0] + t * d[k]
    tang = d[k] / np.maximum(ln[k, None], 1e-300)
    return pts, np.stack([tang[:, 1], -tang[:, 0]], 1)


def evaluate_sdf(
    model: nn.Module, dim: int, cfg: SDFConfig,
    gt_sampler: Callable[[int, np.random.Generator], tuple[np.ndarray, np.ndarray]] | None = None,
    exact_sdf: Callable[[np.ndarray], np.ndarray] | None = None,
    gt_points: tuple[np.ndarray, np.ndarray] | None = None,
    gt_mesh: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict[str, Any]:
    """Mesh the zero level set and measure it (all in the normalised frame).

    Parameters
    ----------
    gt_sampler : ``(m, rng) -> (points, normals)``, optional
        Dense ground-truth surface sampler (analytic shape or mesh); else
        ``gt_points`` (e.g. the input cloud) is the reference.
    exact_sdf : ``(M, d) -> (M,)``, optional
        Exact signed distance, for the band error and the floor-free
        ``surface_chamfer_l1`` (3-D).
    gt_mesh : ``(vertices, faces)``, optional
        Ground-truth mesh in the normalised frame (3-D): the floor-free
        ``surface_chamfer_l1`` measures distances to its triangles.

    Returns
    -------
    dict with ``metrics``, ``grid`` (values), ``vertices``/``faces`` (3-D)
    or ``contours`` (2-D).
    """
    rng = np.random.default_rng(cfg.seed + 12345)
    clock = PhaseClock()
    t0 = time.perf_counter()
    out, metrics = _mesh_level_set(model, dim, cfg, clock)
    metrics["mesh_seconds"] = time.perf_counter() - t0
    m = cfg.eval_points if dim == 3 else min(cfg.eval_points, 100_000)
    with clock("sample"):
        pp, pn, gp, gn, gp2 = _surface_samples(out, dim, m, rng, gt_sampler, gt_points)
    if gp is not None:
        with clock("chamfer"):
            if gp2 is not None:
                metrics["chamfer_floor"] = gm.chamfer_l1(gp, gp2)["chamfer_l1"]
            metrics.update(gm.chamfer_and_normals(pp, pn, gp, gn))
            metrics["chamfer_samples"] = len(pp)
        if dim == 3 and (exact_sdf is not None or gt_mesh is not None):
            with clock("surface_chamfer"):
                # floor-free: exact distances to the surfaces instead of to their samples
                # a Monte Carlo mean without a floor: a subsample is enough (standard error reported)
                ms = min(len(pp), len(gp), cfg.surface_points)
                metrics.update(gm.surface_chamfer_l1(pp[:ms], out["vertices"], out["faces"], gp[:ms],
                                                     gt_distance=exact_sdf, gt_mesh=gt_mesh))
                metrics["surface_chamfer_samples"] = ms
    with clock("field_checks"):
        metrics.update(_field_checks(model, dim, m, rng, exact_sdf))
    metrics["eval_seconds"] = time.perf_counter() - t0
    metrics.update(clock.metrics())
    out["metrics"] = metrics
    out["phases"] = clock.phases
    return out


def _surface_samples(out: dict[str, Any], dim: int, m: int, rng: np.random.Generator, gt_sampler: Any,
                     gt_points: Any) -> tuple:
    """``m`` samples of the extracted surface and of the ground truth: ``(pp, pn, gp, gn, gp2)``, ``gp2`` a
    second ground-truth draw (for the Chamfer floor) when there is a sampler; ground truth ``None`` without one."""
    pp, pn = (sample_mesh(out["vertices"], out["faces"], m, rng, orient=False) if dim == 3
              else _polyline_samples(out["contours"], m, rng))
    gp = gn = gp2 = None
    if gt_sampler is not None:
        gp, gn = gt_sampler(m, rng)
        gp2 = gt_sampler(m, rng)[0]
    elif gt_points is not None:
        gp, gn = gt_points
    return pp, pn, gp, gn, gp2


def _mesh_level_set(model: nn.Module, dim: int, cfg: SDFConfig, clock: PhaseClock
                    ) -> tuple[dict[str, Any], dict[str, float]]:
    """The network on the ``cfg.resolution`` grid and its zero level set (a mesh in 3-D, contours in 2-D)."""
    with clock("grid"):
        grid, ginfo = evaluate_grid(model, cfg.resolution, dim)
    metrics: dict[str, float] = dict(grid_evaluations=ginfo["evaluated"])
    out: dict[str, Any] = dict(grid=grid)
    with clock("mesh"):
        if dim == 3:
            v, f, _ = extract_mesh(grid)
            out.update(vertices=v, faces=f)
            metrics.update(mesh_vertices=len(v), mesh_faces=len(f))
        else:
            lines = extract_contours(grid)
            if not lines:
                raise ValueError("the network's zero level set is empty on the grid (train longer?)")
            out["contours"] = lines
    return out, metrics


def _field_checks(model: nn.Module, dim: int, m: int, rng: np.random.Generator,
                  exact_sdf: Callable[[np.ndarray], np.ndarray] | None) -> dict[str, float]:
    """Error against the exact SDF in the band ``|sdf| < 0.1`` (when known) and ``|grad u|`` statistics."""
    metrics: dict[str, float] = {}
    u = rng.uniform(-1, 1, size=(min(400_000, 100 * m), dim))
    if exact_sdf is not None:
        ex = exact_sdf(u)
        band = np.abs(ex) < 0.1
        ub, eb = u[band][:100_000], ex[band][:100_000]
        err = np.abs(evaluate_points(model, ub) - eb)
        metrics.update(band_sdf_error=float(err.mean()), band_sdf_error_max=float(err.max()), band_points=len(ub))
        off = u[np.abs(ex) > 0.01][:20000]
    else:
        off = u[:20000]
    metrics.update(gm.gradient_norm_stats(_gradient_norm(model, off)))
    return metrics


class PhaseClock:
    """Wall and CPU seconds of named phases: ``with clock("train"): ...``.

    ``phases`` maps each name to ``{"wall_s", "cpu_s"}`` (CPU: ``time.process_time``,
    all threads of this process); :meth:`metrics` flattens them to
    ``seconds_<name>`` / ``cpu_seconds_<name>``.
    """

    def __init__(self) -> None:
        self.phases: dict[str, dict[str, float]] = {}

    def __call__(self, name: str):
        return _Phase(self, name)

    def metrics(self) -> dict[str, float]:
        out = {}
        for k, v in self.phases.items():
            out[f"seconds_{k}"] = v["wall_s"]
            out[f"cpu_seconds_{k}"] = v["cpu_s"]
        return out


class _Phase:
    def __init__(self, clock: PhaseClock, name: str) -> None:
        self.clock, self.name = clock, name

    def __enter__(self):
        self.t, self.c = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.clock.phases[self.name] = dict(wall_s=time.perf_counter() - self.t, cpu_s=time.process_time() - self.c)
        return False


def _ground_truth(source: str, info: dict, tr: Transform):
    """(gt_sampler, exact_sdf, gt_mesh) in the normalised frame for shapes and meshes (None where absent)."""
    if info["kind"] == "shape":
        def sampler(m, rng):
            p, n = shape_cloud(source, m, rng)
            return tr.apply(p), n

        def exact(q):
            return tr.scale * shape_sdf(source, tr.invert(q))

        return sampler, exact, None
    if info["kind"] == "mesh":
        v, f = info["vertices"], info["faces"]
        mesh = tr.apply(np.asarray(v, dtype=np.float64)), np.asarray(f)
        return (lambda m, rng: (lambda p, n: (tr.apply(p), n))(*sample_mesh(v, f, m, rng))), None, mesh
    return None, None, None


def run(source: str, cfg: SDFConfig, out: str | Path | None = None) -> dict[str, Any]:
    """Load, normalise, train, mesh, measure; write ``sdf.h5``, ``mesh.ply``, ``mesh.obj``, ``sdf.png`` to ``out``."""
    if cfg.device == "cpu":
        torch.set_num_threads(cfg.threads or min(torch.get_num_threads(), 2))
    t0, c0 = time.perf_counter(), time.process_time()
    clock = PhaseClock()
    with clock("load"):
        p, n, info = load_cloud(source, cfg.points, cfg.seed)
        dim = p.shape[1]
        q, tr = normalize(p, cfg.margin)
    with clock("train"):
        res = fit_sdf(q, n, cfg)
    train_seconds, train_cpu = time.perf_counter() - t0, time.process_time() - c0
    sampler, exact, gt_mesh = _ground_truth(source, info, tr)
    with clock("evaluate"):
        ev = evaluate_sdf(res.model, dim, cfg, sampler, exact, gt_points=(q, n), gt_mesh=gt_mesh)
    clock.phases.update({"evaluate/" + k: v for k, v in ev.pop("phases").items()})
    # CPU seconds of this process: with threads=1 this is the wall time an idle core would need
    metrics = dict(ev["metrics"], train_seconds=train_seconds, total_seconds=time.perf_counter() - t0,
                   train_cpu_seconds=train_cpu, total_cpu_seconds=time.process_time() - c0,
                   threads=torch.get_num_threads(), points=len(q), steps=res.steps_done)
    metrics.update(clock.metrics())
    metrics["eval_to_train_cpu"] = clock.phases["evaluate"]["cpu_s"] / max(clock.phases["train"]["cpu_s"], 1e-9)
    result = dict(ev, metrics=metrics, transform=tr.as_dict(), model=res.model, history=res.history,
                  phases=clock.phases)
    from pinnsiren.distributed import is_writer

    if out is not None and is_writer():  # under torchrun rank 0 alone writes
        out = Path(out)
        with clock("write"):
            _write_outputs(out, cfg, source, info, tr, ev, res, metrics)
        (out / "metrics.json").write_text(json.dumps(dict(metrics=metrics, transform=tr.as_dict(),
                                                          phases=clock.phases), indent=2))
    return result


def _write_outputs(out: Path, cfg: SDFConfig, source: str, info: dict, tr: Transform, ev: dict, res,
                   metrics: dict) -> None:
    """``sdf.h5``, ``mesh.ply``/``mesh.obj`` (3-D) and ``sdf.png`` in ``out``."""
    from pinnsiren.io import write_result

    out.mkdir(parents=True, exist_ok=True)
    g = ev["grid"]
    dim = g.ndim
    config = dict(asdict(cfg), source=source, input_kind=info["kind"], transform=tr.as_dict(), dim=dim)
    stride = max(1, g.shape[0] // 64)
    write_result(out / "sdf.h5", kind="sdf", config=config, metrics=metrics,
                 history={k.replace("/", "_"): v for k, v in res.history.items()},
                 fields=dict(sdf=g[(slice(None, None, stride),) * dim]),
                 field_attrs=dict(sdf=dict(bounds=[[-1, 1]] * dim, frame="normalised",
                                           transform=tr.as_dict())),
                 models=dict(model=res.model))
    if dim == 3:
        write_mesh(out / "mesh.ply", ev["vertices"], ev["faces"])
        write_mesh(out / "mesh.obj", ev["vertices"], ev["faces"])
        render_png(out / "sdf.png", g, ev["vertices"], ev["faces"], title=f"{cfg.arch}: {Path(source).name}")
    else:
        render_png(out / "sdf.png", g, title=f"{cfg.arch}: {Path(source).name}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", help=f"a .xyz/.ply/.obj/.off file or a shape name ({', '.join(SHAPES)})")
    parser.add_argument("--out", default=None, help="output folder (sdf.h5, mesh.ply/.obj, sdf.png, metrics.json)")
    parser.add_argument("--w-off", type=float, default=None, help="off-surface weight (catalog: 1e2)")
    parser.add_argument("--w-eikonal", type=float, default=None, help="Eikonal weight (catalog: 5e1)")
    parser.add_argument("--w-sdf", type=float, default=None, help="on-surface |u| weight (catalog: 3e3)")
    parser.add_argument("--w-normal", type=float, default=None, help="normal weight (catalog: 1e2)")
    add_flags(parser, SDFConfig,
              choices={"arch": ARCHITECTURES, "schedule": SCHEDULES, "engine": ("auto", "jet", "autograd")})


def main(args: argparse.Namespace) -> int:
    weights = {k: v for k, v in (("off_surface", args.w_off), ("eikonal", args.w_eikonal), ("sdf", args.w_sdf),
                                 ("normal", args.w_normal)) if v is not None}
    cfg = from_args(SDFConfig, args, weights=weights or None)
    if args.source in SHAPES and shape_dim(args.source) == 2:
        cfg.eval_points = min(cfg.eval_points, 100_000)
    r = run(args.source, cfg, args.out)
    print(json.dumps(dict(metrics=r["metrics"], transform=r["transform"], phases=r["phases"]), indent=2))
    return 0
