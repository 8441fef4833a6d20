"""``RayTaskRunner``: task runs on a Ray cluster (the ``ray`` extra).

Prefect-ray's signature. As with :mod:`wfkit.task_runners.dask`, each task run executes on
a Ray worker under wfkit's own lifecycle, and its states, logs and cache writes come back
with its result to be recorded by the flow's process; cache reads go through the flow's
process. :func:`remote_options` gives the runs submitted in its block Ray resources
(``num_cpus``, ``num_gpus``, ``resources``, ``memory``...), as in Prefect.

A run's log lines are printed by the flow's process as it records them (when the run's
outcome comes back), not by the worker: Ray would ship each line of the worker's console to
the driver through its log monitor, which cost a sequential chain ~0.4 ms per link on 2
cores. What the task ``print()``s still goes through Ray's forwarding (``log_to_driver``).

A worker that dies while running a task: Ray runs the task again up to ``max_retries``
(Ray's default, 3; set it with ``remote_options(max_retries=0)``), then the run ends
``Crashed`` with a :class:`WorkerDiedError` naming the worker (its pid, node id and IP), if
the run had been running long enough to publish its start
(:data:`~wfkit.task_runners._live.DELAY`, 0.2 s). An ``address`` that nothing answers
fails the flow run's first submission within 10 s, naming it.
"""

from __future__ import annotations

import contextlib
import contextvars
import copyreg
import io
import os
import pickle
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any, Self

from wfkit.exceptions import ConfigurationError, MissingExtraError
from wfkit.logging import lines_shown_elsewhere
from wfkit.task_runners._cluster import (
    After,
    ClusterRunner,
    run_after_on_worker,
    run_chunk_on_worker,
)
from wfkit.task_runners._live import DELAY
from wfkit.task_runners._protocol import RemoteTaskRun

try:
    import ray
except ImportError as exc:
    raise MissingExtraError(
        f"wfkit.task_runners.ray needs the ray extra: pip install 'wfkit[ray]'. ({exc})"
    ) from exc

# Ray imports pydantic.v1 the first time it serializes anything, which may be inside a flow
# run under the test harness, whose frozen clock (freezegun's date class) breaks that
# import: it is imported now instead.
with contextlib.suppress(ImportError):
    import pydantic.v1.fields  # noqa: F401

__all__ = ["RayTaskRunner", "WorkerDiedError", "remote_options"]

_POLL_SECONDS = 0.25  # how often the flow's process collects the runs' starts

_options: contextvars.ContextVar[tuple[tuple[str, Any], ...]] = contextvars.ContextVar(
    "wfkit_ray_remote_options", default=()
)


@contextlib.contextmanager
def remote_options(**options: Any) -> Iterator[None]:
    """Ray options (``num_cpus=2``, ``resources={"GPU": 1}``, ``max_retries=0``...) for
    the task runs submitted in the block; nested blocks add to the outer one's.

    Raises:
        ConfigurationError: an option is not one Ray's ``.options()`` takes.
    """
    unknown = sorted(set(options) - _RAY_OPTIONS)
    if unknown:
        raise ConfigurationError(
            f"remote_options({', '.join(f'{k}=...' for k in unknown)}): not an option of Ray "
            f"tasks; use one of {', '.join(sorted(_RAY_OPTIONS))}."
        )
    merged = {**dict(_options.get()), **options}
    token = _options.set(tuple(sorted(merged.items(), key=lambda item: item[0])))
    try:
        yield
    finally:
        _options.reset(token)


_RAY_OPTIONS = frozenset(
    {
        "num_cpus", "num_gpus", "resources", "memory", "accelerator_type", "max_retries",
        "retry_exceptions", "scheduling_strategy", "runtime_env", "label_selector", "name",
    }
)  # fmt: skip


