"""Teacher labels and soft targets for fine-tuning: what the ORIGINAL model says about the training audio.

Distil-Whisper (``huggingface/distil-whisper``) trains a student on the teacher's transcripts (hard targets,
cross-entropy) and on its output distributions (soft targets, KL divergence at temperature T = 2), with the loss
``0.8 * CE + 1.0 * KL * T**2`` (the ``T**2`` keeps the soft term's gradient on the scale of the hard one). prunelab
uses the same weights (:class:`~prunelab.recovery.finetune.FinetuneConfig`'s ``ce_weight``, ``kl_weight``,
``temperature``).

* Hard targets: :func:`teacher_transcripts`, the teacher's greedy transcripts through
  :func:`prunelab.speech.transcribe_batch` (the same decoding ``prunelab transcribe`` does).
* Soft targets: :func:`whisper_soft_targets` / :func:`ctc_soft_targets`, computed ONCE before training, not at
  every step: the teacher's ``top_k`` log-probabilities at temperature T per target position (Whisper: each
  token of the label under teacher forcing; CTC: each encoder frame), plus the log of the remaining mass
  (:class:`SoftTargets`). The KL of :func:`kl_loss` is then the exact KL between the two distributions coarsened
  to ``top_k + 1`` outcomes (the kept tokens and "any other token"): a lower bound of the full KL that equals it
  when ``top_k`` covers the vocabulary (CTC's 32 characters). Why not the teacher at every step: on 2 CPU cores a
  Whisper-base forward pass costs a third of a training step, every epoch; 128 log-probabilities per token keep
  the targets at a few MB for 256 clips (the full 51,865-token distribution would be ~2 GB).
* A student with a trimmed vocabulary (``--vocabulary ascii``) gives removed tokens a logit of ``-inf``; the
  teacher's distribution is renormalised over the student's tokens first, so the KL stays finite.

Pure tensor code plus two teacher passes; imports speech (transcription), never the reverse.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from ..progress import Progress
from ..speech.audio import SAMPLE_RATE
from ..speech_model import SpeechModel

TOP_K = 128
"""Teacher log-probabilities kept per target position (Whisper: per label token; CTC: per frame)."""


@dataclass
class SoftTargets:
    """The teacher's distribution at one sample's ``n`` target positions, coarsened to ``k + 1`` outcomes.

    Attributes:
        ids: ``[n, k]`` int64, the teacher's ``k`` most likely tokens at each position.
        logp: ``[n, k]`` float32, their log-probabilities at temperature T (over the whole vocabulary).
        rest: ``[n]`` float32, log of the probability of every other token (``-inf`` when ``k`` covers the vocabulary).
    """

    ids: Tensor
    logp: Tensor
    rest: Tensor

    def __len__(self) -> int:
        return self.ids.shape[0]


def decoder_prompt(model: SpeechModel, language: str | None = "en") -> list[int]:
    """The decoder prompt Whisper's ``generate`` forces before the text, as :func:`prunelab.transcribe` runs it:
    start of transcript, then language and task where the checkpoint is multilingual, then no-timestamps."""
    from ..speech.transcribe import whisper_generate_kwargs

    gc = model.model.generation_config
    prompt = [int(gc.decoder_start_token_id)]
    kwargs = whisper_generate_kwargs(model, language, 1)
    if "language" in kwargs:
        prompt += [int(gc.lang_to_id[f"<|{kwargs['language']}|>"]), int(gc.task_to_id[kwargs["task"]])]
    if getattr(gc, "no_timestamps_token_id", None) is not None and not getattr(gc, "return_timestamps", False):
        prompt.append(int(gc.no_timestamps_token_id))
    return prompt


def end_token(model: SpeechModel) -> int:
    """Whisper's end-of-text token id."""
    eos = model.model.generation_config.eos_token_id
    return int(eos[0] if isinstance(eos, (list, tuple)) else eos)


def allowed_tokens(model: SpeechModel) -> Tensor | None:
    """``[V]`` bool: the tokens ``model`` can write (``None``: all), from a trimmed vocabulary's kept ids."""
    from ..vocabulary import TrimmedLogits

    head = getattr(model.model, "proj_out", None)
    if not isinstance(head, TrimmedLogits):
        return None
    mask = torch.zeros(head.vocab_size, dtype=torch.bool)
    mask[head.ids.cpu()] = True
    return mask


