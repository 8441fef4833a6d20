"""Futures of submitted task runs: ``WfFuture`` (alias ``PrefectFuture``), ``WfFutureList``,
``wait`` and ``as_completed``."""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Generic, NamedTuple

from wfkit._engine.timelines import catch_up
from wfkit._realtime import monotonic as _real_monotonic
from wfkit.context import current_clock
from wfkit.states import Pending, State

__all__ = [
    "DoneAndNotDoneFutures",
    "PrefectFuture",
    "WfFuture",
    "WfFutureList",
    "as_completed",
    "wait",
]

if TYPE_CHECKING:  # (a default of Any, as in wfkit.states)
    from typing_extensions import TypeVar

    R = TypeVar("R", default=Any)
else:
    from typing import TypeVar

    R = TypeVar("R")


class WfFuture(Generic[R]):
    """The eventual outcome of a submitted task run.

    Attributes:
        task_run_id: the id of the task run (known as soon as it is submitted).
        flow_run_id: the flow run it was submitted in.
    """

    __slots__ = ("task_run_id", "flow_run_id", "_job", "_name", "__weakref__")

    def __init__(self, run: Any, job: Any) -> None:
        self.task_run_id: str = run.id
        self.flow_run_id: str | None = run.flow_run_id
        self._name = run.name
        # A wfkit._engine.jobs.Job whose result is the final State; until it is done, its
        # ``live`` run has the current state.
        self._job = job

    @property
    def state(self) -> State[R]:
        """The run's current state (its final state once done)."""
        job = self._job
        run = job.live  # read before ``done``: a job drops it when it finishes
        if job.done:
            return self._final_state()
        state = run.state if run is not None else None
        return state if state is not None else Pending()

    def done(self) -> bool:
        return self._job.done

    def wait(self, timeout: float | None = None) -> None:
        """Wait until the run is final, or ``timeout`` seconds pass; never raises."""
        if self._job.wait(timeout) and self._job.finished_at is not None:
            catch_up(current_clock(), self._job.finished_at)

    def result(self, timeout: float | None = None, raise_on_failure: bool = True) -> R:
        """The run's result, waiting for it.

        Raises:
            TimeoutError: the run did not finish within ``timeout`` seconds.
            Exception: the run's exception, when it failed and ``raise_on_failure``.
        """
        job = self._job
        if job.done and job.finished_at is None and job.error is None:  # nothing to wait for
            return job.result.result(raise_on_failure=raise_on_failure)  # type: ignore[no-any-return]
        if not job.wait(timeout):
            raise TimeoutError(
                f"Task run {self._name!r} ({self.task_run_id}) did not finish within "
                f"{timeout:g} second(s) (result(timeout={timeout!r})). Its state is "
                f"{self.state.name}; wait longer, or check why it is slow."
            )
        return self._final_state().result(raise_on_failure=raise_on_failure)  # type: ignore[return-value]

    def add_done_callback(self, fn: Callable[[WfFuture[R]], None]) -> None:
        """Call ``fn(future)`` when the run is final (at once if it already is)."""
        self._job.add_done_callback(lambda _job: fn(self))

    def _final_state(self) -> State[R]:
        job = self._job
        if job.finished_at is not None:
            # Under a fake clock, whoever waited for this run continues when it finished.
            catch_up(current_clock(), job.finished_at)
        if job.error is not None:  # the engine itself failed (or an interrupt)
            raise job.error
        return job.result  # type: ignore[no-any-return]

    def __await__(self) -> Generator[Any, None, R]:
        """In async code, ``await future`` waits without blocking the event loop."""
        import asyncio

        loop = asyncio.get_running_loop()
        if not self._job.done:
            waiter = loop.create_future()

            def settle() -> None:
                if not waiter.done():
                    waiter.set_result(None)

            def wake(_: WfFuture[R]) -> None:
                loop.call_soon_threadsafe(settle)

            self.add_done_callback(wake)
            yield from waiter.__await__()
        return self.result()

    def __repr__(self) -> str:
        return f"WfFuture(task_run={self._name!r}, state={self.state.name})"


PrefectFuture = WfFuture


class WfFutureList(list[WfFuture[R]]):
    """A list of futures (what ``task.map`` returns) with collective waiting."""

    def wait(self, timeout: float | None = None) -> None:
        """Wait for every future (or until ``timeout``); never raises."""
        wait(self, timeout=timeout)

    def result(self, timeout: float | None = None, raise_on_failure: bool = True) -> list[R]:
        """The results, in order.

        Raises:
            TimeoutError: not all finished within ``timeout`` seconds.
        """
        done, not_done = wait(self, timeout=timeout)
        if not_done:
            raise TimeoutError(
                f"{len(not_done)} of {len(self)} task runs did not finish within "
                f"{timeout!r} second(s)."
            )
        return [f.result(raise_on_failure=raise_on_failure) for f in self]


class DoneAndNotDoneFutures(NamedTuple):
    done: set[WfFuture]
    not_done: set[WfFuture]


def wait(futures: Iterable[WfFuture], timeout: float | None = None) -> DoneAndNotDoneFutures:
    """Wait for the futures (all of them, or until ``timeout`` seconds pass).

    Returns ``(done, not_done)``.
    """
    futures = list(futures)
    if timeout is None:
        for future in futures:
            future.wait()
    else:
        deadline = _real_monotonic() + timeout
        for future in futures:
            future.wait(max(deadline - _real_monotonic(), 0))
    done = {f for f in futures if f.done()}
    return DoneAndNotDoneFutures(done, set(futures) - done)


def as_completed(futures: Iterable[WfFuture], timeout: float | None = None) -> Iterator[WfFuture]:
    """Yield the futures as they finish.

    Raises:
        TimeoutError: some did not finish within ``timeout`` seconds.
    """
    import queue

    futures = list(futures)
    finished: queue.SimpleQueue[WfFuture] = queue.SimpleQueue()
    for future in futures:
        future.add_done_callback(finished.put)
    pending = {id(f) for f in futures}
    deadline = None if timeout is None else _real_monotonic() + timeout
    unstarted = list(futures)
    while pending:
        if finished.empty():
            # Inside a bounded pool nobody may be free to start these: run one here.
            while unstarted and unstarted[0]._job.started:
                unstarted.pop(0)
            if unstarted:
                unstarted.pop(0)._job.run_if_pending()
                continue
        remaining = None if deadline is None else max(deadline - _real_monotonic(), 0)
        try:
            future = finished.get(timeout=remaining)
        except queue.Empty:
            raise TimeoutError(
                f"{len(pending)} of {len(futures)} task runs did not finish within "
                f"{timeout!r} second(s)."
            ) from None
        if id(future) in pending:
            pending.discard(id(future))
            yield future
