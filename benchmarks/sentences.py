"""What two clip sets may not share: the same sentence, or five words in a row. One check for every script that
writes clips (make_clips.py, make_calibration_set.py, make_finetune_set.py), so a set made by one cannot leak into
a set checked by another (make_clips.py once compared whole sentences only, and one test5 sentence shares
"a tiny spider spun its" with a calibration sentence)."""
from __future__ import annotations

import re

KNOWN_OVERLAPS = {("A tiny spider spun its web between the handlebars of my scooter.",
                   "A tiny spider spun its web across the garden gate.")}
"""Overlaps found after the sets were made and used (calibration sentence, test5 sentence): reported in
WER_STUDY.md ("A leak found afterwards"), kept so the published sets stay as they were measured."""


def norm(sentence: str) -> str:
    """Lower case, letters / digits / apostrophes, single spaces."""
    return " ".join("".join(c for c in sentence.lower() if c.isalnum() or c.isspace() or c == "'").split())


def ngrams(sentence: str, n: int = 5) -> set[tuple[str, ...]]:
    """The runs of ``n`` words of a sentence (punctuation dropped)."""
    w = re.sub(r"[^a-z' ]", " ", sentence.lower()).split()
    return {tuple(w[i:i + n]) for i in range(len(w) - n + 1)}


def overlaps(mine: list[str], others: dict[str, list[str]], known: set[tuple[str, str]] = KNOWN_OVERLAPS
             ) -> list[tuple[str, str, str]]:
    """``(where, my sentence, its sentence)`` for every pair equal or sharing five words in a row, except
    ``known`` pairs (either order)."""
    found = []
    grams = {s: ngrams(s) for s in mine}
    for where, sentences in others.items():
        for o in sentences:
            for s, g in grams.items():
                if (s, o) in known or (o, s) in known:
                    continue
                if norm(s) == norm(o) or g & ngrams(o):
                    found.append((where, s, o))
    return found