class RayTaskRunner(ClusterRunner):
    """Runs submitted tasks on Ray: a local Ray started for the flow run by default, or
    the cluster at ``address``. A Ray already initialized in this process is used as it is
    (and left running).

    Tasks are imported by name on the workers (define them at module level).

    Args:
        address: a Ray cluster address (``"ray://host:10001"``, ``"auto"``); default a
            local Ray.
        init_kwargs: more keyword arguments for ``ray.init``.

    Raises:
        ConfigurationError: ``init_kwargs`` is not a dict, or repeats ``address``.
    """

    def __init__(self, address: str | None = None, init_kwargs: dict[str, Any] | None = None):
        super().__init__()
        if init_kwargs is not None and not isinstance(init_kwargs, dict):
            raise ConfigurationError(
                f"RayTaskRunner(init_kwargs={init_kwargs!r}): init_kwargs must be a dict of "
                "ray.init() keyword arguments, or None."
            )
        if init_kwargs and "address" in init_kwargs:
            raise ConfigurationError(
                f"RayTaskRunner(init_kwargs={init_kwargs!r}): give the address as "
                "RayTaskRunner(address=...), not in init_kwargs."
            )
        self.address = address
        self.init_kwargs = dict(init_kwargs or {})
        self._started_ray = False
        self._run_chunk: Any = None
        self._run_after: Any = None
        self._channel: _LiveChannel | None = None
        self._mailbox_name = ""
        # The worker each run under way is running on, from its published start (so that a
        # dead worker's runs can name it: Ray's error does not).
        self._ran_on: dict[str, str] = {}

    def duplicate(self) -> Self:
        """A fresh, unstarted runner with the same settings (one per flow run)."""
        return type(self)(address=self.address, init_kwargs=self.init_kwargs)

    def _connect(self) -> int:
        if not ray.is_initialized():
            self._init_ray()
            self._started_ray = True
        self._run_chunk, self._run_after = _remote_functions()
        self._live_calls = {}
        self._channel = _LiveChannel.join(self)
        self._mailbox_name = self._channel.name
        return max(int(ray.cluster_resources().get("CPU", 1)), 1)

    def _init_ray(self) -> None:
        address = self.address
        problem = _unreachable(address)
        if problem is None:
            try:
                ray.init(**{"address": address, **self.init_kwargs})
                return
            # (SystemExit: how this Ray gives up on a cluster address that no cluster
            # answers, after a minute or two; ValueError: ray:// without the Ray Client)
            except (ConnectionError, ValueError, SystemExit) as exc:
                problem = f"{type(exc).__name__}: {exc}"
        raise ConnectionError(
            f"RayTaskRunner(address={address!r}): no Ray cluster answered ({problem}). "
            "Start one (`ray start --head`, which prints its address), or check the address."
        )

    def _group(self) -> Any:
        return _options.get()

    def _send_chunk(self, remotes: list[RemoteTaskRun], group: Any) -> Any:
        remote_fn = self._run_chunk.options(**dict(group)) if group else self._run_chunk
        ref = remote_fn.remote(_packed(remotes), self._mailbox_name)
        self._mark_sent(remotes, ref)
        return ref

    def _submit_after(self, remote: RemoteTaskRun, after: After, group: Any) -> Any:
        remote_fn = self._run_after.options(**dict(group)) if group else self._run_after
        # (the ObjectRefs as arguments of their own: Ray resolves only those)
        ref = remote_fn.remote(
            _packed(remote), self._mailbox_name, after.ids, after.indices, *after.futures
        )
        self._mark_sent([remote], ref)
        return _unpacked(self._get(ref, [remote]))

    def _submit_chunk(
        self, remotes: list[RemoteTaskRun], group: Any, deliver: Callable[[Any], None]
    ) -> None:
        future = self._send_chunk(remotes, group).future()
        future.add_done_callback(lambda done: deliver(self._result_or_error(done, remotes)))

    def _result_or_error(self, future: Any, remotes: list[RemoteTaskRun]) -> Any:
        try:
            return _unpacked(future.result())
        except Exception as exc:  # the chunk was lost: a dead worker, Ray shut down...
            # (no collecting here: Ray calls this on a thread of its own, which a ray.get
            # could block)
            return self._named(exc, remotes)

    def _get(self, ref: Any, remotes: list[RemoteTaskRun]) -> Any:
        try:
            return ray.get(ref)
        except ray.exceptions.WorkerCrashedError as exc:
            if self._channel is not None:  # (starts it left before it died, not collected)
                self._channel.collect()
            raise self._named(exc, remotes) from exc

    def _named(self, exc: Exception, remotes: list[RemoteTaskRun]) -> Exception:
        """``exc``, naming the worker if it is one that died, as far as it is known: a
        worker names itself in a run's published start (a run still running
        :data:`~wfkit.task_runners._live.DELAY` seconds after it started)."""
        if not isinstance(exc, ray.exceptions.WorkerCrashedError):
            return exc
        ids = [remote.task_run_id for remote in remotes]
        where = next((self._ran_on[i] for i in ids if i in self._ran_on), None)
        return WorkerDiedError(
            f"{exc} The task ran in {where}."
            if where is not None
            else f"{exc} Which worker ran the task is not known (a worker names itself "
            f"when a run has been running {DELAY} s, and none had)."
        )

    def _heard(self, task_run_id: str, event: Any, worker: str) -> None:
        """A run's start, published by ``worker``."""
        if task_run_id in (self._live_calls or {}):
            self._ran_on[task_run_id] = worker
            self._record_live(task_run_id, event)

    def _over(self, run_id: str) -> None:
        super()._over(run_id)
        self._ran_on.pop(run_id, None)

    def _failed(self, native: Any) -> bool:
        ready, _ = ray.wait([native], timeout=0)
        try:
            if ready:
                ray.get(native)
        except ray.exceptions.RaySystemError:  # (its result does not unpickle here)
            return False
        except ray.exceptions.RayError:  # (its task failed, or its worker died)
            return True
        return False

    def _run_chunk_now(self, remotes: list[RemoteTaskRun], group: Any) -> Any:
        return _unpacked(self._get(self._send_chunk(remotes, group), remotes))

    def _disconnect(self) -> None:
        self._run_chunk = self._run_after = None
        if self._channel is not None:
            self._channel.leave(self)
        if self._started_ray:
            self._started_ray = False
            _LiveChannel.close()
            with contextlib.suppress(Exception):  # (a Ray that is gone is gone)
                ray.shutdown()

    def __repr__(self) -> str:
        return f"RayTaskRunner(address={self.address!r})"


