"""Deterministic synthetic video object segmentation data in the real folder layouts.

Tests and examples use this module instead of downloaded datasets. It renders
textured objects (ellipses, polygons, blobs filled with noise, stripes, checker
or gradient textures) that move, scale, rotate and occlude each other over a
panning textured background, and writes the result in the layouts of DAVIS 2016,
DAVIS 2017 (trainval and test-dev), YouTube-VOS (train and valid) and the static
image sets used for pre-training (FSS-1000, DUTS, ECSSD, BIG, HRSOD).

Optional hard events (``HardEvents``) add full occlusions by non-annotated
occluders, long exits from the frame, appearance drift, global lighting changes
and look-alike distractors; ``iter_video`` renders frame by frame so long videos
need not be held in memory. The SynthVOS benchmark (``scripts/make_synthvos.py``,
docs/SYNTHVOS.md) is built from these with the reserved ``SYNTHVOS_SEEDS``.

Modules: ``constants`` (sizes, tags, reserved seeds), ``scene`` (the dataclasses,
``VideoSpec`` among them), ``textures``, ``objects``, ``events`` (hard events),
``render``, ``video`` (``sample_scene``, ``iter_video``, ``render_video``),
``files`` (encoding), ``writers`` (the dataset layouts, ``datasets/layouts.py``
names their folders) and ``synthvos`` (the benchmark's plan and streamed writers).

Everything is a function of the seed. Each video gets its own generator,
``np.random.default_rng([seed, tag, index])``, so a video's content does not
depend on how many videos are generated before it.
"""


from datasets.synthetic.constants import (
    HIGH_RES_SETS,
    JPEG_QUALITY,
    MAX_OBJECT_ID,
    MIN_SIZE,
    SHAPE_KINDS,
    STATIC_SETS,
    SYNTHVOS_SEEDS,
    TEXTURE_KINDS,
    YOUTUBE_STEP,
    assert_not_synthvos_seed,
)
from datasets.synthetic.files import encode_jpeg, write_palette_png
from datasets.synthetic.objects import sample_object
from datasets.synthetic.render import lighting_at, render_frame, render_scene_frame
from datasets.synthetic.scene import (
    AppearanceDrift,
    Background,
    Distractor,
    Exit,
    HardEvents,
    LightingChange,
    ObjectStyle,
    Occlusion,
    PathTrajectory,
    Scene,
    SyntheticObject,
    Trajectory,
    VideoSpec,
)
from datasets.synthetic.textures import make_shape, make_texture, sample_background
from datasets.synthetic.video import iter_video, render_video, sample_scene
from datasets.synthetic.writers import write_davis2016, write_davis2017, write_davis2017_testdev, write_static, write_youtube

__all__ = [
    "HIGH_RES_SETS", "JPEG_QUALITY", "MAX_OBJECT_ID", "MIN_SIZE", "SHAPE_KINDS", "STATIC_SETS", "SYNTHVOS_SEEDS",
    "TEXTURE_KINDS", "YOUTUBE_STEP", "AppearanceDrift", "Background", "Distractor", "Exit", "HardEvents",
    "LightingChange", "ObjectStyle", "Occlusion", "PathTrajectory", "Scene", "SyntheticObject", "Trajectory",
    "VideoSpec", "assert_not_synthvos_seed", "encode_jpeg", "iter_video", "lighting_at", "make_shape", "make_texture",
    "render_frame", "render_scene_frame", "render_video", "sample_background", "sample_object", "sample_scene",
    "write_davis2016", "write_davis2017", "write_davis2017_testdev", "write_palette_png", "write_static", "write_youtube",
]
