"""Worker processes that always end.

``with multiprocessing.Pool() as pool`` terminates its workers with SIGTERM on leaving the
block, even after every result is in. A forked worker inherits its parent's Python signal
handlers (an embedding application's, ``train.py``'s stop flag, a test runner's); one that
catches SIGTERM does not die of it while it waits on the pool's queue lock, and the pool's
join then waits for ever. Here every worker starts with the default SIGTERM and SIGINT
actions, and the pool is closed and joined once every result is in; it is terminated only
when the caller stops early or a job fails.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from multiprocessing import Pool
from typing import Any, TypeVar

T = TypeVar("T")


def _default_signals() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the parent, which terminates the pool


@contextmanager
def worker_pool(processes: int) -> Iterator[Pool]:
    """A pool that is closed and joined when the block ends normally, terminated when it ends by an exception."""
    pool = Pool(processes=processes, initializer=_default_signals)
    try:
        yield pool
    except BaseException:
        pool.terminate()
        pool.join()
        raise
    pool.close()
    pool.join()


def imap_unordered(function: Callable[[T], Any], jobs: Iterable[T], processes: int, chunksize: int = 1) -> Iterator[Any]:
    """``function`` over ``jobs`` in ``processes`` worker processes, results as they come (a caller that stops early
    terminates the workers)."""
    with worker_pool(processes) as pool:
        yield from pool.imap_unordered(function, jobs, chunksize=chunksize)


def map_ordered(function: Callable[[T], Any], jobs: list[T], processes: int, chunksize: int = 1) -> list[Any]:
    """``function`` over ``jobs`` in ``processes`` worker processes, results in the jobs' order."""
    with worker_pool(processes) as pool:
        return pool.map(function, jobs, chunksize=chunksize)
