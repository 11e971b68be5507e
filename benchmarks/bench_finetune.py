"""Benchmark: fine-tuning speed and peak memory of the real Whisper-base after compression (issue 25, item 2).

The model: bundled Whisper-base compressed with ``CompressionConfig(method="predictive", units="foldable",
preset="encoder-fc1", sparsity=0.3)``. The data: ``benchmarks/clips/tune`` (28 clips, 3.5-5.3 s; tune clips, never
a test set), with their reference texts, or without them (``distill``: the teacher labels them and gives soft
targets). Each variant runs in a fresh process (its own peak RSS) for a few optimizer steps -- a fraction of an
epoch -- and prints:

* seconds per step (the first step, which pays one-off costs, is left out when there are more), samples
  (Whisper windows) and clips per second;
* seconds per epoch for 256 clips of this length, EXTRAPOLATED from the step time (256 clips pack into
  ceil(256 / clips per window) windows), and for 3 epochs; ``distill`` adds the one-off teacher preparation
  (transcripts + soft targets) measured per clip;
* a yardstick for the load: one no-grad encoder forward on 30 s, timed before and after in the same process
  (0.606 s on 2 quiet cores, BENCHMARKS.md section 3), the step time in those units, and the epoch times scaled by it to the
  idle machine (an estimate, marked as such);
* peak RSS (``resource.getrusage``, the process's high-water mark, the original model, its compressed copy and
  the student all included), against the target model + optimizer state + 2 GB (model: all parameters x 4 B;
  AdamW state: trainable parameters x 8 B).

Usage:
    OMP_NUM_THREADS=2 python benchmarks/bench_finetune.py [--steps 3] [--batch-size 1]
        [--variants compressed,compressed-nopack,all,lora,distill]

``bench_finetune()`` is the same as a function (for ``benchmarks/bench_recovery.py``). This is a script printing
figures, not a timed test; on a shared machine the figures move with the load (the load average is printed).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CLIPS = ROOT / "benchmarks" / "clips" / "tune"
VARIANTS = {
    "compressed": dict(train="compressed", pack=True, labels=True),
    "compressed-nopack": dict(train="compressed", pack=False, labels=True),
    "all": dict(train="all", pack=True, labels=True),
    "lora": dict(train="lora", pack=True, labels=True),
    "distill": dict(train="compressed", pack=True, labels=False),
}
GB = 1024 ** 3
IDLE_ENCODER_S = 0.606
"""One no-grad forward of Whisper-base's encoder on 30 s, measured on 2 quiet cores (BENCHMARKS.md section 3, load 0.1-0.8)."""


def _encoder_forward_s(model) -> float:
    """Seconds of one no-grad encoder forward on a 30 s window, now (the load's yardstick), best of 2."""
    import torch

    x = torch.zeros(1, 80, 3000)
    best = float("inf")
    with torch.no_grad():
        for _ in range(2):
            t = time.monotonic()
            model.model.model.encoder(x)
            best = min(best, time.monotonic() - t)
    return best


