"""Finite-difference reference solvers from the command line: ``helmholtz``, ``wave``
and ``poisson`` (HDF5 + PNG).

The main CLI wires these in with :func:`add_subcommands`; ``python -m
reference <cmd> ...`` uses :func:`main`.  Each command writes
``<out>/<name>.h5`` (GridField groups) and ``<out>/<name>.png``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["add_subcommands", "build_parser", "main"]


def _pair(text: str) -> tuple[float, float]:
    try:
        a, b = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected two comma-separated numbers like '0,0', got {text!r}") from None
    return a, b


def _save(fields: dict[str, Any], out: Path, name: str, title: str) -> list[Path]:
    import h5py
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    h5 = out / f"{name}.h5"
    with h5py.File(h5, "w") as f:
        for key, fld in fields.items():
            fld.to_hdf5(f, key)
    ncol = len(fields)
    fig, axs = plt.subplots(1, ncol, figsize=(4.2 * ncol, 3.8), squeeze=False)
    for ax, (key, fld) in zip(axs[0], fields.items()):
        v = np.real(fld.values)
        (x0, x1), (y0, y1) = fld.grid.bounds
        lim = np.abs(v).max() or 1.0
        im = ax.imshow(v.T, origin="lower", extent=(x0, x1, y0, y1), cmap="RdBu_r", vmin=-lim, vmax=lim)
        ax.set_title(f"{title} {key}" + (" (real part)" if np.iscomplexobj(fld.values) else ""))
        fig.colorbar(im, ax=ax, shrink=0.8)
    fig.tight_layout()
    png = out / f"{name}.png"
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return [h5, png]


def run_helmholtz(args: argparse.Namespace) -> int:
    """Solve PML Helmholtz for one Gaussian source; write HDF5 + PNG."""
    from .helmholtz import solve_helmholtz

    if args.velocity_file:
        c = np.load(args.velocity_file)
        m: Any = 1.0 / np.asarray(c, dtype=float) ** 2
    else:
        m = 1.0 / args.c**2
    fld = solve_helmholtz(n=args.n, k=args.k, m=m, source=args.source, var=args.var, scheme=args.scheme)
    paths = _save({"u": fld}, Path(args.out), "helmholtz", f"k={args.k:g}")
    print(json.dumps({"wrote": [str(p) for p in paths]}))
    return 0


def run_wave(args: argparse.Namespace) -> int:
    """Run the leapfrog wave solver; write snapshots as HDF5 groups t0, t1, ... + PNG."""
    from .wave import solve_wave

    snaps = solve_wave(args.n, args.times, c=args.c, order=args.order, cfl=args.cfl,
                       amplitude=args.amplitude, var=args.var, x0=args.source)
    fields = {f"t{i}": s for i, s in enumerate(snaps)}
    paths = _save(fields, Path(args.out), "wave", "wave")
    print(json.dumps({"wrote": [str(p) for p in paths], "times": args.times}))
    return 0


def run_poisson(args: argparse.Namespace) -> int:
    """Poisson: manufactured solution on [-1,1]^2, or image reconstruction (--image)."""
    from .grid import Grid, GridField

    if args.image:
        from .image import psnr, reconstruct_from_gradient, sobel_gradient

        img = _load_image(args.image)
        gx, gy = sobel_gradient(img)
        rec = reconstruct_from_gradient(gx, gy, mean=float(img.mean()))
        g = Grid(((0, img.shape[0] - 1), (0, img.shape[1] - 1)), img.shape)
        p = {"equation": "poisson_image", "source": args.image, "psnr_db": psnr(rec, img)}
        fields = {"image": GridField(g, img, p), "reconstruction": GridField(g, rec, p)}
        extra = {"psnr_db": p["psnr_db"]}
    else:
        from .analytic import poisson_manufactured
        from .poisson import solve_poisson_dirichlet, solve_poisson_neumann

        u, lap, grad = poisson_manufactured("gauss", 0.5)
        g = Grid.square(args.n)
        X, Y = g.coords()
        if args.bc == "dirichlet":
            fld = solve_poisson_dirichlet(g, lap(X, Y), u(X, Y), method=args.method or "dst")
            ue = u(X, Y)
        else:
            gx, gy = grad(X, Y)
            fld = solve_poisson_neumann(g, lap(X, Y), (-gx[0], gx[-1], -gy[:, 0], gy[:, -1]), method=args.method or "dct")
            ue = u(X, Y) - u(X, Y).mean()
            fld.values -= fld.values.mean()
        fields = {"u": fld, "exact": GridField(g, ue, {"exact": "exp(-(x^2+y^2)/0.25)"})}
        extra = {"max_error": float(np.abs(fld.values - ue).max())}
    paths = _save(fields, Path(args.out), "poisson", "poisson")
    print(json.dumps({"wrote": [str(p) for p in paths], **extra}))
    return 0


def _load_image(spec: str) -> np.ndarray:
    if spec == "cameraman":
        try:
            from skimage.data import camera
        except ImportError:
            raise SystemExit("--image cameraman needs scikit-image; install it or pass an image file.") from None
        return camera().astype(float) / 255.0
    import matplotlib.image as mpimg

    img = np.asarray(mpimg.imread(spec), dtype=float)
    if img.ndim == 3:
        img = img[..., :3].mean(axis=2)
    return img / (img.max() or 1.0)


def add_subcommands(subparsers: argparse._SubParsersAction) -> None:
    """Register ``helmholtz``, ``wave`` and ``poisson`` on an argparse subparsers object."""
    h = subparsers.add_parser("helmholtz", help="PML Helmholtz with a Gaussian source (HDF5 + PNG)",
                              description="Solve d/dx(ey/ex du/dx) + d/dy(ex/ey du/dy) + ex ey k^2 m u = -f "
                                          "on [-1,1]^2 with a PML at 0.5<|x|<1. Outgoing = conj((i/4)H0^(1)(kr)).")
    h.add_argument("--n", type=int, default=256, help="grid points per axis (default 256)")
    h.add_argument("--k", type=float, default=20.0, help="wavenumber (default 20)")
    h.add_argument("--scheme", type=int, choices=(5, 9), default=9, help="stencil (default 9, optimal 9-point)")
    h.add_argument("--source", type=_pair, default=(0.0, 0.0), help="source centre 'x,y' (default 0,0)")
    h.add_argument("--var", type=float, default=1e-4, help="Gaussian source variance (default 1e-4)")
    h.add_argument("--c", type=float, default=1.0, help="homogeneous velocity (default 1)")
    h.add_argument("--velocity-file", default=None, help=".npy array (n, n) of velocity c; overrides --c")
    h.add_argument("--out", default="reference_out", help="output directory")
    h.set_defaults(func=run_helmholtz)

    w = subparsers.add_parser("wave", help="2-D acoustic wave, leapfrog (HDF5 + PNG)",
                              description="u_tt = c^2 Lap u, Gaussian initial pressure, zero velocity, sponge layer.")
    w.add_argument("--n", type=int, default=256, help="grid points per axis (default 256)")
    w.add_argument("--times", type=float, nargs="+", default=[0.0, 0.25, 0.5], help="snapshot times")
    w.add_argument("--c", type=float, default=1.0, help="wave speed (default 1)")
    w.add_argument("--order", type=int, choices=(2, 4), default=2, help="spatial order (default 2)")
    w.add_argument("--cfl", type=float, default=0.5, help="fraction of the CFL limit (default 0.5)")
    w.add_argument("--amplitude", type=float, default=0.02, help="initial peak pressure (default 0.02)")
    w.add_argument("--var", type=float, default=5e-4, help="initial Gaussian variance (default 5e-4)")
    w.add_argument("--source", type=_pair, default=(0.0, 0.0), help="pulse centre 'x,y'")
    w.add_argument("--out", default="reference_out", help="output directory")
    w.set_defaults(func=run_wave)

    p = subparsers.add_parser("poisson", help="Poisson: manufactured solution or image from gradient (HDF5 + PNG)",
                              description="Lap u = f on [-1,1]^2 (manufactured Gaussian), or --image: "
                                          "reconstruct an image from its Sobel gradient.")
    p.add_argument("--n", type=int, default=257, help="grid points per axis (default 257)")
    p.add_argument("--bc", choices=("dirichlet", "neumann"), default="dirichlet")
    p.add_argument("--method", choices=("dst", "dct", "amg"), default=None,
                   help="solver: dst (Dirichlet) / dct (Neumann) fast transforms, or amg")
    p.add_argument("--image", default=None, help="'cameraman' or an image file: reconstruct from gradient")
    p.add_argument("--out", default="reference_out", help="output directory")
    p.set_defaults(func=run_poisson)


def build_parser() -> argparse.ArgumentParser:
    """Stand-alone parser used by ``python -m reference``."""
    parser = argparse.ArgumentParser(prog="python -m reference", description="pinnsiren FD reference solvers")
    add_subcommands(parser.add_subparsers(dest="command", required=True))
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point for ``python -m reference``."""
    args = build_parser().parse_args(argv)
    if args.command == "poisson" and args.method is not None and not args.image:
        ok = {"dirichlet": ("dst", "amg"), "neumann": ("dct", "amg")}[args.bc]
        if args.method not in ok:
            raise SystemExit(f"--method {args.method} does not apply to --bc {args.bc}; use one of {ok}.")
    return int(args.func(args))
