"""Which of Whisper's tokens a transcript in one family of scripts can use, decided from the tokenizer alone.

A byte-level BPE token is a byte string. It is kept for a script when

* it is a special token (end of text, start of transcript, languages, tasks, timestamps, ...: every added
  token, so the generation config's ids all stay), or
* it is one of the 256 single-byte tokens (every text can still be spelled byte by byte, so nothing becomes
  impossible to write, only longer), or
* its bytes are valid UTF-8 and every character is in the script's ranges.

Scripts (:data:`SCRIPTS`): ``"latin"``: Basic Latin, Latin-1, Latin Extended A/B and Additional, combining
accents, general punctuation and currency signs (English, French, German, Spanish, Vietnamese, ...);
``"ascii"``: Basic Latin only (English). On Whisper's multilingual tokenizer (51,865 tokens) ``latin`` keeps
43,007 and ``ascii`` 40,357, i.e. 6.25 % and 8.12 % of Whisper-base's 72.6 M parameters removed (the embedding
rows, shared with the output projection). A token that is a fragment of a multi-byte character (1,348 of them)
is removed: such characters are then written with the single-byte tokens. No audio is used: the choice of
tokens is the user's statement of which languages the model will be asked to write. Where the uncompressed
model would have emitted a removed token, the trimmed one emits its best kept token instead.
"""
from __future__ import annotations

from functools import lru_cache

import torch
from torch import Tensor

from ..errors import PlanError

SCRIPTS: dict[str, tuple[tuple[int, int], ...]] = {
    "latin": ((0x0000, 0x024F), (0x0300, 0x036F), (0x1E00, 0x1EFF), (0x2000, 0x206F), (0x20A0, 0x20CF)),
    "ascii": ((0x0000, 0x007F),),
}
"""Unicode code-point ranges (inclusive) a kept token's characters must fall in."""

VOCABULARY_HELP = ("keep only the tokens of one family of scripts in Whisper's decoder (embedding and output "
                   "layer shrink; ids unchanged): 'latin' (English, French, Spanish, German, ...) or 'ascii' "
                   "(English only). Decided from the tokenizer, no audio.")


def check_script(script: str | None) -> None:
    """Raise a :class:`PlanError` naming the choices unless ``script`` is None or in :data:`SCRIPTS`."""
    if script is not None and script not in SCRIPTS:
        raise PlanError(f"Unknown vocabulary {script!r}; choose one of: {', '.join(SCRIPTS)} (or none to keep "
                        "every token).")


def in_script(text: str, script: str) -> bool:
    """Whether every character of ``text`` lies in ``script``'s ranges."""
    ranges = SCRIPTS[script]
    return all(any(lo <= ord(c) <= hi for lo, hi in ranges) for c in text)


@lru_cache(maxsize=1)
def _byte_decoder() -> dict[str, int]:
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    return {c: b for b, c in bytes_to_unicode().items()}


def token_bytes(piece: str) -> bytes | None:
    """The bytes of a byte-level BPE piece (``'Ġthe'`` -> ``b' the'``); None if it has a character outside the
    byte-level alphabet. (Special tokens are told apart by the tokenizer's added tokens, not here.)"""
    decoder = _byte_decoder()
    if not piece or any(c not in decoder for c in piece):
        return None
    return bytes(decoder[c] for c in piece)


def kept_tokens(tokenizer, script: str, vocab_size: int) -> Tensor:
    """Sorted ids (K,) of the tokens ``script`` keeps among the model's ``vocab_size`` (see the module doc).

    Computed once per tokenizer object, script and size (reading 51,865 pieces takes ~0.3 s, and the app
    compresses the same model again and again)."""
    check_script(script)
    return torch.tensor(_kept_ids(tokenizer, script, vocab_size), dtype=torch.long)


@lru_cache(maxsize=8)
def _kept_ids(tokenizer, script: str, vocab_size: int) -> tuple[int, ...]:
    special = {int(i) for i in getattr(tokenizer, "added_tokens_decoder", {})}
    special |= {int(i) for i in getattr(tokenizer, "all_special_ids", [])}
    pieces = tokenizer.convert_ids_to_tokens(list(range(vocab_size)))
    keep = []
    for i, piece in enumerate(pieces):
        if i in special or piece is None:
            keep.append(i)
            continue
        raw = token_bytes(piece)
        if raw is None:  # not a byte-level piece and not declared special: keep rather than guess
            keep.append(i)
        elif len(raw) <= 1:
            keep.append(i)
        else:
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:  # a fragment of a multi-byte character: spelled by single bytes instead
                continue
            if in_script(text, script):
                keep.append(i)
    return tuple(keep)
