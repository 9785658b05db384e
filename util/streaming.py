"""Overlap reading and writing with compute: a prefetching iterator and a background writer.

Both are bounded (a few items in flight), so memory does not grow with video length,
and both re-raise a worker's exception in the caller's thread.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

_DONE = object()


class _Failure:
    def __init__(self, error: BaseException):
        self.error = error


def prefetch(items: Iterable[T], depth: int = 4) -> Iterator[T]:
    """Iterate ``items`` in a background thread, keeping at most ``depth`` ready."""
    if depth <= 0:
        yield from items
        return
    buffer: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        buffer.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            buffer.put(_DONE)
        except BaseException as e:  # noqa: BLE001 - handed to the consumer
            buffer.put(_Failure(e))

    worker = threading.Thread(target=produce, name="frame-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            item = buffer.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item
    finally:
        stop.set()
        worker.join(timeout=5)


class AsyncWriter:
    """Runs write jobs in one background thread, at most ``max_pending`` queued."""

    def __init__(self, max_pending: int = 8):
        self._jobs: queue.Queue = queue.Queue(maxsize=max_pending)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="mask-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            if isinstance(job, threading.Event):
                job.set()
            elif self._error is None:
                try:
                    job()
                except BaseException as e:  # noqa: BLE001 - re-raised in submit()/close()
                    self._error = e

    def submit(self, job: Callable[[], None]) -> None:
        self._raise_if_failed()
        self._jobs.put(job)

    def flush(self) -> None:
        """Wait for every queued job; re-raise the first failure."""
        done = threading.Event()
        self._jobs.put(done)
        done.wait()
        self._raise_if_failed()

    def close(self) -> None:
        if self._thread.is_alive():
            self._jobs.put(None)
            self._thread.join()
        self._raise_if_failed()

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def __enter__(self) -> AsyncWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
