"""Dask and Ray runner figures beside raw Dask and raw Ray, in the same run, on the same
cluster: a LocalCluster of 2 worker processes with 1 thread each / ``ray.init(num_cpus=2)``.

    PYTHONPATH=src .venv/bin/python benchmarks/cluster.py [--map N] [--chain M] [--repeat R]
        [--only dask,ray] [--store memory|sqlite] [--peak-rss N]
        [--prefect-python ../prefect-venv/bin/python [--prefect-map N]]

Prints one JSON document: per-task milliseconds for ``task.map`` over N trivial items plus
their results (vs ``client.map`` + ``client.gather`` / ``[f.remote(x) ...]`` + ``ray.get``),
for a chain of M ``submit(...).result()`` calls (vs raw ``client.submit(...).result()`` /
``ray.get(f.remote(x))``), and for a chain of M submissions each passed the previous one's
future, one result at the end (vs raw ``client.submit(inc, future)`` / ``f.remote(ref)``:
dependencies that the cluster resolves), and for the same futures chain of a task with a
cache policy (the old path: each link waits for its upstream value in the flow's process;
vs the raw ``submit(...).result()`` chain), medians of R rounds (each round times every workload, wfkit's and raw, once: a load
coming and going weighs on both alike), with the ratios. Ray's
chains are also compared with raw tasks that write one line each (``*_vs_printing``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
# The cluster's worker processes import the benchmark's tasks by name.
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in [str(HERE), os.environ.get("PYTHONPATH", "")] if p
)

import _cluster_tasks as tasks  # noqa: E402

from wfkit import flow  # noqa: E402
from wfkit.context import use_runtime  # noqa: E402


def _timed(run: Callable[[], Any], n: int) -> float:
    started = time.perf_counter()
    run()
    return (time.perf_counter() - started) * 1000 / n


def _interleaved(
    runs: dict[str, Callable[[], Any]], sizes: dict[str, int], repeat: int
) -> dict[str, dict[str, Any]]:
    """Per-task milliseconds of each of ``runs`` (``sizes[name]`` tasks each): ``repeat``
    rounds, each timing every run once, so that a load coming and going on the machine
    weighs on wfkit and on its raw baseline alike; medians and samples."""
    samples: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeat):
        for name, run in runs.items():
            samples[name].append(_timed(run, sizes[name]))
    return {
        name: {"median": statistics.median(values), "samples": values}
        for name, values in samples.items()
    }


def _figure(name: str, wfkit: dict[str, Any], raw: dict[str, Any], n: int) -> dict[str, Any]:
    return {
        "name": name,
        "unit": "ms per task",
        "n": n,
        "wfkit": wfkit,
        "raw": raw,
        "ratio": wfkit["median"] / raw["median"],
    }


def _wfkit_runs(runner: Any, label: str, args: argparse.Namespace) -> dict[str, Callable[[], Any]]:
    """The four wfkit workloads on ``runner``, each checking its result."""

    @flow(task_runner=runner)
    def mapped(n: int) -> list[int]:
        return tasks.inc_task.map(range(n)).result()

    @flow(task_runner=runner)
    def chained(m: int) -> int:
        value = 0
        for _ in range(m):
            value = tasks.inc_task.submit(value).result()
        return value

    @flow(task_runner=runner)
    def futures_chained(m: int) -> int:
        future = tasks.inc_task.submit(0)
        for _ in range(m - 1):
            future = tasks.inc_task.submit(future)  # type: ignore[call-overload]
        return future.result()  # type: ignore[no-any-return]

    @flow(task_runner=runner)
    def cached_chained(m: int, salt: str) -> int:
        future = tasks.cached_inc_task.submit(0, salt)
        for _ in range(m - 1):
            future = tasks.cached_inc_task.submit(future, salt)  # type: ignore[call-overload]
        return future.result()  # type: ignore[no-any-return]

    salts = iter(range(1_000_000))

    def check_map() -> None:
        assert mapped(args.map) == list(range(1, args.map + 1))

    def check_chain() -> None:
        assert chained(args.chain) == args.chain

    def check_futures_chain() -> None:
        assert futures_chained(args.chain) == args.chain

    def check_cached_chain() -> None:
        assert cached_chained(args.chain, f"{label}-{next(salts)}") == args.chain

    # (warm: the workers import wfkit and the tasks, the runner connects)
    mapped(50), chained(5), futures_chained(5)
    return {
        "map": check_map,
        "cached_chain": check_cached_chain,
        "chain": check_chain,
        "futures_chain": check_futures_chain,
    }


_KINDS = ("map", "chain", "futures_chain", "cached_chain")
# The raw baseline of each kind: a cached futures chain (the old path: each link waits in
# the flow's process for its upstream value) against raw submit().result() links.
_RAW = {"map": "map", "chain": "chain", "futures_chain": "futures_chain", "cached_chain": "chain"}


def _compared(
    prefix: str,
    ours: dict[str, Callable[[], Any]],
    raw: dict[str, Callable[[], Any]],
    printing: dict[str, Callable[[], Any]],
    args: argparse.Namespace,
) -> list[dict[str, Any]]:
    """Time wfkit's runs beside the raw ones, interleaved; a figure per kind (and per kind
    of ``printing``, the raw runs whose tasks write a line each)."""
    runs = {f"raw_{kind}": run for kind, run in raw.items()}
    runs |= {f"printing_{kind}": run for kind, run in printing.items()}
    runs |= {kind: ours[kind] for kind in _KINDS}
    sizes = {name: args.map if name.endswith("map") else args.chain for name in runs}
    timed = _interleaved(runs, sizes, args.repeat)
    figures = [
        _figure(f"{prefix}_{kind}", timed[kind], timed[f"raw_{_RAW[kind]}"], sizes[kind])
        for kind in _KINDS
    ]
    figures += [
        _figure(f"{prefix}_{kind}_vs_printing", timed[kind], timed[f"printing_{kind}"], args.chain)
        for kind in printing
    ]
    return figures


def dask_figures(args: argparse.Namespace) -> list[dict[str, Any]]:
    import distributed

    from wfkit.task_runners.dask import DaskTaskRunner

    with (
        distributed.LocalCluster(
            processes=True, n_workers=2, threads_per_worker=1, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster, set_as_default=False) as client,
    ):

        def raw_map() -> None:
            futures = client.map(tasks.inc, range(args.map), pure=False)
            assert client.gather(futures) == list(range(1, args.map + 1))

        def raw_chain() -> None:
            value = 0
            for _ in range(args.chain):
                value = client.submit(tasks.inc, value, pure=False).result()
            assert value == args.chain

        def raw_futures_chain() -> None:
            future = client.submit(tasks.inc, 0, pure=False)
            for _ in range(args.chain - 1):
                future = client.submit(tasks.inc, future, pure=False)
            assert future.result() == args.chain

        raw_map()  # (warm the workers: imports)
        raw = {"map": raw_map, "chain": raw_chain, "futures_chain": raw_futures_chain}
        ours = _wfkit_runs(DaskTaskRunner(cluster=cluster), "dask", args)
        return _compared("dask", ours, raw, {}, args)


def ray_figures(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Ray's figures. Besides the raw baselines, the chains are also timed with a task that
    writes one line to stderr per link, like for like with wfkit's one log line per task
    run (which a Ray worker's console sends through Ray's log monitor to the driver)."""
    import ray

    from wfkit.task_runners.ray import RayTaskRunner

    ray.init(num_cpus=2, include_dashboard=False)  # (log_to_driver as users have it: on)
    try:
        remote_inc = ray.remote(tasks.inc)
        remote_printing = ray.remote(tasks.inc_printing)

        def raw_map() -> None:
            refs = [remote_inc.remote(x) for x in range(args.map)]
            assert ray.get(refs) == list(range(1, args.map + 1))

        def raw_chain(remote: Any = remote_inc) -> None:
            value = 0
            for _ in range(args.chain):
                value = ray.get(remote.remote(value))
            assert value == args.chain

        def raw_futures_chain(remote: Any = remote_inc) -> None:
            ref = remote.remote(0)
            for _ in range(args.chain - 1):
                ref = remote.remote(ref)
            assert ray.get(ref) == args.chain

        raw_map()
        raw = {"map": raw_map, "chain": raw_chain, "futures_chain": raw_futures_chain}
        printing = {
            "chain": lambda: raw_chain(remote_printing),
            "futures_chain": lambda: raw_futures_chain(remote_printing),
        }
        ours = _wfkit_runs(RayTaskRunner(), "ray", args)
        return _compared("ray", ours, raw, printing, args)
    finally:
        ray.shutdown()


