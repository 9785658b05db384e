"""YouTube-VOS on the common engine (the official file name; the code lives in ``datasets/yv_test_dataset.py``).

YouTube-VOS differs from DAVIS only in its data: objects first appear on different
frames (each is annotated once, on that frame), ids need not be consecutive, frames
are resized to 480 px on the shorter side, and outputs start at the first annotated
frame. All of that is data preparation; propagation and memory are the engine's
(``inference_core.InferenceCore``), with one memory state per video across annotation
frames. Compared with the official ``inference_core_yv.py`` this fixes: qualities
stored as lists (a crash at the first eviction with several objects), the admission
bookkeeping reset at each annotation frame while the keys are kept (unbounded memory),
and a second softmax on probabilities when building the prior. The memory defaults
(``YOUTUBE_MEMORY``) are that core's at HEAD (``evaluation.official.OFFICIAL_HEAD``): a
frame's quality is the mean of its non-zero object scores divided by that of the first
frame propagated after the most recent annotated frame (each official pass starts at an
annotated frame), and the threshold is 0.75.
"""

from datasets.yv_test_dataset import INFERENCE_SHORT_SIDE, youtube_videos
from engine.core import InferenceCore

__all__ = ["INFERENCE_SHORT_SIDE", "InferenceCore", "youtube_videos"]
