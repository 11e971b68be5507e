"""The predictive fold: data-free compensation of removed FFN neurons under a Gaussian stand-in."""
import pytest
import torch

from prunelab import CompressionConfig, compress, find_layers
from prunelab.errors import PlanError
from prunelab.groups import UnitContext
from prunelab.methods import get_method
from prunelab.methods.predictive import sample_activations


def _ffn(c=24, d=10, o=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    w1, b1 = torch.randn(c, d, generator=g), 0.1 * torch.randn(c, generator=g)
    w2, b2 = torch.randn(o, c, generator=g), torch.randn(o, generator=g)
    gamma, beta = 1 + 0.2 * torch.randn(d, generator=g), 0.1 * torch.randn(d, generator=g)
    return w1, b1, w2, b2, gamma, beta


def _run(w1, b1, w2, b2, x):
    return torch.nn.functional.gelu(x @ w1.T + b1) @ w2.T + b2


def _fold(w1, b1, w2, b2, gamma, beta, k, **options):
    ctx = UnitContext("ffn-neuron", w2, b2, gamma, beta)
    return get_method("predictive").apply(w1, b1, k, context=ctx, options=options)


def test_duplicate_neurons_fold_exactly_for_any_input():
    w1, b1, w2, b2, gamma, beta = _ffn()
    w1[5], b1[5] = w1[17], b1[17]  # neurons 5 and 17 are the same neuron
    w1[9], b1[9] = w1[2], b1[2]
    f = _fold(w1, b1, w2, b2, gamma, beta, k=22)
    x = 3 * torch.randn(50, 10)  # far from the stand-in: exactness must not depend on it
    torch.testing.assert_close(_run(f.weight, f.bias, f.partner_weight, f.partner_bias, x), _run(w1, b1, w2, b2, x),
                               rtol=1e-4, atol=1e-4)
    assert f.weight.shape == (22, 10) and f.partner_weight.shape == (6, 22)


def test_a_dead_neuron_goes_first_and_costs_nothing():
    w1, b1, w2, b2, gamma, beta = _ffn()
    b1[7] = -50.0  # always off: GELU(z) = 0 for every input the stand-in can produce
    f = _fold(w1, b1, w2, b2, gamma, beta, k=23)
    assert not any(torch.equal(row, w1[7]) for row in f.weight)
    x = torch.randn(40, 10) * gamma + beta
    torch.testing.assert_close(_run(f.weight, f.bias, f.partner_weight, f.partner_bias, x), _run(w1, b1, w2, b2, x),
                               rtol=1e-5, atol=1e-5)
    assert f.distortion == pytest.approx(0.0, abs=1e-8)


def test_compensation_beats_plain_dropping_on_the_stand_in():
    """Expected output error under the stand-in: merge+mean < mean only < the same neurons dropped bare."""
    w1, b1, w2, b2, gamma, beta = _ffn(c=40, seed=3)
    h = sample_activations(w1, b1, gamma, beta, n_samples=8192, seed=11).float()  # other draws than the fold's
    ref = h @ w2.T + b2

    def err(f):
        z = sample_activations(f.weight, f.bias, gamma, beta, n_samples=8192, seed=11).float()
        return float(((z @ f.partner_weight.T + f.partner_bias - ref) ** 2).mean())

    merged = _fold(w1, b1, w2, b2, gamma, beta, k=28)
    mean_only = _fold(w1, b1, w2, b2, gamma, beta, k=28, merge=False)
    kept = torch.tensor([next(i for i in range(40) if torch.equal(w1[i], r)) for r in mean_only.weight])
    bare = type(mean_only)(mean_only.weight, mean_only.bias, w2[:, kept], b2, 0.0)
    assert err(merged) < err(mean_only) < err(bare)


def test_through_compress_on_a_model(tiny_whisper, tmp_path):
    small = compress(tiny_whisper, CompressionConfig(method="predictive", sparsity=0.25, preset="encoder-fc1",
                                                     units="foldable"))
    fc1s = [l for l in find_layers(tiny_whisper.model) if l.kind == "fc1" and l.part == "encoder"]
    for l in fc1s:
        assert small.model.get_submodule(l.name).out_features == l.channels * 3 // 4
        assert small.model.get_submodule(l.partner).in_features == l.channels * 3 // 4
    from prunelab.models import load_compressed, save_compressed

    back = load_compressed(save_compressed(small, tmp_path / "p"))
    x = torch.randn(1, 80, 3000)
    with torch.no_grad():
        torch.testing.assert_close(back.model.model.encoder(x).last_hidden_state,
                                   small.model.model.encoder(x).last_hidden_state)
    with pytest.raises(PlanError, match="FFN neurons"):
        compress(tiny_whisper, CompressionConfig(method="predictive", sparsity=0.25, preset="attention-values",
                                                 units="foldable"))


def test_ridge_refit_reduces_the_stand_in_error_and_a_strong_pull_keeps_the_merge():
    """ridge > 0: fc2 refitted jointly on the stand-in; the stand-in output error can only go down (the merge
    is one of the candidates the least squares considers), the mean output is kept, a huge pull changes nothing."""
    w1, b1, w2, b2, gamma, beta = _ffn()
    merged = _fold(w1, b1, w2, b2, gamma, beta, k=12)
    refit = _fold(w1, b1, w2, b2, gamma, beta, k=12, ridge=1e-3)
    pulled = _fold(w1, b1, w2, b2, gamma, beta, k=12, ridge=1e7)
    x = gamma * torch.randn(4096, 10, generator=torch.Generator().manual_seed(5)) + beta  # fresh stand-in draws
    ref = _run(w1, b1, w2, b2, x)
    err = lambda f: float(((_run(f.weight, f.bias, f.partner_weight, f.partner_bias, x) - ref) ** 2).mean())  # noqa: E731
    assert err(refit) < 0.8 * err(merged)
    torch.testing.assert_close(refit.weight, merged.weight)  # fc1 keeps the same neurons
    torch.testing.assert_close(pulled.partner_weight, merged.partner_weight, atol=1e-4, rtol=1e-4)
    out_mean = lambda f: _run(f.weight, f.bias, f.partner_weight, f.partner_bias, x).mean(0)  # noqa: E731
    torch.testing.assert_close(out_mean(refit), ref.mean(0), atol=0.05, rtol=0.05)
    with pytest.raises(PlanError, match="ridge >= 0"):
        _fold(w1, b1, w2, b2, gamma, beta, k=12, ridge=-0.5)
