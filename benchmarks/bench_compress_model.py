"""Benchmark: cluster every compressible linear layer of a whole model with prunelab's k-means engine.

Default: the real Whisper-base (prunelab.models.load_model("bundled:whisper-base")): every q/k/v/out
projection of encoder self-attention, decoder self- and cross-attention, and every fc1/fc2 (weight
with the bias appended as a column), at 50% sparsity (K = C/2), one kmeans() call per layer, on CPU.
Prints the total wall time and the per-layer median.

--large-v3: random matrices with Whisper-large-v3 shapes (d_model 1280, ffn 5120, 32 encoder + 32
decoder layers: 512 linear layers incl. cross-attention), clustered with kmeans_batched (same-shaped
layers together) on CUDA if available (else CPU), with a capped number of Lloyd iterations
(--max-iter, default 20).  Prints the device name.

--shape base,small,medium[,large-v3,hubert-large]: the whole library path per model shape, each in a fresh
process: load (base: the real bundled weights; the others random weights with the real shapes,
``random:whisper-<shape>``), ``compress()`` with k-means at --sparsity (default here 20 %) on --preset
(default uniform), and a transcription of a 10 s clip (assets clip2 + clip3, 10.2 s; Whisper: one greedy
``generate`` forced to 40 new tokens, about what the two sentences need, so random weights that never stop
cost the same as real ones). Prints load s, compress s, the peak RSS while compressing (sampled every 5 ms
and from the process's high-water mark), the peak while loading, and the memory target
1.3 x fp32 size + 0.5 GB; --dtype float32,bfloat16 runs each shape in both weight dtypes. CUDA when present
(the peak is then torch.cuda.max_memory_allocated). Last line:
``seconds=<medium compress s> peak_rss_gb=<medium peak while compressing>`` (the first dtype given).
--in-place measures ``compress_()`` (the model compressed in place, each original layer freed as it is replaced,
as ``prunelab compress`` does) instead of ``compress()`` (a new model beside the untouched original).

Usage:
    python benchmarks/bench_compress_model.py --shape base,small,medium [--dtype float32,bfloat16] [--in-place]
    python benchmarks/bench_compress_model.py [--sparsity 0.5] [--batched] [--threads N]
    python benchmarks/bench_compress_model.py --large-v3 [--max-iter 20] [--batch 32] [--limit 64] [--init auto,k-means++]
This is a script printing figures, not a timed test.
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from prunelab.kmeans import kmeans, kmeans_batched  # noqa: E402

COMPRESSIBLE = ("q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2")


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def whisper_base_layers() -> tuple[dict[str, torch.Tensor], bool]:
    try:
        from prunelab.models import load_model

        sm = load_model("bundled:whisper-base")
    except Exception as exc:  # noqa: BLE001
        print("!" * 100)
        print(f"!!! load_model('bundled:whisper-base') failed: {exc!r}")
        print("!!! FALLING BACK TO RANDOM MATRICES WITH WHISPER-BASE SHAPES: figures are NOT representative")
        print("!" * 100)
        return synthetic_layers(d=512, ffn=2048, enc=6, dec=6), False
    out = {}
    for name, mod in sm.model.named_modules():
        if isinstance(mod, torch.nn.Linear) and ".layers." in name and name.rsplit(".", 1)[-1] in COMPRESSIBLE:
            w = mod.weight.detach().float()
            b = mod.bias.detach().float() if mod.bias is not None else torch.zeros(w.shape[0])
            out[name] = torch.cat([w, b[:, None]], 1).contiguous()
    return out, True


def synthetic_layers(d: int, ffn: int, enc: int, dec: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random matrices (std 0.02, like initialised weights) with the shapes of a Whisper model."""
    g = torch.Generator().manual_seed(seed)
    shapes = {}
    for side, n, attns in (("encoder", enc, ("self_attn",)), ("decoder", dec, ("self_attn", "encoder_attn"))):
        for i in range(n):
            for a in attns:
                for p in ("q_proj", "k_proj", "v_proj", "out_proj"):
                    shapes[f"model.{side}.layers.{i}.{a}.{p}"] = (d, d + 1)
            shapes[f"model.{side}.layers.{i}.fc1"] = (ffn, d + 1)
            shapes[f"model.{side}.layers.{i}.fc2"] = (d, ffn + 1)
    return {n: torch.randn(*s, generator=g) * 0.02 for n, s in shapes.items()}


