"""k-means quality against scikit-learn's KMeans (same settings, n_init=1), on synthetic and real Whisper-base rows."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from kmeans_data import SEEDS, blobs, layer_matrix, ours_inertia, sk_inertia, weight_like

from prunelab.kmeans import kmeans

sklearn_cluster = pytest.importorskip("sklearn.cluster")


@pytest.mark.parametrize("centers,k", [(5, 5), (20, 20), (20, 60), (40, 10)])
def test_matches_sklearn_inertia_on_blobs(centers, k):
    # with few clusters on clustered data a single run lands in one of a few local minima (spread
    # ~10%), so compare the best of the runs, as KMeans(n_init=10) would
    x = blobs(centers=centers)
    ours, ref = ours_inertia(x, k, reduce=np.min), sk_inertia(x, k, reduce=np.min)
    assert ours <= ref * 1.01, (ours, ref)


@pytest.mark.parametrize("frac", [0.9, 0.7, 0.5])
def test_matches_sklearn_inertia_on_weight_like_matrix(frac):
    x = weight_like(n=256, d=65)
    k = int(frac * x.shape[0])
    ours, ref = ours_inertia(x, k), sk_inertia(x, k)
    assert ours <= ref * 1.01, (ours, ref)


def test_weighted_matches_sklearn():
    x = weight_like(n=400, d=33)
    w = torch.rand(400, generator=torch.Generator().manual_seed(2)) + 0.2
    k = 120
    ours = np.mean([kmeans(x, k, sample_weight=w, seed=s).inertia for s in SEEDS])
    ref = np.mean(
        [
            sklearn_cluster.KMeans(k, n_init=1, random_state=s).fit(x.numpy(), sample_weight=w.numpy()).inertia_
            for s in SEEDS
        ]
    )
    assert ours <= ref * 1.01, (ours, ref)


@pytest.mark.slow
def test_matches_sklearn_on_real_whisper_layer(whisper_base):
    fc1 = whisper_base.model.model.encoder.layers[0].fc1
    x = torch.cat([fc1.weight.detach(), fc1.bias.detach()[:, None]], 1).float()
    k = 1024  # 50 % sparsity; 10 % (Ward initialisation too, as here) is checked on three layers below, where
    # scikit-learn takes 4 s instead of its 9 s at K = 1843 on this fc1 (ours: 0.25 s either way)
    ours = kmeans(x, k).inertia
    ref = sklearn_cluster.KMeans(k, n_init=1, random_state=0).fit(x.numpy()).inertia_
    assert ours <= ref * 1.01, (k, ours, ref)


@pytest.mark.slow
def test_default_engine_matches_sklearn_on_real_whisper_layers(whisper_base):
    # the layers where single-seed k-means++ was up to 10% worse than scikit-learn (seed 0)
    m = whisper_base.model.model
    cases = [(m.decoder.layers[0].self_attn.k_proj, 0.3), (m.encoder.layers[0].fc2, 0.1),
             (m.encoder.layers[0].self_attn.q_proj, 0.1), (m.encoder.layers[0].self_attn.v_proj, 0.3)]
    for lin, sp in cases:
        x = layer_matrix(lin)
        k = round((1 - sp) * x.shape[0])
        ours = kmeans(x, k).inertia
        ref = sklearn_cluster.KMeans(k, n_init=1, random_state=0).fit(x.numpy()).inertia_
        assert ours <= ref * 1.01, (sp, ours, ref)
