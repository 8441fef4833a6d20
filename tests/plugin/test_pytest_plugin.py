"""The pytest plugin, tested the way users run it: pytester writes a test file and a real
pytest run executes it (in a subprocess, so the plugin loads through its entry point)."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

RETRYING_PIPELINE = """
import datetime, time
import pytest
from wfkit import flow, task

@task(retries=3, retry_delay_seconds=60)
def flaky(n_failures):
    from wfkit.runtime import task_run
    if task_run.run_count <= n_failures:
        raise ConnectionError("try again")
    return datetime.datetime.now(datetime.timezone.utc).isoformat()

@flow(timeout_seconds=1)
def sleepy():
    time.sleep(5)
    return "woke up"
"""


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)


def test_wf_harness_makes_retries_instant_and_asserts_histories(pytester):
    pytester.makepyfile(
        RETRYING_PIPELINE
        + """
@pytest.mark.wf(start="2026-01-01T00:00:00Z")
def test_retries(wf_harness, wf_clock, wf_store):
    assert flaky(2) == "2026-01-01T00:02:00+00:00"
    wf_harness.assert_states(flaky, [
        "Pending", "Running", "AwaitingRetry", "Retrying", "AwaitingRetry", "Retrying", "Completed",
    ])
    assert wf_clock.sleeps == [60.0, 60.0]
    assert wf_clock.elapsed == 120
    assert wf_store is wf_harness.store
    assert wf_harness.task_run(flaky).run_count == 3

def test_timeout_is_virtual(wf_harness):
    run = wf_harness.run(sleepy)
    assert run.state_names == ["Pending", "Running", "TimedOut"]
    assert wf_harness.clock.elapsed == 1
"""
    )
    result = run(pytester, "-v")
    result.assert_outcomes(passed=2)


def test_failed_assert_states_shows_both_histories_and_messages(pytester):
    pytester.makepyfile(
        RETRYING_PIPELINE
        + """
def test_wrong(wf_harness):
    flaky(5, return_state=True)
    wf_harness.assert_states(flaky, ["Pending", "Running", "Completed"])
"""
    )
    result = run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*state history of task run 'flaky-*' (task 'flaky') does not match*",
            "*#  expected*actual*message*",
            "*3  Completed*AwaitingRetry*ConnectionError: try again*",
            "*9  -*Failed*ConnectionError: try again*",
        ]
    )


def test_wf_isolated_gives_each_test_its_own_store_and_clock(pytester):
    pytester.makepyfile(
        """
import time
from wfkit import flow
from wfkit.context import current_runtime

@flow
def hello():
    time.sleep(30)
    return "hi"

def test_one():
    rt = current_runtime()
    assert hello() == "hi"
    assert len(rt.store.flow_runs()) == 1
    assert rt.clock.elapsed == 30

def test_two():
    rt = current_runtime()
    assert rt.store.flow_runs() == []
    assert rt.clock.elapsed == 0
    assert hello() == "hi"
    assert len(rt.store.flow_runs()) == 1
"""
    )
    run(pytester, "--wf-isolated").assert_outcomes(passed=2)


def test_ini_twin_enables_isolation(pytester):
    pytester.makeini("[pytest]\nwf_isolated = true\n")
    pytester.makepyfile(
        """
from wfkit.context import current_runtime

def test_isolated():
    assert current_runtime().harness is not None
"""
    )
    run(pytester).assert_outcomes(passed=1)


def test_without_isolation_no_harness_is_installed(pytester):
    pytester.makepyfile(
        """
from wfkit.context import current_runtime

def test_plain():
    assert current_runtime().harness is None
"""
    )
    run(pytester).assert_outcomes(passed=1)


def test_unisolated_runs_into_the_real_store_warn_once(pytester, tmp_path, monkeypatch):
    pytester.makepyfile(
        """
from wfkit import flow

@flow
def hello():
    return 1

def test_a():
    hello()

def test_b():
    hello()
"""
    )
    home = tmp_path / "home"
    monkeypatch.setenv("WFKIT_HOME", str(home))
    result = run(pytester, "-W", "default")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            f"*WfkitUnisolatedWarning: this test recorded wfkit runs into the real run store "
            f"'sqlite:///{home}/wfkit.db'. Run pytest with --wf-isolated*",
        ]
    )
    assert result.stdout.str().count("WfkitUnisolatedWarning") == 1


def test_isolated_session_writes_nothing_to_wfkit_home(pytester, tmp_path, monkeypatch):
    pytester.makepyfile(
        """
