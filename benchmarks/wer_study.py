"""WER study: uncompressed vs magnitude (structured, unstructured) vs plain k-means (the paper) vs the
improved data-free methods, at several sparsities, with uniform and automatic (sensitivity-based) allocation.

Run (resumable; results are appended as JSON lines, finished rows are skipped on a rerun):

    python benchmarks/wer_study.py run --preset encoder-ffn
    python benchmarks/wer_study.py report            # table + benchmarks/wer_vs_sparsity.png

Transcription: Whisper greedy decoding (language en, task transcribe) of all clips in ONE batch with
``model.generate`` -- the same decoding ``prunelab.speech.transcribe`` does clip by clip through the pipeline
(identical WER on the uncompressed model), ~3x faster on CPU -- with ``max_new_tokens`` capped (default 64;
the longest reference is ~20 tokens) so a broken model's repetition loops cannot eat the budget.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from prunelab.speech.audio import load_audio  # noqa: E402
from prunelab.compression.cache import LayerCache  # noqa: E402
from prunelab.compression import CompressionConfig, compress  # noqa: E402
from prunelab.speech.data import load_eval_set  # noqa: E402
from prunelab.compression.layers import find_layers  # noqa: E402
from prunelab.speech.metrics import wer  # noqa: E402

METHODS = ["magnitude", "representative", "kmeans", "hybrid", "kmeans-weighted", "magnitude-unstructured"]
RESULTS = HERE / "wer_study.jsonl"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def jobs(sparsities, presets, methods):
    """Priority order, so that a run cut short by the CPU budget still answers the main question first:
    (1) the first three methods (default: magnitude, representative, the paper's k-means) at the main
    sparsities, uniform; (2) auto
    allocation, representative first; (3) the other variants, uniform; (4) high sparsities."""
    out = [("none", "uniform", 0.0, presets[0])]
    key = list(methods[:3])  # default: magnitude, representative, kmeans
    other = [m for m in methods if m not in key]
    for preset in presets:
        main = [s for s in sparsities if s <= 0.3]
        rest = [s for s in sparsities if s > 0.3]
        stages = [(key, "uniform", main), (["representative"], "auto", main),
                  ([m for m in key if m != "representative"] + other, "auto", main), (other, "uniform", main),
                  (key, "uniform", rest), (key, "auto", rest), (other, "uniform", rest), (other, "auto", rest)]
        for ms, alloc, sps in stages:
            for s in sps:
                for m in ms:
                    if (m, alloc, s, preset) not in out:
                        out.append((m, alloc, s, preset))
    return out


def load_rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                pass  # a line cut by a crash
    return rows


def transcriber(sm, audios, max_new_tokens: int):
    fe, tok = sm.processor.feature_extractor, sm.processor.tokenizer
    feats = fe(audios, sampling_rate=16000, return_tensors="pt").input_features

    def run(model) -> list[str]:
        with torch.inference_mode():
            out = model.generate(feats, language="en", task="transcribe", num_beams=1, max_new_tokens=max_new_tokens)
        return [t.strip() for t in tok.batch_decode(out, skip_special_tokens=True)]

    return run


def cmd_run(args) -> None:
    from prunelab.models import load_model

    torch.manual_seed(0)
    utts = load_eval_set(args.data, limit=args.limit)[:: args.every]
    refs = [u.text for u in utts]
    audios = [load_audio(u.audio) for u in utts]
    sm = load_model(args.model)
    layers = find_layers(sm.model)
    run = transcriber(sm, audios, args.max_new_tokens)
    done = {(r["method"], r["allocate"], r["sparsity"], r["preset"]) for r in load_rows(args.out)}
    cache = LayerCache(max_bytes=1024 * 2**20)
    todo = [j for j in jobs(args.sparsities, args.presets, args.methods) if j not in done]
    log(f"{len(utts)} clips, {len(todo)} runs to do -> {args.out}")
    for n, (method, alloc, s, preset) in enumerate(todo):
        t0 = time.perf_counter()
        if method == "none":
            model, achieved, plan = sm.model, 0.0, {}
        else:
            cfg = CompressionConfig(method=method, sparsity=s, preset=preset, allocate=alloc, seed=0)
            small = compress(sm, cfg, cache=cache)
            model = small.model
            plan = small.compression["plan"]
            selected = [l for l in layers if l.name in plan]
            total = sum(l.params for l in selected)
            achieved = sum(l.params * (1 - plan[l.name] / l.channels) for l in selected) / total
        t1 = time.perf_counter()
        hyps = run(model)
        score = wer(refs, hyps)
        row = dict(method=method, allocate=alloc, sparsity=s, preset=preset, achieved=achieved, wer=score,
                   utterances=len(utts), ids=[u.id for u in utts], compress_s=round(t1 - t0, 1), transcribe_s=round(time.perf_counter() - t1, 1),
                   plan={k: v for k, v in plan.items()} if alloc == "auto" else None, hyps=hyps)
        with open(args.out, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
        log(f"({n + 1}/{len(todo)}) {preset} {method:<22s} {alloc:<7s} {s:.0%}: WER {score:.2%} "
            f"(achieved {achieved:.1%}, compress {t1 - t0:.0f}s, transcribe {row['transcribe_s']:.0f}s)")
        del model
        if method != "none":
            del small
        if alloc == "auto" and not (HERE / f"sensitivity_{preset}.json").exists():
            save_sensitivity(sm, preset)  # the curves are cached in-process by now: free


def real_sparsity(plan: dict, layers) -> float:
    """Fraction of the planned layers' parameters really gone after folding: a folded fc1 at K1 also removes
    C - K1 input columns of its fc2, so FFN pairs lose more than the per-output-channel count says."""
    by = {l.name: l for l in layers}
    pairs = {}
    for l in layers:
        if l.group == "ffn":
            pairs.setdefault((l.part, l.block), {})[l.kind] = l
    orig = sum(by[n].params for n in plan)
    left = 0
    for n, k in plan.items():
        l = by[n]
        cols = l.in_features
        if l.kind == "fc2":
            fc1 = pairs[(l.part, l.block)].get("fc1")
            if fc1 is not None and plan.get(fc1.name, fc1.channels) < fc1.channels:
                cols = plan[fc1.name]
        left += k * (cols + int(l.has_bias))
    return 1 - left / orig


def add_real(rows: list[dict], model_spec: str) -> None:
    from prunelab.models import load_model
    from prunelab.compression.plan import Plan

    layers = find_layers(load_model(model_spec).model)
    for r in rows:
        if r["method"] == "none":
            r["real"] = 0.0
        elif r["method"] == "magnitude-unstructured":
            r["real"] = r["achieved"]  # zeros, nothing removed structurally
        else:
            plan = r.get("plan") or Plan.from_sparsity(layers, r["sparsity"], r["preset"]).clusters
            r["real"] = real_sparsity(plan, layers)


def table(rows: list[dict]) -> str:
    base = next((r["wer"] for r in rows if r["method"] == "none"), None)
    presets = sorted({r["preset"] for r in rows if r["method"] != "none"})
    sps = sorted({r["sparsity"] for r in rows if r["method"] != "none"})
    lines = []
    if base is not None:
        lines.append(f"uncompressed WER: {base:.2%} ({rows[0]['utterances']} clips)")
    for preset in presets:
        lines.append("")
        lines.append(f"preset {preset}: WER (%) by sparsity over the compressed layers")
        lines.append(f"{'method':<24s}{'alloc':<9s}" + "".join(f"{s:>8.0%}" for s in sps))
        keys = []
        for r in rows:
            k = (r["method"], r["allocate"])
            if r["method"] != "none" and r["preset"] == preset and k not in keys:
                keys.append(k)
        for m, a in keys:
            cells = []
            for s in sps:
                r = next((r for r in rows if (r["method"], r["allocate"], r["sparsity"], r["preset"]) == (m, a, s, preset)), None)
                cells.append(f"{100 * r['wer']:>8.1f}" if r else f"{'-':>8s}")
            lines.append(f"{m:<24s}{a:<9s}" + "".join(cells))
        lines.append("")
        lines.append("parameters of those layers really removed after folding (%), structured methods")
        lines.append(f"{'allocation':<33s}" + "".join(f"{s:>8.0%}" for s in sps))
        for a in ("uniform", "auto"):
            cells = []
            for s in sps:
                r = next((r for r in rows if r["allocate"] == a and r["sparsity"] == s and r["preset"] == preset
                          and r["method"] not in ("none", "magnitude-unstructured") and "real" in r), None)
                cells.append(f"{100 * r['real']:>8.1f}" if r else f"{'-':>8s}")
            lines.append(f"{a:<33s}" + "".join(cells))
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    base = next((r["wer"] for r in rows if r["method"] == "none"), None)
    presets = sorted({r["preset"] for r in rows if r["method"] != "none"})
    fig, axes = plt.subplots(1, 2 * len(presets), figsize=(12 * len(presets), 4.8), sharey=True, squeeze=False)
    colors = {m: f"C{i}" for i, m in enumerate(METHODS)}
    for pi, preset in enumerate(presets):
        for ai, alloc in enumerate(("uniform", "auto")):
            ax = axes[0][2 * pi + ai]
            for m in METHODS:
                pts = sorted((r.get("real", r["sparsity"]), r["wer"]) for r in rows
                             if r["method"] == m and r["allocate"] == alloc and r["preset"] == preset)
                if pts:
                    ax.plot([100 * p[0] for p in pts], [100 * p[1] for p in pts], marker="o", color=colors[m],
                            ls="--" if m.startswith("magnitude") else "-", label=m + (" (paper)" if m == "kmeans" else ""))
            if base is not None:
                ax.axhline(100 * base, color="k", lw=0.8, ls=":", label="uncompressed")
            ax.set_title(f"{preset}, {alloc} allocation")
            ax.set_xlabel("parameters of the compressed layers removed, after folding (%)")
            ax.set_yscale("log")
            ax.grid(alpha=0.3)
            if 2 * pi + ai == 0:
                ax.set_ylabel("WER (%)")
                ax.legend(fontsize=8)
    fig.suptitle("Whisper-base WER vs sparsity (data-free, training-free)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def on_subset(rows: list[dict], data: str, every: int) -> list[dict]:
    """Rescore every row on the clips of the study subset (``every``-th clip), from the stored per-clip
    hypotheses: batched greedy decoding treats each clip independently, so a row run on more clips
    gives the subset's WER exactly."""
    utts = load_eval_set(data)
    ref = {u.id: u.text for u in utts}
    subset = [u.id for u in utts[::every]]
    out = []
    for r in rows:
        ids = r.get("ids") or [u.id for u in utts][: r["utterances"]]
        hyp = dict(zip(ids, r["hyps"]))
        if not all(i in hyp for i in subset):
            continue
        r = dict(r, wer=wer([ref[i] for i in subset], [hyp[i] for i in subset]), utterances=len(subset),
                 wer_all=r["wer"] if len(ids) > len(subset) else None)
        out.append(r)
    return out


def cmd_report(args) -> None:
    rows = on_subset(load_rows(args.out), args.data, args.every)
    add_real(rows, args.model)
    print(table(rows))
    if rows:
        plot(rows, args.plot)
        print(f"\nplot: {args.plot}", file=sys.stderr)


def save_sensitivity(sm, preset: str) -> None:
    """Sensitivity curves of the preset's layers + plot (benchmarks/sensitivity_<preset>.png / .json)."""
    from prunelab.compression.plan import PRESETS
    from prunelab.compression.sensitivity import sensitivity_curves
    from prunelab.report.plots import sensitivity_chart

    layers = [l for l in find_layers(sm.model) if PRESETS[preset](l)]
    curves = sensitivity_curves(sm.model, layers, cache_key=sm.spec)
    fig = sensitivity_chart(curves, title=f"Whisper-base {preset}: importance-weighted k-means distortion")
    fig.savefig(HERE / f"sensitivity_{preset}.png", dpi=110)
    with open(HERE / f"sensitivity_{preset}.json", "w") as f:
        json.dump([c.as_dict() for c in curves], f, indent=1)


def cmd_sensitivity(args) -> None:
    from prunelab.models import load_model

    sm = load_model(args.model)
    for preset in args.presets:
        save_sensitivity(sm, preset)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["run", "report", "sensitivity"])
    p.add_argument("--model", default="bundled:whisper-base")
    p.add_argument("--data", default=str(HERE / "data"))
    p.add_argument("--limit", type=int)
    p.add_argument("--every", type=int, default=1, help="use every N-th clip (sorted by id) to fit the CPU budget")
    p.add_argument("--presets", default="encoder-ffn", type=lambda t: t.split(","))
    p.add_argument("--methods", default=",".join(METHODS), type=lambda t: t.split(","))
    p.add_argument("--sparsities", default="0.1,0.2,0.3,0.5", type=lambda t: [float(x) for x in t.split(",")])
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--plot", type=Path, default=HERE / "wer_vs_sparsity.png")
    args = p.parse_args()
    {"run": cmd_run, "report": cmd_report, "sensitivity": cmd_sensitivity}[args.command](args)


if __name__ == "__main__":
    main()
