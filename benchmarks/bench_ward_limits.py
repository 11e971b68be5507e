"""Benchmark: where the CPU engine's size limits belong -- scipy's Ward vs the torch rounds, and the 1- vs
2-thread Gram product, at N = 1024 / 1280 (large-v3 attention) / 1536, on low-rank "weight-like" rows and on
i.i.d. random rows, K = 0.8 N and 0.5 N. Both Ward implementations must give the same inertia (printed).

    OMP_NUM_THREADS=2 python benchmarks/bench_ward_limits.py

Prints one line per case (median of 3 calls, one torch thread for Ward). A script printing figures, not a test.
"""
from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from prunelab.kmeans import gram as gm  # noqa: E402
from prunelab.kmeans import ward  # noqa: E402


def rows(N: int, D: int, kind: str) -> torch.Tensor:
    """[N, D] rows: i.i.d. Gaussian, or rank-64 with a decaying spectrum plus a little noise (like weights)."""
    if kind == "random":
        return torch.randn(N, D)
    U, V, s = torch.randn(N, 64), torch.randn(64, D), torch.logspace(0, -2, 64)
    return (U * s) @ V + 0.05 * torch.randn(N, D)


def main() -> None:
    torch.manual_seed(0)
    torch.set_num_threads(1)
    for N in (1024, 1280, 1536):
        D = N + 1
        for kind in ("weight-like", "random"):
            X = rows(N, D, kind)
            X = X - X.mean(0)
            G = X @ X.T
            for K in (int(0.8 * N), N // 2):
                ts, tr = [], []
                for _ in range(3):
                    t = time.perf_counter()
                    a = ward.ward_scipy(G, K)
                    ts.append(time.perf_counter() - t)
                    t = time.perf_counter()
                    b = ward.ward_rounds(G.unsqueeze(0), None, K)[0]
                    tr.append(time.perf_counter() - t)

                def inertia(lab: torch.Tensor) -> float:
                    c = torch.zeros(K, D).index_add_(0, lab, X) / torch.bincount(lab, minlength=K).unsqueeze(1)
                    return float(((X - c[lab]) ** 2).sum())

                print(f"N={N} {kind:11s} K={K}: scipy {statistics.median(ts) * 1e3:6.1f} ms  rounds "
                      f"{statistics.median(tr) * 1e3:6.1f} ms  inertia {inertia(a):.2f} / {inertia(b):.2f}", flush=True)
        X = rows(N, D, "weight-like").unsqueeze(0)
        for threads in (1, 2):
            torch.set_num_threads(threads)
            t = time.perf_counter()
            for _ in range(5):
                gm.gram(X)
            print(f"N={N} gram() with {threads} threads: {(time.perf_counter() - t) / 5 * 1e3:.1f} ms", flush=True)
        torch.set_num_threads(1)


if __name__ == "__main__":
    main()
