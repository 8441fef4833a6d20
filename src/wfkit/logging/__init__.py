"""Run logging and recording: ``get_run_logger()``, ``log_prints``, the handlers that send
run logs to the ``wfkit_log`` hook and to the console, and the built-in store writer, the
plugin that records every state change and log line in the current run store.

Loggers: ``wfkit.flow_runs`` and ``wfkit.task_runs`` for run logs, ``wfkit`` above them.
Their level is ``WFKIT_LOGGING_LEVEL`` (default INFO). Only records logged through a run
logger (or ``print`` under ``log_prints``) reach the store.
"""

from __future__ import annotations

import builtins
import io
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator, MutableMapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from wfkit._plugins import add_builtin_plugin, publish_log
from wfkit.context import (
    current_clock,
    current_store,
    flow_run_context,
    get_run_context,
    task_run_context,
)
from wfkit.hookspecs import hookimpl

__all__ = [
    "RunLoggerAdapter",
    "StoreWriter",
    "base_logger",
    "disable_run_logger",
    "get_run_logger",
    "lines_are_shown_elsewhere",
    "lines_shown_elsewhere",
    "log_for_run",
    "logger_for",
    "run_logger",
    "show_recorded_line",
]

_FLOW_LOGGER = "wfkit.flow_runs"
_TASK_LOGGER = "wfkit.task_runs"
_disabled: ContextVar[bool] = ContextVar("wfkit_run_logger_disabled", default=False)
_setup_lock = threading.Lock()
_is_set_up = False
_base_loggers: dict[str, logging.Logger] = {}
_LogEntry: Any = None  # wfkit.stores._base.LogEntry, imported on the first run log record
_ENGINE = "(wfkit engine)"  # the path name of the engine's own records


class RunLoggerAdapter(logging.LoggerAdapter):  # type: ignore[type-arg]
    """A logger carrying the run's ids and name on every record."""

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        extra = kwargs.get("extra")
        kwargs["extra"] = {**self.extra, **extra} if extra else self.extra  # type: ignore[dict-item]
        return msg, kwargs


def base_logger(kind: str) -> logging.Logger:
    """``wfkit.flow_runs`` (``kind="flow"``) or ``wfkit.task_runs``: the logger run loggers
    log through (ask it ``isEnabledFor`` before making a run logger for nothing)."""
    logger = _base_loggers.get(kind)
    if logger is None:  # getLogger takes the logging lock: look it up once
        logger = logging.getLogger(_FLOW_LOGGER if kind == "flow" else _TASK_LOGGER)
        _base_loggers[kind] = logger
    return logger


def run_logger(run: Any, kind: str) -> RunLoggerAdapter:
    """The logger of a live flow run (``kind="flow"``) or task run."""
    if kind == "flow":
        extra = {
            "wf_flow_run_id": run.id,
            "wf_task_run_id": None,
            "wf_label": f"Flow run {run.name!r}",
        }
    else:
        extra = {
            "wf_flow_run_id": run.flow_run_id,
            "wf_task_run_id": run.id,
            "wf_label": f"Task run {run.name!r}",
        }
    return RunLoggerAdapter(base_logger(kind), extra)


def logger_for(ctx: Any) -> RunLoggerAdapter:
    """The logger of the run whose context is ``ctx``, made on first use (most task runs
    never log)."""
    logger = ctx.run_logger
    if logger is None:
        logger = ctx.run_logger = run_logger(ctx.run, ctx.kind)
    return logger  # type: ignore[no-any-return]


def log_for_run(
    ctx: Any, level: int, message: str, args: tuple[Any, ...], exc: BaseException | None
) -> None:
    """Log one of the engine's own lines (``Finished in state ...``) on the run's logger.

    The record is made with ``Logger.makeRecord`` and passed to ``Logger.handle``, as
    ``Logger.log`` does, but without looking up the caller's frame (``findCaller``, a tenth
    of the cost of a record): the caller is always the engine. Every task run logs such a
    line, so this is on the per-task path. The caller has checked the level."""
    if exc is None and _only_own_handlers(base_logger(ctx.kind), level):
        _emit_directly(ctx.run, ctx.kind, level, message % args)
        return
    adapter = logger_for(ctx)
    logger = adapter.logger
    exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    record = logger.makeRecord(
        logger.name, level, _ENGINE, 0, message, args, exc_info, extra=adapter.extra
    )
    logger.handle(record)


