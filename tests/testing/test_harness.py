"""wfkit.testing.harness() on its own (no pytest plugin): isolation, virtual time, restore
on exit, the lookup and assertion API, and its error messages."""

from __future__ import annotations

import asyncio
import datetime as dt
import sys
import threading
import time
import types
import uuid

import pytest

from wfkit import flow, get_run_logger, task
from wfkit.context import current_runtime
from wfkit.exceptions import FlowRunTimeoutError, TaskRunTimeoutError
from wfkit.states import Cached
from wfkit.stores import TaskRunSnapshot
from wfkit.testing import FakeClock, Harness, harness, wfkit_test_harness

START = "2026-03-04T05:06:07Z"


@task
def add(x: int, y: int) -> int:
    return x + y


@flow
def pipeline(x: int) -> int:
    return add(x, 1) + add(x, 2)


def test_harness_isolates_store_clock_and_restores_everything():
    real_sleep, real_asleep = time.sleep, asyncio.sleep
    outer = current_runtime()
    with harness(start=START) as h:
        assert isinstance(h, Harness) and isinstance(h.clock, FakeClock)
        assert current_runtime().store is h.store and current_runtime().clock is h.clock
        assert pipeline(1) == 5
        assert [r.task_name for r in h.task_runs()] == ["add", "add"]
        assert dt.datetime.now(dt.UTC) == h.clock.now()
    assert time.sleep is real_sleep and asyncio.sleep is real_asleep
    assert current_runtime() is outer
    # Wall time is real again: nowhere near the frozen 2026-03-04 05:06:07.
    assert dt.datetime.now(dt.UTC) != h.clock.now()
    assert abs(time.time() - dt.datetime.now().timestamp()) < 5


def test_two_harnesses_in_a_row_do_not_share_runs_or_time():
    with harness() as first:
        pipeline(1)
        first.clock.advance(10)
    with harness() as second:
        assert second.flow_runs() == []
        assert second.clock.elapsed == 0


def test_wfkit_test_harness_is_the_same_thing():
    with wfkit_test_harness(start=START) as h:
        assert isinstance(h, Harness)
        assert h.clock.now().isoformat() == "2026-03-04T05:06:07+00:00"


def test_frozen_wall_time_moves_with_the_clock_in_user_code():
    seen = []

    @task(retries=1, retry_delay_seconds=90)
    def stamp():
        seen.append((dt.datetime.now(), dt.datetime.utcnow(), time.time(), dt.date.today()))
        if len(seen) == 1:
            raise RuntimeError("first attempt fails")

    with harness(start=START):
        stamp()
    first, second = seen
    assert first[0] == dt.datetime(2026, 3, 4, 5, 6, 7)
    assert second[1] == dt.datetime(2026, 3, 4, 5, 7, 37)
    assert second[2] - first[2] == 90
    assert second[3] == dt.date(2026, 3, 4)


def test_wfkits_own_real_time_stays_real_under_frozen_time():
    """What wfkit times about the machine (wfkit._realtime: how long a run has been under
    way on a cluster, a buffer has waited...) follows real time, not the frozen clock:
    freezegun replaced the module's functions too, so a Ray runner under the harness never
    saw a run under way long enough to collect its live start."""
    from wfkit import _realtime

    with harness(start=START):
        monotonic, wall_ns = _realtime.monotonic(), _realtime.time_ns()
        threading.Event().wait(0.05)  # (a real wait: the harness leaves Event waits alone)
        assert _realtime.monotonic() - monotonic >= 0.04
        assert _realtime.time_ns() - wall_ns >= 40_000_000
        assert time.time() == dt.datetime(2026, 3, 4, 5, 6, 7, tzinfo=dt.UTC).timestamp()


