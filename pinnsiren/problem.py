"""Problems: fields + constraints on sampled regions -> per-constraint losses.

The regions live in :mod:`pinnsiren.geometry` (boxes, balls, polygons,
composed shapes, space-time) and :mod:`pinnsiren.regions` (points near a
source, cones, point sets with data). Regions sample collocation points
afresh on every call. Their bounds may be callables of the training step
(curriculum), e.g. a time window that grows linearly: ``Box(lambda step: [(-1, 1), (-1, 1), (0, min(1, step / 1000))])``.
All sampling is done on the CPU in float64 with the given
``torch.Generator`` (reproducible), then moved to the model's device/dtype.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import sympy
import torch
from torch import nn

from .compiler import CompiledResidual, compile_residual
from .evaluation import model_dtype_device
from .symbolic import Constraint, is_complex_field
from .geometry import NORMAL, Region
from .regions import PointSet

__all__ = ["Problem"]


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
        dtype, device = model_dtype_device(model)
        d = len(self.coords)
        n_in = getattr(model, "in_features", None)
        if isinstance(n_in, int) and n_in != d:
            raise ValueError(f"model takes {n_in} input coordinates but the problem has {d} "
                             f"({', '.join(map(str, self.coords))}): build it with in_features={d}")
        x = torch.zeros(1, d, dtype=dtype, device=device)
        with torch.no_grad():
            try:
                C = model(x).shape[-1]
            except RuntimeError as e:
                raise ValueError(f"model cannot be evaluated on points of shape (N, {d}) "
                                 f"({', '.join(map(str, self.coords))}): {' '.join(str(e).split())}") from None
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
        dtype, device = model_dtype_device(model)
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
        dtype, device = model_dtype_device(model)
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
