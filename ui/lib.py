"""Every library name the app uses, imported in one place: the app's whole contract with :mod:`prunelab`.

Public names come from the package itself (they stay put when modules move); the others from the module
that defines them today, so a library module that moves changes this file only. ``import prunelab``
already loads transcription, audio, metrics and saving, so nothing here is worth importing lazily.
The library never imports Gradio; only ``ui`` does.
"""
from __future__ import annotations

from prunelab import (
    DEFAULT_MODEL,
    CompressionConfig,
    LayerInfo,
    Plan,
    PrunelabError,
    SpeechModel,
    compress,
    find_layers,
    load_model,
    save_compressed,
    size_report,
    transcribe,
    wer,
)
from prunelab.compression import (PRESETS, RECOMMENDED, LayerCache, layer_result, presets_selecting,
                                  vocabulary_savings)
from prunelab.compression.allocate import allocate
from prunelab.compression.sensitivity import sensitivity_curves
from prunelab.methods import METHODS, method_names
from prunelab.models import available_models
from prunelab.recovery.calibration import CalibrationError, CalibrationSet, bundled_calibration_dir, load_calibration
from prunelab.recovery.finetune import FinetuneConfig, finetune
from prunelab.recovery.repair import RepairConfig, repair
from prunelab.report import plots
from prunelab.report.size import size_rows
from prunelab.speech import load_eval_set, transcribe_batch
from prunelab.speech.audio import load_audio
from prunelab.speech.metrics import word_diff_detailed

__all__ = [
    "DEFAULT_MODEL", "METHODS", "PRESETS", "RECOMMENDED", "CompressionConfig", "LayerCache", "LayerInfo", "Plan",
    "PrunelabError", "SpeechModel", "allocate", "available_models", "compress", "find_layers", "layer_result",
    "load_audio", "load_eval_set", "load_model", "method_names", "plots", "save_compressed", "sensitivity_curves", "size_report",
    "size_rows", "transcribe", "transcribe_batch", "vocabulary_savings", "wer", "word_diff_detailed", "presets_selecting",
    "CalibrationError", "CalibrationSet", "FinetuneConfig", "RepairConfig", "bundled_calibration_dir", "finetune",
    "load_calibration", "repair"]
