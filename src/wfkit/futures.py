"""Futures of submitted task runs: ``WfFuture`` (alias ``PrefectFuture``), ``WfFutureList``,
``wait`` and ``as_completed``.

Timeouts follow the run's clock. Under the real clock they are real seconds. Under a
:class:`~wfkit.clock.FakeClock` (the test harness) a run is done within ``timeout`` when it
finished, in virtual time, no later than ``timeout`` virtual seconds after the waiter
started waiting: a task that sleeps 60 (virtual) seconds is not done within
``timeout=10``, and the waiter's time moves to the deadline; one that finishes in time is
done, and the waiter's time moves to when it finished. Virtual time cannot skip real
waiting, though: a run blocked on something real (I/O, a lock, an event) is waited for at
most ``timeout`` real seconds, as under the real clock, and counts as not done if it has
not finished by then.
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import CancelledError
from typing import TYPE_CHECKING, Any, Generic, NamedTuple

import wfkit._realtime as _realtime
from wfkit._engine import timelines
from wfkit.context import current_clock
from wfkit.states import State

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

    __slots__ = ("task_run_id", "flow_run_id", "_name", "_call", "_future", "__weakref__")

    def __init__(self, call: Any, future: Any) -> None:
        # ``call``: the engine's TaskRunCall (the live state until done, and when it
        # finished on a fake clock); ``future``: what the task runner returned for it,
        # whose result is the final State.
        self.task_run_id: str = call.task_run_id
        self.flow_run_id: str | None = call.flow_run_id
        self._name: str = call.task_run_name
        self._call = call
        self._future = future

    @property
    def state(self) -> State[R]:
        """The run's current state (its final state once done)."""
        if self._future.done():
            try:
                return self._final_state()
            except Exception:  # the runner failed to run it: result() raises that
                pass
        return self._call.state  # type: ignore[no-any-return]

    @property
    def wrapped_future(self) -> Any:
        """The future the task runner returned for the run (as Prefect's
        ``PrefectWrappedFuture.wrapped_future``): a runner finds its own futures of a
        run's ``upstream`` runs here."""
        return self._future

    def done(self) -> bool:
        """Whether the run is over (in real time; see the module's note on fake clocks)."""
        return self._future.done()  # type: ignore[no-any-return]

    def wait(self, timeout: float | None = None) -> None:
        """Wait until the run is final, or ``timeout`` seconds pass; never raises."""
        if timeout is None:
            self._join()
        else:
            _wait_until([self], timeout)

    def result(self, timeout: float | None = None, raise_on_failure: bool = True) -> R:
        """The run's result, waiting for it.

        Raises:
            TimeoutError: the run did not finish within ``timeout`` seconds.
            Exception: the run's exception, when it failed and ``raise_on_failure``.
        """
        if timeout is not None and not _wait_until([self], timeout):
            raise TimeoutError(
                f"Task run {self._name!r} ({self.task_run_id}) did not finish within "
                f"{timeout:g} second(s) (result(timeout={timeout!r})). Its state is "
                f"{self._call.state.name}; wait longer, or check why it is slow."
            )
        # (with raise_on_failure=False a failed run's exception is returned: not an R)
        return self._final_state().result(raise_on_failure=raise_on_failure)  # type: ignore[return-value]

    def cancel(self) -> bool:
        """Keep the run from starting; it ends Cancelled. False if it has started."""
        if not self._future.cancel():
            return False
        self._call.cancel()  # (for runners whose futures know nothing of runs)
        return True

    def cancelled(self) -> bool:
        """Whether :meth:`cancel` kept the run from starting."""
        return self._future.cancelled()  # type: ignore[no-any-return]

    def add_done_callback(self, fn: Callable[[WfFuture[R]], object]) -> None:
        """Call ``fn(future)`` when the run is final (at once if it already is)."""
        self._future.add_done_callback(lambda _: fn(self))

    # internals -------------------------------------------------------------------------------
    @property
    def _finished_at(self) -> float | None:
        """When the run finished on its fake clock (None: a real clock, or it never ran)."""
        return self._call.finished_at  # type: ignore[no-any-return]

    def _join(self) -> None:
        """Wait until done, without raising; a pool's future runs a queued run here."""
        try:
            self._future.result()
        except BaseException:
            if not self._future.done():
                raise  # this thread was interrupted while waiting
        self._catch_up()

    def _catch_up(self) -> None:
        """Under a fake clock, whoever waited for the run continues from when it finished."""
        finished_at = self._call.finished_at
        if finished_at is not None:
            timelines.catch_up(current_clock(), finished_at)

    def _final_state(self) -> State[R]:
        """The final state, waiting for it (raises the runner's error if it failed to run
        the call)."""
        call = self._call
        try:
            state: State[R] = self._future.result()
        except CancelledError:  # a concurrent.futures future: the run will not start
            call.cancel()
            return call.state  # type: ignore[no-any-return]
        if not isinstance(state, State):
            # A runner's future that finished without its call having run (a third-party
            # runner's bug): the run ends Crashed, if its done callback has not done so yet.
            call.crash(
                RuntimeError(
                    "the task runner's future finished without the runner having called "
                    f"run(), run_async() or run_remote(); its result was {state!r}"
                )
            )
            return call.state  # type: ignore[no-any-return]
        finished_at = call.finished_at  # (_catch_up inlined: every result() comes here)
        if finished_at is not None:
            timelines.catch_up(current_clock(), finished_at)
        return state

    def __await__(self) -> Generator[Any, None, R]:
        """In async code, ``await future`` waits without blocking the event loop."""
        # (asyncio is loaded: only code on an event loop awaits. Not imported at the top:
        # ~30 ms that a process submitting only sync tasks never pays.)
        import asyncio

        if not self._future.done():
            loop = asyncio.get_running_loop()
            waiter = loop.create_future()

            def settle() -> None:
                if not waiter.done():
                    waiter.set_result(None)

            self._future.add_done_callback(lambda _: loop.call_soon_threadsafe(settle))
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