class _LiveChannel:
    """Live progress for the runners of this process on one Ray session: a mailbox actor
    in which workers leave runs' starts, and a thread that collects them every
    :data:`_POLL_SECONDS` for the runners listening (Ray has no channel from a task to the
    driver of its own).

    One per session, not per flow run: an actor is a worker process of its own, whose start
    (~0.7 s of CPU) a flow run's tasks would otherwise share the machine with. It lives as
    long as this process's connection to the cluster (an idle actor of no CPU).
    """

    _current: _LiveChannel | None = None
    _lock = threading.Lock()

    def __init__(self, session: Any) -> None:
        self.session = session
        # (named: a task gets the name, and only a run that publishes looks the actor up;
        # an actor handle as an argument of every task costs ~2 ms a task)
        self.name = f"wfkit-live-{uuid.uuid4().hex}"
        self.mailbox = _Mailbox.options(name=self.name).remote()  # type: ignore[attr-defined]
        self.runners: set[RayTaskRunner] = set()
        self.poller: threading.Thread | None = None
        self.stop = threading.Event()

    @classmethod
    def join(cls, runner: RayTaskRunner) -> _LiveChannel:
        """The channel of the current session (made if need be), listened to for
        ``runner`` until :meth:`leave`."""
        session = _session()
        with cls._lock:
            channel = cls._current
            if channel is None or channel.session != session or session is None:
                channel = cls._current = cls(session)
            channel.runners.add(runner)
            if channel.poller is None:
                channel.stop = threading.Event()
                channel.poller = threading.Thread(
                    target=channel._poll, args=(channel.stop,), name="wfkit-ray-live", daemon=True
                )
                channel.poller.start()
        return channel

    def leave(self, runner: RayTaskRunner) -> None:
        """Stop collecting starts for ``runner``; the last runner to leave stops the
        collecting thread (so that it never calls Ray after the flow run: Ray's calls start
        a new Ray when none is running)."""
        with self._lock:
            self.runners.discard(runner)
            if self.runners:
                return
            poller, self.poller = self.poller, None
            self.stop.set()
        if poller is not None:
            poller.join()
        if self.session is None:  # (a channel of its own: it goes with its runner)
            with contextlib.suppress(Exception):
                ray.kill(self.mailbox)

    @classmethod
    def close(cls) -> None:
        """Forget the current channel (its session is being shut down)."""
        with cls._lock:
            cls._current = None

    def _poll(self, stop: threading.Event) -> None:
        # (an Event's wait, not time.sleep: the test harness makes sleeps virtual)
        while not stop.wait(_POLL_SECONDS):
            if not self._any_start_to_hear():
                continue
            if not self.collect():  # Ray is going away: the outcomes carry the starts
                return

    def _any_start_to_hear(self) -> bool:
        """Whether a run under way may have published its start: a run publishes once it
        has run DELAY seconds, so none has while every run under way was submitted less
        than that ago (each link of a chain of quick runs). Each collection is an actor
        call, whose CPU a chain of quick runs on a small machine felt (3-5% of a core)."""
        with self._lock:
            runners = list(self.runners)
        return any(runner.longest_under_way() >= DELAY for runner in runners)

    def collect(self) -> bool:
        """Hand the starts left in the mailbox to the runners; False if Ray is gone."""
        with self._lock:
            runners = list(self.runners)
        try:
            events = ray.get(self.mailbox.take.remote())
        except Exception:
            return False
        for task_run_id, event, worker in events:
            for runner in runners:
                runner._heard(task_run_id, event, worker)
        return True


