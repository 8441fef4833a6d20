"""Tests of pipeline.py, the way a wfkit user writes them.

Run with:  pytest --wf-isolated examples/testing

Every test gets an isolated run store and a fake clock: the retry delays (10 s, 30 s, 60 s)
and the publish timeout (5 s) take no real time, and ``datetime.now()`` is the virtual time.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pipeline import ListSink, StaticAPI, daily_report, fetch_orders, publish

from wfkit.testing import harness

ORDERS = {"2026-01-01": [{"amount": 12.5}, {"amount": 7.5}]}


@pytest.mark.wf(start="2026-01-01T06:00:00Z")
def test_the_report_survives_two_api_failures(wf_harness, wf_clock):
    api, sink = StaticAPI(ORDERS, failures=2), ListSink()

    report = daily_report("2026-01-01", api, sink)

    assert report["total"] == 20.0
    assert sink.reports == [report]
    wf_harness.assert_states(
        fetch_orders,
        [
            "Pending",
            "Running",
            "AwaitingRetry",
            "Retrying",
            "AwaitingRetry",
            "Retrying",
            "Completed",
        ],
    )
    assert wf_clock.sleeps == [10, 30]
    # The report was stamped with the virtual time: 6:00 plus the two retry delays.
    assert report["generated_at"] == "2026-01-01T06:00:40+00:00"
    assert wf_harness.flow_run(daily_report).name == "daily-report-2026-01-01"


def test_the_flow_fails_when_the_api_stays_down(wf_harness, wf_clock):
    run = wf_harness.run(daily_report, "2026-01-01", StaticAPI(ORDERS, failures=10), ListSink())

    assert run.state_names == ["Pending", "Running", "Failed"]
    assert wf_harness.task_run(fetch_orders).run_count == 4
    assert wf_clock.elapsed == 10 + 30 + 60
    assert "the orders API is down (call 4)" in wf_harness.task_run(fetch_orders).state.message


def test_a_slow_sink_times_the_publish_task_out(wf_harness, wf_clock):
    run = wf_harness.run(daily_report, "2026-01-01", StaticAPI(ORDERS), ListSink(delay=60))

    wf_harness.assert_states(publish, ["Pending", "Running", "TimedOut"])
    assert run.state.is_failed()
    assert wf_clock.elapsed == 5


def test_publishing_is_logged(wf_harness):
    daily_report("2026-01-01", StaticAPI(ORDERS), ListSink())

    messages = [record.message for record in wf_harness.logs(wf_harness.task_run(publish))]
    assert messages == ["published the report for 2026-01-01", "Finished in state Completed()"]


@settings(max_examples=25, deadline=None)
@given(failures=st.integers(min_value=0, max_value=6))
def test_any_outage_shorter_than_the_retries_is_survived(failures):
    # Property: with 3 retries, the flow completes iff the API fails at most 3 times, and it
    # waits exactly the delays of the retries it needed. Each example gets its own harness.
    with harness() as h:
        run = h.run(daily_report, "2026-01-01", StaticAPI(ORDERS, failures=failures), ListSink())
    retries_used = min(failures, 3)
    assert run.state.is_completed() == (failures <= 3)
    assert h.clock.elapsed == sum([10, 30, 60][:retries_used])
