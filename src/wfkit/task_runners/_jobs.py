"""The pool runners' futures: one :class:`Job` per submitted task run.

A job is queued, then started by exactly one thread, then finished. A thread that waits on
a job nobody has started runs it itself instead of blocking (after the queued jobs that one
waits for, upstream first, one after another): that makes nested submissions safe with a
bounded pool (a task that submits another task and waits on it never waits for a worker
that is busy waiting on it), and a long chain of queued runs never deepens the stack.

A ``task.map`` makes one job per item, so a job is kept to one small object: its status
changes under one lock shared by all jobs (held for a few bytecodes, never while work or
callbacks run), and the lock a waiter sleeps on is made only when someone has to sleep.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["INTERRUPTS", "Job", "LoopJob"]

# A job's status. (Not a run's states: a queued job's run is Pending; a started one may be
# waiting for its upstream, running, or retrying.)
_QUEUED, _STARTED, _FINISHED = "queued", "started", "finished"
_status_lock = threading.Lock()
# Errors that end the program, not a run: they go on from the thread that ran the job.
INTERRUPTS = (KeyboardInterrupt, SystemExit)
_logger = logging.getLogger("wfkit.task_runners")


class Job:
    """A task run queued on a pool: ``work()`` (a method of ``call``) returns its final
    state.

    Implements :class:`~wfkit.task_runners.TaskRunFuture`, plus :meth:`run_if_queued` for
    the workers (and for waiters). A finished job keeps only its outcome.
    """

    __slots__ = (
        "_call", "_work", "_status", "_latch", "_callbacks", "_state", "_error", "_cancelled"
    )  # fmt: skip

    # A job whose work raises ends its call Crashed itself (see _crash): the engine need not
    # watch its future, as it does third-party runners' (a done callback per run).
    ends_its_call = True

    def __init__(self, call: Any, work: Callable[[], Any] | None) -> None:
        self._call = call
        self._work = work
        self._status = _QUEUED
        self._latch: Any = None  # a lock held until done, made for the first waiter to sleep
        self._callbacks: list[Callable[[Job], object]] | None = None
        self._state: Any = None
        self._error: BaseException | None = None
        self._cancelled = False

    # the future ---------------------------------------------------------------------------
    def done(self) -> bool:
        return self._status is _FINISHED

    def running(self) -> bool:
        return self._status is _STARTED

    def cancelled(self) -> bool:
        return self._cancelled

    def cancel(self) -> bool:
        """Keep a queued run from starting (it is recorded Cancelled); False once started."""
        if not self._claim():
            return self.cancelled()
        call = self._call
        call.cancel()
        self._cancelled = True
        self._finish(call.state, None)
        return True

    def result(self, timeout: float | None = None) -> Any:
        """The run's final state, running it here if nobody has started it (``timeout``
        None only: with a timeout the waiter only waits).

        Raises:
            TimeoutError: not finished within ``timeout`` seconds.
        """
        if self._status is _FINISHED and self._error is None:
            return self._state
        if timeout is None and self._status is _QUEUED:
            upstream = self._queued_upstream()
            if upstream:
                for job in _in_running_order(self, upstream):
                    job.run_if_queued()
            else:
                self.run_if_queued()
        if not self._wait(timeout):
            raise TimeoutError(f"the task run did not finish within {timeout:g} second(s)")
        if self._error is not None:
            raise self._error
        return self._state

    def add_done_callback(self, fn: Callable[[Job], object]) -> None:
        """Call ``fn(job)`` when the job is done (at once if it is)."""
        with _status_lock:
            if self._status is not _FINISHED:
                if self._callbacks is None:
                    self._callbacks = [fn]
                else:
                    self._callbacks.append(fn)
                return
        self._call_back(fn)

    def _queued_upstream(self) -> list[Job]:
        """The jobs of this one's upstream runs that nobody has started (its call's
        ``upstream`` futures wrap them)."""
        call = self._call
        if call is None:  # (finished meanwhile)
            return []
        return [
            job
            for future in call.upstream
            if isinstance(job := getattr(future, "wrapped_future", None), Job)
            and job._status is _QUEUED
        ]

    # the pool's side ----------------------------------------------------------------------
    def run_if_queued(self) -> None:
        """Run the job unless another thread has started it (the workers' entry point).

        Raises:
            KeyboardInterrupt, SystemExit: the work raised it (once the job is finished,
                with the interrupt as its error): Ctrl-C is never swallowed by a pool.
        """
        if self._status is not _QUEUED:  # settled for good; checked again under the lock
            return
        with _status_lock:  # (_claim inlined: one call less per task run)
            if self._status is not _QUEUED:
                return
            self._status = _STARTED
        work = self._work
        try:
            state, error = work(), None  # type: ignore[misc]
        except BaseException as exc:  # handed to whoever waits on the job
            state, error = None, exc
            _crash(self._call, exc)
        self._finish(state, error)
        if error is not None and isinstance(error, INTERRUPTS):
            raise error

    def _claim(self) -> bool:
        with _status_lock:
            if self._status is not _QUEUED:
                return False
            self._status = _STARTED
            return True

    def _finish(self, state: Any, error: BaseException | None) -> None:
        """Record the outcome, wake the waiters, call the callbacks."""
        self._state, self._error = state, error
        with _status_lock:
            self._status = _FINISHED
            latch, callbacks = self._latch, self._callbacks
            self._latch = self._callbacks = self._call = self._work = None
        if latch is not None:
            latch.release()
        for callback in callbacks or ():
            self._call_back(callback)

    def _call_back(self, callback: Callable[[Job], object]) -> None:
        try:
            callback(self)
        except Exception:  # (as concurrent.futures does: one callback never stops the rest)
            _logger.exception("a done callback of %r raised", self)

    def _wait(self, timeout: float | None) -> bool:
        if self._status is _FINISHED:
            return True
        with _status_lock:
            if self._status is _FINISHED:
                return True
            latch = self._latch
            if latch is None:
                latch = self._latch = threading.Lock()
                latch.acquire()
        if latch.acquire(timeout=-1 if timeout is None else max(timeout, 0)):
            latch.release()  # let the next waiter through
        return self._status is _FINISHED

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._status}>"


def _crash(call: Any, error: BaseException) -> None:
    """A job's work raised ``error`` instead of returning the run's final state: the run
    ends Crashed (an error outside its lifecycle is the runner's, or the engine's) unless
    it has ended already (the engine records what escapes a started run), before waiters
    wake, so that they and the runs downstream never see it Pending."""
    try:
        call.crash(error)
    except Exception:  # (recording failed too: the job still finishes, with ``error``)
        _logger.exception("recording task run %s Crashed failed", call.task_run_id)


def _in_running_order(job: Job, upstream: list[Job]) -> list[Job]:
    """``job`` and the queued jobs it waits for, directly or not, each after the ones it
    waits for (``upstream``: its own).

    A waiter runs them in this order, one after another: none of them then finds a queued
    job to wait for, so the waiter's stack holds one run at a time. Run one inside another
    (a waiter running the job it waits for, whose run waits for the next queued link...),
    a chain of a few hundred submissions passed as futures ran out of stack. Wherever
    Python's recursion limit struck, a link's run was left Pending and the rest ended
    NotReady, or a run's end went uncounted and its flow run waited for it forever.
    """
    order: list[Job] = []
    entered = {job}
    stack = [(job, iter(upstream))]
    while stack:  # (depth first, without recursion: a chain may be thousands long)
        current, pending = stack[-1]
        for up in pending:
            if up not in entered and up._status is _QUEUED:
                entered.add(up)
                stack.append((up, iter(up._queued_upstream())))
                break
        else:  # all it waits for come before it
            stack.pop()
            order.append(current)
    return order


class LoopJob(Job):
    """An async task run on the runner's event loop: started when submitted (the loop
    runs it concurrently with the others at once), so no waiter runs it and it cannot be
    cancelled; :meth:`run_on_loop` is the coroutine the loop runs."""

    __slots__ = ()

    def __init__(self, call: Any) -> None:
        super().__init__(call, None)
        self._status = _STARTED

    async def run_on_loop(self) -> None:
        call = self._call
        try:
            state, error = await call.run_async(), None
        except BaseException as exc:  # handed to whoever waits on the job
            state, error = None, exc
            _crash(call, exc)
        self._finish(state, error)
