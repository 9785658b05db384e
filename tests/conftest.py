"""Test-session setup: the repository root importable (``datasets``, ``util``), one thread per test process, the slowest
test files first, the tiny data and checkpoint built once per test process, and each test's process state restored.

The suite runs on pytest-xdist workers, a test file per worker at a time (``--dist loadfile``, pyproject.toml).
Two OpenMP threads per worker on a 2-core machine would oversubscribe it and slow everything down many times, so
each worker, and every subprocess it starts without a setting of its own, uses one thread. The files go out longest
first, so that no long file starts last and runs alone at the end.

Commands run in-process through their ``main(argv)`` (the ``cli`` fixture, :func:`tests.helpers.call_main`); what a
command changes for the whole process (torch's threads and grad mode, flushed denormals, signal handlers, output
locks) is put back after every test by ``process_state``.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Measured per file on a quiet 2-core AMD EPYC (`python -m pytest -q --durations=0`, the default selection: not the
# slow tests; setup and call times summed per file), longest first; files not named here follow.
SLOWEST_FIRST = (
    "test_training.py", "test_app.py", "test_real_footage_limits.py", "test_compile.py", "test_run_limits.py",
    "test_distributed_eval.py", "test_youtube_generic.py", "test_train_safety.py", "test_fast_paths.py", "test_eval_cli.py",
    "test_demo.py", "test_download.py", "test_eval_resume.py", "test_benchmark.py", "test_network.py", "test_gpu_check.py",
    "test_export.py", "test_write_gate.py", "test_output_safety.py", "test_completion.py", "test_bad_inputs.py",
    "test_hostile_inputs.py", "test_fuzz.py", "test_metrics.py", "test_structure.py",
)


def pytest_configure(config) -> None:
    import torch

    from util.hardware import omp_threads

    torch.set_num_threads(omp_threads() or 1)  # one, unless the caller set a valid OMP_NUM_THREADS


def pytest_collection_modifyitems(items: list) -> None:
    rank = {name: i for i, name in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: order within a file is kept


# ---------------------------------------------------------------------------- every test
@pytest.fixture(autouse=True)
def process_state() -> Iterator[None]:
    """What an in-process command sets for the whole process, as it was before the test: torch's threads (every entry
    point sets them), grad mode, denormals (train.py flushes them; hypothesis needs them), the SIGINT and SIGTERM
    handlers (train.py's stop flag), and the output folders' locks (held until the process exits). Progress bars write
    to this test's streams: progressbar keeps the streams it found first, an earlier test's, closed since."""
    import progressbar
    import torch

    from util.output_safety import release_output_locks

    threads, grad = torch.get_num_threads(), torch.is_grad_enabled()
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    streams = progressbar.streams
    streams.original_stdout = streams.stdout = sys.stdout
    streams.original_stderr = streams.stderr = sys.stderr
    yield
    release_output_locks()
    torch.set_num_threads(threads)
    torch.set_grad_enabled(grad)
    torch.set_flush_denormal(False)
    for sig, handler in handlers.items():
        signal.signal(sig, handler)


@pytest.fixture
def cli(tmp_path: Path):
    """``cli("eval_davis", *argv, cwd=None, env=None, check=False)``: the entry point's ``main(argv)`` in this process
    (:func:`tests.helpers.call_main`; arguments may be paths), in ``cwd`` (default: the test's ``tmp_path``, so that a
    default output folder never lands in the repository); returns the exit status and the output as a ``Ran``."""
    from tests.helpers import call_main

    def call(entry: str, *argv, cwd: Path | None = None, env: dict[str, str] | None = None, check: bool = False):
        return call_main(entry, [str(a) for a in argv], cwd=cwd or tmp_path, env=env, check=check)

    return call


# ---------------------------------------------------------------------------- built once per test process
@pytest.fixture(scope="session")
def lite_checkpoint(tmp_path_factory) -> Path:
    """A random ``lite`` weights file (sigmoid QAM, seed 0), as ``scripts/make_random_checkpoint.py --config lite
    --qam_activation sigmoid`` writes it. Read-only."""
    from model.checkpoint import atomic_save, weights_payload
    from model.network import random_network

    path = tmp_path_factory.mktemp("checkpoint") / "lite.pth"
    network = random_network("lite", 0, "sigmoid")
    atomic_save(weights_payload(network, network.config), path)
    return path


@pytest.fixture(scope="session")
def davis(tmp_path_factory) -> Path:
    """A DAVIS root: 2017 trainval (2 val videos of 4 frames, 48x64, up to 2 objects) and 2016 (1 val video).
    Read-only: a test that changes it works on a copy."""
    from datasets.synthetic import write_davis2016, write_davis2017
    from tests.helpers import DAVIS_FRAMES, DAVIS_HEIGHT, DAVIS_WIDTH

    root = tmp_path_factory.mktemp("davis")
    write_davis2017(root, seed=9, num_videos=2, num_frames=DAVIS_FRAMES, height=DAVIS_HEIGHT, width=DAVIS_WIDTH, max_objects=2,
                    splits=("val",))
    write_davis2016(root, seed=2, num_videos=1, num_frames=DAVIS_FRAMES, height=DAVIS_HEIGHT, width=DAVIS_WIDTH)
    return root


@pytest.fixture(scope="session")
def youtube(tmp_path_factory) -> Path:
    """A YouTube-VOS valid root: two generated videos of 4 frames (48x80), plus ``late``, 20 frames whose objects 3 and
    6 are first annotated on frames 5 and 10. Read-only."""
    import numpy as np

    from datasets.synthetic import VideoSpec, render_video, write_youtube
    from tests.helpers import save_frames, save_mask

    root = tmp_path_factory.mktemp("yv")
    write_youtube(root, seed=4, num_videos=2, num_frames=4, height=48, width=80, max_objects=2)
    frames, masks = render_video(np.random.default_rng(7), VideoSpec(20, 48, 80, 2, appear_at=[5, 10], object_ids=[3, 6]))
    save_frames(root / "all_frames/valid_all_frames/JPEGImages/late", frames)
    save_frames(root / "valid/JPEGImages/late", frames[::5], step=5)
    for t, new_id in ((5, 3), (10, 6)):
        save_mask(root / f"valid/Annotations/late/{t:05d}.png", np.where(masks[t] == new_id, new_id, 0).astype(np.uint8))
    return root


@pytest.fixture(scope="session")
def clip(tmp_path_factory) -> Path:
    """A generic video: ``frames/`` (4 JPEGs, 48x64, 2 objects), ``masks/00000.png`` and the ground truth of every
    frame in ``gt/frames/``. Read-only."""
    import numpy as np

    from datasets.synthetic import VideoSpec, render_video
    from tests.helpers import save_frames, save_mask

    root = tmp_path_factory.mktemp("clip")
    images, ids = render_video(np.random.default_rng(5), VideoSpec(4, 48, 64, 2))
    save_frames(root / "frames", images)
    save_mask(root / "masks" / "00000.png", ids[0])
    for t, mask in enumerate(ids):
        save_mask(root / "gt" / "frames" / f"{t:05d}.png", mask)
    return root


@pytest.fixture(scope="session")
def train_data(tmp_path_factory) -> dict[str, Path]:
    """train.py's four data roots at a tiny size: static images, BL30K (5 videos), DAVIS and YouTube-VOS. Read-only."""
    import shutil

    from datasets.synthetic import write_davis2017, write_static, write_youtube

    root = tmp_path_factory.mktemp("train_data")
    write_static(root / "static", seed=0, num_images=2, height=64, width=80, num_classes=2)
    write_davis2017(root / "DAVIS", seed=0, num_videos=3, num_frames=8, height=64, width=80, max_objects=3)
    write_youtube(root / "YouTube", seed=0, split="train", num_videos=2, num_frames=5, height=64, width=80)
    src = root / "src"  # BL30K layout (JPEGImages/<video>/, Annotations/<video>/) from DAVIS-style videos
    write_davis2017(src, seed=1, num_videos=5, num_frames=8, height=72, width=96, max_objects=3)
    for kind in ("JPEGImages", "Annotations"):
        shutil.copytree(src / "2017" / "trainval" / kind / "480p", root / "BL30K" / kind)
    return {"static": root / "static", "bl": root / "BL30K", "davis": root / "DAVIS", "yv": root / "YouTube"}
