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
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any

from wfkit.exceptions import ConfigurationError

__all__ = ["ProcessPoolTaskRunner", "TaskRunner", "ThreadPoolTaskRunner"]


def _check_max_workers(value: Any, owner: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigurationError(
            f"{owner}(max_workers={value!r}): max_workers must be a whole number >= 1, or None "
            "for the default."
        )
    return value


class TaskRunner:
    """Base of task runners: start on enter, shut down (waiting) on exit.

    Subclasses implement :meth:`_make_executor` (and may override :meth:`submit_job`).
    """

    def __init__(self, max_workers: int | None = None) -> None:
        self.max_workers = _check_max_workers(max_workers, type(self).__name__)
        self._executor: Executor | None = None
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
            executor, self._executor = self._executor, None
            loop, self._loop = self._loop, None
        if loop is not None:
            loop.stop(wait=wait)
        if executor is not None:
            executor.shutdown(wait=wait)

    def _make_executor(self) -> Executor:  # pragma: no cover - subclasses
        raise NotImplementedError

    def executor(self) -> Executor:
        with self._lock:
            if self._executor is None:
                self._executor = self._make_executor()
            return self._executor

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
        from wfkit._engine.submit import prepare_for_runner, submit_prepared

        return submit_prepared(self, prepare_for_runner(task, parameters, wait_for))

    def map(self, task: Any, parameters: dict[str, Any], wait_for: Any = None) -> Any:
        """Submit one run of ``task`` per position of the iterable parameters."""
        from wfkit._engine.submit import map_task

        return map_task(task, (), parameters, wait_for)

    def submit_job(self, job: Any, prepared: Any) -> None:
        """Schedule ``job.run_if_pending`` (a wfkit._engine.jobs.Job) on the workers."""
        self.executor().submit(job.run_if_pending)

    def run_prepared(self, prepared: Any) -> Any:
        """Run a prepared task run in the current thread; returns its final state."""
        from wfkit._engine.calls import execute_task_run

        return execute_task_run(prepared, return_state=True)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(max_workers={self.max_workers!r})"


class ThreadPoolTaskRunner(TaskRunner):
    """Runs submitted tasks in a thread pool.

    Args:
        max_workers: the pool size; default ``min(32, cpus + 4)``. A bounded pool cannot
            deadlock on nested submissions: a worker that waits on a run nobody has started
            runs it itself.
    """

    def _make_executor(self) -> Executor:
        workers = self.max_workers or min(32, (os.cpu_count() or 1) + 4)
        return ThreadPoolExecutor(max_workers=workers, thread_name_prefix="wfkit-task")


class ProcessPoolTaskRunner(TaskRunner):
    """Runs submitted tasks in worker processes; their states are recorded in the flow's
    run store. Tasks and their arguments must be picklable (module-level tasks).

    Args:
        max_workers: the number of processes; default the number of CPUs.
    """

    def __init__(self, max_workers: int | None = None) -> None:
        super().__init__(max_workers)
        self._processes: Executor | None = None

    def _make_executor(self) -> Executor:
        # Threads of this process wait on the worker processes and replay what they recorded.
        return ThreadPoolExecutor(
            max_workers=self.max_workers or (os.cpu_count() or 1), thread_name_prefix="wfkit-proc"
        )

    def processes(self) -> Executor:
        with self._lock:
            if self._processes is None:
                import multiprocessing
                from concurrent.futures import ProcessPoolExecutor

                context = multiprocessing.get_context("spawn")
                self._processes = ProcessPoolExecutor(
                    max_workers=self.max_workers or (os.cpu_count() or 1), mp_context=context
                )
            return self._processes

    def submit(self, task: Any, parameters: dict[str, Any], wait_for: Any = None) -> Any:
        from wfkit._engine.process import task_reference
        from wfkit.tasks import Task

        if isinstance(task, Task):
            task_reference(task)  # fail before any run exists if a process cannot import it
        return super().submit(task, parameters, wait_for)

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
