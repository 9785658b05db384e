"""Constants of the generator: sizes, kinds, tags and the reserved SynthVOS seeds."""

from __future__ import annotations

from types import MappingProxyType

TEXTURE_KINDS = ("noise", "stripes", "checker", "gradient")
SHAPE_KINDS = ("ellipse", "polygon", "blob")
MIN_SIZE = 16
MAX_OBJECT_ID = 255
JPEG_QUALITY = 95
YOUTUBE_STEP = 5
STATIC_SETS = ("DUTS-TR", "DUTS-TE", "ecssd", "BIG_small", "HRSOD_small")
HIGH_RES_SETS = ("BIG_small", "HRSOD_small")

# Seeds of the SynthVOS benchmark sets (scripts/make_synthvos.py). They are
# reserved for evaluation: training data must be generated with other seeds.
SYNTHVOS_SEEDS = MappingProxyType({"val": 2022, "long": 2023, "yv": 2024})

# Generator tags keep the streams of the different layouts apart.
_TAG_DAVIS2017 = 17
_TAG_DAVIS2016 = 16
_TAG_TESTDEV = 1701
_TAG_YOUTUBE = {"train": 1800, "valid": 1801, "test": 1802}
_TAG_FSS = 1000
_TAG_STATIC = 2000

_SHAPE_EXTENT = 0.46  # farthest shape pixel from the canvas centre, in canvas sizes
_MIN_VISIBLE_FRACTION = 0.4
_SAMPLE_TRIES = 20

Pose = tuple[float, float, float, float]  # centre x, centre y, scale, angle (degrees)


def assert_not_synthvos_seed(seed: int) -> None:
    """Raise ValueError if ``seed`` is one of the reserved SynthVOS seeds.

    Scripts that generate training data call this so that a model is never
    trained on the videos it is evaluated on.
    """
    reserved = {value: name for name, value in SYNTHVOS_SEEDS.items()}
    if int(seed) in reserved:
        raise ValueError(
            f"seed {seed} is reserved for the SynthVOS {reserved[int(seed)]!r} set; "
            f"use a seed other than {sorted(reserved)} for training data"
        )
