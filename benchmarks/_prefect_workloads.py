"""Prefect 3 versions of the wfkit workloads, run with Prefect's own interpreter.

Run by ``benchmarks/run.py`` as ``PREFECT_PYTHON _prefect_workloads.py NAME '{json params}'``
with a fresh ``PREFECT_HOME``; prints one ``BENCH-RESULT {json}`` line. Prefect runs in its
default local mode (no server configured, so its first flow call starts a temporary one). The
first call is measured apart from the warm calls. Outputs are checked here too (results, final
states, and the task runs the server recorded).

Never imported by wfkit or its tests: Prefect is a comparison baseline only.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from _common import Checks, emit, median, perf

IN_BODY = (
    "timed inside the flow body (perf_counter around the loop), so Prefect's ~1 s sync flow "
    "floor (heartbeat join) and server round trips at flow start/end are excluded"
)


def _db_bytes() -> int:
    db = Path(os.environ["PREFECT_HOME"]) / "prefect.db"
    return sum(
        os.path.getsize(f"{db}{s}") for s in ("", "-wal", "-shm") if os.path.exists(f"{db}{s}")
    )


def _task_runs_of(flow_run_id: Any, expected: int, wait_s: float = 20.0) -> list[Any]:
    """The task runs the server recorded for a flow run (they arrive as events: poll)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    deadline = time.monotonic() + wait_s
    with get_client(sync_client=True) as client:
        while True:
            runs: list[Any] = []
            offset = 0
            while True:
                page = client.read_task_runs(
                    flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])),
                    limit=200,
                    offset=offset,
                )
                runs.extend(page)
                if len(page) < 200:
                    break
                offset += 200
            done = [r for r in runs if r.state is not None and r.state.is_final()]
            if len(done) >= expected or time.monotonic() > deadline:
                return runs
            time.sleep(0.5)


