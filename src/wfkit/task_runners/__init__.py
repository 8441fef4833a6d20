"""Task runners: where submitted task runs execute.

``ThreadPoolTaskRunner`` (the default) runs them in a thread pool of this process;
``ProcessPoolTaskRunner`` in worker processes. Async tasks run concurrently on one event
loop per flow run, in a helper thread. ``DaskTaskRunner`` / ``RayTaskRunner`` live in
``wfkit.task_runners.dask`` / ``.ray`` (extras).

A flow's ``task_runner`` option takes an instance or a class; each flow run uses its own
:meth:`TaskRunner.duplicate`, entered when the first task is submitted and shut down (after
waiting for its work) when the run ends.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Iterable
from concurrent.futures import Executor
from typing import Any

from wfkit._realtime import sleep as _real_sleep
from wfkit.exceptions import ConfigurationError

__all__ = ["ProcessPoolTaskRunner", "TaskRunner", "ThreadPoolTaskRunner"]

_BACKLOG = 128  # queued runs beyond which a submitter lets the workers catch up


def _check_max_workers(value: Any, owner: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigurationError(
            f"{owner}(max_workers={value!r}): max_workers must be a whole number >= 1, or None "
            "for the default."
        )
    return value


_execute_task_run: Any = None  # wfkit._engine.calls.execute_task_run, imported on first use


class TaskRunner:
    """Base of task runners: start on enter, shut down (waiting) on exit.

    Subclasses set the pool size (:meth:`_default_workers`) and may override
    :meth:`run_prepared` (how a worker runs one task run) or :meth:`submit_jobs`.
    """

    _thread_name = "wfkit-task"

    def __init__(self, max_workers: int | None = None) -> None:
        self.max_workers = _check_max_workers(max_workers, type(self).__name__)
        self._workers: _WorkerPool | None = None
        self._loop: _LoopThread | None = None
        self._lock = threading.Lock()

    def duplicate(self) -> TaskRunner:
        """A fresh, unstarted runner with the same settings (one per flow run)."""
        return type(self)(max_workers=self.max_workers)

    # lifecycle --------------------------------------------------------------------------
    def __enter__(self) -> TaskRunner:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()

    def shutdown(self, wait: bool = True) -> None:
        """Wait for submitted work (``wait``), then release the workers."""
        with self._lock:
            workers, self._workers = self._workers, None
            loop, self._loop = self._loop, None
        if loop is not None:
            loop.stop(wait=wait)
        if workers is not None:
            workers.shutdown(wait=wait)

    def _default_workers(self) -> int:
        return min(32, (os.cpu_count() or 1) + 4)

    def _pool(self) -> _WorkerPool:
        with self._lock:
            if self._workers is None:
                size = self.max_workers or self._default_workers()
                self._workers = _WorkerPool(size, self._thread_name)
            return self._workers

    def event_loop(self) -> Any:
        """The runner's event loop for async tasks (started on first use)."""
        with self._lock:
            if self._loop is None:
                self._loop = _LoopThread()
            return self._loop.loop

    # submitting -------------------------------------------------------------------------
    def submit(self, task: Any, parameters: dict[str, Any], wait_for: Any = None) -> Any:
        """Submit a run of ``task`` with these parameters; returns its WfFuture.

        Raises:
            TypeError: ``task`` is not a wfkit task, or is a generator task.
        """
        return self.submit_each(task, (parameters,), wait_for)[0]

    def submit_each(
        self, task: Any, parameter_sets: Iterable[dict[str, Any]], wait_for: Any = None
    ) -> Any:
        """Submit one run of ``task`` per parameter set, in order (what ``map`` does);
        returns their WfFutureList.

        Raises:
            TypeError: ``task`` is not a wfkit task, or is a generator task.
        """
        from wfkit._engine.submit import submit_runs

        return submit_runs(self, task, parameter_sets, wait_for)

    def map(self, task: Any, parameters: dict[str, Any], wait_for: Any = None) -> Any:
        """Submit one run of ``task`` per position of the iterable parameters."""
        from wfkit._engine.submit import map_task

        return map_task(task, (), parameters, wait_for)

    def submit_jobs(self, jobs: list[Any]) -> None:
        """Queue jobs (wfkit._engine.jobs.Job) for the workers, in order."""
        self._pool().put(jobs)

    def run_prepared(self, prepared: Any) -> Any:
        """Run a prepared task run in the current thread; returns its final state."""
        global _execute_task_run
        if _execute_task_run is None:  # imported once (an import statement here would cost
            # every run a failed ``__path__`` lookup and its formatted AttributeError)
            from wfkit._engine.calls import execute_task_run as _execute_task_run
        return _execute_task_run(prepared, return_state=True)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(max_workers={self.max_workers!r})"