def test_no_wfkit_module_holds_a_frozen_time_function_under_the_harness():
    """freezegun replaces time.monotonic, time.time_ns... wherever a loaded module bound
    them by name: a wfkit module that took ``monotonic`` from wfkit._realtime by name had
    frozen "real" time under the harness (a wait(timeout=) on n futures could wait n times
    the timeout; the limit-name cache never expired). They call through the module."""
    import wfkit.futures  # noqa: F401 - loaded, as the modules below, to be scanned
    import wfkit.stores.sqlite  # noqa: F401
    import wfkit.task_runners._cluster  # noqa: F401
    import wfkit.task_runners._live  # noqa: F401

    with harness(start=START):
        frozen = [
            f"{name}.{attr}"
            for name, module in list(sys.modules.items())
            if name.startswith("wfkit") and module is not None
            for attr, value in list(vars(module).items())
            if getattr(value, "__module__", None) == "freezegun.api"
            and not isinstance(value, type)  # (datetime/date: wall time, frozen on purpose)
        ]
    assert frozen == []


def test_freeze_false_leaves_wall_time_real():
    with harness(start="2000-01-01T00:00:00Z", freeze=False):
        assert dt.date.today().year > 2000


def test_time_sleep_in_a_sync_run_is_virtual_and_recorded():
    @task
    def nap():
        time.sleep(3600)
        return "rested"

    started = time.monotonic()
    with harness() as h:
        assert nap() == "rested"
    assert h.clock.sleeps == [3600] and h.clock.elapsed == 3600
    assert time.monotonic() - started < 60  # no real hour passed (a sanity bound, not a timing)


def test_sleeping_outside_runs_stays_real_and_unrecorded():
    with harness() as h:
        time.sleep(0.001)
    assert h.clock.sleeps == []


def test_async_sleep_in_async_runs_is_virtual():
    @task
    async def nap():
        await asyncio.sleep(120)
        return "rested"

    @flow
    async def napping():
        return await nap()

    with harness() as h:
        assert asyncio.run(napping()) == "rested"
    assert h.clock.sleeps == [120]


def test_async_flow_timeout_is_virtual():
    reached = []

    @flow(timeout_seconds=1)
    async def sleepy():
        await asyncio.sleep(5)
        reached.append("after")

    with harness() as h:
        with pytest.raises(FlowRunTimeoutError):
            asyncio.run(sleepy())
        h.assert_states(sleepy, ["Pending", "Running", "TimedOut"])
    assert reached == [] and h.clock.elapsed == 1


def test_sync_task_timeout_is_virtual():
    @task(timeout_seconds=2)
    def slow():
        time.sleep(30)

    with harness() as h:
        with pytest.raises(TaskRunTimeoutError):
            slow()
    assert h.clock.elapsed == 2


def test_retry_delays_are_instant_and_recorded():
    @task(retries=3, retry_delay_seconds=60)
    def always_fails():
        raise ValueError("nope")

    with harness() as h:
        state = always_fails(return_state=True)
    assert state.is_failed()
    assert h.clock.sleeps == [60, 60, 60] and h.clock.elapsed == 180


def test_run_returns_the_record_of_sync_and_async_flows_and_never_raises():
    @flow
    def boom():
        raise RuntimeError("boom")

    @flow
    async def aok(x: int) -> int:
        return x

    with harness() as h:
        failed = h.run(boom)
        ok = h.run(aok, "3")
    assert failed.state_names == ["Pending", "Running", "Failed"]
    assert ok.state_names == ["Pending", "Running", "Completed"] and ok.parameters == {"x": 3}


def test_lookups_by_object_and_name_and_flow_run():
    with harness() as h:
        pipeline(1)
        pipeline(2)
        runs = h.flow_runs(pipeline)
        assert [r.parameters["x"] for r in runs] == [1, 2]
        assert h.flow_runs("pipeline") == runs
        assert len(h.task_runs(add, flow_run=runs[1])) == 2
        assert len(h.task_runs("add", flow_run=runs[0].id)) == 2


def test_flow_run_with_several_matches_lists_them():
    with harness() as h:
        pipeline(1)
        pipeline(2)
        with pytest.raises(AssertionError, match=r"2 flow 'pipeline' runs were recorded") as info:
            h.flow_run(pipeline)
    assert "pass the record instead" in str(info.value)
    assert str(info.value).count("Pending -> Running -> Completed") == 2


