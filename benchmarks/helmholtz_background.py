"""Accuracy of the FD background field u0 and of its interpolants near the paper's narrow source.

A 9-point FD solve on 1025^2 (k = 20, source variance 1e-4 at (-0.35, 0),
uniform medium) is the yardstick. Printed (JSON): the relative L2 error of the
257^2 and 513^2 FD fields at the common nodes (physical region |x|_inf < 0.5,
and r > 0.1 from the source), and of bilinear vs cubic (4-point Lagrange)
interpolation of the 1025^2 field subsampled to 257^2 / 513^2, evaluated at all
1025^2 nodes of: the physical region, r < 0.05 around the source, r > 0.1.

    python benchmarks/helmholtz_background.py
"""

import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from pinnsiren.coefficients import GridInterpolant  # noqa: E402
from solvers.fwi.fwi_background import CubicInterpolant, background_fields  # noqa: E402


def main() -> None:
    torch.set_num_threads(1)
    src, k, var = (-0.35, 0.0), 20.0, 1e-4
    t = time.process_time()
    fine = background_fields([src], k, var, 1025)[0]
    out = {"cpu_seconds_1025": round(time.process_time() - t, 1)}
    X, Y = fine.grid.coords()
    phys = (np.abs(X) < 0.5) & (np.abs(Y) < 0.5)
    r2 = (X - src[0]) ** 2 + (Y - src[1]) ** 2
    regions = {"physical": phys, "r<0.05": r2 < 0.05**2, "r>0.1": phys & (r2 > 0.01)}
    for name, reg in regions.items():
        ref = fine.values[reg]
        p = torch.tensor(np.stack([X[reg], Y[reg]], 1))
        for n, step in (("257", 4), ("513", 2)):
            g = fine.values[::step, ::step]
            for iname, cls in (("bilinear", GridInterpolant), ("cubic", CubicInterpolant)):
                e = np.linalg.norm(cls(g, [(-1, 1), (-1, 1)])(p).numpy() - ref) / np.linalg.norm(ref)
                out[f"interp_{iname}_{n}_{name}"] = float(e)
    for n, step in ((257, 4), (513, 2)):
        u = background_fields([src], k, var, n)[0].values
        r = fine.values[::step, ::step]
        Xs, Ys = X[::step, ::step], Y[::step, ::step]
        ph = (np.abs(Xs) < 0.5) & (np.abs(Ys) < 0.5)
        far = ph & ((Xs - src[0]) ** 2 + Ys**2 > 0.01)
        out[f"fd_{n}_vs_1025_physical"] = float(np.linalg.norm((u - r)[ph]) / np.linalg.norm(r[ph]))
        out[f"fd_{n}_vs_1025_far"] = float(np.linalg.norm((u - r)[far]) / np.linalg.norm(r[far]))
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
