"""One evaluation over several processes: torchrun ranks, or ``--shard I/N`` array-job shards.

Every process lists the same videos in the same order and computes the same split
(:func:`split_by_frames`), so no process needs to tell another what to do: torchrun's
ranks only meet twice (after checking the output, and when all are done, for rank 0 to
finish); shards never meet, and whichever finds every video complete finishes.

Each process writes its own videos into the one output folder with the per-video
publish of :mod:`util.output_safety`, holding a lock per video while it writes it, and
records what it did in ``<output>/.qdmn/ranks/`` (the summary reads those records).
"""

from __future__ import annotations

import heapq
import json
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Optional

import torch
import torch.distributed as dist

from util.errors import UserError
from util.hardware import cpu_share, launcher_ranks, omp_threads, rank_device
from util.output_safety import STATE_DIR
from util.write_gate import write_state

MERGE = "merge"
RANKS_DIR = f"{STATE_DIR}/ranks"  # one JSON record per rank / shard: what it did, for the summary
FINISH_LOCK = f"{STATE_DIR}/finish.lock"  # one finisher at a time (shards)
FINISHED_RECORD = f"{STATE_DIR}/finished.json"  # the completion records the last finish saw
# Ranks wait for the slowest one at the end: the longest video of a split may take hours.
GROUP_TIMEOUT = timedelta(hours=48)


@dataclass(frozen=True)
class Plan:
    """Which share of the videos this process takes."""

    kind: str = "single"  # single | torchrun | shard | merge
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def parallel(self) -> bool:
        """Part of a run of several processes (they share the output folder)."""
        return self.kind != "single"

    @property
    def label(self) -> str:
        return f"{'shard' if self.kind == 'shard' else 'rank'} {self.rank}/{self.world}"

    @property
    def record_name(self) -> str:
        return f"{self.kind}-{self.rank}-of-{self.world}.json"


def plan_from(shard: Optional[str]) -> Plan:
    """The plan of this process: torchrun's environment, else ``--shard``, else one process for everything."""
    rank, world, local_rank = launcher_ranks()
    if world > 1:
        if shard is not None:
            raise UserError(f"--shard {shard}: not under torchrun (its ranks split the videos already); drop --shard or run plain python")
        return Plan("torchrun", rank, world, local_rank)
    if shard == MERGE:
        return Plan("merge")
    if shard is not None:
        index, count = (int(x) for x in shard.split("/"))
        return Plan("shard", index, count) if count > 1 else Plan()
    return Plan()


def plan_device(plan: Plan, name: Optional[str]) -> torch.device:
    """The device of this process: under torchrun an unnumbered ``cuda`` (or none, with CUDA) is ``cuda:LOCAL_RANK``."""
    return rank_device(name, plan.local_rank)


def plan_threads(threads: Optional[int]) -> int:
    """``--threads``, else ``OMP_NUM_THREADS``, else an equal share of this machine's CPUs for each process a launcher
    started on it."""
    if threads is not None:
        return threads
    return omp_threads() or cpu_share()


def split_by_frames(costs: Sequence[int], parts: int) -> list[list[int]]:
    """Indexes of ``costs`` in ``parts`` groups of similar total: the largest first onto the least-loaded group.

    Deterministic (ties go to the earlier video and the lower group); each group keeps
    the listing order.
    """
    groups: list[list[int]] = [[] for _ in range(parts)]
    loads = [(0, part) for part in range(parts)]
    for index in sorted(range(len(costs)), key=lambda i: (-costs[i], i)):
        load, part = heapq.heappop(loads)
        groups[part].append(index)
        heapq.heappush(loads, (load + costs[index], part))
    return [sorted(group) for group in groups]


# ----------------------------------------------------------------------------- torchrun
@contextmanager
def process_group(plan: Plan) -> Iterator[None]:
    """torchrun's ranks joined in a gloo group (CPU messages only: the videos need no communication) for the run."""
    if plan.kind != "torchrun":
        yield
        return
    dist.init_process_group("gloo", timeout=GROUP_TIMEOUT)
    try:
        yield
    finally:
        dist.destroy_process_group()


class PeerFailed(Exception):
    """Another rank stopped (killed, or failed outside Python) while this one waited for it."""


def barrier(plan: Plan) -> None:
    if plan.kind != "torchrun":
        return
    try:
        dist.barrier()
    except RuntimeError as e:  # gloo: a peer's connection closed
        raise PeerFailed(str(e).splitlines()[0] if str(e) else "connection lost") from None


class Terminated(BaseException):
    """SIGTERM (torchrun stopping the other ranks when one fails, a scheduler's time limit)."""

    def __init__(self, signum: int):
        super().__init__(f"signal {signum}")
        self.signum = signum