def w_session(p: dict[str, Any]) -> dict[str, Any]:
    """Warm figures in one process: its first call (cold, reported in details) starts the
    temporary server that every later call reuses."""
    from prefect import flow, task
    from prefect.cache_policies import INPUTS

    checks = Checks()
    repeat = p["repeat"]
    figures: dict[str, Any] = {}
    wanted = set(p["figures"])

    @flow(name="bench-empty")
    def empty() -> int:
        return 1

    t = perf()
    checks.check(empty() == 1, "first flow call result")
    cold_s = perf() - t
    details = {"session_first_call_s": cold_s}

    # empty flow call, warm
    k = p["warm_calls"]
    warm = []
    for _ in range(repeat):
        t = perf()
        total = sum(empty() for _ in range(k))
        warm.append((perf() - t) / k * 1e6)
        checks.check(total == k, "warm empty flow results")
    empty_s = (median(warm) or 0.0) / 1e6
    if "empty_flow_call_warm_sqlite" in wanted:
        figures["empty_flow_call_warm_sqlite"] = {"samples": warm, "n": k, "details": details}

    @task(name="bench-inc")
    def inc(x: int) -> int:
        return x + 1

    # sequential tasks, per task (the empty-flow time subtracted) + store size per task run
    if {"sequential_task_sqlite", "store_size_per_task_run"} & wanted:
        n = p["seq_n"]

        @flow(name="bench-seq")
        def seq(n: int) -> tuple[int, float]:
            t = perf()
            total = 0
            for i in range(n):
                total += inc(i)
            return total, perf() - t

        seq(5)  # warm up
        time.sleep(2)
        size_before = _db_bytes()
        per_task, outer, ids = [], [], []
        for _ in range(repeat):
            t = perf()
            state = seq(n, return_state=True)
            dt = perf() - t
            checks.check(state.is_completed(), "sequential flow Completed")
            total, inside = state.result()
            checks.check(total == n * (n + 1) // 2, "sequential flow result")
            per_task.append(inside / n * 1e6)
            outer.append((dt - empty_s) / n * 1e6)
            ids.append(state.state_details.flow_run_id)
        for flow_run_id in ids:
            runs = _task_runs_of(flow_run_id, n)
            checks.check(len(runs) == n, f"server recorded {n} task runs per flow run", len(runs))
            checks.check(
                all(r.state is not None and r.state.is_completed() for r in runs),
                "recorded task runs Completed",
            )
        time.sleep(2)
        grown = _db_bytes() - size_before
        figures["sequential_task_sqlite"] = {
            "samples": per_task,
            "n": n,
            "details": {
                "method": IN_BODY,
                "outer_call_minus_empty_flow_per_task_us": outer,
            },
        }
        figures["store_size_per_task_run"] = {
            "samples": [grown / (n * repeat)],
            "n": n * repeat,
            "details": {
                "method": "approximate: growth of prefect.db + -wal + -shm while the temporary "
                "server runs, over the task runs recorded (includes their flow runs and events)"
            },
        }

    if "task_map_10k" in wanted:
        n = p["map_n"]

        @flow(name="bench-map")
        def mapped(n: int) -> tuple[int, float]:
            t = perf()
            return sum(f.result() for f in inc.map(range(n))), perf() - t

        mapped(5)
        per_task = []
        for _ in range(repeat):
            r, inside = mapped(n)
            per_task.append(inside / n * 1e6)
            checks.check(r == n * (n + 1) // 2, "sum of mapped results")
        figures["task_map_10k"] = {"samples": per_task, "n": n, "details": {"method": IN_BODY}}

    if "cache_hit_sqlite" in wanted:
        n = p["cache_n"]
        body_calls: list[int] = []

        @task(name="bench-cached", cache_policy=INPUTS)
        def cached(x: int) -> int:
            body_calls.append(x)
            return x * 2

        @flow(name="bench-hits")
        def hits(n: int) -> tuple[int, float]:
            t = perf()
            return sum(cached(7) for _ in range(n)), perf() - t

        hits(1)
        per_hit = []
        for _ in range(repeat):
            r, inside = hits(n)
            per_hit.append(inside / n * 1e6)
            checks.check(r == 14 * n, "sum of cached results")
        checks.check(body_calls == [7], "the cached body ran once", body_calls)
        figures["cache_hit_sqlite"] = {"samples": per_hit, "n": n, "details": {"method": IN_BODY}}

    if "retry_test_in_process" in wanted:
        retries, delay = p["retries"], p["retry_delay"]

        @task(name="bench-flaky", retries=retries, retry_delay_seconds=delay)
        def flaky(calls: list) -> str:
            calls.append(1)
            if len(calls) <= retries:
                raise ConnectionError("down")
            return "ok"

        walls = []
        for _ in range(p["retry_repeat"]):
            calls: list[int] = []
            t = perf()
            r = flaky(calls)
            dt = perf() - t
            walls.append(dt * 1e3)
            checks.check(r == "ok" and len(calls) == retries + 1, "retried task result")
            checks.check(dt >= retries * delay, "really slept the delays", dt)
        figures["retry_test_in_process"] = {
            "samples": walls,
            "n": 1,
            "details": {
                "workload": f"task called directly, fails {retries}x, retries={retries}, "
                f"retry_delay_seconds={delay} (real sleeps; not 3x60 s), temporary server warm",
            },
        }
    return {"figures": figures, **checks.as_dict()}


def w_harness(p: dict[str, Any]) -> dict[str, Any]:
    from prefect.testing.utilities import prefect_test_harness

    checks = Checks()
    samples = []
    for _ in range(p["repeat"]):
        t = perf()
        with prefect_test_harness():
            pass
        samples.append((perf() - t) * 1e3)
    checks.check(len(samples) == p["repeat"], "entered and left prefect_test_harness()")
    return {
        "figures": {
            "harness_entry": {
                "samples": samples,
                "n": 1,
                "details": {
                    "note": "each entry starts (and stops) a temporary server; the "
                    "first sample includes imports"
                },
            }
        },
        **checks.as_dict(),
    }


WORKLOADS = {"session": w_session, "harness": w_harness}


def main() -> None:
    name, params = sys.argv[1], json.loads(sys.argv[2])
    try:
        result = WORKLOADS[name](params)
    except Exception as exc:
        traceback.print_exc()
        result = {"status": "error", "reason": f"{type(exc).__name__}: {exc}"[:2000]}
    emit(result)


if __name__ == "__main__":
    main()
