"""wfkit workloads and their plain-Python baselines, one per subprocess.

Run by ``benchmarks/run.py`` as ``python _workloads.py NAME '{json params}'``; prints one
``BENCH-RESULT {json}`` line on stdout. Each workload measures the plain-Python baseline and
the wfkit version in the same process, alternating repeats, and then VERIFIES what wfkit did
(results, and the runs and state histories in the store), so that a broken engine cannot look
fast. wfkit is imported inside the workloads only: the plain-Python memory baseline runs in a
process that never imports it.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import MIB, Checks, emit, median, peak_rss_bytes, perf, rss_bytes, slope
from _crash import w_crash_loss

DONE = ["Pending", "Running", "Completed"]
RETRIED_3 = [
    "Pending", "Running",
    "AwaitingRetry", "Retrying", "AwaitingRetry", "Retrying", "AwaitingRetry", "Retrying",
    "Completed",
]  # fmt: skip


def not_available(reason: str) -> dict[str, Any]:
    return {"status": "not_available", "reason": reason}


def per_call_us(fn: Callable[[], Any], n: int) -> tuple[float, Any]:
    """Call ``fn`` n times; microseconds per call and the last result."""
    result = None
    t = perf()
    for _ in range(n):
        result = fn()
    return (perf() - t) / n * 1e6, result


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t = perf()
    result = fn()
    return perf() - t, result


def check_runs(checks: Checks, runs: list[Any], count: int, history: list[str], what: str) -> None:
    checks.check(len(runs) == count, f"{what}: {count} runs recorded", f"found {len(runs)}")
    bad = [r for r in runs if list(r.state_names) != history]
    checks.check(
        not bad,
        f"{what}: every history is {history}",
        f"{len(bad)} differ, e.g. {list(bad[0].state_names) if bad else None}",
    )


# -- empty flow call, warm, SQLite (the configured store in a fresh WFKIT_HOME) ---------------
def w_empty_flow(p: dict[str, Any]) -> dict[str, Any]:
    from wfkit import flow
    from wfkit.stores import open_store

    @flow(name="bench-empty")
    def empty() -> int:
        return 1

    def plain_empty() -> int:
        return 1

    checks = Checks()
    n, pn, repeat, warm = p["n"], p["plain_n"], p["repeat"], p["warm"]
    total = sum(empty() for _ in range(warm))
    wf, plain = [], []
    for _ in range(repeat):
        plain.append(per_call_us(plain_empty, pn)[0])
        t = perf()
        for _ in range(n):
            total += empty()
        wf.append((perf() - t) / n * 1e6)
    calls = warm + n * repeat
    checks.check(total == calls, "every call returned its result", f"sum {total} != {calls}")
    store = open_store()
    checks.check(store.url.startswith("sqlite:"), "the configured store is SQLite", store.url)
    check_runs(checks, store.flow_runs(flow_name="bench-empty"), calls, DONE, "flow runs")
    return {
        "figures": {
            "empty_flow_call_warm_sqlite": {
                "wfkit": wf, "plain": plain, "n": n, "details": {"store": store.url},
            }
        },
        **checks.as_dict(),
    }  # fmt: skip


# -- sequential trivial tasks inside a flow ---------------------------------------------------
def w_sequential(p: dict[str, Any]) -> dict[str, Any]:
    from contextlib import nullcontext

    from wfkit import flow, task
    from wfkit.context import use_runtime
    from wfkit.stores import open_store

    @task(name="bench-inc")
    def inc(x: int) -> int:
        return x + 1

    inside: list[float] = []

    @flow(name="bench-seq")
    def seq(n: int) -> int:
        t = perf()
        total = 0
        for i in range(n):
            total += inc(i)
        inside.append((perf() - t) / n * 1e6)
        return total

    @flow(name="bench-seq-empty")
    def empty() -> int:
        return 0

    def plain_inc(x: int) -> int:
        return x + 1

    def plain_seq(n: int) -> int:
        total = 0
        for i in range(n):
            total += plain_inc(i)
        return total

    checks = Checks()
    n, pn, repeat = p["n"], p["plain_n"], p["repeat"]
    memory = p["store"] == "memory"
    figure = "sequential_task_memory" if memory else "sequential_task_sqlite"
    with use_runtime(store="memory://") if memory else nullcontext() as rt:
        store = rt.store if memory else open_store()
        seq(100)  # warm up
        empty_s = median([timed(empty)[0] for _ in range(20)]) or 0.0
        wf, plain, results = [], [], []
        for _ in range(repeat):
            dt, r = timed(lambda: plain_seq(pn))
            plain.append(dt / pn * 1e6)
            checks.check(r == pn * (pn + 1) // 2, "plain result")
            dt, r = timed(lambda: seq(n))
            wf.append((dt - empty_s) / n * 1e6)
            results.append(r)
        expected = n * (n + 1) // 2
        checks.check(all(r == expected for r in results), "flow results are the sum", results)
        runs = store.flow_runs(flow_name="bench-seq")
        check_runs(checks, runs, repeat + 1, DONE, "flow runs")
        for run in runs[1:]:
            tasks = store.task_runs(flow_run_id=run.id)
            check_runs(checks, tasks, n, DONE, f"task runs per flow run ({n})")
            checks.check(
                all(t.task_name == "bench-inc" for t in tasks), "task runs belong to bench-inc"
            )
    return {
        "figures": {
            figure: {
                "wfkit": wf, "plain": plain, "n": n,
                "details": {
                    "store": store.url,
                    "method": "(flow call - empty flow call) / n",
                    "empty_flow_call_subtracted_us": empty_s * 1e6,
                    "timed_inside_flow_body_per_task_us": inside[1:],
                },
            }
        },
        **checks.as_dict(),
    }  # fmt: skip


# -- task.map over N items + results (thread pool) -------------------------------------------
def w_task_map(p: dict[str, Any]) -> dict[str, Any]:
    from concurrent.futures import ThreadPoolExecutor

    from wfkit import flow, task
    from wfkit.stores import open_store

    @task(name="bench-map-inc")
    def inc(x: int) -> int:
        return x + 1

    if not hasattr(inc, "map"):
        return not_available("Task.map does not exist in this wfkit yet")

    @flow(name="bench-map")
    def mapped(n: int) -> int:
        futures = inc.map(range(n))
        return sum(f.result() for f in futures)

    @flow(name="bench-map-empty")
    def empty() -> int:
        return 0

    def plain_inc(x: int) -> int:
        return x + 1

    def plain_mapped(n: int) -> int:
        with ThreadPoolExecutor() as pool:
            return sum(pool.map(plain_inc, range(n)))

    checks = Checks()
    n, repeat = p["n"], p["repeat"]
    mapped(100)  # warm up
    empty_s = median([timed(empty)[0] for _ in range(20)]) or 0.0
    wf, plain, results = [], [], []
    for _ in range(repeat):
        dt, r = timed(lambda: plain_mapped(n))
        plain.append(dt / n * 1e6)
        checks.check(r == n * (n + 1) // 2, "plain result")
        dt, r = timed(lambda: mapped(n))
        wf.append((dt - empty_s) / n * 1e6)
        results.append(r)
    checks.check(all(r == n * (n + 1) // 2 for r in results), "sum of mapped results", results)
    store = open_store()
    runs = store.flow_runs(flow_name="bench-map")
    check_runs(checks, runs, repeat + 1, DONE, "flow runs")
    for run in runs[1:]:
        check_runs(checks, store.task_runs(flow_run_id=run.id), n, DONE, f"mapped task runs ({n})")
    return {
        "figures": {
            "task_map_10k": {
                "wfkit": wf, "plain": plain, "n": n,
                "details": {"empty_flow_call_subtracted_us": empty_s * 1e6},
            }
        },
        **checks.as_dict(),
    }  # fmt: skip


# -- cache hit per call, SQLite ----------------------------------------------------------------
def w_cache_hit(p: dict[str, Any]) -> dict[str, Any]:
    import functools

    try:
        from wfkit.cache_policies import INPUTS  # type: ignore[import-not-found]
    except ImportError as exc:
        return not_available(f"wfkit.cache_policies does not import ({exc})")
    from wfkit import flow, task
    from wfkit.stores import open_store

    body_calls: list[int] = []

    def cached_fn(x: int) -> int:
        body_calls.append(x)
        return x * 2

    try:
        cached = task(name="bench-cached", cache_policy=INPUTS)(cached_fn)
    except TypeError as exc:
        return not_available(f"@task does not accept cache_policy ({exc})")

    @flow(name="bench-hits")
    def hits(n: int) -> int:
        return sum(cached(7) for _ in range(n))

    @flow(name="bench-hits-empty")
    def empty() -> int:
        return 0

    @functools.cache
    def plain_cached(x: int) -> int:
        body_calls_plain.append(x)
        return x * 2

    body_calls_plain: list[int] = []

    checks = Checks()
    n, pn, repeat = p["n"], p["plain_n"], p["repeat"]
    hits(1)  # the miss that fills the cache
    empty_s = median([timed(empty)[0] for _ in range(20)]) or 0.0
    wf, plain, results = [], [], []
    for _ in range(repeat):
        dt, r = timed(lambda: sum(plain_cached(7) for _ in range(pn)))
        plain.append(dt / pn * 1e6)
        dt, r = timed(lambda: hits(n))
        wf.append((dt - empty_s) / n * 1e6)
        results.append(r)
    checks.check(all(r == 14 * n for r in results), "sum of cached results", results)
    checks.check(body_calls == [7], "the task body ran once (one miss)", body_calls)
    store = open_store()
    tasks = store.task_runs(task_name="bench-cached")
    cached_runs = [t for t in tasks if t.state.name == "Cached"]
    checks.check(
        len(cached_runs) == n * repeat,
        "every measured call is a recorded cache hit (state Cached)",
        f"{len(cached_runs)} Cached of {len(tasks)}",
    )
    return {
        "figures": {
            "cache_hit_sqlite": {
                "wfkit": wf, "plain": plain, "n": n,
                "details": {"empty_flow_call_subtracted_us": empty_s * 1e6},
            }
        },
        **checks.as_dict(),
    }  # fmt: skip


# -- a flow of many sequential tasks: memory (one mode per process) ----------------------------
def w_flow_rss(p: dict[str, Any]) -> dict[str, Any]:
    n, step, mode = p["n"], p["step"], p["mode"]
    samples: list[tuple[int, int]] = []
    counter = [0]
    rss_start = rss_bytes()

    def body(i: int) -> int:
        counter[0] += 1
        if counter[0] % step == 0:
            samples.append((counter[0], rss_bytes()))
        return i

    checks = Checks()
    if mode == "plain":

        def big(n: int) -> int:
            total = 0
            for i in range(n):
                total += body(i)
            return total

        dt, total = timed(lambda: big(n))
        peak = peak_rss_bytes()
    else:
        from wfkit import flow, task
        from wfkit.stores import open_store

        step_task = task(name="bench-step")(body)

        @flow(name="bench-big")
        def big(n: int) -> int:
            total = 0
            for i in range(n):
                total += step_task(i)
            return total

        rss_start = rss_bytes()  # after importing wfkit
        dt, total = timed(lambda: big(n))
        peak = peak_rss_bytes()  # before verification reads the store back
    checks.check(total == n * (n - 1) // 2, "sum of task results", total)
    checks.check(counter[0] == n, f"{n} bodies ran", counter[0])
    if mode != "plain":
        store = open_store()
        checks.check(store.url.startswith("sqlite:"), "the configured store is SQLite", store.url)
        runs = store.flow_runs(flow_name="bench-big")
        check_runs(checks, runs, 1, DONE, "flow run")
        if runs:
            check_runs(checks, store.task_runs(flow_run_id=runs[0].id), n, DONE, "task runs")
    xs = [c for c, _ in samples]
    ys = [r / MIB for _, r in samples]
    growth = slope(xs, ys)
    at = {str(c): round(r / MIB, 2) for c, r in samples}
    return {
        "mode": mode,
        "peak_rss_mib": peak / MIB,
        "growth_mib_per_10k": growth * 10_000 if growth is not None else None,
        "rss_mib_at": at,
        "rss_start_mib": rss_start / MIB,
        "seconds": dt,
        "per_task_us": dt / n * 1e6,
        **checks.as_dict(),
    }


# -- store size per recorded task run ----------------------------------------------------------
def _sizes(db: Path) -> int:
    return sum(
        os.path.getsize(f"{db}{suffix}")
        for suffix in ("", "-wal", "-shm", "-journal")
        if os.path.exists(f"{db}{suffix}")
    )


def _plain_store(path: Path, n: int) -> None:
    """The plain-Python way to record the same runs: a minimal hand-written SQLite schema."""
    import sqlite3
    import uuid
    from datetime import UTC, datetime

    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.executescript(
        "CREATE TABLE IF NOT EXISTS task_run (id TEXT PRIMARY KEY, flow_run_id TEXT, name TEXT,"
        " task_name TEXT, parameters TEXT, state TEXT, run_count INTEGER);"
        "CREATE TABLE IF NOT EXISTS state (id INTEGER PRIMARY KEY, run_id TEXT, type TEXT,"
        " name TEXT, at TEXT);"
    )
    flow_run_id = str(uuid.uuid4())
    with conn:
        for i in range(n):
            rid = str(uuid.uuid4())
            conn.execute(
                "INSERT INTO task_run VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    rid,
                    flow_run_id,
                    f"inc-{i % 4096:03x}",
                    "inc",
                    json.dumps({"x": i}),
                    "Completed",
                    1,
                ),
            )
            for type_, name in (
                ("PENDING", "Pending"),
                ("RUNNING", "Running"),
                ("COMPLETED", "Completed"),
            ):
                conn.execute(
                    "INSERT INTO state (run_id, type, name, at) VALUES (?, ?, ?, ?)",
                    (rid, type_, name, datetime.now(UTC).isoformat()),
                )
    conn.close()


def w_store_size(p: dict[str, Any]) -> dict[str, Any]:
    import tempfile

    from wfkit import flow, task
    from wfkit.context import use_runtime
    from wfkit.stores import open_store

    @task(name="bench-inc")
    def inc(x: int) -> int:
        return x + 1

    @flow(name="bench-size")
    def seq(n: int) -> int:
        return sum(inc(i) for i in range(n))

    @flow(name="bench-size-empty")
    def empty() -> int:
        return 0

    checks = Checks()
    n, repeat = p["n"], p["repeat"]
    wf, plain, raw = [], [], []
    for _ in range(repeat):
        d = Path(tempfile.mkdtemp(prefix="wfkit-size-"))
        _plain_store(d / "plain0.db", 0)
        _plain_store(d / "plainN.db", n)
        plain.append((_sizes(d / "plainN.db") - _sizes(d / "plain0.db")) / n)
        sizes = {}
        for label, work in (("0", empty), ("N", lambda: seq(n))):
            db = d / f"wf{label}.db"
            store = open_store(f"sqlite:///{db}")
            with use_runtime(store=store):
                work()
            store.close()
            sizes[label] = _sizes(db)
        wf.append((sizes["N"] - sizes["0"]) / n)
        raw.append(sizes["N"])
        store = open_store(f"sqlite:///{d / 'wfN.db'}")
        runs = store.flow_runs(flow_name="bench-size")
        check_runs(checks, runs, 1, DONE, "flow run")
        if runs:
            check_runs(checks, store.task_runs(flow_run_id=runs[0].id), n, DONE, "task runs")
        store.close()
    return {
        "figures": {
            "store_size_per_task_run": {
                "wfkit": wf, "plain": plain, "n": n,
                "details": {
                    "method": "(size of a store after a flow of N tasks - size after an empty "
                    "flow) / N; db + -wal + -shm after close",
                    "raw_file_bytes_N": raw,
                    "raw_bytes_per_run_incl_schema": [r / n for r in raw],
                },
            }
        },
        **checks.as_dict(),
    }  # fmt: skip


# -- entering the test harness ----------------------------------------------------------------
def w_harness(p: dict[str, Any]) -> dict[str, Any]:
    from contextlib import ExitStack
    from unittest import mock

    t = perf()
    import wfkit  # noqa: F401
    from wfkit import flow, task
    from wfkit.context import using_default_runtime
    from wfkit.testing import harness

    import_ms = (perf() - t) * 1e3
    checks = Checks()
    t = perf()
    with harness():
        pass
    cold_ms = (perf() - t) * 1e3

    def fake_sleep(seconds: float) -> None:
        pass

    def plain_entry(freeze: bool) -> None:
        with ExitStack() as stack:
            stack.enter_context(mock.patch("time.sleep", fake_sleep))
            if freeze:
                import freezegun

                stack.enter_context(freezegun.freeze_time("2026-01-01T00:00:00Z"))
            store: dict[str, Any] = {}
            del store

    def entry(freeze: bool) -> None:
        with harness(freeze=freeze):
            pass

    n, repeat = p["n"], p["repeat"]
    out: dict[str, dict[str, list[float]]] = {}
    for freeze in (True, False):
        for _ in range(5):
            entry(freeze)
            plain_entry(freeze)
    for _ in range(repeat):
        for freeze in (True, False):
            name = "harness_entry" if freeze else "harness_entry_nofreeze"
            fig = out.setdefault(name, {"wfkit": [], "plain": []})
            fig["plain"].append(per_call_us(lambda f=freeze: plain_entry(f), n)[0] / 1e3)
            fig["wfkit"].append(per_call_us(lambda f=freeze: entry(f), n)[0] / 1e3)

    # verification: runs inside go to the harness store, sleeps are virtual, all restored after
    @task(name="bench-sleeper")
    def sleeper() -> int:
        time.sleep(30)
        return 1

    @flow(name="bench-harnessed")
    def harnessed() -> int:
        return sleeper()

    for freeze in (True, False):
        t = perf()
        with harness(freeze=freeze) as h:
            r = harnessed()
            runs, task_runs, elapsed = h.flow_runs(), h.task_runs(), h.clock.elapsed
        wall = perf() - t
        checks.check(r == 1, "flow result inside the harness")
        check_runs(checks, runs, 1, DONE, "flow run in the harness store")
        check_runs(checks, task_runs, 1, DONE, "task run in the harness store")
        checks.check(float(elapsed) == 30.0, "time.sleep(30) moved the fake clock 30 s", elapsed)
        checks.check(wall < 5, "time.sleep(30) did not wait", wall)
        checks.check(using_default_runtime(), "the default runtime is back after exit")
    home_db = Path(os.environ["WFKIT_HOME"]) / "wfkit.db"
    checks.check(not home_db.exists(), "nothing was written to WFKIT_HOME", home_db)
    return {
        "figures": {
            name: {
                **fig, "n": n,
                "details": {"cold_first_entry_ms": cold_ms, "import_wfkit_testing_ms": import_ms}
                if name == "harness_entry" else {},
            }
            for name, fig in out.items()
        },
        **checks.as_dict(),
    }  # fmt: skip


# -- a test whose task retries 3 times with 60 s delays, in-process ---------------------------
def w_retry(p: dict[str, Any]) -> dict[str, Any]:
    from unittest import mock

    from wfkit import task
    from wfkit.testing import harness

    @task(name="bench-flaky", retries=3, retry_delay_seconds=60)
    def flaky(calls: list) -> str:
        calls.append(1)
        if len(calls) <= 3:
            raise ConnectionError("down")
        return "ok"

    def plain_flaky(calls: list) -> str:
        calls.append(1)
        if len(calls) <= 3:
            raise ConnectionError("down")
        return "ok"

    def plain_test() -> tuple[Any, ...]:
        calls: list[int] = []
        with mock.patch("time.sleep") as fake:
            for attempt in range(4):
                try:
                    result = plain_flaky(calls)
                    break
                except ConnectionError:
                    if attempt == 3:
                        raise
                    time.sleep(60)
            return result, [c.args[0] for c in fake.call_args_list], len(calls), None

    def wf_test() -> tuple[Any, ...]:
        calls: list[int] = []
        error = None
        with harness() as h:
            result = flaky(calls)
            try:
                h.assert_states(flaky, RETRIED_3)
            except AssertionError as exc:
                error = str(exc)
            sleeps = [float(s) for s in h.clock.sleeps]
        return result, sleeps, len(calls), error

    checks = Checks()
    t = perf()
    first = wf_test()
    cold_ms = (perf() - t) * 1e3
    n, repeat = p["n"], p["repeat"]
    wf, plain, outcomes = [], [], [first]
    for _ in range(repeat):
        dt, r = timed(lambda: [plain_test() for _ in range(n)])
        plain.append(dt / n * 1e3)
        checks.check(r[-1][:3] == ("ok", [60, 60, 60], 4), "plain retry test outcome", r[-1])
        dt, r = timed(lambda: [wf_test() for _ in range(n)])
        wf.append(dt / n * 1e3)
        outcomes.extend(r)
    for result, sleeps, calls, error in outcomes:
        checks.check(result == "ok", "the task's result after 3 failures", result)
        checks.check(sleeps == [60.0, 60.0, 60.0], "fake clock slept 60 s three times", sleeps)
        checks.check(calls == 4, "the body ran 4 times", calls)
        checks.check(error is None, f"assert_states({RETRIED_3})", error)
    return {
        "figures": {
            "retry_test_in_process": {
                "wfkit": wf, "plain": plain, "n": n,
                "details": {"cold_first_test_ms": cold_ms},
            }
        },
        **checks.as_dict(),
    }  # fmt: skip


# -- check what the first-call script left in the store ---------------------------------------
def w_first_call_verify(p: dict[str, Any]) -> dict[str, Any]:
    from wfkit.stores import open_store

    checks = Checks()
    db = Path(p["db"])
    checks.check(db.exists(), f"the store file was created in {p['where']}", db)
    if db.exists():
        store = open_store(f"sqlite:///{db}")
        runs = store.flow_runs(flow_name="bench-first")
        check_runs(checks, runs, 1, DONE, "flow run recorded")
        if runs:
            checks.check(runs[0].parameters == {"x": 41}, "parameters recorded", runs[0].parameters)
        store.close()
    return checks.as_dict()


WORKLOADS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "empty_flow": w_empty_flow,
    "sequential": w_sequential,
    "task_map": w_task_map,
    "cache_hit": w_cache_hit,
    "flow_rss": w_flow_rss,
    "store_size": w_store_size,
    "harness": w_harness,
    "retry": w_retry,
    "first_call_verify": w_first_call_verify,
    "crash_loss": w_crash_loss,
}


def main() -> None:
    name, params = sys.argv[1], json.loads(sys.argv[2])
    try:
        result = WORKLOADS[name](params)
    except Exception as exc:  # report, do not hide: the orchestrator marks the figure failed
        traceback.print_exc()
        result = {"status": "error", "reason": f"{type(exc).__name__}: {exc}"[:2000]}
    emit(result)


if __name__ == "__main__":
    main()
