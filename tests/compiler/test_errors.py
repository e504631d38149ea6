"""Each compile/call-time error names the offending symbol or argument."""

import numpy as np
import pytest
import sympy
import torch

from pinnsiren import CompileError, Field, GridInterpolant, Siren, compile_residual

x, y, z = sympy.symbols("x y z")
U = Field("u", (x, y))
V = Field("v", (x, y), complex=True)


def _model(c=1):
    torch.manual_seed(0)
    return Siren(2, c, 8, 1).double()


PTS = torch.rand(5, 2, dtype=torch.float64)


def test_unknown_free_symbol():
    with pytest.raises(CompileError, match="unknown free symbol 'kappa'"):
        compile_residual(U.diff(x) - sympy.Symbol("kappa"), [U], (x, y))


def test_derivative_wrt_non_coordinate():
    with pytest.raises(CompileError, match=r"with respect to z, which is not a coordinate"):
        compile_residual(sympy.Derivative(U, z), [U], (x, y))


def test_field_wrong_arguments():
    with pytest.raises(CompileError, match=r"'u' is applied to \(y, x\)"):
        compile_residual(U.func(y, x), [U], (x, y))
    with pytest.raises(CompileError, match=r"'u' is applied to \(x, 0\)"):
        compile_residual(U.func(x, 0) + U, [U], (x, y))


def test_unknown_function():
    with pytest.raises(CompileError, match="unknown function 'g'"):
        compile_residual(U + sympy.Function("g")(x, y), [U], (x, y))


def test_complex_field_with_real_layout():
    real_u = Field("u", (x, y))
    complex_u = Field("u", (x, y), complex=True)
    with pytest.raises(CompileError, match="field 'u' is complex in the expression but the channel layout"):
        compile_residual(complex_u.diff(x), [real_u], (x, y))


def test_channel_count_mismatch():
    r = compile_residual(V + U, [V, U], (x, y))
    with pytest.raises(ValueError, match=r"model has 2 output channels but the fields v \(complex: 2\), u \(real: 1\) need 3"):
        r(_model(2), PTS)


def test_coefficient_missing_and_misshaped():
    r = compile_residual(U - sympy.Function("m")(x, y), [U], (x, y), coefficients=["m"])
    with pytest.raises(ValueError, match="coefficient 'm' is missing"):
        r(_model(), PTS)
    with pytest.raises(ValueError, match=r"coefficient 'm' has shape \(4,\); expected \(5,\)"):
        r(_model(), PTS, m=torch.ones(4, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"coefficient 'm' has shape \(5, 1\)"):
        r(_model(), PTS, m=torch.ones(5, 1, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"the callable given for coefficient 'm' has shape \(5, 2\)"):
        r(_model(), PTS, m=lambda p: p)
    with pytest.raises(TypeError, match=r"unexpected values \['mm'\]"):
        r(_model(), PTS, m=1.0, mm=1.0)


def test_differentiated_coefficient_needs_callable():
    m = sympy.Function("m")(x, y)
    r = compile_residual(U - m.diff(x), [U], (x, y), coefficients=["m"])
    with pytest.raises(ValueError, match="coefficient 'm' is differentiated"):
        r(_model(), PTS, m=torch.ones(5, dtype=torch.float64))
    got = r(_model(), PTS, m=lambda p: p[:, 0] ** 3)
    want = _model()(PTS)[:, 0] - 3 * PTS[:, 0] ** 2
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_non_finite_coefficient():
    r = compile_residual(U - sympy.Function("m")(x, y), [U], (x, y), coefficients=["m"])
    bad = torch.ones(5, dtype=torch.float64)
    bad[2] = float("nan")
    with pytest.raises(ValueError, match="coefficient 'm' contains non-finite"):
        r(_model(), PTS, m=bad)
    with pytest.raises(ValueError, match="non-finite"):
        GridInterpolant(np.array([[0.0, np.inf], [1.0, 2.0]]), [(-1, 1), (-1, 1)])


def test_missing_parameter_and_string_expression():
    k = sympy.Symbol("k")
    r = compile_residual(U * k, [U], (x, y), parameters=[k])
    with pytest.raises(ValueError, match="parameter 'k' is missing"):
        r(_model(), PTS)
    with pytest.raises(CompileError, match="strings are not parsed"):
        compile_residual("u(x, y)", [U], (x, y))


def test_unsupported_node_names_class():
    with pytest.raises(CompileError, match="no handler for gamma"):
        compile_residual(sympy.gamma(U), [U], (x, y))
    # ... and a user handler makes it compile (users' handlers win)
    r = compile_residual(sympy.gamma(U), [U], (x, y), handlers={sympy.gamma: lambda ctx, n, a: torch.exp(torch.lgamma(a[0]))})
    v = _model()(PTS)[:, 0]
    torch.testing.assert_close(r(_model(), PTS), torch.exp(torch.lgamma(v)))
