"""Fine-tune a compressed model on audio: ``finetune(model, data, FinetuneConfig)`` -> a new, fine-tuned model.

The paper's second row (3 epochs of fine-tuning after clustering) and Distil-Whisper's recipe, on the field's
stack: transformers' :class:`~transformers.Trainer` (which runs on accelerate) with a loss of our own
(:meth:`_Trainer.compute_loss`), peft for LoRA. No hand-written training loop.

What it learns from (``data``):

* a folder of ``name.wav`` / ``name.flac`` + ``name.txt`` pairs, or a LibriSpeech split as distributed
  (:func:`prunelab.speech.data.load_eval_set`): the texts are the labels (``labels="references"``);
* a folder of audio without any ``.txt``, or a list of clips (paths, 16 kHz arrays, ``(rate, samples)``):
  distillation from a teacher (``labels="teacher"``; default teacher: the model the compressed one was compressed
  from, ``load_model(model.compression["base_model"])``). Whisper: the teacher's transcripts of the training
  windows as hard targets (cross-entropy) and its token distributions as soft targets, ``loss = 0.8 * CE + KL * T**2`` at ``T = 2``
  (Distil-Whisper's weights; :mod:`.distill`). CTC: KL between the teacher's and the student's frame posteriors
  (no transcripts needed: a CTC model's frames carry the whole output). With references AND an explicit
  ``teacher``, the teacher's soft targets are added to the references' loss.

Whisper is trained the way :func:`prunelab.transcribe` decodes: the decoder prompt is the one ``generate`` forces
(start of transcript, ``<|en|>`` and ``<|transcribe|>`` where multilingual, ``<|notimestamps|>``), the prompt
positions carry no loss, and the text is tokenised with a leading space (as Whisper writes its first word), then
the end token. Whisper reads 30 s windows whatever the clip's length, so clips are packed (``pack=True``, the
default): several clips, in a seeded random order, with 0.3 s of silence between them, fill one 30 s window and
their token sequences are concatenated -- Whisper's own training segments are 30 s of running speech. A 4 s clip
alone leaves 87 % of the encoder's work to padding; packed, 256 such clips are ~46 windows instead of 256. Without
labels the clips are packed first and the teacher transcribes each window (:func:`.trainset.windows`).

Speed (``OMP_NUM_THREADS=2 python benchmarks/bench_finetune.py``: Whisper-base, predictive fold of 30 % of the
encoder FFN neurons, the 28 tune clips of 3.5-5.3 s, 3 steps of batch 1; on the shared 2-core machine, so each row
also times one no-grad encoder forward of 30 s as a yardstick, 0.606 s on quiet cores):

    variant                load  s/step (yardsticks)  clips/s  256 clips x 3 epochs  scaled to quiet  peak RSS / target
    compressed, packed      2.2   6.1 (3.5)            0.92     14.0 min              4.8 min          1.61 / 2.32 GB
    compressed, unpacked    2.2   2.6 (3.1)            0.39     32.8 min              23.9 min         1.51 / 2.32 GB
    all, packed             2.3   5.2 (2.9)            1.08     12.0 min              4.0 min          2.47 / 2.77 GB
    lora, packed            4.6   20.5 (5.2)           0.27     47.0 min              7.3 min          1.93 / 2.26 GB
    distill, packed         4.6   11.1 (3.9)           0.50     45.0 min (w/ prep)   9.5 min          1.70 / 2.32 GB

(packed: 5.6 clips a window; the 256-clip figures are EXTRAPOLATED from the step time; target: model 0.26 GB +
AdamW state 8 B per trainable parameter + 2 GB, every row within it.) Packing buys ~5x per
clip; the issue's 3 epochs on 256 clips within 30 minutes hold with references at load ~2 as measured, and on a
quiet machine by the yardstick's scale for every variant. The load moves each figure by +-25 % within one run, so
the rows differ by less than that only by chance. Distillation's one-off teacher preparation (transcribing the
windows, then their soft targets) measured 4.6 s a clip at load 4.6, most of it the teacher's token-by-token
decoding (0.7 s a token at that load; tens of ms on a quiet machine, judging by BENCHMARKS.md's ~1 s
to transcribe a 4 s clip), which the yardstick does not scale.

Not built, measured: an encoder-only objective (match the teacher's encoder output, no decoder). With the
compressed layers trainable, a full forward + backward of one packed window (100 decoder tokens) took 14.1 / 13.7 s
and the encoder's alone 9.6 / 9.7 s (load ~7): the decoder is ~30 % of a step, at most what such an option buys,
for a loss that is no longer the transcript. Packing bought 5x; the field's stack (Trainer + accelerate, peft) was
kept: nothing measured here asks for a hand-written loop.

What trains (``train``): ``"compressed"`` (only the modules the compression replaced, the names in
``model.compression["modules"]``; everything else frozen, bit for bit), ``"all"`` (every parameter the
architecture trains; a CTC model's convolutional feature encoder stays frozen, as in transformers' CTC recipes),
or ``"lora"`` (peft LoRA adapters on every ``nn.Linear`` but the output layer, merged into the weights after
training, so the saved model needs no peft; prunelab's :class:`~prunelab.modules.ClusteredLinear`, which peft
cannot wrap, trains its K rows directly through peft's ``modules_to_save``).

Checkpoints, resume, Ctrl-C (with ``out``): the run is written to ``out`` as it goes -- ``finetune.json`` (what
run this is, and the labels), ``finetune-targets.safetensors`` (the teacher's soft targets) and the Trainer's
``checkpoints/checkpoint-N`` at the end of every epoch (the last one kept). Called again with the same model,
data and settings (``resume=True``), it picks up the last complete checkpoint and does only the steps left (more
``epochs`` than before extend a run). Ctrl-C raises :class:`FinetuneInterrupted` (a ``KeyboardInterrupt``)
whose message names the last checkpoint and how to resume. At the end the fine-tuned model replaces all of that
(:func:`prunelab.save_compressed`'s folder, nothing else), so ``load_model(out)`` gives the fine-tuned model with
its recovery record. ``out`` must be new, empty, a model prunelab saved, or a fine-tune in progress of the same
run; anything else is refused before any work.

Several GPUs: the Trainer runs data-parallel under accelerate or torchrun with no change to the call, e.g.::

    accelerate launch --num_processes 4 -m prunelab.cli finetune FOLDER --data DIR --epochs 3 --out OUT
    torchrun --nproc_per_node 4 -m prunelab.cli finetune FOLDER --data DIR --epochs 3 --out OUT

Each process prepares the labels itself (deterministic, the same in every process); ``--batch-size`` is per
process; only the first process writes ``out``. One GPU or none: run the command as usual.
"""
from __future__ import annotations

