"""The conformance cases for ``flow_runs``: its order, its filters and its limit."""

from __future__ import annotations

from datetime import timedelta, timezone
from typing import Any

import pytest

from wfkit.exceptions import ConfigurationError
from wfkit.states import Failed, Pending, Running, Scheduled, TimedOut
from wfkit.stores import RunStore
from wfkit.testing.store_conformance._support import (
    StoreCases,
    at,
    finished,
    flow_snapshot,
    record_flow,
)

__all__ = ["FlowRunQueryCases"]


def ids(runs: list[Any]) -> list[str]:
    """The ids of ``runs``, in order."""
    return [run.id for run in runs]


class FlowRunQueryCases(StoreCases):
    """``flow_runs``: start order, the filters (flow name, state, tags, start time), limit."""

    def test_flow_runs_filter_by_flow_name(self, store: RunStore) -> None:
        record_flow(store, finished(0), "f1", flow_name="etl")
        record_flow(store, finished(10), "f2", flow_name="report")
        record_flow(store, finished(20), "f3", flow_name="etl")

        assert ids(store.flow_runs(flow_name="etl")) == ["f1", "f3"]
        assert ids(store.flow_runs(flow_name="report")) == ["f2"]
        assert store.flow_runs(flow_name="nope") == []

    @pytest.mark.parametrize(
        ("wanted", "expected"),
        [
            ("Completed", ["f1"]),
            ("completed", ["f1"]),
            ("FAILED", ["f2", "f3"]),
            ("timedout", ["f3"]),
            ("TimedOut", ["f3"]),
            ("running", ["f4"]),
            ("crashed", []),
        ],
    )
    def test_flow_runs_filter_by_state_name_or_type(
        self, store: RunStore, wanted: str, expected: list[str]
    ) -> None:
        record_flow(store, finished(0), "f1")
        record_flow(store, finished(10, Failed), "f2")
        record_flow(store, finished(20, TimedOut), "f3")
        record_flow(store, finished(30)[:2], "f4")

        assert ids(store.flow_runs(state=wanted)) == expected

    def test_flow_runs_come_in_start_order(self, store: RunStore) -> None:
        # Recorded in another order than they started; "late" has no running state, so its
        # first state's time counts; "tie-a"/"tie-b" start together and keep recording order.
        record_flow(store, finished(50), "third")
        record_flow(store, [Scheduled(timestamp=at(5)), Pending(timestamp=at(60))], "late")
        record_flow(store, finished(-10), "first")
        record_flow(store, [Pending(timestamp=at(-100)), Running(timestamp=at(20))], "tie-a")
        record_flow(store, [Pending(timestamp=at(19)), Running(timestamp=at(20))], "tie-b")

        assert ids(store.flow_runs()) == ["first", "late", "tie-a", "tie-b", "third"]

    def test_limit_keeps_the_most_recent_runs(self, store: RunStore) -> None:
        for i in (3, 1, 4, 0, 2):
            record_flow(store, finished(i * 10), f"f{i}", flow_name="even" if i % 2 == 0 else "odd")

        assert ids(store.flow_runs(limit=2)) == ["f3", "f4"]
        assert ids(store.flow_runs(limit=10)) == ["f0", "f1", "f2", "f3", "f4"]
        # More than match, but fewer than twice as many: all of them.
        assert ids(store.flow_runs(limit=7)) == ["f0", "f1", "f2", "f3", "f4"]
        assert ids(store.flow_runs(flow_name="even", limit=2)) == ["f2", "f4"]
        assert ids(store.flow_runs(state="completed", limit=1)) == ["f4"]

    def test_limit_zero_keeps_nothing_and_a_negative_limit_is_refused(
        self, store: RunStore
    ) -> None:
        record_flow(store, finished(), "f1")

        assert store.flow_runs(limit=0) == []
        with pytest.raises(ConfigurationError, match=r"limit=-1 is invalid"):
            store.flow_runs(limit=-1)

    def test_runs_without_timestamps_sort_first(self, store: RunStore) -> None:
        record_flow(store, finished(10), "timed")
        record_flow(store, [Pending()], "untimed")

        assert ids(store.flow_runs()) == ["untimed", "timed"]

    def test_flow_runs_filter_by_tags_carrying_all_of_them(self, store: RunStore) -> None:
        record_flow(store, finished(0), "f1", tags=("nightly", "team-a"))
        record_flow(store, finished(10), "f2", tags=("nightly",))
        record_flow(store, finished(20), "f3", tags=("team-a", "nightly", "eu"), flow_name="x")
        record_flow(store, finished(30), "f4")

        assert ids(store.flow_runs(tags=["nightly"])) == ["f1", "f2", "f3"]
        assert ids(store.flow_runs(tags=("team-a", "nightly"))) == ["f1", "f3"]
        assert ids(store.flow_runs(tags={"eu"})) == ["f3"]
        assert store.flow_runs(tags=["nightly", "missing"]) == []
        assert ids(store.flow_runs(tags=[])) == ["f1", "f2", "f3", "f4"]
        assert ids(store.flow_runs(tags=["nightly"], flow_name="etl", limit=1)) == ["f2"]

    def test_a_tag_matches_whole_and_exactly(self, store: RunStore) -> None:
        record_flow(store, finished(0), "f1", tags=("nightly", 'say "hi"', "100%", "ü"))

        assert store.flow_runs(tags=["night"]) == []
        assert store.flow_runs(tags=["Nightly"]) == []
        assert ids(store.flow_runs(tags=['say "hi"', "100%", "ü"])) == ["f1"]

    def test_the_tags_filter_reads_the_latest_snapshot(self, store: RunStore) -> None:
        store.record_flow_run(flow_snapshot(Pending(timestamp=at(0)), "f1", tags=("old",)))
        store.record_flow_run(flow_snapshot(Running(timestamp=at(1)), "f1", tags=("new",)))

        assert ids(store.flow_runs(tags=["new"])) == ["f1"]
        assert store.flow_runs(tags=["old"]) == []

    @pytest.mark.parametrize("tags", ["nightly", b"nightly", 3, ["ok", 3]])
    def test_tags_must_be_a_collection_of_names(self, store: RunStore, tags: Any) -> None:
        with pytest.raises(ConfigurationError, match=r"tags=.* is invalid.*\['nightly'\]"):
            store.flow_runs(tags=tags)

    def test_since_and_until_bound_the_start_time(self, store: RunStore) -> None:
        record_flow(store, finished(0), "f0")  # starts (first runs) at(1)
        record_flow(store, finished(10), "f10")  # at(11)
        record_flow(store, finished(20), "f20")  # at(21)
        record_flow(store, [Pending(timestamp=at(15))], "waiting")  # its first state: at(15)
        record_flow(store, [Pending()], "untimed")  # no time: outside every bound

        assert ids(store.flow_runs(since=at(11))) == ["f10", "waiting", "f20"]  # at or after
        assert ids(store.flow_runs(until=at(11))) == ["f0"]  # before
        assert ids(store.flow_runs(since=at(2), until=at(21))) == ["f10", "waiting"]
        assert store.flow_runs(since=at(21), until=at(21)) == []
        assert ids(store.flow_runs(since=at(0), limit=2)) == ["waiting", "f20"]
        assert len(store.flow_runs()) == 5

    def test_a_run_counts_from_its_start_not_its_first_state(self, store: RunStore) -> None:
        record_flow(store, [Scheduled(timestamp=at(0)), Running(timestamp=at(100))], "late")

        assert ids(store.flow_runs(since=at(50))) == ["late"]
        assert store.flow_runs(until=at(50)) == []

    def test_bounds_are_instants_and_naive_ones_are_utc(self, store: RunStore) -> None:
        record_flow(store, finished(0), "f1")  # starts at(1)
        naive = at(1).replace(tzinfo=None)
        elsewhere = at(1).astimezone(timezone(timedelta(hours=-5)))

        for bound in (naive, elsewhere):
            assert ids(store.flow_runs(since=bound)) == ["f1"]
            assert store.flow_runs(until=bound) == []

    @pytest.mark.parametrize("argument", ["since", "until"])
    def test_a_bound_must_be_a_datetime(self, store: RunStore, argument: str) -> None:
        bound: dict[str, Any] = {argument: "yesterday"}
        with pytest.raises(ConfigurationError, match=f"{argument}='yesterday' is invalid"):
            store.flow_runs(**bound)
