"""The one evaluation every ``eval_*`` script runs: in this process, or as one of several (torchrun ranks, ``--shard``).

Scripts declare their flags with :func:`evaluation.arguments.add_eval_args`, freeze them into an
:class:`~evaluation.config.EvalConfig` (:func:`evaluation.arguments.eval_config`), list their videos as
:class:`~datasets.video_source.VideoSource` objects and call :func:`evaluate`. The loop over frames and videos is
:mod:`evaluation.propagation`; the output folder, the zip and the summary :mod:`evaluation.publish`.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

import torch

from datasets.video_source import VideoSource
from evaluation.config import EvalConfig, memory_config
from evaluation.distributed import (
    FINISH_LOCK,
    MERGE_HINT,
    PeerFailed,
    Plan,
    RankRecord,
    Terminated,
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
from evaluation.fingerprint import check_recorded_inputs, run_fingerprints
from evaluation.masks import PALETTE_PNG, MaskFormat
from evaluation.propagation import FrameHook, RunContext, RunStats, build_network, segment_videos
from evaluation.publish import (
    check_stats_json,
    pending_videos,
    prepare_output,
    print_summary,
    summary,
    write_stats_json,
)
from model.memory_policy import MemoryConfig
from model.network import QDMN
from util.errors import RunIncomplete, UserError
from util.hardware import effective_amp, set_threads
from util.output_safety import (
    STATE_DIR,
    archive_path,
    check_archive_replaceable,
    check_complete,
    check_output_location,
    is_complete,
    lock_output,
    waiting_lock,
)
from util.profiling import peak_rss_mib


def run_evaluation(
    network: QDMN,
    memory: MemoryConfig,
    videos: Iterable[VideoSource],
    output: Path,
    device: torch.device,
    mask_format: MaskFormat = PALETTE_PNG,
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
    segment_videos(RunContext(network, memory, output, device, stats, mask_format, amp, on_frame), todo)
    return stats


Finish = Callable[[Path], None]


def evaluate(
    config: EvalConfig,
    videos: list[VideoSource],
    mask_format: MaskFormat = PALETTE_PNG,
    on_frame: Optional[FrameHook] = None,
    finish: Optional[Finish] = None,
) -> Path:
    """What every eval script does once its videos are listed: device, network, run, summary, then ``finish(output)``.

    ``finish`` (the submission zip, J&F, overlays) runs once every video is complete, in
    one process: this one, rank 0 under torchrun, or the shard (or ``--shard merge``)
    that finds every video complete (:mod:`evaluation.distributed`). Scripts without
    ``--shard`` (the demo) always run in one process. ``on_frame``: see :data:`FrameHook`.
    """
    plan = plan_from(config.shard) if config.distributed else Plan()
    device = plan_device(plan, config.device)
    threads = set_threads(plan_threads(config.threads))
    amp = effective_amp(device, config.amp, config.force_amp)
    ground_truth = [config.ground_truth] if config.ground_truth else []
    check_output_location(config.output, [p for v in videos for p in v.inputs()] + [config.model, *ground_truth])
    if config.stats_json:  # before the work, not after it
        check_stats_json(Path(config.stats_json))
    if config.zip:  # before the work, not after it
        check_archive_replaceable(archive_path(Path(config.output)), Path(config.output))
    fingerprints = run_fingerprints(config, videos, device, amp, mask_format)
    check_recorded_inputs(Path(config.output), fingerprints, config.overwrite)  # before inference: stop on another input's masks
    if plan.kind == "merge":
        return merge_shards(config, plan, videos, finish)
    network = build_network(config, device, amp)
    output = prepare_output(config.output)
    if plan.parallel:
        run = ParallelRun(config, plan, videos, output, device, threads, amp, finish)
        return run.execute(network, memory_config(config), mask_format, on_frame)
    with torch.no_grad():  # for this run only: a caller in the same process (a test, the app) keeps its grad mode
        stats = run_evaluation(
            network, memory_config(config), videos, output, device, mask_format, overwrite=config.overwrite, amp=amp, on_frame=on_frame
        )
    print_summary(stats, output)
    if config.stats_json:
        write_stats_json(summary(stats, output), Path(config.stats_json))
    if finish is not None:
        check_complete(output, [v.name for v in videos])
        finish(output)
    return output


def frames_to_segment(video: VideoSource) -> int:
    return len(video) - video.first_annotated


@dataclass
class ParallelRun:
    """This process's part of a run over several processes (torchrun ranks or ``--shard`` shards)."""

    config: EvalConfig
    plan: Plan
    videos: list[VideoSource]
    output: Path
    device: torch.device
    threads: int
    amp: bool  # the precision this run uses (util.hardware.effective_amp)
    finish: Optional[Finish]
    stats: RunStats = field(default_factory=RunStats)  # this process's videos so far

    def execute(self, network: QDMN, memory: MemoryConfig, mask_format: MaskFormat, on_frame: Optional[FrameHook]) -> Path:
        record = RankRecord.start(self.plan, self.device, self.threads)
        try:
            with raise_on_sigterm(), process_group(self.plan):
                mine = self.share()
                write_rank_record(self.output, self.plan, record)
                barrier(self.plan)  # every rank has listed the work before any writes
                failure = self.segment(network, memory, mine, mask_format, on_frame, record)
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
        todo = pending_videos(self.output, self.videos, self.config.overwrite, announce=self.plan.rank == 0 or self.plan.kind == "shard")
        basis = todo if self.plan.kind == "torchrun" else self.videos
        mine = [basis[i] for i in split_by_frames([frames_to_segment(v) for v in basis], self.plan.world)[self.plan.rank]]
        pending = {v.name for v in todo}
        return [v for v in mine if v.name in pending]

    def segment(
        self, network: QDMN, memory: MemoryConfig, mine: list[VideoSource], mask_format: MaskFormat, on_frame: Optional[FrameHook],
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
                run = RunContext(network, memory, self.output, self.device, self.stats, mask_format, self.amp, on_frame)
                busy = segment_videos(run, mine, holder=holder, overwrite=self.config.overwrite,
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
        record.compile_seconds = self.stats.compile_seconds
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
            finish_parallel(self.config, self.plan, self.videos, self.output, self.finish)


def merge_shards(config: EvalConfig, plan: Plan, videos: list[VideoSource], finish: Optional[Finish]) -> Path:
    """``--shard merge``: no inference; the zip, J&F and summary once the shards have written every video."""
    output = Path(config.output)
    if not (output / STATE_DIR).is_dir():
        raise UserError(f"--output {output}: no run of this project is recorded there; run the shards (--shard I/N) first")
    lock_output(output, shared=True)
    with waiting_lock(output / FINISH_LOCK):
        missing = [v.name for v in videos if not is_complete(output, v.name)]
        if missing:
            raise RunIncomplete(incomplete_message(missing, MERGE_HINT))
        finish_parallel(config, plan, videos, output, finish)
    return output


def finish_parallel(config: EvalConfig, plan: Plan, videos: list[VideoSource], output: Path, finish: Optional[Finish]) -> None:
    """The one summary of a parallel run (every process's record), ``--stats_json``, then ``finish``."""
    result = parallel_summary(records_for_summary(output, plan), len(videos))
    print_parallel_summary(result, output)
    if config.stats_json:
        write_stats_json({**result, "output": str(output)}, Path(config.stats_json))
    if finish is not None:
        check_complete(output, [v.name for v in videos])
        finish(output)
    mark_finished(output, [v.name for v in videos])


