"""Word error rate with Whisper's English text normaliser, and word-level diffs for display."""
from __future__ import annotations

from functools import lru_cache

# transformers ships EnglishTextNormalizer but not the British->American spelling list that goes
# with it (that lives in each hub checkpoint's normalizer.json). A short list of common words
# covers what a demo needs; unknown words are left as they are.
_BRITISH_TO_AMERICAN = {
    "colour": "color", "colours": "colors", "coloured": "colored", "favour": "favor",
    "favourite": "favorite", "favourites": "favorites", "flavour": "flavor", "flavours": "flavors",
    "honour": "honor", "humour": "humor", "labour": "labor", "neighbour": "neighbor",
    "neighbours": "neighbors", "neighbourhood": "neighborhood", "behaviour": "behavior",
    "harbour": "harbor", "rumour": "rumor", "vapour": "vapor", "odour": "odor", "armour": "armor",
    "centre": "center", "centres": "centers", "theatre": "theater", "theatres": "theaters",
    "metre": "meter", "metres": "meters", "litre": "liter", "litres": "liters", "fibre": "fiber",
    "organise": "organize", "organised": "organized", "organisation": "organization",
    "realise": "realize", "realised": "realized", "recognise": "recognize", "recognised": "recognized",
    "apologise": "apologize", "apologised": "apologized", "organising": "organizing",
    "realising": "realizing", "recognising": "recognizing", "analyse": "analyze",
    "analysed": "analyzed", "paralyse": "paralyze", "travelled": "traveled",
    "travelling": "traveling", "traveller": "traveler", "cancelled": "canceled",
    "cancelling": "canceling", "labelled": "labeled", "modelled": "modeled", "jewellery": "jewelry",
    "catalogue": "catalog", "dialogue": "dialog", "programme": "program", "programmes": "programs",
    "defence": "defense", "offence": "offense", "licence": "license", "practise": "practice",
    "grey": "gray", "tyre": "tire", "tyres": "tires", "plough": "plow", "cheque": "check",
    "aeroplane": "airplane", "aluminium": "aluminum", "mum": "mom", "pyjamas": "pajamas",
    "sceptical": "skeptical", "storey": "story", "manoeuvre": "maneuver", "moustache": "mustache",
}


@lru_cache(maxsize=1)
def _normalizer():
    from transformers.models.whisper.english_normalizer import EnglishTextNormalizer

    return EnglishTextNormalizer(_BRITISH_TO_AMERICAN)


def normalize(text: str) -> str:
    """Whisper's English normaliser: lower case, no punctuation, numbers and spellings unified.

    ``normalize("Hello, World!") == "hello world"``.
    """
    if text is None:
        return ""
    words = _normalizer()(str(text)).split()
    # The normaliser can leave stray symbols (e.g. "..." -> "."); they are not words.
    return " ".join(w for w in words if any(c.isalnum() for c in w))


def _as_list(x: list[str] | tuple[str, ...] | str) -> list[str]:
    if isinstance(x, str):
        return [x]
    return [("" if t is None else str(t)) for t in x]


def _error_counts(references: list[str], hypotheses: list[str]) -> tuple[int, int]:
    """(substitutions + deletions + insertions, number of reference words) over the corpus."""
    errors = 0
    ref_words = 0
    pairs_ref, pairs_hyp = [], []
    for r, h in zip(references, hypotheses):
        r_words, h_words = r.split(), h.split()
        if not r_words:
            errors += len(h_words)  # every hypothesis word is an insertion
            continue
        if not h_words:
            errors += len(r_words)
            ref_words += len(r_words)
            continue
        pairs_ref.append(r)
        pairs_hyp.append(h)
    if pairs_ref:
        import jiwer  # (imported here: `import prunelab` stays light, e.g. on a GPU box without it)

        out = jiwer.process_words(pairs_ref, pairs_hyp)
        errors += out.substitutions + out.deletions + out.insertions
        ref_words += out.hits + out.substitutions + out.deletions
    return errors, ref_words


def wer(references: list[str] | str, hypotheses: list[str] | str, *, normalize_text: bool = True) -> float:
    """Corpus-level word error rate, as a fraction (0.25 = 25 %), on normalised text.

    Errors and reference words are summed over all pairs before dividing. If the references hold
    no words at all (after normalisation), the result is 0.0 when the hypotheses are empty too and
    1.0 otherwise (rather than dividing by zero).
    """
    refs, hyps = _as_list(references), _as_list(hypotheses)
    if len(refs) != len(hyps):
        raise ValueError(f"wer() needs as many hypotheses as references (got {len(refs)} and {len(hyps)})")
    if normalize_text:
        refs = [normalize(r) for r in refs]
        hyps = [normalize(h) for h in hyps]
    errors, n_ref = _error_counts(refs, hyps)
    if n_ref == 0:
        return 0.0 if errors == 0 else 1.0
    return errors / n_ref


def word_diff(reference: str, hypothesis: str, *, normalize_text: bool = True) -> list[tuple[str, str]]:
    """Word-level alignment of ``hypothesis`` against ``reference``, for highlighting.

    Returns a list of ``(op, words)`` in reading order, where ``op`` is one of
    ``"equal"`` (words both share), ``"substitute"`` (the hypothesis words said instead of
    reference words; the reference words are not included), ``"delete"`` (reference words the
    hypothesis missed) or ``"insert"`` (extra hypothesis words). ``words`` is space-joined.
    Use :func:`word_diff_detailed` to get the replaced reference words of substitutions too.
    """
    return [(op, hyp if op in ("substitute", "insert") else ref) for op, ref, hyp in word_diff_detailed(
        reference, hypothesis, normalize_text=normalize_text)]


def word_diff_detailed(
    reference: str, hypothesis: str, *, normalize_text: bool = True
) -> list[tuple[str, str, str]]:
    """Like :func:`word_diff` but ``(op, reference_words, hypothesis_words)`` (either may be "")."""
    ref = normalize(reference) if normalize_text else (reference or "").strip()
    hyp = normalize(hypothesis) if normalize_text else (hypothesis or "").strip()
    r_words, h_words = ref.split(), hyp.split()
    if not r_words and not h_words:
        return []
    if not r_words:
        return [("insert", "", " ".join(h_words))]
    if not h_words:
        return [("delete", " ".join(r_words), "")]
    import jiwer

    out = jiwer.process_words(ref, hyp)
    result: list[tuple[str, str, str]] = []
    for chunk in out.alignments[0]:
        r = " ".join(out.references[0][chunk.ref_start_idx:chunk.ref_end_idx])
        h = " ".join(out.hypotheses[0][chunk.hyp_start_idx:chunk.hyp_end_idx])
        result.append((chunk.type, r, h))
    return result
