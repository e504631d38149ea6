"""A Problem as plain data: write it into a result file, read it back as a Problem.

``problem_spec(problem) -> dict`` turns a :class:`pinnsiren.Problem` into
JSON-able data: the fields (name, coordinates, complex), the coordinates,
every constraint (name, residual, weight, norm, points per step, pair shift
and a description of its region), the coefficients and parameters that are
numbers or SymPy expressions, and the derivative engine. SymPy objects are
stored as :func:`sympy.srepr` text. ``problem_from_spec(spec)`` rebuilds the
Problem; the srepr text is read back by :func:`load_srepr`, which walks the
Python syntax tree and admits only SymPy classes and constants (no ``eval``,
no ``sympify`` of the text), as DESIGN.md requires for untrusted input.

What cannot be stored as data (bounds that are callables of the step, a
``pair`` given as a callable, a point set's points, a coefficient given as a
torch callable, a region class this module does not know) is recorded as far
as it goes and the spec is marked incomplete, with one reason per gap
(``spec["incomplete"]``); :func:`problem_from_spec` then refuses, naming them.

Regions are described by their type and parameters::

    {"type": "Box", "bounds": [[-1, 1], [-1, 1]]}
    {"type": "BoxBoundary", "bounds": [...], "faces": [[0, 0], [1, 1]]}   (Box.boundary(faces))
    {"type": "Ball", "center": [0, 0], "radius": 0.5}
    {"type": "Polygon", "vertices": [[0, 0], [1, 0], [0, 1]]}
    {"type": "Union" | "Intersection" | "Difference", "a": {...}, "b": {...}}
    {"type": "Boundary", "shape": {...}}
    {"type": "SpaceTime", "shape": {...}, "t_bounds": [0, 1], "t_index": 2}
    {"type": "SpaceTimeBoundary", "st": {...}}      (SpaceTime.boundary())
    {"type": "TimeSlab", "st": {...}, "side": 0}   (SpaceTime.initial() / final())
    {"type": "NearPoint", "center": [...], "std": 0.1, "bounds": [...]}
    {"type": "Cone", "center": [...], "r0": .., "c": .., "t_bounds": [..], "space_bounds": [..], "t_index": 2}
    {"type": "PointSet", "points": null, "m": 1000, "data_names": [...]}   (incomplete)

A value that was a callable of the step is stored as ``null`` and the
region gets ``"callable": [names of those parameters]``.
"""

from __future__ import annotations

import ast
import json
import numbers
import re
from typing import Any, Mapping

import numpy as np
import sympy

__all__ = [
    "SPEC_FORMAT",
    "SpecError",
    "IncompleteSpecError",
    "problem_spec",
    "problem_from_spec",
    "region_spec",
    "region_from_spec",
    "load_srepr",
    "dump_srepr",
]

#: the ``format`` entry of a spec written by this module
SPEC_FORMAT = "pinnsiren-problem-spec/1"


class SpecError(ValueError):
    """A stored spec that cannot be read (unknown format, unsafe or malformed expression text)."""


class IncompleteSpecError(SpecError):
    """A stored spec that lacks something needed to rebuild the Problem (its ``reasons`` say what)."""

    def __init__(self, reasons: list[str]) -> None:
        self.reasons = list(reasons)
        super().__init__("the stored problem spec is incomplete: " + "; ".join(self.reasons))


# --------------------------------------------------------------------------
# SymPy text: srepr out, a restricted reader in

def dump_srepr(expr: Any) -> str:
    """``sympy.srepr`` of a SymPy object (numbers are sympified first)."""
    return sympy.srepr(sympy.sympify(expr) if not isinstance(expr, sympy.Basic) else expr)


#: classes whose first positional argument may be a string: a name (never parsed) or a number (Float)
_NAME_TAKERS = ("Symbol", "Dummy", "Function")
_FLOAT_TEXT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$|^[+-]?(inf|nan)$")
_MAX_NODES = 200_000


