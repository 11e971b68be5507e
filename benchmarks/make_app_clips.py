#!/usr/bin/env python
"""Generate the app's bundled evaluation clips in ``assets/eval/`` ("Evaluate this plan").

12 clips: 6 synthetic voices (espeak-ng and flite, the voices of ``make_clips.py``) x 2 sentences each,
12 short English sentences written for this set. They are disjoint from ``benchmarks/clips/tune`` and
``/test``, ``benchmarks/data`` and ``assets/clip*.txt`` (checked below), so a plan tuned in the app is
scored on clips no setting of the project was chosen on. Evaluation only: nothing is ever computed from
them (the compression is data-free). Same format as ``make_clips.py`` (16 kHz mono, 0.25 s padding, -1 dBFS).

    python benchmarks/make_app_clips.py
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_clips import synthesize  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "assets" / "eval"
VOICES = ["espeak_us", "espeak_gb_f3", "espeak_us_m3_fast", "flite_slt", "flite_rms", "flite_awb"]
SENTENCES = [
    "The baker sold every loaf before nine.",
    "A red kite drifted over the quiet beach.",
    "My brother painted the garden shed bright blue.",
    "The library will open late on Monday.",
    "Two owls were sitting on the old barn roof.",
    "Please bring a warm jacket for the boat trip.",
    "The tailor sewed new buttons on my coat.",
    "We heard the train whistle across the fields.",
    "The teacher handed out maps of the city.",
    "Her sister collects stamps from distant islands.",
    "The doctor told him to rest for a week.",
    "Green lamps lit the narrow street at night.",
]


def used_elsewhere() -> set[str]:
    texts = set()
    for folder in (ROOT / "benchmarks" / "clips" / "tune", ROOT / "benchmarks" / "clips" / "test",
                   ROOT / "benchmarks" / "data", ROOT / "assets"):
        texts |= {p.read_text(encoding="utf-8").strip().lower() for p in folder.glob("*.txt")}
    return texts


def main() -> None:
    clash = {s for s in SENTENCES if s.lower() in used_elsewhere()}
    if clash:
        raise SystemExit(f"sentences already used by another clip set: {clash}")
    OUT.mkdir(parents=True, exist_ok=True)
    for i, text in enumerate(SENTENCES):
        voice = VOICES[i % len(VOICES)]
        name = f"{voice}_{i + 1:02d}"
        synthesize(voice, text, OUT / f"{name}.wav")
        (OUT / f"{name}.txt").write_text(text + "\n", encoding="utf-8")
        print(name, text)
    (OUT / "README.md").write_text(
        "# The app's evaluation clips\n\nWritten by `benchmarks/make_app_clips.py`: 12 sentences, 6 synthetic voices "
        "(espeak-ng, flite), disjoint from every other clip set of the project. Used by **Evaluate this plan**; "
        "evaluation only.\n", encoding="utf-8")


if __name__ == "__main__":
    main()