# The engine's own lines without a LogRecord. Every task run logs one ("Finished in state
# Completed()"); making a LogRecord, passing it through Logger.handle and formatting it cost
# about as much as the rest of the line (benchmarks/instructions.py --workload memory: 250k
# instructions per task run with the record, 197k without, 150k with no line at all). When
# the only handlers that would see the line are wfkit's own two (nothing added to these
# loggers or to the root logger, no filters, no logging.disable), the line goes straight to
# them: the same store entry, the same console text. Anything else (pytest's caplog, a
# user's handler or filter) gets a real record.
_own_handlers: list[logging.Handler] = []  # [store handler] or [store handler, console]
_own_console: logging.StreamHandler | None = None  # type: ignore[type-arg]
_wfkit_logger = logging.getLogger("wfkit")


def _only_own_handlers(logger: logging.Logger, level: int) -> bool:
    wf = _wfkit_logger
    return (
        logger.parent is wf
        and not logger.handlers
        and not logger.filters
        and logger.propagate
        and not logger.disabled
        and wf.handlers == _own_handlers
        and not wf.filters
        and not (wf.propagate and logging.root.handlers)
        and logging.root.manager.disable < level
    )


def _emit_directly(run: Any, kind: str, level: int, text: str) -> None:
    """What the store handler and the console handler would do with this line of ``run``
    (without making the run's logger either: a task run is over after this line)."""
    global _LogEntry
    if _LogEntry is None:
        # (lazy: wfkit.stores costs ~4.5 ms of ``import wfkit``; a run loads it)
        from wfkit.stores import LogEntry as _LogEntry
    if kind == "flow":
        name, ids, label = _FLOW_LOGGER, (run.id, None), "Flow run"
    else:
        name, ids, label = _TASK_LOGGER, (run.flow_run_id, run.id), "Task run"
    publish_log(_LogEntry(*ids, level, name, text, current_clock().now()))
    console = _own_console
    if console is None or level < console.level or _shown_elsewhere.get():
        return  # (shown elsewhere: what the console's filter would decide, without a record)
    if _judged(console):  # (a record for its filters to judge)
        logger = base_logger(kind)
        extra = run_logger(run, kind).extra
        console.handle(logger.makeRecord(name, level, _ENGINE, 0, text, (), None, extra=extra))
        return
    # (time.time(): what a LogRecord's time is, frozen under the test harness)
    _write_line(console, level, label, run.name, text, time.time())


def _write_line(
    console: logging.StreamHandler,  # type: ignore[type-arg]
    level: int,
    label: str,
    name: str,
    text: str,
    created: float,
) -> None:
    """Write a line of run ``name`` to wfkit's console handler as its formatter would show
    it (``label``: "Task run" or "Flow run")."""
    formatter = console.formatter
    assert isinstance(formatter, _ConsoleFormatter)
    line = (
        f"{formatter.time_of_day(created)}.{int((created - int(created)) * 1000):03d} | "
        f"{logging.getLevelName(level):<7} | {label} {name!r} - {text}{console.terminator}"
    )
    console.acquire()
    try:
        stream = console.stream
        stream.write(line)
        stream.flush()  # (what StreamHandler.flush does, under the lock already held)
    except Exception:
        console.handleError(logging.makeLogRecord({"msg": text, "levelno": level}))
    finally:
        console.release()


# Runs executed for a flow's process that shows their lines itself (Ray workers, whose
# console output Ray's log monitor would otherwise ship to the flow's process, line by
# line, at a cost comparable to the run's): their lines are recorded, not printed here.
_shown_elsewhere: ContextVar[bool] = ContextVar("wfkit_logs_shown_elsewhere", default=False)


@contextmanager
def lines_shown_elsewhere() -> Iterator[None]:
    """Within the block, run log lines are recorded (for the flow's process, which shows
    them with :func:`show_recorded_line`) but not written to wfkit's console handler."""
    setup_logging()  # (the console is made now, to take the filter: no run has set it up)
    console = _own_console
    if console is not None and _not_shown_elsewhere not in console.filters:
        with _setup_lock:
            console.addFilter(_not_shown_elsewhere)  # (it adds a filter only once)
    token = _shown_elsewhere.set(True)
    try:
        yield
    finally:
        _shown_elsewhere.reset(token)


