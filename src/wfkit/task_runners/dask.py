"""``DaskTaskRunner``: task runs on a Dask cluster (the ``dask`` extra: ``distributed``).

Prefect-dask's signature and rules. Each task run executes on a Dask worker under wfkit's
own lifecycle (retries, timeouts, caching, hooks); its states, logs and cache writes come
back with its result and are recorded by the flow's process, so any store works, however
remote the workers are. Cache reads go through the flow's process too: it looks up the
run's cache record and sends it with the run, so cache hits work across workers.

A worker that dies while running a task: the scheduler runs the task again elsewhere (up to
its ``distributed.scheduler.allowed-failures``), then the run ends ``Crashed`` with the
worker's address in its message.
"""

from __future__ import annotations

import contextlib
import importlib
import pickle
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import CancelledError
from typing import Any, Self

from wfkit.context import flow_run_context
from wfkit.exceptions import ConfigurationError, MissingContextError, MissingExtraError
from wfkit.task_runners._cluster import (
    After,
    ClusterRunner,
    run_after_on_worker,
    run_chunk_on_worker,
)
from wfkit.task_runners._protocol import RemoteTaskRun

try:
    import distributed
except ImportError as exc:  # pragma: no cover - the extra is installed where tests run
    raise MissingExtraError(
        "wfkit.task_runners.dask needs the dask extra: pip install 'wfkit[dask]' "
        f"(it installs distributed). ({exc})"
    ) from exc

__all__ = ["DaskTaskRunner", "get_dask_client"]

_CONNECT_TIMEOUT = 10  # seconds to reach a scheduler at ``address`` (client_kwargs["timeout"])
_MIN_SLOTS = 2  # a cluster's worker threads, at least (one that has none yet gets some)
_ADAPTIVE_SLOTS = 128  # for an adaptive cluster, whose size follows the work


def _publisher(topic: str) -> Callable[[str, Any], None]:
    worker = distributed.get_worker()

    def publish(task_run_id: str, event: Any) -> None:
        worker.log_event(topic, pickle.dumps((task_run_id, event)))

    return publish


def _run_chunk_on_dask(remotes: list[RemoteTaskRun], topic: str) -> Any:
    """A Dask worker's entry: run a chunk, publishing each run's start on ``topic``."""
    return run_chunk_on_worker(remotes, _publisher(topic))


def _run_after_on_dask(
    remote: RemoteTaskRun, topic: str, ids: list[str], indices: list[int], results: list[Any]
) -> Any:
    """A Dask worker's entry for a run with upstream futures (Dask resolved them)."""
    return run_after_on_worker(remote, ids, indices, results, _publisher(topic))


def _result_or_error(future: Any, address: str) -> Any:
    try:
        return future.result()
    except CancelledError as exc:  # (not by wfkit: it never cancels what it sent)
        return ConnectionError(
            f"the Dask cluster at {address} went away while the run was on it "
            f"({type(exc).__name__}: {exc}). Keep the cluster up until the flow run ends "
            "(a cluster= you pass must outlive the flow run)."
        )
    except Exception as exc:  # the chunk was lost: a dead worker (KilledWorker)...
        return exc


