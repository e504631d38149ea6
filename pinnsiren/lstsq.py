"""Least-squares solve of a network's last layer for residuals affine in the fields.

For a linear PDE (and linear boundary conditions) every constraint's residual
is affine in the fields and their derivatives::

    r(x) = c0(x) + sum_{(c, a)} g_{c,a}(x) d^a u_c(x)

and a SIREN / MLP output is linear in its last layer: ``u_c = W_c phi + b_c``
with ``phi`` the last hidden layer's features. So the residual is affine in
the last layer's weights ``theta = [W_c, b_c]_c``, and the squared loss
``sum_names w_n mean_i |r_n(x_i)|^2`` is minimised over ``theta`` *exactly* by
one linear least-squares solve. This is the least-squares half of the hybrid
least-squares / gradient-descent training of Cyr et al. 2020 ("Robust
training and initialization of deep neural networks: an adaptive basis
viewpoint"), and with untrained hidden layers it is an extreme learning
machine (Dong & Li 2021).

Nothing here is specific to one equation. The coefficients ``c0`` and
``g_{c,a}`` are found by *probing* the compiled residual: it is evaluated on
copies of the points where the fields' jet is zero (``c0``) or one in a single
slot (``c0 + g_{c,a}``), through a model wrapper that supplies that jet to the
derivative engine (the ``transform_derivatives`` hook). The assembled system is
checked against the residual of the actual network, so a residual that is not
affine in the fields raises an error instead of giving a wrong answer.

Example
-------
>>> info = solve_last_layer(problem, model, points={"pde": 8192})
>>> info["loss_before"], info["loss_after"]
"""

from __future__ import annotations

import copy
import math
import time
from typing import Any, Mapping

import torch
from torch import nn

from .geometry import NORMAL
from .networks import MLP, Siren

__all__ = ["feature_jet", "linear_form", "assemble", "solve_last_layer", "LeastSquaresLastLayer", "NotAffineError",
           "output_normal_equations", "solve_output_layer", "LeastSquaresValues"]

Key = tuple[int, tuple[int, ...]]


class NotAffineError(ValueError):
    """A constraint's residual is not affine in the fields (the least-squares solve does not apply)."""


def _last_linear(model: nn.Module) -> nn.Linear:
    if not isinstance(model, (Siren, MLP)) or not isinstance(getattr(model, "layers", None), nn.ModuleList):
        raise TypeError(
            f"the last-layer least-squares solve needs a Siren or MLP (a final nn.Linear in model.layers), "
            f"got {type(model).__name__}; wrappers (transforms) are not supported"
        )
    last = model.layers[-1]
    if not isinstance(last, nn.Linear):
        raise TypeError(f"the last layer of {type(model).__name__} is a {type(last).__name__}, not an nn.Linear")
    return last


def feature_jet(model: nn.Module, x: torch.Tensor, multi_indices: list[tuple[int, ...]]) -> dict[tuple[int, ...], torch.Tensor]:
    """Derivatives of the last hidden layer's features, with a constant column for the bias.

    Parameters
    ----------
    model : Siren or MLP
    x : Tensor (N, d)
    multi_indices : list of tuples of d ints

    Returns
    -------
    dict multi_index -> Tensor (N, H + 1): column ``j < H`` is ``d^a phi_j``,
    the last column ``d^a 1`` (1 for the value, 0 for a derivative). No graph.
    """
    from .jet import derivatives

    last = _last_linear(model)
    H = last.in_features
    feat = copy.deepcopy(model)
    eye = nn.Linear(H, H).to(device=last.weight.device, dtype=last.weight.dtype)
    with torch.no_grad():
        eye.weight.copy_(torch.eye(H, dtype=last.weight.dtype))
        eye.bias.zero_()
    feat.layers[-1] = eye
    feat.out_features = H
    with torch.no_grad():
        jet = derivatives(feat, x.detach(), [(j, a) for a in multi_indices for j in range(H)])
    out = {}
    for a in multi_indices:
        cols = torch.stack([jet[(j, a)] for j in range(H)], 1)
        one = torch.full((x.shape[0], 1), 1.0 if sum(a) == 0 else 0.0, dtype=cols.dtype, device=cols.device)
        out[a] = torch.cat([cols, one], 1)
    return out


