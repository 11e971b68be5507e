"""Pinned k-means partitions on real Whisper-base layers: refactors of prunelab.kmeans must not change them.

Each case clusters one layer's rows the way ``prunelab.methods.kmeans_channels`` does (weight rows,
bias appended as the last column, float32; ``kmeans(rows, K, seed=0, max_iter=100)`` with every other
argument at its default) at ``K = round(C * (1 - sparsity))`` and compares the sha256 of the labels
(int64 bytes) and the inertia with values recorded from the engine as it was before the split of
``prunelab/kmeans.py`` into a package (commit f215399).  A few extra cases pin the other code paths:
k-means++ seeding (``init="k-means++"``, and ``K < C/2`` where ``init="auto"`` picks it), weighted
Ward/Lloyd and the direct (non-Gram) Lloyd.

The sha256 of each input matrix is pinned too, so that a changed model (or a changed way of reading
it) fails as such instead of as a changed partition.

The bits of a float32 k-means are the BLAS's and the CPU's: another machine may round a distance in the last
bit and move a point that lies on the border of two clusters (the recorded labels held on an AVX-512 Intel
with MKL and on an AMD EPYC without AVX-512, with one and two torch threads).  So the labels themselves are
kept too (``partitions.npz``, int16, whose sha256 are the pinned ones): labels that differ from the recorded
ones must be that, at most :data:`ROUNDING_MOVES` of the points moved with the inertia unchanged to 1e-6; a
changed engine (another seeding, tie rule or numbering) moves most of them.  The model comes from the ``whisper_base``
fixture: a loader that fails makes these tests error, never skip.

To re-record (only when a partition change is intended and explained)::

    python tests/kmeans/test_kmeans_partitions.py      # prints the PINNED table, writes partitions.npz
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
from kmeans_data import layer_rows

from prunelab.kmeans import kmeans

#: the recorded labels of each case (int16), the ones PINNED's label hashes are of
LABELS = Path(__file__).with_name("partitions.npz")

#: labels may differ from the recorded ones on at most this share of the points (rounding on another machine)
ROUNDING_MOVES = 0.01

# (layer, sparsity, extra kmeans arguments, weighted) -> recorded below
CASES: list[tuple[str, float, tuple[tuple[str, str], ...], bool]] = [
    (layer, s, (), False)
    for layer in (
        "model.encoder.layers.0.fc1",
        "model.encoder.layers.0.fc2",
        "model.encoder.layers.0.self_attn.q_proj",
        "model.decoder.layers.0.self_attn.v_proj",
        "model.decoder.layers.0.fc2",
    )
    for s in (0.1, 0.3, 0.5)
] + [
    ("model.encoder.layers.0.fc2", 0.5, (("init", "k-means++"),), False),
    ("model.encoder.layers.0.fc1", 0.5, (("init", "k-means++"),), False),
    ("model.decoder.layers.0.self_attn.v_proj", 0.8, (), False),  # auto -> k-means++
    ("model.encoder.layers.0.fc1", 0.3, (), True),  # weighted: torch Ward rounds + weighted Lloyd
    ("model.encoder.layers.0.fc2", 0.3, (), True),
    ("model.encoder.layers.0.fc2", 0.3, (("method", "direct"),), False),
    ("model.decoder.layers.0.fc2", 0.8, (("method", "direct"),), False),
]

#: Whisper-base shapes of the rows (C, in + 1 when the layer has a bias).
SHAPES = {
    "model.encoder.layers.0.fc1": (2048, 513),
    "model.encoder.layers.0.fc2": (512, 2049),
    "model.encoder.layers.0.self_attn.q_proj": (512, 513),
    "model.decoder.layers.0.self_attn.v_proj": (512, 513),
    "model.decoder.layers.0.fc2": (512, 2049),
}

# fmt: off
#: case id -> (sha256 of the float32 input rows, sha256 of the int64 labels, inertia)
PINNED: dict[str, tuple[str, str, float]] = {
    "encoder.layers.0.fc1@10%": (
        "3e4343435c618d4ca621cefa93f144e016dd4a1ebf80e66251ad7085a552cba1",
        "84624881365ca91abc0586cab90116aaa6ef3cdccc525af17bad19d88c99ce37", 28.65744972229004),
    "encoder.layers.0.fc1@30%": (
        "3e4343435c618d4ca621cefa93f144e016dd4a1ebf80e66251ad7085a552cba1",
        "485dddf5a0889919f77a3846588f5e9d2c881e9036f674e46ef8e61720f6cccb", 103.46064758300781),
    "encoder.layers.0.fc1@50%": (
        "3e4343435c618d4ca621cefa93f144e016dd4a1ebf80e66251ad7085a552cba1",
        "2995c8fee4258597e5ea131907a5a78b34a89022d1eafdff4f6a9663e401a70d", 193.67135620117188),
    "encoder.layers.0.fc2@10%": (
        "f775558402b6b8e4b530659315c5a87799a6b82ee1c03e372b3370ed85f13ee9",
        "fad5bd96255e7508a42e5f057865be0a6d8d8178dec40981353c388dc796e777", 8.657819747924805),
    "encoder.layers.0.fc2@30%": (
        "f775558402b6b8e4b530659315c5a87799a6b82ee1c03e372b3370ed85f13ee9",
        "9e315389b1a38b6956d495ebb5e9036f4d792546d4ceb4f61f89f1ec06c92aec", 78.6749267578125),
    "encoder.layers.0.fc2@50%": (
        "f775558402b6b8e4b530659315c5a87799a6b82ee1c03e372b3370ed85f13ee9",
        "db3486876bcbc128d9bf1749a9e3193b1490b95ce701f0c1ad1e5afa49bcb93a", 174.58828735351562),
    "encoder.layers.0.self_attn.q_proj@10%": (
        "c8c0d9086a4c63028f1d9f45e5b057606e362c5aca48001d8c35c709cf61a05b",
        "3f257d01fdbb38bbccb8aba9a90c448bd42a0e946df1dc76daf689b9a74c6fae", 0.6794452667236328),
    "encoder.layers.0.self_attn.q_proj@30%": (
        "c8c0d9086a4c63028f1d9f45e5b057606e362c5aca48001d8c35c709cf61a05b",
        "82ac7ed2d3f53abf4577a4ac4022403db015e28e8903fa79c23747f19e08e97a", 9.402008056640625),
    "encoder.layers.0.self_attn.q_proj@50%": (
        "c8c0d9086a4c63028f1d9f45e5b057606e362c5aca48001d8c35c709cf61a05b",
        "dafd14e89424078b1ea32674843cd95403450e3abb65a5798e01c3741246ebec", 27.56245994567871),
    "decoder.layers.0.self_attn.v_proj@10%": (
        "bef098d3cd03d87a9219efaed0bc5e78ea13a5062247d8bc752c945a2af1541a",
        "b9d86528f54fdebc71e7a48a90811299360de9419d10989ba2c86f53e502f679", 1.0075922012329102),
    "decoder.layers.0.self_attn.v_proj@30%": (
        "bef098d3cd03d87a9219efaed0bc5e78ea13a5062247d8bc752c945a2af1541a",
        "6f89ca9a59b3630980820b596b8c5950dc4e4dc43e285ffeb30846d5e87b16fc", 16.236902236938477),
    "decoder.layers.0.self_attn.v_proj@50%": (
        "bef098d3cd03d87a9219efaed0bc5e78ea13a5062247d8bc752c945a2af1541a",
        "af15b36ffe5ac0247ee7901df02976892ce4ced0552b405db2dda0cf4db05121", 35.22232437133789),
    "decoder.layers.0.fc2@10%": (
        "f271b3b20b6b6ea4e698224fca6fd0b69f90a1e119edb5c7e454f6ec914e338a",
        "d6e3831791efb84cd0e560c0ad3304c0225ebfdaf51cc540b91616932d0f5fb8", 29.26660919189453),
    "decoder.layers.0.fc2@30%": (
        "f271b3b20b6b6ea4e698224fca6fd0b69f90a1e119edb5c7e454f6ec914e338a",
        "b7c161ba2197406f6b01edda560476c353b023a824760cc86e811d55572dbc9f", 109.87042999267578),
    "decoder.layers.0.fc2@50%": (
        "f271b3b20b6b6ea4e698224fca6fd0b69f90a1e119edb5c7e454f6ec914e338a",
        "a0159f8f1fe7576375b25ab6c1f2ea22c6e90b9607d4faaa0d27b31dc852257f", 198.67271423339844),
    "encoder.layers.0.fc2@50%-init=k-means++": (
        "f775558402b6b8e4b530659315c5a87799a6b82ee1c03e372b3370ed85f13ee9",
        "4f868e8ebed672ab899a3686566bfb1ce43d21a931d51f5c1e36187006bebf59", 194.33090209960938),
    "encoder.layers.0.fc1@50%-init=k-means++": (
        "3e4343435c618d4ca621cefa93f144e016dd4a1ebf80e66251ad7085a552cba1",
        "58717a801a061530fe4f65410ac3eb3a299dd872568a585f6a5e2621183fdc30", 209.79551696777344),
    "decoder.layers.0.self_attn.v_proj@80%": (
        "bef098d3cd03d87a9219efaed0bc5e78ea13a5062247d8bc752c945a2af1541a",
        "c122fcdeb4bf9119bdc03016fd6fe67065da3473c226e1815dfa0122d5243555", 71.84890747070312),
    "encoder.layers.0.fc1@30%-weighted": (
        "3e4343435c618d4ca621cefa93f144e016dd4a1ebf80e66251ad7085a552cba1",
        "39a890cf926d6ac642c679b08eaf8227252669d00ba05cbd8c924265dc73ef10", 35.70591354370117),
    "encoder.layers.0.fc2@30%-weighted": (
        "f775558402b6b8e4b530659315c5a87799a6b82ee1c03e372b3370ed85f13ee9",
        "79ed4460efea9d9be7007c6cb9a741038189f2c39f078023c72e53518710c79d", 25.927236557006836),
    "encoder.layers.0.fc2@30%-method=direct": (
        "f775558402b6b8e4b530659315c5a87799a6b82ee1c03e372b3370ed85f13ee9",
        "9e315389b1a38b6956d495ebb5e9036f4d792546d4ceb4f61f89f1ec06c92aec", 78.6749267578125),
    "decoder.layers.0.fc2@80%-method=direct": (
        "f271b3b20b6b6ea4e698224fca6fd0b69f90a1e119edb5c7e454f6ec914e338a",
        "1f9e27e9722e4d2900a041e361246fbf70a156c21787cfd10ecb7b74c0efc09d", 372.23828125),
}
# fmt: on


def case_id(layer: str, sparsity: float, extra: tuple[tuple[str, str], ...], weighted: bool) -> str:
    tail = "".join(f"-{k}={v}" for k, v in extra) + ("-weighted" if weighted else "")
    return f"{layer.removeprefix('model.')}@{sparsity:.0%}{tail}"


def sample_weights(n: int) -> torch.Tensor:
    """Deterministic positive sample weights [n] for the weighted cases (spread over two orders of magnitude)."""
    return torch.logspace(-1, 1, n, dtype=torch.float32).roll(n // 3)


def sha256(t: torch.Tensor) -> str:
    return hashlib.sha256(t.detach().cpu().contiguous().numpy().tobytes()).hexdigest()


def cluster_case(modules: dict, layer: str, sparsity: float, extra, weighted: bool):
    """The case's rows and its k-means result."""
    rows = layer_rows(modules[layer])
    c = rows.shape[0]
    k = round(c * (1 - sparsity))
    w = sample_weights(c) if weighted else None
    return rows, kmeans(rows, k, seed=0, max_iter=100, sample_weight=w, **dict(extra))