import copy
import math
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..progress import Progress
from ..speech.audio import SAMPLE_RATE
from ..speech_model import SpeechModel
from .distill import (TOP_K, SoftTargets, allowed_tokens, ctc_soft_targets, end_token, kl_loss, teacher_transcripts,
                      whisper_soft_targets)
from .runfolder import (CHECKPOINTS, RUN_FILE, TARGETS_FILE, check_out, in_progress, last_checkpoint, load_targets,
                        replace_with, run_identity, save_targets, write_json)
from .trainset import FinetuneError, Sample, ctc_frames, ctc_samples, load_training_data, whisper_samples, windows

TRAIN_MODES = {
    "compressed": "only the layers the compression replaced (everything else frozen)",
    "all": "every parameter (a CTC model's convolutional feature encoder stays frozen)",
    "lora": "LoRA adapters on the linear layers, merged into the weights afterwards",
}
DEFAULT_LEARNING_RATE = {"compressed": 1e-4, "all": 1e-5, "lora": 5e-4}
"""Per ``train`` mode, when ``FinetuneConfig.learning_rate`` is None (usual values for each, not tuned on test clips)."""
TEACHER_BATCH = 16
"""Clips per ``generate`` call when the teacher transcribes (``transcribe_batch``: the same transcripts as one by one,
~3x faster on a CPU)."""


