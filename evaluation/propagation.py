"""The propagation loop: the network for a run, one video frame by frame, and a list of videos into their mask folders."""

from __future__ import annotations

import contextlib
import functools
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import progressbar
import torch
import torch.nn.functional as F

from datasets.video_source import VideoSource
from engine.core import InferenceCore
from evaluation.config import EvalConfig
from evaluation.masks import PALETTE_PNG, MaskFormat, write_mask
from model.checkpoint import check_state_dict, extract_weights, safe_load, trained_frame_size
from model.compile import compile_parts, compile_record
from model.memory_policy import MemoryConfig
from model.network import DEFAULT_KM_SIGMA, QDMN
from util.errors import UserError
from util.hardware import amp_dtype
from util.output_safety import fresh_partial, is_complete, publish, video_lock
from util.streaming import AsyncWriter, prefetch

# Called after each frame with (video, frame index, label map, engine): progress and the memory's decisions
# (``engine.decisions``) for a caller that shows them; it must not change the engine.
FrameHook = Callable[[VideoSource, int, np.ndarray, InferenceCore], None]


def build_network(settings: EvalConfig, device: torch.device, amp: bool) -> QDMN:
    """The network of ``--model`` on ``device``, optimised for inference (weights in the ``amp`` type) unless ``--official_kernels``."""
    obj = safe_load(settings.model)
    state, config = extract_weights(obj, settings.model, settings.qam_activation)
    trained = trained_frame_size(obj)
    if trained is not None:
        print(f"{settings.model}: trained on {trained[0]}x{trained[1]} (HxW) frames")
    top_k = None if settings.no_top else settings.top_k
    network = QDMN(config, top_k=top_k, km_sigma=DEFAULT_KM_SIGMA if settings.use_km else None)
    check_state_dict(network, state, settings.model)
    return prepare_network(network, device, settings.official_kernels, amp, settings.compile)


def prepare_network(network: QDMN, device: torch.device, official_kernels: bool, amp: bool, compile: bool = False) -> QDMN:
    """``network`` on ``device`` for evaluation: the official arithmetic with ``official_kernels``,
    else the fast path (:meth:`QDMN.optimize_for_inference`, weights in the ``amp`` type), its
    fixed-shape parts compiled with ``compile`` (:mod:`model.compile`; the official arithmetic stays eager)."""
    network = network.to(device).eval()
    network.dense_readout = official_kernels
    if official_kernels:
        if compile:
            print("warning: --compile ignored: --official_kernels runs the official arithmetic eager", file=sys.stderr)
        return network
    network = network.optimize_for_inference(amp_dtype(device) if amp else None)
    if compile:
        print(f"--compile: the first frames compile the network (cache: {compile_parts(network).cache})")
    return network


def compile_seconds(network: QDMN) -> float:
    """Seconds the network's compiled parts have spent compiling so far (0 when nothing is compiled)."""
    record = compile_record(network)
    return record.seconds if record is not None else 0.0


def probabilities_to_labels(prob: torch.Tensor, size: tuple[int, int], labels: torch.Tensor) -> torch.Tensor:
    """(K+1, h, w) probabilities -> (H, W) dataset labels; bilinear upsampling before the argmax."""
    if tuple(prob.shape[-2:]) != tuple(size):
        prob = F.interpolate(prob.unsqueeze(0), size=size, mode="bilinear", align_corners=False)[0]
    return labels[prob.argmax(dim=0)]


@dataclass
class VideoStats:
    """One video: frames written, seconds (compiling left out), the memory's admissions and evictions, most frames read
    from memory, seconds spent compiling (``--compile``)."""

    frames: int = 0
    seconds: float = 0.0
    admitted: int = 0
    evicted: int = 0
    peak_memory_frames: int = 0
    compile_seconds: float = 0.0