def bench_base(args) -> None:
    layers, real = whisper_base_layers()
    dev = torch.device(args.device)
    print(f"Whisper-base ({'real weights' if real else 'RANDOM fallback'}): {len(layers)} compressible linear "
          f"layers, sparsity {args.sparsity:.0%}, device {_device_name(dev)}, torch threads {torch.get_num_threads()}, "
          f"{'batched by shape' if args.batched else 'one kmeans() per layer'}")
    kmeans(torch.randn(64, 8, device=dev), 4)  # warm-up
    per_layer, total_inertia = [], 0.0
    # outside the timed region (with several threads on a busy machine this alone took ~25 ms a layer)
    total_energy = sum(float(x.double().pow(2).sum()) for x in layers.values())
    t0 = time.perf_counter()
    if args.batched:
        groups = defaultdict(list)
        for n, x in layers.items():
            groups[tuple(x.shape)].append(n)
        for shape, names in groups.items():
            xs = torch.stack([layers[n] for n in names]).to(dev)
            k = max(1, round((1 - args.sparsity) * shape[0]))
            t = time.perf_counter()
            r = kmeans_batched(xs, k, max_iter=args.max_iter, seed=0)
            _sync(dev)
            dt = time.perf_counter() - t
            per_layer += [dt / len(names)] * len(names)
            total_inertia += float(r.inertia.sum())
            print(f"  {len(names):3d} x {shape[0]}x{shape[1]} K={k}: {dt:.2f}s ({r.n_iter} iters max)", flush=True)
    else:
        for n, x in layers.items():
            x = x.to(dev)
            k = max(1, round((1 - args.sparsity) * x.shape[0]))
            t = time.perf_counter()
            r = kmeans(x, k, max_iter=args.max_iter, seed=0)
            _sync(dev)
            per_layer.append(time.perf_counter() - t)
            total_inertia += r.inertia
            if args.verbose:
                print(f"  {n:45s} {x.shape[0]}x{x.shape[1]} K={k}: {per_layer[-1]:.3f}s {r.n_iter} iters")
    total = time.perf_counter() - t0
    print(f"total wall time: {total:.2f}s for {len(layers)} layers; per-layer median {statistics.median(per_layer):.3f}s, "
          f"max {max(per_layer):.3f}s; relative reconstruction error sum|x-c|^2/sum|x|^2 = "
          f"{total_inertia / total_energy:.4f}")
    print(f"total_s={total:.2f} layers={len(layers)} median_layer_s={statistics.median(per_layer):.3f}")


def _device_name(dev: torch.device) -> str:
    if dev.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(dev)})"
    return f"cpu ({torch.get_num_threads()} threads)"


def bench_large_v3(args) -> None:
    dev = torch.device(args.device if args.device != "cpu" or not torch.cuda.is_available() else "cuda")
    if args.device == "cpu" and args.force_cpu:
        dev = torch.device("cpu")
    layers = synthetic_layers(d=1280, ffn=5120, enc=32, dec=32)
    names = list(layers)[: args.limit] if args.limit else list(layers)
    groups = defaultdict(list)
    for n in names:
        groups[tuple(layers[n].shape)].append(n)
    print(f"Whisper-large-v3-shaped RANDOM matrices: {len(names)} of {len(layers)} linear layers, sparsity "
          f"{args.sparsity:.0%}, device {_device_name(dev)}, kmeans_batched with batch <= {args.batch}, "
          f"max_iter={args.max_iter} (Lloyd capped), init {args.init} (auto: Ward at K >= N/2, else k-means++)")
    warm = torch.randn(2, 64, 8, device=dev)
    kmeans_batched(warm, 4), kmeans_batched(warm, 40)  # warm-up of both initialisations
    _sync(dev)
    for init in args.init.split(","):
        t0 = time.perf_counter()
        inertia = 0.0
        for shape, ns in groups.items():
            k = max(1, round((1 - args.sparsity) * shape[0]))
            tg = time.perf_counter()
            iters = 0
            for i in range(0, len(ns), args.batch):
                xs = torch.stack([layers[n] for n in ns[i : i + args.batch]]).to(dev)
                r = kmeans_batched(xs, k, max_iter=args.max_iter, seed=0, init=init)
                iters = max(iters, r.n_iter)
                inertia += float(r.inertia.sum())
            _sync(dev)
            print(f"  [{init}] {len(ns):3d} x {shape[0]}x{shape[1]} K={k}: {time.perf_counter() - tg:.2f}s "
                  f"(<= {iters} Lloyd iterations)", flush=True)
        total = time.perf_counter() - t0
        print(f"[{init}] total wall time: {total:.2f}s for {len(names)} layers on {_device_name(dev)} "
              f"(host->device copies included, model construction excluded); total inertia {inertia:.6g}")
        print(f"total_s={total:.2f} layers={len(names)} device={dev.type} init={init}")


