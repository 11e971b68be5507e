"""Plot prunelab's k-means vs scikit-learn: speed-up and wall time against sparsity, from bench_kmeans.py --json.

Usage: python benchmarks/plot_kmeans_speed.py kmeans.json benchmarks/kmeans_speed.png
"""
from __future__ import annotations

import json
import sys
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(src: str, out: str) -> None:
    rows = json.loads(open(src).read())["rows"]
    by_layer: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_layer[r["layer"].replace("model.", "").replace("layers.", "")].append(r)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for name, rs in sorted(by_layer.items()):
        rs.sort(key=lambda r: r["sparsity"])
        xs = [100 * r["sparsity"] for r in rs]
        ax1.plot(xs, [r["speedup"] for r in rs], marker="o", label=name)
        ax2.plot(xs, [r["prunelab_s"] for r in rs], marker="o", label=name)
        ax2.plot(xs, [r["sklearn_s"] for r in rs], marker="x", linestyle=":", color=ax2.lines[-1].get_color())
    ax1.axhline(20, color="grey", linestyle="--", linewidth=1)
    ax1.set(xlabel="sparsity (%)", ylabel="speed-up over scikit-learn (x)", title="prunelab k-means speed-up", yscale="log")
    ax2.set(xlabel="sparsity (%)", ylabel="wall time (s)", yscale="log",
            title="wall time: prunelab (o) vs scikit-learn (x, dotted)")
    ax1.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
