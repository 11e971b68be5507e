"""scikit-learn KMeans in a process of its own, for bench_kmeans.py.

Why a separate process: in a process that has loaded torch, scikit-learn's KMeans (its own OpenMP
runtime and OpenBLAS threads beside torch's) ran 2x slower at random moments on the 2-core VM
(2.7 s vs 6.2 s for the 2048 x 513 fc1 at 10%), which would flatter prunelab.  This worker never
imports torch.  Protocol: one request per stdin line, ``<path of a .npy matrix> <k> [<threads>]``;
one JSON reply per stdout line: ``{"time": s, "inertia": ..., "n_iter": ...}``.
"""
from __future__ import annotations

import json
import sys
import time

import numpy as np
from sklearn.cluster import KMeans
from threadpoolctl import threadpool_limits


def fit(x: np.ndarray, k: int) -> dict:
    t = time.perf_counter()
    m = KMeans(k, init="k-means++", n_init=1, max_iter=300, tol=1e-4, random_state=0).fit(x)
    return {"time": time.perf_counter() - t, "inertia": float(m.inertia_), "n_iter": int(m.n_iter_)}


def main() -> None:
    for line in sys.stdin:
        path, k, *threads = line.split()
        x = np.load(path)
        if threads:
            with threadpool_limits(limits=int(threads[0])):
                reply = fit(x, int(k))
        else:
            reply = fit(x, int(k))
        print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    main()
