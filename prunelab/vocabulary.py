"""Whisper's decoder with a smaller vocabulary: the token embedding and the (tied) output projection keep only
some rows, while token ids, the tokenizer and the generation config stay exactly as they were.

Why. Whisper-base's token embedding (51,865 tokens x 512) is 26.6 M of its 72.6 M parameters, and the output
projection that shares it is more than half of the decoder's work per generated token (51,865 x 512
multiply-adds, against about 3.1 M for one decoder layer's projections and FFN at one position). Most
of those tokens are pieces of words in scripts that a transcript of, say, English never uses.

How. :class:`TrimmedEmbedding` holds the ``K`` kept rows ``W[keep]`` (K x D) and a map ``row`` (V,) from each
token id to its row (``-1`` for a removed token). Embedding a token looks its row up; a removed token (it can only
come from a caller's prompt, never from generation) embeds as zeros. :class:`TrimmedLogits` computes the K kept
logits ``h W[keep]^T`` and writes them into a full-vocabulary logits tensor whose removed entries are
``-inf`` (what Whisper's own token suppression uses), so every logits processor, the timestamp rules and
``generate`` see the usual ``(..., V)`` shape and can never pick a removed token. For the kept tokens the
logits are bit-for-bit the same products as before, so greedy decoding changes only where the original
model would have emitted a removed token.

Which tokens to keep is decided from the tokenizer alone (:mod:`prunelab.compression.vocabulary`): no audio.
This module imports only torch; it is used by :func:`prunelab.compression.compress` and by ``load_model``.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from .errors import PlanError


class TrimmedEmbedding(nn.Module):
    """A token embedding that stores only the kept rows.

    ``weight``: (K, D) the kept rows; ``row``: (V,) int32, each token id's row or -1 (removed)."""

    def __init__(self, vocab_size: int, kept: int, dim: int, dtype: torch.dtype | None = None,
                 device: torch.device | str | None = None) -> None:
        super().__init__()
        self.vocab_size, self.kept, self.embedding_dim = vocab_size, kept, dim
        self.weight = nn.Parameter(torch.zeros(kept, dim, dtype=dtype, device=device))
        self.register_buffer("row", torch.full((vocab_size,), -1, dtype=torch.int32, device=device))

    def forward(self, ids: Tensor) -> Tensor:
        """``ids`` (...) int -> (..., D); removed tokens embed as zeros."""
        rows = self.row[ids].long()
        out = nn.functional.embedding(rows.clamp(min=0), self.weight)
        return out.masked_fill((rows < 0).unsqueeze(-1), 0.0)

    def extra_repr(self) -> str:
        return f"{self.vocab_size} tokens, {self.kept} kept, dim={self.embedding_dim}"


class TrimmedLogits(nn.Module):
    """The output projection tied to a :class:`TrimmedEmbedding`: ``(..., D) -> (..., V)`` logits, ``-inf`` for
    removed tokens. Shares the embedding's ``weight`` (saved once); ``ids`` (K,) are the kept token ids in row
    order."""

    def __init__(self, embedding: TrimmedEmbedding) -> None:
        super().__init__()
        self.weight = embedding.weight
        self.register_buffer("ids", (embedding.row >= 0).nonzero().squeeze(1))
        if self.ids.numel() != embedding.kept:  # an empty pair, to be loaded: placeholder ids of the right size
            self.ids = torch.arange(embedding.kept, device=embedding.row.device)
        self.vocab_size = embedding.vocab_size

    def forward(self, hidden: Tensor) -> Tensor:
        kept = hidden @ self.weight.T  # (..., K)
        out = kept.new_full((*kept.shape[:-1], self.vocab_size), float("-inf"))
        return out.index_copy(-1, self.ids, kept)

    def extra_repr(self) -> str:
        return f"{self.weight.shape[1]} -> {self.vocab_size} logits, {self.weight.shape[0]} computed"


def trimmed_pair(weight: Tensor, keep: Tensor) -> tuple[TrimmedEmbedding, TrimmedLogits]:
    """The tied embedding/logits pair keeping ``keep`` (sorted token ids, (K,)) of ``weight`` (V, D)."""
    vocab, dim = weight.shape
    keep = torch.as_tensor(keep, dtype=torch.long)
    if keep.numel() == 0 or keep.min() < 0 or keep.max() >= vocab or not bool((keep[1:] > keep[:-1]).all()):
        raise PlanError(f"The kept token ids must be distinct, sorted and between 0 and {vocab - 1}.")
    emb = TrimmedEmbedding(vocab, keep.numel(), dim, dtype=weight.dtype, device=weight.device)
    with torch.no_grad():
        emb.weight.copy_(weight[keep.to(weight.device)])
        emb.row[keep] = torch.arange(keep.numel(), dtype=torch.int32, device=emb.row.device)
    return emb, TrimmedLogits(emb)


def empty_pair(vocab_size: int, kept: int, dim: int) -> tuple[TrimmedEmbedding, TrimmedLogits]:
    """An empty tied pair of the recorded shape, for loading saved weights into."""
    emb = TrimmedEmbedding(vocab_size, kept, dim)
    return emb, TrimmedLogits(emb)


def set_vocabulary(model: nn.Module, embedding: TrimmedEmbedding, logits: TrimmedLogits) -> None:
    """Put the pair into a ``WhisperForConditionalGeneration`` (decoder embedding and ``proj_out``)."""
    if not hasattr(model, "proj_out") or not hasattr(getattr(model, "model", None), "decoder"):
        raise PlanError("Vocabulary trimming applies to Whisper's decoder; this model has no token vocabulary "
                        "to trim (a CTC head writes characters).")
    padding = getattr(model.model.decoder.embed_tokens, "padding_idx", None)
    embedding.padding_idx = padding
    model.model.decoder.embed_tokens = embedding
    model.proj_out = logits
