"""Fast, deterministic k-means in torch: the clustering engine behind channel-wise compression.

Each ``nn.Linear`` gives a matrix ``X`` of shape ``[N, D]`` (one row per output channel, the bias
appended as an extra column).  :func:`kmeans` clusters the rows into ``K`` groups; the compressed
layer replaces every row by its centroid.  :func:`kmeans_batched` does the same for ``B`` matrices of
the same shape at once (``x`` of shape ``[B, N, D]``), which amortises the per-step overhead of the
sequential k-means++ seeding and of Ward's merge rounds -- useful on a GPU, where launches dominate.

The algorithm is scikit-learn's ``KMeans(init="k-means++", n_init=1, algorithm="lloyd")``, with Ward's
agglomerative clustering as the start when ``K >= N / 2``.  One module per piece:

* :mod:`.api` -- :func:`kmeans`, :func:`kmeans_batched`, :class:`KMeansResult`: argument checks and the
  composition of the pieces below (which method, which initialisation, which Lloyd); determinism and
  precision;
* :mod:`.problem` -- :class:`~.problem.Problem`, the centred points, weights, norms and Gram matrices
  shared by the pieces;
* :mod:`.seeding` -- greedy k-means++ seeding;
* :mod:`.ward` -- Ward's agglomerative initialisation (torch merge rounds, or scipy's NN chain);
* :mod:`.lloyd` -- Lloyd iterations: batched, and incremental in kernel space on CPU;
* :mod:`.gram` -- Gram matrices ``X X^T`` (kernel space) and squared row norms;
* :mod:`.rowmin` -- row minima (numpy's vectorised ``argmin`` on CPU), for Ward and Lloyd;
* :mod:`.threads` -- torch thread control on CPU.

Tuning constants live in the module that reads them (``gram.SMALL_GRAM_MAX_N``, ``gram.GRAM_BLOCK``,
``ward.WARD_SCIPY_MAX_N``, ``ward.WARD_ROUNDS_MIN_N``, ``threads.SEQUENTIAL_THREADS``,
``seeding.DSQ_MAX_BYTES``, ``api.GRAM_MAX_BYTES`` / ``api.GRAM_MAX_N``).
Imports go one way (``api`` -> ``seeding`` / ``ward`` / ``lloyd`` -> ``problem`` -> ``gram`` ->
``threads``); scipy is imported inside the functions that use it.
"""
from __future__ import annotations

from .api import KMeansResult, kmeans, kmeans_batched

__all__ = ["KMeansResult", "kmeans", "kmeans_batched"]
