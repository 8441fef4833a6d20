"""Instructions per task, counted by valgrind: a noise-free A/B measure for engine changes.

Wall and CPU times on a shared machine move by 20% and more from one minute to the next;
the number of instructions a task run executes does not (it varies by ~0.1% between runs).
This runs a workload twice under ``valgrind --tool=cachegrind`` (with N and 4N task calls)
and divides the difference of the two instruction counts by 3N, so that interpreter start,
imports and warm-up cancel out. It prints one JSON document.

    python benchmarks/instructions.py [--workload memory|sqlite|cache_hit|remote] [--n 1000]
        [--src PATH]    # measure the wfkit in PATH/wfkit (e.g. a worktree of another commit)

Needs valgrind (Debian: ``apt-get install valgrind``); a run takes about ten seconds. These
counts compare versions of wfkit with each other; the benchmark's times remain the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

# Each workload calls a trivial task sys.argv[1] times inside one flow, after a warm-up call.
_SEQUENTIAL = """\
import sys
from contextlib import nullcontext
from wfkit import flow, task
from wfkit.context import use_runtime

@task(name="bench-inc")
def inc(x):
    return x + 1

@flow(name="bench-seq")
def seq(n):
    return sum(inc(i) for i in range(n))

n = int(sys.argv[1])
with STORE:
    seq(300)
    assert seq(n) == n * (n + 1) // 2
"""
# A cluster runner's own work, without the cluster: each run of a submit().result() chain
# goes through the cluster runners' machinery (ChunkSender, the outcome's replay) and, in
# this process, through what a worker does (unpickle the chunk, run_chunk_on_worker with
# its lines left to the flow's process, pickle the result), as on a Ray worker.
_REMOTE = """\
import pickle
import sys
from wfkit import flow, task
from wfkit.logging import lines_shown_elsewhere
from wfkit.task_runners._cluster import ClusterRunner, run_chunk_on_worker

@task(name="bench-inc")
def inc(x):
    return x + 1

def on_worker(data):
    with lines_shown_elsewhere():
        return pickle.dumps(run_chunk_on_worker(pickle.loads(data), lambda run_id, event: None))

class InProcess(ClusterRunner):
    def duplicate(self):
        return InProcess()
    def _connect(self):
        return 1
    def _run_chunk_now(self, remotes, group):
        return pickle.loads(on_worker(pickle.dumps(remotes)))
    def _submit_chunk(self, remotes, group, deliver):
        deliver(self._run_chunk_now(remotes, group))
    def _disconnect(self):
        pass

@flow(name="bench-remote", task_runner=InProcess())
def chain(n):
    value = 0
    for _ in range(n):
        value = inc.submit(value).result()
    return value

n = int(sys.argv[1])
chain(300)
assert chain(n) == n
"""
WORKLOADS = {
    "remote": _REMOTE,
    "memory": _SEQUENTIAL.replace("STORE", 'use_runtime(store="memory://")'),
    "sqlite": _SEQUENTIAL.replace("STORE", "nullcontext()"),  # the configured store: SQLite
    "cache_hit": """\
import sys
from wfkit import flow, task
from wfkit.cache_policies import INPUTS

@task(name="bench-cached", cache_policy=INPUTS)
def cached(x):
    return x * 2

@flow(name="bench-hits")
def hits(n):
    return sum(cached(7) for _ in range(n))

n = int(sys.argv[1])
hits(300)
assert hits(n) == 14 * n
""",
}


def count(script: Path, n: int, env: dict[str, str]) -> int:
    """Instructions executed by ``python script n``."""
    proc = subprocess.run(
        ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
         sys.executable, str(script), str(n)],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    found = re.search(r"I\s+refs:\s+([\d,]+)", proc.stderr)
    if proc.returncode != 0 or found is None:
        raise SystemExit(f"valgrind run failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    return int(found.group(1).replace(",", ""))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python benchmarks/instructions.py", description=__doc__)
    ap.add_argument("--workload", choices=sorted(WORKLOADS), default="memory")
    ap.add_argument("--n", type=int, default=1000, help="task calls of the smaller run")
    ap.add_argument("--src", default=None, help="directory holding the wfkit package to measure")
    args = ap.parse_args(argv)
    if shutil.which("valgrind") is None:
        ap.error("valgrind is not installed (Debian: apt-get install valgrind)")
    if args.n < 1:
        ap.error("--n must be >= 1")
    with tempfile.TemporaryDirectory(prefix="wfkit-instructions-") as tmp:
        script = Path(tmp) / "workload.py"
        script.write_text(WORKLOADS[args.workload])
        env = {k: v for k, v in os.environ.items() if not k.startswith("WFKIT_")}
        env |= {"WFKIT_HOME": str(Path(tmp) / "home"), "PYTHONHASHSEED": "0"}
        if args.src:
            env["PYTHONPATH"] = os.path.abspath(args.src)
        small, large = count(script, args.n, env), count(script, 4 * args.n, env)
    print(
        json.dumps(
            {
                "workload": args.workload,
                "src": args.src,
                "calls": [args.n, 4 * args.n],
                "instructions": [small, large],
                "instructions_per_task": round((large - small) / (3 * args.n)),
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
