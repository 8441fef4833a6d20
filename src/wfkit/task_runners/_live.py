"""A worker's side of live progress: a run's start is published only if the run is still
running a moment later.

Publishing every start would cost a message through the cluster per task run, mostly for
runs whose outcome follows within milliseconds and carries the start anyway. So a start is
held for :data:`DELAY` seconds, then published if its run has not ended; a run that ends
first cancels it (its outcome brings the start). One thread per worker process sends them.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Any

import wfkit._realtime as _realtime

__all__ = ["DELAY", "LiveStarts"]

DELAY = 0.2  # seconds a run must have been running for its start to be published


class _Start:
    __slots__ = ("due", "send", "event", "active")

    def __init__(self, due: float, send: Callable[[Any], object], event: Any) -> None:
        self.due, self.send, self.event, self.active = due, send, event, True


class LiveStarts:
    """Starts waiting to be published, oldest first, and the thread that publishes them."""

    def __init__(self) -> None:
        self._waiting: deque[_Start] = deque()
        self._lock = threading.Lock()
        self._wakeup = threading.Condition(self._lock)
        self._thread: threading.Thread | None = None
        self._idle = False  # the thread waits for a start with no time limit

    def hold(self, send: Callable[[Any], object], event: Any) -> _Start:
        """Publish ``event`` with ``send`` in :data:`DELAY` seconds unless
        :meth:`cancel` is called with what this returns first."""
        start = _Start(_realtime.monotonic() + DELAY, send, event)
        with self._lock:
            waiting = self._waiting
            waiting.append(start)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._publish_forever, name="wfkit-live", daemon=True
                )
                self._thread.start()
            # (only an idle thread needs waking: otherwise it sleeps until the due time of an
            # older start, which comes first, or for at most DELAY, then looks again; a
            # wake-up per run costs the run's thread a GIL hand-over, ~0.3 ms a run on a Ray
            # worker)
            if self._idle:
                self._idle = False
                self._wakeup.notify()
        return start

    @staticmethod
    def cancel(start: _Start) -> None:
        """The run has ended: its outcome carries the start."""
        start.active = False

    def _publish_forever(self) -> None:
        while True:
            with self._lock:
                if not self._waiting:
                    # (a timed wait first: in a chain of quick runs, each run's start is
                    # cancelled before this thread gets to it, and an untimed wait here would
                    # need a wake-up for every next run)
                    self._wakeup.wait(DELAY)
                while not self._waiting:
                    self._idle = True
                    self._wakeup.wait()
                start = self._waiting[0]
                delay = start.due - _realtime.monotonic()
                if delay > 0 and start.active:
                    self._wakeup.wait(delay)
                    continue
                self._waiting.popleft()
            if start.active:
                try:
                    start.send(start.event)
                except Exception:  # (the outcome carries it all the same)
                    pass