def _allowed_callable(name: str) -> Any:
    """A SymPy class named ``name`` (``Add``, ``sin``, ``Function``, ``Symbol``...) or None."""
    if name.startswith("_"):
        return None
    obj = getattr(sympy, name, None)
    if obj is None and name == "ExprCondPair":  # srepr of Piecewise; not in the top-level namespace
        from sympy.functions.elementary.piecewise import ExprCondPair as obj
    if isinstance(obj, type) and issubclass(obj, sympy.Basic):
        return obj
    return None


def _allowed_constant(name: str) -> Any:
    """A SymPy singleton named ``name`` (``pi``, ``E``, ``I``, ``oo``, ``zoo``, ``nan``, ``true``...) or None."""
    if name.startswith("_"):
        return None
    obj = getattr(sympy, name, None)
    if isinstance(obj, sympy.Basic) and not isinstance(obj, type):
        return obj
    return None


def load_srepr(text: str, functions: Mapping[str, Any] | None = None) -> Any:
    """Rebuild a SymPy object from its ``sympy.srepr`` text, admitting SymPy classes and constants only.

    The text is parsed into a Python syntax tree and evaluated node by node:
    calls of SymPy classes (``Add``, ``Symbol``, ``sin``...), ``Function('f')``
    and its application, SymPy singletons (``pi``, ``I``...), integers,
    tuples, keyword arguments that are booleans or integers, and strings only
    as the name of ``Symbol``/``Dummy``/``Function`` or the digits of
    ``Float``. Anything else (attribute access, other names, lambdas,
    strings handed to a constructor that would parse them) raises
    :class:`SpecError`. ``eval`` and ``sympify`` never see the text.

    Parameters
    ----------
    text : str
        ``sympy.srepr`` output.
    functions : mapping name -> UndefinedFunction, optional
        ``Function('name')`` resolves to these (e.g. the Problem's fields,
        whose assumptions ``srepr`` does not record).
    """
    if not isinstance(text, str):
        raise SpecError(f"expected srepr text, got {type(text).__name__}")
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, RecursionError) as e:
        raise SpecError(f"cannot parse stored expression text: {e}") from None
    if sum(1 for _ in ast.walk(tree)) > _MAX_NODES:
        raise SpecError("stored expression text is too large")
    functions = dict(functions or {})
    try:
        return _node(tree.body, functions)
    except RecursionError:
        raise SpecError("stored expression text is nested too deeply") from None


def _const(node: ast.AST) -> Any:
    """An int/bool/None literal (possibly negated)."""
    if isinstance(node, ast.Constant) and (node.value is None or isinstance(node.value, (bool, int))):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant) \
            and isinstance(node.operand.value, int) and not isinstance(node.operand.value, bool):
        return -node.operand.value
    raise SpecError(f"stored expression: a keyword value must be an integer or a boolean, got {ast.dump(node)[:80]}")


def _node(node: ast.AST, functions: dict) -> Any:
    if isinstance(node, ast.Call):
        if isinstance(node.func, ast.Name):
            cls = _allowed_callable(node.func.id)
            if cls is None:
                raise SpecError(f"stored expression calls {node.func.id!r}, which is not a SymPy class")
            fname = node.func.id
        elif isinstance(node.func, ast.Call):  # Function('u')(x, y)
            cls = _node(node.func, functions)
            if not isinstance(cls, sympy.core.function.UndefinedFunction):
                raise SpecError("stored expression applies something that is not an undefined function")
            fname = None
        else:
            raise SpecError(f"stored expression has a call of an unsupported form: {ast.dump(node.func)[:80]}")
        args = []
        for i, a in enumerate(node.args):
            if isinstance(a, ast.Constant) and isinstance(a.value, str):
                if i != 0 or fname not in _NAME_TAKERS + ("Float",):
                    raise SpecError(f"stored expression passes a string to {fname or 'a function'}; refused")
                if fname == "Float" and not _FLOAT_TEXT.match(a.value.strip()):
                    raise SpecError(f"stored expression: Float({a.value!r}) is not a number")
                if len(a.value) > 10_000:
                    raise SpecError("stored expression: a name is too long")
                args.append(a.value)
            elif isinstance(a, ast.Starred):
                raise SpecError("stored expression uses *args; refused")
            else:
                args.append(_node(a, functions))
        kwargs = {}
        for k in node.keywords:
            if k.arg is None:
                raise SpecError("stored expression uses **kwargs; refused")
            kwargs[k.arg] = _const(k.value)
        if fname == "Function" and args and isinstance(args[0], str) and args[0] in functions:
            return functions[args[0]]
        try:
            return cls(*args, **kwargs)
        except SpecError:
            raise
        except Exception as e:  # a malformed but harmless construction
            raise SpecError(f"stored expression: {fname or cls}(...) failed: {e}") from None
    if isinstance(node, ast.Name):
        obj = _allowed_constant(node.id)
        if obj is None:
            raise SpecError(f"stored expression names {node.id!r}, which is not a SymPy constant")
        return obj
    if isinstance(node, (ast.Tuple, ast.List)):
        return tuple(_node(e, functions) for e in node.elts)
    if isinstance(node, ast.Constant) and isinstance(node.value, int) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        v = _node(node.operand, functions)
        if isinstance(v, int):
            return -v
    raise SpecError(f"stored expression has an unsupported element: {ast.dump(node)[:80]}")


