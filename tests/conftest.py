"""Test-session setup: the repository root importable (``datasets``, ``util``), one thread per test process, and the
slowest test files first.

The suite runs on pytest-xdist workers, a test file per worker at a time (``--dist loadfile``, pyproject.toml).
Two OpenMP threads per worker on a 2-core machine would oversubscribe it and slow everything down many times, so
each worker, and every subprocess it starts without a setting of its own, uses one thread. The files go out longest
first, so that no long file starts last and runs alone at the end.
"""

import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Measured in one process (`OMP_NUM_THREADS=1 python -m pytest -n 0 --durations=0`), longest first; files not named
# here follow.
SLOWEST_FIRST = (
    "test_training.py", "test_app.py", "test_distributed_eval.py", "test_benchmark.py", "test_demo.py",
    "test_bad_inputs.py", "test_eval_cli.py", "test_readme_commands.py", "test_output_safety.py", "test_evidence.py",
    "test_eval_resume.py", "test_hostile_inputs.py", "test_fast_paths.py", "test_heldout.py", "test_youtube_generic.py",
    "test_train_safety.py",
)


def pytest_configure(config) -> None:
    import torch

    from util.hardware import omp_threads

    torch.set_num_threads(omp_threads() or 1)  # one, unless the caller set a valid OMP_NUM_THREADS


def pytest_collection_modifyitems(items: list) -> None:
    rank = {name: i for i, name in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: order within a file is kept
