"""The conformance cases for concurrency limits (the ``LimitStore`` protocol)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from wfkit.exceptions import ConfigurationError
from wfkit.stores import ConcurrencyLimit, RunStore
from wfkit.testing.store_conformance._support import StoreCases

__all__ = ["LimitCases"]


class LimitCases(StoreCases):
    """Limits created, changed, listed and deleted; slots taken all-or-nothing as leases or
    as draining slots, and given back."""

    def test_a_limit_round_trips(self, store: RunStore) -> None:
        made = store.create_limit("db", 3, slot_decay_per_second=0.5)

        assert isinstance(made, ConcurrencyLimit)
        assert (made.name, made.limit, made.slot_decay_per_second) == ("db", 3, 0.5)
        assert made.active_slots == 0 and made.created.tzinfo is not None
        assert store.read_limit("db") == made
        assert store.read_limit("other") is None

    def test_creating_again_changes_size_and_decay_but_keeps_holders(self, store: RunStore) -> None:
        store.create_limit("db", 1)
        assert store.acquire_slots(["db"], 1, 0.0, "h", True).granted

        changed = store.create_limit("db", 2, 1.0)

        assert (changed.limit, changed.slot_decay_per_second, changed.active_slots) == (2, 1, 1)

    def test_limits_are_listed_by_name(self, store: RunStore) -> None:
        for name in ("b", "tag:x", "a"):
            store.create_limit(name, 1)
        assert [lim.name for lim in store.concurrency_limits()] == ["a", "b", "tag:x"]

    def test_deleting_a_limit(self, store: RunStore) -> None:
        store.create_limit("db", 1)
        store.acquire_slots(["db"], 1, 0.0, "h", True)

        assert store.delete_limit("db") is True
        assert store.delete_limit("db") is False
        assert store.read_limit("db") is None
        store.create_limit("db", 1)  # its leases went with it
        assert store.acquire_slots(["db"], 1, 0.0, "h", True).granted

    @pytest.mark.parametrize(
        ("args", "named"),
        [
            (("", 1, 0.0), "name=''"),
            (("a/b", 1, 0.0), "name='a/b'"),
            (("db", -1, 0.0), "limit=-1"),
            (("db", 1.5, 0.0), "limit=1.5"),
            (("db", 1, -1.0), "slot_decay_per_second=-1.0"),
            (("db", 1, float("nan")), "slot_decay_per_second=nan"),
        ],
    )
    def test_a_bad_limit_is_refused_naming_the_argument(
        self, store: RunStore, args: tuple[object, object, object], named: str
    ) -> None:
        with pytest.raises(ConfigurationError, match=named):
            store.create_limit(*args)  # type: ignore[arg-type]

    def test_leases_fill_a_limit_and_release_frees_it(self, store: RunStore) -> None:
        store.create_limit("db", 2)
        first = store.acquire_slots(["db"], 2, 0.0, "h1", True)

        refused = store.acquire_slots(["db"], 1, 1.0, "h2", True)

        assert first.granted and first.lease_id
        assert not refused.granted and refused.blocking == "db" and refused.wait is None
        assert refused.self_held is False
        assert store.acquire_slots(["db"], 1, 1.0, "h1", True).self_held is True
        store.release_slots(first.lease_id, 7.0)
        assert store.acquire_slots(["db"], 2, 8.0, "h2", True).granted

    def test_a_lease_given_back_later_than_now_counts_until_then(self, store: RunStore) -> None:
        # Under a fake clock, a run on another timeline gives a slot back at a virtual time
        # ahead of the asker's: the asker must wait until then.
        store.create_limit("db", 1)
        held = store.acquire_slots(["db"], 1, 0.0, "h1", True)
        assert held.lease_id
        store.release_slots(held.lease_id, 10.0)

        refused = store.acquire_slots(["db"], 1, 4.0, "h2", True)

        assert not refused.granted and refused.wait == pytest.approx(6.0)
        assert store.acquire_slots(["db"], 1, 10.0, "h2", True).granted

    def test_slots_are_taken_on_all_limits_or_none(self, store: RunStore) -> None:
        store.create_limit("a", 2)
        store.create_limit("b", 1)
        store.acquire_slots(["b"], 1, 0.0, "h", True)

        refused = store.acquire_slots(["a", "b"], 1, 0.0, "h", True)

        assert not refused.granted and refused.blocking == "b"
        assert store.read_limit("a").active_slots == 0  # type: ignore[union-attr]

    def test_missing_limits_are_reported_and_take_nothing(self, store: RunStore) -> None:
        store.create_limit("a", 1)
        grant = store.acquire_slots(["a", "nope"], 1, 0.0, "h", True)
        assert grant.granted and grant.missing == ("nope",)

    def test_draining_slots_free_room_at_the_decay_rate(self, store: RunStore) -> None:
        store.create_limit("api", 2, slot_decay_per_second=0.5)
        assert store.acquire_slots(["api"], 2, 100.0, "h", False).granted

        refused = store.acquire_slots(["api"], 1, 101.0, "h", False)

        assert not refused.granted and refused.wait == pytest.approx(1.0)  # 1.5 left, 0.5 /s
        assert store.acquire_slots(["api"], 1, 102.0, "h", False).granted
        assert store.read_limit("api").active_slots == pytest.approx(2.0)  # type: ignore[union-attr]

    def test_limits_outlive_the_store_object(
        self, store: RunStore, reopened: Callable[[], RunStore]
    ) -> None:
        store.create_limit("db", 4, 2.0)
        assert store.acquire_slots(["db"], 1, 0.0, "h", False).granted
        kept = store.read_limit("db")
        assert reopened().read_limit("db") == kept