@pytest.fixture(scope="module")
def base_modules(whisper_base) -> dict:
    return dict(whisper_base.model.named_modules())


def recorded_labels() -> dict[str, torch.Tensor]:
    with np.load(LABELS) as f:
        return {k: torch.from_numpy(f[k].astype(np.int64)) for k in f.files}


def test_pinned_table_is_complete():
    assert sorted(PINNED) == sorted(case_id(*c) for c in CASES)
    labels = recorded_labels()
    assert sorted(labels) == sorted(PINNED)
    for cid, (_, want_labels, _) in PINNED.items():
        assert sha256(labels[cid]) == want_labels, f"{LABELS.name} does not hold the recorded labels of {cid}"


@pytest.mark.slow
@pytest.mark.parametrize("layer,sparsity,extra,weighted", CASES, ids=[case_id(*c) for c in CASES])
def test_partition_unchanged(base_modules, layer, sparsity, extra, weighted):
    assert layer in base_modules, f"{layer} not in the loaded model: the loader does not give Whisper-base"
    rows = layer_rows(base_modules[layer])
    assert tuple(rows.shape) == SHAPES[layer]
    want_rows, want_labels, want_inertia = PINNED[case_id(layer, sparsity, extra, weighted)]
    rows, res = cluster_case(base_modules, layer, sparsity, extra, weighted)
    assert sha256(rows) == want_rows, "the layer's weights differ from the recorded ones: not the same model"
    got_inertia = float(res.inertia)
    assert got_inertia == pytest.approx(want_inertia, rel=1e-6), f"inertia {got_inertia!r}, recorded {want_inertia!r}"
    labels = res.labels.to(torch.int64)
    if sha256(labels) != want_labels:  # the same labels, or a few border points moved by rounding
        moved = float((labels != recorded_labels()[case_id(layer, sparsity, extra, weighted)]).double().mean())
        assert moved <= ROUNDING_MOVES, f"partition changed: {moved:.1%} of the points have other labels"


if __name__ == "__main__":  # record: print the PINNED table from the engine as it is now
    from prunelab.models import load_model

    modules = dict(load_model("bundled:whisper-base").model.named_modules())
    print(f"torch threads: {torch.get_num_threads()}")
    labels = {}
    for case in CASES:
        rows, res = cluster_case(modules, *case)
        labels[case_id(*case)] = res.labels.to(torch.int16).numpy()
        r, lab, inertia = sha256(rows), sha256(res.labels.to(torch.int64)), float(res.inertia)
        print(f'    "{case_id(*case)}": (\n        "{r}",\n        "{lab}", {inertia!r}),')
    np.savez_compressed(LABELS, **labels)  # the labels those hashes are of
    print(f"wrote {LABELS}")