# --------------------------------------------------------------------------
# regions

def _num(v: Any) -> Any:
    """A plain float (or nested lists of floats) from numbers, tensors, arrays."""
    a = np.asarray(v.detach().cpu().numpy() if hasattr(v, "detach") else v, dtype=np.float64)
    return a.tolist()


def _static(region: Any, attr: str, callables: list) -> Any:
    v = getattr(region, attr)
    if callable(v):
        callables.append(attr)
        return None
    return _num(v)


def region_spec(region: Any, where: str, reasons: list[str]) -> dict:
    """Description of a region as plain data; appends to ``reasons`` what could not be stored.

    ``where`` names the region in the reasons (e.g. ``"constraint 'pde'"``).
    """
    t = type(region).__name__
    cal: list[str] = []
    if t in ("Box",):
        d = {"type": t, "bounds": _static(region, "bounds", cal)}
    elif t == "BoxBoundary":
        d = {"type": t, "bounds": _static(region, "bounds", cal), "faces": [[int(a), int(s)] for a, s in region.faces]}
    elif t == "Ball":
        d = {"type": t, "center": _num(region.center), "radius": _static(region, "radius", cal)}
    elif t == "Polygon":
        d = {"type": t, "vertices": _num(region.vertices)}
    elif t in ("Union", "Intersection", "Difference"):
        d = {"type": t, "a": region_spec(region.a, where, reasons), "b": region_spec(region.b, where, reasons)}
    elif t == "Boundary":
        d = {"type": t, "shape": region_spec(region.shape, where, reasons)}
    elif t == "SpaceTime":
        d = {"type": t, "shape": region_spec(region.shape, where, reasons),
             "t_bounds": _static(region, "t_bounds", cal), "t_index": int(region.t_index)}
    elif t == "SpaceTimeBoundary":
        d = {"type": t, "st": region_spec(region.st, where, reasons)}
    elif t == "TimeSlab":
        d = {"type": t, "st": region_spec(region.st, where, reasons), "side": int(region.side)}
    elif t == "NearPoint":
        d = {"type": t, "center": _num(region.center), "std": _static(region, "std", cal),
             "bounds": _static(region, "bounds", cal)}
    elif t == "Cone":
        d = {"type": t, "center": _num(region.center), "r0": float(region.r0), "c": float(region.c),
             "t_bounds": _static(region, "t_bounds", cal), "space_bounds": _static(region, "space_bounds", cal),
             "t_index": int(region.t_index)}
    elif t == "PointSet":
        d = {"type": t, "points": None, "m": int(region.points.shape[0]), "dim": int(region.dim),
             "data_names": list(region.data_names)}
        reasons.append(f"{where}: a PointSet ({d['m']} points) is not stored")
    else:
        d = {"type": t, "module": type(region).__module__, "dim": int(getattr(region, "dim", -1))}
        reasons.append(f"{where}: region type {t} is not known to pinnsiren.specio")
    if cal:
        d["callable"] = cal
        reasons.append(f"{where}: {t} {', '.join(cal)} given as a callable of the step")
    return d


