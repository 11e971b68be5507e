"""The method registry: one registration makes a method usable by compress(), the CLI and the app."""
from dataclasses import dataclass

import pytest
import torch

from prunelab import cli
from prunelab.compression import RECOMMENDED, CompressionConfig, compress, method_choices, resolve_method
from prunelab.errors import PlanError
from prunelab.groups import ChannelGroups, FoldedUnit, MaskedWeight, UnitContext
from prunelab.methods import METHODS, HybridOptions, get_method, method_names, register_method
from prunelab.methods.registry import check_k


def test_builtin_methods_and_their_facts():
    assert method_names()[:3] == ["kmeans", "magnitude", "magnitude-unstructured"]  # paper, then baselines
    assert set(method_names()) == set(METHODS) == {"kmeans", "magnitude", "magnitude-unstructured", "kmeans-weighted",
                                                  "representative", "hybrid", "predictive", "lowrank-qk", "kmeans-fold"}
    assert sorted(n for n, m in METHODS.items() if m.folds) == ["kmeans-fold", "lowrank-qk", "predictive"]
    assert METHODS["kmeans"].origin == "paper" and "the paper" in METHODS["kmeans"].help
    assert {n for n, m in METHODS.items() if m.origin == "baseline"} == {"magnitude", "magnitude-unstructured"}
    assert {n for n, m in METHODS.items() if m.needs_importance} == {"kmeans-weighted", "representative", "hybrid"}
    assert [n for n, m in METHODS.items() if not m.structured] == ["magnitude-unstructured"]
    assert all(m.label and m.help for m in METHODS.values())


@pytest.mark.parametrize("name", sorted(n for n in METHODS if not METHODS[n].folds))
def test_every_layer_method_returns_its_declared_result_kind(name):
    torch.manual_seed(0)
    w, b = torch.randn(12, 5), torch.randn(12)
    result = get_method(name).apply(w, b, 6, importance=torch.rand(12) + 0.1)
    assert isinstance(result, ChannelGroups if METHODS[name].structured else MaskedWeight)
    dw, db = result.dense()
    assert dw.shape == w.shape and db.shape == b.shape
    rows, replaced = torch.cat([w, b[:, None]], 1), torch.cat([dw, db[:, None]], 1)
    assert result.distortion == pytest.approx(float(((rows - replaced) ** 2).sum()), rel=1e-4)


@pytest.mark.parametrize("name", sorted(n for n in METHODS if METHODS[n].folds))
def test_every_unit_method_folds_its_unit(name):
    torch.manual_seed(0)
    w, b = torch.randn(12, 5), torch.randn(12)
    with pytest.raises(PlanError, match="units='foldable'"):
        get_method(name).apply(w, b, 6)
    ffn = UnitContext("ffn-neuron", torch.randn(4, 12), torch.randn(4), torch.ones(5), torch.zeros(5))
    qk = UnitContext("qk-dim", torch.randn(12, 5), None, torch.ones(5), torch.zeros(5), heads=2)
    fits = [c for c in (ffn, qk) if not _refuses(name, w, b, c)]
    assert len(fits) == 1  # each unit-level method folds one kind of unit and refuses the others readably
    unit = get_method(name).apply(w, b, 6, context=fits[0])
    assert isinstance(unit, FoldedUnit) and unit.weight.shape == (6, 5)
    assert unit.partner_weight.shape == ((4, 6) if fits[0] is ffn else (6, 5))


def _refuses(name, w, b, context) -> bool:
    try:
        get_method(name).apply(w, b, 6, context=context)
    except PlanError:
        return True
    return False