def _peak_rss_child(kind: str, n: int) -> None:
    """In a fresh process: map ``n`` items on a LocalCluster (its scheduler lives in this
    process, as for a flow's temporary cluster), print the process's peak RSS in MiB."""
    import resource

    import distributed

    from wfkit.task_runners.dask import DaskTaskRunner

    with distributed.LocalCluster(
        processes=True, n_workers=2, threads_per_worker=1, dashboard_address=":0"
    ) as cluster:
        if kind == "raw":
            with distributed.Client(cluster, set_as_default=False) as client:
                results = client.gather(client.map(tasks.inc, range(n), pure=False))
        else:

            @flow(task_runner=DaskTaskRunner(cluster=cluster), log_prints=False)
            def mapped() -> list[int]:
                return tasks.inc_task.map(range(n)).result()

            with use_runtime(store="memory://"):
                results = mapped()
        assert results == list(range(1, n + 1))
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def peak_rss_figure(n: int) -> dict[str, Any]:
    import subprocess

    def measure(kind: str) -> float:
        out = subprocess.run(
            [sys.executable, __file__, "--peak-child", kind, "--map", str(n)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return float(out.strip().splitlines()[-1])

    wfkit, raw = measure("wfkit"), measure("raw")
    return {
        "name": "dask_map_peak_rss",
        "unit": "MiB (the flow's process, with the LocalCluster's scheduler in it)",
        "n": n,
        "wfkit": wfkit,
        "raw": raw,
        "ratio": wfkit / raw,
    }


def prefect_figure(python: str, n: int, ours: float) -> dict[str, Any]:
    """prefect-dask's per-task cost for the same map (``_cluster_prefect.py``, run with
    ``python``, a fresh ``PREFECT_HOME``), beside wfkit's from this run."""
    import subprocess

    with tempfile.TemporaryDirectory(prefix="wfkit-prefect-home-") as home:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "PYTHON"))}
        env["PREFECT_HOME"] = home
        out = subprocess.run(
            [python, str(HERE / "_cluster_prefect.py"), str(n)],
            capture_output=True,
            text=True,
            check=True,
            env=env,
            cwd=home,
        ).stdout
    prefect = json.loads(out.strip().splitlines()[-1])["ms_per_task"]
    return {
        "name": "prefect_dask_map",
        "unit": "ms per task (prefect-dask 3.8.8, temporary servers; timed in the flow body)",
        "n": n,
        "prefect": prefect,
        "wfkit": ours,
        "prefect_over_wfkit": prefect / ours,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--map", type=int, default=10_000)
    parser.add_argument("--chain", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", default="dask,ray")
    parser.add_argument("--store", choices=["memory", "sqlite"], default="sqlite")
    parser.add_argument("--peak-rss", type=int, default=0, help="also: peak RSS for N items")
    parser.add_argument("--prefect-python", help="a Python with prefect 3.8.8 and prefect-dask")
    parser.add_argument("--prefect-map", type=int, default=500, help="N for prefect-dask's map")
    parser.add_argument("--peak-child", choices=["wfkit", "raw"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peak_child:
        _peak_rss_child(args.peak_child, args.map)
        return
    with tempfile.TemporaryDirectory(prefix="wfkit-cluster-bench-") as tmp:
        url = "memory://" if args.store == "memory" else f"sqlite:///{tmp}/wfkit.db"
        figures: list[dict[str, Any]] = []
        with use_runtime(store=url):
            for name in args.only.split(","):
                figures += {"dask": dask_figures, "ray": ray_figures}[name](args)
        if args.prefect_python:
            ours = next(f for f in figures if f["name"] == "dask_map")["wfkit"]["median"]
            figures.append(prefect_figure(args.prefect_python, args.prefect_map, ours))
        if args.peak_rss:
            figures.append(peak_rss_figure(args.peak_rss))
    print(json.dumps({"store": args.store, "figures": figures}, indent=2))


if __name__ == "__main__":
    main()
