"""compress_(model, config): the same compressed model as compress(), built in place, originals dropped early."""
from __future__ import annotations

import copy
import gc
import weakref

import pytest
import torch

from prunelab import CompressionConfig, compress, compress_, find_layers, load_model
from prunelab.errors import PlanError

CONFIGS = [
    CompressionConfig(method="kmeans", sparsity=0.4),  # every layer, channels; fc1/fc2 folded
    CompressionConfig(method="kmeans-weighted", sparsity=0.4),  # importance: q reads k, k reads q, fc1 reads fc2
    CompressionConfig(method="representative", sparsity=0.3, preset="attention"),
    CompressionConfig(method="predictive", sparsity=0.3, preset="encoder-fc1", units="foldable"),
    CompressionConfig(method="kmeans", sparsity=0.5, preset="foldable", units="foldable"),  # v and q/k per head
    CompressionConfig(method="lowrank-qk", sparsity=0.5, preset="attention-qk", units="foldable"),
    CompressionConfig(method="magnitude-unstructured", sparsity=0.5),
]


def _same_model(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key
    assert [type(m).__name__ for m in a.modules()] == [type(m).__name__ for m in b.modules()]


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"{c.method}-{c.preset}-{c.units}")
def test_in_place_gives_the_same_model_as_the_copy(tiny_whisper, config, threads):
    expected = compress(tiny_whisper, config, threads=threads)
    subject = copy.deepcopy(tiny_whisper)
    assert compress_(subject, config, threads=threads) is None  # in place, like torchao's quantize_
    _same_model(subject.model, expected.model)
    assert subject.compression == expected.compression
    feats = torch.randn(1, tiny_whisper.model.config.num_mel_bins, 2 * tiny_whisper.model.config.max_source_positions,
                        generator=torch.Generator().manual_seed(0))
    ids = torch.tensor([[tiny_whisper.model.config.decoder_start_token_id, 11, 12]])
    with torch.no_grad():
        assert torch.equal(subject.model(feats, decoder_input_ids=ids).logits,
                           expected.model(feats, decoder_input_ids=ids).logits)


def test_in_place_on_a_ctc_model_and_never_twice(tiny_ctc):
    expected = compress(tiny_ctc, CompressionConfig(method="kmeans-weighted", sparsity=0.3))
    subject = copy.deepcopy(tiny_ctc)
    compress_(subject, CompressionConfig(method="kmeans-weighted", sparsity=0.3))
    _same_model(subject.model, expected.model)
    assert 0 < subject.compression["params_removed"] == expected.compression["params_removed"]
    with pytest.raises(PlanError, match="already compressed"):
        compress_(subject, CompressionConfig(method="kmeans", sparsity=0.3))


def test_the_vocabulary_is_trimmed_in_place_too():
    whisper = load_model("tiny:whisper")
    config = CompressionConfig(method="kmeans", sparsity=0.2, preset="encoder-fc1", vocabulary="ascii")
    expected = compress(whisper, config)
    compress_(whisper, config)
    _same_model(whisper.model, expected.model)
    assert whisper.compression["vocabulary"] == expected.compression["vocabulary"]
    assert whisper.compression["params_removed"] > 0.05


def test_each_original_layer_is_dropped_once_no_later_layer_reads_it(tiny_whisper):
    """With one thread, when layer i starts, exactly the layers whose readers (itself, and the layers whose partner
    it is: k_proj is read by q_proj's importance, which comes after it) all came before i are replaced, their
    original weights freed."""
    layers = find_layers(tiny_whisper.model)
    originals = {l.name: weakref.ref(tiny_whisper.model.get_submodule(l.name).weight) for l in layers}
    position = {l.name: i for i, l in enumerate(layers)}  # uniform: every layer, in module order
    last_reader = {l.name: max([position[l.name]] + [position[r.name] for r in layers if r.partner == l.name])
                   for l in layers}
    assert any(last_reader[n] > position[n] for n in last_reader)  # (some layer does wait for a later reader)
    freed_at_start: list[set[str]] = []

    def progress(i: int, n: int, msg: str) -> None:
        freed = {name for name, ref in originals.items() if ref() is None}
        if freed != {n for n, last in last_reader.items() if last < i}:  # (only a cycle can keep one alive:
            gc.collect()  # collected before they are counted, which takes a second per call with torch loaded)
            freed = {name for name, ref in originals.items() if ref() is None}
        freed_at_start.append(freed)

    compress_(tiny_whisper, CompressionConfig(method="kmeans-weighted", sparsity=0.4), progress=progress, threads=1)
    for i in range(len(layers)):
        assert freed_at_start[i] == {n for n, last in last_reader.items() if last < i}, i
    gc.collect()
    assert all(ref() is None for ref in originals.values())  # at the end no original weight is left anywhere