def _shape_classes() -> dict:
    from . import geometry, regions

    return {
        "Box": geometry.Box, "BoxBoundary": geometry.BoxBoundary, "Ball": geometry.Ball,
        "Polygon": geometry.Polygon, "Union": geometry.Union, "Intersection": geometry.Intersection,
        "Difference": geometry.Difference, "Boundary": geometry.Boundary, "SpaceTime": geometry.SpaceTime,
        "SpaceTimeBoundary": geometry.SpaceTimeBoundary, "TimeSlab": geometry.TimeSlab,
        "NearPoint": regions.NearPoint, "Cone": regions.Cone,
    }


def region_from_spec(d: Mapping[str, Any]) -> Any:
    """Rebuild a region from :func:`region_spec` data (complete descriptions only)."""
    if not isinstance(d, Mapping) or "type" not in d:
        raise SpecError(f"a stored region must be a mapping with a 'type', got {d!r}"[:200])
    if d.get("callable"):
        raise IncompleteSpecError([f"region {d['type']}: {', '.join(d['callable'])} was a callable of the step"])
    cls = _shape_classes().get(d["type"])
    if cls is None:
        raise IncompleteSpecError([f"region type {d['type']} cannot be rebuilt from a stored spec"])
    t = d["type"]
    if t == "Box":
        return cls(d["bounds"])
    if t == "BoxBoundary":
        return _shape_classes()["Box"](d["bounds"]).boundary(faces=[tuple(f) for f in d["faces"]])
    if t == "Ball":
        return cls(d["center"], d["radius"])
    if t == "Polygon":
        return cls(d["vertices"])
    if t in ("Union", "Intersection", "Difference"):
        return cls(region_from_spec(d["a"]), region_from_spec(d["b"]))
    if t == "Boundary":
        return cls(region_from_spec(d["shape"]))
    if t == "SpaceTime":
        return cls(region_from_spec(d["shape"]), d["t_bounds"], d["t_index"])
    if t == "SpaceTimeBoundary":
        return cls(region_from_spec(d["st"]))
    if t == "TimeSlab":
        return cls(region_from_spec(d["st"]), int(d["side"]))
    if t == "NearPoint":
        return cls(d["center"], d["std"], d["bounds"])
    if t == "Cone":
        return cls(d["center"], d["r0"], d["c"], d["t_bounds"], d["space_bounds"], int(d["t_index"]))
    raise IncompleteSpecError([f"region type {t} cannot be rebuilt"])  # pragma: no cover


# --------------------------------------------------------------------------
# values: coefficients and parameters

def _value_spec(v: Any, what: str, reasons: list[str]) -> dict:
    import torch

    learnable = isinstance(v, torch.nn.Parameter)
    if isinstance(v, torch.Tensor) and v.numel() == 1:
        v = v.detach().cpu().reshape(()).item()
    if isinstance(v, sympy.Basic):
        return {"kind": "sympy", "srepr": dump_srepr(v)}
    if isinstance(v, bool):
        v = int(v)
    if isinstance(v, numbers.Complex) and not isinstance(v, numbers.Real):
        return {"kind": "complex", "value": [float(v.real), float(v.imag)], "learnable": learnable}
    if isinstance(v, numbers.Real):
        return {"kind": "number", "value": float(v), "learnable": learnable}
    reasons.append(f"{what} is a {type(v).__name__} (not a number or SymPy expression)")
    return {"kind": "unstored", "type": type(v).__name__}


def _value_from_spec(d: Mapping[str, Any], functions: Mapping[str, Any]) -> Any:
    import torch

    k = d.get("kind")
    if k == "sympy":
        return load_srepr(d["srepr"], functions)
    if k in ("number", "complex"):
        v = complex(*d["value"]) if k == "complex" else float(d["value"])
        if d.get("learnable"):
            return torch.nn.Parameter(torch.tensor(v, dtype=torch.complex128 if k == "complex" else torch.float64))
        return v
    raise IncompleteSpecError([f"a value of type {d.get('type', k)} was not stored"])


# --------------------------------------------------------------------------
# Problem <-> spec

def _field_spec(f: Any) -> dict:
    from .symbolic import is_complex_field

    return {"name": f.func.__name__, "coords": [dump_srepr(c) for c in f.args], "complex": bool(is_complex_field(f))}


