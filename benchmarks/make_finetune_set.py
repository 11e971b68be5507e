#!/usr/bin/env python
"""A 256-clip unlabelled fine-tuning set: the issue's full fine-tune budget (<= 256 clips), never test clips.

The bundled calibration set has 65 clips (17 real, 48 synthetic); no other unlabelled speech that is not a test clip
is offline here. This script adds 191 clips by having the calibration set's OTHER synthetic voices speak its 48
synthetic sentences (each sentence was spoken once, by one of the 8 calibration voices; here by the other 7, in
turn, until 191 are made). So every clip's sentence and voice are the calibration set's. Checked again here
(:func:`overlaps`): no sentence equals, or shares five words in a row with, a sentence of the sets the fine-tuned
rows are reported on (``REPORT_SETS``); an overlap with another set is printed. (One there is: the calibration
sentence "A tiny spider spun its web between the handlebars of my scooter." shares "a tiny spider spun its web"
with one of test5's 48 sentences, made later by make_clips.py, whose check missed it; test6 shares none.) The real
clips cannot be multiplied; they stay the 17 of the bundled set.

    python benchmarks/make_finetune_set.py [OUT]   # default $FINETUNE_SET or /tmp/prunelab-finetune-256

Writes OUT/*.wav (16 kHz mono 16-bit; the 65 bundled clips copied, then ``r_NNN_<voice>_<sentence>.wav``) and
OUT/texts.json (what each clip says; not used by distillation, which labels with the teacher). Deterministic; 38 MB,
so it is not committed.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import make_calibration_set as cal  # noqa: E402
from sentences import overlaps as shared  # noqa: E402

TOTAL = 256
REPORT_SETS = ("benchmarks/clips/test6", "benchmarks/clips/real-test")


def overlaps() -> list[tuple[str, str, str]]:
    """(set, calibration sentence, its sentence) for every equal or five-words-in-a-row pair, the known one
    included (:func:`sentences.overlaps`, the check every clip-making script uses)."""
    return shared(cal.SENTENCES, cal.other_sentences(), known=set())


def revoiced(n: int) -> list[tuple[str, str, int]]:
    """The first ``n`` (voice, sentence, sentence index) pairs not in the bundled set: round r = 1..7 gives sentence
    i the voice r places after its own in :data:`make_calibration_set.VOICES`, sentences in order within a round."""
    voices = list(cal.VOICES)
    pairs = [(voices[(i + r) % len(voices)], s, i) for r in range(1, len(voices)) for i, s in enumerate(cal.SENTENCES)]
    if n > len(pairs):
        raise SystemExit(f"only {len(pairs)} new (voice, sentence) pairs exist; asked for {n}")
    return pairs[:n]


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("FINETUNE_SET", "/tmp/prunelab-finetune-256"))
    for where, s, o in overlaps():
        if any(where.startswith(r) for r in REPORT_SETS):
            sys.exit(f"{s!r} overlaps {o!r} of {where}, a set the fine-tuned rows are reported on")
        print(f"note: {s!r} shares a phrase with {o!r} ({where})")
    if not any(w.startswith("benchmarks/clips/test6") for w in cal.other_sentences()):
        sys.exit("benchmarks/clips/test6 is not among the checked sets")
    bundled = sorted(cal.OUT.glob("*.wav"))
    if len(bundled) != 65:
        sys.exit(f"{cal.OUT} holds {len(bundled)} clips, expected 65")
    out.mkdir(parents=True, exist_ok=True)
    texts = json.loads(cal.TEXTS.read_text(encoding="utf-8"))
    for wav in bundled:
        if not (out / wav.name).exists():
            shutil.copyfile(wav, out / wav.name)
    for k, (voice, sentence, i) in enumerate(revoiced(TOTAL - len(bundled)), 1):
        name = f"r_{k:03d}_{voice}_s{i + 1:02d}.wav"
        if not (out / name).exists():
            cal.synthesize(voice, sentence, out / name)
        texts[name] = sentence
    (out / "texts.json").write_text(json.dumps(texts, indent=1) + "\n", encoding="utf-8")
    wavs = sorted(out.glob("*.wav"))
    print(f"{len(wavs)} clips, {sum(w.stat().st_size for w in wavs) / 1e6:.1f} MB -> {out}")


if __name__ == "__main__":
    main()
