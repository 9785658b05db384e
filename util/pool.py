"""Worker processes that end by finishing their work, not by a signal.

``with multiprocessing.Pool() as pool`` terminates its workers on leaving the block, even
after every result is in: each gets SIGTERM. A worker that inherited a Python SIGTERM
handler from its parent (an embedding application's, or ``train.py``'s stop flag) does not
die of it while it waits for the next task on the pool's queue lock, and the pool's join
then waits for ever. Here the pool is closed and joined once every result is in, and
terminated only when the caller stops early or a job fails.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from multiprocessing import Pool
from typing import Any, TypeVar

T = TypeVar("T")


def imap_unordered(function: Callable[[T], Any], jobs: Iterable[T], processes: int, chunksize: int = 1) -> Iterator[Any]:
    """``function`` over ``jobs`` in ``processes`` worker processes, results as they come."""
    pool = Pool(processes=processes)
    finished = False
    try:
        yield from pool.imap_unordered(function, jobs, chunksize=chunksize)
        finished = True
    finally:
        if finished:
            pool.close()
        else:
            pool.terminate()
        pool.join()


def map_ordered(function: Callable[[T], Any], jobs: list[T], processes: int, chunksize: int = 1) -> list[Any]:
    """``function`` over ``jobs`` in ``processes`` worker processes, results in the jobs' order."""
    pool = Pool(processes=processes)
    try:
        results = pool.map(function, jobs, chunksize=chunksize)
    except BaseException:
        pool.terminate()
        pool.join()
        raise
    pool.close()
    pool.join()
    return results
