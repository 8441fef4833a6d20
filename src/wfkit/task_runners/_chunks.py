"""Sending remote task runs to a cluster in chunks.

A cluster charges a fixed cost per task it schedules (about 1.7 ms on a local Dask cluster),
some fifty times what wfkit spends on a task run. :class:`ChunkSender` takes the runs that
threads of the flow's process send, and hands them to the cluster a chunk at a time: one
cluster task runs a chunk's runs one after another on a worker, each still its own task run
with its own lifecycle, states, retries and logs.

The chunks size themselves. A chunk is sent as soon as fewer than ``max_in_flight`` chunks
are out, with every run waiting then (a lone run, such as each link of a
``submit().result()`` chain, goes at once, alone). Its size is capped so that a chunk takes
about :data:`TARGET_SECONDS` on a worker, measured from the chunks that came back: long runs
go one per cluster task, exactly as without chunks; trivial ones up to :data:`MAX_CHUNK`.

What it costs: the runs of one chunk share a worker's thread, so they run one after another
(only runs of under ``TARGET_SECONDS / MAX_CHUNK`` each share one); and when the worker
dies, every run of its chunk ends Crashed (or is run again by the cluster), not only the one
that was running.
"""

from __future__ import annotations

import contextvars
import pickle
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from wfkit.task_runners._protocol import RemoteTaskRun

__all__ = ["ChunkSender", "run_chunk"]

TARGET_SECONDS = 0.05  # how long a chunk should take on a worker
MAX_CHUNK = 64  # runs in one cluster task at most

# What the cluster hands back for a chunk: per run, (outcome, None) or (None, error).
ChunkResult = list[tuple[Any, BaseException | None]]
# submit_chunk(runs, group, deliver): send the runs (of one group) as one cluster task; call
# deliver(result or the exception that lost it) once it is over, from any thread.
SubmitChunk = Callable[[list[RemoteTaskRun], Any, Callable[[Any], None]], None]


class _Slot:
    """One run waiting in :meth:`ChunkSender.send` for its outcome."""

    __slots__ = ("remote", "group", "outcome", "error", "done")

    def __init__(self, remote: RemoteTaskRun, group: Any) -> None:
        self.remote = remote
        self.group = group
        self.outcome: Any = None
        self.error: BaseException | None = None
        self.done = threading.Event()