@dataclass
class RunStats:
    videos: int = 0
    frames: int = 0
    seconds: float = 0.0  # inside the videos, compiling left out (it is compile_seconds)
    peak_memory_frames: int = 0  # most frames read from memory for one query (temporary frame included)
    compile_seconds: float = 0.0  # --compile: seconds of the calls that compiled
    per_video: dict[str, VideoStats] = field(default_factory=dict)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def propagate(
    network: QDMN,
    memory: MemoryConfig,
    video: VideoSource,
    device: torch.device,
    prefetch_depth: int = 4,
    amp: bool = False,
    stats: Optional[RunStats] = None,
    on_frame: Optional[FrameHook] = None,
) -> Iterator[tuple[int, np.ndarray]]:
    """Run the engine over one video; yields (frame index, uint8 label map at the frame's size) from the first annotation on.

    Frames are decoded in a background thread a few frames ahead; nothing but the
    engine's memory is kept.
    """
    core = InferenceCore(network, memory, device, amp=amp)
    labels = torch.zeros(1, dtype=torch.uint8, device=device)
    this = VideoStats()
    start = video.first_annotated  # propagating before the first annotation is useless
    for item in prefetch((item for item in video.items() if item.index >= start), prefetch_depth):
        if item.annotation is None:
            prob = core.step(item.image, frame=item.index)
        else:
            prob = core.step(item.image, item.annotation.masks, item.annotation.object_ids, frame=item.index)
            labels = torch.tensor([0, *core.object_ids], dtype=torch.uint8, device=device)
        this.peak_memory_frames = max(this.peak_memory_frames, len(core.store) + (core.temporary is not None))
        ids = probabilities_to_labels(prob, item.size, labels).cpu().numpy()
        if on_frame is not None:
            on_frame(video, item.index, ids, core)
        yield item.index, ids
    if stats is not None:
        this.admitted = sum(d.admitted for _, d in core.decisions)
        this.evicted = sum(d.evicted is not None for _, d in core.decisions)
        stats.peak_memory_frames = max(stats.peak_memory_frames, this.peak_memory_frames)
        stats.per_video[video.name] = this


@dataclass
class RunContext:
    """What every video of a run is segmented with and written into (``mask_format``); ``stats`` is added to as videos complete."""

    network: QDMN
    memory: MemoryConfig
    output: Path
    device: torch.device
    stats: RunStats
    mask_format: MaskFormat = PALETTE_PNG
    amp: bool = False
    on_frame: Optional[FrameHook] = None


def segment_videos(
    run: RunContext,
    todo: list[VideoSource],
    holder: Optional[str] = None,
    overwrite: bool = False,
    progress: bool = True,
    on_error: Optional[Callable[[VideoSource, UserError], None]] = None,
) -> list[str]:
    """Write ``todo``'s masks, adding to ``run.stats``; returns the videos left to another process.

    ``holder`` (a process of a parallel run): each video is written under its lock
    (:func:`util.output_safety.video_lock`); one another process holds is left to it,
    and one that became complete meanwhile is skipped (unless ``overwrite``).
    ``on_error``: a video that fails (a UserError) is reported to it and the next one
    starts; without it the first failure ends the run.
    """
    busy: list[str] = []
    total = sum(len(v) for v in todo)
    widgets = [progressbar.Percentage(), " ", progressbar.Bar(), " ", progressbar.Variable("video"), " ", progressbar.ETA()]
    bar = (progressbar.ProgressBar(max_value=max(total, 1), widgets=widgets, redirect_stdout=True, fd=sys.stdout)  # stderr: errors only
           if progress else progressbar.NullBar(max_value=max(total, 1)))
    with bar, AsyncWriter() as io:
        done = 0
        for video in todo:
            with video_lock(run.output, video.name, holder) if holder else contextlib.nullcontext() as other:
                if other is not None:
                    busy.append(video.name)
                elif holder is None or overwrite or not is_complete(run.output, video.name):
                    try:
                        segment_one(run, video, io, lambda t, name=video.name, base=done: bar.update(min(total, base + t + 1), video=name))
                    except UserError as e:
                        if on_error is None:
                            raise
                        on_error(video, e)
            done += len(video)
    return busy


def segment_one(run: RunContext, video: VideoSource, io: AsyncWriter, on_progress: Callable[[int], None]) -> None:
    """One video into ``.<name>.partial``, published as ``<name>`` once every mask is written."""
    start, compiling = time.perf_counter(), compile_seconds(run.network)
    stats, masks = run.stats, run.mask_format
    partial = fresh_partial(run.output, video.name)
    written = 0
    for t, ids in propagate(run.network, run.memory, video, run.device, amp=run.amp, stats=stats, on_frame=run.on_frame):
        io.submit(functools.partial(write_mask, masks.write, partial / masks.file_name(video.output_stem(t)), ids, video))
        stats.frames += 1
        written += 1
        on_progress(t)
    io.flush()
    publish(run.output, video.name, partial, written)
    compiled = compile_seconds(run.network) - compiling
    seconds = time.perf_counter() - start - compiled
    stats.videos += 1
    stats.seconds += seconds
    stats.compile_seconds += compiled
    if video.name in stats.per_video:
        this = stats.per_video[video.name]
        this.frames, this.seconds, this.compile_seconds = written, seconds, compiled


