"""The threads behind the pool runners: a worker pool for jobs, an event loop for async
tasks."""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

from wfkit._realtime import sleep as _real_sleep
from wfkit.task_runners._jobs import INTERRUPTS, Job

__all__ = ["LoopThread", "WorkerPool"]

_BACKLOG = 128  # queued runs beyond which a submitter lets the workers catch up


class WorkerPool:
    """Up to ``size`` threads taking jobs from one queue, first in first out.

    Made for many small jobs (``task.map``): a job is queued as itself (no work item around
    it), a put wakes (or starts) a worker only when none is awake to take it, and a
    submitter far ahead of the workers gives them a turn. A job that a waiter already ran is
    skipped.
    """

    def __init__(self, size: int, name: str) -> None:
        self._size = size
        self._name = name
        self._queue: deque[Job] = deque()
        self._lock = threading.Lock()
        self._wakeup = threading.Condition(self._lock)  # workers wait here for work
        self._idle = threading.Condition(self._lock)  # drain() waits here for the workers
        self._threads: list[threading.Thread] = []
        self._sleeping = 0  # workers waiting for work, not yet woken
        self._closed = False
        # The first interrupt a worker's job raised: drain() raises it in the waiting thread
        # (a signal reaches the main thread only; this one reached a worker).
        self._interrupt: BaseException | None = None

    def put(self, job: Job) -> None:
        """Queue ``job``.

        Raises:
            RuntimeError: the pool is closed.
        """
        with self._lock:  # (the lock itself: a Condition's ``with`` is a Python-level call)
            if self._closed:
                raise RuntimeError("this task runner is shut down; it takes no more task runs")
            self._queue.append(job)
            waiting = len(self._queue)
            if self._sleeping:
                self._sleeping -= 1
                self._wakeup.notify()
            elif len(self._threads) < self._size:
                self._start_worker()
        if waiting > _BACKLOG:
            # The submitter is far ahead of the workers: give them a turn (release the GIL)
            # instead of piling up prepared runs. Workers blocked on I/O do not hold the GIL,
            # so this never waits for a run; pure-Python runs catch up while queued runs are
            # few and young (less for the garbage collector, rows written to a store once).
            _real_sleep(0)

    def _start_worker(self) -> None:
        # Daemon threads: a flow run always shuts its runner down (waiting for the work);
        # a daemon worker left idle cannot hold up the interpreter's exit.
        thread = threading.Thread(
            target=self._work, name=f"{self._name}_{len(self._threads)}", daemon=True
        )
        thread.start()
        self._threads.append(thread)

    def _work(self) -> None:
        queue, wakeup = self._queue, self._wakeup
        while True:
            try:
                job = queue.popleft()
            except IndexError:
                with wakeup:
                    if queue:
                        continue
                    if self._closed:
                        return
                    self._sleeping += 1
                    if self._sleeping == len(self._threads):
                        self._idle.notify_all()
                    wakeup.wait()
                continue
            try:
                job.run_if_queued()
            except INTERRUPTS as exc:
                self._interrupted(exc)
            del job  # an idle worker keeps no finished job alive

    def _interrupted(self, error: BaseException) -> None:
        with self._lock:
            if self._interrupt is None:
                self._interrupt = error
            self._idle.notify_all()

    def _help(self) -> None:
        """Run queued jobs in this thread until the queue is empty (or a worker was
        interrupted)."""
        queue = self._queue
        while self._interrupt is None:
            try:
                job = queue.popleft()
            except IndexError:
                return
            job.run_if_queued()

    def drain(self) -> None:
        """Return once no job is queued or running; this thread helps with the queued ones.
        The pool still takes work (what the running jobs submit).

        Raises:
            KeyboardInterrupt, SystemExit: a job this thread helped with, or one a worker
                ran, was interrupted (the rest stay queued).
        """
        while True:
            self._help()
            with self._wakeup:
                if self._interrupt is not None:
                    raise self._interrupt
                if self._queue:
                    continue
                if self._closed or self._sleeping == len(self._threads):
                    return  # (closed: the workers end instead of waiting for work)
                self._idle.wait()

    def close(self, wait: bool = True) -> None:
        """Take no more work; cancel the jobs still queued; with ``wait``, wait for the
        workers to end."""
        with self._wakeup:
            self._closed = True
            self._sleeping = 0
            self._wakeup.notify_all()
        queue = self._queue
        while True:
            try:
                job = queue.popleft()
            except IndexError:
                break
            job.cancel()
        if wait:
            for thread in self._threads:
                thread.join()


class LoopThread:
    """An asyncio event loop running in a daemon thread."""

    def __init__(self) -> None:
        # (asyncio is imported by the first async task run only: ~30 ms of import time)
        import asyncio

        self._asyncio = asyncio
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name="wfkit-async-tasks", daemon=True
        )
        self._thread.start()
        ready.wait()

    def _run(self, ready: threading.Event) -> None:
        self._asyncio.set_event_loop(self.loop)
        self.loop.call_soon(ready.set)
        try:
            self.loop.run_forever()
        finally:
            self.loop.close()

    def start(self, coroutine: Any) -> None:
        """Run ``coroutine`` on the loop (from any thread)."""
        self._asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    def drain(self) -> None:
        """Return once no coroutine is left on the loop (it keeps running)."""
        self._asyncio.run_coroutine_threadsafe(self._idle(), self.loop).result()

    def stop(self, wait: bool = True) -> None:
        """Stop the loop once the coroutines on it are done; with ``wait``, wait for that.
        (Async task runs are never cancelled: they started when they were submitted.)"""

        async def drain_and_stop() -> None:
            await self._idle()
            self._asyncio.get_running_loop().stop()

        self._asyncio.run_coroutine_threadsafe(drain_and_stop(), self.loop)
        if wait:
            self._thread.join()

    async def _idle(self) -> None:
        asyncio = self._asyncio
        current = asyncio.current_task()
        while True:  # what finishes may have started more
            tasks = [t for t in asyncio.all_tasks() if t is not current]
            if not tasks:
                return
            await asyncio.gather(*tasks, return_exceptions=True)
