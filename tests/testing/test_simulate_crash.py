"""``Harness.simulate_crash``: runs recorded Crashed as after a kill -9, so that code which
finds and handles crashed runs can be tested in-process."""

from __future__ import annotations

from typing import Any

import pytest

from wfkit import flow, task
from wfkit.testing import harness


@pytest.mark.parametrize("store", ["memory", "sqlite"])
def test_a_crash_inside_a_task_crashes_the_live_runs_and_drops_their_late_records(
    store: str,
) -> None:
    with harness(start="2026-01-01T00:00:00Z", store=store) as h:

        @task
        def done() -> int:
            return 1

        @task
        def doomed() -> int:
            crashed.extend(h.simulate_crash())
            return 2  # the process "died" above: this result is never recorded

        @flow
        def etl() -> int:
            return done() + doomed()

        crashed: list[Any] = []
        etl()

        assert [getattr(r, "flow_name", None) for r in crashed] == ["etl", None]
        assert crashed[1].task_name == "doomed"
        h.assert_states(etl, ["Pending", "Running", "Crashed"])
        h.assert_states(doomed, ["Pending", "Running", "Crashed"])
        h.assert_states(done, ["Pending", "Running", "Completed"])  # finished before
        message = h.flow_run(etl).state.message
        assert "no longer exists; it was probably killed" in message
        assert "2026-01-01T00:00:00+00:00" in message


def test_only_the_given_flow_run_and_the_runs_inside_it_crash() -> None:
    with harness() as h:

        @task
        def step(n: int) -> int:
            if n == 1:
                h.simulate_crash(h.flow_runs("child")[-1])
            return n

        @flow(name="child")
        def child(n: int) -> int:
            return step(n)

        @flow(name="parent")
        def parent() -> list[int]:
            return [child(0), child(1), child(2)]

        parent()

        assert [r.state.name for r in h.flow_runs("child")] == ["Completed", "Crashed", "Completed"]
        assert h.flow_run("parent").state.name == "Completed"
        assert [r.state.name for r in h.task_runs(step)] == ["Completed", "Crashed", "Completed"]


def test_with_no_live_runs_nothing_changes() -> None:
    with harness() as h:

        @flow
        def quick() -> int:
            return 1

        quick()
        assert h.simulate_crash() == []
        h.assert_states(quick, ["Pending", "Running", "Completed"])


def test_the_plugin_users_way(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from wfkit import flow, task

        def crashed_runs(store):
            return [r.name for r in store.flow_runs(state="Crashed")]

        def test_my_recovery_code_sees_the_crash(wf_harness):
            @task
            def load():
                wf_harness.simulate_crash()

            @flow(flow_run_name="nightly")
            def nightly():
                load()

            nightly()
            assert crashed_runs(wf_harness.store) == ["nightly"]
            wf_harness.assert_states(load, ["Pending", "Running", "Crashed"])
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