def lines_are_shown_elsewhere() -> bool:
    """Whether run log lines here are left to the flow's process to show."""
    return _shown_elsewhere.get()


def show_recorded_line(entry: Any, label: str, name: str) -> None:
    """Show ``entry`` (a stored log line that run ``name`` recorded in another process,
    which did not show it) as this process shows its own runs' lines: through the run
    loggers' handlers, at their levels, under ``label`` ("Task run" or "Flow run") and
    the run's name; not stored again."""
    logger = logging.getLogger(entry.logger)
    level = entry.level
    if not logger.isEnabledFor(level):
        return
    created = entry.timestamp.timestamp()
    handle: Callable[[logging.LogRecord], object] = logger.handle
    if _only_own_handlers(logger, level):  # (the store handler has it: only the console)
        console = _own_console
        if console is None or level < console.level:
            return
        if not _judged(console):
            _write_line(console, level, label, name, entry.message, created)
            return
        handle = console.handle
    extra = {
        "wf_flow_run_id": entry.flow_run_id,
        "wf_task_run_id": entry.task_run_id,
        "wf_label": f"{label} {name!r}",
        "wf_recorded": True,  # (the store handler leaves it: it is stored already)
    }
    record = logger.makeRecord(logger.name, level, _ENGINE, 0, entry.message, (), None, extra=extra)
    record.created, record.msecs = created, (created - int(created)) * 1000
    handle(record)


def get_run_logger() -> logging.LoggerAdapter:  # type: ignore[type-arg]
    """The logger of the current flow or task run; its records are stored with the run.

    Raises:
        MissingContextError: called outside a flow or task run.
    """
    if _disabled.get():
        return logging.LoggerAdapter(_null_logger(), {})
    ctx = get_run_context()
    if not _is_set_up:  # a process that runs no flow itself (a with_context worker)
        setup_logging()
    return logger_for(ctx)


@contextmanager
def disable_run_logger() -> Iterator[None]:
    """Within the block, ``get_run_logger()`` returns a logger that records nothing (useful
    when calling ``task.fn`` directly in tests)."""
    token = _disabled.set(True)
    try:
        yield
    finally:
        _disabled.reset(token)


def _null_logger() -> logging.Logger:
    null = logging.getLogger("wfkit.null")
    null.disabled = True
    null.propagate = False
    return null


class StoreLogHandler(logging.Handler):
    """Sends run log records to the ``wfkit_log`` hook (the store writer stores them)."""

    def emit(self, record: logging.LogRecord) -> None:
        flow_run_id = getattr(record, "wf_flow_run_id", None)
        task_run_id = getattr(record, "wf_task_run_id", None)
        if flow_run_id is None and task_run_id is None or hasattr(record, "wf_recorded"):
            return
        try:
            global _LogEntry
            if _LogEntry is None:
                # (lazy: wfkit.stores costs ~4.5 ms of ``import wfkit``; a run loads it)
                from wfkit.stores import LogEntry as _LogEntry
            message = record.getMessage()
            if record.exc_info:
                message = f"{message}\n{logging.Formatter().formatException(record.exc_info)}"
            entry = _LogEntry(
                flow_run_id,
                task_run_id,
                record.levelno,
                record.name,
                message,
                current_clock().now(),
            )
            publish_log(entry)
        except Exception:
            self.handleError(record)


def _judged(console: logging.Handler) -> bool:
    """Whether a line for ``console`` needs a LogRecord, for filters that would judge it:
    not :func:`_not_shown_elsewhere` alone outside a :func:`lines_shown_elsewhere` block,
    where it passes every line (a Ray worker's, or a flow's process that ran Ray tasks
    in-process)."""
    filters = console.filters
    return bool(filters) and (filters != [_not_shown_elsewhere] or _shown_elsewhere.get())


def _not_shown_elsewhere(record: logging.LogRecord) -> bool:
    """The console's filter in a process that leaves run lines to the flow's process (see
    :func:`lines_shown_elsewhere`): whether ``record`` is shown here. Only such processes
    have it: it sends the engine's lines through a LogRecord."""
    if not _shown_elsewhere.get():
        return True
    return not (getattr(record, "wf_task_run_id", None) or getattr(record, "wf_flow_run_id", None))