def _remote_functions() -> tuple[Any, Any]:
    """The Ray remote functions of the workers' two entries, one pair per Ray session: a
    new pair per flow run cost each flow run ~1.4 ms (Ray exports a new function to the
    cluster on its first call), a third of a one-task flow run's time."""
    global _functions
    session = _session()
    known = _functions
    if known is None or known[0] != session or session is None:
        known = _functions = (session, ray.remote(_run_chunk_on_ray), ray.remote(_run_after_on_ray))
    return known[1], known[2]


_functions: tuple[Any, Any, Any] | None = None  # (Ray session, chunk entry, after entry)


def _session() -> Any:
    """What tells this process's Ray sessions apart (None if Ray does not say)."""
    try:
        context = ray.get_runtime_context()
        return (context.get_job_id(), context.get_node_id())
    except Exception:  # (a Ray client connection, say: a channel per flow run)
        return None


@ray.remote(num_cpus=0)
class _Mailbox:
    """Runs' starts left by workers, taken by the flow's process (an actor of no CPU)."""

    def __init__(self) -> None:
        self.events: list[Any] = []

    def put(self, event: Any) -> None:
        self.events.append(event)

    def take(self) -> list[Any]:
        events, self.events = self.events, []
        return events


def _publisher(mailbox_name: str) -> Callable[[str, Any], None]:
    def publish(task_run_id: str, event: Any) -> None:
        mailbox = _mailboxes.get(mailbox_name)
        if mailbox is None:
            mailbox = _mailboxes[mailbox_name] = ray.get_actor(mailbox_name)
        mailbox.put.remote((task_run_id, event, _this_worker()))

    return publish


def _this_worker() -> str:
    """This Ray worker process, as a dead worker's runs name it."""
    global _worker
    if _worker is None:
        node = ray.get_runtime_context().get_node_id()
        _worker = f"Ray worker pid {os.getpid()} on node {node} ({ray.util.get_node_ip_address()})"
    return _worker


