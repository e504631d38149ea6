"""SIREN and baseline networks: initialisation bounds and statistics."""

import math

import pytest
import torch

import pinnsiren
from pinnsiren import MLP, Siren, build_model, init_statistics
from pinnsiren.diagnostics import SINE_OF_STANDARD_NORMAL_STD
from pinnsiren.networks import ACTIVATIONS, ARCHITECTURES, PositionalEncoding, model_from_config, nyquist_frequencies


def test_sine_of_standard_normal_std_matches_monte_carlo():
    g = torch.Generator().manual_seed(3)
    z = torch.randn(2_000_000, generator=g, dtype=torch.float64)
    assert SINE_OF_STANDARD_NORMAL_STD == pytest.approx(0.65752, abs=1e-5)
    assert float(torch.sin(z).std()) == pytest.approx(SINE_OF_STANDARD_NORMAL_STD, abs=2e-3)


def test_siren_structure_and_defaults():
    m = Siren(2, 3)
    assert len(m.layers) == 5  # 3 hidden layers -> 5 linear layers
    assert [l.out_features for l in m.layers] == [256, 256, 256, 256, 3]
    assert m.omegas == [30.0, 30.0, 30.0, 30.0]


@pytest.mark.parametrize("first,hidden", [(30.0, 30.0), (10.0, 45.0)])
def test_siren_weight_bounds_layer_by_layer(first, hidden):
    torch.manual_seed(11)
    m = Siren(3, 2, hidden_features=512, hidden_layers=2, first_omega_0=first, hidden_omega_0=hidden)
    for i, layer in enumerate(m.layers):
        n = layer.in_features
        bound = 1.0 / n if i == 0 else math.sqrt(6.0 / n) / hidden
        w = layer.weight
        assert float(w.detach().abs().max()) <= bound
        # uniform on [-b, b]: the max is close to b and the std is b / sqrt(3)
        assert float(w.detach().abs().max()) > 0.95 * bound
        assert float(w.detach().std()) == pytest.approx(bound / math.sqrt(3.0), rel=0.05)
        # PyTorch default bias: U(-1/sqrt(n), 1/sqrt(n))
        bb = 1.0 / math.sqrt(n)
        assert float(layer.bias.detach().abs().max()) <= bb
        assert float(layer.bias.detach().abs().max()) > 0.5 * bb


def test_siren_forward_matches_formula():
    torch.manual_seed(0)
    m = Siren(2, 1, hidden_features=16, hidden_layers=1, first_omega_0=7.0, hidden_omega_0=3.0)
    x = torch.rand(5, 2)
    L = m.layers
    h = torch.sin(7.0 * (x @ L[0].weight.T + L[0].bias))
    h = torch.sin(3.0 * (h @ L[1].weight.T + L[1].bias))
    y = h @ L[2].weight.T + L[2].bias
    torch.testing.assert_close(m(x), y)


def test_init_statistics_6_layers_2048_features():
    """Supplement §1: pre-activations ~ N(0, 1), post-activations std ~ 0.658."""
    torch.manual_seed(1234)
    m = Siren(1, 1, hidden_features=2048, hidden_layers=4)  # 6 linear layers
    x = torch.rand(1024, 1) * 2 - 1
    stats = init_statistics(m, x)
    assert len(stats) == 5
    # first layer: argument spans many periods -> arcsine-distributed output, std 1/sqrt(2)
    assert stats[0]["post_std"] == pytest.approx(1 / math.sqrt(2), abs=0.02)
    for s in stats[1:]:
        assert abs(s["pre_mean"]) < 0.05
        assert s["pre_std"] == pytest.approx(1.0, abs=0.1)
        assert abs(s["post_mean"]) < 0.03
        assert s["post_std"] == pytest.approx(SINE_OF_STANDARD_NORMAL_STD, abs=0.025)
        # and clearly not the arcsine approximation's 0.71
        assert abs(s["post_std"] - 0.71) > 0.03


