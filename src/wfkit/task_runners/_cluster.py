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
import pickle
import threading
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from wfkit.exceptions import UpstreamTaskError
from wfkit.states import Crashed
from wfkit.task_runners._chunks import ChunkSender, run_chunk
from wfkit.task_runners._jobs import Job
from wfkit.task_runners._live import LiveStarts
from wfkit.task_runners._pools import ThreadPoolTaskRunner, _PoolRunner
from wfkit.task_runners._protocol import RemoteTaskRun, TaskRunCall

__all__ = ["ClusterRunner", "UnserializableArgument", "run_after_on_worker", "run_chunk_on_worker"]

# Runs under way at once (threads of this process waiting for their upstream or their
# outcome); their chunks keep the cluster busy.
_IN_FLIGHT = 256
_GONE: Any = object()  # (a run this runner is not sending: over, or not its own)


class After(NamedTuple):
    """A run's upstream runs that the cluster resolves: their ids, and where their outcomes
    are, at ``indices[i]`` of the result of the cluster task of native future
    ``futures[i]``."""

    ids: list[str]
    indices: list[int]
    futures: list[Any]


class UnserializableArgument(TypeError):
    """An argument of a task run cannot be serialized to go to the cluster."""


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
        # The runs under way: None until sent, then (the native future of the cluster task
        # that runs it, its index in that task's results), for the runs that depend on it.
        self._handles: dict[str, Any] = {}
        self._sent = threading.Condition()

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
        self._handles[run_id] = None
        if self._live_calls is not None:  # its start may come back before its outcome
            self._live_calls[run_id] = call
        job.add_done_callback(lambda _: self._over(run_id))
        return self._queue(job)

    def _over(self, run_id: str) -> None:
        with self._sent:
            self._handles.pop(run_id, None)
            self._sent.notify_all()
        if self._live_calls is not None:
            self._live_calls.pop(run_id, None)

    def _mark_sent(self, remotes: list[RemoteTaskRun], future: Any) -> None:
        """``remotes`` went to the cluster as the task of ``future`` (for subclasses)."""
        with self._sent:
            handles = self._handles
            for index, remote in enumerate(remotes):
                if remote.task_run_id in handles:
                    handles[remote.task_run_id] = (future, index)
            self._sent.notify_all()

    def _native(self, upstream_ids: tuple[str, ...]) -> Callable[[RemoteTaskRun], Any] | None:
        """A send for a run whose upstream runs are ``upstream_ids``: once they have gone
        to the cluster, it goes with their native futures; None if one of them is not this
        runner's to send (or is over: its value is in this process already)."""
        after = After(list(upstream_ids), [], [])
        with self._sent:
            for run_id in upstream_ids:
                while (handle := self._handles.get(run_id, _GONE)) is None:
                    self._sent.wait()
                if handle is _GONE:
                    return None
                after.futures.append(handle[0])
                after.indices.append(handle[1])
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
        return outcome

    def _record_live(self, task_run_id: str, event: Any) -> None:
        """Hand an event a worker published for ``task_run_id`` to its call."""
        call = (self._live_calls or {}).get(task_run_id)
        if call is not None:
            call.record_live(event)

    def _send(self, chunks: ChunkSender, remote: RemoteTaskRun) -> Any:
        # (called in a copy of the submitter's context: what it set there, such as Ray's
        # remote_options, picks the run's group)
        return chunks.send(remote, self._group())

    def _unserializable(self, remote: RemoteTaskRun) -> UnserializableArgument | None:
        """Which argument of ``remote`` cannot be serialized (None if all can)."""
        import cloudpickle  # (a dependency of both extras; only a failed send needs it here)

        for name, value in remote.arguments.items():
            try:
                cloudpickle.dumps(value)
            except Exception as exc:
                return UnserializableArgument(
                    f"argument {name!r} ({type(value).__name__}) cannot be serialized by "
                    f"{self.serializer} to go to the cluster's workers: "
                    f"{type(exc).__name__}: {exc}. Pass a value that pickles (plain data, "
                    "or a path or key the task opens itself), or use ThreadPoolTaskRunner."
                )
        return None

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
        states[run_id] = (
            outcome.state
            if error is None
            else Crashed(message=f"{type(error).__name__}: {error}", exception=error)
        )
    remote.resolve_upstream(states)
    return run_chunk_on_worker([remote], publish)


def run_on_worker(remote: RemoteTaskRun, publish: Callable[[Any], object] | None = None) -> Any:
    """Run ``remote`` here, a cluster worker (what it submits runs on a thread pool in
    this worker; ``publish`` sends its start ahead); its outcome, for the flow's process.

    Raises:
        TypeError: the outcome (the task's result) cannot be pickled (the message names
            pickle, and the type it refused).
    """
    outcome = remote.execute(task_runner=ThreadPoolTaskRunner(), publish=publish)
    try:
        # (plain pickle, not the cluster's cloudpickle: execute() drops a final value that
        # only cloudpickle takes, and such a run would complete with None for a result)
        pickle.dumps(outcome)
    except Exception as exc:
        raise TypeError(
            f"the result of task run {remote.task_run_id} cannot be serialized by pickle to "
            f"go back to the flow's process: {type(exc).__name__}: {exc}. Return plain data "
            "(or save the object and return its path or key)."
        ) from None
    return outcome


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
