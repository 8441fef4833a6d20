"""Helpers shared by the benchmark orchestrator and its workers.

This module must import nothing but the standard library: the Prefect workers import it with
Prefect's interpreter, and the plain-Python workers must not pay for anything they do not use.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import sys
import time
from typing import Any

RESULT_PREFIX = "BENCH-RESULT "
MIB = 1024 * 1024
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096

perf = time.perf_counter


def emit(result: dict[str, Any]) -> None:
    """Print a worker's result as the one line the orchestrator parses."""
    sys.stdout.write(RESULT_PREFIX + json.dumps(result) + "\n")
    sys.stdout.flush()


def parse_result(stdout: str) -> dict[str, Any] | None:
    for line in reversed(stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX) :])  # type: ignore[no-any-return]
    return None


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def rss_bytes() -> int:
    """Resident set size of this process now (Linux /proc; ru_maxrss elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * _PAGE
    except OSError:
        return peak_rss_bytes()


def peak_rss_bytes() -> int:
    """Peak resident set size of this process so far (VmHWM; ru_maxrss as a fallback)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    usage = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return usage if sys.platform == "darwin" else usage * 1024


def slope(xs: list[float], ys: list[float]) -> float | None:
    """Least-squares slope of ys over xs."""
    if len(xs) < 2:
        return None
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    if den == 0:
        return None
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den


class Checks:
    """What a worker verified about its outputs; any failure makes the figure unverified."""

    def __init__(self) -> None:
        self.passed: list[str] = []
        self.failed: list[str] = []

    def check(self, ok: bool, what: str, detail: Any = None) -> bool:
        if ok:
            if what not in self.passed:
                self.passed.append(what)
        else:
            msg = what if detail is None else f"{what}: {detail}"
            if msg not in self.failed:
                self.failed.append(msg[:500])
        return ok

    def as_dict(self) -> dict[str, Any]:
        return {
            "verified": not self.failed and bool(self.passed),
            "checks": self.passed,
            "failed_checks": self.failed,
        }
