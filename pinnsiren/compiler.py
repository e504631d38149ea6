"""Compile SymPy residual expressions into batched PyTorch functions.

The compiler is a recursive tree walk over a table of node handlers
(:data:`~pinnsiren.compiler_handlers.HANDLERS`, SymPy class -> function), memoising identical subtrees so
each is evaluated once per call. At compile time the expression is
validated and normalised so that every ``Derivative`` acts directly on a
field or a named coefficient (SymPy differentiates everything else exactly,
including known coefficient expressions); the set of field derivatives the
expression uses is collected and requested from the derivative engine
(:func:`pinnsiren.jet.derivatives`) once per call.

This module holds the public entry points; the parts live in
:mod:`~pinnsiren.compiler_handlers` (node handlers, :class:`CompileError`),
:mod:`~pinnsiren.compiler_layout` (field channels, sub-coordinate fields),
:mod:`~pinnsiren.compiler_collapse` (forward-Laplacian groups) and
:mod:`~pinnsiren.compiler_program` (the flat program and one call's state).

Example
-------
>>> x, y = sympy.symbols("x y")
>>> u = Field("u", (x, y))
>>> r = compile_residual(sympy.Eq(u.diff(x, 2) + u.diff(y, 2), 1), [u], (x, y))
>>> r(model, pts).shape            # pts: (N, 2)
torch.Size([N])
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Iterable, Mapping, Sequence

import sympy
import torch
from sympy.core.function import AppliedUndef, UndefinedFunction
from torch import nn

from .compiler_collapse import collapse as collapse_groups
from .compiler_handlers import HANDLERS, CompileError
from .compiler_layout import channel_layout, field_axes, subsequence
from .compiler_program import Context, Program
from .symbolic import is_complex_field, is_field

__all__ = ["compile_residual", "CompiledResidual"]


def _names(items: Iterable[Any], what: str) -> list[str]:
    out = []
    for it in items:
        if isinstance(it, str):
            name = it
        elif isinstance(it, AppliedUndef):
            name = it.func.__name__
        elif isinstance(it, UndefinedFunction):
            name = it.__name__
        elif isinstance(it, sympy.Symbol):
            name = it.name
        else:
            raise TypeError(f"cannot use {it!r} as a {what}; give a name, a Symbol or an applied function")
        if not name.isidentifier():
            raise ValueError(f"{what} name {name!r} is not an identifier")
        out.append(name)
    return out


class CompiledResidual:
    """A residual expression compiled to a batched torch function.

    Call as ``r(model, x, **values)``: ``x`` of shape ``(N, d)`` (columns in
    ``coords`` order), ``values`` the named coefficients (tensor ``(N,)``,
    scalar, or callable ``x -> (N,)``) and parameters (float or 0-d tensor /
    ``nn.Parameter``). Returns a tensor of shape ``(N,)`` (``(N, m)`` for a
    vector of ``m`` expressions), complex where the expression is.

    Everything is resolved once, here: the expression is normalised, its
    nodes are deduplicated into a flat program (each node's handler, each
    field's channels and multi-index, each coordinate's column looked up
    now), and weighted sums of pure second derivatives are collapsed into
    forward-Laplacian requests (:class:`pinnsiren.jet_keys.Laplacian`) where that
    saves Taylor slots. A call runs the program.

    Attributes
    ----------
    exprs : tuple of sympy.Expr
        The normalised expressions.
    needs : list of (channel, multi_index)
        The field derivatives requested from the engine by multi-index, each
        once (the pure second derivatives a collapsed group replaces are not
        among them).
    laplacians : list of tuple
        The collapsed groups: the weights ``(w_1, ..., w_d)`` as SymPy
        expressions; each is one Taylor slot (two where a weight may be
        complex) for every field it serves.
    n_channels : int
        Model output channels the fields occupy.
    engine : {"auto", "jet", "autograd"}
        Derivative path (see :func:`pinnsiren.jet.derivatives`).
    """

    def __init__(
        self,
        expr: Any,
        fields: Sequence[sympy.Expr],
        coords: Sequence[sympy.Symbol],
        coefficients: Iterable[Any] = (),
        parameters: Iterable[Any] | Mapping[Any, Any] = (),
        handlers: Mapping[type, Callable] | None = None,
        engine: str = "auto",
        collapse: bool = True,
    ) -> None:
        self.coords = tuple(coords)
        for c in self.coords:
            if not isinstance(c, sympy.Symbol):
                raise CompileError(f"coordinate {c!r} is not a sympy.Symbol")
        self.engine = engine
        self.handlers = dict(HANDLERS)
        if handlers:
            self.handlers.update(handlers)
        self.fields, self.n_channels = channel_layout(fields, self.coords)
        #: fields over a subset of the coordinates: name -> the indices of the coordinates they keep
        self.sub_fields = {f.func.__name__: field_axes(f, self.coords) for f in fields
                           if len(field_axes(f, self.coords)) < len(self.coords)}
        self._field_args = {f.func.__name__: tuple(f.args) for f in fields}
        self.user_coords = self.coords
        self._to_real = {c: c if c.is_extended_real else sympy.Symbol(c.name, real=True) for c in self.coords}
        self.coords = tuple(self._to_real[c] for c in self.coords)
        self._field_args = {n: tuple(self._to_real[c] for c in a) for n, a in self._field_args.items()}
        self.coefficient_names = set(_names(coefficients, "coefficient"))
        # parameters: sequence of symbols/names, or mapping -> default value
        if isinstance(parameters, Mapping):
            self.parameter_defaults = {n: v for n, v in zip(_names(parameters, "parameter"), parameters.values())}
        else:
            self.parameter_defaults = {n: None for n in _names(parameters, "parameter")}
        clash = (set(self.fields) | self.coefficient_names) & set(self.parameter_defaults)
        clash |= set(self.fields) & self.coefficient_names
        if clash:
            raise CompileError(f"names used for more than one role (field/coefficient/parameter): {sorted(clash)}")
        self.is_vector = isinstance(expr, (list, tuple, sympy.MatrixBase))
        self.exprs = tuple(self._normalize(self._as_expr(e), {c.name for c in self.coords})
                           for e in (list(expr) if self.is_vector else [expr]))
        self.coefficient_derivatives = sorted(
            {(d.expr.func.__name__, self._multi_index(d)) for e in self.exprs for d in e.atoms(sympy.Derivative)
             if d.expr.func.__name__ in self.coefficient_names}
        )
        self.is_complex = any(is_complex_field(a) for e in self.exprs for a in e.atoms(AppliedUndef)) or any(
            e.has(sympy.I) for e in self.exprs
        )
        collapsed = collapse_groups(self, self.exprs) if collapse else None
        body, groups = collapsed if collapsed is not None else (self.exprs, [])
        self.laplacians = [g.weights for g in groups]
        self.needs = self._collect_needs(body)
        self._program = Program(self, body, groups)

    # ---------------------------------------------------------------- compile

    def _as_expr(self, e: Any) -> sympy.Basic:
        if isinstance(e, str):
            raise CompileError("expressions must be SymPy objects; strings are not parsed")
        if isinstance(e, sympy.Equality):
            e = e.lhs - e.rhs
        elif isinstance(e, sympy.core.relational.Relational):
            raise CompileError(f"{e} is an inequality; a residual must be an expression or an Eq")
        # coordinates are real: let SymPy know, so d|x|/dx = sign(x) etc.
        return sympy.sympify(e, strict=True).xreplace(self._to_real)

    def _check_applied(self, f: AppliedUndef) -> None:
        name = f.func.__name__
        if name in self.fields:
            ch, cplx = self.fields[name]
            if is_field(f) and is_complex_field(f) != cplx:
                have = "complex" if is_complex_field(f) else "real"
                lay = "complex (2 channels)" if cplx else "real (1 channel)"
                raise CompileError(
                    f"field {name!r} is {have} in the expression but the channel layout (fields=) "
                    f"declares it {lay}"
                )
            if tuple(f.args) != self._field_args[name]:
                raise CompileError(
                    f"field {name!r} is applied to {tuple(f.args)} but is declared over {self._field_args[name]}"
                )
            return
        elif name not in self.coefficient_names:
            raise CompileError(
                f"unknown function {name!r}: not among the fields {sorted(self.fields)} "
                f"nor the coefficients {sorted(self.coefficient_names)}"
            )
        if tuple(f.args) != self.coords:
            try:
                subsequence(f.args, self.coords)
            except ValueError:
                raise CompileError(
                    f"{name!r} is applied to {tuple(f.args)} but must be applied to the coordinates {self.coords} "
                    "(or to some of them, in that order)"
                ) from None

    def _normalize_derivative(self, e: sympy.Derivative, coord_names: set[str]) -> sympy.Basic:
        for v, _ in e.variable_count:
            if v not in self.coords:
                raise CompileError(
                    f"derivative of {e.expr} with respect to {v}, which is not a coordinate {self.coords}"
                )
        inner = e.expr
        if isinstance(inner, AppliedUndef):
            self._check_applied(inner)
            if any(v not in inner.args for v, _ in e.variable_count):
                return sympy.S.Zero  # a function over some coordinates does not change along the others
            return sympy.Derivative(inner, *e.variable_count)
        if isinstance(inner, (sympy.re, sympy.im, sympy.conjugate)):
            # coordinates are real: d/dx re(f) = re(df/dx), etc.
            return inner.func(self._normalize(sympy.Derivative(inner.args[0], *e.variable_count), coord_names))
        d = sympy.diff(inner, *e.variable_count)
        if isinstance(d, sympy.Derivative) and d.expr == inner:
            raise CompileError(f"cannot differentiate {inner} (SymPy leaves {d} unevaluated)")
        return self._normalize(d, coord_names)

    def _normalize(self, e: sympy.Basic, coord_names: set[str]) -> sympy.Basic:
        if isinstance(e, sympy.Derivative):
            return self._normalize_derivative(e, coord_names)
        if isinstance(e, AppliedUndef):
            self._check_applied(e)
            return e
        if isinstance(e, sympy.Symbol):
            if e in self.coords or e.name in self.parameter_defaults or e.name in self.coefficient_names:
                # a symbol named as a coefficient is a per-point value (e.g. a normal component)
                return e
            raise CompileError(
                f"unknown free symbol {e.name!r}: not a coordinate {self.coords} nor a parameter "
                f"{sorted(self.parameter_defaults)}"
            )
        if isinstance(e, (sympy.Number, sympy.NumberSymbol, sympy.core.numbers.ImaginaryUnit)):
            return e
        if e in (sympy.zoo, sympy.nan, sympy.oo, -sympy.oo):
            raise CompileError(f"the expression contains the non-finite constant {e}")
        if self._handler(type(e)) is None and not isinstance(e, (sympy.logic.boolalg.BooleanAtom,)):
            raise CompileError(
                f"no handler for {type(e).__name__} (in {e}); pass handlers={{{type(e).__name__}: fn}}"
            )
        if not e.args:
            return e
        new = [self._normalize(a, coord_names) for a in e.args]
        if all(a is b for a, b in zip(new, e.args)):
            return e
        return e.func(*new)

    def _handler(self, cls: type) -> Callable | None:
        for k in cls.__mro__:
            if k in self.handlers:
                return self.handlers[k]
        return None

    def _multi_index(self, d: sympy.Derivative) -> tuple[int, ...]:
        a = [0] * len(self.coords)
        for v, n in d.variable_count:
            a[self.coords.index(v)] += int(n)
        return tuple(a)

    def _collect_needs(self, exprs: Sequence[sympy.Basic]) -> list[tuple[int, tuple[int, ...]]]:
        needs: list[tuple[int, tuple[int, ...]]] = []
        zero = (0,) * len(self.coords)

        def add(name: str, a: tuple[int, ...]) -> None:
            ch, cplx = self.fields[name]
            for c in (ch, ch + 1) if cplx else (ch,):
                if (c, a) not in needs:
                    needs.append((c, a))

        def walk(node: sympy.Basic) -> None:
            if isinstance(node, sympy.Derivative):
                if node.expr.func.__name__ in self.fields:
                    add(node.expr.func.__name__, self._multi_index(node))
                return  # do not count the differentiated field's value
            if isinstance(node, AppliedUndef):
                if node.func.__name__ in self.fields:
                    add(node.func.__name__, zero)
                return
            for a in node.args:
                walk(a)

        for e in exprs:
            walk(e)
        return needs

    # ------------------------------------------------------------------- call

    def __call__(self, model: nn.Module | None, x: torch.Tensor, **values: Any) -> torch.Tensor:
        if not torch.is_tensor(x) or x.ndim != 2 or x.shape[1] != len(self.coords):
            shape = tuple(x.shape) if torch.is_tensor(x) else type(x).__name__
            raise ValueError(f"x must be a tensor of shape (N, {len(self.coords)}) for coordinates {self.coords}, got {shape}")
        known = self.coefficient_names | set(self.parameter_defaults)
        extra = set(values) - known
        if extra:
            raise TypeError(f"unexpected values {sorted(extra)}; known coefficients/parameters: {sorted(known)}")
        if (self.needs or self.laplacians) and model is None:
            raise ValueError("this residual uses fields, so it needs a model")
        outs = self._program.run(Context(self, model, x, values))
        if not self.is_vector:
            return outs[0]
        if any(o.is_complex() for o in outs):
            outs = [o.to(torch.promote_types(o.dtype, torch.complex64)) if not o.is_complex() else o for o in outs]
            dt = functools.reduce(torch.promote_types, [o.dtype for o in outs])
            outs = [o.to(dt) for o in outs]
        return torch.stack(outs, 1)

    def channel_error(self, have: int) -> ValueError:
        """The error for a model with ``have`` output channels (``n_channels`` needed)."""
        layout = ", ".join(f"{n} ({'complex: 2' if c else 'real: 1'})" for n, (_, c) in self.fields.items())
        return ValueError(f"model has {have} output channels but the fields {layout} need {self.n_channels}")

    def __repr__(self) -> str:
        if not hasattr(self, "needs"):
            return "CompiledResidual(<compiling>)"
        return f"CompiledResidual({list(self.exprs) if self.is_vector else self.exprs[0]}, needs={self.needs})"


def compile_residual(
    expr: Any,
    fields: Sequence[sympy.Expr],
    coords: Sequence[sympy.Symbol],
    coefficients: Iterable[Any] = (),
    parameters: Iterable[Any] | Mapping[Any, Any] = (),
    handlers: Mapping[type, Callable] | None = None,
    engine: str = "auto",
    collapse: bool = True,
) -> CompiledResidual:
    """Compile a SymPy residual into ``r(model, x, **values) -> Tensor (N,)``.

    Parameters
    ----------
    expr : sympy.Expr, sympy.Eq, or a sequence of them
        The residual (``Eq`` means ``lhs - rhs``); a sequence gives an
        ``(N, m)`` vector residual.
    fields : sequence of Field
        Unknowns in channel order (real: 1 channel, complex: 2).
    coords : sequence of sympy.Symbol
        Coordinates, in the column order of ``x`` ``(N, d)``.
    coefficients : iterable of str, applied function, or function class
        Named coefficient functions whose values are given at call time
        (tensor ``(N,)``, scalar, or callable ``x -> (N,)``, e.g. a
        :class:`~pinnsiren.coefficients.GridInterpolant`; derivatives of a
        coefficient use autograd through the callable).
        Coefficients known in closed form should be written as SymPy
        expressions of the coordinates instead (differentiated exactly).
        A plain Symbol whose name is listed here is a per-point value too
        (its coordinate derivatives are zero), e.g. the normal components
        ``n_x, n_y`` of :func:`pinnsiren.symbolic.normal`.
    parameters : iterable of Symbol/str, or mapping Symbol/str -> default
        Scalar parameters, given at call time (float, or a 0-d tensor /
        ``nn.Parameter`` to learn them) or taken from the default.
    handlers : mapping SymPy class -> handler(ctx, node, args), optional
        Extra node handlers; they take precedence over :data:`HANDLERS`.
    engine : {"auto", "jet", "autograd"}
        Derivative path.
    collapse : bool
        Replace weighted sums of pure second derivatives of a field by one
        forward-Laplacian slot where that saves Taylor slots (default);
        ``False`` requests every second derivative separately (same numbers
        up to rounding).

    Raises
    ------
    CompileError
        For an unknown free symbol or function, a derivative with respect to
        a non-coordinate, a field applied to wrong arguments, a field whose
        complexity differs from the channel layout, or an unsupported node.
    """
    return CompiledResidual(expr, fields, coords, coefficients, parameters, handlers, engine, collapse)
