#!/usr/bin/env python
"""Time the app's "Evaluate this plan" on Whisper-base and draw a tuning history (docs/tuning-history.png).

Runs the app's own handlers (no server): loads the model, then for each plan below sets the sliders,
compresses and evaluates it on the bundled clips (``assets/eval``), printing the time of each evaluation
(the first one also transcribes with the original model; later ones reuse its transcripts) and the WERs.

    python benchmarks/bench_app_evaluate.py [--model bundled:whisper-base] [--out docs/tuning-history.png]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PLANS = [  # (sparsity, preset, method, units)
    (0.1, "encoder-fc1", "kmeans", "channels"),
    (0.2, "encoder-fc1", "kmeans", "channels"),
    (0.1, "encoder-fc1", "magnitude", "channels"),
    (0.2, "encoder-fc1", "predictive", "foldable"),
    (0.1, "uniform", "kmeans", "channels"),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="bundled:whisper-base")
    ap.add_argument("--out", default=str(ROOT / "docs" / "tuning-history.png"))
    ap.add_argument("--plans", type=int, default=len(PLANS))
    args = ap.parse_args()

    import torch

    from ui.session import Session
    from ui.tabs.compress import on_compress, on_load, on_preset
    from ui.tabs.tuning import on_evaluate

    def quiet(*a, **k):
        return None

    print(f"torch {torch.__version__} ({torch.get_num_threads()} threads), model {args.model}")
    sess, rev = on_load(args.model, 0.1, "encoder-fc1", Session(), 0, progress=quiet)[:2]
    history: list[dict] = []
    for sparsity, preset, method, units in PLANS[: args.plans]:
        sess, rev = on_preset(sparsity, preset, sess, rev)[:2]
        sess = on_compress(method, 0, sess, units, progress=quiet)[0]
        t0 = time.perf_counter()
        history, summary, chart, _ = on_evaluate(sess, history, progress=quiet)
        p = history[-1]
        print(f"{preset:12s} {100 * sparsity:3.0f}% {method:11s} {units:9s}: evaluate {time.perf_counter() - t0:5.1f} s"
              f" | removed {100 * p['params_removed']:5.2f}% | WER original {100 * p['wer_original']:5.1f}%"
              f" compressed {100 * p['wer']:5.1f}%")
    chart.savefig(args.out, dpi=110)
    print(f"chart: {args.out}")


if __name__ == "__main__":
    main()
