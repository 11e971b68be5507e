"""Recovery benchmark: how long repair takes and how much memory it adds, and how much faster a recovered model runs.

    OMP_NUM_THREADS=2 python benchmarks/bench_recovery.py [--clips 32] [--repeats 3] [--finetune]

Prints, for the real bundled Whisper-base:

1. repair of the encoder-FFN predictive fold at 30 % (``recommended``'s unit, the study's main row) on the first N
   clips of the bundled calibration set: seconds, and the peak resident memory it added over the two models (sampled
   every 10 ms from /proc/self/statm);
2. a recovered model with >= 20 % of all parameters removed and the original transcribing the 12 evaluation clips (``assets/eval``) side by side, alternating, ``--repeats``
   times: end-to-end seconds (``transcribe_batch``: features, encoder, greedy decoding), and the same with a fixed
   token budget (every clip decodes exactly 40 tokens, so a model that writes more or less text is not
   faster or slower for it); the ratio is original / recovered; and both models' WER on those 12 clips (so the
   speed-up is seen beside what it costs). ``--recovered``: ``select`` (default: ``recommended`` with calibration at
   the top of its axis as round R5 chose it: predictive FFN neurons of encoder and decoder, auto, 60 %, 20.82 %
   removed, repaired with unit selection on 64 clips) or ``kmeans`` (k-means of every foldable unit at 50 %, 30.36 %
   removed, plain repair on ``--clips``: it does not transcribe);
3. with ``--finetune``: the fine-tune figures of :func:`bench_finetune` (benchmarks/bench_finetune.py).

No test asserts these figures: they depend on the machine and its load. Compare ratios from one run.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from prunelab import CompressionConfig, compress, load_model, wer  # noqa: E402
from prunelab.recovery.calibration import load_calibration  # noqa: E402
from prunelab.recovery.repair import RepairConfig, repair  # noqa: E402
from prunelab.speech.audio import SAMPLE_RATE, load_audio  # noqa: E402
from prunelab.speech.transcribe import quiet_transformers, transcribe_batch, whisper_generate_kwargs  # noqa: E402


class PeakRSS:
    """Peak resident memory (bytes) while the ``with`` block runs, sampled every 10 ms."""

    def __enter__(self) -> "PeakRSS":
        self.start = self.peak = self._rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    @staticmethod
    def _rss() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096

    def _watch(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, self._rss())


def _fixed_tokens(model, clips, tokens: int) -> float:
    """Seconds to transcribe ``clips`` in one batch with exactly ``tokens`` new tokens each."""
    fe = model.processor.feature_extractor
    kwargs = whisper_generate_kwargs(model, "en", 1)
    kwargs.update(min_new_tokens=tokens, max_new_tokens=tokens)
    start = time.perf_counter()
    feats = fe(clips, sampling_rate=SAMPLE_RATE, return_tensors="pt").input_features
    with torch.inference_mode(), quiet_transformers():
        model.model.generate(feats, **kwargs)
    return time.perf_counter() - start


def encoder_yardstick(model) -> float:
    """Seconds of one no-grad encoder forward on a 30 s window (bench_finetune's yardstick for the machine's load:
    0.606 s on 2 quiet cores, BENCHMARKS.md section 3)."""
    feats = torch.zeros(1, model.model.config.num_mel_bins, 3000)
    with torch.inference_mode():
        start = time.perf_counter()
        model.model.model.encoder(feats)
        return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clips", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--finetune", action="store_true")
    ap.add_argument("--recovered", choices=("select", "kmeans"), default="select")
    args = ap.parse_args()
    print(f"torch threads {torch.get_num_threads()}")
    original = load_model()
    calibration = load_calibration(None, limit=args.clips)
    print(f"calibration: {len(calibration)} clips, {calibration.seconds:.0f} s")

    small = compress(original, CompressionConfig(method="predictive", units="foldable", preset="encoder-fc1",
                                                 sparsity=0.3))
    before = encoder_yardstick(original)
    with PeakRSS() as mem:
        start = time.perf_counter()
        fixed = repair(small, original, calibration)
        seconds = time.perf_counter() - start
    print(f"repair, predictive encoder FFN 30 % ({small.compression['params_removed']:.2%} removed), "
          f"{len(calibration)} clips: {seconds:.1f} s, peak memory +{(mem.peak - mem.start) / 2**20:.0f} MiB "
          f"over {mem.start / 2**20:.0f} MiB")
    yardstick = (before + encoder_yardstick(original)) / 2
    print(f"load yardstick: one 30 s encoder forward {yardstick:.2f} s (0.606 s on 2 quiet cores): repair scaled to "
          f"the quiet machine ~{seconds * 0.606 / yardstick:.0f} s (an estimate)")
    del fixed

    start = time.perf_counter()
    if args.recovered == "kmeans":
        big = compress(original, CompressionConfig(method="kmeans", units="foldable", preset="foldable", sparsity=0.5))
        recovered = repair(big, original, calibration)
        what = "kmeans foldable units 50 %, plain repair"
    else:
        big = compress(original, CompressionConfig(method="predictive", units="foldable", preset="fc1",
                                                   allocate="auto", sparsity=0.6))
        recovered = repair(big, original, load_calibration(None, limit=64), RepairConfig(select=True))
        what = "predictive fc1 (encoder + decoder) auto 60 %, repaired with unit selection on 64 clips"
    print(f"recovered model: {what}, {big.compression['params_removed']:.2%} of all parameters "
          f"removed, compressed + repaired in {time.perf_counter() - start:.1f} s")
    clips = [load_audio(p) for p in sorted((ROOT / "assets" / "eval").glob("*.wav"))]
    times: dict[str, list[float]] = {"original": [], "recovered": []}
    fixed_times: dict[str, list[float]] = {"original": [], "recovered": []}
    for _ in range(args.repeats):
        for name, model in (("original", original), ("recovered", recovered)):
            start = time.perf_counter()
            transcribe_batch(model, clips, sampling_rate=SAMPLE_RATE)
            times[name].append(time.perf_counter() - start)
            fixed_times[name].append(_fixed_tokens(model, clips, 40))
    refs = [p.with_suffix(".txt").read_text().strip() for p in sorted((ROOT / "assets" / "eval").glob("*.wav"))]
    for name, model in (("original", original), ("recovered", recovered)):
        print(f"{name}: WER {wer(refs, transcribe_batch(model, clips, sampling_rate=SAMPLE_RATE)):.1%} on the "
              f"{len(clips)} eval clips")
    for label, table in (("end to end (transcribe_batch)", times), ("fixed budget, 40 tokens a clip", fixed_times)):
        o, r = statistics.median(table["original"]), statistics.median(table["recovered"])
        print(f"{len(clips)} eval clips, {label}: original {o:.2f} s, recovered {r:.2f} s, "
              f"speed-up {o / r:.2f}x (median of {args.repeats})")
    if args.finetune:
        from bench_finetune import bench_finetune  # noqa: E402  (benchmarks/ is on the path when run as a script)

        bench_finetune()


if __name__ == "__main__":
    main()