class FinetuneInterrupted(KeyboardInterrupt):
    """Ctrl-C during fine-tuning; the message says where the last checkpoint is and how to resume."""


@dataclass(frozen=True)
class FinetuneConfig:
    """How to fine-tune.

    Attributes:
        epochs: passes over the data (fractions allowed).
        train: ``"compressed"``, ``"all"`` or ``"lora"`` (:data:`TRAIN_MODES`).
        learning_rate: AdamW's, linear decay to 0 (10 % warm-up from 10 steps on); None: :data:`DEFAULT_LEARNING_RATE`.
        batch_size: samples per step (per process): Whisper windows (``pack``) or clips.
        max_clips: use only the first N clips (sorted by id).
        seed: data order, packing and any random initialisation (LoRA).
        pack: Whisper only: pack clips into 30 s windows (see the module doc); False: one clip per window.
        language: Whisper's transcription language (as :func:`prunelab.transcribe`).
        ce_weight, kl_weight, temperature: the distillation loss ``ce_weight * CE + kl_weight * KL * T**2``.
        top_k: teacher log-probabilities kept per target position (:mod:`.distill`).
        lora_rank, lora_alpha: LoRA's r and alpha.
        max_steps: stop after this many optimizer steps (overrides ``epochs``; for benchmarks).
    """

    epochs: float = 3.0
    train: str = "compressed"
    learning_rate: float | None = None
    batch_size: int = 8
    max_clips: int | None = None
    seed: int = 0
    pack: bool = True
    language: str = "en"
    ce_weight: float = 0.8
    kl_weight: float = 1.0
    temperature: float = 2.0
    top_k: int = TOP_K
    lora_rank: int = 8
    lora_alpha: int = 16
    max_steps: int | None = None

    @property
    def lr(self) -> float:
        return self.learning_rate if self.learning_rate is not None else DEFAULT_LEARNING_RATE[self.train]

    def check(self) -> None:
        """Raise :class:`FinetuneError` for a setting that cannot work (before any work is done)."""
        if self.train not in TRAIN_MODES:
            raise FinetuneError(f"train must be one of {', '.join(TRAIN_MODES)}, not {self.train!r}.")
        _positive("epochs", self.epochs, whole=False)
        _positive("batch_size", self.batch_size)
        _positive("top_k", self.top_k)
        _positive("lora_rank", self.lora_rank)
        _positive("lora_alpha", self.lora_alpha, whole=False)
        _positive("temperature", self.temperature, whole=False)
        if self.max_clips is not None:
            _positive("max_clips", self.max_clips)
        if self.max_steps is not None:
            _positive("max_steps", self.max_steps)
        if self.learning_rate is not None:
            _positive("learning_rate", self.learning_rate, whole=False)
        for name in ("ce_weight", "kl_weight"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value < 0:
                raise FinetuneError(f"{name} must be a number >= 0, not {value!r}.")
        if self.ce_weight == 0 and self.kl_weight == 0:
            raise FinetuneError("ce_weight and kl_weight are both 0: nothing to learn from.")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise FinetuneError(f"seed must be a whole number >= 0, not {self.seed!r}.")


def _positive(name: str, value: Any, whole: bool = True) -> None:
    kinds = (int,) if whole else (int, float)
    if not isinstance(value, kinds) or isinstance(value, bool) or not math.isfinite(value) or value <= 0:
        raise FinetuneError(f"{name} must be a {'whole ' if whole else ''}number > 0, not {value!r}.")


def _soft_targets(teacher: SpeechModel, student: SpeechModel, samples: list[Sample], config: FinetuneConfig,
                  progress: Progress | None) -> list[SoftTargets]:
    out: list[SoftTargets] = []
    if student.family == "whisper":
        allowed = allowed_tokens(student)
        for start in range(0, len(samples), config.batch_size):
            batch = _whisper_batch(student, samples[start:start + config.batch_size], with_targets=False)
            out += whisper_soft_targets(teacher, batch["input_features"], batch["decoder_input_ids"], batch["labels"],
                                        temperature=config.temperature, k=config.top_k, allowed=allowed)
            if progress:
                progress(len(out), len(samples), f"teacher's soft targets {len(out)}/{len(samples)}")
    else:
        for i, s in enumerate(samples):
            out.append(ctc_soft_targets(teacher, s.audio, temperature=config.temperature, k=config.top_k))
            if progress:
                progress(i + 1, len(samples), f"teacher's soft targets {i + 1}/{len(samples)}")
    return out


# ---------------------------------------------------------------- batches and the loss

def _whisper_batch(model: SpeechModel, samples: list[Sample], with_targets: bool = True) -> dict:
    fe = model.processor.feature_extractor
    feats = fe([s.audio for s in samples], sampling_rate=SAMPLE_RATE, return_tensors="pt").input_features
    width = max(len(s.labels) for s in samples)
    eos = end_token(model)
    dec = torch.full((len(samples), width), eos, dtype=torch.long)
    labels = torch.full((len(samples), width), -100, dtype=torch.long)
    for b, s in enumerate(samples):
        dec[b, :len(s.decoder_input_ids)] = torch.tensor(s.decoder_input_ids)
        labels[b, :len(s.labels)] = torch.tensor(s.labels)
    batch = {"input_features": feats, "decoder_input_ids": dec, "labels": labels}
    if with_targets and samples[0].targets is not None:
        batch["targets"] = [s.targets for s in samples]
    return batch


def _ctc_batch(model: SpeechModel, samples: list[Sample]) -> dict:
    fe = model.processor.feature_extractor
    inputs = fe([s.audio for s in samples], sampling_rate=SAMPLE_RATE, padding=True, return_tensors="pt")
    batch = {"input_values": inputs.input_values, "input_lengths": torch.tensor([len(s.audio) for s in samples])}
    if "attention_mask" in inputs:
        batch["attention_mask"] = inputs.attention_mask
    if samples[0].labels is not None:
        width = max(len(s.labels) for s in samples)
        labels = torch.full((len(samples), width), -100, dtype=torch.long)
        for b, s in enumerate(samples):
            labels[b, :len(s.labels)] = torch.tensor(s.labels)
        batch["labels"] = labels
    if samples[0].targets is not None:
        batch["targets"] = [s.targets for s in samples]
    return batch


def _cat(targets: list[SoftTargets]) -> SoftTargets:
    return SoftTargets(torch.cat([t.ids for t in targets]), torch.cat([t.logp for t in targets]),
                       torch.cat([t.rest for t in targets]))


def training_loss(module: nn.Module, family: str, batch: dict, config: FinetuneConfig, *,
                  inner: nn.Module | None = None) -> Tensor:
    """The fine-tuning loss of ``batch`` (a scalar): Whisper: cross-entropy of the labels under teacher forcing;
    CTC: CTC loss of the labels (mean over target lengths); with the teacher's soft targets,
    ``ce_weight * that + kl_weight * KL * T**2`` (KL alone for CTC without labels).

    ``module`` is what runs the forward pass (under several GPUs, the data-parallel wrapper); ``inner`` the model
    inside it, whose config and frame counts are read (default: ``module``)."""
    T = config.temperature
    inner = module if inner is None else inner
    if family == "whisper":
        logits = module(input_features=batch["input_features"], decoder_input_ids=batch["decoder_input_ids"]).logits
        labels = batch["labels"]
        ce = F.cross_entropy(logits.flatten(0, 1).float(), labels.flatten(), ignore_index=-100)
        if "targets" not in batch:
            return ce
        kl = kl_loss(logits[labels != -100], _cat(batch["targets"]), T)
        return config.ce_weight * ce + config.kl_weight * kl * T * T
    kwargs = {"attention_mask": batch["attention_mask"]} if "attention_mask" in batch else {}
    logits = module(input_values=batch["input_values"], **kwargs).logits  # [B, frames, V]
    frames = ctc_frames(inner, batch["input_lengths"]).clamp(max=logits.shape[1])
    loss = None
    if "labels" in batch:
        labels = batch["labels"]
        mask = labels != -100
        log_probs = logits.float().log_softmax(-1).transpose(0, 1)  # [frames, B, V]
        blank = inner.config.pad_token_id
        loss = F.ctc_loss(log_probs, labels[mask], frames, mask.sum(-1), blank=blank, reduction="mean", zero_infinity=True)
        if "targets" not in batch:
            return loss
        loss = config.ce_weight * loss
    targets = batch["targets"]
    n = [min(int(frames[b]), len(targets[b])) for b in range(len(targets))]
    rows = torch.cat([logits[b, :n[b]] for b in range(len(targets))])
    kl = kl_loss(rows, _cat([SoftTargets(t.ids[:k], t.logp[:k], t.rest[:k]) for t, k in zip(targets, n)]), T)
    return (loss if loss is not None else 0.0) + config.kl_weight * kl * T * T


class _Samples(torch.utils.data.Dataset):
    def __init__(self, samples: list[Sample]):
        self.samples = samples

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> dict:
        return {"index": i}


def _trainer_class():
    from transformers import Trainer

    class _Trainer(Trainer):
        """transformers' Trainer with prunelab's loss (:func:`training_loss`)."""

        def __init__(self, *args, family: str, finetune_config: FinetuneConfig, **kwargs):
            super().__init__(*args, **kwargs)
            self.family, self.finetune_config = family, finetune_config
            self.model_accepts_loss_kwargs = False  # our loss is a mean: let the Trainer scale it for accumulation

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            loss = training_loss(model, self.family, inputs, self.finetune_config,
                                 inner=self.accelerator.unwrap_model(model))
            return (loss, None) if return_outputs else loss

    return _Trainer


def _progress_callback(progress: Progress | None):
    from transformers import TrainerCallback

    class _Progress(TrainerCallback):
        """Reports ``progress(step, steps, "epoch e/E, loss L, M left")`` after every logged step."""

        def on_train_begin(self, args, state, control, **kwargs):
            self.start, self.first = time.monotonic(), state.global_step

        def on_log(self, args, state, control, logs=None, **kwargs):
            if progress is None or not logs or "loss" not in logs:
                return
            done = state.global_step - self.first
            left = (time.monotonic() - self.start) / max(done, 1) * (state.max_steps - state.global_step)
            progress(state.global_step, state.max_steps,
                     f"epoch {state.epoch or 0:.2f}/{state.num_train_epochs:g}, loss {logs['loss']:.4f}, "
                     f"{_duration(left)} left")

    return _Progress()


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


# ---------------------------------------------------------------- what trains

def _trainable(student: nn.Module, compressed: SpeechModel, config: FinetuneConfig) -> nn.Module:
    """Set what trains in ``student`` (the deep copy); with LoRA, returns the peft model wrapping it."""
    from ..modules import ClusteredLinear

    if config.train == "compressed":
        names = sorted((compressed.compression or {}).get("modules", {}))
        student.requires_grad_(False)
        for name in names:
            student.get_submodule(name).requires_grad_(True)
        return student
    if config.train == "all":
        if compressed.family == "ctc" and hasattr(student, "freeze_feature_encoder"):
            student.freeze_feature_encoder()
        return student
    from peft import LoraConfig, get_peft_model

    clustered = [n for n, m in student.named_modules() if isinstance(m, ClusteredLinear)]
    lora = LoraConfig(r=config.lora_rank, lora_alpha=config.lora_alpha, target_modules="all-linear",
                      modules_to_save=clustered or None)
    return get_peft_model(student, lora)


def _check_model(model: SpeechModel, config: FinetuneConfig) -> None:
    if not isinstance(model, SpeechModel):
        raise FinetuneError(f"finetune takes a SpeechModel (from prunelab.compress or load_model), not {type(model).__name__}.")
    if model.compression is None:
        raise FinetuneError("This model is not compressed: fine-tuning recovers what compression cost. Compress it first "
                            "(prunelab.compress, or `prunelab compress ... --out FOLDER`).")
    if config.train == "compressed" and not model.compression.get("modules"):
        raise FinetuneError("This compressed model replaced no layers (e.g. only its vocabulary was trimmed), so "
                            "train='compressed' has nothing to train; use train='all' or train='lora'.")
    if next(model.model.parameters()).dtype != torch.float32:
        raise FinetuneError(f"Fine-tuning needs float32 weights; this model is {next(model.model.parameters()).dtype}. "
                            "Load it with dtype='float32' (the default).")


def _check_teacher(teacher: SpeechModel, model: SpeechModel) -> None:
    if teacher.family != model.family:
        raise FinetuneError(f"The teacher is a {teacher.family} model and the student a {model.family} model; distil "
                            "from the model this one was compressed from.")
    v_t = teacher.model.config.vocab_size
    v_s = model.model.config.vocab_size
    if v_t != v_s:
        raise FinetuneError(f"The teacher's vocabulary ({v_t} tokens) is not the student's ({v_s}); distil from the "
                            "model this one was compressed from.")


def _training_device(model: SpeechModel) -> torch.device:
    """Where the Trainer will train: this process's GPU where there is one (``LOCAL_RANK`` under accelerate or
    torchrun), else ``model``'s device. The default teacher is loaded there, so its labelling runs there too."""
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return model.device


def _is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


# ---------------------------------------------------------------- the verb

def finetune(model: SpeechModel, data, config: FinetuneConfig = FinetuneConfig(), *, teacher: SpeechModel | str | None = None,
             out: str | os.PathLike | None = None, progress: Progress | None = None, resume: bool = True) -> SpeechModel:
    """Fine-tune a compressed model; returns a NEW model (``model`` and the original it shares weights with are
    left untouched) whose ``compression["recovery"]`` ends with this step's record.

    Args:
        model: a compressed :class:`SpeechModel` (``compression`` set): from :func:`prunelab.compress` or
            ``load_model(folder)``.
        data: a folder (``name.wav`` + ``name.txt`` pairs, a LibriSpeech split, or audio only) or a list of clips
            (paths, 16 kHz arrays, ``(rate, samples)``; or :class:`~prunelab.speech.data.Utterance` for labels).
        config: a :class:`FinetuneConfig`.
        teacher: the model (or a model spec, loaded when needed) whose transcripts and distributions unlabelled
            clips learn from; default ``load_model(model.compression["base_model"])``, loaded only when needed.
            Given with labelled data, its soft targets join the loss.
        out: a folder for checkpoints and, at the end, the fine-tuned model (see the module doc); None: nothing
            is written and an interrupted run cannot be resumed.
        progress: ``progress(done, total, message)``: teacher labelling, then each step with loss and time left;
            messages starting with ``note:`` say what was skipped.
        resume: continue the run in ``out`` from its last checkpoint; False: start it again.

    Returns:
        The fine-tuned :class:`SpeechModel`, in eval mode, on ``model``'s device.

    Raises:
        FinetuneError: bad settings, an uncompressed model, unusable data or labels (before any work).
        SaveError: ``out`` holds other files or another run (before any work).
        FinetuneInterrupted: Ctrl-C; the message names the last checkpoint.
    """
    started = time.monotonic()
    config.check()
    _check_model(model, config)
    folder = check_out(out) if out is not None else None
    data_set = load_training_data(data, family=model.family, max_clips=config.max_clips)
    for note in data_set.notes:
        if progress:
            progress(0, 0, note)
    labelled = data_set.texts is not None
    uses_teacher = teacher is not None or not labelled
    if isinstance(teacher, str):
        teacher_spec, teacher = teacher, None
    else:
        teacher_spec = (teacher.spec if teacher is not None else model.compression.get("base_model")) if uses_teacher else None
    if uses_teacher and teacher is None and not teacher_spec:
        raise FinetuneError("These clips have no labels and the model does not record what it was compressed from; "
                            "pass a teacher (--teacher SPEC) or give a .txt for each clip.")
    if not labelled and model.family == "ctc" and config.kl_weight == 0:
        raise FinetuneError("Unlabelled CTC clips learn only from the teacher's frame posteriors; kl_weight must be > 0.")
    settings = {k: v for k, v in asdict(config).items() if k not in ("epochs", "max_steps", "max_clips")}
    run = run_identity(model, data_set, {**settings, "learning_rate": config.lr}, teacher_spec)
    record = in_progress(folder, run) if folder is not None else None
    main = _is_main_process()
    if record is not None and not resume:
        if main:
            shutil.rmtree(folder / CHECKPOINTS, ignore_errors=True)
            (folder / TARGETS_FILE).unlink(missing_ok=True)
        record = None
    if folder is not None and main:
        folder.mkdir(parents=True, exist_ok=True)
        if record is None:
            record = {"prunelab_finetune": 1, "run": run, "labels": None}
            write_json(folder / RUN_FILE, record)

    if uses_teacher and teacher is None:
        from ..models.load import load_model

        teacher = load_model(teacher_spec, device=_training_device(model))
    if teacher is not None:
        _check_teacher(teacher, model)

    # labels: the references, the run's saved teacher transcripts, or the teacher's transcripts now -- of the
    # windows the student trains on (clips packed first: one teacher pass per window, not per clip)
    texts, train_data, packed = data_set.texts, data_set, config.pack
    if texts is None and model.family == "whisper":
        train_data, packed = windows(data_set, seed=config.seed, packed=config.pack), False
        texts = (record or {}).get("labels")
        if texts is None or len(texts) != len(train_data.clips):
            texts = teacher_transcripts(teacher, train_data.clips, language=config.language, batch_size=TEACHER_BATCH,
                                        progress=progress)
            if folder is not None and main:
                record = {**record, "labels": texts}
                write_json(folder / RUN_FILE, record)
    if model.family == "whisper":
        samples, notes = whisper_samples(model, train_data, texts, seed=config.seed, packed=packed,
                                         language=config.language)
    else:
        samples, notes = ctc_samples(model, train_data, texts)
    for note in notes:
        if progress:
            progress(0, 0, note)
    if teacher is not None and config.kl_weight > 0:
        lengths = [sum(1 for x in s.labels if x != -100) if s.decoder_input_ids is not None else None for s in samples]
        targets = load_targets(folder / TARGETS_FILE, lengths) if folder is not None else None
        if targets is None:
            targets = _soft_targets(teacher, model, samples, config, progress)
            if folder is not None and main:
                save_targets(folder / TARGETS_FILE, targets)
        for s, t in zip(samples, targets):
            s.targets = t
    teacher = None  # the soft targets are all that is needed from it

    student = copy.deepcopy(model.model)  # compress() shares unchanged weights with the original: never train in place
    flags = {n: p.requires_grad for n, p in model.model.named_parameters()}
    trained = _train(student, model, samples, config, folder, progress, resume)
    if config.train == "lora":
        trained.module = trained.module.merge_and_unload()
    module = trained.module.to(model.device).eval()
    for n, p in module.named_parameters():
        p.requires_grad_(flags.get(n, True))  # as the caller's model had them
    step = {"step": "finetune", "epochs": config.epochs if config.max_steps is None else round(trained.epoch, 4),
            "clips": train_data.clip_count(i for s in samples for i in s.clips), "seconds": round(data_set.seconds, 2),
            "labels": "references" if labelled else "teacher", "teacher": teacher_spec,
            "soft_targets": samples[0].targets is not None, "train": config.train, "trainable": trained.trainable, "learning_rate": config.lr,
            "batch_size": config.batch_size, "samples": len(samples), "packed": model.family == "whisper" and config.pack,
            "steps": trained.steps, "time_s": round(time.monotonic() - started, 1), "final_loss": trained.final_loss}
    compression = copy.deepcopy(model.compression)
    compression["recovery"] = [*compression.get("recovery", []), step]
    result = SpeechModel(module, model.processor, model.family, model.spec, compression=compression)
    if folder is not None and trained.main:
        replace_with(result, folder)
    return result


@dataclass
class _Trained:
    module: nn.Module
    steps: int
    epoch: float
    final_loss: float | None
    main: bool
    trainable: int


def _train(student: nn.Module, model: SpeechModel, samples: list[Sample], config: FinetuneConfig, folder: Path | None,
           progress: Progress | None, resume: bool) -> _Trained:
    """Run the Trainer on ``samples``; returns the trained module (still peft-wrapped for LoRA)."""
    from transformers import TrainingArguments
    from transformers.trainer_callback import PrinterCallback
    from transformers.utils import logging as hf_logging

    from ..speech.transcribe import quiet_transformers

    with quiet_transformers():  # peft's and transformers' deprecation chatter
        wrapped = _trainable(student, model, config)
    steps_per_epoch = math.ceil(len(samples) / config.batch_size)
    total = config.max_steps or math.ceil(steps_per_epoch * config.epochs)
    scratch = None if folder is not None else tempfile.mkdtemp(prefix="prunelab-finetune-")
    output_dir = str(folder / CHECKPOINTS) if folder is not None else scratch
    args = TrainingArguments(
        output_dir=output_dir, num_train_epochs=config.epochs, max_steps=config.max_steps or -1,
        per_device_train_batch_size=config.batch_size, learning_rate=config.lr, weight_decay=0.0,
        lr_scheduler_type="linear", warmup_steps=int(0.1 * total) if total >= 10 else 0, seed=config.seed,
        save_strategy="epoch" if folder is not None else "no", save_total_limit=1, logging_strategy="steps",
        logging_steps=1, report_to="none", disable_tqdm=True, remove_unused_columns=False,
        dataloader_pin_memory=torch.cuda.is_available(), dataloader_num_workers=0,
    )
    collate = (lambda items: _whisper_batch(model, [samples[x["index"]] for x in items])) if model.family == "whisper" \
        else (lambda items: _ctc_batch(model, [samples[x["index"]] for x in items]))
    trainer = _trainer_class()(model=wrapped, args=args, train_dataset=_Samples(samples), data_collator=collate,
                               callbacks=[_progress_callback(progress)], family=model.family, finetune_config=config)
    trainer.remove_callback(PrinterCallback)  # it prints every log dict to stdout; progress() reports instead
    checkpoint = last_checkpoint(output_dir) if resume and folder is not None else None
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # no "Writing model shards" bar per checkpoint
    try:
        with quiet_transformers():
            trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    except KeyboardInterrupt:
        last = last_checkpoint(output_dir) if folder is not None else None
        where = (f"the last checkpoint is {last} (step {last.name.split('-')[-1]} of {trainer.state.max_steps}); run the "
                 "same command again to resume from it (finetune(..., out=..., resume=True))" if last else
                 "no checkpoint was written yet (the first comes at the end of epoch 1)" if folder is not None else
                 "nothing was saved (no out folder given)")
        raise FinetuneInterrupted(f"Fine-tuning interrupted at step {trainer.state.global_step} of "
                                  f"{trainer.state.max_steps}; {where}.") from None
    finally:
        if bars:
            hf_logging.enable_progress_bar()
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
    losses = [(h["epoch"], h["loss"]) for h in trainer.state.log_history if "loss" in h and "epoch" in h]
    epoch = float(trainer.state.epoch or 0)
    last_epoch = [l for e, l in losses if e > epoch - 1 + 1e-9]
    final = round(float(np.mean(last_epoch)), 6) if last_epoch else None
    main = trainer.is_world_process_zero()
    trainable = sum(p.numel() for p in wrapped.parameters() if p.requires_grad)
    return _Trained(trainer.model, trainer.state.global_step, epoch, final, main, trainable)


__all__ = ["DEFAULT_LEARNING_RATE", "FinetuneConfig", "FinetuneError", "FinetuneInterrupted", "TRAIN_MODES", "finetune",
           "training_loss"]
