"""Original vs compressed (folded) Whisper-base: size on disk, encoder latency, transcription latency.

Usage:  python benchmarks/bench_inference.py [--sparsities 0.3,0.5] [--preset ffn] [--method kmeans] [--repeats 5]
        python benchmarks/bench_inference.py --sparsities 0 --vocabulary latin   # the decoder vocabulary alone

Runs are interleaved (original, compressed, original, ...) so that both see the same machine load;
the median of each is reported, with the ratio compressed / original.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from prunelab.speech.audio import load_audio  # noqa: E402
from prunelab.compression import CompressionConfig, compress  # noqa: E402
from prunelab.models import load_model  # noqa: E402
from prunelab.models.saved import save_compressed  # noqa: E402
from prunelab.report.size import size_report  # noqa: E402
from prunelab.speech.transcribe import transcribe  # noqa: E402


def encoder_latency(model, feats: torch.Tensor) -> float:
    with torch.inference_mode():
        start = time.perf_counter()
        model.model.get_encoder()(feats)
        return time.perf_counter() - start


def transcribe_latency(model, audio) -> tuple[float, str]:
    start = time.perf_counter()
    text = transcribe(model, audio, 16000)
    return time.perf_counter() - start, text


def disk_bytes(model) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        folder = save_compressed(model, Path(tmp) / "m")
        return (folder / "model.safetensors").stat().st_size


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="bundled:whisper-base")
    p.add_argument("--sparsities", default="0.3,0.5")
    p.add_argument("--preset", default="ffn")
    p.add_argument("--method", default="kmeans")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--vocabulary", default=None, help="also keep only this script's decoder tokens (latin, ascii)")
    p.add_argument("--clip", default=str(ROOT / "assets" / "clip1.wav"))
    args = p.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device cpu")
    original = load_model(args.model)
    audio = load_audio(args.clip)
    feats = original.processor.feature_extractor(audio, sampling_rate=16000, return_tensors="pt").input_features
    orig_size, orig_disk = size_report(original), disk_bytes(original)
    for m in (original,):  # warm-up
        encoder_latency(m, feats), transcribe_latency(m, audio)
    rows = []
    for s in [float(x) for x in args.sparsities.split(",")]:
        small = compress(original, CompressionConfig(method=args.method, sparsity=s, preset=args.preset,
                                                    vocabulary=args.vocabulary))
        encoder_latency(small, feats), transcribe_latency(small, audio)
        enc_o, enc_c, tr_o, tr_c = [], [], [], []
        for _ in range(args.repeats):
            enc_o.append(encoder_latency(original, feats))
            enc_c.append(encoder_latency(small, feats))
            t, text_o = transcribe_latency(original, audio)
            tr_o.append(t)
            t, text_c = transcribe_latency(small, audio)
            tr_c.append(t)
        size = size_report(small)
        rows.append((s, size, disk_bytes(small), statistics.median(enc_o), statistics.median(enc_c),
                     statistics.median(tr_o), statistics.median(tr_c), text_o, text_c))
    print(f"\nmodel {args.model}, method {args.method}, preset {args.preset}, vocabulary {args.vocabulary or 'all'}, "
          f"clip {Path(args.clip).name}, "
          f"median of {args.repeats} interleaved runs")
    header = (f"{'sparsity':>8s} {'params':>12s} {'ratio':>6s} {'disk MB':>8s} {'ratio':>6s} "
              f"{'enc orig s':>10s} {'enc comp s':>10s} {'speedup':>7s} {'asr orig s':>10s} {'asr comp s':>10s} {'speedup':>7s}")
    print(header)
    print(f"{'0%':>8s} {orig_size.params:>12,d} {1:>6.3f} {orig_disk / 1e6:>8.1f} {1:>6.3f}")
    for s, size, disk, eo, ec, to, tc, _, _ in rows:
        print(f"{s:>8.0%} {size.params:>12,d} {size.params / orig_size.params:>6.3f} {disk / 1e6:>8.1f} "
              f"{disk / orig_disk:>6.3f} {eo:>10.3f} {ec:>10.3f} {eo / ec:>7.2f} {to:>10.3f} {tc:>10.3f} {to / tc:>7.2f}")
    for s, *_, text_o, text_c in rows:
        print(f"\n{s:.0%} original:   {text_o}\n{s:.0%} compressed: {text_c}")


if __name__ == "__main__":
    main()