def teacher_transcripts(teacher: SpeechModel, clips: Sequence[np.ndarray], *, language: str = "en",
                        batch_size: int = 16, progress: Progress | None = None) -> list[str]:
    """The teacher's transcript of each clip (``[T]`` float32 at 16 kHz): the hard targets of distillation."""
    from ..speech.transcribe import transcribe_batch

    return transcribe_batch(teacher, list(clips), sampling_rate=SAMPLE_RATE, language=language,
                            batch_size=batch_size, progress=progress)


def coarsen(logits: Tensor, k: int, temperature: float, allowed: Tensor | None = None) -> SoftTargets:
    """:class:`SoftTargets` of ``logits`` ``[n, V]``: the top ``k`` log-probabilities at ``temperature`` and the
    log of the rest; tokens outside ``allowed`` (``[V]`` bool) get no probability."""
    z = logits.float() / temperature
    if allowed is not None:
        z = z.masked_fill(~allowed.to(z.device), float("-inf"))
    logp = z.log_softmax(-1)
    k = min(k, logp.shape[-1])
    top, ids = logp.topk(k, dim=-1)
    return SoftTargets(ids.cpu(), top.cpu(), _rest(logp, ids).cpu())


def _rest(logp: Tensor, ids: Tensor) -> Tensor:
    """``[n]`` log of the probability outside ``ids`` (``[n, k]``) under ``logp`` (``[n, V]`` log-probabilities)."""
    if ids.shape[-1] == logp.shape[-1]:
        return logp.new_full(logp.shape[:-1], float("-inf"))
    return logp.scatter(-1, ids, float("-inf")).logsumexp(-1)


def kl_loss(student_logits: Tensor, targets: SoftTargets, temperature: float) -> Tensor:
    """Mean over positions of KL(teacher || student) between the coarsened distributions (see the module doc).

    Args:
        student_logits: ``[n, V]`` the student's logits at the same ``n`` positions as ``targets``.
        targets: the teacher's :class:`SoftTargets` (on any device).
        temperature: T, the same as the targets were made with.

    Returns:
        A scalar (not yet multiplied by ``T**2``).
    """
    logq = (student_logits.float() / temperature).log_softmax(-1)
    ids = targets.ids.to(logq.device)
    logp, rest_p = targets.logp.to(logq.device), targets.rest.to(logq.device)
    logq_top = logq.gather(-1, ids)
    rest_q = _rest(logq, ids)
    top = torch.where(logp > float("-inf"), logp.exp() * (logp - logq_top), torch.zeros_like(logp)).sum(-1)
    rest = torch.where(rest_p > float("-inf"), rest_p.exp() * (rest_p - rest_q), torch.zeros_like(rest_p))
    return (top + rest).mean()


@torch.inference_mode()
def whisper_soft_targets(teacher: SpeechModel, features: Tensor, decoder_input_ids: Tensor, labels: Tensor, *,
                         temperature: float, k: int = TOP_K, allowed: Tensor | None = None) -> list[SoftTargets]:
    """The teacher's soft targets for a batch under teacher forcing, one :class:`SoftTargets` per sample.

    Args:
        features: ``[B, 80, 3000]`` log-mel input features.
        decoder_input_ids: ``[B, L]`` the prompt and the label tokens (shifted right).
        labels: ``[B, L]`` the token to predict at each position, ``-100`` where nothing is (prompt, padding).
        allowed: the student's writable tokens (:func:`allowed_tokens`).

    Returns:
        For sample b, the targets at its positions where ``labels[b] != -100``, in order.
    """
    param = next(teacher.model.parameters())
    logits = teacher.model(input_features=features.to(param.device, param.dtype),
                           decoder_input_ids=decoder_input_ids.to(param.device)).logits  # [B, L, V]
    return [coarsen(logits[b][labels[b].to(logits.device) != -100], k, temperature, allowed)
            for b in range(logits.shape[0])]


@torch.inference_mode()
def ctc_soft_targets(teacher: SpeechModel, clip: np.ndarray, *, temperature: float, k: int = TOP_K) -> SoftTargets:
    """The teacher's frame posteriors for one clip (``[T]`` float32 at 16 kHz, unpadded): one position per frame."""
    fe = teacher.processor.feature_extractor
    inputs = fe(clip, sampling_rate=SAMPLE_RATE, return_tensors="pt")
    param = next(teacher.model.parameters())
    logits = teacher.model(input_values=inputs.input_values.to(param.device, param.dtype)).logits[0]  # [frames, V]
    return coarsen(logits, k, temperature)


__all__ = ["SoftTargets", "TOP_K", "allowed_tokens", "coarsen", "ctc_soft_targets", "decoder_prompt", "end_token",
           "kl_loss", "teacher_transcripts", "whisper_soft_targets"]