class _ConsoleFormatter(logging.Formatter):
    # The time of day of the last record's second, kept: every task run logs a line, and
    # formatting the time (localtime + strftime) was a tenth of the cost of logging one.
    _second: tuple[int, str] = (-1, "")

    def format(self, record: logging.LogRecord) -> str:
        if not hasattr(record, "wf_label"):
            record.wf_label = record.name
        return super().format(record)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        return self.time_of_day(record.created)

    def time_of_day(self, created: float) -> str:
        """``created`` (seconds since the epoch) as this formatter shows it, to the second."""
        second = int(created)
        cached = self._second
        if cached[0] != second:
            shown = time.strftime(self.datefmt or "%H:%M:%S", self.converter(created))
            cached = self._second = (second, shown)
        return cached[1]


def setup_logging() -> None:
    """Install the store handler (and a console handler when nothing else logs); idempotent."""
    global _is_set_up
    if _is_set_up:
        return
    with _setup_lock:
        if _is_set_up:
            return
        # (lazy: wfkit.settings costs ~3 ms of ``import wfkit``; the first run needs it)
        from wfkit.settings import logging_level

        global _own_console
        root = logging.getLogger("wfkit")
        root.setLevel(logging_level())
        store_handler = StoreLogHandler()
        root.addHandler(store_handler)
        _own_handlers.append(store_handler)
        if not logging.getLogger().handlers:
            console = logging.StreamHandler(sys.stderr)
            console.setFormatter(
                _ConsoleFormatter(
                    "%(asctime)s.%(msecs)03d | %(levelname)-7s | %(wf_label)s - %(message)s",
                    datefmt="%H:%M:%S",
                )
            )
            root.addHandler(console)
            _own_handlers.append(console)
            _own_console = console
        _is_set_up = True


# builtins.print is replaced only while runs with log_prints are active (counted), and put
# back when the last one ends; outside such runs the replacement prints as the original does.
_print_lock = threading.Lock()
_print_users = 0
_print_in_force: Any = builtins.print  # what ``print`` was when wfkit replaced it


def acquire_print_logging() -> None:
    """A run with ``log_prints`` starts: make ``print`` also log inside such runs."""
    global _print_users, _print_in_force
    with _print_lock:
        if _print_users == 0 and builtins.print is not _print_to_run_logger:
            _print_in_force = builtins.print
            builtins.print = _print_to_run_logger
        _print_users += 1


def release_print_logging() -> None:
    """A run with ``log_prints`` ended: the last one puts ``print`` back (unless someone
    replaced it since, whose replacement is left alone)."""
    global _print_users
    with _print_lock:
        _print_users -= 1
        if _print_users == 0 and builtins.print is _print_to_run_logger:
            builtins.print = _print_in_force


def _print_to_run_logger(
    *args: Any, sep: str | None = " ", end: str | None = "\n", file: Any = None, flush: bool = False
) -> None:
    """``print`` while runs with ``log_prints`` are active: inside such a run, a print to
    stdout becomes an INFO line of the run's logger instead (as in Prefect: the console
    handler shows it once, and the store keeps it); anything else prints as usual."""
    ctx: Any = task_run_context.get() or flow_run_context.get()
    if ctx is None or not ctx.log_prints or (file is not None and file is not sys.stdout):
        _print_in_force(*args, sep=sep, end=end, file=file, flush=flush)
        return
    buffer = io.StringIO()  # (print itself formats: sep, end, and str() of each argument)
    _print_in_force(*args, sep=sep, end=end, file=buffer)
    logger_for(ctx).info(buffer.getvalue().rstrip())


class StoreWriter:
    """Built-in plugin: records every state change and log line in the current run store.

    Registered first (as ``"wfkit.store_writer"``), so pluggy calls it after every other
    plain implementation except ``trylast`` ones."""

    # (Taking every argument of the spec makes these the cheapest direct calls.)
    @hookimpl
    def wfkit_flow_run_state_changed(self, flow_run: Any, old_state: Any, new_state: Any) -> None:
        current_store().record_flow_run(flow_run)

    @hookimpl
    def wfkit_task_run_state_changed(self, task_run: Any, old_state: Any, new_state: Any) -> None:
        current_store().record_task_run(task_run)

    @hookimpl
    def wfkit_log(self, record: Any) -> None:
        current_store().record_log(record)


add_builtin_plugin("wfkit.store_writer", StoreWriter)
