"""Probe (tune clips only): the decoder's foldable units with the per-layer "auto" allocation, alone and together.

    python benchmarks/probe_decoder_units.py                   # every row below
    python benchmarks/probe_decoder_units.py --svd-allocation  # only the query/key rows allocated by SVD energy
    python benchmarks/probe_decoder_units.py --other-attention # encoder / cross-attention q/k at 10-25 %, auto

Why. After round 5 (target (b), 5 % of ALL parameters removed within 3 WER points by compression alone, missed at
2.17 %), two leads were left unmeasured: the decoder's FFN neurons at small sparsities (only 30 % had been
measured, 35.4 % tune WER with predictive), and the per-layer weight-distortion allocation (``allocate="auto"``,
which round 4 found better than uniform on the encoder FFN) applied to the one cheap unit, the decoder
self-attention's query/key dims (``lowrank-qk``), which might let it go past 50 % (uniform 75 %: 51.8). Together
they are the only combination of measured units that reaches ~5 %. The library compresses one method at a
time, so the combined rows here graft the decoder self-attention modules of one compressed copy into the other
(the two touch disjoint modules, so the graft is exactly both compressions). ``--svd-allocation``: the same
greedy allocation as ``auto``, but over the query/key fold's own curves (the singular energy each layer's heads
lose at each rank, as a fraction of the layer's) instead of the importance-weighted k-means curves ``auto`` uses.

``--other-attention`` (session 9): the last attention rows never measured with ``auto``: the encoder's and the
decoder cross-attention's query/key dims at 10 and 25 % (uniform, round 5: encoder 25 % +9.5 points on tune,
cross-attention 50 % broken); only if one of them cost almost nothing could the cheap units reach 5 %.

Every row runs on the 28 tune clips; no test set is touched. Figures: benchmarks/WER_STUDY.md ("After round 5").
"""
from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import torch  # noqa: E402

from prunelab import CompressionConfig, SpeechModel, compress, load_model, wer  # noqa: E402
from prunelab.compression import Plan  # noqa: E402
from prunelab.compression.allocate import allocate_from_curves  # noqa: E402
from prunelab.compression.sensitivity import SensitivityCurve  # noqa: E402
from prunelab.methods.lowrank import _affine  # noqa: E402
from prunelab.speech.data import load_eval_set  # noqa: E402
from prunelab.speech.transcribe import transcribe_batch  # noqa: E402


def ffn(sm: SpeechModel, method: str, s: float, allocate: str) -> SpeechModel:
    """The decoder's FFN neurons folded by ``method`` at sparsity ``s``."""
    return compress(sm, CompressionConfig(method=method, sparsity=s, preset="decoder-fc1", units="foldable",
                                          allocate=allocate))


def qk(sm: SpeechModel, s: float, allocate: str = "auto") -> SpeechModel:
    """The decoder self-attention's query/key dims cut to their best rank per head at sparsity ``s``."""
    return compress(sm, CompressionConfig(method="lowrank-qk", sparsity=s, preset="decoder-self-qk",
                                          units="foldable", allocate=allocate))


def graft(a: SpeechModel, b: SpeechModel) -> SpeechModel:
    """A copy of ``a`` with ``b``'s decoder self-attention modules (``a`` and ``b`` compressed disjoint modules)."""
    g = copy.deepcopy(a)
    for la, lb in zip(g.model.model.decoder.layers, b.model.model.decoder.layers):
        la.self_attn = lb.self_attn
    return g


