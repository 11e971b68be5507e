#!/usr/bin/env python
"""Generate the synthetic English evaluation set in ``benchmarks/data/``.

Each clip is one ordinary English sentence spoken by one of several offline text-to-speech
voices (espeak-ng, flite, festival), written as ``<voice>_<nn>.wav`` (16 kHz, mono, 16-bit,
0.25 s of silence at each end) next to ``<voice>_<nn>.txt`` (the sentence). Load it with
``prunelab.speech.data.load_eval_set("benchmarks/data")``.

Needs the Debian packages ``espeak-ng``, ``flite``, ``festival`` and ``sox``. The outputs are
committed, so this only has to be run again to change the set::

    python benchmarks/make_eval_set.py            # (re)write benchmarks/data
    python benchmarks/make_eval_set.py --check    # also transcribe with Whisper-base, print WER per voice
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

OUT = Path(__file__).resolve().parent / "data"

# voice name -> command template producing a wav at {out} from the text file {txt} / text {text}
VOICES: dict[str, list[str]] = {
    "espeak_us": ["espeak-ng", "-v", "en-us", "-s", "150", "-w", "{out}", "-f", "{txt}"],
    "espeak_gb_f": ["espeak-ng", "-v", "en-gb+f3", "-s", "145", "-w", "{out}", "-f", "{txt}"],
    "flite_slt": ["flite", "-voice", "slt", "-f", "{txt}", "-o", "{out}"],
    "flite_rms": ["flite", "-voice", "rms", "-f", "{txt}", "-o", "{out}"],
    "flite_awb": ["flite", "-voice", "awb", "-f", "{txt}", "-o", "{out}"],
    "flite_kal16": ["flite", "-voice", "kal16", "-f", "{txt}", "-o", "{out}"],
    "festival_kal": ["text2wave", "-eval", "(voice_kal_diphone)", "-o", "{out}", "{txt}"],
}

# Voices left out after checking them with Whisper-base (see data/README.md); keep empty to use all.
DROPPED: set[str] = set()

# Ordinary, varied sentences without numbers; each voice reads a different slice of the list.
SENTENCES = [
    "The train was late this morning, so I had time to read the newspaper.",
    "She opened the window and let the cool evening air into the room.",
    "My brother likes to cook fresh pasta for his friends on the weekend.",
    "Please remember to turn off the lights before you leave the office.",
    "The children played in the park until the sun went down.",
    "We bought apples, bread and cheese at the market near the station.",
    "The doctor told him to drink more water and get plenty of sleep.",
    "It started to rain just as we reached the top of the hill.",
    "Our teacher read us a story about a brave fox and a clever crow.",
    "He forgot his umbrella at the restaurant and had to go back for it.",
    "The new library has a quiet room where students can study all day.",
    "I would like a cup of tea with milk and a slice of lemon cake.",
    "They painted the kitchen a pale shade of yellow last summer.",
    "The old man walked his dog along the beach every single morning.",
    "Could you tell me the way to the nearest post office, please?",
    "The museum is closed on Monday, but it opens early on Tuesday.",
    "After dinner we sat by the fire and talked about our holiday plans.",
    "The farmer planted corn and beans in the field behind his house.",
    "She sent a letter to her grandmother who lives by the sea.",
    "The meeting was moved to the afternoon because the manager was ill.",
    "A small bird built its nest in the tree outside my bedroom window.",
    "The bus driver waited for the old lady to find her seat.",
    "We need to buy a new lamp for the living room before the party.",
    "The river was so clear that we could see the fish swimming below.",
    "He practised the piano for an hour every evening after school.",
    "The baker sells warm bread and sweet rolls early in the morning.",
    "My sister found a lost kitten in the garden and gave it some milk.",
    "The wind blew the leaves across the empty street in the autumn.",
]
PER_VOICE = 4


def _run(cmd: list[str]) -> None:
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {r.stderr.strip()}")


def synthesize(voice: str, text: str, out: Path) -> None:
    """Speak ``text`` with ``voice`` into ``out`` as 16 kHz mono 16-bit wav with 0.25 s padding."""
    with tempfile.TemporaryDirectory() as tmp:
        txt = Path(tmp) / "text.txt"
        txt.write_text(text + "\n", encoding="utf-8")
        raw = Path(tmp) / "raw.wav"
        _run([a.format(out=raw, txt=txt, text=text) for a in VOICES[voice]])
        _run(["sox", str(raw), "-r", "16000", "-c", "1", "-b", "16", str(out),
              "gain", "-n", "-1", "pad", "0.25", "0.25"])


def build(out_dir: Path = OUT) -> list[Path]:
    for tool in ("espeak-ng", "flite", "text2wave", "sox"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed (apt-get install espeak-ng flite festival sox)")
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in list(out_dir.glob("*.wav")) + list(out_dir.glob("*.txt")):
        old.unlink()
    voices = [v for v in VOICES if v not in DROPPED]
    if len(SENTENCES) < PER_VOICE * len(voices):
        raise SystemExit("not enough sentences for every voice")
    written = []
    for vi, voice in enumerate(voices):
        for j in range(PER_VOICE):
            text = SENTENCES[vi * PER_VOICE + j]
            stem = out_dir / f"{voice}_{j + 1:02d}"
            synthesize(voice, text, stem.with_suffix(".wav"))
            stem.with_suffix(".txt").write_text(text + "\n", encoding="utf-8")
            written.append(stem.with_suffix(".wav"))
    return written


def check(out_dir: Path = OUT) -> None:
    """Transcribe the set with the bundled Whisper-base and print WER per voice."""
    from collections import defaultdict

    import soundfile as sf

    from prunelab.speech.data import load_eval_set
    from prunelab.speech.metrics import wer
    from prunelab.models import load_model
    from prunelab.speech.transcribe import transcribe

    model = load_model("bundled:whisper-base")
    refs, hyps = defaultdict(list), defaultdict(list)
    for u in load_eval_set(out_dir):
        voice = u.id.rsplit("_", 1)[0]
        hyp = transcribe(model, u.audio)
        refs[voice].append(u.text)
        hyps[voice].append(hyp)
        dur = sf.info(str(u.audio)).duration
        print(f"{u.id:18s} {dur:4.1f}s  wer={wer(u.text, hyp):5.2f}  {hyp}")
    print()
    for voice in refs:
        print(f"{voice:14s} WER {100 * wer(refs[voice], hyps[voice]):5.1f}%")
    all_r = [r for v in refs for r in refs[v]]
    all_h = [h for v in hyps for h in hyps[v]]
    print(f"{'all':14s} WER {100 * wer(all_r, all_h):5.1f}%")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--check", action="store_true", help="transcribe with Whisper-base and print WER")
    ap.add_argument("--check-only", action="store_true", help="do not regenerate, only check")
    args = ap.parse_args(argv)
    if not args.check_only:
        files = build(args.out)
        size = sum(f.stat().st_size for f in files)
        print(f"wrote {len(files)} clips to {args.out} ({size / 1e6:.2f} MB)")
    if args.check or args.check_only:
        check(args.out)


if __name__ == "__main__":
    main()
