"""What the Dask and Ray runners share: task runs sent to a cluster's workers, their
states, logs and cache writes recorded back in the flow's process.

Each submitted run becomes a :class:`~wfkit.task_runners._jobs.Job` on a pool of threads of
this process. The thread hands the run's picklable form to the cluster
(``TaskRunCall.run_remote``) and waits for its outcome, which the engine then replays into
the flow's store. The threads only wait on the network, so there are many of them: enough
to keep every worker of a large cluster busy.

Dependencies resolve on the cluster: a run whose upstream runs were all sent by this runner
goes as soon as they have been sent, with their native futures (Dask futures, Ray
ObjectRefs) among its inputs, so the cluster's scheduler orders the work and the worker
gets the upstream outcomes directly (:func:`run_after_on_worker`). Other runs (an upstream
from another runner, or already over; a cache policy or tag limits) wait here for their
upstream and ship its values.
"""

from __future__ import annotations

import contextvars
import functools
import math
import pickle
import threading
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import wfkit._realtime as _realtime
from wfkit.exceptions import SerializationError, UpstreamTaskError
from wfkit.states import Crashed
from wfkit.task_runners._chunks import ChunkSender, run_chunk
from wfkit.task_runners._jobs import Job
from wfkit.task_runners._live import LiveStarts
from wfkit.task_runners._pools import ThreadPoolTaskRunner, _PoolRunner, unserializable
from wfkit.task_runners._protocol import RemoteTaskRun, TaskRunCall

__all__ = ["ClusterRunner", "UnserializableArgument", "run_after_on_worker", "run_chunk_on_worker"]

# Runs under way at once (threads of this process waiting for their upstream or their
# outcome); their chunks keep the cluster busy.
_IN_FLIGHT = 256


class After(NamedTuple):
    """A run's upstream runs that the cluster resolves: their ids, and where their outcomes
    are, at ``indices[i]`` of the result of the cluster task of native future
    ``futures[i]``."""

    ids: list[str]
    indices: list[int]
    futures: list[Any]


class _Handle:
    """A run under way: once it has been sent, the native future of the cluster task that
    runs it and its index in that task's results. (An event per run: with one condition
    for all, each run sent woke every thread waiting to send a run downstream of another,
    a few hundred at the start of a chain of futures.)"""

    __slots__ = ("sent", "over", "future", "index", "since")

    def __init__(self) -> None:
        self.sent = threading.Event()  # (set once sent, or over)
        self.over = False
        self.future: Any = None
        self.index = 0
        # (when it was submitted, in real time: read through the module, which the test
        # harness's frozen time leaves alone, unlike a function bound here by name)
        self.since = _realtime.monotonic()


class UnserializableArgument(SerializationError):
    """An argument of a task run cannot be serialized to go to the cluster (the run is
    recorded Failed)."""


