"""Learn a prior over SIRENs with a set encoder and a hypernetwork, and inpaint faces from a few pixels (paper §4.4, Table 1).

A set encoder maps each context pixel ``(y, x, value)`` through a small MLP
and averages the embeddings (permutation invariant) into a latent code
``z``; a ReLU hypernetwork with one hidden layer maps ``z`` to all weights
``theta`` of a SIREN, which is evaluated on every pixel. Training minimises
(supplement eq. 26) ``MSE(all pixels) + lambda_1 mean(z^2) + lambda_2
mean(theta^2)`` with ``lambda_1 = 0.1`` and ``lambda_2 = 100`` over a random
number of context pixels per step. Data: the faces of scikit-image's
``lfw_subset`` (25 x 25 grayscale), split into training and held-out faces.
The baseline fits a fresh SIREN of the same shape to the same context
pixels. Errors are pixel-wise MSE on all pixels, values in ``[0, 1]``.
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from pinnsiren.networks import Siren
from pinnsiren.settings import add_flags, from_args
from pinnsiren.train import train

from .signal_fit import FitSettings, fit_trainer, fit_values, train_history

__all__ = ["HyperConfig", "HyperLoss", "load_faces", "face_grid", "HyperSiren", "hyper_predict", "sample_context",
           "train_hyper", "fresh_siren_mse", "evaluate", "run"]


def load_faces(test: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """The 100 faces of scikit-image's ``lfw_subset`` (values in [0, 1]):
    the first ``100 - test`` for training, the last ``test`` held out."""
    from skimage import data

    faces = data.lfw_subset()[:100].astype(np.float64)
    if not 0 < test < 100:
        raise ValueError(f"test must be in 1..99, got {test}")
    return faces[: 100 - test], faces[100 - test :]


def face_grid(side: int) -> torch.Tensor:
    """Pixel-centre coordinates in ``[-1, 1]^2``, row-major, shape ``(side*side, 2)``."""
    lin = torch.linspace(-1.0, 1.0, side)
    gy, gx = torch.meshgrid(lin, lin, indexing="ij")
    return torch.stack([gy.reshape(-1), gx.reshape(-1)], dim=1)


class HyperSiren(nn.Module):
    """Set encoder -> latent -> ReLU hypernetwork -> weights of a :class:`Siren`.

    Parameters
    ----------
    latent : int
        Dimension of the latent code ``z``.
    encoder_hidden : int
        Width of the per-pixel encoder MLP (two hidden ReLU layers).
    hyper_hidden : int
        Width of the hypernetwork's hidden layer.
    siren_hidden, siren_layers : int
        Shape of the predicted SIREN (``siren_layers`` hidden layers).
    """

    def __init__(self, latent: int = 128, encoder_hidden: int = 128, hyper_hidden: int = 256,
                 siren_hidden: int = 64, siren_layers: int = 2) -> None:
        super().__init__()
        self.config = dict(latent=latent, encoder_hidden=encoder_hidden, hyper_hidden=hyper_hidden,
                           siren_hidden=siren_hidden, siren_layers=siren_layers)
        self.encoder = nn.Sequential(
            nn.Linear(3, encoder_hidden), nn.ReLU(),
            nn.Linear(encoder_hidden, encoder_hidden), nn.ReLU(),
            nn.Linear(encoder_hidden, latent),
        )
        template = Siren(2, 1, siren_hidden, siren_layers)
        self.omegas = template.omegas
        self.shapes = [(tuple(l.weight.shape), tuple(l.bias.shape)) for l in template.layers]
        n_params = sum(p.numel() for p in template.parameters())
        self.n_params = n_params
        self.hyper = nn.Sequential(nn.Linear(latent, hyper_hidden), nn.ReLU(),
                                   nn.Linear(hyper_hidden, n_params))
        with torch.no_grad():
            # supplement: Kaiming weights scaled by 1e-2 in the last layer; the
            # bias is a SIREN initialisation, so every z starts near one
            self.hyper[-1].weight.mul_(1e-2)
            self.hyper[-1].bias.copy_(torch.cat([p.reshape(-1) for l in template.layers
                                                 for p in (l.weight, l.bias)]))

    def encode(self, coords: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """``coords`` (B, M, 2), ``values`` (B, M) -> latent (B, latent): mean of per-pixel embeddings."""
        return self.encoder(torch.cat([coords, values[..., None]], dim=-1)).mean(dim=1)

    def weights(self, z: torch.Tensor) -> torch.Tensor:
        """Flat SIREN parameters (B, n_params), layer by layer, weight then bias."""
        return self.hyper(z)

    def render(self, theta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Evaluate the SIRENs ``theta`` (B, n_params) at points ``x`` (N, 2) -> (B, N)."""
        b = theta.shape[0]
        h = x.expand(b, *x.shape)
        i = 0
        for k, (ws, bs) in enumerate(self.shapes):
            w = theta[:, i : i + ws[0] * ws[1]].reshape(b, *ws)
            i += ws[0] * ws[1]
            bias = theta[:, i : i + bs[0]]
            i += bs[0]
            h = torch.baddbmm(bias[:, None, :], h, w.transpose(1, 2))
            if k < len(self.shapes) - 1:
                h = torch.sin(self.omegas[k] * h)
        return h[..., 0]

    def forward(self, coords: torch.Tensor, values: torch.Tensor,
                x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return ``(prediction (B, N), z, theta)``."""
        z = self.encode(coords, values)
        theta = self.weights(z)
        return self.render(theta, x), z, theta

    def siren(self, theta: torch.Tensor) -> Siren:
        """A :class:`Siren` module holding one predicted parameter vector (n_params,)."""
        c = self.config
        net = Siren(2, 1, c["siren_hidden"], c["siren_layers"])
        i = 0
        with torch.no_grad():
            for layer in net.layers:
                for p in (layer.weight, layer.bias):
                    p.copy_(theta[i : i + p.numel()].reshape(p.shape))
                    i += p.numel()
        return net


def sample_context(n_pixels: int, count: int, batch: int, gen: torch.Generator) -> torch.Tensor:
    """``batch`` rows of ``count`` distinct pixel indices out of ``n_pixels``."""
    return torch.argsort(torch.rand(batch, n_pixels, generator=gen), dim=1)[:, :count]


@dataclass
class HyperConfig(FitSettings):
    """Settings of the hypernetwork training (lambdas: the paper's)."""

    batch: int = 16
    """Faces per step."""
    latent: int = 128
    """Latent dimension."""
    encoder_hidden: int = 128
    """Width of the set encoder."""
    hyper_hidden: int = 256
    """Width of the ReLU hypernetwork."""
    siren_hidden: int = 64
    """Width of the predicted SIREN."""
    siren_layers: int = 2
    """Hidden layers of the predicted SIREN."""
    lambda_latent: float = 0.1
    """Weight of mean(z^2)."""
    lambda_weights: float = 100.0
    """Weight of mean(theta^2) (the paper's)."""
    min_context: int = 10
    """Fewest context pixels drawn per face in training."""
    steps: int = 3000
    log_every: int = 50


class HyperLoss:
    """The hypernetwork's loss as a problem of :func:`pinnsiren.train.train` (supplement eq. 26).

    Each step draws from the trainer's generator ``cfg.batch`` faces out of
    ``data`` (F, N) (values in [-1, 1], on the pixels ``x`` (N, 2)), a
    log-uniform count of context pixels in ``[cfg.min_context, N]`` and that
    many distinct pixels per face; the terms are ``mse`` (all pixels),
    ``latent`` (``lambda_latent mean(z^2)``) and ``weights``
    (``lambda_weights mean(theta^2)``).
    """

    def __init__(self, data: torch.Tensor, x: torch.Tensor, cfg: HyperConfig) -> None:
        self.data, self.x, self.cfg = data, x, cfg
        self.lo, self.hi = math.log(cfg.min_context), math.log(data.shape[1])

    def losses(self, model: HyperSiren, step: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        cfg, data = self.cfg, self.data
        pick = torch.randint(0, data.shape[0], (cfg.batch,), generator=generator).to(data.device)
        target = data[pick]
        count = int(round(math.exp(self.lo + (self.hi - self.lo) * float(torch.rand(1, generator=generator)))))
        idx = sample_context(data.shape[1], count, cfg.batch, generator).to(data.device)
        pred, z, theta = model(self.x[idx], torch.gather(target, 1, idx), self.x)
        return {"mse": torch.mean((pred - target) ** 2), "latent": cfg.lambda_latent * torch.mean(z ** 2),
                "weights": cfg.lambda_weights * torch.mean(theta ** 2)}


def train_hyper(train01: np.ndarray, cfg: HyperConfig, show_progress: bool = True) -> dict[str, Any]:
    """Train encoder + hypernetwork on faces ``(F, S, S)`` in [0, 1] (random horizontal flips; a log-uniform
    number of context pixels per step) by the trainer on :class:`HyperLoss`; history ``step``, ``loss``,
    ``mse``."""
    device = torch.device(cfg.device)
    torch.manual_seed(cfg.seed)
    f, side, _ = train01.shape
    model = HyperSiren(cfg.latent, cfg.encoder_hidden, cfg.hyper_hidden, cfg.siren_hidden,
                       cfg.siren_layers).to(device)
    imgs = torch.as_tensor(train01 * 2.0 - 1.0, dtype=torch.float32)
    data = torch.cat([imgs, imgs.flip(-1)]).reshape(2 * f, side * side).to(device)
    c0 = time.process_time()
    out = train(HyperLoss(data, face_grid(side).to(device), cfg), model,
                fit_trainer(cfg.steps, cfg.lr, cfg.seed, device, cfg.log_every, show_progress))
    hist = train_history(out.history, mse="mse")
    return dict(model=model.cpu().eval(), history={k: np.asarray(v) for k, v in hist.items()},
                cpu_seconds=time.process_time() - c0)


def _contexts(n_faces: int, n: int, counts: Sequence[int], seed: int) -> dict[int, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return {c: sample_context(n, min(c, n), n_faces, gen) for c in counts}


def hyper_predict(model: HyperSiren, faces01: np.ndarray, idx: torch.Tensor) -> np.ndarray:
    """Inpaint faces (F, S, S) from context indices (F, M); returns (F, S, S) in [0, 1]."""
    f, side, _ = faces01.shape
    x = face_grid(side)
    vals = torch.as_tensor(faces01.reshape(f, -1) * 2.0 - 1.0, dtype=torch.float32)
    with torch.no_grad():
        pred, _, _ = model(x[idx], torch.gather(vals, 1, idx), x)
    return np.clip((pred.numpy().astype(np.float64) + 1.0) / 2.0, 0.0, 1.0).reshape(f, side, side)


def fresh_siren_mse(faces01: np.ndarray, idx: torch.Tensor, hidden: int, layers: int,
                    steps: int = 500, lr: float = 1e-4, seed: int = 0) -> tuple[float, np.ndarray]:
    """Fit a fresh SIREN (same shape as the predicted ones) to each face's
    context pixels; MSE on all pixels, averaged over faces, and the predictions."""
    f, side, _ = faces01.shape
    x = face_grid(side)
    preds = []
    for i in range(f):
        torch.manual_seed(seed + i)
        net = Siren(2, 1, hidden, layers)
        yc = torch.as_tensor(faces01.reshape(f, -1)[i][idx[i].numpy()] * 2.0 - 1.0,
                             dtype=torch.float32).reshape(-1, 1)
        fit_values(net, x[idx[i]], yc, steps=steps, lr=lr, batch=None, seed=seed + i, log_every=max(steps, 1),
                   show_progress=False)
        with torch.no_grad():
            preds.append(np.clip((net(x).numpy().reshape(side, side) + 1.0) / 2.0, 0.0, 1.0))
    p = np.stack(preds)
    return float(np.mean((p - faces01) ** 2)), p


def evaluate(model: HyperSiren, test01: np.ndarray, counts: Sequence[int] = (10, 100, 625),
             baseline_steps: int = 500, seed: int = 1234) -> dict[str, Any]:
    """Held-out inpainting MSE (all pixels, [0, 1]) of the hypernetwork and of
    fresh SIRENs fitted to the same context pixels, per context count."""
    f, side, _ = test01.shape
    ctx = _contexts(f, side * side, counts, seed)
    rows: dict[int, dict[str, Any]] = {}
    for c, idx in ctx.items():
        hp = hyper_predict(model, test01, idx)
        row: dict[str, Any] = dict(hyper=float(np.mean((hp - test01) ** 2)), hyper_pred=hp, idx=idx)
        if baseline_steps > 0:
            row["fresh"], row["fresh_pred"] = fresh_siren_mse(
                test01, idx, model.config["siren_hidden"], model.config["siren_layers"], baseline_steps)
        rows[c] = row
    return rows


def plot_hyper_figure(test01: np.ndarray, rows: dict[int, dict[str, Any]], path: str | Path,
                      shown: int = 3) -> Path:
    """Per held-out face: ground truth, then context / hypernetwork / fresh SIREN for each count."""
    from pinnsiren.plotting import pyplot, save_figure

    plt = pyplot()
    counts = list(rows)
    per = 3 if all("fresh_pred" in r for r in rows.values()) else 2
    ncol = 1 + per * len(counts)
    fig, axes = plt.subplots(shown, ncol, figsize=(1.3 * ncol, 1.5 * shown), squeeze=False)
    side = test01.shape[1]
    for i in range(shown):
        axes[i, 0].imshow(test01[i], cmap="gray", vmin=0, vmax=1)
        axes[i, 0].set_title("truth" if i == 0 else "", fontsize=7)
        for j, c in enumerate(counts):
            r = rows[c]
            ctx = np.full(side * side, np.nan)
            ix = r["idx"][i].numpy()
            ctx[ix] = test01[i].reshape(-1)[ix]
            panels = [(f"{c} px", ctx.reshape(side, side)), ("hyper", r["hyper_pred"][i])]
            if per == 3:
                panels.append(("fresh", r["fresh_pred"][i]))
            for k, (title, img) in enumerate(panels):
                ax = axes[i, 1 + per * j + k]
                ax.imshow(img, cmap="gray", vmin=0, vmax=1)
                ax.set_title(title if i == 0 else "", fontsize=7)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    return save_figure(fig, path, dpi=110)


def run(out: str | Path, cfg: HyperConfig, counts: Sequence[int] = (10, 100, 625), test: int = 20,
        baseline_steps: int = 500, show_progress: bool = True) -> dict[str, Any]:
    """Train on the training faces, evaluate on the held-out ones; write ``hyper.h5`` and ``hyper.png``."""
    from pinnsiren.io import write_result

    train, test_faces = load_faces(test)
    tr = train_hyper(train, cfg, show_progress=show_progress)
    rows = evaluate(tr["model"], test_faces, counts, baseline_steps)
    for c, r in rows.items():
        extra = f", fresh SIREN {r['fresh']:.4f}" if "fresh" in r else ""
        print(f"{c:>4d} context pixels: hypernetwork MSE {r['hyper']:.4f}{extra}")
    print(f"training: {cfg.steps} steps, {tr['cpu_seconds']:.1f} CPU s")
    metrics = {f"mse_hyper_{c}": r["hyper"] for c, r in rows.items()}
    metrics.update({f"mse_fresh_{c}": r["fresh"] for c, r in rows.items() if "fresh" in r})
    metrics["train_cpu_seconds"] = tr["cpu_seconds"]
    out = Path(out)
    h5 = write_result(
        out / "hyper.h5",
        kind="hyper-inpaint",
        config=dict(dataset="skimage.data.lfw_subset faces", train=100 - test, test=test,
                    counts=list(rows), baseline_steps=baseline_steps, **asdict(cfg)),
        metrics=metrics,
        history=tr["history"],
        fields={"test_faces": test_faces, **{f"hyper_{c}": r["hyper_pred"] for c, r in rows.items()}},
        field_attrs={"test_faces": {"bounds": [[-1, 1], [-1, 1]]}},
        models={"encoder": tr["model"].encoder, "hypernetwork": tr["model"].hyper},
    )
    png = plot_hyper_figure(test_faces, rows, out / "hyper.png")
    print(f"wrote {h5} and {png}")
    return dict(rows=rows, model=tr["model"], history=tr["history"], h5=h5, png=png,
                cpu_seconds=tr["cpu_seconds"])


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--counts", default="10,100,625", help="context pixel counts to evaluate (default 10,100,625)")
    p.add_argument("--test", type=int, default=20, help="held-out faces (default 20 of 100)")
    p.add_argument("--baseline-steps", type=int, default=500,
                   help="Adam steps of the fresh-SIREN baseline per face (0: skip; default 500)")
    p.add_argument("--out", default="results/hyper", help="output folder")
    add_flags(p, HyperConfig)


def main(args: argparse.Namespace) -> int:
    cfg = from_args(HyperConfig, args)
    counts = [int(c) for c in args.counts.split(",") if c.strip()]
    run(args.out, cfg, counts, args.test, args.baseline_steps)
    return 0
