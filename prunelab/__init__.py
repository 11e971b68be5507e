"""prunelab: data-free, training-free compression of speech foundation models by channel-wise k-means.

Main entry points::

    model = load_model()                                  # bundled:whisper-base, offline
    small = compress(model, CompressionConfig(method="kmeans", sparsity=0.2, preset="encoder-ffn"))
    text = transcribe(small, "clip.wav")
"""
from .compress import CompressionConfig, compress
from .errors import AudioError, ModelLoadError, PlanError, PrunelabError
from .layers import LayerInfo, find_layers
from .metrics import wer
from .models import DEFAULT_MODEL, SpeechModel, load_model
from .plan import Plan
from .serialization import load_compressed, save_compressed
from .size import size_report
from .transcribe import transcribe

__all__ = [
    "AudioError", "CompressionConfig", "DEFAULT_MODEL", "LayerInfo", "ModelLoadError", "Plan", "PlanError",
    "PrunelabError", "SpeechModel", "compress", "find_layers", "load_compressed", "load_model", "save_compressed",
    "size_report", "transcribe", "wer",
]
