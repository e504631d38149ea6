"""Observed orders of reference.fdgen on composed 2-D regions (the studies of tests/reference/test_ref_composed.py).

Prints JSON: per study, the grids (nodes per axis over the bounding box), the max error over the
unknowns against the manufactured solution, and the observed orders log2(e_h / e_{h/2}). Example::

    python benchmarks/fdgen_composed.py
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    spec = importlib.util.spec_from_file_location("composed_studies", ROOT / "tests" / "reference" / "test_ref_composed.py")
    T = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(T)
    u, UE, x, y = T.u, T.UE, T.x, T.y
    nd = T.normal_derivative(u, (x, y))
    sq = T.square_minus_discs()
    holes = [(T.Ball(c, r), c, r) for c, r in T.HOLES]
    disc = T.Ball(T.DISC_C, T.DISC_R)
    pent = T.Polygon([(-1, -0.8), (0.9, -1), (1, 0.3), (0.1, 1), (-0.9, 0.6)])
    hc, hr = (0.05, -0.1), 0.35
    edges = ("edges", u - UE, T.pinn.Box(T.SQUARE.bounds).boundary())
    studies = {
        "disc, Dirichlet": (disc, [("bc", u - UE, disc.boundary())], T.GRIDS),
        "disc, Robin": (disc, [("bc", u + nd - (UE + T.dn_disc(T.DISC_C, T.DISC_R)), disc.boundary())], T.GRIDS),
        "square minus 4 discs, Dirichlet": (sq, [edges] + [(f"c{i}", u - UE, d.boundary()) for i, (d, _, _) in enumerate(holes)], T.GRIDS),
        "square minus 4 discs, Neumann on the circles": (
            sq, [edges] + [(f"c{i}", nd - T.dn_disc(c, r), d.boundary()) for i, (d, c, r) in enumerate(holes)], T.GRIDS),
        "L-shape (Polygon), Dirichlet": (T.Polygon(T.L_VERTICES), [("bc", u - UE, T.Polygon(T.L_VERTICES).boundary())], (17, 33, 65, 129)),
        "L-shape (Box - Box), Dirichlet": (T.Box([(-1, 1), (-1, 1)]) - T.Box([(0, 1), (0, 1)]),
                                           [("bc", u - UE, T.pinn.Box([(-1, 1), (-1, 1)]).boundary()),
                                            ("in", u - UE, T.Box([(0, 1), (0, 1)]).boundary())], (17, 33, 65, 129)),
        "pentagon minus disc, Dirichlet": (pent - T.Ball(hc, hr), [("o", u - UE, pent.boundary()),
                                                                  ("h", u - UE, T.Ball(hc, hr).boundary())], T.GRIDS),
        "pentagon minus disc, Robin on the hole": (pent - T.Ball(hc, hr), [
            ("o", u - UE, pent.boundary()), ("h", u + nd - (UE + T.dn_disc(hc, hr)), T.Ball(hc, hr).boundary())], T.GRIDS),
    }
    out = []
    for name, (dom, conds, grids) in studies.items():
        errs = T.study(dom, conds, grids)
        out.append({"study": name, "grids": list(grids), "max_error": errs, "orders": [round(float(o), 3) for o in T.orders(errs)]})
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
