"""Recovery: win back, with audio, what compression cost. An explicit second step after :func:`compress`.

The data-free path (``compress``) stays exactly the paper's method and the default. Recovery takes a compressed
model and the ORIGINAL it was compressed from and returns a recovered model; it imports compression and models,
never the other way round, and the per-layer methods stay pure.

* :mod:`.calibration`: unlabeled calibration audio in (a folder, files, arrays, or the bundled set): checked,
  split to <= 30 s, broken or silent clips skipped with a note;
* :mod:`.statistics`: per-unit activation statistics (Gram matrices, means), accumulated layer by layer over the
  calibration clips without keeping the activations;
* :mod:`.solve`: the pure ridge least-squares solvers (no model code);
* :mod:`.repair`: ``repair(compressed, original, clips, RepairConfig)``: calibrated repair in seconds, no gradient;
* :mod:`.finetune`: ``finetune(model, data, FinetuneConfig)``: a short fine-tune or distillation from the original
  (transformers' Trainer, peft for LoRA), with :mod:`.trainset` (training audio + labels in, checked, packed into
  Whisper's 30 s windows), :mod:`.distill` (the teacher's transcripts and soft targets, the KL) and
  :mod:`.runfolder` (the ``out`` folder: checkpoints, resume, the finished model).

Each step appends to ``model.compression["recovery"]`` (a list of step records: what ran, on how many clips and
seconds of audio, with which settings), which :func:`prunelab.save_compressed` writes and ``load_model`` reads.
"""
