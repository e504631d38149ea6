"""The compiled program: deduplicated nodes in evaluation order, everything looked up once
(:class:`Program`), and the state of one call (:class:`Context`)."""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import sympy
import torch
from sympy.core.function import AppliedUndef

from .compiler_collapse import Group, laplacians
from .compiler_handlers import CompileError
from .compiler_layout import project
from .jet import derivatives
from .jet_keys import ChannelCountError
from .reverse_mode import autograd_partials

if TYPE_CHECKING:
    from .compiler import CompiledResidual

__all__ = ["Program", "Context"]


class Program:
    """Flat list of instructions ``fn(ctx, vals) -> value``; ``vals[i]`` is node ``i``'s value.

    The collapsed groups' weight expressions come first (they do not depend
    on fields), then the derivative engine runs once, then the rest.
    """

    def __init__(self, comp: "CompiledResidual", exprs: Sequence[sympy.Basic], groups: list["Group"]) -> None:
        self.comp = comp
        self.groups = groups
        self.checked_models: weakref.WeakSet = weakref.WeakSet()  # models whose channel count passed
        self.index: dict[sympy.Basic, int] = {}
        self.code: list[Callable] = []
        self.group_weights = [[self._emit(w) for w in g.weights] for g in groups]
        self.channel_axes = {}  # channel -> kept coordinate indices, for the channels of sub-coordinate fields
        for name, axes in comp.sub_fields.items():
            ch, cplx = comp.fields[name]
            self.channel_axes.update({c: axes for c in ((ch, ch + 1) if cplx else (ch,))})
        self.n_before_jet = len(self.code)
        self.outputs = [self._emit(e) for e in exprs]

    def _emit(self, node: sympy.Basic) -> int:
        if node in self.index:
            return self.index[node]
        fn = self._leaf(node)
        if fn is None:
            handler = self.comp._handler(type(node))
            if handler is None:  # pragma: no cover - checked while normalising
                raise CompileError(f"no handler for {type(node).__name__}")
            args = [self._emit(a) for a in node.args]
            fn = _apply(handler, node, args)
        self.index[node] = len(self.code)
        self.code.append(fn)
        return self.index[node]

    def _leaf(self, node: sympy.Basic) -> Callable | None:
        comp = self.comp
        zero = (0,) * len(comp.coords)
        if isinstance(node, (sympy.Derivative, AppliedUndef)):
            f = node.expr if isinstance(node, sympy.Derivative) else node
            name = f.func.__name__
            a = comp._multi_index(node) if isinstance(node, sympy.Derivative) else zero
            if name in comp.fields:
                ch, cplx = comp.fields[name]
                return lambda ctx, v: ctx.field(ch, cplx, a)
            return lambda ctx, v: ctx.coefficient(name, a)
        for g_index, g in enumerate(self.groups):
            for name, ph in g.placeholders.items():
                if node == ph:
                    ch, cplx = comp.fields[name]
                    return lambda ctx, v: ctx.laplacian(g_index, ch, cplx)
        if isinstance(node, sympy.Symbol):
            if node in comp.coords:
                j = comp.coords.index(node)
                return lambda ctx, v: ctx.x[:, j]
            if node.name in comp.coefficient_names:
                return lambda ctx, v: ctx.coefficient(node.name, zero)
            return lambda ctx, v: ctx.parameter(node.name)
        if isinstance(node, sympy.core.numbers.ImaginaryUnit):
            return lambda ctx, v: ctx.const(1j)
        if isinstance(node, (sympy.Number, sympy.NumberSymbol)):
            c = complex(node)
            value = c.real if c.imag == 0 else c
            return lambda ctx, v: ctx.const(value)
        return None

    def run(self, ctx: "Context") -> list[torch.Tensor]:
        vals: list[Any] = [None] * len(self.code)
        for i in range(self.n_before_jet):
            vals[i] = self.code[i](ctx, vals)
        ctx.jet, ctx.laps = self.jet(ctx.model, ctx.x, [[vals[i] for i in ws] for ws in self.group_weights])
        for i in range(self.n_before_jet, len(self.code)):
            vals[i] = self.code[i](ctx, vals)
        return [ctx.output(vals[i]) for i in self.outputs]

    def jet(self, model, x: torch.Tensor, group_weights: list[list[Any]]) -> tuple[dict, list]:
        """Ask the engine, once, for every field derivative and collapsed group.

        Returns the engine's dict and, per group, its :class:`Laplacian`
        requests (one for real weights, real and imaginary parts otherwise).
        The channel count is checked on a model's first call only.
        """
        comp = self.comp
        if not comp.needs and not self.groups:
            return {}, []
        needs = list(comp.needs)
        laps_per_group = []
        for g, ws in zip(self.groups, group_weights):
            laps = laplacians(ws)
            laps_per_group.append(laps)
            for name in g.placeholders:
                ch, cplx = comp.fields[name]
                needs += [(c, lap) for lap in laps for c in ((ch, ch + 1) if cplx else (ch,))]
        first = model not in self.checked_models
        have = getattr(model, "out_features", None)
        if first and have is not None and have != comp.n_channels:
            raise comp.channel_error(have)
        # a field over some coordinates: its channels are evaluated with the others set to LEFT_OUT_VALUE
        by_axes: dict[tuple[int, ...] | None, list] = {}
        for n in needs:
            by_axes.setdefault(self.channel_axes.get(n[0]), []).append(n)
        jet: dict = {}
        try:
            for axes, ns in by_axes.items():
                xa = x if axes is None else project(x, axes)
                jet.update(derivatives(model, xa, ns, method=comp.engine, channels=comp.n_channels if first else None))
        except ChannelCountError as err:
            raise comp.channel_error(err.have) from None
        if first:
            self.checked_models.add(model)
        return jet, laps_per_group


