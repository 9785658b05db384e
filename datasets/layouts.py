"""The folder layouts of DAVIS 2016/2017 and YouTube-VOS: the one place their names are written.

DAVIS (``<davis>`` holds ``2017/`` and, for DAVIS 2016, ``2016/`` beside it)::

    <davis>/2017/trainval/JPEGImages/480p/<seq>/00000.jpg
    <davis>/2017/trainval/Annotations/480p/<seq>/00000.png
    <davis>/2017/trainval/ImageSets/2017/{train,val}.txt      (DAVIS 2016: ImageSets/2016/val.txt)
    <davis>/2017/test-dev/...                                 (ImageSets/2017/test-dev.txt)

YouTube-VOS (``<yv>``)::

    <yv>/<split>/JPEGImages/<vid>/00000.jpg                   (every 5th frame)
    <yv>/<split>/Annotations/<vid>/00000.png
    <yv>/<split>/meta.json
    <yv>/all_frames/<split>_all_frames/JPEGImages/<vid>/      (every frame)
    <yv>/<split>_gt/Annotations/<vid>/                        (SynthVOS only: full ground truth)

See docs/METHOD.md for how each evaluation reads them.
"""

from __future__ import annotations

from pathlib import Path

FRAMES = "JPEGImages"
ANNOTATIONS = "Annotations"
IMAGE_SETS = "ImageSets"
RESOLUTION = "480p"
TRAINVAL = "trainval"
TEST_DEV = "test-dev"
ALL_FRAMES = "all_frames"
META = "meta.json"
DAVIS_SPLITS = {"train": TRAINVAL, "val": TRAINVAL, "testdev": TEST_DEV}


def davis_folder(year_root: str | Path, split: str) -> Path:
    """``<davis>/2017/trainval`` or ``…/test-dev`` from the year folder (``<davis>/2017``)."""
    return Path(year_root) / DAVIS_SPLITS[split]


def davis_frames(folder: str | Path, name: str = "", resolution: str = RESOLUTION) -> Path:
    """``<folder>/JPEGImages/480p[/<name>]``."""
    return Path(folder) / FRAMES / resolution / name


def davis_annotations(folder: str | Path, name: str = "", resolution: str = RESOLUTION) -> Path:
    """``<folder>/Annotations/480p[/<name>]``."""
    return Path(folder) / ANNOTATIONS / resolution / name


def image_set_name(year: str, split: str) -> str:
    """``<year>/<split>.txt``, a sequence list's path below ``ImageSets`` (``testdev`` is written ``test-dev``)."""
    stem = TEST_DEV if split == "testdev" else split
    return f"{year}/{stem}.txt"


def davis_image_set(folder: str | Path, year: str, split: str) -> Path:
    """``<folder>/ImageSets/<year>/<split>.txt``."""
    return Path(folder) / IMAGE_SETS / image_set_name(year, split)


def davis2016_image_set(root_2016: str | Path, split: str = "val") -> Path:
    """DAVIS 2016 lists live in the 2017 folder beside it: ``<davis>/2017/trainval/ImageSets/2016/<split>.txt``."""
    return davis_image_set(Path(root_2016) / ".." / "2017" / TRAINVAL, "2016", split)


def youtube_frames(root: str | Path, split: str, sparse: bool = False, name: str = "") -> Path:
    """Every frame (``all_frames/<split>_all_frames/JPEGImages``) or, ``sparse``, every 5th (``<split>/JPEGImages``)."""
    if sparse:
        return Path(root) / split / FRAMES / name
    return Path(root) / ALL_FRAMES / f"{split}_all_frames" / FRAMES / name


def youtube_annotations(root: str | Path, split: str, name: str = "") -> Path:
    """``<yv>/<split>/Annotations[/<name>]``."""
    return Path(root) / split / ANNOTATIONS / name


def youtube_meta(root: str | Path, split: str) -> Path:
    """``<yv>/<split>/meta.json``."""
    return Path(root) / split / META


def youtube_ground_truth(root: str | Path, split: str, name: str = "") -> Path:
    """``<yv>/<split>_gt/Annotations[/<name>]``: every frame's mask (SynthVOS writes it)."""
    return Path(root) / f"{split}_gt" / ANNOTATIONS / name