class _Probe(nn.Module):
    """A 'model' whose jet is zero in block 0 and one in a single slot in block k (k = 1..K)."""

    def __init__(self, n_channels: int, n: int, keys: list[Key] | None, dtype: torch.dtype) -> None:
        super().__init__()
        self.out_features = n_channels
        self.n = n
        self.keys = keys
        self.seen: list[Key] | None = None
        self._p = nn.Parameter(torch.zeros((), dtype=dtype), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # only used for a channel check
        return x.new_zeros(x.shape[0], self.out_features)

    def transform_derivatives(self, x: torch.Tensor, keys: list[Key], method: str) -> dict[Key, torch.Tensor]:
        self.seen = list(keys)
        out = {k: x.new_zeros(x.shape[0]) for k in keys}
        if self.keys is not None:
            for b, k in enumerate(self.keys, start=1):
                if k in out:
                    out[k][b * self.n:(b + 1) * self.n] = 1.0
        return out


def _residual(problem: Any, name: str, model: nn.Module, x: torch.Tensor, data: Mapping[str, Any]) -> torch.Tensor:
    data = dict(data)
    nrm = data.pop(NORMAL, None)
    if nrm is not None:  # region normals are the coefficients n_<coord>
        data.update({f"n_{c.name}": nrm[:, i].to(x.dtype) for i, c in enumerate(problem.coords)})
    r = problem.residual(name, model, x, **data)
    return r if r.ndim == 2 else r[:, None]


def linear_form(problem: Any, name: str, x: torch.Tensor, data: Mapping[str, Any] | None = None
                ) -> tuple[torch.Tensor, dict[Key, torch.Tensor]]:
    """``c0`` and ``g_{c,a}`` of constraint ``name`` at points ``x`` (see the module docstring).

    Returns
    -------
    c0 : Tensor (N, m)
        The residual for zero fields (``m`` = 1 for a scalar residual).
    g : dict (channel, multi_index) -> Tensor (N, m)
        Coefficient of each field derivative the residual uses.
    """
    data = dict(data or {})
    N = x.shape[0]
    with torch.no_grad():
        probe = _Probe(problem.n_channels, N, None, x.dtype)
        _residual(problem, name, probe, x[:1], {k: v[:1] for k, v in data.items()})
        keys = list(probe.seen or [])
        probe = _Probe(problem.n_channels, N, keys, x.dtype)
        reps = len(keys) + 1
        xr = x.repeat(reps, 1)
        dr = {k: torch.cat([v] * reps, 0) for k, v in data.items()}
        r = _residual(problem, name, probe, xr, dr)
    c0 = r[:N]
    g = {k: r[(b + 1) * N:(b + 2) * N] - c0 for b, k in enumerate(keys)}
    return c0, g


def assemble(problem: Any, model: nn.Module, samples: Mapping[str, tuple[torch.Tensor, Mapping[str, Any]]]
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """The real least-squares system ``A theta ~ b`` of the last layer.

    Parameters
    ----------
    samples : mapping constraint name -> (x (N, d), point data)
        Points of each constraint included (weights from the constraint,
        each term averaged over its points as in the training loss).

    Returns
    -------
    A : Tensor (R, C * (H + 1)), float64
        Rows: real and imaginary parts of ``sqrt(w / N) r`` at every point.
        Columns: ``theta = [W_0, b_0, W_1, b_1, ...]`` channel by channel.
    b : Tensor (R,), float64, ``-sqrt(w / N) c0``.
    """
    last = _last_linear(model)
    C, H1 = last.out_features, last.in_features + 1
    rows_a, rows_b = [], []
    for name, (x, data) in samples.items():
        con = problem.constraints[name]
        if con.pair is not None:
            raise ValueError(f"constraint {name!r} is a two-point condition; the least-squares solve does not take pairs")
        if not isinstance(con.weight, (int, float)):
            raise ValueError(f"constraint {name!r} has a non-constant weight; the least-squares solve needs a number")
        c0, g = linear_form(problem, name, x, data)
        N, m = c0.shape
        needs = sorted({a for (_, a) in g})
        F = feature_jet(model, x, needs)
        cplx = c0.is_complex() or any(v.is_complex() for v in g.values())
        dt = torch.complex128 if cplx else torch.float64
        A = torch.zeros(N, m, C * H1, dtype=dt, device=x.device)
        for (c, a), gv in g.items():
            if c >= C:
                raise ValueError(f"the residual of {name!r} uses channel {c} but the model has {C}")
            A[:, :, c * H1:(c + 1) * H1] += gv.to(dt)[:, :, None] * F[a].to(dt)[:, None, :]
        rows_a.append(_rows(problem, name, A, N, cplx))
        rows_b.append(_rows(problem, name, -c0.to(dt), N, cplx))
    return torch.cat(rows_a, 0), torch.cat(rows_b, 0)


def _rows(problem: Any, name: str, r: torch.Tensor, n: int, cplx: bool | None = None) -> torch.Tensor:
    """``sqrt(w / n) r`` flattened to rows (point-major), real and imaginary parts stacked when complex."""
    s = math.sqrt(float(problem.constraints[name].weight) / n)
    r = s * r.reshape(r.shape[0] * r.shape[1], *r.shape[2:])
    cplx = r.is_complex() if cplx is None else cplx
    if not cplx:
        return (r.real if r.is_complex() else r).double()
    r = r.to(torch.complex128)
    return torch.cat([r.real, r.imag], 0)


def _theta(last: nn.Linear) -> torch.Tensor:
    return torch.cat([last.weight.detach(), last.bias.detach()[:, None]], 1).reshape(-1).double()


def solve_last_layer(problem: Any, model: nn.Module, points: Mapping[str, int] | None = None,
                     generator: torch.Generator | None = None, step: int = 0, rcond: float = 1e-10,
                     check: float | None = 1e-4, samples: Mapping[str, tuple[torch.Tensor, Mapping[str, Any]]] | None = None
                     ) -> dict[str, float]:
    """Set the model's last layer to the least-squares minimiser of the squared residual loss.

    Parameters
    ----------
    problem : pinnsiren.Problem
        Every included constraint must be affine in the fields (checked).
    model : Siren or MLP, changed in place.
    points : mapping constraint name -> number of fresh samples, optional
        Default: every constraint with ``4 n`` points (``n`` its points per step).
    generator, step : passed to the regions' samplers.
    rcond : relative cut-off of small singular values (``torch.linalg.lstsq``, gelsd).
    check : tolerance of the affinity check (relative to the residual norm); None skips it.
    samples : mapping constraint name -> (x, point data), optional
        Use these points instead of sampling (``points`` is then ignored).

    Returns
    -------
    dict: ``loss_before`` / ``loss_after`` (the weighted mean squared residual on
    these points, summed over constraints), ``rank``, ``unknowns``, ``rows``.

    Raises
    ------
    NotAffineError
        If the assembled system does not reproduce the network's residual.
    """
    last = _last_linear(model)
    p = last.weight
    if samples is None:
        samples = _fresh_samples(problem, points, generator, step, p)
    A, b = assemble(problem, model, samples)
    theta0 = _theta(last).to(A.device)
    r_sys = A @ theta0 - b
    if check is not None:
        _check_affine(problem, model, samples, r_sys, check)
    sol = torch.linalg.lstsq(A.cpu(), b.cpu()[:, None], rcond=rcond, driver="gelsd")
    theta = sol.solution[:, 0].to(A.device)
    C, H1 = last.out_features, last.in_features + 1
    with torch.no_grad():
        T = theta.reshape(C, H1).to(p.dtype)
        last.weight.copy_(T[:, :-1])
        last.bias.copy_(T[:, -1])
    return dict(loss_before=float((r_sys**2).sum()), loss_after=float(((A @ theta - b) ** 2).sum()),
                rank=int(sol.rank), unknowns=int(A.shape[1]), rows=int(A.shape[0]))


def _fresh_samples(problem: Any, points: Mapping[str, int] | None, generator: torch.Generator | None, step: int,
                   p: torch.Tensor) -> dict:
    """``{constraint name: (x, point data)}`` drawn from the regions (default: ``4 n`` points each), on ``p``'s device and dtype."""
    if points is None:
        points = {n: 4 * int(c.n or 1) for n, c in problem.constraints.items()}
    samples = {}
    for name, n in points.items():
        x, data = problem.constraints[name].where.sample(int(n), step, generator)
        samples[name] = (x.to(device=p.device, dtype=p.dtype), {k: v.to(p.device) for k, v in data.items()})
    return samples


def _check_affine(problem: Any, model: nn.Module, samples: Mapping, r_sys: torch.Tensor, check: float) -> None:
    """Raise :class:`NotAffineError` unless the assembled residual ``r_sys`` reproduces the network's."""
    with torch.no_grad():
        r_net = torch.cat([_rows(problem, name, _residual(problem, name, model, x, data), x.shape[0])
                           for name, (x, data) in samples.items()])
    err = float(torch.linalg.norm(r_net - r_sys) / (torch.linalg.norm(r_sys) + 1e-300)) \
        if r_net.shape == r_sys.shape else float("inf")
    if not err <= check:
        raise NotAffineError(
            f"the residual is not affine in the fields (assembled system vs network residual differ by "
            f"{err:.2e} relative); the last-layer least-squares solve applies to linear equations only"
        )


class LeastSquaresLastLayer:
    """A problem view for :func:`pinnsiren.train.train`: hybrid least squares / gradient descent.

    Every ``every`` steps, before the step's losses are computed, the model's
    last layer is set to the exact least-squares minimiser on that step's own
    samples; the optimiser then moves only the hidden layers (the last
    layer's ``requires_grad`` is switched off). At the minimiser the gradient
    of the loss with respect to the hidden layers is that of the reduced
    (variable-projection) loss ``min_theta loss``, so gradient descent adapts
    the basis the last layer combines (Cyr et al. 2020). Use ``norm="l2"``
    constraints: the least-squares solve minimises the squared residual.

    Everything else (constraints, ``pointwise``, ``validate``...) is the
    wrapped problem's.

    Parameters
    ----------
    problem : pinnsiren.Problem, every constraint affine in the fields.
    model : Siren or MLP (the one being trained).
    every : int, solve every this many steps (1: every step).
    rcond : see :func:`solve_last_layer`.
    """

    def __init__(self, problem: Any, model: nn.Module, every: int = 1, rcond: float = 1e-10) -> None:
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.problem = problem
        self.every = int(every)
        self.rcond = rcond
        self.solves = 0
        self.history: list[dict[str, float]] = []
        last = _last_linear(model)
        self._model_id = id(model)
        last.weight.requires_grad_(False)
        last.bias.requires_grad_(False)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["problem"], name)

    def losses(self, model: nn.Module, step: int, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        if id(model) != self._model_id:  # another model (e.g. the alarm's zero field): the plain losses
            return self.problem.losses(model, step, generator)
        p = next(iter(model.parameters()))
        samples = {}
        for name, c in self.problem.constraints.items():
            x, data = c.where.sample(c.n, step, generator)
            samples[name] = (x.to(device=p.device, dtype=p.dtype), {k: v.to(p.device) for k, v in data.items()})
        if self.solves == 0 or step % self.every == 0:
            info = solve_last_layer(self.problem, model, samples=samples, rcond=self.rcond,
                                    check=1e-4 if self.solves == 0 else None)
            self.solves += 1
            self.history.append(dict(step=step, **info))
        return {name: self.problem.pointwise(name, model, x, data).mean() for name, (x, data) in samples.items()}


# --------------------------------------------------------------------------
# Values (a signal fit): the residual is model(x) - y, the features are the last layer's input


def output_normal_equations(model: nn.Module, x: torch.Tensor, y: torch.Tensor, chunk: int = 32768,
                            dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The normal equations of the last layer for ``model(x) ~ y`` over every point, in chunks.

    ``phi`` is the input of the model's last ``nn.Linear`` (captured by a
    forward pre-hook, so encodings and any activation are included) with a
    constant column for the bias. Each chunk's products ``phi^T phi`` and
    ``phi^T y`` are computed in ``dtype`` and summed in float64.

    Returns
    -------
    G : Tensor (H + 1, H + 1), float64, ``sum phi^T phi``.
    B : Tensor (H + 1, C), float64, ``sum phi^T y``.
    yy : Tensor (C,), float64, ``sum y^2`` per channel.
    """
    last = _last_linear(model)
    if x.ndim != 2 or y.ndim != 2 or x.shape[0] != y.shape[0]:
        raise ValueError(f"x and y must be (N, d) and (N, C) with the same N, "
                         f"got {tuple(x.shape)} and {tuple(y.shape)}")
    if y.shape[1] != last.out_features:
        raise ValueError(f"y has {y.shape[1]} channels but the model has {last.out_features} outputs")
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    seen: list[torch.Tensor] = []
    hook = last.register_forward_pre_hook(lambda _m, inp: seen.append(inp[0]))
    m = last.in_features + 1
    G = torch.zeros(m, m, dtype=torch.float64, device=x.device)
    B = torch.zeros(m, y.shape[1], dtype=torch.float64, device=x.device)
    try:
        with torch.no_grad():
            for i in range(0, x.shape[0], chunk):
                seen.clear()
                model(x[i:i + chunk])
                phi = torch.cat([seen[0], torch.ones_like(seen[0][:, :1])], 1).to(dtype)
                G += (phi.T @ phi).double()
                B += (phi.T @ y[i:i + chunk].to(dtype)).double()
    finally:
        hook.remove()
    return G, B, (y.double() ** 2).sum(0)


def solve_output_layer(model: nn.Module, x: torch.Tensor, y: torch.Tensor, chunk: int = 32768,
                       ridge: float = 1e-12, dtype: torch.dtype = torch.float64) -> dict[str, float]:
    """Set the model's last layer to the least-squares minimiser of ``mean((model(x) - y)^2)`` over every point.

    With the hidden layers fixed the output is linear in the last layer's
    weights and bias, so the minimiser is one linear solve: the normal
    equations :func:`output_normal_equations` (``N x (H + 1)`` features,
    accumulated in chunks) solved by a symmetric eigendecomposition, with a
    ridge ``ridge * mean(diag G)`` added to the eigenvalues (it bounds the
    weights along directions the features barely span; a direction whose
    eigenvalue is below ``1e-15 max`` is dropped).

    Returns
    -------
    dict: ``mse_before`` / ``mse_after`` (over all N points and channels,
    from the float64 normal equations), ``rank`` (directions kept),
    ``unknowns`` (H + 1 per channel), ``rows`` (N).
    """
    if not ridge >= 0:
        raise ValueError(f"ridge must be >= 0, got {ridge!r}")
    last = _last_linear(model)
    G, B, yy = output_normal_equations(model, x, y, chunk, dtype)
    n = x.shape[0] * y.shape[1]

    def mse(theta: torch.Tensor) -> float:  # theta (H + 1, C)
        return float((yy.sum() - 2 * (theta * B).sum() + (theta * (G @ theta)).sum()) / n)

    theta0 = torch.cat([last.weight.detach().T, last.bias.detach()[None, :]], 0).double()
    s, V = torch.linalg.eigh(G)
    keep = s > 1e-15 * float(s.max().clamp_min(1e-300))
    lam = ridge * float(torch.diagonal(G).mean())
    inv = torch.where(keep, 1.0 / (s + lam).clamp_min(1e-300), torch.zeros_like(s))
    theta = V @ (inv[:, None] * (V.T @ B))
    with torch.no_grad():
        last.weight.copy_(theta[:-1].T.to(last.weight.dtype))
        last.bias.copy_(theta[-1].to(last.bias.dtype))
    return dict(mse_before=mse(theta0), mse_after=mse(theta), rank=int(keep.sum()), unknowns=int(G.shape[0]),
                rows=int(x.shape[0]))


class LeastSquaresValues:
    """A values loss for :func:`pinnsiren.train.train` with the last layer solved exactly over every point.

    ``fit`` is a loss with ``x`` (N, d), ``y`` (N, C) and
    ``losses(model, step, generator)`` (e.g.
    :class:`solvers.signals.signal_fit.ValueFit`, which may draw a random
    mini-batch per step). At the first step and every ``every`` steps, before
    the step's loss, the last layer is set by :func:`solve_output_layer` on
    *all* N points; the optimiser moves only the hidden layers (the last
    layer's ``requires_grad`` is switched off): gradient descent on the
    variable-projection loss ``min_theta loss`` (Cyr et al. 2020), whose
    gradient at the minimiser is the plain loss's gradient for the hidden
    layers. Each solve appends ``step``, ``cpu_seconds`` (process time since
    construction) and :func:`solve_output_layer`'s numbers to ``history``.
    ``freeze=False`` leaves the last layer to the optimiser too between solves
    (each solve then restarts it from the optimum).
    """

    def __init__(self, fit: Any, model: nn.Module, every: int = 100, chunk: int = 32768, ridge: float = 1e-12,
                 dtype: torch.dtype = torch.float64, freeze: bool = True) -> None:
        if not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be an integer >= 1, got {every!r}")
        for name in ("x", "y", "losses"):
            if not hasattr(fit, name):
                raise TypeError(f"fit must have x, y and losses(); {type(fit).__name__} has no {name!r}")
        last = _last_linear(model)
        self.fit, self.every, self.chunk, self.ridge, self.dtype = fit, every, chunk, ridge, dtype
        self.solves = 0
        self.history: list[dict[str, float]] = []
        self._model_id = id(model)
        self._clock = time.process_time
        self._t0 = self._clock()
        last.weight.requires_grad_(not freeze)
        last.bias.requires_grad_(not freeze)

    def solve(self, model: nn.Module, step: int) -> dict[str, float]:
        """Solve the last layer now (on all points); recorded in ``history``."""
        info = solve_output_layer(model, self.fit.x, self.fit.y, self.chunk, self.ridge, self.dtype)
        self.solves += 1
        self.history.append(dict(step=step, cpu_seconds=self._clock() - self._t0, **info))
        return info

    def losses(self, model: nn.Module, step: int, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        if id(model) == self._model_id and (self.solves == 0 or step % self.every == 0):
            self.solve(model, step)
        return self.fit.losses(model, step, generator)
