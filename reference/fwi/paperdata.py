"""The paper's own FWI data file (``data_cylinder_5.mat``) in this package's convention.

The file (MIT, from the SIREN paper's code; not bundled: read from
``../shared/data/siren/`` or a user path) holds ``source`` (5, 2),
``receivers`` (30, 2) and complex receiver values ``rec_val`` (30 receivers x
5 sources) for the ``circle`` model (velocity 2 in ``r < 0.1``), ``k = 20``,
Gaussian sources of variance 1e-4.

**Convention.** The paper's code poses the Helmholtz-PML equation as
``H(m) u = f_p`` with the source ``f_p = (1 + 1j) g`` (``g`` the unit-mass
Gaussian) and the same PML stretching ``e = 1 - i a0 (l/L)^2`` as here; this
package poses ``H(m) u = -g`` (``equations.helmholtz``, ``reference.helmholtz``).
The operator being linear, the file's field is ours times ``-(1 + 1j)``: the
sign of the source term gives the ``-1``, the source multiplier the ``1 + 1j``,
and the time convention (``e = 1 - i s``, outgoing ``exp(-i k r)``) is the
same in both, so it adds nothing (a conjugated convention would not be a
constant factor at all). Measured: the least-squares complex factor between
our 257^2 9-point simulation at the file's positions and ``rec_val`` is
``-1.00002 - 1.00099j``; with ``-(1 + 1j)`` applied the two agree to 1.8 %
relative L2 (1.9 % on 129^2, 1.7 % on 385^2: the rest is the two solvers'
discretisations of the disc), and to 158 % without it.

:func:`load_paper_data` returns the file's data divided by that factor, i.e.
in this package's convention, ready for :class:`~reference.fwi.InversionProblem`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .acquisition import Acquisition

__all__ = ["PAPER_DATA_FACTOR", "DEFAULT_PAPER_DATA", "load_paper_data", "paper_data_path"]

#: the file's receiver values are ``PAPER_DATA_FACTOR`` times this package's (see the module docstring)
PAPER_DATA_FACTOR = -(1 + 1j)
#: where the data file lives, relative to the repository root
DEFAULT_PAPER_DATA = "../shared/data/siren/data_cylinder_5.mat"


def paper_data_path(path: str | Path | None = None) -> Path:
    """Resolve ``path`` (default :data:`DEFAULT_PAPER_DATA`, relative to the repository root)."""
    if path is not None:
        return Path(path)
    return Path(__file__).resolve().parents[2] / DEFAULT_PAPER_DATA


def load_paper_data(path: str | Path | None = None, convert: bool = True, **acq_kwargs: Any
                    ) -> tuple[Acquisition, np.ndarray]:
    """Read the paper's FWI data file.

    Parameters
    ----------
    path : str or Path, optional
        The ``.mat`` file (default :data:`DEFAULT_PAPER_DATA` relative to the repository root).
    convert : bool
        Divide by :data:`PAPER_DATA_FACTOR` (default) so the data follow this
        package's convention; False returns the file's values as stored.
    **acq_kwargs
        Passed to :class:`Acquisition` (``k`` defaults to 20, ``source_var`` to 1e-4).

    Returns
    -------
    (Acquisition, ndarray of shape (n_receivers, n_sources), complex128)

    Raises
    ------
    FileNotFoundError
        If the file is absent (with where it was looked for).
    ValueError
        If it lacks ``source``, ``receivers`` or ``rec_val`` or their shapes disagree.
    """
    import scipy.io

    p = paper_data_path(path)
    if not p.is_file():
        raise FileNotFoundError(f"FWI data file {str(p)!r} not found; pass the path of data_cylinder_5.mat "
                                f"(the paper's code ships it; this project reads it from {DEFAULT_PAPER_DATA}).")
    raw = scipy.io.loadmat(str(p))
    missing = [k for k in ("source", "receivers", "rec_val") if k not in raw]
    if missing:
        raise ValueError(f"{p}: not an FWI data file of the paper's format, missing {missing}.")
    src = np.asarray(raw["source"], float)
    rec = np.asarray(raw["receivers"], float)
    d = np.asarray(raw["rec_val"], np.complex128)
    if d.shape != (len(rec), len(src)):
        raise ValueError(f"{p}: rec_val has shape {d.shape}, expected (receivers, sources) = {(len(rec), len(src))}.")
    acq = Acquisition(src, rec, **acq_kwargs)
    return acq, (d / PAPER_DATA_FACTOR if convert else d)
