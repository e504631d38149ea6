"""2-D acoustic wave equation ``u_tt = c(x)^2 Lap u`` by leapfrog finite differences.

* Time: explicit leapfrog (2nd order); first step by Taylor expansion with
  zero initial velocity, ``u^1 = u^0 + dt^2/2 c^2 L u^0``.
* Space: 2nd- or 4th-order central Laplacian on a node grid over
  ``[-W, W]^2``; ``u = 0`` on the outer boundary (and outside it, for the
  wide 4th-order stencil).
* Absorbing sponge: ``u_tt + sigma u_t = c^2 Lap u`` with
  ``sigma = sigma_max (l / width)^2`` in a layer of thickness ``width``
  along the boundary (``l`` = depth into the layer), centred in time.
* Stability: leapfrog is stable iff ``dt^2 c_max^2 (rho_x + rho_y) <= 4``
  with ``rho = 4/h^2`` (2nd order) or ``16/(3 h^2)`` (4th order); a larger
  ``dt`` raises ``ValueError`` quoting the limit.
* Discrete energy ``E^{n+1/2} = sum (1/c^2) ((u^{n+1}-u^n)/dt)^2 - <u^{n+1}, L u^n>``
  (times ``h^2``) is conserved without sponge and decreases with it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .grid import Grid, GridField

__all__ = ["cfl_limit", "laplacian", "solve_wave", "gaussian_pulse"]

SpeedLike = float | np.ndarray | Callable[[np.ndarray, np.ndarray], np.ndarray]


def laplacian(u: np.ndarray, h: tuple[float, float], order: int = 2) -> np.ndarray:
    """Central-difference Laplacian with ``u = 0`` outside the array.

    Parameters
    ----------
    u : ndarray, shape (nx, ny)
    h : (hx, hy) spacing (length)
    order : {2, 4}

    Returns
    -------
    ndarray, shape (nx, ny), 1/length^2 times the units of ``u``.
    """
    if order == 2:
        p = np.pad(u, 1)
        return ((p[2:, 1:-1] - 2 * u + p[:-2, 1:-1]) / h[0] ** 2
                + (p[1:-1, 2:] - 2 * u + p[1:-1, :-2]) / h[1] ** 2)
    if order == 4:
        p = np.pad(u, 2)
        cx = (-p[4:, 2:-2] + 16 * p[3:-1, 2:-2] - 30 * u + 16 * p[1:-3, 2:-2] - p[:-4, 2:-2]) / (12 * h[0] ** 2)
        cy = (-p[2:-2, 4:] + 16 * p[2:-2, 3:-1] - 30 * u + 16 * p[2:-2, 1:-3] - p[2:-2, :-4]) / (12 * h[1] ** 2)
        return cx + cy
    raise ValueError(f"laplacian: order must be 2 or 4, got {order!r}.")


def cfl_limit(h: tuple[float, float], c_max: float, order: int = 2) -> float:
    """Largest stable leapfrog time step (time units) for spacing ``h`` and speed ``c_max``."""
    rho = (4.0 if order == 2 else 16.0 / 3.0) * (1 / h[0] ** 2 + 1 / h[1] ** 2)
    return 2.0 / (c_max * np.sqrt(rho))


def gaussian_pulse(grid: Grid, x0: tuple[float, float] = (0.0, 0.0), var: float = 5e-4,
                   amplitude: float = 0.02) -> np.ndarray:
    """Initial pressure ``amplitude * exp(-|x - x0|^2 / (2 var))``, shape ``grid.shape``."""
    X, Y = grid.coords()
    return amplitude * np.exp(-((X - x0[0]) ** 2 + (Y - x0[1]) ** 2) / (2 * var))


def _speed_on_grid(c: SpeedLike, grid: Grid) -> np.ndarray:
    if callable(c):
        out = np.broadcast_to(np.asarray(c(*grid.coords()), dtype=float), grid.shape).copy()
    elif np.isscalar(c):
        out = np.full(grid.shape, float(c))
    else:
        out = np.asarray(c, dtype=float)
        if out.shape != grid.shape:
            raise ValueError(f"solve_wave: speed array has shape {out.shape}, expected {grid.shape}.")
    if not np.all(np.isfinite(out)) or np.any(out <= 0):
        raise ValueError("solve_wave: wave speed c must be finite and > 0 everywhere.")
    return out


def solve_wave(
    n: int,
    times: Sequence[float],
    c: SpeedLike = 1.0,
    order: int = 2,
    dt: float | None = None,
    cfl: float = 0.5,
    amplitude: float = 0.02,
    var: float = 5e-4,
    x0: tuple[float, float] = (0.0, 0.0),
    u0: np.ndarray | None = None,
    half_width: float = 1.0,
    sponge_width: float = 0.25,
    sigma_max: float = 60.0,
    return_energy: bool = False,
) -> list[GridField] | tuple[list[GridField], np.ndarray]:
    """Leapfrog solution with snapshots at the requested times.

    Parameters
    ----------
    n : int
        Points per axis of the node grid on ``[-half_width, half_width]^2``.
    times : sequence of float
        Snapshot times (>= 0, time units).  The step is shrunk so that the last
        time is hit exactly; earlier snapshots are linearly interpolated
        between steps (an ``O(dt^2)`` error, like the scheme).
    c : float, ndarray (n, n) or callable ``c(x, y)``
        Wave speed (length / time).
    order : {2, 4}
        Spatial order.
    dt : float, optional
        Time step; default ``cfl * cfl_limit``.  ``dt`` above the limit raises.
    amplitude, var, x0 : Gaussian initial pressure (peak, variance in length^2, centre).
    u0 : ndarray (n, n), optional
        Initial pressure overriding the Gaussian.  Initial velocity is zero.
    sponge_width, sigma_max : absorbing layer thickness (length) and peak damping (1/time);
        ``sponge_width=0`` disables it (reflecting Dirichlet walls).
    return_energy : bool
        Also return the discrete energy ``E^{n+1/2}`` per step, shape (nsteps,).

    Returns
    -------
    list of GridField, shape (n, n), float64, ``params["t"]`` the time; plus energy if requested.
    """
    times = _checked_times(order, times)
    grid = Grid.square(n, half_width)
    cc = _speed_on_grid(c, grid)
    dt, nsteps = _time_step(grid.spacing, cc, order, dt, cfl, max(times))
    sigma = _sponge(grid, half_width, sponge_width, sigma_max)
    u_prev = _initial_pressure(grid, u0, x0, var, amplitude)
    want = {int(np.floor(t / dt + 1e-9)) if nsteps else 0 for t in times}
    want |= {min(s + 1, nsteps) for s in want}
    snaps, energy = _leapfrog(u_prev, cc, sigma, grid.spacing, order, dt, nsteps, want, return_energy)
    params: dict[str, Any] = {"equation": "wave", "n": n, "order": order, "dt": dt, "amplitude": amplitude,
                              "var": var, "x0": list(x0), "sponge_width": sponge_width, "sigma_max": sigma_max}
    out = _interpolated_snapshots(grid, times, dt, nsteps, snaps, params)
    if return_energy:
        return out, np.asarray(energy)
    return out


def _checked_times(order: int, times: Sequence[float]) -> list[float]:
    """The snapshot times as floats; refuses an order other than 2 or 4 and no or negative times."""
    if order not in (2, 4):
        raise ValueError(f"solve_wave: order must be 2 or 4, got {order!r}.")
    times = [float(t) for t in times]
    if not times or min(times) < 0:
        raise ValueError("solve_wave: give at least one snapshot time, all >= 0.")
    return times


def _initial_pressure(grid: Grid, u0: np.ndarray | None, x0: tuple[float, float], var: float,
                      amplitude: float) -> np.ndarray:
    """``u0`` (copied), or the Gaussian pulse; zero on the walls."""
    u_prev = gaussian_pulse(grid, x0, var, amplitude) if u0 is None else np.asarray(u0, dtype=float).copy()
    if u_prev.shape != grid.shape:
        raise ValueError(f"solve_wave: u0 has shape {u_prev.shape}, expected {grid.shape}.")
    u_prev[0, :] = u_prev[-1, :] = u_prev[:, 0] = u_prev[:, -1] = 0.0
    return u_prev


def _interpolated_snapshots(grid: Grid, times: list[float], dt: float, nsteps: int, snaps: dict,
                            params: dict[str, Any]) -> list[GridField]:
    """A field per requested time, linearly interpolated between the stored steps."""
    out = []
    for t in times:
        s = int(np.floor(t / dt + 1e-9)) if nsteps else 0
        theta = t / dt - s if nsteps else 0.0
        val = snaps[s] if theta < 1e-9 else (1 - theta) * snaps[s] + theta * snaps[min(s + 1, nsteps)]
        out.append(GridField(grid, val.copy(), {**params, "t": t}))
    return out


def _time_step(h: tuple[float, float], cc: np.ndarray, order: int, dt: float | None, cfl: float,
               t_end: float) -> tuple[float, int]:
    """The step (``cfl`` times the limit unless given, shrunk so ``t_end`` is hit exactly) and the step count."""
    limit = cfl_limit(h, float(cc.max()), order)
    if dt is None:
        dt = cfl * limit
    if dt > limit:
        raise ValueError(
            f"solve_wave: dt = {dt:.6g} exceeds the CFL limit {limit:.6g} for h = {h[0]:.4g}, "
            f"c_max = {cc.max():.4g}, order {order}; use dt <= {limit:.6g} (e.g. cfl=0.5)."
        )
    nsteps = int(np.ceil(t_end / dt - 1e-12)) if t_end > 0 else 0
    if nsteps > 0:
        dt = t_end / nsteps
    return dt, nsteps


def _sponge(grid: Grid, half_width: float, sponge_width: float, sigma_max: float) -> np.ndarray:
    """Damping ``sigma`` (1/time) of the absorbing layer: quadratic ramp over ``sponge_width`` (0: none)."""
    if sponge_width <= 0:
        return np.zeros(grid.shape)
    X, Y = grid.coords()
    inner = half_width - sponge_width
    lx = np.maximum(np.abs(X) - inner, 0) / sponge_width
    ly = np.maximum(np.abs(Y) - inner, 0) / sponge_width
    return sigma_max * np.maximum(lx, ly) ** 2


def _leapfrog(u_prev: np.ndarray, cc: np.ndarray, sigma: np.ndarray, h: tuple[float, float], order: int,
              dt: float, nsteps: int, want: set[int], return_energy: bool
              ) -> tuple[dict[int, np.ndarray], list[float]]:
    """March ``nsteps`` steps from rest at ``u_prev``; the states of the steps in ``want`` and, if asked,
    the discrete energy per step."""
    c2dt2 = cc**2 * dt**2
    ap, am = 1 + sigma * dt / 2, 1 - sigma * dt / 2

    def lap(u: np.ndarray) -> np.ndarray:
        out = np.zeros_like(u)
        out[1:-1, 1:-1] = laplacian(u[1:-1, 1:-1], h, order)
        return out

    energy = []
    Lu = lap(u_prev)
    u_cur = u_prev + 0.5 * c2dt2 * Lu if nsteps > 0 else u_prev
    hh = h[0] * h[1]
    snaps: dict[int, np.ndarray] = {0: u_prev}
    for step in range(1, nsteps + 1):
        if step in want:
            snaps[step] = u_cur
        if return_energy:
            v = (u_cur - u_prev) / dt
            energy.append(hh * (np.sum(v**2 / cc**2) - np.sum(u_cur * Lu)))
        if step == nsteps:
            break
        Lu = lap(u_cur)
        u_next = (2 * u_cur - am * u_prev + c2dt2 * Lu) / ap
        u_prev, u_cur = u_cur, u_next
    return snaps, energy
