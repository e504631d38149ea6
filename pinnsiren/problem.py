"""Problems: fields + constraints on sampled regions -> per-constraint losses.

Regions sample collocation points afresh on every call. Their bounds may be
callables of the training step (curriculum), e.g. a time window that grows
linearly: ``Box(lambda step: [(-1, 1), (-1, 1), (0, min(1, step / 1000))])``.
All sampling is done on the CPU in float64 with the given
``torch.Generator`` (reproducible), then moved to the model's device/dtype.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import sympy
import torch
from torch import nn

from .compiler import CompiledResidual, compile_residual
from .symbolic import Constraint, is_complex_field
from .geometry import (  # regions live in geometry; re-exported here
    NORMAL,
    Ball,
    Box,
    BoxBoundary,
    Disk,
    Region,
    _ball_offsets,
    _bounds,
    _resolve,
    _uniform,
)

__all__ = [
    "Problem",
    "Constraint",
    "Region",
    "Box",
    "BoxBoundary",
    "Ball",
    "Disk",
    "TimeSlice",
    "NearPoint",
    "Cone",
    "PointSet",
]

Bounds = Sequence[Sequence[float]]


class TimeSlice(Region):
    """Uniform samples in a space box with one coordinate held at ``t0``.

    ``x[:, t_index] = t0``; the other columns follow ``space_bounds`` in order.
    """

    def __init__(self, space_bounds: Bounds | Callable[[int], Bounds], t_index: int, t0: float = 0.0) -> None:
        self.space_bounds = space_bounds
        self.t_index = t_index
        self.t0 = t0
        self.dim = _bounds(space_bounds, 0).shape[0] + 1
        if not 0 <= t_index < self.dim:
            raise ValueError(f"t_index {t_index} out of range for {self.dim} coordinates")

    def sample(self, n, step, generator):
        xs = _uniform(n, _bounds(self.space_bounds, step), generator)
        t = torch.full((n, 1), float(_resolve(self.t0, step)), dtype=torch.float64)
        return torch.cat([xs[:, : self.t_index], t, xs[:, self.t_index :]], 1), {}


class NearPoint(Region):
    """Dense Gaussian samples ``center + std * N(0, I)``, clipped to ``bounds`` (e.g. around a source)."""

    def __init__(self, center: Sequence[float], std: float, bounds: Bounds | Callable[[int], Bounds]) -> None:
        self.center = torch.as_tensor(np.asarray(center, dtype=np.float64))
        self.std = std
        self.bounds = bounds
        self.dim = self.center.shape[0]
        if _bounds(bounds, 0).shape[0] != self.dim:
            raise ValueError("NearPoint: center and bounds have different dimensions")

    def sample(self, n, step, generator):
        b = _bounds(self.bounds, step)
        x = self.center + float(_resolve(self.std, step)) * torch.randn(n, self.dim, generator=generator, dtype=torch.float64)
        return torch.minimum(torch.maximum(x, b[:, 0]), b[:, 1]), {}


class Cone(Region):
    """Space-time samples in the domain of influence of a ball: ``|x - center| <= r0 + c t``.

    ``t`` is uniform in ``t_bounds`` (a pair or a callable of the step, e.g.
    a growing window), then ``x`` uniform in the ball of radius ``r0 + c t``
    (clipped to ``space_bounds``). For a wave whose initial data live in the
    ball, the solution vanishes outside this cone (finite speed ``c``), so
    the cone is where collocation points matter. Time is coordinate
    ``t_index``; the space coordinates keep their order.
    """

    def __init__(self, center: Sequence[float], r0: float, c: float, t_bounds: Any,
                 space_bounds: Bounds, t_index: int) -> None:
        self.center = torch.as_tensor(np.asarray(center, dtype=np.float64))
        self.r0, self.c = float(r0), float(c)
        self.t_bounds = t_bounds
        self.space_bounds = space_bounds
        self.t_index = t_index
        self.dim = self.center.shape[0] + 1
        if self.r0 < 0 or self.c < 0:
            raise ValueError(f"Cone: r0 and c must be >= 0, got {self.r0}, {self.c}")
        if _bounds(space_bounds, 0).shape[0] != self.center.shape[0]:
            raise ValueError("Cone: center and space_bounds have different dimensions")
        if not 0 <= t_index < self.dim:
            raise ValueError(f"t_index {t_index} out of range for {self.dim} coordinates")

    def sample(self, n, step, generator):
        tb = _bounds([_resolve(self.t_bounds, step)], step)
        t = _uniform(n, tb, generator)
        x = self.center + _ball_offsets(n, self.center.shape[0], self.r0 + self.c * t, generator)
        b = _bounds(self.space_bounds, step)
        xs = torch.minimum(torch.maximum(x, b[:, 0]), b[:, 1])
        return torch.cat([xs[:, : self.t_index], t, xs[:, self.t_index :]], 1), {}


class PointSet(Region):
    """Explicit points carrying data (pixels, receivers, point clouds with normals).

    Parameters
    ----------
    points : array, shape (M, d)
    data : dict name -> array (M,)
        Supplied as the coefficient values of the same rows (real or complex).
        With ``n < M`` a random subset of ``n`` rows (without replacement) is
        drawn each step; with ``n`` None or ``>= M`` all rows are used.
    """

    def __init__(self, points: Any, data: Mapping[str, Any] | None = None) -> None:
        p = torch.as_tensor(np.asarray(points, dtype=np.float64))
        if p.ndim != 2:
            raise ValueError(f"points must have shape (M, d), got {tuple(p.shape)}")
        if not bool(torch.isfinite(p).all()):
            raise ValueError("PointSet points contain non-finite values")
        self.points = p
        self.dim = p.shape[1]
        self.data: dict[str, torch.Tensor] = {}
        for k, v in (data or {}).items():
            t = torch.as_tensor(np.asarray(v))
            if t.shape != (p.shape[0],):
                raise ValueError(f"PointSet data {k!r} has shape {tuple(t.shape)}; expected ({p.shape[0]},)")
            if not bool(torch.isfinite(t).all()):
                raise ValueError(f"PointSet data {k!r} contains non-finite values")
            self.data[k] = t
        self.data_names = tuple(self.data)

    def sample(self, n, step, generator):
        M = self.points.shape[0]
        if n is None or n >= M:
            return self.points, dict(self.data)
        idx = torch.randperm(M, generator=generator)[:n]
        return self.points[idx], {k: v[idx] for k, v in self.data.items()}


def _model_dtype_device(model: nn.Module) -> tuple[torch.dtype, torch.device]:
    for p in model.parameters():
        return p.dtype, p.device
    for b in model.buffers():
        if b.is_floating_point():
            return b.dtype, b.device
    return torch.get_default_dtype(), torch.device("cpu")


class Problem:
    """Fields, coordinates and constraints; produces the losses of one step.

    Parameters
    ----------
    fields : sequence of Field
        Unknowns in channel order (real: 1 channel, complex: 2).
    coords : sequence of sympy.Symbol
        Coordinates in column order of the sampled points.
    constraints : sequence of Constraint
        Each with a region ``where``; ``n`` points per step (optional for a
        :class:`PointSet`: all points).
    coefficients : mapping name (or applied function) -> value, optional
        Named coefficient values: callables ``x (N, d) -> (N,)`` (e.g. a
        :class:`~pinnsiren.coefficients.GridInterpolant`) or scalars. Point
        set data are further coefficients, per constraint.
    parameters : mapping Symbol/name -> float or nn.Parameter, optional
        Scalar parameters; an ``nn.Parameter`` is learnable (see
        :meth:`learnable_parameters`).
    engine : {"auto", "jet", "autograd"}
        Derivative path.
    """

    def __init__(
        self,
        fields: Sequence[sympy.Expr],
        coords: Sequence[sympy.Symbol],
        constraints: Sequence[Constraint],
        coefficients: Mapping[Any, Any] | None = None,
        parameters: Mapping[Any, Any] | None = None,
        engine: str = "auto",
    ) -> None:
        self.fields = list(fields)
        self.coords = tuple(coords)
        self.engine = engine
        self.coefficients = {_key(k): v for k, v in (coefficients or {}).items()}
        self.parameters = {_key(k): v for k, v in (parameters or {}).items()}
        self.constraints: dict[str, Constraint] = {}
        self._compiled: dict[str, CompiledResidual] = {}
        self._weights: dict[str, CompiledResidual | float] = {}
        if not constraints:
            raise ValueError("a Problem needs at least one constraint")
        for i, c in enumerate(constraints):
            if not isinstance(c, Constraint):
                raise TypeError(f"constraint {i} is a {type(c).__name__}, not a pinnsiren.Constraint")
            name = c.name or f"c{i}"
            if name in self.constraints:
                raise ValueError(f"two constraints are named {name!r}; give each a distinct name")
            if not isinstance(c.where, Region):
                raise ValueError(f"constraint {name!r} has no region: set where= (e.g. constraint.on(Box(...), n=...))")
            if c.where.dim != len(self.coords):
                raise ValueError(
                    f"constraint {name!r}: its region is {c.where.dim}-D but there are {len(self.coords)} coordinates"
                )
            if c.n is None and not isinstance(c.where, PointSet):
                raise ValueError(f"constraint {name!r} needs n (points per step) for a {type(c.where).__name__}")
            data_names = self._data_names(c.where)
            coefs = sorted(set(self.coefficients) | set(data_names))
            if c.pair is not None and not callable(c.pair) and len(c.pair) != len(self.coords):
                raise ValueError(
                    f"constraint {name!r}: pair shift {c.pair} has {len(c.pair)} entries; expected {len(self.coords)}"
                )
            self.constraints[name] = c
            self._compiled[name] = compile_residual(
                c.expr, self.fields, self.coords, coefficients=coefs, parameters=list(self.parameters), engine=engine
            )
            if isinstance(c.weight, sympy.Basic):
                self._weights[name] = compile_residual(
                    c.weight, [], self.coords, coefficients=coefs, parameters=list(self.parameters)
                )
            else:
                w = float(c.weight)
                if not math.isfinite(w) or w < 0:
                    raise ValueError(f"constraint {name!r}: weight must be finite and >= 0, got {c.weight!r}")
                self._weights[name] = w
        self.n_channels = sum(2 if is_complex_field(f) else 1 for f in self.fields)

    def _data_names(self, region: Region) -> list[str]:
        """Coefficient names a region's per-point data provide (``normal`` -> ``n_<coord>``)."""
        out: list[str] = []
        for k in getattr(region, "data_names", ()):
            if k == NORMAL:
                out += [f"n_{c.name}" for c in self.coords]
            else:
                out.append(k)
        return out

    def _expand(self, data: Mapping[str, Any]) -> dict[str, Any]:
        data = dict(data)
        nrm = data.pop(NORMAL, None)
        if nrm is not None:
            for i, c in enumerate(self.coords):
                data[f"n_{c.name}"] = nrm[:, i]
        return data

    def learnable_parameters(self) -> list[nn.Parameter]:
        """The ``nn.Parameter`` values among ``parameters`` (add them to the optimiser)."""
        return [v for v in self.parameters.values() if isinstance(v, nn.Parameter)]

    def _values(self, data: Mapping[str, Any], dtype, device) -> dict[str, Any]:
        data = self._expand(data)
        vals: dict[str, Any] = {}
        for k, v in self.coefficients.items():
            vals[k] = v.to(device) if isinstance(v, nn.Module) else v
        for k, v in data.items():
            t = v.to(device)
            if t.is_complex():
                vals[k] = t.to(torch.complex128 if dtype == torch.float64 else torch.complex64)
            else:
                vals[k] = t.to(dtype)
        vals.update(self.parameters)
        return vals

    def validate(self, model: nn.Module) -> None:
        """Check the model against the fields, and evaluate every constraint once on a few points.

        Raises
        ------
        ValueError
            If the model's output channel count differs from :attr:`n_channels`,
            or a constraint cannot be evaluated (missing coefficient...).
        """
        dtype, device = _model_dtype_device(model)
        x = torch.zeros(1, len(self.coords), dtype=dtype, device=device)
        with torch.no_grad():
            C = model(x).shape[-1]
        if C != self.n_channels:
            layout = ", ".join(f"{f.func.__name__} ({'complex: 2' if is_complex_field(f) else 'real: 1'})" for f in self.fields)
            raise ValueError(f"model has {C} output channels but the fields {layout} need {self.n_channels}")
        g = torch.Generator().manual_seed(0)
        for name in self.constraints:
            c = self.constraints[name]
            xs, data = c.where.sample(min(c.n or 4, 4), 0, g)
            if isinstance(c.where, PointSet):
                xs, data = xs[:4], {k: v[:4] for k, v in data.items()}
            try:
                self._evaluate(name, model, xs.to(device=device, dtype=dtype), data)
            except Exception as e:
                raise ValueError(f"constraint {name!r} cannot be evaluated: {e}") from e

    def _evaluate(self, name: str, model: nn.Module, x: torch.Tensor, data: Mapping[str, Any],
                  vals: Mapping[str, Any] | None = None) -> torch.Tensor:
        """Residual of constraint ``name`` at sampled points ``x`` with their region data.

        For a two-point constraint (``pair``) this is ``r(x) - r(x')``.
        """
        if vals is None:
            vals = self._values(data, x.dtype, x.device)
        r = self._compiled[name](model, x, **vals)
        pair = self.constraints[name].pair
        if pair is not None:
            if callable(pair):
                x2 = pair(x)
                if not torch.is_tensor(x2) or x2.shape != x.shape:
                    raise ValueError(f"constraint {name!r}: pair(x) must return a tensor of shape {tuple(x.shape)}")
            else:
                x2 = x + torch.tensor(pair, dtype=x.dtype, device=x.device)
            r = r - self._compiled[name](model, x2, **vals)
        return r

    def residual(self, name: str, model: nn.Module, x: torch.Tensor, **values: Any) -> torch.Tensor:
        """Residual of constraint ``name`` at points ``x`` (N, d): (N,) or (N, m).

        ``values`` supplies/overrides coefficients (e.g. point-set data for ``x``).
        """
        if name not in self._compiled:
            raise KeyError(f"unknown constraint {name!r}; known: {sorted(self._compiled)}")
        vals = self._values({}, x.dtype, x.device)
        vals.update(values)
        return self._compiled[name](model, x, **vals)

    def _pointwise_parts(self, name: str, model: nn.Module, x: torch.Tensor, data: Mapping[str, Any]):
        """``(p, w)``: unweighted per-point loss (N,) and the weight (float or (N,) tensor)."""
        c = self.constraints[name]
        vals = self._values(data, x.dtype, x.device)
        r = self._evaluate(name, model, x, data, vals)
        a = r.abs()
        p = a * a if c.norm == "l2" else a
        if p.ndim == 2:
            p = p.sum(1)
        w = self._weights[name]
        if isinstance(w, CompiledResidual):
            wv = w(None, x, **vals)
            return p, (wv.real if wv.is_complex() else wv)
        return p, w

    def pointwise(self, name: str, model: nn.Module, x: torch.Tensor, data: Mapping[str, Any] | None = None) -> torch.Tensor:
        """Per-point weighted loss of constraint ``name`` at ``x`` (N, d): (N,), real, >= 0.

        ``w(x) * sum_j |r_j(x)|^2`` (``l2``) or ``w(x) * sum_j |r_j(x)|``
        (``l1``); the constraint's loss is the mean of this over its sample.
        ``data``: point-set values of the same rows. Used by the trainer's
        adaptive sampling, causal weights and failure alarm.
        """
        if name not in self.constraints:
            raise KeyError(f"unknown constraint {name!r}; known: {sorted(self.constraints)}")
        p, w = self._pointwise_parts(name, model, x, data or {})
        return w * p

    def point_losses(
        self, model: nn.Module, step: int, generator: torch.Generator | None = None
    ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Fresh samples and their per-point losses: ``{name: (x (N, d), loss (N,))}``.

        :meth:`losses` is the mean of each (up to rounding); the trainer uses
        the points for causal weights in time.
        """
        dtype, device = _model_dtype_device(model)
        out: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        for name, c in self.constraints.items():
            x, data = c.where.sample(c.n, step, generator)
            x = x.to(device=device, dtype=dtype)
            p, w = self._pointwise_parts(name, model, x, data)
            out[name] = (x, w * p)
        return out

    def losses(self, model: nn.Module, step: int, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """One scalar loss per constraint, on fresh samples.

        ``l2``: ``mean_i w_i sum_j |r_ij|^2``; ``l1``: ``mean_i w_i sum_j |r_ij|``
        (``|.|`` the modulus for complex residuals, ``j`` over vector
        components).
        """
        dtype, device = _model_dtype_device(model)
        out: dict[str, torch.Tensor] = {}
        for name, c in self.constraints.items():
            x, data = c.where.sample(c.n, step, generator)
            x = x.to(device=device, dtype=dtype)
            p, w = self._pointwise_parts(name, model, x, data)
            out[name] = (w * p).mean() if isinstance(w, torch.Tensor) else w * p.mean()
        return out


def _key(k: Any) -> str:
    if isinstance(k, str):
        return k
    if isinstance(k, sympy.Symbol):
        return k.name
    if isinstance(k, sympy.core.function.AppliedUndef):
        return k.func.__name__
    if isinstance(k, sympy.core.function.UndefinedFunction):
        return k.__name__
    raise TypeError(f"cannot use {k!r} as a coefficient/parameter key; give a name or SymPy symbol/function")
