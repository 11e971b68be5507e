"""Probe (tune clips only): can Whisper-base's token embedding, tied to its output layer, be cut to a lower rank?

    OMP_NUM_THREADS=1 python benchmarks/probe_embedding_rank.py

Why. After round 5 of the fidelity study, target (b) (5 % of ALL parameters removed within 3 WER points, by
compression alone) was missed at 2.17 %. The tied token embedding ``E`` [51,865 x 512] is 36.6 % of Whisper-base;
a rank-``r`` factorisation ``E = A B`` (A [V, r], B [r, D]) stores ``V r + r D`` numbers and makes the output layer
cheaper too (``(h B^T) A^T``), removing 4.26 % of all parameters at r = 448 and 8.87 % at r = 384. It is data-free
(an SVD of the weights) and would have been a new foldable unit for round 6. Before building it into the library,
this probe asks whether the spectrum allows it: each row replaces the weights by their best rank-``r``
approximation (same shapes: identical outputs to the factorised form) and transcribes the 28 tune clips.

Variants: ``plain`` (SVD of E); ``centered`` (SVD of E - mean row, the mean row kept exactly: for the logits the
mean only adds the same number to every token's logit); and, with the output layer untied (diagnostics, not a
compression), the low rank on the input side only (``in``), on the output side only (``out``), and weighted by
the decoder's final LayerNorm gain (``out-gain``, ``both-gain``: SVD of ``(E - mean) diag(gamma)``, the hidden
state that meets E is ``gamma * n + beta``). The test sets are never touched.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from prunelab import load_model, wer  # noqa: E402
from prunelab.speech.data import load_eval_set  # noqa: E402
from prunelab.speech.transcribe import transcribe_batch  # noqa: E402

ROWS = [("plain", 512), ("plain", 448), ("plain", 384), ("centered", 448), ("centered", 384),
        ("in", 448), ("out", 448), ("out-gain", 448), ("both-gain", 448)]


def low_rank(m: torch.Tensor, r: int) -> torch.Tensor:
    """Best rank-``r`` approximation of ``m`` [V, D] (float64 SVD)."""
    u, s, vh = torch.linalg.svd(m, full_matrices=False)
    return (u[:, :r] * s[:r]) @ vh[:r]


def main() -> None:
    utts = load_eval_set(HERE / "clips" / "tune")
    refs = [u.text for u in utts]
    sm = load_model()
    net = sm.model
    e0 = net.model.decoder.embed_tokens.weight.detach().clone().double()  # [V, D]
    gain = net.model.decoder.layer_norm.weight.detach().double()  # [D]
    mean = e0.mean(0)
    untied = torch.nn.Linear(e0.shape[1], e0.shape[0], bias=False)
    total = sum(p.numel() for p in net.parameters())
    print(f"{len(utts)} tune clips; E {tuple(e0.shape)}; centered energy kept at r = 448 / 384: "
          + " / ".join(f"{float(k):.4f}" for k in _energy(e0 - mean, (448, 384))))
    for variant, r in ROWS:
        if variant == "plain":
            cut = low_rank(e0, r)
        elif variant.endswith("gain"):
            cut = low_rank((e0 - mean) * gain, r) / gain + mean
        else:
            cut = low_rank(e0 - mean, r) + mean
        e_in = cut if variant in ("plain", "centered", "in", "both-gain") else e0
        e_out = cut if variant in ("plain", "centered", "out", "out-gain", "both-gain") else e0
        if variant in ("in", "out", "out-gain"):
            net.proj_out = untied  # input and output sides differ: diagnostics only
        with torch.no_grad():
            net.model.decoder.embed_tokens.weight.copy_(e_in.float())
            net.proj_out.weight.copy_(e_out.float())  # (tied variants: the same tensor)
        t0 = time.perf_counter()
        hyps = transcribe_batch(sm, [u.audio for u in utts])
        removed = (e0.shape[0] * (e0.shape[1] - r) - r * e0.shape[1]) / total if variant in ("plain", "centered") else None
        print(f"{variant:<10s} r={r:<4d} tune WER {wer(refs, hyps):7.2%}  "
              f"{'removed ' + format(removed, '.2%') if removed is not None else '(diagnostic)':<16s} "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)


def _energy(m: torch.Tensor, ranks: tuple[int, ...]) -> list[torch.Tensor]:
    s2 = torch.linalg.svdvals(m) ** 2
    cum = s2.cumsum(0) / s2.sum()
    return [cum[r - 1] for r in ranks]


if __name__ == "__main__":
    main()
