"""Signals: a SIGTERM is recorded before it ends the process; an interrupt ends what a flow
run left behind.

The engine keeps a registry of what is live in this process: every flow run between its
start and its end (with the context it runs in, whose store records it), and every task
run inside a flow while its driver runs it. Registering is a dict or set operation per
run, so it costs nothing a run would notice.

**SIGTERM.** The first top-level flow call made on the main thread, outside the test
harness, installs :func:`_on_sigterm` (once; it stays installed, and does nothing but
chain while no flow runs). On SIGTERM it records every live flow run and its unfinished
task runs ``Crashed`` ("terminated by SIGTERM"), flushes their stores, then lets the
signal take the effect it would have had: the handler that was installed before wfkit's
is called (chained, never replaced), or, when there was none, the default disposition is
restored and the signal raised again, so the process ends with status 143 as it would
have. A SIGTERM that was ignored (``SIG_IGN``), or whose handler was installed outside
Python, is left alone: wfkit installs nothing then.

The recording runs in a helper thread that the handler waits for, at most
:data:`RECORD_TIMEOUT` seconds: the handler interrupts the main thread between two
bytecodes, possibly while it holds a lock of the store or of logging, and recording on
the same thread could wait on that lock forever. If the helper cannot finish in time the
signal takes its effect anyway (those runs are then found by the dead-owner check).

**Interrupts.** :func:`crash_unfinished` records the task runs of one flow run that are
still going (in worker threads the interrupt cannot stop) ``Crashed``, for a flow run
that ends by a KeyboardInterrupt.
"""

from __future__ import annotations

import contextvars
import os
import signal
import sys
import threading
from types import FrameType
from typing import Any, TypeGuard

from wfkit.context import current_store
from wfkit.states import Crashed

__all__ = [
    "RECORD_TIMEOUT",
    "crash_unfinished",
    "ctrl_c_under_asyncio",
    "flow_ended",
    "flow_started",
    "install_sigterm_handler",
    "is_cancellation",
    "is_interrupt",
    "task_ended",
    "task_started",
]

RECORD_TIMEOUT = 5.0  # seconds the SIGTERM handler waits for the runs to be recorded
TERMINATED = "terminated by SIGTERM"

# flow run id -> (its FlowRunContext, the context it runs in); task runs being driven.
_flows: dict[str, tuple[Any, contextvars.Context]] = {}
_tasks: set[Any] = set()

# (bound methods: the drivers' hot path calls them without an attribute lookup)
task_started = _tasks.add
task_ended = _tasks.discard

_installed = False
_previous: Any = None  # the SIGTERM handler wfkit's replaced (chained to)


def flow_started(ctx: Any) -> None:
    """The flow run of ``ctx`` (its FlowRunContext) has started, in the current context."""
    _flows[ctx.run.id] = (ctx, contextvars.copy_context())


def flow_ended(ctx: Any) -> None:
    """It has ended (or left the thread between two values it streams)."""
    _flows.pop(ctx.run.id, None)


def is_interrupt(error: BaseException | None) -> TypeGuard[BaseException]:
    """Whether ``error`` ends the program rather than a run (Ctrl-C, ``sys.exit``)."""
    return isinstance(error, KeyboardInterrupt | SystemExit)


def is_cancellation(error: BaseException | None) -> bool:
    """Whether ``error`` is asyncio's CancelledError (what Ctrl-C becomes under
    ``asyncio.run``). Looked up in ``sys.modules``: if asyncio was never imported nothing
    can be cancelled by it, and importing it costs ~40 ms."""
    asyncio = sys.modules.get("asyncio")
    return asyncio is not None and isinstance(error, asyncio.CancelledError)


def ctrl_c_under_asyncio(error: BaseException) -> bool:
    """Whether ``error`` is the CancelledError that ``asyncio.run`` makes of a Ctrl-C: the
    SIGINT handler its runner installs has counted an interrupt. (It reads the runner's
    private count through ``getattr``: a Python that keeps it elsewhere sees a plain
    cancellation, which still ends the flow, recorded Cancelled instead of Crashed.)"""
    if not is_cancellation(error):
        return False
    handler = signal.getsignal(signal.SIGINT)
    runner = getattr(getattr(handler, "func", None), "__self__", None)
    return bool(getattr(runner, "_interrupt_count", 0))


# -- SIGTERM -------------------------------------------------------------------------------
def install_sigterm_handler(harness: Any) -> None:
    """Install the SIGTERM handler, if it is not installed and can be: on the main thread,
    outside the test harness (``harness`` is the runtime's), over a Python-level or default
    disposition. Called by every top-level flow call until it is installed."""
    global _installed, _previous
    if _installed or harness is not None:
        return
    if threading.current_thread() is not threading.main_thread():
        return  # signal.signal works on the main thread only
    previous = signal.getsignal(signal.SIGTERM)
    if previous is None or previous is signal.SIG_IGN:
        _installed = True  # (installed outside Python, or ignored on purpose: leave it)
        return
    signal.signal(signal.SIGTERM, _on_sigterm)
    _previous = previous if previous is not signal.SIG_DFL else None
    _installed = True


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    """Record the live runs Crashed, then let the signal do what it would have done."""
    if _flows:
        helper = threading.Thread(
            target=_record_all, args=(TERMINATED,), name="wfkit-sigterm", daemon=True
        )
        helper.start()
        helper.join(RECORD_TIMEOUT)
    previous = _previous
    if previous is not None:
        previous(signum, frame)
        return
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)  # ends the process as the signal would have (status 143)


def _record_all(reason: str) -> None:
    """Cancel the task runs still queued, record every live run Crashed (task runs before
    their flow runs), and flush."""
    flows = list(_flows.values())
    stores: dict[int, Any] = {}
    for ctx, context in flows:
        runner = ctx.task_runner  # (None while the run is being named)
        if runner is not None:
            runner.shutdown(wait=False)  # queued runs: Cancelled, never started
        _crash_tasks(ctx.run.id, context, f"Task run {reason}.")
    for ctx, context in reversed(flows):  # (subflows, started later, end first)
        _crash(ctx.run, context, f"Flow run {reason}.")
        store = context.run(current_store)
        stores[id(store)] = store
    for store in stores.values():
        store.flush()


def crash_unfinished(flow_run_id: str, message: str) -> None:
    """Record ``Crashed`` (with ``message``) every task run of the flow run that has not
    reached a final state (those still running in other threads)."""
    entry = _flows.get(flow_run_id)
    context = entry[1] if entry is not None else contextvars.copy_context()
    _crash_tasks(flow_run_id, context, message)


def _crash_tasks(flow_run_id: str, context: contextvars.Context, message: str) -> None:
    for run in list(_tasks):
        if run.flow_run_id == flow_run_id:
            _crash(run, context, message)


def _crash(run: Any, context: contextvars.Context, message: str) -> None:
    state = run.state
    if state is None or not state.is_final():
        context.run(run.set_state, Crashed(message=message))