class ClusterRunner(_PoolRunner):
    """A runner whose task runs execute on a cluster's workers (sync and async tasks).

    Subclasses connect in :meth:`_connect` (called once, on the first submission; returns
    how many runs the cluster runs at once), send a chunk of runs with :meth:`_submit_chunk`
    (see :mod:`wfkit.task_runners._chunks`) and let go of the cluster in
    :meth:`_disconnect`.
    """

    _thread_name = "wfkit-cluster"
    #: what the cluster pickles arguments with (named in serialization errors)
    serializer = "cloudpickle"

    def __init__(self) -> None:
        super().__init__(max_workers=None)
        self._chunks: ChunkSender | None = None
        self._connect_lock = threading.Lock()
        # The calls under way by id, for runners whose workers publish runs' starts (a
        # subclass with a live channel sets it to a dict).
        self._live_calls: dict[str, TaskRunCall] | None = None
        # The runs under way, for the runs that depend on them: where each went once sent.
        self._handles: dict[str, _Handle] = {}

    def _default_workers(self) -> int:
        return _IN_FLIGHT

    def _submit_call(self, call: TaskRunCall, is_async: bool) -> Job:
        call.check_remote()  # TypeError: a worker cannot import the task
        chunks = self._chunks
        if chunks is None:
            with self._connect_lock:
                self._check_open()
                if self._chunks is None:
                    # (in an empty context: the cluster client's own coroutines, scheduled
                    # from this thread, must not see the run, or the test harness's virtual
                    # sleeps would reach them)
                    slots = contextvars.Context().run(self._connect)
                    self._chunks = ChunkSender(
                        self._submit_chunk, 2 * slots, self._unserializable, self._run_chunk_now
                    )
                chunks = self._chunks
        send = functools.partial(self._send, chunks)
        job = Job(call, functools.partial(call.run_remote, send, self._native))
        run_id = call.task_run_id
        self._handles[run_id] = _Handle()
        if self._live_calls is not None:  # its start may come back before its outcome
            self._live_calls[run_id] = call
        job.add_done_callback(lambda _: self._over(run_id))
        return self._queue(job)

    def _over(self, run_id: str) -> None:
        handle = self._handles.pop(run_id, None)
        if handle is not None:
            handle.over = True
            handle.sent.set()
        if self._live_calls is not None:
            self._live_calls.pop(run_id, None)

    def longest_under_way(self) -> float:
        """Seconds since the oldest run still under way was submitted (0.0: none is)."""
        try:
            # (the first handle is the oldest: they are kept in submission order)
            oldest = next(iter(self._handles.values()))
        except StopIteration:
            return 0.0
        except RuntimeError:  # (changed by another thread as we looked: look again later)
            return math.inf
        return _realtime.monotonic() - oldest.since

    def _mark_sent(self, remotes: list[RemoteTaskRun], future: Any) -> None:
        """``remotes`` went to the cluster as the task of ``future`` (for subclasses)."""
        handles = self._handles
        for index, remote in enumerate(remotes):
            handle = handles.get(remote.task_run_id)
            if handle is not None:
                handle.future, handle.index = future, index
                handle.sent.set()

    def _native(self, upstream_ids: tuple[str, ...]) -> Callable[[RemoteTaskRun], Any] | None:
        """A send for a run whose upstream runs are ``upstream_ids``: once they have gone
        to the cluster, it goes with their native futures; None if one of them is not this
        runner's to send (or is over: its value is in this process already)."""
        after = After(list(upstream_ids), [], [])
        for run_id in upstream_ids:
            handle = self._handles.get(run_id)
            if handle is None:
                return None
            handle.sent.wait()
            if handle.over:
                return None
            after.futures.append(handle.future)
            after.indices.append(handle.index)
        return functools.partial(self._send_after, after)

    def _send_after(self, after: After, remote: RemoteTaskRun) -> Any:
        group = self._group()  # (read in the submitter's context; sent from an empty one)
        try:
            [(outcome, error)] = contextvars.Context().run(self._submit_after, remote, after, group)
        except Exception as exc:  # (lost, an upstream lost, or it could not be sent)
            problem = self._unserializable(remote)
            if problem is not None:
                raise problem from None
            lost = [
                run_id
                for run_id, future in zip(after.ids, after.futures, strict=True)
                if self._failed(future)
            ]
            if lost:  # (the cluster never ran it: the flow's process decides what follows)
                raise UpstreamTaskError(
                    f"the cluster lost upstream task run(s) {', '.join(lost)}: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            raise
        if error is not None:
            raise error
        return unpickled(outcome)

    def _record_live(self, task_run_id: str, event: Any) -> None:
        """Hand an event a worker published for ``task_run_id`` to its call."""
        call = (self._live_calls or {}).get(task_run_id)
        if call is not None:
            call.record_live(event)

    def _send(self, chunks: ChunkSender, remote: RemoteTaskRun) -> Any:
        # (called in a copy of the submitter's context: what it set there, such as Ray's
        # remote_options, picks the run's group)
        return unpickled(chunks.send(remote, self._group()))

    def _unserializable(self, remote: RemoteTaskRun) -> SerializationError | None:
        """Which argument of ``remote`` cannot be serialized (None if all can)."""
        import cloudpickle  # (a dependency of both extras; only a failed send needs it here)

        return unserializable(remote, cloudpickle.dumps, self.serializer, UnserializableArgument)

    def shutdown(self, wait: bool = True) -> None:
        """Take no more work; with ``wait``, return once every submitted run is over. Then
        let go of the cluster (closing it if this runner started it)."""
        super().shutdown(wait)
        with self._connect_lock:
            chunks, self._chunks = self._chunks, None
            self._closed = True
        if chunks is not None:
            chunks.close(wait)
            self._disconnect()

    # for subclasses -----------------------------------------------------------------------
    def _connect(self) -> int:
        raise NotImplementedError

    def _group(self) -> Any:
        """What runs sent together must share (hashable; read in the submitter's context)."""
        return None

    def _submit_chunk(
        self, remotes: list[RemoteTaskRun], group: Any, deliver: Callable[[Any], None]
    ) -> None:
        raise NotImplementedError

    def _run_chunk_now(self, remotes: list[RemoteTaskRun], group: Any) -> Any:
        """Send a chunk and wait for its result here (see :class:`ChunkSender`)."""
        raise NotImplementedError

    def _submit_after(self, remote: RemoteTaskRun, after: After, group: Any) -> Any:
        """Send ``remote`` alone as a cluster task whose inputs include the native futures
        ``after.futures``, calling :meth:`_mark_sent`; wait for its result, a chunk result
        of one run (the worker calls :func:`run_after_on_worker`)."""
        raise NotImplementedError

    def _failed(self, native: Any) -> bool:
        """Whether the cluster task of ``native`` (a native future) failed as a whole."""
        raise NotImplementedError

    def _disconnect(self) -> None:
        raise NotImplementedError


def run_after_on_worker(
    remote: RemoteTaskRun,
    upstream_ids: Sequence[str],
    indices: Sequence[int],
    results: Sequence[Any],
    publish: Callable[[str, Any], object] | None = None,
) -> Any:
    """A cluster worker's entry for a run sent with its upstream's native futures:
    ``results`` are the chunk results the cluster resolved them to, the upstream run
    ``upstream_ids[i]`` at ``indices[i]`` of ``results[i]``. Their final states go into
    the run's arguments, then it runs as a chunk of one."""
    states = {}
    for run_id, index, result in zip(upstream_ids, indices, results, strict=True):
        outcome, error = result[index]
        outcome = unpickled(outcome)
        states[run_id] = (
            outcome.state
            if error is None
            else Crashed(message=f"{type(error).__name__}: {error}", exception=error)
        )
    remote.resolve_upstream(states)
    return run_chunk_on_worker([remote], publish)


def run_on_worker(remote: RemoteTaskRun, publish: Callable[[Any], object] | None = None) -> Any:
    """Run ``remote`` here, a cluster worker (what it submits runs on a thread pool in
    this worker; ``publish`` sends its start ahead); its outcome, for the flow's process:
    pickled already where plain pickle takes it (see :class:`Pickled`).

    Raises:
        SerializationError: the outcome (the task's result) cannot be pickled.
    """
    outcome = remote.execute(task_runner=ThreadPoolTaskRunner(), publish=publish, picklable=False)
    buffers: list[Any] = []
    try:
        data = pickle.dumps(outcome, 5, buffer_callback=buffers.append)
    except Exception:
        data = None
        outcome = outcome.made_picklable()  # (its value or exception, if they are the cause)
    # (out-of-band buffers, such as numpy arrays', the cluster carries without copies; a
    # reference to __main__ would not unpickle in the flow's process: both go as objects)
    if data is not None and not buffers and b"__main__" not in data:
        return Pickled(data)
    if data is None:
        # (what pickle refuses, cloudpickle may take, as both clusters would: a lambda, an
        # instance of a class of the flow's __main__, sent here by value)
        import cloudpickle  # (a dependency of both extras; only this case needs it)

        try:
            cloudpickle.dumps(outcome)
        except Exception as exc:
            raise SerializationError(
                f"the result of task run {remote.task_run_id} cannot be serialized by cloudpickle "
                f"to go back to the flow's process: {type(exc).__name__}: {exc}. Return plain "
                "data (or save the object and return its path or key)."
            ) from None
    return outcome


class Pickled:
    """An outcome pickled on the worker, that the cluster carries as those bytes and that
    unpickles as the outcome itself. (Pickling it is the check that it can go back at all;
    the cluster's own pickling of the chunk then copies the bytes rather than pickling the
    outcome a second time, ~10 µs per run.)"""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __reduce__(self) -> tuple[Any, ...]:
        return (pickle.loads, (self.data,))


def unpickled(outcome: Any) -> Any:
    """``outcome``, unpickled if the cluster handed it over as it was (a result it keeps in
    the process that made it: a worker's own, or a cluster of threads in this process)."""
    return pickle.loads(outcome.data) if isinstance(outcome, Pickled) else outcome


def run_chunk_on_worker(
    remotes: list[RemoteTaskRun], publish: Callable[[str, Any], object] | None = None
) -> Any:
    """A cluster worker's entry: run a chunk of task runs, one after another; ``publish``
    is called with ``(task_run_id, event)`` for the start of each run still running a
    moment later (see :mod:`wfkit.task_runners._live`)."""

    def run_one(remote: RemoteTaskRun) -> Any:
        if publish is None:
            return run_on_worker(remote)
        send = functools.partial(publish, remote.task_run_id)
        held: list[Any] = []
        try:
            return run_on_worker(remote, lambda event: held.append(_starts.hold(send, event)))
        finally:
            for start in held:
                _starts.cancel(start)

    return run_chunk(remotes, run_one)


_starts = LiveStarts()  # (in a worker process: the starts its runs publish)
