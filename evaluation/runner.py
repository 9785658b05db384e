"""The one evaluation loop shared by every ``eval_*`` script.

Scripts parse their arguments with :func:`add_eval_args`, list their videos as
:class:`~datasets.video_source.VideoSource` objects and call :func:`run_evaluation`.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import socket
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import progressbar
import torch
import torch.nn.functional as F

from datasets.video_source import VideoSource
from engine.core import InferenceCore
from evaluation.distributed import (
    FINISH_LOCK,
    MERGE_HINT,
    PeerFailed,
    Plan,
    RankRecord,
    Terminated,
    add_distributed_args,
    already_finished,
    barrier,
    incomplete_message,
    mark_finished,
    parallel_summary,
    peak_cuda_mib,
    plan_device,
    plan_from,
    plan_threads,
    print_parallel_summary,
    process_group,
    raise_on_sigterm,
    records_for_summary,
    split_by_frames,
    write_rank_record,
)
from model.checkpoint import check_state_dict, extract_weights, safe_load, trained_frame_size
from model.config import QAM_ACTIVATIONS
from model.memory_policy import POLICIES, QUALITY_BASES, QUALITY_MEANS, ZERO_BASE_CHOICES, MemoryConfig
from model.network import DEFAULT_KM_SIGMA, DEFAULT_TOP_K, QDMN
from util.arg_types import finite_float, non_negative_int, positive_int
from util.atomic import write_text_atomic
from util.errors import RunIncomplete, UserError
from util.hardware import amp_dtype, effective_amp, set_threads
from util.image_io import DEFAULT_MAX_PIXELS, mask_palette, save_gray_png, save_palette_png
from util.output_safety import (
    STATE_DIR,
    archive_path,
    check_archive_replaceable,
    check_output_location,
    check_plain_name,
    check_video_outputs,
    fresh_partial,
    is_complete,
    lock_output,
    publish,
    video_lock,
    waiting_lock,
    zip_comment,
)
from util.profiling import peak_rss_mib
from util.streaming import AsyncWriter, prefetch

MaskWriter = Callable[[Path, np.ndarray, VideoSource], None]
# Called after each frame with (video, frame index, label map, engine): progress and the memory's decisions
# (``engine.decisions``) for a caller that shows them; it must not change the engine.
FrameHook = Callable[[VideoSource, int, np.ndarray, InferenceCore], None]


def add_eval_args(
    parser: argparse.ArgumentParser,
    memory: MemoryConfig,
    default_model: str = "saves/QDMN.pth",
    default_output: Optional[str] = None,
    distributed: bool = True,
) -> None:
    """Flags every evaluation script shares (the official ones plus this project's); ``distributed``: ``--shard`` too."""
    parser.add_argument("--model", default=default_model, help="network weights (.pth)")
    parser.add_argument("--output", required=default_output is None, default=default_output, help="folder for the output masks")
    parser.add_argument("--device", default=None, help="cuda, cuda:1, cpu... (default: cuda when available)")
    parser.add_argument("--use_km", action="store_true", help="kernelised memory read (KMN Gaussian, sigma 5.6)")
    parser.add_argument("--no_top", action="store_true", help="full softmax instead of top-k")
    parser.add_argument("--top_k", type=positive_int, default=DEFAULT_TOP_K, help="affinities kept per query position")
    parser.add_argument("--mem_freq", type=positive_int, default=memory.mem_freq, help="minimum gap between admitted frames")
    parser.add_argument("--threshold", type=finite_float(), default=memory.threshold, help="normalised quality needed for admission")
    parser.add_argument("--capacity", type=non_negative_int, default=memory.capacity,
                        help="eviction starts when the bank holds more entries")
    parser.add_argument(
        "--zero_base",
        choices=ZERO_BASE_CHOICES,
        default=memory.zero_base,
        help="behaviour when the base score is zero (the annotated, or first propagated, frame's QAM scores all zero)",
    )
    parser.add_argument(
        "--quality_mean",
        choices=QUALITY_MEANS,
        default=memory.quality_mean,
        help="a frame's quality averages the QAM scores of all objects or only the non-zero ones "
        "(default: this dataset's official core at HEAD)",
    )
    parser.add_argument(
        "--quality_base",
        choices=QUALITY_BASES,
        default=memory.quality_base,
        help="the quality is divided by the annotated frame's non-zero mean or by the first propagated frame's mean "
        "(default: this dataset's official core at HEAD)",
    )
    parser.add_argument(
        "--qam_activation",
        choices=QAM_ACTIVATIONS,
        default=None,
        help="override the QAM activation of a bare state dict (default: relu, as released)",
    )
    parser.add_argument("--overwrite", action="store_true", help="redo videos whose output folder is already complete")
    parser.add_argument("--amp", action="store_true",
                        help="mixed precision: float16 on CUDA, bfloat16 on a CPU with native bfloat16 (elsewhere float32, with a warning)")
    parser.add_argument("--force_amp", action="store_true", help="with --amp: bfloat16 even on a CPU without native bfloat16 (slow)")
    parser.add_argument("--threads", type=positive_int, default=None,
                        help="CPU threads for the network (default: the CPUs this process may use; 1 when the machine is shared)")
    parser.add_argument(
        "--official_kernels",
        action="store_true",
        help="the official arithmetic (NCHW layout, dense scatter+bmm top-k readout): slower; by default channels_last and a "
        "gathered top-k readout give the same masks up to float rounding",
    )
    parser.add_argument("--stats_json", default=None,
                        help="also write the run's summary (videos, frames, seconds, FPS, peak memory frames, peak RSS) as JSON")
    parser.add_argument("--memory_policy", choices=POLICIES, default="qdmn",
                        help="qdmn (the paper); every / fifo / first_prev: baselines for comparison")
    parser.add_argument("--max_pixels", type=positive_int, default=DEFAULT_MAX_PIXELS,
                        help="largest frame or annotation, in pixels (width x height), checked from each file's header before decoding")
    if distributed:
        add_distributed_args(parser)


def memory_config(args: argparse.Namespace) -> MemoryConfig:
    try:
        return MemoryConfig(
            mem_freq=args.mem_freq,
            threshold=args.threshold,
            capacity=args.capacity,
            zero_base=args.zero_base,
            policy=args.memory_policy,
            quality_mean=args.quality_mean,
            quality_base=args.quality_base,
        )
    except ValueError as e:
        raise UserError(str(e)) from None


def build_network(args: argparse.Namespace, device: torch.device) -> QDMN:
    """The network of ``--model`` on ``device``, optimised for inference unless ``--official_kernels``."""
    obj = safe_load(args.model)
    state, config = extract_weights(obj, args.model, args.qam_activation)
    trained = trained_frame_size(obj)
    if trained is not None:
        print(f"{args.model}: trained on {trained[0]}x{trained[1]} (HxW) frames")
    top_k = None if args.no_top else args.top_k
    network = QDMN(config, top_k=top_k, km_sigma=DEFAULT_KM_SIGMA if args.use_km else None)
    check_state_dict(network, state, args.model)
    return prepare_network(network, device, args.official_kernels, getattr(args, "amp", False))


def prepare_network(network: QDMN, device: torch.device, official_kernels: bool, amp: bool) -> QDMN:
    """``network`` on ``device`` for evaluation: the official arithmetic with ``official_kernels``,
    else the fast path (:meth:`QDMN.optimize_for_inference`, weights in the ``amp`` type)."""
    network = network.to(device).eval()
    network.dense_readout = official_kernels
    if official_kernels:
        return network
    return network.optimize_for_inference(amp_dtype(device) if amp else None)


def prepare_output(path: str | os.PathLike) -> Path:
    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write_test.", dir=out)  # a fresh name: no file of the user's is touched
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise UserError(f"{out}: output folder cannot be written ({e.strerror}); choose another --output") from None
    return out


def probabilities_to_labels(prob: torch.Tensor, size: tuple[int, int], labels: torch.Tensor) -> torch.Tensor:
    """(K+1, h, w) probabilities -> (H, W) dataset labels; bilinear upsampling before the argmax."""
    if tuple(prob.shape[-2:]) != tuple(size):
        prob = F.interpolate(prob.unsqueeze(0), size=size, mode="bilinear", align_corners=False)[0]
    return labels[prob.argmax(dim=0)]


@dataclass
class VideoStats:
    """One video: frames written, seconds, the memory's admissions and evictions, most frames read from memory."""

    frames: int = 0
    seconds: float = 0.0
    admitted: int = 0
    evicted: int = 0
    peak_memory_frames: int = 0


@dataclass
class RunStats:
    videos: int = 0
    frames: int = 0
    seconds: float = 0.0
    peak_memory_frames: int = 0  # most frames read from memory for one query (temporary frame included)
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


def write_palette(path: Path, ids: np.ndarray, video: VideoSource) -> None:
    save_palette_png(path, ids, mask_palette(video.palette_from) if video.palette_from else None)


def write_binary(path: Path, ids: np.ndarray, video: VideoSource) -> None:
    save_gray_png(path, (ids > 0).astype(np.uint8) * 255)


def run_evaluation(
    network: QDMN,
    memory: MemoryConfig,
    videos: Iterable[VideoSource],
    output: Path,
    device: torch.device,
    writer: MaskWriter = write_palette,
    overwrite: bool = False,
    amp: bool = False,
    on_frame: Optional[FrameHook] = None,
) -> RunStats:
    """Segment every video and write its masks (one process: the output folder's lock held alone).

    Each video is written into ``.<name>.partial``, renamed to ``<name>`` when
    complete and recorded complete (``util/output_safety``): a rerun skips those
    (unless ``overwrite``) and redoes interrupted ones; a folder this project did not
    write is refused, never replaced. Masks are written by a background thread while
    the next frames are computed.
    """
    lock_output(output)
    todo = pending_videos(output, list(videos), overwrite)
    stats = RunStats()
    segment_videos(network, memory, todo, output, device, stats, writer=writer, amp=amp, on_frame=on_frame)
    return stats


def pending_videos(output: Path, videos: list[VideoSource], overwrite: bool, announce: bool = True) -> list[VideoSource]:
    """The videos still to do (all with ``overwrite``), once every existing output of theirs is known to be this project's."""
    check_video_outputs(output, [check_plain_name(v.name, "video name") for v in videos])
    todo = [v for v in videos if overwrite or not is_complete(output, v.name)]
    if announce and len(todo) < len(videos):
        print(f"skipping {len(videos) - len(todo)} complete video(s) already in {output} (--overwrite redoes them)")
    return todo


def segment_videos(
    network: QDMN,
    memory: MemoryConfig,
    todo: list[VideoSource],
    output: Path,
    device: torch.device,
    stats: RunStats,
    writer: MaskWriter = write_palette,
    amp: bool = False,
    on_frame: Optional[FrameHook] = None,
    holder: Optional[str] = None,
    overwrite: bool = False,
    progress: bool = True,
    on_error: Optional[Callable[[VideoSource, UserError], None]] = None,
) -> list[str]:
    """Write ``todo``'s masks, adding to ``stats``; returns the videos left to another process.

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
            with video_lock(output, video.name, holder) if holder else contextlib.nullcontext() as other:
                if other is not None:
                    busy.append(video.name)
                elif holder is None or overwrite or not is_complete(output, video.name):
                    try:
                        segment_one(network, memory, video, output, device, stats, io, writer, amp, on_frame,
                                    lambda t, name=video.name, base=done: bar.update(min(total, base + t + 1), video=name))
                    except UserError as e:
                        if on_error is None:
                            raise
                        on_error(video, e)
            done += len(video)
    return busy


def segment_one(
    network: QDMN,
    memory: MemoryConfig,
    video: VideoSource,
    output: Path,
    device: torch.device,
    stats: RunStats,
    io: AsyncWriter,
    writer: MaskWriter,
    amp: bool,
    on_frame: Optional[FrameHook],
    on_progress: Callable[[int], None],
) -> None:
    """One video into ``.<name>.partial``, published as ``<name>`` once every mask is written."""
    start = time.perf_counter()
    partial = fresh_partial(output, video.name)
    written = 0
    for t, ids in propagate(network, memory, video, device, amp=amp, stats=stats, on_frame=on_frame):
        io.submit(functools.partial(write_mask, writer, partial / video.output_name(t), ids, video))
        stats.frames += 1
        written += 1
        on_progress(t)
    io.flush()
    publish(output, video.name, partial, written)
    seconds = time.perf_counter() - start
    stats.videos += 1
    stats.seconds += seconds
    if video.name in stats.per_video:
        stats.per_video[video.name].frames, stats.per_video[video.name].seconds = written, seconds


def write_mask(writer: MaskWriter, path: Path, ids: np.ndarray, video: VideoSource) -> None:
    """``writer``; a full disk or a permission error is one line naming the file (nothing is published)."""
    try:
        writer(path, ids, video)
    except OSError as e:
        raise UserError(f"{path}: cannot write ({e.strerror or e}); free disk space or fix the permissions of --output") from None


ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # the earliest date a zip can hold: members carry no run-specific time


def add_to_zip(archive: zipfile.ZipFile, path: Path, name: str) -> None:
    info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    archive.writestr(info, path.read_bytes())


def write_submission_zip(output: Path, videos: Iterable[VideoSource], zip_path: Optional[Path] = None) -> Path:
    """Zip ``Annotations/<video>/<frame>.png`` for the evaluation servers.

    Only the frames a server scores are included (``VideoSource.submission_stems``).
    The archive is ``<output>.zip`` (the folder's full name); an existing archive is
    replaced only when it was written from the same folder by this project. The same
    masks give the same bytes (fixed member dates), however many processes wrote them.
    """
    zip_path = zip_path or archive_path(output)
    check_archive_replaceable(zip_path, output)
    tmp = zip_path.with_name(f".{zip_path.name}.{os.getpid()}.tmp")
    try:
        with zipfile.ZipFile(tmp, "x", zipfile.ZIP_DEFLATED) as archive:  # "x": never over an existing file
            archive.comment = zip_comment(output)
            for video in videos:
                for png in sorted((output / video.name).glob("*.png")):
                    if video.submission_stems is None or png.stem in video.submission_stems:
                        add_to_zip(archive, png, f"Annotations/{video.name}/{png.name}")
        os.replace(tmp, zip_path)
    except FileExistsError:
        raise UserError(f"{tmp}: exists; move it and rerun") from None
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise UserError(f"{zip_path}: cannot write the archive ({e.strerror or e}); free disk space or choose another --output") from None
    return zip_path


Finish = Callable[[Path], None]


def evaluate_from_args(
    args: argparse.Namespace,
    videos: list[VideoSource],
    writer: MaskWriter = write_palette,
    on_frame: Optional[FrameHook] = None,
    finish: Optional[Finish] = None,
) -> Path:
    """What every eval script does once its videos are listed: device, network, run, summary, then ``finish(output)``.

    ``finish`` (the submission zip, J&F, overlays) runs once every video is complete, in
    one process: this one, rank 0 under torchrun, or the shard (or ``--shard merge``)
    that finds every video complete (:mod:`evaluation.distributed`). Scripts without
    ``--shard`` (the demo, the app) always run in one process. ``on_frame``: see :data:`FrameHook`.
    """
    plan = plan_from(args.shard) if hasattr(args, "shard") else Plan()
    device = plan_device(plan, args.device)
    threads = set_threads(plan_threads(args.threads))
    args.amp = effective_amp(device, args.amp, args.force_amp)
    ground_truth = [args.gt] if getattr(args, "gt", None) else []
    check_output_location(args.output, [p for v in videos for p in v.inputs()] + [args.model, *ground_truth])
    if getattr(args, "stats_json", None):  # before the work, not after it
        check_stats_json(Path(args.stats_json))
    if getattr(args, "zip", False):  # before the work, not after it
        check_archive_replaceable(archive_path(Path(args.output)), Path(args.output))
    if plan.kind == "merge":
        return merge_shards(args, plan, videos, finish)
    network = build_network(args, device)
    output = prepare_output(args.output)
    if plan.parallel:
        run = ParallelRun(args, plan, videos, output, device, threads, finish)
        return run.execute(network, memory_config(args), writer, on_frame)
    with torch.no_grad():  # for this run only: a caller in the same process (a test, the app) keeps its grad mode
        stats = run_evaluation(
            network, memory_config(args), videos, output, device, writer=writer, overwrite=args.overwrite, amp=args.amp, on_frame=on_frame
        )
    print_summary(stats, output)
    if getattr(args, "stats_json", None):
        write_stats_json(summary(stats, output), Path(args.stats_json))
    if finish is not None:
        finish(output)
    return output


def frames_to_segment(video: VideoSource) -> int:
    return len(video) - video.first_annotated


@dataclass
class ParallelRun:
    """This process's part of a run over several processes (torchrun ranks or ``--shard`` shards)."""

    args: argparse.Namespace
    plan: Plan
    videos: list[VideoSource]
    output: Path
    device: torch.device
    threads: int
    finish: Optional[Finish]
    stats: RunStats = field(default_factory=RunStats)  # this process's videos so far

    def execute(self, network: QDMN, memory: MemoryConfig, writer: MaskWriter, on_frame: Optional[FrameHook]) -> Path:
        record = RankRecord.start(self.plan, self.device, self.threads)
        try:
            with raise_on_sigterm(), process_group(self.plan):
                mine = self.share()
                write_rank_record(self.output, self.plan, record)
                barrier(self.plan)  # every rank has listed the work before any writes
                failure = self.segment(network, memory, mine, writer, on_frame, record)
                barrier(self.plan)
                try:
                    if self.plan.kind == "shard" or self.plan.rank == 0:
                        self.finish_if_complete()
                finally:
                    barrier(self.plan)  # the others wait for rank 0 to finish: torchrun would stop it when they exit
        except Terminated as stop:
            record.status = "stopped"
            self.record_end(record)
            print(f"error: {self.plan.label} stopped by signal {stop.signum}; {incomplete_message(self.incomplete())}", file=sys.stderr)
            raise SystemExit(128 + stop.signum) from None
        except PeerFailed as e:
            print(f"error: {self.plan.label}: another rank stopped ({e}); {incomplete_message(self.incomplete())}", file=sys.stderr)
            raise SystemExit(1) from None
        if failure is not None:
            raise failure
        return self.output

    def share(self) -> list[VideoSource]:
        """This process's videos. Ranks split what is left to do (they all list it before any writes); shards split
        every video (they start at different times), then skip the complete ones."""
        lock_output(self.output, shared=True)
        todo = pending_videos(self.output, self.videos, self.args.overwrite, announce=self.plan.rank == 0 or self.plan.kind == "shard")
        basis = todo if self.plan.kind == "torchrun" else self.videos
        mine = [basis[i] for i in split_by_frames([frames_to_segment(v) for v in basis], self.plan.world)[self.plan.rank]]
        pending = {v.name for v in todo}
        return [v for v in mine if v.name in pending]

    def segment(
        self, network: QDMN, memory: MemoryConfig, mine: list[VideoSource], writer: MaskWriter, on_frame: Optional[FrameHook],
        record: RankRecord,
    ) -> Optional[Exception]:
        """Write this process's videos; a video that fails is reported and the next one starts, so that one bad
        video (or one failing rank) does not cost the others. The failure is returned, to be raised once the ranks met."""
        holder = f"pid {os.getpid()} on {socket.gethostname()} ({self.plan.label})"
        failed: list[str] = []

        def report(video: VideoSource, error: UserError) -> None:
            failed.append(video.name)
            print(f"error: {self.plan.label}: {error}", file=sys.stderr)

        failure: Optional[Exception] = None
        try:
            with torch.no_grad():
                busy = segment_videos(network, memory, mine, self.output, self.device, self.stats, writer=writer, amp=self.args.amp,
                                      on_frame=on_frame, holder=holder, overwrite=self.args.overwrite,
                                      progress=self.plan.rank == 0 or self.plan.kind == "shard", on_error=report)
            record.status = "done" if not busy else f"done; left to another run writing them: {', '.join(busy)}"
        except Exception as e:  # noqa: BLE001 - reported here, re-raised once the ranks have met
            failure = e
            print(f"error: {self.plan.label}: {e}", file=sys.stderr)
        if failed:
            failure = failure or UserError(f"{self.plan.label}: {len(failed)} video(s) failed: {', '.join(failed)} (see the errors above)")
        if failure is not None:
            record.status = f"failed: {failure}"
        self.record_end(record)
        return failure

    def record_end(self, record: RankRecord) -> None:
        record.videos, record.frames, record.seconds = self.stats.videos, self.stats.frames, self.stats.seconds
        record.per_video = {name: asdict(v) for name, v in self.stats.per_video.items()}
        record.finished = time.time()
        record.peak_rss_mib = peak_rss_mib()
        record.peak_cuda_mib = peak_cuda_mib(self.device)
        with contextlib.suppress(UserError):  # a record that cannot be written only leaves the summary shorter
            write_rank_record(self.output, self.plan, record)

    def incomplete(self) -> list[str]:
        return [v.name for v in self.videos if not is_complete(self.output, v.name)]

    def finish_if_complete(self) -> None:
        """Rank 0, or a shard: the zip, J&F and summary once every video is complete (else name what is missing)."""
        with waiting_lock(self.output / FINISH_LOCK):  # shards finishing together: one at a time
            missing = self.incomplete()
            if missing and self.plan.kind == "shard":
                print(f"{self.plan.label} done; {len(missing)} video(s) left to the other shards: the last one to finish "
                      "(or --shard merge) writes the summary")
                return
            if missing:
                raise RunIncomplete(incomplete_message(missing))
            if self.plan.kind == "shard" and already_finished(self.output, [v.name for v in self.videos]):
                print(f"{self.plan.label} done; another shard already finished the run in {self.output}")
                return
            finish_parallel(self.args, self.plan, self.videos, self.output, self.finish)


def merge_shards(args: argparse.Namespace, plan: Plan, videos: list[VideoSource], finish: Optional[Finish]) -> Path:
    """``--shard merge``: no inference; the zip, J&F and summary once the shards have written every video."""
    output = Path(args.output)
    if not (output / STATE_DIR).is_dir():
        raise UserError(f"--output {output}: no run of this project is recorded there; run the shards (--shard I/N) first")
    lock_output(output, shared=True)
    with waiting_lock(output / FINISH_LOCK):
        missing = [v.name for v in videos if not is_complete(output, v.name)]
        if missing:
            raise RunIncomplete(incomplete_message(missing, MERGE_HINT))
        finish_parallel(args, plan, videos, output, finish)
    return output


def finish_parallel(args: argparse.Namespace, plan: Plan, videos: list[VideoSource], output: Path, finish: Optional[Finish]) -> None:
    """The one summary of a parallel run (every process's record), ``--stats_json``, then ``finish``."""
    result = parallel_summary(records_for_summary(output, plan), len(videos))
    print_parallel_summary(result, output)
    if getattr(args, "stats_json", None):
        write_stats_json({**result, "output": str(output)}, Path(args.stats_json))
    if finish is not None:
        finish(output)
    mark_finished(output, [v.name for v in videos])


def print_summary(stats: RunStats, output: Path) -> None:
    print(f"Total processing time: {stats.seconds:.2f} s")
    print(f"Total processed frames: {stats.frames} ({stats.videos} videos)")
    print(f"FPS: {stats.fps:.3f}")
    print(f"Peak memory frames: {stats.peak_memory_frames}")
    print(f"Peak RSS: {peak_rss_mib():.0f} MiB")
    print(f"Masks written to {output}")


def summary(stats: RunStats, output: Path) -> dict[str, object]:
    """What ``print_summary`` prints, as data."""
    return {
        "videos": stats.videos,
        "frames": stats.frames,
        "seconds": stats.seconds,
        "fps": stats.fps,
        "peak_memory_frames": stats.peak_memory_frames,
        "peak_rss_mib": peak_rss_mib(),
        "output": str(output),
        "per_video": {name: asdict(v) for name, v in stats.per_video.items()},
    }


def check_stats_json(path: Path) -> None:
    """``--stats_json`` names a new or JSON file (never a folder, a mask or a checkpoint)."""
    if path.is_dir():
        raise UserError(f"{path}: is a folder; --stats_json takes a file name, e.g. {path / 'stats.json'}")
    if path.exists() and path.suffix.lower() != ".json":
        raise UserError(f"{path}: exists and is not a .json file; --stats_json would replace it, choose another name")


def write_stats_json(result: dict[str, object], path: Path) -> None:
    """A run's summary as JSON, written under a temporary name and renamed."""
    try:
        write_text_atomic(path, json.dumps(result, indent=1) + "\n")
    except OSError as e:
        raise UserError(f"{path}: cannot write ({e.strerror or e}); choose another --stats_json") from None