class ThreadPoolTaskRunner(TaskRunner):
    """Runs submitted tasks in a thread pool.

    Args:
        max_workers: the pool size; default ``min(32, cpus + 4)``. A bounded pool cannot
            deadlock on nested submissions: a worker that waits on a run nobody has started
            runs it itself.
    """


class ProcessPoolTaskRunner(TaskRunner):
    """Runs submitted tasks in worker processes; their states are recorded in the flow's
    run store. Tasks and their arguments must be picklable (module-level tasks).

    Args:
        max_workers: the number of processes; default the number of CPUs.
    """

    # Threads of this process wait on the worker processes and replay what they recorded.
    _thread_name = "wfkit-proc"

    def __init__(self, max_workers: int | None = None) -> None:
        super().__init__(max_workers)
        self._processes: Executor | None = None

    def _default_workers(self) -> int:
        return os.cpu_count() or 1

    def processes(self) -> Executor:
        with self._lock:
            if self._processes is None:
                import multiprocessing
                from concurrent.futures import ProcessPoolExecutor

                context = multiprocessing.get_context("spawn")
                self._processes = ProcessPoolExecutor(
                    max_workers=self.max_workers or self._default_workers(), mp_context=context
                )
            return self._processes

    def submit_each(
        self, task: Any, parameter_sets: Iterable[dict[str, Any]], wait_for: Any = None
    ) -> Any:
        from wfkit._engine.process import task_reference
        from wfkit.tasks import Task

        if isinstance(task, Task):
            task_reference(task)  # fail before any run exists if a process cannot import it
        return super().submit_each(task, parameter_sets, wait_for)

    def run_prepared(self, prepared: Any) -> Any:
        """Wait for the upstream in this process, run the task in a worker process, and
        replay its states here; returns the final state."""
        from wfkit._engine.process import run_in_process

        return run_in_process(self, prepared)

    def shutdown(self, wait: bool = True) -> None:
        super().shutdown(wait)
        with self._lock:
            processes, self._processes = self._processes, None
        if processes is not None:
            processes.shutdown(wait=wait)


class _WorkerPool:
    """Up to ``size`` threads taking jobs from one queue, first in first out.

    Made for many small jobs (``task.map``): a job is queued as itself (no future or work
    item around it), a batch is queued at once and wakes (or starts) at most one worker per
    queued job, and a submitter far ahead of the workers gives them a turn. A job that a
    waiter already ran is skipped.
    """

    def __init__(self, size: int, name: str) -> None:
        self._size = size
        self._name = name
        self._queue: deque[Any] = deque()
        self._wakeup = threading.Condition(threading.Lock())
        self._threads: list[threading.Thread] = []
        self._sleeping = 0  # workers waiting for work, not yet woken
        self._closed = False

    def put(self, jobs: list[Any]) -> None:
        with self._wakeup:
            if self._closed:
                raise RuntimeError("this task runner is shut down; it cannot take more work")
            self._queue.extend(jobs)
            waiting = len(self._queue)
            woken = min(self._sleeping, waiting)
            if woken:
                self._sleeping -= woken
                self._wakeup.notify(woken)
            for _ in range(min(waiting - woken, self._size - len(self._threads))):
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
                    wakeup.wait()
                continue
            job.run_if_pending()
            del job  # an idle worker keeps no finished job alive

    def shutdown(self, wait: bool = True) -> None:
        """Stop taking work; the workers finish what is queued, then end. With ``wait``,
        this thread helps with the queued work, then waits for the workers."""
        with self._wakeup:
            self._closed = True
            self._sleeping = 0
            self._wakeup.notify_all()
        if not wait:
            return
        queue = self._queue
        while True:
            try:
                job = queue.popleft()
            except IndexError:
                break
            job.run_if_pending()
        for thread in self._threads:
            thread.join()


class _LoopThread:
    """An asyncio event loop running in a daemon thread."""

    def __init__(self) -> None:
        import asyncio

        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name="wfkit-async-tasks", daemon=True
        )
        self._thread.start()
        ready.wait()

    def _run(self, ready: threading.Event) -> None:
        import asyncio

        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(ready.set)
        self.loop.run_forever()

    def stop(self, wait: bool = True) -> None:
        import asyncio

        async def drain() -> None:
            current = asyncio.current_task()
            tasks = [t for t in asyncio.all_tasks() if t is not current]
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)

        if wait:
            asyncio.run_coroutine_threadsafe(drain(), self.loop).result()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


def resolve_task_runner(value: Any, owner: str) -> TaskRunner:
    """Validate a flow's ``task_runner`` option (an instance or a TaskRunner class)."""
    if isinstance(value, TaskRunner):
        return value
    if isinstance(value, type) and issubclass(value, TaskRunner):
        return value()
    raise ConfigurationError(
        f"task_runner={value!r} is invalid for {owner}: pass a TaskRunner instance or class, "
        "e.g. ThreadPoolTaskRunner(max_workers=4)."
    )
