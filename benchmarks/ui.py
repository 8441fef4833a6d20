"""How fast ``wf ui`` serves its pages, on the CLI benchmark's store (100,000 flow runs,
1,000,000 task runs, one run of 100,000 task runs; built once and cached by benchmarks/cli.py)
and on a small store holding one run of 10,000 task runs (built here, cached too).

``wf ui`` runs as a subprocess, as users start it. For each page it prints:

- ``server_ms``: the fastest of ``--repeat`` HTTP GETs over loopback (the server's time to
  read the store and render, plus a local round trip);
- ``startup_ms``: from starting ``wf ui`` to its first page served (target: 1 s);
- ``browser_ms``: the fastest of ``--repeat`` full page loads in Chromium (navigation start
  to the load event: HTML, the stylesheet, htmx, layout), through Playwright; left out if
  Playwright or Chromium is missing.

The targets of issue 14 stand beside the figures: the runs page <= 100 ms, a flow run of
10,000 task runs <= 300 ms, one of 100,000 <= 1 s.

    python benchmarks/ui.py [--cache-dir DIR] [--repeat 5] [--src PATH]
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
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cli import ROOT, cached_store

TARGETS_MS = {"runs": 100, "run_10k": 300, "run_100k": 1000}
_MID_TASKS = 10_000


def mid_store(cache_dir: Path) -> tuple[Path, str]:
    """A store with one finished flow run of 10,000 task runs (built if missing), its id."""
    from wfkit.states import Completed, Pending, Running
    from wfkit.stores import FlowRunSnapshot, TaskRunSnapshot
    from wfkit.stores._sqlite_schema import SCHEMA_VERSION
    from wfkit.stores.sqlite import SqliteStore

    path = cache_dir / f"wfkit-ui-bench-10k-v{SCHEMA_VERSION}.db"
    run_id = "0000000a-0000-4000-8000-000000010000"
    if path.exists():
        return path, run_id
    store = SqliteStore(path, commit_interval=60)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)

    def flow(state: Any) -> FlowRunSnapshot:
        return FlowRunSnapshot(
            run_id, "mid-run", "mid", "1", {}, (), None, None, run_id, 1, state, "h", 1, None
        )  # fmt: skip

    store.record_flow_run(flow(Pending(timestamp=t0)))
    store.record_flow_run(flow(Running(timestamp=t0)))
    for j in range(_MID_TASKS):
        at = t0 + timedelta(milliseconds=j)
        for state in (Pending(timestamp=at), Running(timestamp=at), Completed(timestamp=at)):
            store.record_task_run(
                TaskRunSnapshot(
                    f"{j:08x}-0000-4000-9000-{j:012x}",
                    f"task-{j % 7}-{j}",
                    f"task-{j % 7}",
                    run_id,
                    {"j": j},
                    (),
                    None,
                    (),
                    1,
                    state,
                    "h",
                    1,
                )  # fmt: skip
            )
    store.record_flow_run(flow(Completed(timestamp=t0 + timedelta(seconds=10))))
    store.close()
    return path, run_id


class Server:
    """``wf ui --port 0`` on a store, in a subprocess."""

    def __init__(self, store: Path, env: dict[str, str]) -> None:
        started = time.perf_counter()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "wfkit", "ui", "--store", f"sqlite:///{store}", "--port", "0"],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        found = re.search(r"http://\S+/", self.proc.stdout.readline())
        if found is None:
            raise SystemExit("wf ui did not start")
        self.url = found[0]
        with urllib.request.urlopen(self.url, timeout=120) as response:  # (serving, too)
            response.read()
        self.startup_ms = round((time.perf_counter() - started) * 1000, 1)

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def server_ms(url: str, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        with urllib.request.urlopen(url, timeout=120) as response:
            response.read()
        best = min(best, time.perf_counter() - started)
    return round(best * 1000, 1)


def browser_ms(urls: dict[str, str], repeat: int) -> dict[str, float]:
    """Full page loads in Chromium, or {} without Playwright or Chromium."""
    chromium = shutil.which("chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return {}
    if chromium is None:
        return {}
    figures = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, args=["--no-sandbox", "--disable-gpu", "--no-first-run"]
        )
        page = browser.new_page()
        for name, url in urls.items():
            best = float("inf")
            for _ in range(repeat):
                page.goto(url, wait_until="load")
                nav = page.evaluate("performance.getEntriesByType('navigation')[0].duration")
                best = min(best, float(nav))
            figures[name] = round(best, 1)
        browser.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--src", type=Path, default=ROOT / "src", help="wfkit sources to run")
    options = parser.parse_args()
    sys.path.insert(0, str(options.src))
    big_path, big_id = cached_store(options.cache_dir)
    mid_path, mid_id = mid_store(options.cache_dir)
    env = {**os.environ, "PYTHONPATH": str(options.src), "WFKIT_HOME": str(options.cache_dir)}
    big, mid = Server(big_path, env), Server(mid_path, env)
    try:
        urls = {
            "runs": big.url,
            "runs_failed_nightly": f"{big.url}?state=Failed&tag=nightly",
            "runs_page_1000": f"{big.url}?before=2026-01-10T00:00:00",
            "run_small": f"{big.url}runs/00000001-0000-4000-8000-000000000001",
            "run_10k": f"{mid.url}runs/{mid_id}",
            "run_100k": f"{big.url}runs/{big_id}",
            "flow": f"{big.url}flows/flow-3",
            "store": f"{big.url}store",
        }
        server = {name: server_ms(url, options.repeat) for name, url in urls.items()}
        browser = browser_ms(urls, options.repeat)
    finally:
        big.close()
        mid.close()
    print(
        json.dumps(
            {
                "stores": {"big": str(big_path), "run_10k": str(mid_path)},
                "startup_ms": {"to_first_page": big.startup_ms},
                "server_ms": server,
                "browser_ms": browser,
                "targets_ms": TARGETS_MS,
                "within_targets": {
                    k: server[k] <= v and browser.get(k, 0) <= v for k, v in TARGETS_MS.items()
                },
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
