"""The benchmark's figures: what each measures, its plain-Python baseline and its target."""

from __future__ import annotations

import dataclasses

FIRST_CALL_PLAIN_WHAT = (
    "call the function, then create a SQLite file and record the run and its 3 states with "
    "sqlite3 (sqlite3 import included)"
)


@dataclasses.dataclass(frozen=True)
class Figure:
    name: str
    title: str
    unit: str
    group: str
    plain: str  # what the plain-Python baseline does
    target_max: float | None = None
    target_text: str | None = None
    prefect: str | None = None  # how Prefect's figure is measured (None: not measured)


FIGURES = [
    Figure(
        name="import_wfkit",
        title='`python -c "import wfkit"`, whole process, wall',
        unit="ms",
        group="import",
        plain='`python -c "pass"`, whole process, wall',
        target_max=120,
        target_text="<= 120 ms",
        prefect='`python -c "import prefect"`',
    ),
    Figure(
        name="import_peak_rss",
        title='`python -c "import wfkit"`, peak RSS of the process',
        unit="MiB",
        group="import",
        plain='`python -c "pass"`, peak RSS',
        target_max=None,
        target_text=None,
        prefect='`python -c "import prefect"`',
    ),
    Figure(
        name="first_flow_call",
        title="first flow call in a fresh process, default configuration: no WFKIT_* variable, HOME a fresh directory, the store file created at $HOME/.wfkit/wfkit.db (perf_counter around the call, inside the process)",
        unit="ms",
        group="first_call",
        plain=FIRST_CALL_PLAIN_WHAT,
        target_max=50,
        target_text="<= 50 ms",
        prefect="cold: fresh PREFECT_HOME, starts a temporary server",
    ),
    Figure(
        name="first_flow_call_wfkit_home",
        title="the same first flow call with WFKIT_HOME set to a fresh directory (a set WFKIT_* variable makes wfkit load and validate its settings with pydantic-settings)",
        unit="ms",
        group="first_call",
        plain=FIRST_CALL_PLAIN_WHAT,
    ),
    Figure(
        name="first_flow_call_process",
        title="fresh process, default configuration: import, define a flow, first call, exit; whole process wall",
        unit="ms",
        group="first_call",
        plain="the same plain script, whole process wall",
        target_max=None,
        target_text=None,
        prefect="the same script with prefect",
    ),
    Figure(
        name="empty_flow_call_warm_sqlite",
        title="empty flow call, warm, SQLite store, per call",
        unit="us",
        group="empty_flow",
        plain="call an empty function",
        target_max=300,
        target_text="<= 300 us",
        prefect="warm (same process as a first call), its default local mode",
    ),
    Figure(
        name="sequential_task_memory",
        title="sequential trivial task inside a flow, per task, in-memory store",
        unit="us",
        group="seq_memory",
        plain="call a trivial function in a loop",
        # No target: the memory store is written to be read, not raced; the figure is reported.
        target_max=None,
        target_text=None,
    ),
    Figure(
        name="sequential_task_sqlite",
        title="sequential trivial task inside a flow, per task, SQLite store",
        unit="us",
        group="seq_sqlite",
        plain="call a trivial function in a loop",
        target_max=30,
        target_text="<= 30 us",
        prefect="its default store, fewer tasks, timed inside the flow body",
    ),
    Figure(
        name="task_map_10k",
        title="task.map over 10,000 items + results, thread pool, per task",
        unit="us",
        group="map",
        plain="ThreadPoolExecutor().map over the same items + results",
        target_max=100,
        target_text="<= 100 us",
        prefect="fewer items, timed inside the flow body",
    ),
    Figure(
        name="cache_hit_sqlite",
        title="cache hit, per call, SQLite store",
        unit="us",
        group="cache",
        plain="functools.cache hit",
        target_max=40,
        target_text="<= 40 us",
        prefect="cache_policy=INPUTS, fewer calls, timed inside the flow body",
    ),
    Figure(
        name="flow_100k_peak_rss",
        title="flow of 100,000 sequential tasks, SQLite: peak RSS",
        unit="MiB",
        group="flow_rss",
        plain="the same loop of plain calls in a fresh process (wfkit never imported)",
        target_max=200,
        target_text="<= 200 MiB",
    ),
    Figure(
        name="flow_100k_rss_growth_per_10k",
        title="flow of 100,000 sequential tasks, SQLite: RSS growth per extra 10k tasks (least-squares slope of RSS sampled every 10k tasks)",
        unit="MiB",
        group="flow_rss",
        plain="the same loop of plain calls",
        target_max=5,
        target_text="<= 5 MiB",
    ),
    Figure(
        name="store_size_per_task_run",
        title="store size per recorded task run (3 states), SQLite",
        unit="bytes",
        group="store_size",
        plain="a minimal hand-written SQLite schema holding the same runs and states",
        target_max=1500,
        target_text="<= 1.5 KB (1500 bytes)",
        prefect="approximate: growth of prefect.db(+wal) while its server runs",
    ),
    Figure(
        name="harness_entry",
        title="entering the test harness: `with harness(): pass` (freeze=True, memory store), per entry",
        unit="ms",
        group="harness",
        plain='mock.patch("time.sleep") + freezegun.freeze_time() + a dict',
        target_max=2,
        target_text="<= 2 ms",
        prefect="`with prefect_test_harness(): pass`",
    ),
    Figure(
        name="harness_entry_nofreeze",
        title="entering the test harness: `with harness(freeze=False): pass`, per entry",
        unit="ms",
        group="harness",
        plain='mock.patch("time.sleep") + a dict',
        target_max=2,
        target_text="<= 2 ms",
    ),
    Figure(
        name="retry_test_in_process",
        title="a test whose task fails 3 times and retries with 60 s delays, under harness() (entry, run, assert_states), wall per test",
        unit="ms",
        group="retry",
        plain="the same retry loop with time.sleep mocked",
        target_max=20,
        target_text="<= 20 ms",
        prefect="task retries=2, retry_delay_seconds=2: real sleeps (2x2 s), warm temporary server",
    ),
    Figure(
        name="retry_test_pytest",
        title="the same test as a pytest file (`python -m pytest -p no:cacheprovider -q`): the test's own duration (setup + call + teardown, timed by a conftest hook around pytest_runtest_protocol), as the first test of its session",
        unit="ms",
        group="retry_pytest",
        plain="the plain test file's test (time.sleep mocked), first of its session",
        target_max=20,
        target_text="<= 20 ms",
    ),
    Figure(
        name="harness_session_warm_up",
        title="what a session that collected harness tests spends loading the harness once (freezegun, asyncio, the engine's modules, freezegun's module scan): the time in pytest_collection_finish, where the wfkit plugin does it",
        unit="ms",
        group="retry_pytest",
        plain="the same hook's time in the plain test file's session",
    ),
    Figure(
        name="retry_test_pytest_process",
        title="the same test file's whole pytest process wall minus an empty test file's (interpreter, pytest, wfkit import, warm-up, the test, exit): noisy, the difference of two ~0.4 s walls",
        unit="ms",
        group="retry_pytest",
        plain="the plain test file's process wall minus the same empty-test run's",
    ),
    Figure(
        name="retry_test_pytest_next",
        title="the same test's own duration under pytest, as the second such test of its session",
        unit="ms",
        group="retry_pytest",
        plain="the plain test's own duration, second of its session",
    ),
    *(
        Figure(
            name=f"sigkill_lost_task_runs_{delay}ms",
            title=f"task runs lost by a SIGKILL {delay} ms after the last of N tasks finished (the flow body idles meanwhile; SQLite store, default commit interval): N minus the runs the store holds as Completed",
            unit="runs",
            group="crash_loss",
            plain="the same loop committing a row per task with sqlite3 (autocommit, WAL)",
            target_max=None if delay < 200 else 0,
            target_text=None
            if delay < 200
            else "0 lost (issue 12: 200 ms is past the 100 ms window)",
        )
        for delay in (50, 200, 1000)
    ),
]
BY_NAME = {f.name: f for f in FIGURES}
GROUPS = list(dict.fromkeys(f.group for f in FIGURES))
