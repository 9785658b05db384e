"""The GPU check's sizes and time boxes (the GPU run's and the dry run's) and the names of its outputs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parents[2]
STAGES = ("env", "train", "eval", "demo")
RESULTS_JSON, RESULTS_MD, LOG = "gpu_check.json", "gpu_check.md", "gpu_check.log"
DEMO_FILE = "qdmn_lite_gpu.pth"
SKIPPED_CPU = "skipped (cpu)"  # a CUDA-only field in the dry run


@dataclass(frozen=True)
class Profile:
    """Sizes and time boxes: the GPU run's, or the dry run's (``--tiny``)."""

    budget_s: int
    timeboxes: dict[str, int]  # the demo stage takes what is left
    train_hw: tuple[int, int]
    train_videos: int
    train_frames: int
    crop: int
    batch: int
    iterations: int
    resume_iterations: int  # even: the resumed run stops at half
    workers: Optional[int]  # train.py --num_workers (None: its default)
    eval_hw: tuple[int, int]
    eval_videos: int
    eval_frames: int
    cpu_videos: int  # of them, evaluated on the CPU too
    bench_frames: int  # 0: no scripts/benchmark.py run
    flop_frames: int
    demo_wide_videos: int
    demo_style_videos: int
    demo_scale: Optional[float]  # SynthVOS frames are 240x432; None keeps them
    demo_frames: Optional[int]
    demo_hw: tuple[int, int]
    demo_batch: int
    demo_export_every_s: float
    demo_rate_guess: float  # it/s at the demo's size when stage 2 measured nothing
    demo_iterations: Optional[int]  # None: as many as the time left allows
    demo_workers: Optional[int]  # data-loader processes (None: train.py's default)
    generator_workers: int


FULL = Profile(
    budget_s=540, timeboxes={"env": 45, "train": 170, "eval": 160},
    train_hw=(480, 864), train_videos=8, train_frames=8, crop=384, batch=8, iterations=20, resume_iterations=10, workers=None,
    eval_hw=(480, 864), eval_videos=3, eval_frames=40, cpu_videos=1, bench_frames=40, flop_frames=2,
    demo_wide_videos=150, demo_style_videos=100, demo_scale=None, demo_frames=None, demo_hw=(240, 432), demo_batch=16,
    demo_export_every_s=60, demo_rate_guess=4.0, demo_iterations=None, demo_workers=14, generator_workers=6,
)  # fmt: skip
TINY = Profile(
    budget_s=1800, timeboxes={"env": 180, "train": 600, "eval": 450, "demo": 400},
    train_hw=(64, 80), train_videos=3, train_frames=8, crop=64, batch=2, iterations=2, resume_iterations=2, workers=0,
    eval_hw=(96, 160), eval_videos=2, eval_frames=4, cpu_videos=1, bench_frames=3, flop_frames=0,
    demo_wide_videos=1, demo_style_videos=1, demo_scale=0.2, demo_frames=15, demo_hw=(48, 80), demo_batch=2,
    demo_export_every_s=0, demo_rate_guess=0.5, demo_iterations=2, demo_workers=0, generator_workers=1,
)  # fmt: skip