def test_unknown_method_and_options_are_readable_errors():
    with pytest.raises(PlanError, match="Did you mean 'kmeans'"):
        get_method("kmean")
    with pytest.raises(PlanError, match="Unknown method 'nope'"):
        CompressionConfig(method="nope", sparsity=0.1)
    with pytest.raises(PlanError, match="has no option 'dead'.*dead_ratio, max_drop_fraction"):
        CompressionConfig(method="hybrid", sparsity=0.1, options={"dead": 1})
    with pytest.raises(PlanError, match="has no option"):
        CompressionConfig(method="kmeans", sparsity=0.1, options={"dead_ratio": 1})
    with pytest.raises(PlanError, match="max_drop_fraction"):
        CompressionConfig(method="hybrid", sparsity=0.1, options={"max_drop_fraction": 2.0})
    assert CompressionConfig(method="hybrid", sparsity=0.1, options={"dead_ratio": 0.2}).options == \
        HybridOptions(dead_ratio=0.2)


@pytest.mark.parametrize("k", [0, 13, -1, 2.5, True, "3"])
def test_impossible_cluster_counts(k):
    with pytest.raises(PlanError, match="between 1 and 12"):
        check_k(k, 12)
    with pytest.raises(PlanError, match="between 1 and 12"):
        get_method("magnitude").apply(torch.randn(12, 4), None, k)


def test_recommended_resolves_to_a_registered_setting():
    assert RECOMMENDED["method"] in METHODS and RECOMMENDED["allocate"] in ("uniform", "auto")
    assert resolve_method("recommended") == (RECOMMENDED["method"], RECOMMENDED["allocate"])
    assert resolve_method("recommended", "uniform") == (RECOMMENDED["method"], "uniform")
    assert resolve_method("magnitude") == ("magnitude", "uniform")
    cfg = CompressionConfig(method="recommended", sparsity=0.2)
    assert (cfg.method, cfg.allocate, cfg.preset) == (RECOMMENDED["method"], RECOMMENDED["allocate"],
                                                      RECOMMENDED["preset"])
    assert method_choices() == method_names() + ["recommended"]


@dataclass(frozen=True)
class _ScaleOptions:
    scale: float = 1.0


def test_a_registered_method_reaches_compress_and_the_cli(tiny_whisper, request):
    """Registering one function is all it takes: compress() runs it with its options, the CLI lists it."""
    calls = []

    def keep_first(weight, bias, k, *, seed, max_iter, scale):  # keeps the first K channels, scaled
        calls.append((tuple(weight.shape), k, scale))
        index = torch.arange(weight.shape[0]).clamp(max=k)
        return ChannelGroups(weight[:k].detach() * scale, None if bias is None else bias[:k].detach() * scale,
                             index, 0.0)

    register_method("keep-first", label="Keep first", help="keeps the first K channels", options=_ScaleOptions)(keep_first)
    request.addfinalizer(lambda: METHODS.pop("keep-first", None))
    m = METHODS["keep-first"]  # what the registry knows, with the defaults of everything not given
    assert (m.name, m.label, m.help, m.fn, m.options) == ("keep-first", "Keep first", "keeps the first K channels",
                                                         keep_first, _ScaleOptions)
    assert (m.structured, m.needs_importance, m.origin, m.folds) == (True, False, "data-free", False)
    assert get_method("keep-first") is m and method_names()[-1] == "keep-first"
    small = compress(tiny_whisper, CompressionConfig(method="keep-first", sparsity=0.5, preset="encoder-fc1",
                                                     options={"scale": 2.0}, fold=False))
    assert calls and all(scale == 2.0 for *_, scale in calls)
    fc1 = next(name for name in small.compression["plan"])
    orig = tiny_whisper.model.get_submodule(fc1).weight
    got = small.model.get_submodule(fc1)
    torch.testing.assert_close(got.weight, orig[: got.k] * 2.0)
    assert small.compression["options"] == {"scale": 2.0}
    eval_parser = cli.build_parser()._subparsers._group_actions[0].choices["eval"]
    help_text = " ".join(eval_parser.format_help().split())
    assert "keep-first = keeps the first K channels" in help_text
    with pytest.raises(ValueError, match="registered twice"):
        register_method("keep-first", label="x", help="x")(keep_first)