from wfkit import flow, task

@task
def t():
    return 1

@flow
def f():
    return t()

def test_a():
    assert f() == 1
"""
    )
    home = tmp_path / "home"
    monkeypatch.setenv("WFKIT_HOME", str(home))
    result = run(pytester, "--wf-isolated", "-W", "error::UserWarning")
    result.assert_outcomes(passed=1)
    assert not home.exists()
    assert "WfkitUnisolatedWarning" not in result.stdout.str()


def test_sqlite_store_kind_and_keep_failed(pytester):
    pytester.makepyfile(
        """
from wfkit import flow
from wfkit.context import current_runtime

@flow
def hello():
    return 1

def test_passes(wf_harness):
    hello()
    assert wf_harness.store_path.name == "wfkit.db"
    assert wf_harness.store.url.startswith("sqlite:///")

def test_fails(wf_harness):
    hello()
    assert False, "boom"
"""
    )
    result = run(pytester, "--wf-isolated", "--wf-store=sqlite", "--wf-keep-stores=failed")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*wfkit: run stores of failing tests*", "*test_fails0*wfkit.db"])
    kept = [line for line in result.stdout.lines if line.endswith("wfkit.db")]
    assert len(kept) == 1
    assert "test_passes" not in kept[0]


def test_keep_stores_with_the_memory_store_warns_that_nothing_is_kept(pytester):
    pytester.makepyfile("def test_fails():\n    assert False\n")
    result = run(pytester, "--wf-isolated", "--wf-keep-stores=failed")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*--wf-keep-stores=failed keeps SQLite stores only*"])
    quiet = run(pytester, "--wf-isolated", "--wf-store=sqlite", "--wf-keep-stores=failed")
    assert "keeps SQLite stores only" not in quiet.stdout.str()


def test_marker_configures_start_store_and_freeze(pytester):
    pytester.makepyfile(
        """
import datetime, time
import pytest

@pytest.mark.wf(start="2030-05-06T07:08:09Z", store="sqlite", freeze=True)
def test_marked(wf_harness):
    assert wf_harness.clock.now().isoformat() == "2030-05-06T07:08:09+00:00"
    assert wf_harness.store_path is not None
    assert datetime.date.today() == datetime.date(2030, 5, 6)
    assert time.time() == datetime.datetime(2030, 5, 6, 7, 8, 9, tzinfo=datetime.timezone.utc).timestamp()

@pytest.mark.wf(freeze=False)
def test_unfrozen(wf_harness):
    assert datetime.date.today().year >= 2026
    assert abs(time.time() - wf_harness.clock.now().timestamp()) < 3600 * 24 * 365 * 100
"""
    )
    run(pytester, "--strict-markers").assert_outcomes(passed=2)


def test_marker_with_bad_store_names_it_and_suggests_fix(pytester):
    pytester.makepyfile(
        """
import pytest

@pytest.mark.wf(store="nope")
def test_bad(wf_harness):
    pass
"""
    )
    result = run(pytester)
    result.assert_outcomes(errors=1)
    assert (
        "@pytest.mark.wf(store='nope') is not a store kind; use one of ['memory', 'sqlite'], "
        "e.g. @pytest.mark.wf(store='sqlite')" in result.stdout.str()
    )


def test_nesting_harness_inside_wf_harness_is_an_error(pytester):
    pytester.makepyfile(
        """
import pytest
from wfkit.testing import harness

def test_nested(wf_harness):
    with pytest.raises(RuntimeError, match="harnesses do not nest.*wf_harness fixture"):
        with harness():
            pass

def test_isolated_background_may_be_shadowed():
    with harness() as h:
        assert h is not None
"""
    )
    run(pytester, "--wf-isolated").assert_outcomes(passed=2)


def test_help_lists_options_in_a_wfkit_group_and_fixtures_are_documented(pytester):
    result = run(pytester, "--help")
    result.stdout.fnmatch_lines(
        ["wfkit:", "*--wf-isolated*", "*--wf-store=*", "*--wf-keep-stores=*"]
    )
    pytester.makepyfile("def test_x(): pass")
    fixtures = run(pytester, "--fixtures")
    fixtures.stdout.fnmatch_lines(
        [
            "*fixtures defined from wfkit.testing.pytest_plugin*",
            "wf_harness -- *",
            "*The test's wfkit harness*",
            "*.assert_states(run_or_target*",
            "*.cache_hits(task)*",
            "wf_clock -- *",
            "*FakeClock*",
            "wf_store -- *",
        ]
    )


def test_two_xdist_workers_never_see_each_others_runs(pytester):
    pytester.makepyfile(
        """
