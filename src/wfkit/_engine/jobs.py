"""A unit of submitted work that either a pool worker or a waiter may run, exactly once.

A thread that waits on a job nobody has started yet runs it itself instead of blocking.
That makes nested submissions safe with a bounded pool: a task that submits another task
and waits on it never waits for a worker that is busy waiting on it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

__all__ = ["Job"]

_PENDING, _RUNNING, _DONE = 0, 1, 2


class Job:
    """Run ``fn()`` once; ``result`` / ``error`` hold its outcome."""

    __slots__ = ("_fn", "_status", "_lock", "_done", "result", "error", "_callbacks", "finished_at")

    def __init__(self, fn: Callable[[], Any]) -> None:
        self._fn = fn
        self._status = _PENDING
        self._lock = threading.Lock()
        self._done = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None
        self._callbacks: list[Callable[[Job], None]] = []
        self.finished_at: float | None = None  # the clock's monotonic() when the work ended

    @property
    def done(self) -> bool:
        return self._done.is_set()

    @property
    def started(self) -> bool:
        return self._status != _PENDING

    @classmethod
    def external(cls) -> Job:
        """A job run elsewhere (an event loop, another process): nobody may claim it; it
        ends when :meth:`complete` is called."""
        job = cls(lambda: None)
        job._status = _RUNNING
        return job

    def complete(self, result: Any = None, error: BaseException | None = None) -> None:
        """Finish an external job."""
        self.result, self.error = result, error
        with self._lock:
            self._status = _DONE
            callbacks, self._callbacks = self._callbacks, []
        self._done.set()
        for callback in callbacks:
            callback(self)

    def run_if_pending(self) -> None:
        """Run the job unless another thread already has (the pool's entry point)."""
        with self._lock:
            if self._status != _PENDING:
                return
            self._status = _RUNNING
        fn, self._fn = self._fn, None  # drop what the closure holds once it has run
        try:
            result, error = fn(), None
        except BaseException as exc:  # handed to whoever waits on the job
            result, error = None, exc
        self.complete(result, error)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the job, running it here if nobody has started it; True once done."""
        if timeout is None:
            self.run_if_pending()
        return self._done.wait(timeout)

    def add_done_callback(self, callback: Callable[[Job], None]) -> None:
        with self._lock:
            if self._status != _DONE:
                self._callbacks.append(callback)
                return
        callback(self)