def test_task_run_of_an_unknown_name_lists_what_exists():
    with harness() as h:
        pipeline(1)
        with pytest.raises(AssertionError) as info:
            h.task_run("missing")
    message = str(info.value)
    assert "no task 'missing' run was recorded" in message
    assert "'add-" in message and "(add, id=" in message


def test_assert_states_on_an_ambiguous_name_says_how_to_pick_one():
    with harness() as h:
        pipeline(1)
        with pytest.raises(AssertionError, match="2 flow or task 'add' runs were recorded"):
            h.assert_states("add", ["Pending", "Running", "Completed"])
        for record in h.task_runs(add):
            h.assert_states(record, ["Pending", "Running", "Completed"])


def test_assert_states_failure_shows_histories_side_by_side_with_messages():
    @task
    def broken():
        raise KeyError("missing-key")

    with harness() as h:
        broken(return_state=True)
        with pytest.raises(AssertionError) as info:
            h.assert_states(broken, ["Pending", "Running", "Completed"])
    lines = str(info.value).splitlines()
    assert (
        lines[0].startswith("state history of task run 'broken-") and "(task 'broken')" in lines[0]
    )
    assert lines[1].split() == ["#", "expected", "actual", "message"]
    assert lines[4].split()[:4] == ["3", "Completed", "≠", "Failed"]
    assert "KeyError: 'missing-key'" in lines[4]


def test_assert_states_rejects_a_string_as_history():
    with harness() as h:
        pipeline(1)
        with pytest.raises(TypeError, match="must be a list of state names"):
            h.assert_states(pipeline, "Completed")


def test_cache_hits_count_cached_states():
    @task
    def maybe_cached(hit: bool):
        return Cached(data=1) if hit else 1

    with harness() as h:
        for hit in (True, False, True):
            maybe_cached(hit)
        assert h.cache_hits(maybe_cached) == 2
        h.assert_cache_hits(maybe_cached, 2)
        with pytest.raises(AssertionError, match="expected 3 cache hit"):
            h.assert_cache_hits(maybe_cached, 3)


def test_cache_misses_count_keyed_runs_that_ran():
    from wfkit.states import Completed, Pending

    with harness() as h:
        stamp = h.clock.now()
        for i, (key, final) in enumerate([("k", Cached), ("k", Completed), (None, Completed)]):
            for state in (Pending(timestamp=stamp), final(timestamp=stamp)):
                h.store.record_task_run(
                    TaskRunSnapshot(
                        f"t{i}",
                        f"t{i}",
                        "keyed",
                        None,
                        {},
                        (),
                        key,
                        (),
                        1,
                        state,
                        "h",
                        1,
                    )
                )
        assert h.cache_hits("keyed") == 1
        assert h.cache_misses("keyed") == 1


def test_logs_of_a_run():
    @flow
    def chatty():
        get_run_logger().warning("careful")

    with harness() as h:
        chatty()
        (record,) = [r for r in h.logs(h.flow_run(chatty)) if r.message == "careful"]
    assert record.timestamp == h.clock.now()


def test_harnesses_do_not_nest():
    with harness() as h:
        with pytest.raises(RuntimeError, match="harnesses do not nest"):
            with harness():
                pass
        assert current_runtime().harness is h


def test_clock_advance_backwards_is_refused():
    with harness() as h:
        with pytest.raises(ValueError, match=r"advance\(seconds=-1\): time cannot go backwards"):
            h.clock.advance(-1)


def test_unknown_store_kind_is_refused():
    from wfkit.exceptions import ConfigurationError

    with pytest.raises(ConfigurationError, match="store='nope' is not a harness store kind"):
        with harness(store="nope"):
            pass


def test_sqlite_harness_uses_a_temporary_file_removed_on_exit():
    with harness(store="sqlite") as h:
        pipeline(1)
        path = h.store_path
        assert path is not None and path.exists()
        assert len(h.task_runs()) == 2
    assert not path.exists()


