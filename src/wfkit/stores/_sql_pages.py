"""Walking a whole SQL store a page at a time (SQLite, PostgreSQL): the flow runs and task
runs in creation order after a given run, and the cache keys. What ``wf store copy`` reads,
written once for both stores; each passes its parameter mark (``?`` or ``%s``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from wfkit.stores._base import check_limit
from wfkit.stores._sql_reads import records

if TYPE_CHECKING:
    from wfkit.stores.records import FlowRun, TaskRun

__all__ = ["RunPages"]


class RunPages:
    """The paging reads of :class:`~wfkit.stores.RunReader` and
    :class:`~wfkit.stores.CacheStore`, mixed into the SQL stores."""

    _w: Any  # the store's writer: its read_runs() and execute()
    _mark: ClassVar[str]  # the store's parameter mark

    def flow_runs_page(self, after: str | None = None, limit: int = 100) -> list[FlowRun]:
        """Up to ``limit`` flow runs in creation order, from the first created after the
        run with id ``after`` (None: from the first)."""
        return self._page(records().FlowRun, "flow_runs", after, limit)

    def task_runs_page(self, after: str | None = None, limit: int = 100) -> list[TaskRun]:
        """Up to ``limit`` task runs in creation order, from the first created after the
        run with id ``after`` (None: from the first)."""
        return self._page(records().TaskRun, "task_runs", after, limit)

    def cache_keys(self) -> list[str]:
        """The key of every cache record, oldest record first (by ``created_at``, then key)."""
        rows, _ = self._w.execute(
            "SELECT key FROM cache ORDER BY created_us, key", (), "read the cache"
        )
        return [key for (key,) in rows]

    def _page(self, cls: Any, table: str, after: str | None, limit: int) -> list[Any]:
        most = check_limit(limit)
        order = "ORDER BY seq" + ("" if most is None else f" LIMIT {most}")
        if after is None:
            return self._w.read_runs(cls, order, ())  # type: ignore[no-any-return]
        # An id the store does not hold (a run deleted meanwhile) gives no page: the subquery
        # is NULL, and no seq is greater than NULL.
        where = f"WHERE seq > (SELECT seq FROM {table} WHERE id = {self._mark})"
        return self._w.read_runs(cls, f"{where} {order}", (str(after),))  # type: ignore[no-any-return]
