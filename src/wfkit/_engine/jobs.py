"""A unit of submitted work that either a pool worker or a waiter may run, exactly once.

A thread that waits on a job nobody has started yet runs it itself instead of blocking.
That makes nested submissions safe with a bounded pool: a task that submits another task
and waits on it never waits for a worker that is busy waiting on it.

A ``task.map`` makes one job per item, so a job is kept to one small object: its status
changes under one lock shared by all jobs (held for a few bytecodes, never while work or
callbacks run), and the lock a waiter sleeps on is made only when someone has to sleep.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

__all__ = ["Job"]

_PENDING, _RUNNING, _DONE = 0, 1, 2
_status_lock = threading.Lock()


class Job:
    """Run the work once (``fn()``, or :meth:`_work` in a subclass); ``result`` / ``error``
    hold its outcome, ``finished_at`` the clock's ``monotonic()`` when it ended (set by the
    work, for fake clocks), ``live`` the live run whose state shows until the job is done
    (dropped then, so that finished work keeps only its outcome alive)."""

    __slots__ = (
        "_fn", "_status", "_latch", "_callbacks", "result", "error", "finished_at", "live"
    )  # fmt: skip

    def __init__(self, fn: Callable[[], Any] | None = None, live: Any = None) -> None:
        self._fn = fn
        self.live = live
        self._status = _PENDING
        self._latch: Any = None  # a lock held until done, made for the first waiter to sleep
        self._callbacks: list[Callable[[Job], None]] | None = None
        self.result: Any = None
        self.error: BaseException | None = None
        self.finished_at: float | None = None

    @property
    def done(self) -> bool:
        return self._status == _DONE

    @property
    def started(self) -> bool:
        return self._status != _PENDING

    @classmethod
    def external(cls, live: Any = None) -> Job:
        """A job run elsewhere (an event loop, another process): nobody may claim it; it
        ends when :meth:`complete` is called."""
        job = cls(live=live)
        job._status = _RUNNING
        return job

    def _work(self) -> Any:
        fn, self._fn = self._fn, None  # drop what the closure holds once it has run
        return fn() if fn is not None else None

    def complete(self, result: Any = None, error: BaseException | None = None) -> None:
        """Finish the job: record its outcome, wake its waiters, call its callbacks."""
        self.result, self.error = result, error
        with _status_lock:
            self._status = _DONE
            latch, callbacks = self._latch, self._callbacks
            self._latch = self._callbacks = self.live = None
        if latch is not None:
            latch.release()
        for callback in callbacks or ():
            callback(self)

    def run_if_pending(self) -> None:
        """Run the job unless another thread already has (the pool's entry point)."""
        if self._status != _PENDING:  # settled for good; checked again under the lock
            return
        with _status_lock:
            if self._status != _PENDING:
                return
            self._status = _RUNNING
        try:
            result, error = self._work(), None
        except BaseException as exc:  # handed to whoever waits on the job
            result, error = None, exc
        self.complete(result, error)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the job, running it here if nobody has started it; True once done."""
        if timeout is None:
            self.run_if_pending()
        if self._status == _DONE:
            return True
        with _status_lock:
            if self._status == _DONE:
                return True
            latch = self._latch
            if latch is None:
                latch = self._latch = threading.Lock()
                latch.acquire()
        if latch.acquire(timeout=-1 if timeout is None else max(timeout, 0)):
            latch.release()  # let the next waiter through
        return self._status == _DONE

    def add_done_callback(self, callback: Callable[[Job], None]) -> None:
        """Call ``callback(job)`` when the job is done (at once if it is)."""
        with _status_lock:
            if self._status != _DONE:
                if self._callbacks is None:
                    self._callbacks = [callback]
                else:
                    self._callbacks.append(callback)
                return
        callback(self)
