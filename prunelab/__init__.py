"""prunelab: data-free, training-free compression of speech foundation models by channel-wise k-means.

Main entry points::

    model = load_model()                                  # bundled:whisper-base, offline
    small = compress(model, CompressionConfig(method="kmeans", sparsity=0.2, preset="encoder-fc1"))
    text = transcribe(small, "clip.wav")

Layout (imports run one way, top to bottom; nothing imports Gradio):

* leaves: :mod:`.errors`, :mod:`.speech_model` (``SpeechModel``), :mod:`.groups` (per-layer results),
  :mod:`.progress`;
* :mod:`.kmeans`: the clustering engine; :mod:`.methods`: pure per-layer methods and their registry;
  :mod:`.modules`: the compressed modules (``ClusteredLinear``, folds);
* :mod:`.compression`: the model's structure (layers), plans, allocation, sensitivity, cache, ``compress``;
* :mod:`.models`: loading and saving; :mod:`.speech`: audio, transcription, WER, evaluation;
  :mod:`.report`: sizes and figures; :mod:`.cli`: the ``prunelab`` command.
"""
from .compression import CompressionConfig, LayerInfo, Plan, compress, compress_, find_layers
from .errors import AudioError, ModelLoadError, PlanError, PrunelabError
from .methods import METHODS, get_method, register_method
from .models import DEFAULT_MODEL, load_compressed, load_model, save_compressed
from .report.size import size_report
from .speech import transcribe, wer
from .speech_model import SpeechModel

__all__ = [
    "AudioError", "CompressionConfig", "DEFAULT_MODEL", "LayerInfo", "METHODS", "ModelLoadError", "Plan", "PlanError",
    "PrunelabError", "SpeechModel", "compress", "compress_", "find_layers", "get_method", "load_compressed", "load_model",
    "register_method", "save_compressed", "size_report", "transcribe", "wer",
]