class DoneAndNotDoneFutures(NamedTuple, Generic[R]):
    """What :func:`wait` returns."""

    done: set[WfFuture[R]]
    not_done: set[WfFuture[R]]


def wait(futures: Iterable[WfFuture[R]], timeout: float | None = None) -> DoneAndNotDoneFutures[R]:
    """Wait for the futures: all of them, or until ``timeout`` seconds pass (on the run's
    clock: see the module's note on fake clocks).

    Returns ``(done, not_done)``.
    """
    futures = list(futures)
    if timeout is None:
        for future in futures:
            future._join()
        return DoneAndNotDoneFutures(set(futures), set())
    done = _wait_until(futures, timeout)
    return DoneAndNotDoneFutures(done, set(futures) - done)


def _wait_until(futures: list[WfFuture[R]], timeout: float) -> set[WfFuture[R]]:
    """Wait for ``futures`` up to ``timeout`` seconds; the ones done within it. Under a
    fake clock the waiter then continues from the latest of those (all done) or from the
    deadline (some not)."""
    clock = current_clock()
    virtual = timelines.is_virtual(clock)
    deadline = clock.monotonic() + timeout
    real_deadline = _realtime.monotonic() + timeout
    for future in futures:
        try:
            future._future.result(timeout=max(real_deadline - _realtime.monotonic(), 0))
        except TimeoutError:
            pass
        except BaseException:
            if not future._future.done():
                raise  # this thread was interrupted while waiting
    done = {f for f in futures if f._future.done()}
    if virtual:
        done = {f for f in done if (f._finished_at or 0.0) <= deadline}
        if len(done) < len(set(futures)):
            timelines.catch_up(clock, deadline)
    for future in done:
        future._catch_up()
    return done


def as_completed(
    futures: Iterable[WfFuture[R]], timeout: float | None = None
) -> Iterator[WfFuture[R]]:
    """Yield the futures as they finish.

    Under a fake clock: the runs that have finished (in real time) when the next one is
    asked for come earliest-in-virtual-time first, and a run that finished after the
    deadline (in virtual time) is not yielded; it counts as not done.

    Raises:
        TimeoutError: some did not finish within ``timeout`` seconds.
    """
    futures = list(dict.fromkeys(futures))
    finished: queue.SimpleQueue[WfFuture[R]] = queue.SimpleQueue()
    for future in futures:
        future.add_done_callback(finished.put)
    clock = current_clock()
    virtual = timelines.is_virtual(clock)
    deadline = None if timeout is None else clock.monotonic() + timeout
    real_deadline = None if timeout is None else _realtime.monotonic() + timeout
    unstarted = list(reversed(futures))
    pending = len(futures)
    late = 0
    while pending:
        if finished.empty() and _run_one_here(unstarted):
            continue
        remaining = None if real_deadline is None else max(real_deadline - _realtime.monotonic(), 0)
        try:
            batch = [finished.get(timeout=remaining)]
        except queue.Empty:
            break
        if virtual:  # the earliest (virtually) of those finished by now first
            while not finished.empty():
                batch.append(finished.get())
            batch.sort(key=lambda f: f._finished_at or 0.0)
        pending -= len(batch)
        for future in batch:
            if virtual and deadline is not None and (future._finished_at or 0.0) > deadline:
                late += 1
                continue
            future._catch_up()
            yield future
    if pending or late:
        if virtual and deadline is not None:
            timelines.catch_up(clock, deadline)
        raise TimeoutError(
            f"{pending + late} of {len(futures)} task runs did not finish within "
            f"{timeout!r} second(s)."
        )


def _run_one_here(unstarted: list[WfFuture[Any]]) -> bool:
    """Inside a bounded pool nobody may be free to start these: run one here (if its
    runner's future can). False when none is left to try."""
    while unstarted:
        run_if_queued = getattr(unstarted.pop()._future, "run_if_queued", None)
        if run_if_queued is not None:
            run_if_queued()
            return True
    return False