def _apply(handler: Callable, node: sympy.Basic, args: list[int]) -> Callable:
    return lambda ctx, v: handler(ctx, node, [v[i] for i in args])


# --------------------------------------------------------------------------
# one call


class Context:
    """State of one evaluation: points, values, jet, coefficient cache."""

    def __init__(self, comp: "CompiledResidual", model, x: torch.Tensor, values: Mapping[str, Any]) -> None:
        self.comp = comp
        self.model = model
        self.x = x
        self.N = x.shape[0]
        self.dtype = x.dtype if x.is_floating_point() else torch.get_default_dtype()
        self.cdtype = torch.complex128 if self.dtype == torch.float64 else torch.complex64
        self.device = x.device
        self.values = values
        self.jet: dict = {}
        self.laps: list = []
        self.coef_cache: dict[tuple[str, tuple[int, ...]], torch.Tensor] = {}
        # a coefficient that is differentiated is evaluated at points that require grad
        self.xc = x if x.requires_grad or not comp.coefficient_derivatives else x.detach().requires_grad_(True)

    def output(self, r: Any) -> torch.Tensor:
        r = torch.as_tensor(r)
        if r.ndim == 0:
            r = r.expand(self.N)
        return r

    def const(self, v: complex | float) -> torch.Tensor:
        if isinstance(v, complex):
            return torch.tensor(v, dtype=self.cdtype, device=self.device)
        return torch.tensor(v, dtype=self.dtype, device=self.device)

    def field(self, ch: int, cplx: bool, a: tuple[int, ...]) -> torch.Tensor:
        if cplx:
            return torch.complex(self.jet[(ch, a)], self.jet[(ch + 1, a)])
        return self.jet[(ch, a)]

    def laplacian(self, g: int, ch: int, cplx: bool) -> torch.Tensor:
        """``sum_k w_k d^2_k f`` of group ``g`` for the field at channel ``ch``."""
        laps, J = self.laps[g], self.jet
        if len(laps) == 1:
            return torch.complex(J[(ch, laps[0])], J[(ch + 1, laps[0])]) if cplx else J[(ch, laps[0])]
        re, im = laps  # complex weights: (a + ib) f
        if not cplx:
            return torch.complex(J[(ch, re)], J[(ch, im)])
        return torch.complex(J[(ch, re)] - J[(ch + 1, im)], J[(ch, im)] + J[(ch + 1, re)])

    def coefficient(self, name: str, a: tuple[int, ...]) -> torch.Tensor:
        key = (name, a)
        if key not in self.coef_cache:
            if sum(a) == 0:
                self.coef_cache[key] = self._coefficient_value(name)
            else:
                self._coefficient_derivatives(name)
        return self.coef_cache[key]

    def _coefficient_value(self, name: str) -> torch.Tensor:
        if name not in self.values:
            raise ValueError(f"coefficient {name!r} is missing: pass {name}=<tensor (N,) or callable x -> (N,)>")
        v = self.values[name]
        if callable(v) and not torch.is_tensor(v):
            differentiated = any(n == name for n, _ in self.comp.coefficient_derivatives)
            t = v(self.xc if differentiated else self.x)
            src = f"the callable given for coefficient {name!r}"
        else:
            t = v
            src = f"coefficient {name!r}"
        t = torch.as_tensor(t, device=self.device)
        if not (t.is_floating_point() or t.is_complex()):
            t = t.to(self.dtype)
        if t.ndim == 2 and t.shape[1] == 1:
            raise ValueError(f"{src} has shape {tuple(t.shape)}; expected ({self.N},): squeeze the last axis")
        if t.ndim not in (0, 1) or (t.ndim == 1 and t.shape[0] != self.N):
            raise ValueError(f"{src} has shape {tuple(t.shape)}; expected ({self.N},) or a scalar")
        if not bool(torch.isfinite(t).all()):
            raise ValueError(f"{src} contains non-finite values (NaN or inf)")
        return t

    def _coefficient_derivatives(self, name: str) -> None:
        """Every derivative of coefficient ``name`` the residual uses, by the engine's autograd recursion."""
        v = self.values.get(name)
        if v is None:
            raise ValueError(f"coefficient {name!r} is missing: pass {name}=<callable x -> (N,)>")
        if not callable(v) or torch.is_tensor(v):
            a = next(a for n, a in self.comp.coefficient_derivatives if n == name)
            raise ValueError(
                f"coefficient {name!r} is differentiated (multi-index {a}) so it must be given as a "
                "callable x -> (N,), not as values"
            )
        t = self.coefficient(name, (0,) * self.x.shape[1])
        idx = [a for n, a in self.comp.coefficient_derivatives if n == name]
        t = t.expand(self.N) if t.ndim == 0 else t
        y = torch.stack([t.real, t.imag], 1) if t.is_complex() else t[:, None]
        got = autograd_partials(y, self.xc, [(c, a) for c in range(y.shape[1]) for a in idx])
        for a in idx:
            self.coef_cache[(name, a)] = torch.complex(got[(0, a)], got[(1, a)]) if t.is_complex() else got[(0, a)]

    def parameter(self, name: str) -> torch.Tensor:
        if name in self.values:
            v = self.values[name]
        else:
            v = self.comp.parameter_defaults.get(name)
            if v is None:
                raise ValueError(f"parameter {name!r} is missing: pass {name}=<float or 0-d tensor>")
        if torch.is_tensor(v):
            if v.numel() != 1:
                raise ValueError(f"parameter {name!r} must be a scalar, got shape {tuple(v.shape)}")
            return v.reshape(()).to(self.device)
        if isinstance(v, complex):
            return self.const(v)
        return self.const(float(v))
