"""prefect-dask's figure for benchmarks/cluster.py, run with Prefect's interpreter (a separate
virtualenv with prefect 3.8.8 and prefect-dask): ``task.map`` over N trivial items plus their
results on a LocalCluster of 2 worker processes with 1 thread each, timed inside the flow body
(the cluster's start, and the temporary server's, are outside). Default mode: every worker
reaches Prefect's API through its own temporary server. Prints one JSON line."""

from __future__ import annotations

import json
import sys
import time

from prefect import flow, task
from prefect_dask import DaskTaskRunner


@task
def inc(x: int) -> int:
    return x + 1


CLUSTER = {"n_workers": 2, "threads_per_worker": 1, "processes": True, "dashboard_address": ":0"}


@flow(task_runner=DaskTaskRunner(cluster_kwargs=CLUSTER))
def mapped(n: int) -> float:
    started = time.perf_counter()
    results = [future.result() for future in inc.map(range(n))]
    elapsed = time.perf_counter() - started
    assert results == list(range(1, n + 1))
    return elapsed


if __name__ == "__main__":
    n = int(sys.argv[1])
    seconds = mapped(n)
    print(json.dumps({"n": n, "ms_per_task": seconds * 1000 / n}))