def _one(variant: str, steps: int, batch_size: int) -> dict:
    """Run one variant in this process; returns its figures."""
    import torch

    from prunelab import CompressionConfig, compress, load_model
    from prunelab.recovery.finetune import FinetuneConfig, finetune

    spec = VARIANTS[variant]
    t0 = time.monotonic()
    original = load_model("bundled:whisper-base")
    small = compress(original, CompressionConfig(method="predictive", units="foldable", preset="encoder-fc1",
                                                 sparsity=0.3))
    setup_s = time.monotonic() - t0
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    yard_before = _encoder_forward_s(original)
    ticks: list[tuple[int, float]] = []
    prep: list[float] = []
    start = time.monotonic()

    def progress(done: int, total: int, message: str) -> None:
        now = time.monotonic()
        if "loss" in message:
            ticks.append((done, now))
        elif not message.startswith("note:"):
            prep.append(now)

    if spec["labels"]:
        data = CLIPS
        teacher = None
    else:
        data = sorted(str(p) for p in CLIPS.glob("*.wav"))
        teacher = original  # the model it was compressed from (already loaded: no second copy)
    config = FinetuneConfig(epochs=1, max_steps=steps, batch_size=batch_size, train=spec["train"], pack=spec["pack"])
    tuned = finetune(small, data, config, teacher=teacher, progress=progress)
    step = tuned.compression["recovery"][-1]
    yardstick = (yard_before + _encoder_forward_s(original)) / 2
    times = [b - a for (_, a), (_, b) in zip(ticks, ticks[1:])]
    first = ticks[0][1] - (prep[-1] if prep else start)
    per_step = sum(times) / len(times) if times else first
    clips_per_window = step["clips"] / step["samples"]
    clips_per_step = batch_size * clips_per_window
    windows_256 = math.ceil(256 / clips_per_window)
    epoch_256 = math.ceil(windows_256 / batch_size) * per_step
    prep_s = (prep[-1] - start) if prep else 0.0
    prep_per_clip = prep_s / step["clips"] if not spec["labels"] else 0.0
    n_params = sum(p.numel() for p in small.model.parameters())
    return {
        "variant": variant, "train": spec["train"], "packed": spec["pack"], "labels": step["labels"],
        "clips": step["clips"], "samples": step["samples"], "clips_per_window": round(clips_per_window, 2),
        "steps": step["steps"], "batch_size": batch_size, "first_step_s": round(first, 2),
        "s_per_step": round(per_step, 2), "samples_per_s": round(batch_size / per_step, 3),
        "clips_per_s": round(clips_per_step / per_step, 3), "epoch_256_s_extrapolated": round(epoch_256, 1),
        "three_epochs_256_min_extrapolated": round((3 * epoch_256 + 256 * prep_per_clip) / 60, 1),
        "teacher_prep_s_per_clip": round(prep_per_clip, 2), "final_loss": step["final_loss"],
        "trainable": step["trainable"], "params": n_params,
        "model_gb": round(n_params * 4 / GB, 3), "optimizer_gb": round(step["trainable"] * 8 / GB, 3),
        "rss_before_finetune_gb": round(rss_before / GB, 2),
        "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GB, 2),
        "setup_s": round(setup_s, 1), "threads": torch.get_num_threads(),
        "encoder_forward_s": round(yardstick, 2), "step_in_encoder_forwards": round(per_step / yardstick, 1),
        "idle_epoch_256_s_estimate": round(epoch_256 / yardstick * IDLE_ENCODER_S, 1),
        "idle_three_epochs_256_min_estimate": round((3 * epoch_256 + 256 * prep_per_clip) / yardstick * IDLE_ENCODER_S / 60, 1),
    }


def bench_finetune(variants: list[str] | None = None, steps: int = 3, batch_size: int = 1,
                   print_rows: bool = True) -> list[dict]:
    """Each variant in a fresh process (its own peak memory); returns and prints one row of figures each."""
    rows = []
    for variant in variants or list(VARIANTS):
        with tempfile.NamedTemporaryFile(suffix=".json") as f:
            subprocess.run([sys.executable, __file__, "--one", variant, "--steps", str(steps), "--batch-size",
                            str(batch_size), "--json", f.name], check=True, cwd=ROOT)
            row = json.loads(Path(f.name).read_text())
        row["load_average"] = round(os.getloadavg()[0], 1)
        rows.append(row)
        if print_rows:
            _print(row)
    return rows


def _print(r: dict) -> None:
    target = r["model_gb"] + r["optimizer_gb"] + 2
    print(f"{r['variant']:<18} train={r['train']:<10} packed={r['packed']!s:<5} labels={r['labels']:<10} "
          f"{r['clips']} clips in {r['samples']} samples ({r['clips_per_window']} clips/window), "
          f"batch {r['batch_size']}, {r['steps']} steps, {r['threads']} threads, load avg {r['load_average']}")
    print(f"    step {r['s_per_step']} s (first {r['first_step_s']} s): {r['samples_per_s']} samples/s = "
          f"{r['clips_per_s']} clips/s; teacher prep {r['teacher_prep_s_per_clip']} s/clip")
    print(f"    256 clips: {r['epoch_256_s_extrapolated']} s per epoch (extrapolated), 3 epochs "
          f"{r['three_epochs_256_min_extrapolated']} min (extrapolated, with teacher prep)")
    print(f"    yardstick: one no-grad encoder forward (30 s) takes {r['encoder_forward_s']} s now (0.606 s on 2 idle "
          f"cores): a step costs {r['step_in_encoder_forwards']} of them; scaled to the idle machine: "
          f"{r['idle_epoch_256_s_estimate']} s per epoch of 256 clips, 3 epochs {r['idle_three_epochs_256_min_estimate']} min "
          f"(an estimate)")
    print(f"    peak RSS {r['peak_rss_gb']} GB (after load + compress {r['rss_before_finetune_gb']} GB); model "
          f"{r['model_gb']} GB + AdamW state {r['optimizer_gb']} GB ({r['trainable']:,} trainable) + 2 GB = "
          f"{target:.2f} GB target: {'within' if r['peak_rss_gb'] <= target else 'OVER'}", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--one", help=argparse.SUPPRESS)
    p.add_argument("--json", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        Path(args.json).write_text(json.dumps(_one(args.one, args.steps, args.batch_size)))
        return
    bench_finetune([v.strip() for v in args.variants.split(",") if v.strip()], args.steps, args.batch_size)


if __name__ == "__main__":
    main()