class ChunkSender:
    """Sends the runs given to :meth:`send` (from many threads) in self-sizing chunks.

    Args:
        submit_chunk: sends a chunk to the cluster (see :data:`SubmitChunk`).
        max_in_flight: chunks out at once (about twice the cluster's worker threads keeps
            every thread busy while chunks travel).
        diagnose: given a run of a chunk that could not be sent, the error that run alone
            would meet (an argument that cannot be serialized), or None.
        run_now: sends a chunk and waits for its result in the calling thread (raising
            what would lose it), for a lone run; None: lone runs go by ``submit_chunk``.
    """

    def __init__(
        self,
        submit_chunk: SubmitChunk,
        max_in_flight: int,
        diagnose: Callable[[RemoteTaskRun], BaseException | None],
        run_now: Callable[[list[RemoteTaskRun], Any], Any] | None = None,
    ) -> None:
        self._submit_chunk = submit_chunk
        self._run_now = run_now
        self._max_in_flight = max(1, max_in_flight)
        self._diagnose = diagnose
        self._pending: deque[_Slot] = deque()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._in_flight = 0
        self._seconds_per_run = TARGET_SECONDS  # (first chunks: one run each, then measured)
        self._closed = False
        self._thread: threading.Thread | None = None

    def send(self, remote: RemoteTaskRun, group: Any = None) -> Any:
        """Send ``remote`` with the next chunk and wait for its outcome (what its
        ``execute()`` returned on the worker). A chunk holds runs of one ``group`` (runs
        that the cluster runs with the same options).

        Raises:
            Exception: the run was lost (its worker died, the cluster went away), or could
                not be sent (an argument that cannot be serialized).
        """
        slot = _Slot(remote, group)
        with self._lock:
            if self._closed:
                raise RuntimeError("the task runner is shut down; it sends no more task runs")
            alone = not self._in_flight and not self._pending
            if alone:  # (nothing to group it with: it goes from here, a thread handoff less)
                self._in_flight += 1
        if alone:
            # (in an empty context, as the sending thread: see below)
            contextvars.Context().run(self._submit_alone, slot, group)
            return self._wait(slot)
        with self._lock:
            self._pending.append(slot)
            if self._thread is None:
                # (a new thread starts in an empty context: the cluster client's coroutines,
                # scheduled from it, never see a run's context)
                self._thread = threading.Thread(
                    target=self._flush_forever, name="wfkit-chunks", daemon=True
                )
                self._thread.start()
            self._changed.notify_all()
        return self._wait(slot)

    @staticmethod
    def _wait(slot: _Slot) -> Any:
        slot.done.wait()
        if slot.error is not None:
            raise slot.error
        return slot.outcome

    def close(self, wait: bool = True) -> None:
        """Send no more runs. With ``wait``, send what is waiting first and stop the sending
        thread; without, the runs waiting fail at once (the runs out finish either way)."""
        with self._lock:
            self._closed = True
            thread = self._thread
            dropped = [] if wait else list(self._pending)
            if not wait:
                self._pending.clear()
            self._changed.notify_all()
        for slot in dropped:
            slot.error = RuntimeError("the task runner was shut down before the run was sent")
            slot.done.set()
        if wait and thread is not None and thread is not threading.current_thread():
            thread.join()

    # the sending thread -------------------------------------------------------------------
    def _flush_forever(self) -> None:
        while True:
            with self._lock:
                while not self._pending or self._in_flight >= self._max_in_flight:
                    if self._closed and not self._pending:
                        return
                    self._changed.wait()
                size = max(1, min(MAX_CHUNK, int(TARGET_SECONDS / self._seconds_per_run)))
                chunk = self._take(size)
                self._in_flight += 1
            self._submit(chunk, chunk[0].group)

    def _take(self, size: int) -> list[_Slot]:
        """Up to ``size`` waiting runs of the first one's group, in order."""
        pending = self._pending
        first = pending.popleft()
        chunk = [first]
        others: list[_Slot] = []
        while pending and len(chunk) < size:
            slot = pending.popleft()
            (chunk if slot.group == first.group else others).append(slot)
        pending.extendleft(reversed(others))
        return chunk

    def _submit_alone(self, slot: _Slot, group: Any) -> None:
        """Send a lone run from the calling thread, and wait for it there if the cluster
        can (no callback thread to hand its outcome over)."""
        if self._run_now is None:
            self._submit([slot], group)
            return
        started = time.perf_counter()
        try:
            result = self._run_now([slot.remote], group)
        except Exception as exc:  # lost, or could not be sent
            result = exc
        self._delivered([slot], started, result)

    def _submit(self, chunk: list[_Slot], group: Any) -> None:
        started = time.perf_counter()

        def deliver(result: Any) -> None:
            self._delivered(chunk, started, result)

        try:
            self._submit_chunk([slot.remote for slot in chunk], group, deliver)
        except Exception as exc:  # nothing of it ran: it could not be sent
            deliver(exc)

    def _delivered(self, chunk: list[_Slot], started: float, result: Any) -> None:
        with self._lock:
            self._in_flight -= 1
            if not isinstance(result, BaseException):
                per_run = (time.perf_counter() - started) / len(chunk)
                self._seconds_per_run = 0.5 * self._seconds_per_run + 0.5 * per_run
            self._changed.notify_all()
        if isinstance(result, BaseException):
            self._lost(chunk, result)
            return
        for slot, (outcome, error) in zip(chunk, result, strict=True):
            slot.outcome, slot.error = outcome, error
            slot.done.set()

    def _lost(self, chunk: list[_Slot], error: BaseException) -> None:
        """A chunk came back as an error: the runs that cannot be sent get their own error;
        if any could not, the chunk never ran, and the others go again, alone."""
        problems = [self._diagnose(slot.remote) for slot in chunk]
        retry = len(chunk) > 1 and any(problem is not None for problem in problems)
        for slot, problem in zip(chunk, problems, strict=True):
            if problem is None and retry:
                with self._lock:
                    self._in_flight += 1
                self._submit([slot], slot.group)
                continue
            slot.error = problem or error
            slot.done.set()


def run_chunk(
    remotes: Sequence[RemoteTaskRun], run_one: Callable[[RemoteTaskRun], Any]
) -> ChunkResult:
    """A worker's side: run each of ``remotes`` with ``run_one``, in order; each run's
    outcome or error (made picklable), so that one run's failure is its own."""
    results: ChunkResult = []
    for remote in remotes:
        try:
            results.append((run_one(remote), None))
        except Exception as exc:  # that run's error, for the flow's process
            try:
                pickle.dumps(exc)
            except Exception:
                exc = RuntimeError(f"{type(exc).__name__}: {exc}")
            results.append((None, exc))
    return results
