"""One way through ``compress(model, config)``: the config is checked once, turned into a plan once (by one
strategy), then the plan is applied; no step goes back to an earlier one, not even the output allocation,
which compresses every group it measures."""
from __future__ import annotations

import importlib
import sys
from collections import Counter

import pytest

from prunelab import CompressionConfig, compress
from prunelab.compression import ALLOCATIONS, Plan, find_layers
from prunelab.compression import plan as plan_module
from prunelab.compression import resolve
from prunelab.errors import PlanError

compress_module = importlib.import_module("prunelab.compression.compress")  # (the package's `compress` is the function)

WAYS = {  # how a config names its K -> the config (tiny Whisper: 2 + 2 blocks, 4 heads)
    "plan": dict(method="kmeans", plan=Plan({"model.encoder.layers.0.fc1": 100, "model.decoder.layers.1.fc1": 200})),
    "uniform": dict(method="kmeans", sparsity=0.3, preset="ffn"),
    "auto": dict(method="kmeans", sparsity=0.3, preset="foldable", units="foldable", allocate="auto"),
    "output": dict(method="kmeans", sparsity=0.2, preset="encoder-fc1", units="foldable", allocate="output"),
}


def _counting(calls: Counter, name: str, fn):
    def counted(*args, **kwargs):
        calls[name] += 1
        return fn(*args, **kwargs)
    return counted


@pytest.mark.parametrize("way", list(WAYS))
def test_a_config_crosses_planning_once(tiny_whisper, monkeypatch, way):
    """Per compress(): one check against the model, one resolution, one strategy (that of the config's allocation,
    none for a given plan), and the config is never checked again (it was, when it was made). Before, the output
    allocation compressed each measured group with compress(), so a config went through planning 1 + 8 times."""
    config = CompressionConfig(**WAYS[way])
    calls: Counter = Counter()
    monkeypatch.setattr(compress_module, "check_fits", _counting(calls, "check_fits", compress_module.check_fits))
    monkeypatch.setattr(compress_module, "resolve_plan", _counting(calls, "resolve_plan", resolve.resolve_plan))
    for name, strategy in list(resolve.STRATEGIES.items()):
        monkeypatch.setitem(resolve.STRATEGIES, name, _counting(calls, f"strategy {name}", strategy))
    monkeypatch.setattr(CompressionConfig, "__post_init__",
                        _counting(calls, "config checked", CompressionConfig.__post_init__))
    small = compress(tiny_whisper, config)
    expected = {"check_fits": 1, "resolve_plan": 1} | ({} if way == "plan" else {f"strategy {way}": 1})
    assert dict(calls) == expected
    assert small.compression["allocate"] == ("plan" if way == "plan" else way)


def _entries_into(module, fn) -> Counter:
    """Calls into functions of ``module`` made from code outside it while ``fn()`` runs (this thread)."""
    path, calls = module.__file__, Counter()

    def profile(frame, event, arg):
        if event == "call" and frame.f_code.co_filename == path and frame.f_back is not None \
                and frame.f_back.f_code.co_filename != path:
            calls[frame.f_code.co_qualname] += 1

    previous = sys.getprofile()
    sys.setprofile(profile)
    try:
        fn()
    finally:
        sys.setprofile(previous)
    return calls


@pytest.mark.parametrize("way", ["plan", "uniform"])
def test_compress_enters_plan_py_once_per_question(tiny_whisper, way):
    """What compress() asks plan.py, it asks once: which presets select the model's layers (the check), the plan
    (resolution), which layers it compresses and how much (assembly); the config's own checks (preset, units,
    sparsity) are not asked again. Before: check_preset, check_sparsity and presets_selecting from the check, then
    the plan, seven entries for a uniform config, two of them config checks made a second time."""
    config = CompressionConfig(**WAYS[way])
    entries = _entries_into(plan_module, lambda: compress(tiny_whisper, config, threads=1))
    assert entries and max(entries.values()) == 1, entries
    assert not {"check_preset", "check_sparsity", "check_units"} & set(entries), entries
    assert ("Plan.from_sparsity" in entries) == (way == "uniform")


def test_every_allocation_has_one_strategy():
    assert tuple(resolve.STRATEGIES) == ALLOCATIONS


@pytest.mark.parametrize("way", list(WAYS))
def test_the_resolved_plan_is_the_plan_compress_applies(tiny_whisper, way):
    config = CompressionConfig(**WAYS[way])
    layers = find_layers(tiny_whisper.model)
    plan = resolve.resolve_plan(tiny_whisper, config, layers)
    assert plan.clusters and compress(tiny_whisper, config).compression["plan"] == plan.clusters
    if way == "plan":
        assert plan is config.plan


def test_what_needs_only_the_layers_resolves_without_the_model(tiny_whisper):
    layers = find_layers(tiny_whisper.model)
    uniform = CompressionConfig(method="kmeans", sparsity=0.3, preset="ffn")
    assert resolve.resolve_plan(None, uniform, layers) == Plan.from_sparsity(layers, 0.3, "ffn")
    with pytest.raises(PlanError, match="needs the model"):
        resolve.resolve_plan(None, CompressionConfig(method="kmeans", sparsity=0.3, allocate="auto"), layers)
    with pytest.raises(PlanError, match="sparsity or a plan"):
        resolve.resolve_plan(None, CompressionConfig(method="kmeans"), layers)


def test_a_bad_sparsity_is_refused_when_the_config_is_made():
    for bad in (-0.1, 1.0, float("nan"), "0.2"):
        with pytest.raises(PlanError, match="Sparsity must be a number"):
            CompressionConfig(method="kmeans", sparsity=bad)
    CompressionConfig(method="kmeans", sparsity=5, plan=Plan({"x": 1}))  # a plan gives the K: the sparsity is unread
