"""The one propagation engine (``engine/core.py``; ``inference_core.py`` is its official name)."""