@torch.no_grad()
def svd_curves(sm: SpeechModel) -> list[SensitivityCurve]:
    """Per decoder self-attention: the singular energy its heads' score forms lose at each rank (the same
    LayerNorm-normalised forms ``lowrank-qk`` cuts), K = heads x rank."""
    curves = []
    for i, layer in enumerate(sm.model.model.decoder.layers):
        att, ln = layer.self_attn, layer.self_attn_layer_norm
        heads = sm.model.config.decoder_attention_heads
        w, b, kw = att.q_proj.weight.double(), att.q_proj.bias.double(), att.k_proj.weight.double()
        d, hd = w.shape[1], w.shape[0] // heads
        t = _affine(ln.weight, ln.bias, d)
        q_rows = torch.cat([w, b[:, None]], 1)
        k_rows = torch.cat([kw, torch.zeros(kw.shape[0], 1, dtype=torch.float64)], 1)
        s2 = torch.stack([torch.linalg.svdvals((q_rows[h * hd:(h + 1) * hd] @ t).T
                                               @ (k_rows[h * hd:(h + 1) * hd] @ t)[:, :d]) ** 2
                          for h in range(heads)])  # [H, hd]
        curves.append(SensitivityCurve(
            f"model.decoder.layers.{i}.self_attn.q_proj", f"dec.{i}.q", heads * hd, 2 * d + 1,
            [heads * r for r in range(1, hd + 1)], [float(s2[:, r:].sum()) for r in range(1, hd + 1)],
            float(s2.sum()), weighted=False, method="lowrank-qk"))
    return curves


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--svd-allocation", action="store_true")
    ap.add_argument("--other-attention", action="store_true")
    args = ap.parse_args()
    utts = load_eval_set(HERE / "clips" / "tune")
    refs = [u.text for u in utts]
    sm = load_model()
    total = sum(p.numel() for p in sm.model.parameters())

    def row(name: str, small: SpeechModel) -> None:
        t0 = time.perf_counter()
        hyps = transcribe_batch(small, [u.audio for u in utts])
        removed = 1 - sum(p.numel() for p in small.model.parameters()) / total
        print(f"{name:<50s} removed {removed:6.2%}  tune WER {wer(refs, hyps):7.2%}  "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)

    row("uncompressed", sm)
    if args.other_attention:
        for preset in ("encoder-qk", "decoder-cross-qk"):
            for s in (0.1, 0.25):
                row(f"lowrank-qk {preset} {s:.0%} alloc=auto", compress(sm, CompressionConfig(
                    method="lowrank-qk", sparsity=s, preset=preset, units="foldable", allocate="auto")))
        return
    if args.svd_allocation:
        curves, heads = svd_curves(sm), sm.model.config.decoder_attention_heads
        for s in (0.5, 0.6):
            plan = allocate_from_curves(curves, s)
            plan = Plan({n: heads * max(1, round(k / heads)) for n, k in plan.clusters.items()})
            print(f"{s:.0%}: K per layer {list(plan.clusters.values())}")
            row(f"lowrank-qk decoder-self-qk {s:.0%} svd-allocated", compress(sm, CompressionConfig(
                method="lowrank-qk", plan=plan, units="foldable")))
        return
    for method, allocate in (("predictive", "uniform"), ("predictive", "auto"), ("kmeans", "uniform")):
        for s in (0.1, 0.2):
            row(f"{method} decoder-fc1 {s:.0%} alloc={allocate}", ffn(sm, method, s, allocate))
    row("lowrank-qk attention-qk 40% alloc=auto", compress(sm, CompressionConfig(
        method="lowrank-qk", sparsity=0.4, preset="attention-qk", units="foldable", allocate="auto")))
    ffn10 = ffn(sm, "predictive", 0.1, "auto")
    q50 = qk(sm, 0.5)
    for s in (0.5, 0.6, 0.7, 0.75, 0.8):
        q = q50 if s == 0.5 else qk(sm, s)
        row(f"lowrank-qk decoder-self-qk {s:.0%} alloc=auto", q)
        if s in (0.5, 0.7, 0.75):
            row("  + predictive decoder-fc1 10% alloc=auto", graft(ffn10, q))
    # k-means was the flattest FFN curve above (10 % -> 20 %), so: its own auto allocation, and with q/k at 50 %
    row("kmeans decoder-fc1 30% alloc=uniform", ffn(sm, "kmeans", 0.3, "uniform"))
    for s in (0.1, 0.2, 0.3):
        f = ffn(sm, "kmeans", s, "auto")
        row(f"kmeans decoder-fc1 {s:.0%} alloc=auto", f)
        if s >= 0.2:
            row("  + lowrank-qk decoder-self-qk 50% alloc=auto", graft(f, q50))


if __name__ == "__main__":
    main()