def problem_spec(problem: Any) -> dict:
    """A :class:`pinnsiren.Problem` as JSON-able data (see the module docstring).

    Returns
    -------
    dict with ``format``, ``coords``, ``fields``, ``constraints``,
    ``coefficients``, ``parameters``, ``engine``, ``complete`` (bool) and
    ``incomplete`` (list of reasons, empty when complete).
    """
    reasons: list[str] = []
    cons = []
    for name, c in problem.constraints.items():
        where = f"constraint {name!r}"
        exprs = c.expr if isinstance(c.expr, (list, tuple)) else None
        entry = {
            "name": name,
            "expr": [dump_srepr(e) for e in exprs] if exprs is not None else dump_srepr(c.expr),
            "vector": exprs is not None,
            "norm": c.norm,
            "n": c.n,
            "region": region_spec(c.where, where, reasons),
        }
        if isinstance(c.weight, sympy.Basic):
            entry["weight"] = {"srepr": dump_srepr(c.weight)}
        else:
            entry["weight"] = float(c.weight)
        if c.pair is None:
            entry["pair"] = None
        elif callable(c.pair):
            entry["pair"] = "callable"
            reasons.append(f"{where}: pair is a callable")
        else:
            entry["pair"] = [float(v) for v in c.pair]
        cons.append(entry)
    coefs = {k: _value_spec(v, f"coefficient {k!r}", reasons) for k, v in problem.coefficients.items()}
    params = {k: _value_spec(v, f"parameter {k!r}", reasons) for k, v in problem.parameters.items()}
    return {
        "format": SPEC_FORMAT,
        "coords": [dump_srepr(c) for c in problem.coords],
        "fields": [_field_spec(f) for f in problem.fields],
        "constraints": cons,
        "coefficients": coefs,
        "parameters": params,
        "engine": getattr(problem, "engine", "auto"),
        "complete": not reasons,
        "incomplete": reasons,
    }


def problem_from_spec(spec: Mapping[str, Any] | str) -> Any:
    """Rebuild the :class:`pinnsiren.Problem` from :func:`problem_spec` data (or its JSON text).

    Raises
    ------
    IncompleteSpecError
        When the spec was marked incomplete (its reasons name what is missing).
    SpecError
        On an unknown format or expression text that is not plain SymPy.
    """
    from .problem import Problem
    from .symbolic import Constraint, Field

    if isinstance(spec, str):
        spec = json.loads(spec)
    if not isinstance(spec, Mapping) or spec.get("format") != SPEC_FORMAT:
        raise SpecError(f"not a problem spec of format {SPEC_FORMAT!r}")
    if spec.get("incomplete"):
        raise IncompleteSpecError(list(spec["incomplete"]))
    coords = tuple(load_srepr(c) for c in spec["coords"])
    for c in coords:
        if not isinstance(c, sympy.Symbol):
            raise SpecError(f"a stored coordinate is not a Symbol: {c!r}")
    fields = []
    for f in spec["fields"]:
        fc = tuple(load_srepr(c) for c in f["coords"])
        fields.append(Field(f["name"], fc, complex=bool(f["complex"])))
    functions = {f.func.__name__: f.func for f in fields}
    constraints = []
    for c in spec["constraints"]:
        expr = [load_srepr(e, functions) for e in c["expr"]] if c.get("vector") else load_srepr(c["expr"], functions)
        w = c["weight"]
        weight = load_srepr(w["srepr"], functions) if isinstance(w, Mapping) else float(w)
        pair = c.get("pair")
        if isinstance(pair, str):
            raise IncompleteSpecError([f"constraint {c['name']!r}: pair was a callable"])
        constraints.append(Constraint(expr, where=region_from_spec(c["region"]), weight=weight, norm=c["norm"],
                                      name=c["name"], n=c["n"], pair=tuple(pair) if pair is not None else None))
    coefs = {k: _value_from_spec(v, functions) for k, v in spec.get("coefficients", {}).items()}
    params = {k: _value_from_spec(v, functions) for k, v in spec.get("parameters", {}).items()}
    return Problem(fields, coords, constraints, coefficients=coefs, parameters=params,
                   engine=spec.get("engine", "auto"))

