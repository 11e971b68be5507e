"""prunelab app: the entry point of ``python app.py`` and of the Hugging Face Space (``app_file: app.py``).

The app itself is the :mod:`ui` package beside this file (one module per tab); its docstring lists the
environment variables (``PRUNELAB_MODEL``, ``PRUNELAB_MAX_AUDIO_S``, ``PORT``, ...).
"""
from ui import build_app, launch_kwargs, main

__all__ = ["build_app", "launch_kwargs", "main"]

if __name__ == "__main__":
    main()
