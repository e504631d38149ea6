"""The L-BFGS phase of a training run: quasi-Newton steps on one fixed collocation draw.

After the Adam phase the trainer can continue with L-BFGS (strong-Wolfe line
search) on a fixed sample of collocation points, the usual PINN recipe
(Raissi, Perdikaris & Karniadakis 2019) and the best combination measured by
Rathore et al. ("Challenges in training PINNs: a loss landscape
perspective", ICML 2024): Adam gets into a good basin, L-BFGS uses the
curvature there that first-order steps cannot.

The budget counts *evaluations*, not iterations: every call of the loss and
its gradient (each line-search trial included) is one, so a run of
``steps + lbfgs_steps`` gradient evaluations is exactly that. The phase ends
when the budget is spent (mid-line-search if need be) or when L-BFGS stops on
its own tolerances, and leaves the model at the evaluated point with the
lowest loss on the fixed sample. A non-finite loss at a trial point ends the
phase there too (the best point so far is kept) rather than the run.
"""

from __future__ import annotations

from typing import Any, Callable

import torch

__all__ = ["lbfgs_phase", "LBFGS_HISTORY"]

#: L-BFGS memory (pairs of steps and gradient changes kept)
LBFGS_HISTORY = 50


class _Stop(Exception):
    """Raised inside the closure to end the phase (budget spent or non-finite loss)."""


def lbfgs_phase(
    loss_fn: Callable[[int], tuple[torch.Tensor, dict[str, torch.Tensor]]],
    params: list[torch.Tensor],
    budget: int,
    on_eval: Callable[[int, float, dict[str, float]], None] | None = None,
    all_reduce: Callable[..., Any] | None = None,
    draw_every: int = 0,
    on_draw: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Minimise ``loss_fn`` over ``params`` by L-BFGS with at most ``budget`` loss-and-gradient evaluations.

    Parameters
    ----------
    loss_fn : callable
        ``loss_fn(draw) -> (loss, terms)``: the scalar loss (a graph to
        differentiate) and its named terms on collocation sample number
        ``draw`` (0, 1, ...); the same ``draw`` must give the same points.
    params : list of Tensor
        The parameters to optimise (left at the best evaluated point of the
        last draw).
    budget : int
        Maximum number of evaluations (each one a forward and backward pass).
    on_eval : callable, optional
        ``on_eval(k, loss, terms)`` after evaluation ``k`` (1-based), for logging.
    all_reduce : callable, optional
        ``all_reduce(params, terms, loss) -> (terms, loss)`` after the backward
        pass (distributed runs: every rank needs the global loss and gradient).
    draw_every : int
        Evaluations per collocation draw (0: one draw for the whole budget).
        A fixed sample lets L-BFGS drive the loss down *at those points* while
        the residual between them grows (a SIREN can interpolate a sparse
        sample); a new draw every few dozen iterations, with the L-BFGS memory
        restarted from the best point of the previous draw, keeps it honest.
    on_draw : callable, optional
        ``on_draw(draw, remaining)`` before the first evaluation of each draw,
        with the evaluations left in the budget (e.g. to resample the points
        the draw will use).

    Returns
    -------
    dict
        ``evaluations`` (spent), ``best_loss`` and ``best_terms`` (where the
        parameters were left, on the last draw), ``first_loss``, ``draws``,
        ``stopped`` (``"budget"``, ``"converged"`` or ``"non-finite"``),
        ``per_draw``: ``(first, best)`` loss on each draw (the first is the
        previous draw's end point seen on new points: a first loss far above
        the previous best means the draws are too small to generalise).
    """
    if budget < 1:
        raise ValueError(f"the L-BFGS budget must be >= 1 evaluation, got {budget}")
    if draw_every < 0:
        raise ValueError(f"draw_every must be >= 0, got {draw_every}")
    return _draws(loss_fn, params, budget, on_eval, all_reduce, draw_every, on_draw)


def _draws(loss_fn, params, budget, on_eval, all_reduce, draw_every, on_draw) -> dict[str, Any]:
    """The draws of :func:`lbfgs_phase`, one after the other, until the budget is spent or L-BFGS stops."""
    spent, draw, first, out, per_draw = 0, 0, None, None, []
    while spent < budget:
        chunk = budget - spent if not draw_every else min(draw_every, budget - spent)
        if on_draw is not None:
            on_draw(draw, budget - spent)
        out = _one_draw(lambda d=draw: loss_fn(d), params, chunk, spent, on_eval, all_reduce)
        spent += out["evaluations"]
        per_draw.append((out["first"], out["best"]))
        first = out["first"] if first is None else first
        draw += 1
        if out["stopped"] == "non-finite" or out["evaluations"] == 0 or (out["stopped"] == "converged"
                                                                       and not draw_every):
            break
    assert out is not None
    return {"evaluations": spent, "best_loss": out["best"], "best_terms": out["best_terms"],
            "first_loss": first, "draws": draw, "stopped": out["stopped"] if spent < budget else "budget",
            "per_draw": per_draw}


def _one_draw(loss_fn, params, budget, offset, on_eval, all_reduce) -> dict[str, Any]:
    """L-BFGS on one sample with at most ``budget`` evaluations; parameters left at the best one."""
    opt = torch.optim.LBFGS(params, lr=1.0, max_iter=budget, max_eval=2 * budget + 50,
                            history_size=LBFGS_HISTORY, line_search_fn="strong_wolfe",
                            tolerance_grad=1e-12, tolerance_change=1e-14)
    state: dict[str, Any] = {"k": 0, "best": float("inf"), "best_params": None, "best_terms": {},
                             "first": None, "stopped": "converged"}

    def closure():
        if state["k"] >= budget:
            state["stopped"] = "budget"
            raise _Stop
        state["k"] += 1
        opt.zero_grad(set_to_none=True)
        loss, terms = loss_fn()
        loss.backward()
        if all_reduce is not None:
            terms, loss = all_reduce(params, terms, loss)
        if not torch.isfinite(loss.detach()):  # after the reduction: every rank stops together
            state["stopped"] = "non-finite"
            raise _Stop
        value = float(loss.detach())
        if state["first"] is None:
            state["first"] = value
        values = {k: float(v.detach()) for k, v in terms.items()}
        if value < state["best"]:
            state["best"], state["best_terms"] = value, values
            state["best_params"] = [p.detach().clone() for p in params]
        if on_eval is not None:
            on_eval(offset + state["k"], value, values)
        return loss

    try:
        opt.step(closure)
    except _Stop:
        pass
    if state["best_params"] is not None:
        with torch.no_grad():
            for p, b in zip(params, state["best_params"]):
                p.copy_(b)
    for p in params:
        p.grad = None
    return {"evaluations": state["k"], **state}
