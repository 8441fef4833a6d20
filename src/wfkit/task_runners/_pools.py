"""The built-in task runners: a thread pool, and a process pool built on it."""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any, Self

from wfkit.exceptions import ConfigurationError, SerializationError
from wfkit.task_runners._jobs import Job, LoopJob
from wfkit.task_runners._protocol import RemoteTaskRun, TaskRunCall
from wfkit.task_runners._workers import LoopThread, WorkerPool

__all__ = ["ProcessPoolTaskRunner", "ThreadPoolTaskRunner"]


def _check_max_workers(value: Any, owner: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigurationError(
            f"{owner}(max_workers={value!r}): max_workers must be a whole number >= 1, or None "
            "for the default."
        )
    return value


class _PoolRunner:
    """Threads of this process for sync task runs, one event loop (in its own thread) for
    async ones; both started on first use. ``with runner:`` shuts it down on exit."""

    _thread_name = "wfkit-task"

    def __init__(self, max_workers: int | None = None) -> None:
        self.max_workers = _check_max_workers(max_workers, type(self).__name__)
        self._workers: WorkerPool | None = None
        self._loop: LoopThread | None = None
        self._lock = threading.Lock()
        self._closed = False
        self._submitted = 0  # changes whenever a run is submitted (shutdown watches it)

    def duplicate(self) -> Self:
        """A fresh, unstarted runner with the same settings (one per flow run)."""
        return type(self)(max_workers=self.max_workers)

    def submit(self, call: TaskRunCall) -> Job:
        """Queue ``call`` (an async one starts on the event loop at once); its future.

        Raises:
            TypeError: ``call`` is not a task run call.
            RuntimeError: the runner is shut down.
        """
        try:
            is_async = call.is_async
        except AttributeError:
            raise TypeError(
                f"{type(self).__name__}.submit() takes a TaskRunCall, which wfkit makes for "
                f"task.submit() and task.map(); got {call!r}. Submit tasks with "
                "my_task.submit(...) inside a flow."
            ) from None
        return self._submit_call(call, is_async)

    def _submit_call(self, call: TaskRunCall, is_async: bool) -> Job:
        """Queue a checked ``call`` (subclasses send it elsewhere)."""
        if is_async:
            return self._start_on_loop(call)
        return self._queue(Job(call, call.run))

    def _queue(self, job: Job) -> Job:
        self._submitted += 1
        (self._workers or self._pool()).put(job)
        return job

    def _start_on_loop(self, call: TaskRunCall) -> Job:
        self._submitted += 1
        job = LoopJob(call)
        self._event_loop().start(job.run_on_loop())
        return job

    def shutdown(self, wait: bool = True) -> None:
        """Take no more work. With ``wait``, return when every submitted run (and what
        those submit) is over; this thread helps with queued runs. Without, return at once:
        queued runs are cancelled, started ones finish in the background."""
        with self._lock:
            if self._closed:
                return
        while wait:
            seen = self._submitted
            if self._workers is not None:
                self._workers.drain()
            if self._loop is not None:
                self._loop.drain()
            if self._submitted == seen:
                break
        with self._lock:
            self._closed = True
            workers, loop = self._workers, self._loop
        if workers is not None:
            workers.close(wait=wait)
        if loop is not None:
            loop.stop(wait=wait)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()

    def _default_workers(self) -> int:
        return min(32, (os.cpu_count() or 1) + 4)

    def _pool(self) -> WorkerPool:
        workers = self._workers
        if workers is not None:
            return workers
        with self._lock:
            self._check_open()
            if self._workers is None:
                size = self.max_workers or self._default_workers()
                self._workers = WorkerPool(size, self._thread_name)
            return self._workers

    def _event_loop(self) -> LoopThread:
        with self._lock:
            self._check_open()
            if self._loop is None:
                self._loop = LoopThread()
            return self._loop

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(
                f"{self!r} is shut down; it takes no more task runs. A flow run shuts its "
                "runner down when it ends: submit tasks while the flow runs."
            )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(max_workers={self.max_workers!r})"


class ThreadPoolTaskRunner(_PoolRunner):
    """Runs submitted tasks in a thread pool of this process; async tasks run concurrently
    on one event loop per flow run.

    Args:
        max_workers: the pool size; default ``min(32, cpus + 4)``. A bounded pool cannot
            deadlock on nested submissions: a thread that waits on a run nobody has started
            runs it itself.
    """


class ProcessPoolTaskRunner(_PoolRunner):
    """Runs submitted tasks in worker processes; their states, logs and cache writes are
    recorded in the flow's run store. Tasks and their arguments must be picklable
    (module-level tasks). Async tasks run on an event loop in this process.

    Args:
        max_workers: the number of processes; default the number of CPUs.
        initializer: called with ``*initargs`` once in each worker process as it starts
            (as :class:`concurrent.futures.ProcessPoolExecutor` does); it must be picklable
            (a module-level function).
        initargs: the arguments for ``initializer``.

    Raises:
        ConfigurationError: ``initializer`` is not callable, or ``initargs`` is not a tuple.
    """

    # Threads of this process wait on the worker processes and replay what they recorded.
    _thread_name = "wfkit-proc"

    def __init__(
        self,
        max_workers: int | None = None,
        initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
    ) -> None:
        super().__init__(max_workers)
        name = type(self).__name__
        if initializer is not None and not callable(initializer):
            raise ConfigurationError(
                f"{name}(initializer={initializer!r}): initializer must be a callable (a "
                "module-level function each worker process calls as it starts), or None."
            )
        if not isinstance(initargs, tuple):
            raise ConfigurationError(
                f"{name}(initargs={initargs!r}): initargs must be a tuple of the arguments "
                f"for initializer, e.g. initargs=({initargs!r},)."
            )
        self.initializer = initializer
        self.initargs = initargs
        self._processes: Executor | None = None

    def duplicate(self) -> Self:
        """A fresh, unstarted runner with the same settings (one per flow run)."""
        return type(self)(self.max_workers, self.initializer, self.initargs)

    def submit(self, call: TaskRunCall) -> Job:
        """Queue ``call`` for a worker process.

        Raises:
            TypeError: the task cannot be imported by a worker process (define it at module
                level), or ``call`` is not a task run call.
            RuntimeError: the runner is shut down.
        """
        return super().submit(call)

    def _submit_call(self, call: TaskRunCall, is_async: bool) -> Job:
        if is_async:  # (on this process's event loop)
            return super()._submit_call(call, is_async)
        call.check_remote()
        return self._queue(Job(call, functools.partial(call.run_remote, self._send)))

    def _send(self, remote: RemoteTaskRun) -> Any:
        try:
            return self._process_pool().submit(_execute, remote).result()
        except Exception as exc:
            import pickle  # (only a failed send needs it; `import wfkit` does without)

            problem = unserializable(remote, pickle.dumps, "pickle")
            if problem is not None:
                raise problem from exc
            # (loaded already, by the pool that broke; `import wfkit` does without it)
            from concurrent.futures.process import BrokenProcessPool

            if self.initializer is not None and isinstance(exc, BrokenProcessPool):
                # (a worker whose initializer raised only prints it, on its stderr, and ends:
                # the pool's error says no more than that a process ended)
                raise BrokenProcessPool(
                    f"{exc} Its worker processes run initializer={self.initializer!r} as they "
                    "start: if it raised, its traceback is on the worker's stderr (above)."
                ) from exc
            raise

    def _default_workers(self) -> int:
        return os.cpu_count() or 1

    def _process_pool(self) -> Executor:
        with self._lock:
            if self._processes is None:
                # (multiprocessing and its executor: ~12 ms of import time that only
                # process pools need)
                import multiprocessing
                from concurrent.futures import ProcessPoolExecutor

                context = multiprocessing.get_context("spawn")
                self._processes = ProcessPoolExecutor(
                    max_workers=self.max_workers or self._default_workers(),
                    mp_context=context,
                    initializer=self.initializer,
                    initargs=self.initargs,
                )
            return self._processes

    def shutdown(self, wait: bool = True) -> None:
        super().shutdown(wait)
        with self._lock:
            processes, self._processes = self._processes, None
        if processes is not None:
            processes.shutdown(wait=wait)

    def __repr__(self) -> str:
        extra = f", initializer={self.initializer!r}" if self.initializer is not None else ""
        return f"{type(self).__name__}(max_workers={self.max_workers!r}{extra})"


def unserializable(
    remote: RemoteTaskRun,
    dumps: Callable[[Any], object],
    serializer: str,
    error: type[SerializationError] = SerializationError,
) -> SerializationError | None:
    """The error for the first argument of ``remote`` that ``dumps`` (the ``serializer``
    that takes it to another process) cannot serialize; None if it takes them all."""
    for name, value in remote.arguments.items():
        try:
            dumps(value)
        except Exception as exc:
            return error(
                f"argument {name!r} ({type(value).__name__}) cannot be serialized by "
                f"{serializer} to go to another process: {type(exc).__name__}: {exc}. Pass a "
                "value that pickles (plain data, or a path or key the task opens itself), "
                "or use ThreadPoolTaskRunner."
            )
    return None


def _execute(remote: RemoteTaskRun) -> Any:
    """A worker process's entry: run the task; what it submits runs on a thread pool there."""
    return remote.execute(task_runner=ThreadPoolTaskRunner())
