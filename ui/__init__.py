"""prunelab app: compress a speech model by clustering its channels, see what changed, and listen.

Run ``python app.py`` (offline, on the bundled Whisper-base); ``app.py`` at the repository root is the
Hugging Face Spaces entry point and only imports this package. Environment:

* ``PRUNELAB_MODEL``: the model loaded at start (default ``bundled:whisper-base``; tests use ``tiny:whisper``).
* ``PRUNELAB_MAX_AUDIO_S``: longest clip accepted, in seconds (default 60).
* ``PRUNELAB_MAX_MODEL_GB``: refuse models whose weights are larger (default: a third of the RAM, at most 4).
* ``PRUNELAB_LAYER_CACHE_MB``: memory for cached per-layer clustering results (default 384).
* ``PRUNELAB_COMPRESSED_MB``: memory for the sessions' compressed models beyond the original they share
  (default 512); a model set aside is rebuilt from its session's plan when needed.
* ``PORT`` / ``GRADIO_SERVER_PORT``, ``GRADIO_SERVER_NAME``: where to serve.

The UI only calls the library (:mod:`prunelab`): loading, planning, compressing, transcribing and
scoring all live there, and the library never imports Gradio. This package wires them to Gradio
components and turns library errors into ``gr.Error`` messages. Its modules:

* :mod:`ui.page`: the page (intro, tabs in order, theme, CSS), :func:`build_app` and :func:`main`;
* :mod:`ui.tabs`: one module per tab, each with ``build()`` (its components) and ``wire()`` (its events); a tab
  never imports another tab: what two of them share lives in this package (a test checks it);
* :mod:`ui.sliders`: the plan editor of the Compress tab (every slider in one HTML component), the outputs of an
  event that sets every slider, and the note on settings changed since Compress (also for Listen and Tuning);
* :mod:`ui.evaluation`: the bundled evaluation clips and the original model's WER on them (Tuning history and
  the measured sensitivity); :mod:`ui.measured`: the measured sensitivity of See what changed;
* :mod:`ui.figures`: ``gr.Plot`` with an alt text drawn from each figure;
* :mod:`ui.session`: :class:`~ui.session.Session`, what one user holds (kept in ``gr.State``);
* :mod:`ui.state`: what all users share: the loaded and compressed models in small bounded stores,
  the per-layer result cache and the downloads folder;
* :mod:`ui.events`: shared event settings (``**HEAVY``, ``**INSTANT``) and the error guard;
* :mod:`ui.settings`: settings from the environment, defaults and the labels of presets and methods;
* :mod:`ui.lib`: every library name the app uses, imported in one place.
"""
from .page import build_app, launch_kwargs, main

__all__ = ["build_app", "launch_kwargs", "main"]