def test_entering_a_harness_does_not_load_what_a_lazy_module_only_promises(monkeypatch):
    # freezegun reads every attribute dir() lists, to patch the real time functions bound in
    # modules; for a module that makes attributes on access, the harness answers from what the
    # module already holds, so that entering a harness imports nothing more.
    name = f"lazy_{uuid.uuid4().hex}"
    module = types.ModuleType(name)
    made: list[str] = []

    def make(attribute: str) -> object:
        if attribute != "heavy":
            raise AttributeError(attribute)
        made.append(attribute)
        return object()

    module.__getattr__ = make  # type: ignore[method-assign]
    module.__dir__ = lambda: ["heavy", "now", "moment"]  # type: ignore[method-assign]
    module.now = time.time  # as bound by `from time import time`
    module.moment = dt.datetime  # as bound by `from datetime import datetime`
    monkeypatch.setitem(sys.modules, name, module)

    with harness(start="2020-01-01T00:00:00Z"):
        assert made == []
        assert module.now() == 1577836800.0
        assert module.moment.now().year == 2020
    assert module.now is time.time and module.moment is dt.datetime
    assert made == []


# The engine's first use of pydantic happens inside a frozen harness: coercing a flow argument,
# or reading WFKIT_* settings on the first run. Afterwards pydantic must still take real
# datetimes (the engine's own models and the user's).
_PYDANTIC_FIRST_USED_IN_A_HARNESS = """
import sys
from datetime import date, datetime
from wfkit import flow
from wfkit.testing import harness

@flow
def double(x: int) -> int:
    return 2 * x

@flow
def when(at: datetime) -> datetime:
    return at

assert "pydantic" not in sys.modules
with harness(start="2020-01-01T00:00:00Z"):
    assert date.today() == date(2020, 1, 1)
    assert double({argument}) == 42
    assert when("2030-01-01T00:00:00") == datetime(2030, 1, 1)
print(sorted({{m.split(".")[0] for m in sys.modules}} & {{"pydantic", "pydantic_settings"}}))

import pydantic

class Event(pydantic.BaseModel):
    at: datetime
    day: date

event = Event(at=datetime.now(), day=date.today())
print(type(event.at) is datetime, type(event.day) is date)
print(when("2030-01-01T00:00:00") == datetime(2030, 1, 1))
"""


@pytest.mark.parametrize(
    ("argument", "environment", "loaded"),
    [
        pytest.param('"21"', {}, "['pydantic']", id="coercing-an-argument"),
        pytest.param(
            "21",
            {"WFKIT_LOGGING_LEVEL": "debug"},
            "['pydantic', 'pydantic_settings']",
            id="reading-the-settings",
        ),
    ],
)
def test_pydantic_first_used_inside_a_frozen_harness_takes_real_datetimes_afterwards(
    argument, environment, loaded, tmp_path
):
    # Regression: pydantic first loaded while freezegun froze time kept freezegun's fake
    # datetime class, and rejected real datetimes for the rest of the process.
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("WFKIT_")}
    env.update(environment, HOME=str(tmp_path))
    code = _PYDANTIC_FIRST_USED_IN_A_HARNESS.format(argument=argument)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [loaded, "True True", "True"]


def test_warming_up_leaves_wall_time_real_and_a_later_harness_frozen() -> None:
    from wfkit.testing.harness import warm_up

    warm_up()

    assert dt.datetime is _REAL_DATETIME  # the throwaway freeze was stopped
    assert abs(dt.datetime.now(dt.UTC).timestamp() - time.time()) < 5
    with harness(start="2026-01-01T00:00:00Z") as h:
        assert dt.datetime.now(dt.UTC) == h.clock.now()
    assert dt.datetime is _REAL_DATETIME


_REAL_DATETIME = dt.datetime


def test_the_harness_gives_worker_processes_a_setup_that_pickles_by_name() -> None:
    # Process-pool workers enter harness.worker_setup around each run (their sleeps follow
    # the fake clock); the engine finds it through wfkit.context.HarnessLike.
    import pickle

    from wfkit.context import current_runtime
    from wfkit.testing._patching import virtual_sleeps

    with harness() as h:
        assert current_runtime().harness is h
        assert h.worker_setup is virtual_sleeps
        assert pickle.loads(pickle.dumps(h.worker_setup)) is virtual_sleeps
