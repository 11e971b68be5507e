"""Screen of the data-free compensation switches (tune clips only): which switch moves the model's output least.

For each setting, encoder-fc1 at one sparsity (default 20 %) is compressed and scored by the mean KL divergence of
the next-token distributions, teacher-forced along the ORIGINAL model's own transcripts of the first N tune clips
(``prunelab.compression.output_allocation.OutputProbe`` given real clips). The KL is a proxy: in the research log
(benchmarks/study/research_notes.md) it ranked predictive < k-means < magnitude as the tune WER did. Clips are
only scored, never used to compress. Prints one line per setting, sorted by KL, then the best switch combination.

    python benchmarks/compensation_screen.py [--sparsity 0.2] [--clips 8] [--only ridge]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from prunelab import CompressionConfig, compress, load_model  # noqa: E402
from prunelab.compression.output_allocation import OutputProbe  # noqa: E402
from prunelab.speech.audio import load_audio  # noqa: E402
from prunelab.speech.data import load_eval_set  # noqa: E402

SETTINGS = {
    "kmeans (paper), plain fold": ("kmeans-fold", {}),
    "+ fc1+fc2 features": ("kmeans-fold", {"features": "fc1+fc2"}),
    "+ LayerNorm-gain distance": ("kmeans-fold", {"ln_gain": True}),
    "+ scale-aware merge": ("kmeans-fold", {"merge": "scale"}),
    "+ variance-preserving centroid": ("kmeans-fold", {"variance": True}),
    "+ stand-in mean shift": ("kmeans-fold", {"mean_shift": True}),
    "+ variance + mean shift": ("kmeans-fold", {"variance": True, "mean_shift": True}),
    "+ stand-in ridge refit (mu 0.1)": ("kmeans-fold", {"ridge": 0.1}),
    "+ stand-in ridge refit (mu 1)": ("kmeans-fold", {"ridge": 1.0}),
    "+ stand-in ridge refit (mu 3)": ("kmeans-fold", {"ridge": 3.0}),
    "+ stand-in ridge refit (mu 10)": ("kmeans-fold", {"ridge": 10.0}),
    "+ all switches": ("kmeans-fold", {"features": "fc1+fc2", "ln_gain": True, "merge": "scale", "variance": True,
                                       "mean_shift": True}),
    "predictive (drop + merge)": ("predictive", {}),
    "predictive, no merge (drop + mean)": ("predictive", {"merge": False}),
    "predictive + ridge refit (mu 0.3)": ("predictive", {"ridge": 0.3}),
    "predictive + ridge refit (mu 1)": ("predictive", {"ridge": 1.0}),
    "predictive + ridge refit (mu 3)": ("predictive", {"ridge": 3.0}),
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sparsity", type=float, default=0.2)
    p.add_argument("--clips", type=int, default=8)
    p.add_argument("--only", help="run only the settings whose label contains one of these comma-separated texts")
    args = p.parse_args()
    model = load_model()
    utts = load_eval_set(HERE / "clips" / "tune")[: args.clips]
    probe = OutputProbe(model, audio=[load_audio(u.audio) for u in utts], n_tokens=48)
    print(f"{len(utts)} tune clips, encoder-fc1 at {args.sparsity:.0%} (foldable units); KL in nats per position")
    rows = []
    for label, (method, options) in SETTINGS.items():
        if args.only and not any(part in label for part in args.only.split(",")):
            continue
        t = time.perf_counter()
        small = compress(model, CompressionConfig(method=method, sparsity=args.sparsity, preset="encoder-fc1",
                                                  units="foldable", options=options))
        kl = probe.kl(small.model)
        rows.append((kl, label))
        print(f"  {label:<38s} KL {kl:.4f}   ({time.perf_counter() - t:.0f} s)", flush=True)
    print("\nsorted:")
    for kl, label in sorted(rows):
        print(f"  {kl:.4f}  {label}")


if __name__ == "__main__":
    main()
