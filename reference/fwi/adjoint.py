"""Classic adjoint-state FWI: reduced misfit, adjoint gradient, L-BFGS-B with bounds.

``J(m) = 0.5 sum_s ||P A(m)^{-1} b_s - d_s||^2 / ||d||^2``; the gradient costs
one factorization, one forward and one adjoint solve per source
(:meth:`InversionProblem.objective_and_gradient`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from scipy.optimize import minimize

from .inversion import InversionProblem

__all__ = ["AdjointResult", "adjoint_fwi", "taylor_test"]


@dataclass
class AdjointResult:
    """Outcome of :func:`adjoint_fwi`.

    Attributes
    ----------
    m : ndarray (n, n)        recovered squared slowness
    wavefields : ndarray (ns, n, n)
    history : dict of lists    ``objective``, ``grad_norm``, ``evals`` per iteration (+ callback metrics)
    seconds : float; n_evals : int; message : str
    """

    m: np.ndarray
    wavefields: np.ndarray
    history: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = 0.0
    n_evals: int = 0
    message: str = ""


def adjoint_fwi(
    problem: InversionProblem,
    m0: np.ndarray | None = None,
    iterations: int = 30,
    callback: Callable[[np.ndarray], dict[str, float]] | None = None,
) -> AdjointResult:
    """Minimise the reduced misfit with scipy's L-BFGS-B inside ``problem.m_bounds``.

    Parameters
    ----------
    problem : InversionProblem
    m0 : ndarray (n_free,), optional
        Starting model (default: uniform background).
    iterations : int
        L-BFGS-B iterations (each needs >= 1 evaluation = 1 LU + 2 ns solves).
    callback : callable, optional
        ``callback(m_full) -> {metric: value}`` recorded every iteration.
    """
    t0 = time.perf_counter()
    x0 = problem.start() if m0 is None else np.asarray(m0, float)
    hist: dict[str, list[float]] = {"objective": [], "grad_norm": [], "evals": []}
    state = {"evals": 0, "last": (None, None, None)}

    def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
        J, g, U = problem.objective_and_gradient(x)
        state["evals"] += 1
        state["last"] = (x.copy(), J, g)
        return J, g

    def cb(x: np.ndarray) -> None:
        lx, J, g = state["last"]
        if lx is None or not np.array_equal(lx, x):
            J, g = fun(x)
        hist["objective"].append(float(J))
        hist["grad_norm"].append(float(np.linalg.norm(g)))
        hist["evals"].append(state["evals"])
        if callback is not None:
            for k, v in callback(problem.m_full(x)).items():
                hist.setdefault(k, []).append(float(v))

    J0, g0 = fun(x0)
    hist["objective"].append(J0)
    hist["grad_norm"].append(float(np.linalg.norm(g0)))
    hist["evals"].append(1)
    if callback is not None:
        for k, v in callback(problem.m_full(x0)).items():
            hist.setdefault(k, []).append(float(v))
    res = minimize(fun, x0, jac=True, method="L-BFGS-B", bounds=[problem.m_bounds] * problem.n_free,
                   callback=cb, options={"maxiter": iterations, "maxcor": 10, "ftol": 1e-12, "gtol": 1e-12})
    U = problem.forward(res.x)
    waves = np.stack([problem.op.to_full(U[:, s]) for s in range(U.shape[1])])
    return AdjointResult(m=problem.m_full(res.x), wavefields=waves, history=hist,
                         seconds=time.perf_counter() - t0, n_evals=state["evals"], message=str(res.message))


def taylor_test(problem: InversionProblem, m: np.ndarray, dm: np.ndarray, h0: float = 1e-2,
                halvings: int = 4) -> dict[str, np.ndarray]:
    """Taylor remainders of the reduced misfit along ``dm``.

    ``r0(h) = |J(m + h dm) - J(m)|`` is O(h) and ``r1(h) = |J(m + h dm) - J(m) - h g.dm|``
    is O(h^2) when the gradient ``g`` is right, so under halving ``h`` the ratios
    ``r0(h)/r0(h/2)`` approach 2 and ``r1(h)/r1(h/2)`` approach 4.

    Returns
    -------
    dict with ``h``, ``r0``, ``r1`` (length ``halvings + 1``) and ``ratio0``, ``ratio1`` (length ``halvings``).
    """
    J, g, _ = problem.objective_and_gradient(m)
    slope = float(g @ dm)
    hs = h0 * 0.5 ** np.arange(halvings + 1)
    r0, r1 = [], []
    for h in hs:
        Jh, _, _ = problem.objective_and_gradient(m + h * dm)
        r0.append(abs(Jh - J))
        r1.append(abs(Jh - J - h * slope))
    r0a, r1a = np.array(r0), np.array(r1)
    return {"h": hs, "r0": r0a, "r1": r1a, "ratio0": r0a[:-1] / r0a[1:], "ratio1": r1a[:-1] / r1a[1:]}