def test_init_statistics_survive_50_layers():
    """Deep SIRENs keep the distribution: no drift over 49 sine layers.

    At width 1024 PyTorch's default bias adds variance ~ omega_0^2 / (3 n) = 0.29
    to the pre-activations, so their std settles near 1.1 and the sine's std
    follows the exact Gaussian formula sqrt((1 - exp(-2 s^2)) / 2).
    """
    torch.manual_seed(99)
    m = Siren(1, 1, hidden_features=1024, hidden_layers=48)
    stats = init_statistics(m, torch.rand(512, 1) * 2 - 1)
    assert len(stats) == 49
    for s in stats[1:]:
        assert s["pre_std"] == pytest.approx(1.0, abs=0.2)
        exact = math.sqrt((1.0 - math.exp(-2.0 * s["pre_std"] ** 2)) / 2.0)
        assert s["post_std"] == pytest.approx(exact, abs=0.02)
    first = sum(s["post_std"] for s in stats[1:6]) / 5
    last = sum(s["post_std"] for s in stats[-5:]) / 5
    assert abs(first - last) < 0.03


def test_init_statistics_rejects_mlp():
    with pytest.raises(TypeError, match="Siren"):
        init_statistics(MLP(1, 1), torch.zeros(3, 1))


@pytest.mark.parametrize(
    "activation,std",
    [
        ("relu", lambda n: math.sqrt(2.0 / n)),
        ("softplus", lambda n: math.sqrt(2.0 / n)),
        ("tanh", lambda n: math.sqrt(2.0 / (n + 512))),
        ("sigmoid", lambda n: math.sqrt(2.0 / (n + 512))),
        ("selu", lambda n: math.sqrt(1.0 / n)),
        ("elu", lambda n: math.sqrt(1.5505188080679277 / n)),
    ],
)
def test_mlp_inits_follow_the_paper(activation, std):
    torch.manual_seed(5)
    m = MLP(512, 512, hidden_features=512, hidden_layers=1, activation=activation)
    for layer in m.layers:
        assert float(layer.weight.detach().std()) == pytest.approx(std(layer.in_features), rel=0.03)
        assert abs(float(layer.weight.detach().mean())) < 0.01 * std(layer.in_features) * 10


def test_positional_encoding_values_and_frequency_rule():
    pe = PositionalEncoding(2, 3)
    x = torch.tensor([[0.25, -0.5]])
    y = pe(x)
    assert y.shape == (1, 2 * (1 + 2 * 3))
    expected = [0.25, -0.5]
    for i in range(3):
        f = 2.0**i * math.pi
        expected += [math.sin(f * 0.25), math.sin(-f * 0.5), math.cos(f * 0.25), math.cos(-f * 0.5)]
    torch.testing.assert_close(y[0], torch.tensor(expected), atol=1e-6, rtol=0)
    assert nyquist_frequencies(256) == 6
    assert nyquist_frequencies(64) == 4


def test_rbf_layer_is_gaussian_of_distance():
    torch.manual_seed(2)
    m = MLP(2, 1, hidden_features=8, hidden_layers=0, encoding="rbf", rbf_centers=16)
    x = torch.rand(4, 2)
    d = torch.cdist(x, m.encoding.centres)
    torch.testing.assert_close(m.encoding(x), torch.exp(-(d * m.encoding.sigmas) ** 2))


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_every_architecture_builds_runs_and_round_trips(arch):
    torch.manual_seed(0)
    m = build_model(arch, 2, 3, hidden_features=32, hidden_layers=1)
    x = torch.rand(7, 2) * 2 - 1
    y = m(x)
    assert y.shape == (7, 3) and torch.isfinite(y).all()
    m2 = model_from_config(m.config)
    m2.load_state_dict(m.state_dict())
    torch.testing.assert_close(m2(x), y)