import os
import pytest
from wfkit import flow

@flow
def tagged(label):
    return label

@pytest.mark.parametrize("label", [f"run-{i}" for i in range(8)])
def test_isolated(wf_harness, label):
    tagged(label)
    runs = wf_harness.flow_runs()
    assert [r.parameters["label"] for r in runs] == [label]
    assert os.environ.get("PYTEST_XDIST_WORKER") is not None
"""
    )
    result = run(pytester, "--wf-isolated", "-n", "2", "-p", "xdist")
    result.assert_outcomes(passed=8)


# -- warming up at collection ------------------------------------------------------------------
# A conftest that writes down, as each test's setup starts, which of the modules entering a
# harness loads are already loaded.
LOADED_AT_SETUP = """
import json, os, sys
import pytest

WATCHED = ("freezegun", "asyncio", "wfkit._engine.calls")

@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    with open(os.environ["WF_LOADED_LOG"], "a") as out:
        out.write(json.dumps([item.name, [m for m in WATCHED if m in sys.modules]]) + "\\n")
"""


def _loaded_at_setup(pytester: pytest.Pytester, *args: str) -> dict[str, list[str]]:
    log = pytester.path / "loaded.jsonl"
    pytester.makeconftest(LOADED_AT_SETUP)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WF_LOADED_LOG", str(log))
        # (anyio's pytest plugin, installed with the `ui` extra's Starlette, imports asyncio
        # at start-up: what is measured here is what wfkit's plugin loads)
        result = run(pytester, "-p", "no:anyio", *args)
    assert result.ret == 0, result.stdout.str()
    return {name: loaded for name, loaded in map(json.loads, log.read_text().splitlines())}


def test_a_session_with_harness_tests_loads_the_harness_before_the_first_one(pytester):
    pytester.makepyfile(
        RETRYING_PIPELINE
        + """
def test_plain():
    assert True

def test_retries(wf_harness):
    flaky(1)
    wf_harness.assert_states(flaky, ["Pending", "Running", "AwaitingRetry", "Retrying", "Completed"])
"""
    )
    loaded = _loaded_at_setup(pytester)
    # Loaded at collection, before any test ran (even the plain one before it).
    assert loaded["test_plain"] == ["freezegun", "asyncio", "wfkit._engine.calls"]


def test_a_session_without_harness_tests_loads_none_of_it(pytester):
    pytester.makepyfile(
        """
def test_plain():
    import sys
    assert "freezegun" not in sys.modules
"""
    )
    assert _loaded_at_setup(pytester) == {"test_plain": []}


def test_harness_tests_that_do_not_freeze_do_not_load_freezegun(pytester):
    pytester.makepyfile(
        """
import sys
import pytest

@pytest.mark.wf(freeze=False)
def test_unfrozen(wf_clock):
    wf_clock.advance(5)
    assert wf_clock.elapsed == 5
    assert "freezegun" not in sys.modules
"""
    )
    assert _loaded_at_setup(pytester) == {"test_unfrozen": ["asyncio", "wfkit._engine.calls"]}


def test_isolated_sessions_load_the_harness_for_every_test(pytester):
    pytester.makepyfile(
        """
def test_plain():
    assert True
"""
    )
    loaded = _loaded_at_setup(pytester, "--wf-isolated")
    assert loaded["test_plain"] == ["freezegun", "asyncio", "wfkit._engine.calls"]


def test_collecting_only_loads_none_of_it(pytester):
    pytester.makeconftest(
        """
import os, sys
import pytest

@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session):
    with open(os.environ["WF_LOADED_LOG"], "w") as out:
        out.write(str("freezegun" in sys.modules))
"""
    )
    pytester.makepyfile("def test_uses_it(wf_harness):\n    pass\n")
    log = pytester.path / "loaded.txt"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WF_LOADED_LOG", str(log))
        result = run(pytester, "--collect-only")
    assert result.ret == 0, result.stdout.str()
    assert log.read_text() == "False"