_worker: str | None = None


# Runs go to the workers, and their outcomes come back, as bytes pickled by the runner: Ray
# passes bytes through as they are, where an object costs its serializer ~0.15 ms more per
# task each way (msgpack around cloudpickle, whose every class and function goes through a
# Python hook). Only what plain pickle takes as cloudpickle would goes so: anything else
# (a class or function of __main__, which cloudpickle sends by value; what pickle refuses;
# numpy arrays and other out-of-band buffers, which Ray hands over without copies; Ray's
# own ObjectRefs and actor handles, which it must count) goes to Ray as the object itself.
def _packed(value: Any) -> Any:
    """``value`` as bytes to hand to Ray, or ``value`` itself for Ray's own serializer."""
    if ray.cloudpickle.list_registry_pickle_by_value():  # (modules cloudpickle sends whole)
        return value
    buffers: list[Any] = []
    file = io.BytesIO()
    pickler = pickle.Pickler(file, 5, buffer_callback=buffers.append)
    pickler.dispatch_table = {**copyreg.dispatch_table, **_RAYS_OWN}
    try:
        pickler.dump(value)
    except Exception:  # (Ray's serializer tries, and says what it cannot take)
        return value
    data = file.getvalue()
    return value if buffers or b"__main__" in data else data


def _unpacked(value: Any) -> Any:
    return pickle.loads(value) if isinstance(value, bytes) else value


def _for_ray(value: Any) -> Any:
    raise TypeError(f"{type(value).__name__}: for Ray's own serializer")


_RAYS_OWN: dict[type, Callable[[Any], Any]] = {
    ray.ObjectRef: _for_ray,
    ray.actor.ActorHandle: _for_ray,
}


def _run_chunk_on_ray(remotes: Any, mailbox_name: str) -> Any:
    """A Ray worker's entry: run a chunk (packed), leaving the starts of long runs in the
    mailbox actor named ``mailbox_name``; the chunk's result, packed. The runs' log lines
    are shown by the flow's process, not sent to it by Ray's log monitor."""
    with lines_shown_elsewhere():
        return _packed(run_chunk_on_worker(_unpacked(remotes), _publisher(mailbox_name)))


def _run_after_on_ray(
    remote: Any, mailbox_name: str, ids: list[str], indices: list[int], *results: Any
) -> Any:
    """A Ray worker's entry for a run with upstream ObjectRefs (Ray resolved them to their
    chunks' packed results)."""
    upstream = [_unpacked(result) for result in results]
    with lines_shown_elsewhere():
        outcome = run_after_on_worker(
            _unpacked(remote), ids, indices, upstream, _publisher(mailbox_name)
        )
    return _packed(outcome)


_mailboxes: dict[str, Any] = {}  # (in a worker: the mailbox actors it has looked up)


def _unreachable(address: str | None) -> str | None:
    """Why nothing answers at a cluster ``address`` (``host:port`` or ``ray://host:port``),
    found within :data:`_CONNECT_TIMEOUT` seconds, or None (it answers, or it is not such an
    address: ``"auto"``, None). Ray itself waits a minute or two before it gives up."""
    host, _, port = (address or "").removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return None
    try:
        socket.create_connection((host.strip("[]"), int(port)), _CONNECT_TIMEOUT).close()
    except OSError as exc:
        return f"nothing answers at {host}:{port} within {_CONNECT_TIMEOUT:g} s: {exc}"
    return None


_CONNECT_TIMEOUT = 10.0  # seconds a cluster's address has to answer


class WorkerDiedError(ray.exceptions.WorkerCrashedError):
    """Ray's worker died while running a task run: Ray's ``WorkerCrashedError``, naming
    the worker where it is known."""

    def __init__(self, message: str) -> None:
        Exception.__init__(self, message)

    def __str__(self) -> str:
        return str(self.args[0])
