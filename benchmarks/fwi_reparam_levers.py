"""Levers of neural-reparameterised FWI in the ``pinnsiren fwi --quick`` setting; prints one JSON line per config.

Data: 161^2 9-point simulation of a gallery model (paper acquisition, k = 20,
source variance 1e-4, optional noise); inversion on 81^2. Each config is a
``solvers.fwi.fwi_reparam.ReparamFWIConfig``; the velocity MSE over
``|x|_inf <= 0.5`` is recorded along the run.

    python benchmarks/fwi_reparam_levers.py circle none '[{"first_omega_0": 5}]'
    python benchmarks/fwi_reparam_levers.py layered 20 '[{"first_omega_0": 3}, {"first_omega_0": 5}]'
"""

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from reference.fwi import (Acquisition, InversionProblem, model_mse, simulate_data, slowness_model,  # noqa: E402
                           velocity_model)
from solvers.fwi.fwi_reparam import ReparamFWIConfig, reparam_fwi  # noqa: E402


def main() -> None:
    torch.set_num_threads(1)
    model = sys.argv[1] if len(sys.argv) > 1 else "circle"
    snr = None if len(sys.argv) < 3 or sys.argv[2] == "none" else float(sys.argv[2])
    cfgs = json.loads(sys.argv[3]) if len(sys.argv) > 3 else [{}]
    acq = Acquisition.paper()
    obs = simulate_data(acq, slowness_model(model), n=161, snr_db=snr, seed=0)
    pb = InversionProblem(acq, obs.d, n=81)
    X, Y = pb.op.grid.coords()
    ct = velocity_model(model)(X, Y).astype(float)

    def mse(m):
        return {"mse": model_mse(1 / np.sqrt(m), ct, (X, Y))}

    for c in cfgs:
        r = reparam_fwi(pb, ReparamFWIConfig(**c), callback=mse)
        print(json.dumps(dict(model=model, snr=snr, config=c, velocity_mse=mse(r.m)["mse"], evals=r.n_evals,
                              cpu_seconds=round(r.cpu_seconds, 1), objective=r.history["objective"][-1],
                              mse_trajectory=[round(v, 5) for v in r.history["mse"][::3]])), flush=True)


if __name__ == "__main__":
    main()