SHAPE_SPECS = {"base": "bundled:whisper-base", "small": "random:whisper-small", "medium": "random:whisper-medium",
               "large-v3": "random:whisper-large-v3", "hubert-large": "random:hubert-large"}


def _rss() -> int:
    """Resident set size of this process in bytes (Linux)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _maxrss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


class PeakSampler:
    """Highest RSS seen while the ``with`` block runs: a 5 ms sampling thread plus the process high-water mark
    (exact when the block raised it)."""

    def __enter__(self):
        self.peak, self._stop = _rss(), threading.Event()
        self._before = _maxrss()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def _run(self):
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, _rss())

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        after = _maxrss()
        if after > self._before:
            self.peak = max(self.peak, after)


def ten_second_clip():
    import numpy as np

    from prunelab.speech.audio import load_audio

    root = Path(__file__).resolve().parents[1] / "assets"
    return np.concatenate([load_audio(root / "clip2.wav"), load_audio(root / "clip3.wav")])


def one_shape(args) -> dict:
    """Measure one shape in this process; returns the figures (printed as JSON by --one-shape)."""
    from prunelab.compression import CompressionConfig, compress, compress_
    from prunelab.models import load_model

    dev = "cuda" if torch.cuda.is_available() and not args.force_cpu else "cpu"
    spec = SHAPE_SPECS[args.one_shape]
    base_rss = _rss()
    t = time.perf_counter()
    sm = load_model(spec, dtype=args.dtype, device=dev)
    load_s = time.perf_counter() - t
    load_peak = _maxrss()
    params = sm.num_parameters
    cfg = CompressionConfig(method="kmeans", sparsity=args.sparsity, preset=args.preset)
    if dev == "cuda":
        torch.cuda.reset_peak_memory_stats()
    with PeakSampler() as peak:
        t = time.perf_counter()
        if args.in_place:  # compress_(): each original layer freed as it is replaced
            compress_(sm, cfg)
            small = sm
        else:
            small = compress(sm, cfg)
        _sync(torch.device(dev))
        compress_s = time.perf_counter() - t
    gpu_peak = torch.cuda.max_memory_allocated() if dev == "cuda" else None
    audio = ten_second_clip()
    t = time.perf_counter()
    if sm.family == "whisper":
        fe = sm.processor.feature_extractor
        feats = fe(audio, sampling_rate=16000, return_tensors="pt").input_features.to(dev, next(sm.model.parameters()).dtype)
        with torch.inference_mode():
            ids = small.model.generate(feats, min_new_tokens=40, max_new_tokens=40, do_sample=False, num_beams=1)
        tokens = int(ids.shape[1])
    else:
        from prunelab.speech.transcribe import transcribe

        transcribe(small, audio, 16000)
        tokens = 0
    transcribe_s = time.perf_counter() - t
    fp32 = params * 4
    return {"shape": args.one_shape, "spec": spec, "dtype": args.dtype, "device": dev, "params": params,
            "fp32_gb": fp32 / 1e9, "load_s": load_s, "load_peak_gb": load_peak / 1e9, "compress_s": compress_s,
            "peak_rss_gb": peak.peak / 1e9, "gpu_peak_gb": None if gpu_peak is None else gpu_peak / 1e9,
            "target_gb": (1.3 * fp32 + 0.5e9) / 1e9, "process_start_gb": base_rss / 1e9,
            "params_removed": small.compression["params_removed"], "transcribe_s": transcribe_s, "tokens": tokens,
            "threads": torch.get_num_threads(), "in_place": args.in_place}


def bench_shapes(args) -> None:
    import json
    import subprocess

    shapes = [x.strip() for x in args.shape.split(",") if x.strip()]
    dtypes = [x.strip() for x in args.dtype.split(",") if x.strip()]
    bad = [x for x in shapes if x not in SHAPE_SPECS]
    if bad:
        raise SystemExit(f"unknown shape(s) {bad}; choose from {', '.join(SHAPE_SPECS)}")
    print(f"kmeans at {args.sparsity:.0%} on preset {args.preset}{' IN PLACE (compress_)' if args.in_place else ''}, one fresh process per shape and dtype, torch "
          f"{torch.__version__}, {'CUDA ' + torch.cuda.get_device_name() if torch.cuda.is_available() and not args.force_cpu else 'CPU'}, "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}", flush=True)
    head = (f"{'shape':<13s}{'dtype':<9s}{'params':>9s}{'fp32 GB':>8s}{'load s':>8s}{'compress s':>11s}"
            f"{'peak GB':>8s}{'target':>8s}{'load pk':>8s}{'10s clip s':>11s}{'removed':>8s}")
    print(head)
    rows = []
    for shape in shapes:
        for dt in dtypes:
            cmd = [sys.executable, __file__, "--one-shape", shape, "--dtype", dt, "--sparsity", str(args.sparsity),
                   "--preset", args.preset] + (["--in-place"] if args.in_place else []) + (["--force-cpu"] if args.force_cpu else []) + (
                   ["--threads", str(args.threads)] if args.threads else [])
            out = subprocess.run(cmd, capture_output=True, text=True)
            line = next((l for l in reversed(out.stdout.splitlines()) if l.startswith("{")), None)
            if out.returncode or line is None:
                print(f"{shape:<13s}{dt:<9s} FAILED (exit {out.returncode}): {out.stderr.strip().splitlines()[-1:]}")
                continue
            r = json.loads(line)
            rows.append(r)
            peak = r["gpu_peak_gb"] if r["gpu_peak_gb"] is not None else r["peak_rss_gb"]
            print(f"{shape:<13s}{dt:<9s}{r['params'] / 1e6:>8.0f}M{r['fp32_gb']:>8.2f}{r['load_s']:>8.1f}"
                  f"{r['compress_s']:>11.1f}{peak:>8.2f}{r['target_gb']:>8.2f}{r['load_peak_gb']:>8.2f}"
                  f"{r['transcribe_s']:>11.2f}{r['params_removed']:>8.1%}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    pick = [r for r in rows if r["dtype"] == dtypes[0]]
    medium = next((r for r in pick if r["shape"] == "medium"), pick[-1] if pick else None)
    if medium is None:
        print("seconds=nan peak_rss_gb=nan")
        return
    if medium["shape"] != "medium":
        print(f"(no medium-shape run: the last line is {medium['shape']}'s)")
    print(f"seconds={medium['compress_s']:.1f} peak_rss_gb={medium['peak_rss_gb']:.2f}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", help="comma-separated: " + ", ".join(SHAPE_SPECS) + " (the library path per shape)")
    ap.add_argument("--one-shape", help=argparse.SUPPRESS)
    ap.add_argument("--dtype", default="float32", help="--shape: weight dtype(s), comma-separated (float32, bfloat16, float16)")
    ap.add_argument("--preset", default="uniform", help="--shape: which layers (default uniform)")
    ap.add_argument("--json", help="--shape: also write the figures here")
    ap.add_argument("--in-place", action="store_true", help="--shape: compress_() in place instead of compress()")
    ap.add_argument("--large-v3", action="store_true", help="Whisper-large-v3-shaped random matrices (512 layers)")
    ap.add_argument("--sparsity", type=float, default=None, help="default 0.5 (0.2 with --shape)")
    ap.add_argument("--max-iter", type=int, default=None, help="Lloyd iteration cap (default 300; 20 for --large-v3)")
    ap.add_argument("--batched", action="store_true", help="Whisper-base: kmeans_batched over same-shaped layers")
    ap.add_argument("--init", default="auto", help="--large-v3: kmeans init, or several comma-separated "
                    "(e.g. auto,k-means++), each timed in turn")
    ap.add_argument("--batch", type=int, default=32, help="--large-v3: layers per kmeans_batched call")
    ap.add_argument("--limit", type=int, default=0, help="--large-v3: only the first N layers (for a CPU smoke run)")
    ap.add_argument("--device", default="cpu", help="device for Whisper-base (default cpu); --large-v3 uses cuda if available")
    ap.add_argument("--force-cpu", action="store_true", help="--large-v3: stay on CPU even if CUDA is available")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.one_shape:
        import json

        args.sparsity = 0.2 if args.sparsity is None else args.sparsity
        print(json.dumps(one_shape(args)), flush=True)
        return 0
    if args.shape:
        args.sparsity = 0.2 if args.sparsity is None else args.sparsity
        bench_shapes(args)
        return 0
    args.sparsity = 0.5 if args.sparsity is None else args.sparsity
    if args.large_v3:
        args.max_iter = args.max_iter or 20
        bench_large_v3(args)
    else:
        args.max_iter = args.max_iter or 300
        bench_base(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