@contextmanager
def raise_on_sigterm() -> Iterator[None]:
    """SIGTERM raises :class:`Terminated` in the main thread (elsewhere: left as it is)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, _frame: object) -> None:
        raise Terminated(signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# ----------------------------------------------------------------------------- records
@dataclass
class RankRecord:
    """What one process of a parallel run did (``<output>/.qdmn/ranks/<kind>-<rank>-of-<world>.json``)."""

    kind: str
    rank: int
    world: int
    host: str
    pid: int
    device: str
    threads: int
    status: str  # running | done | failed: ... | stopped
    videos: int = 0
    frames: int = 0
    seconds: float = 0.0  # inside the videos, compiling left out
    started: float = 0.0  # time.time()
    finished: float = 0.0
    peak_rss_mib: float = 0.0
    peak_cuda_mib: Optional[float] = None
    per_video: dict[str, dict] = field(default_factory=dict)  # video -> frames, seconds, admitted, evicted, peak memory frames
    compile_seconds: float = 0.0  # --compile: seconds of the calls that compiled

    @classmethod
    def start(cls, plan: Plan, device: torch.device, threads: int) -> RankRecord:
        host, pid = socket.gethostname(), os.getpid()
        return cls(plan.kind, plan.rank, plan.world, host, pid, str(device), threads, "running", started=time.time())


def write_rank_record(output: Path, plan: Plan, record: RankRecord) -> None:
    write_state(output / RANKS_DIR / plan.record_name, json.dumps(record.__dict__) + "\n")


def read_rank_records(output: Path, kind: Optional[str] = None, world: Optional[int] = None) -> list[RankRecord]:
    """The records of ``kind`` runs over ``world`` processes (default: every record), by rank."""
    found = []
    for path in sorted((output / RANKS_DIR).glob("*.json")):
        try:
            record = RankRecord(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            continue  # not a record of this version: left out of the summary
        if (kind is None or record.kind == kind) and (world is None or record.world == world):
            found.append(record)
    return sorted(found, key=lambda r: (r.kind, r.world, r.rank))


def records_for_summary(output: Path, plan: Plan) -> list[RankRecord]:
    """The records the summary reports: this run's ranks (torchrun) or shards (a shard, or merge: the shards of the latest N)."""
    if plan.kind in ("torchrun", "shard"):
        return read_rank_records(output, plan.kind, plan.world)
    shards = read_rank_records(output, "shard")
    if not shards:
        return []
    latest = max(shards, key=lambda r: r.finished)
    return [r for r in shards if r.world == latest.world]


def parallel_summary(records: Sequence[RankRecord], total_videos: int) -> dict[str, object]:
    """Totals over the processes: frames, wall time (first start to last end), compile time (the longest of one
    process: they compile side by side), throughput over the wall time less the compile time, and each process's line."""
    frames = sum(r.frames for r in records)
    started = min((r.started for r in records), default=0.0)
    finished = max((r.finished for r in records), default=0.0)
    wall = max(0.0, finished - started)
    compiling = max((r.compile_seconds for r in records), default=0.0)
    working = wall - compiling
    return {
        "videos": total_videos,
        "processed_videos": sum(r.videos for r in records),
        "frames": frames,
        "wall_seconds": wall,
        "compile_seconds": compiling,
        "fps": frames / working if working > 0 else 0.0,
        "processes": [{k: v for k, v in r.__dict__.items() if k != "per_video"} for r in records],
        "per_video": {name: stats for r in records for name, stats in r.per_video.items()},
    }


def print_parallel_summary(summary: dict[str, object], output: Path) -> None:
    processes = summary["processes"]
    assert isinstance(processes, list)
    for p in processes:
        cuda = f", peak CUDA {p['peak_cuda_mib']:.0f} MiB" if p["peak_cuda_mib"] is not None else ""
        label = f"{'shard' if p['kind'] == 'shard' else 'rank'} {p['rank']}/{p['world']}"
        compiling = f" (+ {p['compile_seconds']:.2f} s compiling)" if p.get("compile_seconds") else ""
        print(f"{label} ({p['host']}, {p['device']}, {p['threads']} threads): {p['videos']} videos, {p['frames']} frames "
              f"in {p['seconds']:.2f} s{compiling}, peak RSS {p['peak_rss_mib']:.0f} MiB{cuda}; {p['status']}")
    print(f"Total processed frames: {summary['frames']} ({summary['processed_videos']} of {summary['videos']} videos done by this run)")
    print(f"Wall time: {summary['wall_seconds']:.2f} s")
    if summary.get("compile_seconds"):
        print(f"Compile time: {summary['compile_seconds']:.2f} s (--compile; the longest of one process, not in the throughput)")
    print(f"Throughput: {summary['fps']:.3f} frames/s")
    print(f"Masks written to {output}")


def peak_cuda_mib(device: torch.device) -> Optional[float]:
    return torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None


RERUN_HINT = "rerun the same command (with any number of processes) to complete them"
MERGE_HINT = "run the shards that did not finish (or the command without --shard) to complete them"


def incomplete_message(names: Sequence[str], hint: str = RERUN_HINT, limit: int = 20) -> str:
    if not names:
        return "every video is complete, but the run stopped before its summary, zip or J&F; rerun the same command to write them"
    shown = ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")
    return f"{len(names)} video(s) not complete: {shown}; {hint}"


def _completion_stamps(output: Path, names: Sequence[str]) -> dict[str, int]:
    """Each video's completion record, by modification time: a video redone since gets a new stamp."""
    stamps = {}
    for name in names:
        try:
            stamps[name] = (output / STATE_DIR / f"{name}.json").stat().st_mtime_ns
        except OSError:
            stamps[name] = -1
    return stamps


def mark_finished(output: Path, names: Sequence[str]) -> None:
    """Record that the run was finished (zip, J&F, summary) over these completion records."""
    path = output / FINISHED_RECORD
    try:
        write_state(path, json.dumps(_completion_stamps(output, names)) + "\n")
    except UserError:
        pass  # only the shards' "already finished" shortcut is lost


def already_finished(output: Path, names: Sequence[str]) -> bool:
    """Whether another process finished the run over exactly the current completion records."""
    try:
        return json.loads((output / FINISHED_RECORD).read_text()) == {k: v for k, v in _completion_stamps(output, names).items()}
    except (OSError, ValueError):
        return False
