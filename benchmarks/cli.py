"""How fast ``wf`` answers, as whole processes, against a large SQLite store.

The store holds 100,000 flow runs and 1,000,000 task runs: one flow run of 100,000 task runs
(for ``wf runs show``) and 99,999 flow runs of about nine task runs each, every run with a
full history (Pending, Running, Completed; one in fifty Failed) and a few log lines. It is
written once through the store's recorder API (the rows a real run writes, without the
engine's cost) and cached, keyed by the schema version, so later runs only measure. Building
it takes a few minutes.

Each figure is the fastest of ``--repeat`` whole-process runs of ``python -m wfkit ...``
(interpreter start, imports, opening the store read-only, the query, printing), stdout to a
pipe: its wall time, and its CPU time (less disturbed by other processes on the machine). It prints one JSON document, with the targets of issue 13 beside the figures:
``wf runs ls`` <= 150 ms, ``wf runs show`` on the 100,000-task run <= 300 ms, ``wf --help``
<= 100 ms.

    python benchmarks/cli.py [--cache-dir DIR] [--repeat 7] [--src PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FLOW_RUNS = 100_000
TASK_RUNS = 1_000_000
BIG_RUN_TASKS = 100_000
_BUILD = 2  # bump when build() changes, so that a cached store is rebuilt
TARGETS_MS = {"help": 100, "runs_ls": 150, "runs_show_100k": 300}


def build(path: Path) -> str:
    """Write the store at ``path``; the id of the flow run with 100,000 task runs."""
    from wfkit.states import Completed, Failed, Pending, Running
    from wfkit.stores import FlowRunSnapshot, LogEntry, TaskRunSnapshot
    from wfkit.stores.sqlite import SqliteStore

    store = SqliteStore(path, commit_interval=60)  # (flushes itself every 1,000 rows)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    small = (TASK_RUNS - BIG_RUN_TASKS) // (FLOW_RUNS - 1)
    extra = (TASK_RUNS - BIG_RUN_TASKS) - small * (FLOW_RUNS - 1)
    big_id = ""
    for i in range(FLOW_RUNS):
        start = t0 + timedelta(seconds=i * 30)
        flow_id = f"{i:08x}-0000-4000-8000-{i:012x}"
        n_tasks = BIG_RUN_TASKS if i == FLOW_RUNS // 2 else small + (1 if i < extra else 0)
        if n_tasks == BIG_RUN_TASKS:
            big_id = flow_id
        final = Failed if i % 50 == 0 else Completed

        def flow(state: object, i: int = i, flow_id: str = flow_id) -> FlowRunSnapshot:
            return FlowRunSnapshot(
                flow_id, f"run-{i}", f"flow-{i % 20}", "1", {"i": i}, ("nightly",) if i % 3 else (),
                None, None, flow_id, 1, state, "bench-host", 4242, "pipelines.etl:flow",
            )  # fmt: skip

        store.record_flow_run(flow(Pending(timestamp=start)))
        store.record_flow_run(flow(Running(timestamp=start)))
        store.record_log(LogEntry(flow_id, None, 20, "wfkit.flow_runs", f"Beginning {i}", start))
        for j in range(n_tasks):
            task_id = f"{i:08x}-{j % 65536:04x}-4000-9000-{j:012x}"
            at = start + timedelta(milliseconds=j)
            for state in (Pending(timestamp=at), Running(timestamp=at), Completed(timestamp=at)):
                store.record_task_run(
                    TaskRunSnapshot(
                        task_id,
                        f"task-{j % 7}-{j}",
                        f"task-{j % 7}",
                        flow_id,
                        {"j": j},
                        (),
                        None,
                        (),
                        1,
                        state,
                        "bench-host",
                        4242,
                    )  # fmt: skip
                )
            if n_tasks == BIG_RUN_TASKS:
                store.record_log(LogEntry(flow_id, task_id, 20, "wfkit.task_runs", f"t{j}", at))
        end = start + timedelta(seconds=20)
        store.record_flow_run(flow(final(timestamp=end)))
        store.record_log(LogEntry(flow_id, None, 20, "wfkit.flow_runs", f"Finished {i}", end))
    store.close()
    return big_id


def cached_store(cache_dir: Path) -> tuple[Path, str]:
    """The benchmark store (built if missing) and its big run's id."""
    from wfkit.stores._sqlite_schema import SCHEMA_VERSION

    # (the name changes with the schema, and with what build() writes: _BUILD)
    path = cache_dir / f"wfkit-cli-bench-v{SCHEMA_VERSION}.{_BUILD}.db"
    marker = path.with_suffix(".json")
    if not marker.exists():
        for stale in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            stale.unlink(missing_ok=True)
        started = time.perf_counter()
        big_id = build(path)
        marker.write_text(
            json.dumps({"big_run_id": big_id, "build_seconds": time.perf_counter() - started})
        )
    return path, json.loads(marker.read_text())["big_run_id"]


def whole_process_ms(args: list[str], env: dict[str, str], repeat: int) -> dict[str, float]:
    """The fastest of ``repeat`` runs of ``python -m wfkit ARGS``: wall time, and the CPU
    time (user + system) the process used, which other processes on a shared machine
    disturb less; in milliseconds."""
    best_wall = best_cpu = float("inf")
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "wfkit", *args], env=env, capture_output=True, text=True
        )
        elapsed = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode != 0:
            raise SystemExit(f"wf {' '.join(args)} failed: {done.stderr}")
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        best_wall, best_cpu = min(best_wall, elapsed), min(best_cpu, cpu)
    return {"wall": round(best_wall * 1000, 1), "cpu": round(best_cpu * 1000, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--src", type=Path, default=ROOT / "src", help="wfkit sources to run")
    options = parser.parse_args()
    sys.path.insert(0, str(options.src))
    path, big_id = cached_store(options.cache_dir)
    env = {**os.environ, "PYTHONPATH": str(options.src), "WFKIT_HOME": str(options.cache_dir)}
    url = f"sqlite:///{path}"
    figures = {
        "help": whole_process_ms(["--help"], env, options.repeat),
        "runs_ls": whole_process_ms(["runs", "ls", "--store", url], env, options.repeat),
        "runs_show_100k": whole_process_ms(
            ["runs", "show", big_id, "--store", url], env, options.repeat
        ),
        "python_startup": {"wall": _bare_python_ms(options.repeat)},
    }
    print(
        json.dumps(
            {
                "store": {
                    "path": str(path),
                    "flow_runs": FLOW_RUNS,
                    "task_runs": TASK_RUNS,
                    "size_bytes": path.stat().st_size,
                },
                "ms": figures,
                "targets_ms": TARGETS_MS,
                "within_targets": {k: figures[k]["wall"] <= v for k, v in TARGETS_MS.items()},
            },
            indent=2,
        )
    )


def _bare_python_ms(repeat: int) -> float:
    """``python -c pass``: the part of every figure that is the interpreter's."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        best = min(best, time.perf_counter() - started)
    return round(best * 1000, 1)


if __name__ == "__main__":
    main()
