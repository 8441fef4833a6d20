"""The PostgreSQL store's speed, beside SQLite's, on a local server over loopback.

Figures (each workload in a fresh process whose ``WFKIT_STORE`` is the store under test):

- ``sequential_task_us``: a flow calling ``--tasks`` trivial tasks one after another, wall
  time per task, amortised (the flow call's own cost included); target <= 45 µs;
- ``empty_flow_ms``: the median of 200 calls of a flow with an empty body; target <= 2 ms;
- ``processes``: ``--processes`` processes running a flow of 1,000 tasks each at once,
  every one under a host name of its own: task runs stored (none may be lost) and
  task runs per second.

``--url`` points at a database (emptied first: give one for benchmarks only); without it, a
throwaway server is started as tests/postgres does (needs the ``postgresql`` package).

    python benchmarks/postgres.py [--url postgresql://...] [--tasks 5000] [--processes 8]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_WORKLOAD = textwrap.dedent(
    """
    import json, statistics, sys, time
    from wfkit import flow, task

    @task
    def step(x):
        return x

    @flow
    def sequential(n):
        for i in range(n):
            step(i)

    @flow
    def empty():
        pass

    kind, n = sys.argv[1], int(sys.argv[2])
    if kind == "sequential":
        sequential(10)  # warm: imports, the store's schema and connections
        start = time.perf_counter()
        sequential(n)
        print(json.dumps((time.perf_counter() - start) / n * 1e6))
    elif kind == "empty":
        empty()
        times = []
        for _ in range(n):
            start = time.perf_counter()
            empty()
            times.append(time.perf_counter() - start)
        print(json.dumps(statistics.median(times) * 1e3))
    else:
        sequential(n)
    """
)


def _run(url: str, *args: str, host: str | None = None) -> subprocess.Popen[str]:
    env = {**os.environ, "WFKIT_STORE": url, "PYTHONPATH": str(ROOT / "src")}
    env["WFKIT_LOGGING_LEVEL"] = "WARNING"  # (no console line, no stored line per task)
    if host:
        env["WFKIT_TEST_HOST"] = host
    return subprocess.Popen(
        [sys.executable, "-c", _WORKLOAD, *args], env=env, stdout=subprocess.PIPE, text=True
    )


def _figure(url: str, *args: str) -> float:
    out, _ = _run(url, *args).communicate()
    return float(json.loads(out))


def _processes(url: str, count: int, tasks: int = 1000) -> dict[str, float]:
    start = time.perf_counter()
    children = [_run(url, "many", str(tasks), host=f"bench-host-{i}") for i in range(count)]
    codes = [child.wait() for child in children]
    elapsed = time.perf_counter() - start
    sys.path.insert(0, str(ROOT / "src"))
    from wfkit.stores import open_store  # (after the path: this checkout's wfkit)

    with open_store(url, read_only=True) as reader:
        stored = reader.summary().task_runs.get("Completed", 0)
    return {
        "processes": count,
        "exit_codes_ok": all(code == 0 for code in codes),
        "task_runs_expected": count * tasks,
        "task_runs_stored": stored,
        "task_runs_per_second": round(stored / elapsed),
    }


def _empty_database(url: str) -> None:
    import psycopg  # (the postgres extra)

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url")
    parser.add_argument("--tasks", type=int, default=5000)
    parser.add_argument("--processes", type=int, default=8)
    options = parser.parse_args()
    server = None
    url = options.url
    if url is None:
        sys.path.insert(0, str(ROOT))
        from tests.postgres._server import PgServer, server_bin  # (a throwaway server)

        bin_dir = server_bin()
        if bin_dir is None:
            sys.exit("No PostgreSQL server binaries: apt-get install postgresql, or --url.")
        server = PgServer(bin_dir)
        server.start()
        url = server.create_database("wfkit_bench")
    try:
        _empty_database(url)
        with tempfile.TemporaryDirectory() as directory:
            sqlite = f"sqlite:///{directory}/bench.db"
            result = {
                "sequential_task_us": {
                    "postgres": round(_figure(url, "sequential", str(options.tasks)), 1),
                    "sqlite": round(_figure(sqlite, "sequential", str(options.tasks)), 1),
                    "target_postgres": 45,
                },
                "empty_flow_ms": {
                    "postgres": round(_figure(url, "empty", "200"), 3),
                    "sqlite": round(_figure(sqlite, "empty", "200"), 3),
                    "target_postgres": 2,
                },
            }
        _empty_database(url)
        result["processes"] = _processes(url, options.processes)
        print(json.dumps(result, indent=2))
    finally:
        if server is not None:
            server.destroy()


if __name__ == "__main__":
    main()
