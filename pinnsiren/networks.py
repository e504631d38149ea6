"""Coordinate networks: the SIREN and the paper's baseline MLPs.

Every model maps coordinates ``x`` of shape ``(N, in_features)`` to channels of
shape ``(N, out_features)``. Each model carries a JSON-serialisable ``config``
dict (class name + constructor arguments) so a result file can rebuild it.

The layer structure is deliberately plain (a ``ModuleList`` of ``nn.Linear``)
so the derivative engine can propagate Taylor coefficients through it in
closed form.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch
from torch import nn

__all__ = [
    "check_architectures",
    "Siren",
    "MLP",
    "PositionalEncoding",
    "RBFLayer",
    "ACTIVATIONS",
    "Activation",
    "build_model",
    "ARCHITECTURES",
    "model_from_config",
    "nyquist_frequencies",
    "OutputScale",
]


class Siren(nn.Module):
    """Sine-activated MLP (Sitzmann et al. 2020), identical to the official code.

    Each hidden layer computes ``sin(omega_0 * (W x + b))``; the last layer is
    linear. Initialisation: first layer ``W ~ U(-1/n_in, 1/n_in)``; later sine
    layers and the final linear layer ``W ~ U(-sqrt(6/n_in)/omega_0, +...)``
    (with ``omega_0 = hidden_omega_0``); biases keep PyTorch's default
    ``U(-1/sqrt(n_in), 1/sqrt(n_in))``.

    Parameters
    ----------
    in_features, out_features : int
        Coordinate dimension ``d`` and number of output channels ``C``.
    hidden_features : int
        Width of every hidden layer.
    hidden_layers : int
        Number of hidden-to-hidden sine layers; the network has
        ``hidden_layers + 2`` linear layers in all.
    first_omega_0, hidden_omega_0 : float
        Frequency factors of the first and of the later sine layers.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        hidden_features: int = 256,
        hidden_layers: int = 3,
        first_omega_0: float = 30.0,
        hidden_omega_0: float = 30.0,
    ) -> None:
        super().__init__()
        _check_sizes(in_features, out_features, hidden_features, hidden_layers)
        self.config: dict[str, Any] = dict(
            cls="Siren",
            in_features=in_features,
            out_features=out_features,
            hidden_features=hidden_features,
            hidden_layers=hidden_layers,
            first_omega_0=float(first_omega_0),
            hidden_omega_0=float(hidden_omega_0),
        )
        self.in_features = in_features
        self.out_features = out_features
        self.first_omega_0 = float(first_omega_0)
        self.hidden_omega_0 = float(hidden_omega_0)
        sizes = [in_features] + [hidden_features] * (hidden_layers + 1) + [out_features]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        with torch.no_grad():
            for i, layer in enumerate(self.layers):
                n_in = layer.in_features
                bound = 1.0 / n_in if i == 0 else math.sqrt(6.0 / n_in) / self.hidden_omega_0
                layer.weight.uniform_(-bound, bound)

    @property
    def omegas(self) -> list[float]:
        """Frequency factor of each sine layer (all layers but the last)."""
        n = len(self.layers) - 1
        return [self.first_omega_0] + [self.hidden_omega_0] * (n - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        for layer, w0 in zip(self.layers[:-1], self.omegas):
            h = torch.sin(w0 * layer(h))
        return self.layers[-1](h)

    def forward_with_activations(self, x: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Return ``(pre, post)`` activations of every sine layer.

        ``pre`` is the argument of the sine, ``omega_0 * (W h + b)``.
        """
        out = []
        h = x
        for layer, w0 in zip(self.layers[:-1], self.omegas):
            pre = w0 * layer(h)
            h = torch.sin(pre)
            out.append((pre, h))
        return out


# --------------------------------------------------------------------------
# Activations: one table entry each (function, initialisation, Taylor rule)


def _relu_taylor(z: torch.Tensor):
    return torch.relu(z), (z > 0).to(z.dtype), None


def _tanh_taylor(z: torch.Tensor):
    t = torch.tanh(z)
    d1 = 1 - t * t
    return t, d1, -2 * t * d1


def _sigmoid_taylor(z: torch.Tensor):
    s = torch.sigmoid(z)
    d1 = s * (1 - s)
    return s, d1, d1 * (1 - 2 * s)


def _softplus_taylor(z: torch.Tensor):
    # torch's softplus (beta=1, threshold=20) is linear above the threshold
    lin = z > 20
    s = torch.sigmoid(z)
    d1 = torch.where(lin, torch.ones_like(z), s)
    d2 = torch.where(lin, torch.zeros_like(z), s * (1 - s))
    return nn.functional.softplus(z), d1, d2


def _elu_taylor(z: torch.Tensor, alpha: float = 1.0, scale: float = 1.0):
    pos = z > 0
    e = torch.exp(torch.clamp(z, max=0.0))
    v = torch.where(pos, z, alpha * (e - 1)) * scale
    d1 = torch.where(pos, torch.ones_like(z), alpha * e) * scale
    d2 = torch.where(pos, torch.zeros_like(z), alpha * e) * scale
    return v, d1, d2


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def _selu_taylor(z: torch.Tensor):
    return _elu_taylor(z, _SELU_ALPHA, _SELU_SCALE)


def sine_taylor(z: torch.Tensor):
    """Taylor rule of the SIREN's sine: ``(sin z, cos z, -sin z)``."""
    s = torch.sin(z)
    return s, torch.cos(z), -s


def _kaiming_relu(weight: torch.Tensor) -> None:
    nn.init.kaiming_normal_(weight, a=0.0, nonlinearity="relu", mode="fan_in")


def _normal_fan_in(gain2: float):
    def init(weight: torch.Tensor) -> None:
        nn.init.normal_(weight, std=math.sqrt(gain2) / math.sqrt(weight.shape[1]))

    return init


@dataclass(frozen=True)
class Activation:
    """One elementwise activation: everything the toolkit needs to know about it.

    Attributes
    ----------
    fn : callable
        ``z -> s(z)``, elementwise (the MLP's forward).
    init : callable
        ``init(weight)``: in-place initialisation of every ``nn.Linear``
        weight ``(out, in)`` of an :class:`MLP` with this activation.
    taylor : callable
        ``z -> (s(z), s'(z), s''(z) or None for identically zero)``: the rule
        the derivative engine (:mod:`pinnsiren.jet`) uses to push Taylor
        coefficients through the activation. ``tests/test_networks.py``
        checks every entry's rule against autograd of ``fn``.
    """

    fn: Callable[[torch.Tensor], torch.Tensor]
    init: Callable[[torch.Tensor], None]
    taylor: Callable[[torch.Tensor], tuple]

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        return self.fn(z)


#: activation name -> :class:`Activation`. Adding an activation is one entry
#: here: :class:`MLP`, :func:`build_model`, :data:`ARCHITECTURES` (the CLI's
#: ``--arch`` choices) and the derivative engine's Taylor path all read it.
#: Initialisations are the paper's (official code).
ACTIVATIONS: dict[str, Activation] = {
    "relu": Activation(torch.relu, _kaiming_relu, _relu_taylor),
    "tanh": Activation(torch.tanh, nn.init.xavier_normal_, _tanh_taylor),
    "sigmoid": Activation(torch.sigmoid, nn.init.xavier_normal_, _sigmoid_taylor),
    "softplus": Activation(nn.functional.softplus, _kaiming_relu, _softplus_taylor),
    "elu": Activation(nn.functional.elu, _normal_fan_in(1.5505188080679277), _elu_taylor),
    "selu": Activation(nn.functional.selu, _normal_fan_in(1.0), _selu_taylor),
}


def nyquist_frequencies(side: int) -> int:
    """Number of positional-encoding frequencies the paper uses for an image.

    ``L = floor(log2(side / 4))`` (official code: Nyquist rate of ``side``
    samples on ``[-1, 1]``).
    """
    if side < 8:
        raise ValueError(f"side must be >= 8 for a positional encoding, got {side}")
    return int(math.floor(math.log2(side / 4)))


class PositionalEncoding(nn.Module):
    """Append ``sin(2^i pi x_j)``, ``cos(2^i pi x_j)`` for ``i < num_frequencies``.

    Output shape ``(N, d * (1 + 2 L))``: the coordinates, then for each
    frequency and coordinate the sine and cosine (official code's order).
    """

    def __init__(self, in_features: int, num_frequencies: int) -> None:
        super().__init__()
        if num_frequencies < 1:
            raise ValueError(f"num_frequencies must be >= 1, got {num_frequencies}")
        self.in_features = in_features
        self.num_frequencies = num_frequencies
        self.out_features = in_features * (1 + 2 * num_frequencies)
        freqs = (2.0 ** torch.arange(num_frequencies, dtype=torch.float64)) * math.pi
        self.register_buffer("freqs", freqs.to(torch.get_default_dtype()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (N, L, d) arguments
        arg = x[:, None, :] * self.freqs.to(x.dtype)[None, :, None]
        enc = torch.stack([torch.sin(arg), torch.cos(arg)], dim=2)  # (N, L, 2, d)
        return torch.cat([x, enc.reshape(x.shape[0], -1)], dim=1)


class RBFLayer(nn.Module):
    """Gaussian radial-basis input layer: ``exp(-(sigma_k |x - c_k|)^2)``.

    Centres ``c_k ~ U(-1, 1)^d`` and widths ``sigma_k`` (initially 10) are
    learnable, as in the official code.
    """

    def __init__(self, in_features: int, centers: int = 1024, sigma: float = 10.0) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = centers
        self.centres = nn.Parameter(torch.empty(centers, in_features).uniform_(-1.0, 1.0))
        self.sigmas = nn.Parameter(torch.full((centers,), float(sigma)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d2 = ((x[:, None, :] - self.centres[None]) ** 2).sum(-1)
        return torch.exp(-d2 * self.sigmas[None] ** 2)


class MLP(nn.Module):
    """Baseline MLP with an elementwise activation and the paper's inits.

    Parameters
    ----------
    in_features, out_features, hidden_features, hidden_layers
        As for :class:`Siren` (``hidden_layers + 2`` linear layers).
    activation : str
        One of ``relu, tanh, sigmoid, softplus, elu, selu``.
    encoding : {None, "pe", "rbf"}
        ``"pe"``: positional encoding of the input (``num_frequencies``
        frequencies; default 10, the paper's 3-D choice; use
        :func:`nyquist_frequencies` for images). ``"rbf"``: an RBF input
        layer with ``rbf_centers`` centres.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        hidden_features: int = 256,
        hidden_layers: int = 3,
        activation: str = "relu",
        encoding: str | None = None,
        num_frequencies: int = 10,
        rbf_centers: int = 1024,
    ) -> None:
        super().__init__()
        _check_sizes(in_features, out_features, hidden_features, hidden_layers)
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"unknown activation {activation!r}; must be one of {sorted(ACTIVATIONS)}"
            )
        if encoding not in (None, "pe", "rbf"):
            raise ValueError(f"unknown encoding {encoding!r}; must be one of None, 'pe', 'rbf'")
        self.config: dict[str, Any] = dict(
            cls="MLP",
            in_features=in_features,
            out_features=out_features,
            hidden_features=hidden_features,
            hidden_layers=hidden_layers,
            activation=activation,
            encoding=encoding,
            num_frequencies=num_frequencies,
            rbf_centers=rbf_centers,
        )
        self.in_features = in_features
        self.out_features = out_features
        self.activation = activation
        self.act = ACTIVATIONS[activation]
        self.encoding: nn.Module | None
        if encoding == "pe":
            self.encoding = PositionalEncoding(in_features, num_frequencies)
        elif encoding == "rbf":
            self.encoding = RBFLayer(in_features, rbf_centers)
        else:
            self.encoding = None
        first = self.encoding.out_features if self.encoding is not None else in_features
        sizes = [first] + [hidden_features] * (hidden_layers + 1) + [out_features]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        with torch.no_grad():
            for layer in self.layers:
                ACTIVATIONS[activation].init(layer.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.encoding(x) if self.encoding is not None else x
        for layer in self.layers[:-1]:
            h = self.act(layer(h))
        return self.layers[-1](h)


def _check_sizes(in_features: int, out_features: int, hidden_features: int, hidden_layers: int) -> None:
    for name, v, lo in (
        ("in_features", in_features, 1),
        ("out_features", out_features, 1),
        ("hidden_features", hidden_features, 1),
        ("hidden_layers", hidden_layers, 0),
    ):
        if not isinstance(v, int) or v < lo:
            raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")


#: architecture names accepted by the command line and :func:`build_model`
#: (``siren``, every key of :data:`ACTIVATIONS`, and the two input encodings)
ARCHITECTURES = ("siren", *ACTIVATIONS, "relu-pe", "rbf")


def build_model(
    arch: str,
    in_features: int,
    out_features: int,
    hidden_features: int = 256,
    hidden_layers: int = 3,
    num_frequencies: int | None = None,
    **kwargs: Any,
) -> nn.Module:
    """Build a network by architecture name (one of :data:`ARCHITECTURES`).

    ``num_frequencies`` sets the positional encoding of ``relu-pe`` (default
    10). Extra keyword arguments go to :class:`Siren` (``first_omega_0``...).
    """
    if arch == "siren":
        return Siren(in_features, out_features, hidden_features, hidden_layers, **kwargs)
    if arch == "relu-pe":
        return MLP(
            in_features, out_features, hidden_features, hidden_layers, "relu", "pe",
            num_frequencies=num_frequencies or 10,
        )
    if arch == "rbf":
        return MLP(in_features, out_features, hidden_features, hidden_layers, "relu", "rbf")
    if arch in ACTIVATIONS:
        return MLP(in_features, out_features, hidden_features, hidden_layers, arch)
    raise ValueError(f"unknown architecture {arch!r}; must be one of {list(ARCHITECTURES)}")


def check_architectures(archs: str | Sequence[str]) -> None:
    """Raise ``ValueError`` naming the first of ``archs`` (one name or several) that is not in :data:`ARCHITECTURES`.

    The one architecture check: ``ModelSettings.check_arch`` and the commands
    that take a list of architectures all call it.
    """
    for a in [archs] if isinstance(archs, str) else archs:
        if a not in ARCHITECTURES:
            raise ValueError(f"unknown architecture {a!r}; must be one of {list(ARCHITECTURES)}")


class OutputScale(nn.Module):
    """``scale * inner(x)``: a network trained in normalised units, answering in physical ones.

    For a linear, homogeneous problem (the wave IVP) the network can be
    trained on the problem divided by its amplitude (peak 1) and wrapped
    afterwards; the state dict keeps the inner network's entries under
    ``inner.`` and the config records both, so result files rebuild it.
    """

    def __init__(self, inner: nn.Module, scale: float) -> None:
        super().__init__()
        self.inner = inner
        self.scale = float(scale)
        self.config: dict[str, Any] = dict(cls="OutputScale", scale=self.scale,
                                           inner=dict(getattr(inner, "config", {})))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * self.inner(x)


def model_from_config(config: dict[str, Any]) -> nn.Module:
    """Rebuild an (untrained) model from its ``config`` dict."""
    cfg = dict(config)
    cls = cfg.pop("cls", None)
    if cls == "Siren":
        return Siren(**cfg)
    if cls == "MLP":
        return MLP(**cfg)
    if cls == "OutputScale":
        return OutputScale(model_from_config(cfg["inner"]), cfg["scale"])
    raise ValueError(f"cannot rebuild a model of class {cls!r}; known: 'Siren', 'MLP', 'OutputScale'")
