"""The propagation engine under its official file name; the code lives in ``engine/core.py``.

One video, several objects, frame by frame: DAVIS 2016/2017, YouTube-VOS
(``inference_core_yv.py``) and generic videos all use it.
"""

from engine.core import InferenceCore, MemoryFrame

__all__ = ["InferenceCore", "MemoryFrame"]
