"""What a video's masks were made from: its input fingerprint, kept in its completion record.

A rerun skips a video only when the fingerprint recorded with its masks is the one this
run would record; otherwise it stops before inference, naming the video and what
changed (docs/OUTPUT_SAFETY.md). The fingerprint holds:

* the frames: their count, first and last names, and a digest of every frame's name
  and byte size (a video file: its name, byte size and frame count);
* the annotation files: the SHA-256 of each (they are small);
* the model file's SHA-256 (hashed once per process and file version);
* the settings that change the masks: memory (policy, mem_freq, threshold, capacity,
  zero_base, quality_mean, quality_base), top_k / no_top, use_km, the QAM activation,
  the inference size, the precision, official_kernels and the mask format.

Threads, device and --compile are left out: they change only the order of float sums, and the
processes of one distributed run (other machines, other thread counts) must be able to
continue each other's work.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Optional

import torch

from datasets.video_source import VideoSource
from evaluation.config import EvalConfig
from evaluation.masks import MaskFormat
from model.checkpoint import check_checkpoint_path
from util.errors import UserError
from util.hardware import amp_dtype
from util.output_safety import expect_fingerprints, recorded
from util.write_gate import sha256_file

FINGERPRINT_VERSION = 1
MEMORY_FLAGS = ("memory_policy", "mem_freq", "threshold", "capacity", "zero_base", "quality_mean", "quality_base")

_model_digests: dict[tuple[str, int, int], str] = {}  # (resolved path, size, mtime) -> SHA-256: a big file is hashed once


def model_digest(path: str | os.PathLike) -> str:
    """SHA-256 of the model file, cached per process while the file is unchanged."""
    check_checkpoint_path(Path(path), "--model")
    real = Path(path).resolve()
    try:
        st = real.stat()
        key = (str(real), st.st_size, st.st_mtime_ns)
        if key not in _model_digests:
            _model_digests[key] = sha256_file(real)
    except OSError as e:
        raise UserError(f"{path}: cannot read the model file ({e.strerror or e}); check --model") from None
    return _model_digests[key]


def frames_fingerprint(video: VideoSource) -> dict[str, Any]:
    """Count, first and last names, and a digest of (name, byte size) of every frame (stat only, nothing decoded)."""
    paths = getattr(video.frames, "paths", None)
    if paths is None:  # a video file
        path = Path(getattr(video.frames, "path", video.name))
        return {"count": len(video), "file": path.name, "bytes": _size(path)}
    digest = hashlib.sha256()
    for path in paths:
        digest.update(f"{path.name}\0{_size(path)}\n".encode("utf-8", "surrogateescape"))
    names = [p.name for p in paths]
    return {"count": len(paths), "first": names[0] if names else None, "last": names[-1] if names else None,
            "digest": digest.hexdigest()}


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return -1


def annotations_fingerprint(video: VideoSource) -> dict[str, str]:
    """Frame index (as text) -> ``<file name>:<SHA-256>`` of each annotation the video reads."""
    found = {}
    for index, path in sorted(video.annotation_files.items()):
        try:
            found[str(index)] = f"{path.name}:{sha256_file(path)}"
        except OSError as e:
            raise UserError(f"{path}: cannot read the annotation ({e.strerror or e}); check --masks or the dataset") from None
    return found


def video_fingerprint(video: VideoSource) -> dict[str, Any]:
    """What one video's masks depend on, besides the run's settings."""
    return {
        "frames": frames_fingerprint(video),
        "annotations": annotations_fingerprint(video),
        "video": {
            "infer_size": video.infer_size,
            "max_short_side": video.max_short_side,
            "single_object": video.single_object,
            "numbered_outputs": video.numbered_outputs,
            "gray_binary_is_one_object": video.gray_binary_is_one_object,
        },
    }


def settings_fingerprint(config: EvalConfig, device: torch.device, amp: bool, mask_format: MaskFormat) -> dict[str, Any]:
    """The run's settings that change the masks (``amp``: the precision this run uses on ``device``)."""
    return {
        "model_sha256": model_digest(config.model),
        **{flag: getattr(config, flag) for flag in MEMORY_FLAGS},
        "top_k": None if config.no_top else config.top_k,
        "use_km": config.use_km,
        "qam_activation": config.qam_activation,
        "precision": str(amp_dtype(device)).removeprefix("torch.") if amp else "float32",
        "official_kernels": config.official_kernels,
        "mask_format": mask_format.write.__name__,
    }


def run_fingerprints(config: EvalConfig, videos: Iterable[VideoSource], device: torch.device, amp: bool,
                     mask_format: MaskFormat) -> dict[str, dict[str, Any]]:
    """Video name -> the fingerprint its completion record carries in this run."""
    settings = settings_fingerprint(config, device, amp, mask_format)
    found = {v.name: {"version": FINGERPRINT_VERSION, **video_fingerprint(v), "settings": settings} for v in videos}
    return json.loads(json.dumps(found))  # as a record reads back (lists, not tuples), so that equal means equal


def describe_change(old: Optional[Mapping[str, Any]], new: Mapping[str, Any]) -> str:
    """What differs between a recorded fingerprint and this run's, in a few words (the first differences)."""
    if not isinstance(old, Mapping) or old.get("version") != new.get("version"):
        return "recorded without an input fingerprint (an earlier version of this project)"
    changes = []
    of, nf = old.get("frames") or {}, new["frames"]
    if of.get("count") != nf.get("count"):
        changes.append(f"frames {of.get('count')} -> {nf.get('count')}")
    elif of != nf:
        changes.append("frame names or sizes changed" if "digest" in nf else f"video file {nf.get('file')} changed")
    oa, na = old.get("annotations") or {}, new["annotations"]
    if oa != na:
        changed = sorted(set(oa) ^ set(na)) or sorted(k for k in na if oa.get(k) != na[k])
        names = [(na.get(k) or oa.get(k) or "?").split(":")[0] for k in changed]
        changes.append(f"annotation{'s' if len(names) > 1 else ''} {', '.join(names[:3])} changed")
    if (old.get("video") or {}) != new["video"]:
        changes += _settings_diff(old.get("video") or {}, new["video"])
    os_, ns = old.get("settings") or {}, new["settings"]
    if os_.get("model_sha256") != ns["model_sha256"]:
        changes.append("another model file")
    changes += _settings_diff({k: v for k, v in os_.items() if k != "model_sha256"},
                              {k: v for k, v in ns.items() if k != "model_sha256"})
    return ", ".join(changes[:4]) or "the input changed"


def _settings_diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    return [f"{key} {old.get(key)} -> {new.get(key)}" for key in sorted(set(old) | set(new)) if old.get(key) != new.get(key)]


def check_recorded_inputs(output: Path, fingerprints: Mapping[str, Mapping[str, Any]], overwrite: bool) -> None:
    """Before inference: every complete video in ``output`` was made from this input, unless ``overwrite`` redoes it.

    Then the fingerprints are stated to :func:`util.output_safety.expect_fingerprints`, so that
    completion (skipping, the zip, J&F, the overlay) means complete for this input.
    """
    expect_fingerprints(output, fingerprints)
    if overwrite:
        return
    for name, fingerprint in fingerprints.items():
        info = recorded(output, name)
        if info is None or info.get("complete") is not True or not (output / name).is_dir():
            continue  # nothing complete there: the run (re)does it
        if info.get("inputs") != fingerprint:
            raise UserError(
                f"{output / name}: its masks were made from another input ({describe_change(info.get('inputs'), fingerprint)}); "
                "use a new --output, or --overwrite to replace them"
            )