def _copy_kwargs(value: Any, name: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigurationError(
            f"DaskTaskRunner({name}={value!r}): {name} must be a dict or None."
        )
    if "asynchronous" in value:
        raise ConfigurationError(
            f"DaskTaskRunner({name}={value!r}): {name} cannot set 'asynchronous'; the runner "
            "manages it (it talks to Dask from its own threads). Remove the key."
        )
    return dict(value)


def _check_where(
    cluster: Any, address: Any, cluster_class: Any, cluster_kwargs: Any, adapt_kwargs: Any
) -> None:
    """Prefect's rules: an address excludes the cluster arguments; a running cluster
    excludes the ones that would start one."""
    if address is not None and not isinstance(address, str):
        raise ConfigurationError(
            f"DaskTaskRunner(address={address!r}): address must be a scheduler address "
            "string such as 'tcp://127.0.0.1:8786'."
        )
    given = cluster is not None or cluster_class or cluster_kwargs or adapt_kwargs is not None
    if address and given:
        raise ConfigurationError(
            f"DaskTaskRunner(address={address!r}, ...): address connects to a running "
            "scheduler, so cluster, cluster_class, cluster_kwargs and adapt_kwargs cannot "
            "be given with it. Pass one or the other."
        )
    if cluster is not None and (cluster_class or cluster_kwargs):
        raise ConfigurationError(
            f"DaskTaskRunner(cluster={cluster!r}, ...): a running cluster is used as it is, "
            "so cluster_class and cluster_kwargs cannot be given with it."
        )


def _resolve_cluster_class(value: Any) -> Callable[..., Any] | None:
    if value is None or callable(value) and not isinstance(value, str):
        return value  # type: ignore[no-any-return]
    if not isinstance(value, str) or "." not in value:
        raise ConfigurationError(
            f"DaskTaskRunner(cluster_class={value!r}): give a cluster class, or its import path "
            "as a string such as 'distributed.LocalCluster'."
        )
    module_name, _, name = value.rpartition(".")
    try:
        found = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(
            f"DaskTaskRunner(cluster_class={value!r}): cannot import it ({type(exc).__name__}: "
            f"{exc}). Check the path, and install the package that provides the class."
        ) from exc
    if not callable(found):
        raise ConfigurationError(
            f"DaskTaskRunner(cluster_class={value!r}): {found!r} is not a class or callable."
        )
    return found  # type: ignore[no-any-return]


class DaskTaskRunner(ClusterRunner):
    """Runs submitted tasks on a Dask cluster: a temporary ``distributed.LocalCluster`` by
    default, one this runner starts from ``cluster_class``, a ``cluster`` you started, or an
    existing scheduler at ``address``.

    Tasks are imported by name on the workers (define them at module level); their
    arguments and results travel with cloudpickle. Each flow run uses its own duplicate of
    the runner, which closes the client (and the cluster it started) when the run ends.

    Args:
        cluster: a running ``distributed`` cluster to use (never closed by the runner).
        address: a scheduler address such as ``"tcp://10.0.0.5:8786"``; excludes the
            cluster arguments.
        cluster_class: the class (or its import path) of the temporary cluster to start;
            default ``distributed.LocalCluster``.
        cluster_kwargs: keyword arguments for ``cluster_class``.
        adapt_kwargs: if given, ``cluster.adapt(**adapt_kwargs)`` (adaptive scaling).
        client_kwargs: keyword arguments for ``distributed.Client``.

    Raises:
        ConfigurationError: an argument is invalid or conflicts with another (each message
            names it).
    """

    def __init__(
        self,
        cluster: Any = None,
        address: str | None = None,
        cluster_class: str | Callable[..., Any] | None = None,
        cluster_kwargs: dict[str, Any] | None = None,
        adapt_kwargs: dict[str, Any] | None = None,
        client_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        _check_where(cluster, address, cluster_class, cluster_kwargs, adapt_kwargs)
        self.cluster = cluster
        self.address = address or None
        self.cluster_class = _resolve_cluster_class(cluster_class)
        self.cluster_kwargs = _copy_kwargs(cluster_kwargs, "cluster_kwargs")
        # None: no adaptive scaling; a dict, even empty: cluster.adapt(**adapt_kwargs)
        self.adapt_kwargs = (
            None if adapt_kwargs is None else _copy_kwargs(adapt_kwargs, "adapt_kwargs")
        )
        self.client_kwargs = _copy_kwargs(client_kwargs, "client_kwargs")
        self.client_kwargs.setdefault("set_as_default", False)
        if adapt_kwargs is not None and not address:
            adapts = cluster if cluster is not None else self.cluster_class
            if adapts is not None and not callable(getattr(adapts, "adapt", None)):
                raise ConfigurationError(
                    f"DaskTaskRunner(adapt_kwargs={adapt_kwargs!r}): the cluster {adapts!r} "
                    "cannot adapt (it has no adapt() method). Drop adapt_kwargs, or use a "
                    "cluster class that scales, such as distributed.LocalCluster."
                )
        self._client: Any = None
        self._own_cluster: Any = None
        self._topic = ""
        self._scheduler_address = ""

    def duplicate(self) -> Self:
        """A fresh, unstarted runner with the same settings (one per flow run; a given
        ``cluster`` is shared, a temporary one is per duplicate)."""
        return type(self)(
            cluster=self.cluster,
            address=self.address,
            cluster_class=self.cluster_class,
            cluster_kwargs=self.cluster_kwargs or None,
            adapt_kwargs=self.adapt_kwargs,
            client_kwargs=self.client_kwargs,
        )

    @property
    def client(self) -> Any:
        """The ``distributed.Client`` of the running flow run (None before the first
        submission and after shutdown)."""
        return self._client

    # the cluster --------------------------------------------------------------------------
    def _connect(self) -> int:
        if self.address:
            kwargs = {"timeout": _CONNECT_TIMEOUT, **self.client_kwargs}
            try:
                self._client = distributed.Client(self.address, **kwargs)
            except (OSError, TimeoutError) as exc:
                raise ConnectionError(
                    f"DaskTaskRunner(address={self.address!r}): no Dask scheduler answered "
                    f"there within {kwargs['timeout']} s ({type(exc).__name__}: {exc}). Start "
                    "one (`dask scheduler`), or check the address and the network."
                ) from exc
        else:
            cluster = self.cluster
            if cluster is None:
                cluster_class = self.cluster_class or distributed.LocalCluster
                cluster = self._own_cluster = cluster_class(**self.cluster_kwargs)
            self._client = distributed.Client(cluster, **self.client_kwargs)
            if self.adapt_kwargs is not None:
                cluster.adapt(**self.adapt_kwargs)
        self._scheduler_address = str(self._client.scheduler.address)
        self._listen()
        if self.adapt_kwargs is not None:
            return _ADAPTIVE_SLOTS  # (an adaptive cluster grows with the work queued)
        threads = sum(self._client.nthreads().values())
        return max(threads, _MIN_SLOTS)

    def _listen(self) -> None:
        """Subscribe to the topic on which the workers publish runs' starts (Dask's
        structured events: worker, scheduler, this client), so each run's ``Running``
        state reaches the store while it runs, not with its outcome."""
        self._topic = f"wfkit-live-{uuid.uuid4().hex}"
        self._live_calls = {}
        self._client.subscribe_topic(self._topic, self._on_event)

    def _on_event(self, event: tuple[float, Any]) -> None:
        # (on the client's event loop: a quick store write; a bad message is dropped)
        with contextlib.suppress(Exception):
            task_run_id, payload = pickle.loads(event[1])
            self._record_live(task_run_id, payload)

    def _send_chunk(self, remotes: list[RemoteTaskRun]) -> Any:
        key = f"wfkit-{remotes[0].task_run_id}-{len(remotes)}"
        future = self._client.submit(_run_chunk_on_dask, remotes, self._topic, key=key, pure=False)
        self._mark_sent(remotes, future)
        return future

    def _submit_after(self, remote: RemoteTaskRun, after: After, group: Any) -> Any:
        future = self._client.submit(
            _run_after_on_dask, remote, self._topic, after.ids, after.indices, after.futures,
            key=f"wfkit-{remote.task_run_id}-after", pure=False,
        )  # fmt: skip
        self._mark_sent([remote], future)
        result = _result_or_error(future, self._scheduler_address)
        if isinstance(result, BaseException):
            raise result
        return result

    def _submit_chunk(
        self, remotes: list[RemoteTaskRun], group: Any, deliver: Callable[[Any], None]
    ) -> None:
        address = self._scheduler_address
        future = self._send_chunk(remotes)
        future.add_done_callback(lambda done: deliver(_result_or_error(done, address)))

    def _failed(self, native: Any) -> bool:
        return native.status in ("error", "cancelled", "lost")  # type: ignore[no-any-return]

    def _run_chunk_now(self, remotes: list[RemoteTaskRun], group: Any) -> Any:
        result = _result_or_error(self._send_chunk(remotes), self._scheduler_address)
        if isinstance(result, BaseException):
            raise result
        return result

    def _disconnect(self) -> None:
        client, self._client = self._client, None
        cluster, self._own_cluster = self._own_cluster, None
        with contextlib.suppress(Exception):  # (a cluster that is gone is gone)
            if client is not None:
                client.close()
        if cluster is not None:
            with contextlib.suppress(Exception):
                cluster.close()

    def __repr__(self) -> str:
        where = (
            f"address={self.address!r}"
            if self.address
            else f"cluster={self.cluster!r}"
            if self.cluster is not None
            else f"cluster_class={getattr(self.cluster_class, '__name__', 'LocalCluster')}"
        )
        return f"DaskTaskRunner({where})"


@contextlib.contextmanager
def get_dask_client(timeout: float | None = None) -> Iterator[Any]:
    """A ``distributed.Client`` on the scheduler of the running task or flow, as a context
    manager: inside a task running on a Dask worker, a worker client (the task's thread
    leaves the worker's pool while it waits on what it submits); in a flow run on a
    :class:`DaskTaskRunner`, a client to its scheduler.

    Args:
        timeout: seconds to wait for the connection (default: Dask's).

    Raises:
        MissingContextError: called outside a task on a Dask worker and outside a flow run
            on a DaskTaskRunner.
    """
    try:
        distributed.get_worker()
        in_worker = True
    except ValueError:
        in_worker = False
    if in_worker:
        with distributed.worker_client(timeout=timeout, separate_thread=True) as client:
            yield client
        return
    ctx = flow_run_context.get()
    runner = ctx.task_runner if ctx is not None else None
    client = getattr(runner, "client", None) if isinstance(runner, DaskTaskRunner) else None
    if client is None:
        raise MissingContextError(
            "get_dask_client() was called outside a task running on a Dask worker and outside "
            "a flow run on a DaskTaskRunner that has started: call it inside such a task "
            "(or after the flow has submitted one)."
        )
    kwargs = {} if timeout is None else {"timeout": timeout}
    with distributed.Client(client.scheduler.address, set_as_default=False, **kwargs) as own:
        yield own
