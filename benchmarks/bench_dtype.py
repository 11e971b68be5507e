"""Benchmark: Whisper-base with its weights in float32, bfloat16 and float16 on a CPU (or CUDA when present).

Loads the bundled Whisper-base once per dtype (``load_model(dtype=...)``), then transcribes the three
``assets/`` clips with every model, interleaved (round r: clip 1 with each dtype, clip 2 with each dtype, ...),
--rounds times, and prints per dtype: load seconds, weight memory, the median transcription time per clip,
the total, and the WER over the three clips, plus the same after compressing with k-means 20 % of the
encoder FFN neurons (preset encoder-fc1, folded; the compressed layers keep the model's dtype; clustering
computes in float32). Every hypothesis that differs from float32's is printed.

Usage:  python benchmarks/bench_dtype.py [--rounds 3] [--dtypes float32,bfloat16,float16]
A script printing figures, not a timed test.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from prunelab.compression import CompressionConfig, compress  # noqa: E402
from prunelab.models import load_model  # noqa: E402
from prunelab.speech.audio import load_audio  # noqa: E402
from prunelab.speech.metrics import wer  # noqa: E402
from prunelab.speech.transcribe import transcribe  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--dtypes", default="float32,bfloat16,float16")
    args = ap.parse_args(argv)
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    clips = sorted((ROOT / "assets").glob("clip*.wav"))
    audio = [load_audio(c) for c in clips]
    refs = [c.with_suffix(".txt").read_text().strip() for c in clips]
    dtypes = [d.strip() for d in args.dtypes.split(",") if d.strip()]
    import os

    print(f"Whisper-base (bundled, real weights), {len(clips)} clips ({sum(len(a) for a in audio) / 16000:.1f} s), "
          f"device {dev}, torch {torch.__version__}, {torch.get_num_threads()} threads, load average "
          f"{os.getloadavg()[0]:.1f}, median of {args.rounds} interleaved rounds", flush=True)
    models, load_s = {}, {}
    load_model("bundled:whisper-base")  # cold start (imports, file cache) outside the timed loads
    for d in dtypes:
        t = time.perf_counter()
        models[d] = load_model("bundled:whisper-base", dtype=d, device=dev)
        load_s[d] = time.perf_counter() - t
        cfg = CompressionConfig(method="kmeans", sparsity=0.2, preset="encoder-fc1")
        models[d + "+kmeans"] = compress(models[d], cfg)
    names = list(models)
    for sm in models.values():  # warm-up (first call builds the pipeline)
        transcribe(sm, audio[0], 16000)
    times = {n: [[] for _ in clips] for n in names}
    hyps: dict[str, list[str]] = {n: [""] * len(clips) for n in names}
    for _ in range(args.rounds):
        for i, a in enumerate(audio):
            for n in names:
                t = time.perf_counter()
                hyps[n][i] = transcribe(models[n], a, 16000)
                times[n][i].append(time.perf_counter() - t)
    print(f"{'model':<22s}{'load s':>8s}{'weights MB':>11s}" + "".join(f"{c.stem + ' s':>10s}" for c in clips)
          + f"{'total s':>9s}{'vs fp32':>9s}{'WER':>8s}")
    base_total = {}
    for n in names:
        med = [statistics.median(t) for t in times[n]]
        total = sum(med)
        ref_name = "float32" + ("+kmeans" if n.endswith("+kmeans") else "")
        base_total[n] = total
        mb = sum(p.numel() * p.element_size() for p in models[n].model.parameters()) / 1e6
        ratio = base_total[ref_name] / total if ref_name in base_total else float("nan")
        d = n.split("+")[0]
        print(f"{n:<22s}{load_s[d] if '+' not in n else float('nan'):>8.1f}{mb:>11.0f}"
              + "".join(f"{m:>10.2f}" for m in med) + f"{total:>9.2f}{ratio:>8.2f}x{wer(refs, hyps[n]):>8.2%}")
    for n in names:
        ref_name = "float32" + ("+kmeans" if n.endswith("+kmeans") else "")
        for i, h in enumerate(hyps[n]):
            if ref_name in hyps and h != hyps[ref_name][i]:
                print(f"  {n} {clips[i].name}: {h!r}  (float32: {hyps[ref_name][i]!r})")
    if "bfloat16" in base_total and "float32" in base_total:
        print(f"bf16_speedup={base_total['float32'] / base_total['bfloat16']:.2f} "
              f"bf16_wer={wer(refs, hyps['bfloat16']):.4f} fp32_wer={wer(refs, hyps['float32']):.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