def test_output_scale_multiplies_and_round_trips_through_a_result_file(tmp_path):
    from pinnsiren.io import load_model, write_result
    from pinnsiren.networks import OutputScale

    torch.manual_seed(0)
    inner = Siren(3, 1, hidden_features=16, hidden_layers=1)
    m = OutputScale(inner, 0.02)
    x = torch.rand(5, 3)
    torch.testing.assert_close(m(x), 0.02 * inner(x))
    write_result(tmp_path / "r.h5", kind="test", config={}, models=dict(model=m))
    m2 = load_model(tmp_path / "r.h5")
    assert isinstance(m2, OutputScale) and m2.scale == 0.02
    torch.testing.assert_close(m2(x), m(x))


def test_bad_arguments_are_refused_with_the_choices():
    with pytest.raises(ValueError, match="must be one of"):
        MLP(2, 1, activation="swish")
    with pytest.raises(ValueError, match="must be one of"):
        build_model("gelu", 2, 1)
    with pytest.raises(ValueError, match="hidden_features"):
        Siren(2, 1, hidden_features=0)


def test_public_api():
    """Every exported name resolves to the object its module defines and is named (as code) in docs/."""
    import importlib
    from pathlib import Path

    assert pinnsiren.__version__
    assert pinnsiren.Siren is Siren
    docs = "\n".join(p.read_text() for p in (Path(__file__).parents[1] / "docs").glob("*.md"))
    undocumented = []
    for name in pinnsiren.__all__:
        if name == "__version__":
            continue
        value = getattr(pinnsiren, name)
        home = importlib.import_module(f"pinnsiren.{pinnsiren._EXPORTS[name]}")
        assert getattr(home, name) is value, name
        assert name in getattr(home, "__all__", [name]), f"{name} is not in pinnsiren.{pinnsiren._EXPORTS[name]}.__all__"
        if f"`{name}`" not in docs:
            undocumented.append(name)
    assert not undocumented, f"exported but never named in docs/: {undocumented}"


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_every_activation_taylor_rule_matches_autograd(name):
    """Each registered activation's Taylor rule (s, s', s'') equals autograd of its function,
    so a new table entry is checked without writing a test."""
    act = ACTIVATIONS[name]
    z = torch.linspace(-4, 25, 401, dtype=torch.float64)
    z = z[(z.abs() > 1e-3) & ((z - 20).abs() > 1e-3)].requires_grad_(True)  # away from kinks
    v, d1, d2 = act.taylor(z)
    f = act.fn(z)
    (g1,) = torch.autograd.grad(f.sum(), z, create_graph=True)
    (g2,) = torch.autograd.grad(g1.sum(), z, allow_unused=True)
    g2 = torch.zeros_like(z) if g2 is None else g2
    assert torch.allclose(v, f, rtol=1e-12, atol=1e-12)
    assert torch.allclose(d1, g1, rtol=1e-10, atol=1e-12)
    assert torch.allclose(torch.zeros_like(z) if d2 is None else d2, g2, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_every_activation_builds_and_runs_on_the_jet(name):
    """An entry is all it takes: MLP, build_model and the derivative engine use it."""
    from pinnsiren.jet import derivatives, jet_supported

    assert name in ARCHITECTURES
    model = build_model(name, 2, 1, 8, 1).double()
    assert jet_supported(model) and model.activation == name
    x = torch.rand(9, 2, dtype=torch.float64)
    keys = [(0, (0, 0)), (0, (1, 0)), (0, (1, 1)), (0, (0, 2))]
    J = derivatives(model, x, keys, method="jet")
    A = derivatives(model, x, keys, method="autograd")
    for k in keys:
        assert torch.allclose(J[k], A[k], rtol=1e-9, atol=1e-11), k


def test_check_architectures_takes_one_name_or_several_and_names_the_choices():
    from pinnsiren.networks import check_architectures

    check_architectures("tanh")
    check_architectures(["siren", "relu-pe"])
    for bad in ("sirens", ["siren", "nope"]):
        with pytest.raises(ValueError, match=r"unknown architecture '(sirens|nope)'; must be one of \['siren', "):
            check_architectures(bad)
    with pytest.raises(ValueError, match="unknown architecture 'si'"):  # a string is one name, not its letters
        check_architectures("si")

