"""What the Dask and Ray runners share: task runs sent to a cluster's workers, their
states, logs and cache writes recorded back in the flow's process.

Each submitted run becomes a :class:`~wfkit.task_runners._jobs.Job` on a pool of threads of
this process. The thread waits for the run's upstream, hands the run's picklable form to the
cluster (``TaskRunCall.run_remote``) and waits for its outcome, which the engine then
replays into the flow's store. The threads only wait on the network, so there are many of
them: enough to keep every worker of a large cluster busy.
"""

from __future__ import annotations

import contextvars
import functools
import pickle
import threading
from typing import Any

from wfkit.task_runners._jobs import Job
from wfkit.task_runners._pools import ThreadPoolTaskRunner, _PoolRunner
from wfkit.task_runners._protocol import RemoteTaskRun, TaskRunCall

__all__ = ["ClusterRunner", "UnserializableArgument", "run_on_worker"]

# Runs in flight at once (threads of this process waiting on the cluster). Past a few
# hundred, the threads cost more than the cluster gains from a longer queue.
_IN_FLIGHT = 256


class UnserializableArgument(TypeError):
    """An argument of a task run cannot be serialized to go to the cluster."""


class ClusterRunner(_PoolRunner):
    """A runner whose task runs execute on a cluster's workers (sync and async tasks).

    Subclasses connect in :meth:`_connect` (called once, on the first submission), send a
    run with :meth:`_send` and let go of the cluster in :meth:`_disconnect`.
    """

    _thread_name = "wfkit-cluster"
    #: what the cluster pickles arguments with (named in serialization errors)
    serializer = "cloudpickle"

    def __init__(self) -> None:
        super().__init__(max_workers=None)
        self._connected = False
        self._connect_lock = threading.Lock()

    def _default_workers(self) -> int:
        return _IN_FLIGHT

    def _submit_call(self, call: TaskRunCall, is_async: bool) -> Job:
        call.check_remote()  # TypeError: a worker cannot import the task
        if not self._connected:
            with self._connect_lock:
                self._check_open()
                if not self._connected:
                    contextvars.Context().run(self._connect)
                    self._connected = True
        return self._queue(Job(call, functools.partial(call.run_remote, self._send_checked)))

    def _send_checked(self, remote: RemoteTaskRun) -> Any:
        try:
            # In an empty context: the cluster client's own coroutines (scheduled from this
            # thread, so in its context) must not see the run, or the test harness's
            # virtual sleeps would reach them.
            return contextvars.Context().run(self._send, remote)
        except Exception as exc:
            problem = self._unserializable(remote)
            if problem is not None:
                raise problem from exc
            raise

    def _unserializable(self, remote: RemoteTaskRun) -> UnserializableArgument | None:
        """Which argument of ``remote`` cannot be serialized (None if all can)."""
        import cloudpickle  # (a dependency of both extras; only a failed send needs it here)

        arguments: dict[str, Any] = getattr(remote, "arguments", {})
        for name, value in arguments.items():
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
            connected, self._connected = self._connected, False
            self._closed = True
        if connected:
            self._disconnect()

    # for subclasses -----------------------------------------------------------------------
    def _connect(self) -> None:
        raise NotImplementedError

    def _send(self, remote: RemoteTaskRun) -> Any:
        raise NotImplementedError

    def _disconnect(self) -> None:
        raise NotImplementedError


def run_on_worker(remote: RemoteTaskRun) -> Any:
    """A cluster worker's entry: run the task there (what it submits runs on a thread pool
    in that worker); the outcome goes back to the flow's process.

    Raises:
        UnserializableArgument: the outcome (the task's result) cannot be pickled.
    """
    outcome = remote.execute(task_runner=ThreadPoolTaskRunner())
    try:
        pickle.dumps(outcome)
    except Exception as exc:
        raise TypeError(
            f"the result of task run {remote.task_run_id} cannot be pickled to go back to the "
            f"flow's process: {type(exc).__name__}: {exc}. Return plain data."
        ) from None
    return outcome
