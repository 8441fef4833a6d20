"""The conformance cases for cache records (the ``CacheStore`` protocol)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from wfkit.states import Completed, Pending, Running
from wfkit.stores import CacheRecord, RunStore
from wfkit.testing.store_conformance._support import T0, StoreCases, at, record_flow, write_cache

__all__ = ["CacheCases"]


class CacheCases(StoreCases):
    """The cache store: records written through, read by key, listed, deleted and pruned;
    and the secret that authenticates them."""

    def test_the_cache_secret_is_a_stable_random_key(self, store: RunStore) -> None:
        secret = store.cache_secret()

        assert isinstance(secret, bytes) and len(secret) >= 32
        assert len(set(secret)) > 8  # random bytes, not a constant like b"\0" * 32
        assert store.cache_secret() == secret

    def test_the_cache_secret_outlives_the_store_object(
        self, store: RunStore, reopened: Callable[[], RunStore]
    ) -> None:
        # Records written before a reopen must still pass the check after it.
        secret = store.cache_secret()
        write_cache(store, "k1")
        assert reopened().cache_secret() == secret

    def test_a_record_round_trips_every_field(self, store: RunStore) -> None:
        value = bytes(range(256)) * 40  # binary, and bigger than a page
        written = write_cache(
            store, "k1", value, serializer="json", expires_at=at(60), task_name="t"
        )

        record = store.read_cache("k1")

        assert record == written
        assert isinstance(record, CacheRecord) and isinstance(record.value, bytes)
        assert record.created_at.tzinfo is not None and record.expires_at == at(60)

    def test_a_record_without_expiry_or_task_name_round_trips(self, store: RunStore) -> None:
        written = write_cache(store, "k1", b"", expires_at=None, task_name=None)
        assert store.read_cache("k1") == written

    def test_a_missing_key_reads_as_none(self, store: RunStore) -> None:
        write_cache(store, "k1")
        assert store.read_cache("other") is None

    def test_writing_a_key_again_replaces_the_record(self, store: RunStore) -> None:
        write_cache(store, "k1", b"old", expires_at=at(10), task_name="a")
        newer = write_cache(
            store, "k1", b"new", serializer="json", expires_at=None, task_name="b", created_at=at(5)
        )

        assert store.read_cache("k1") == newer
        assert store.cache_records() == [newer]

    def test_an_expired_record_is_still_read(self, store: RunStore) -> None:
        # Expiry is the engine's decision, made on its clock: the store returns the record.
        written = write_cache(store, "k1", expires_at=at(-3600))
        assert store.read_cache("k1") == written

    def test_records_are_listed_oldest_first(self, store: RunStore) -> None:
        assert store.cache_records() == []
        late = write_cache(store, "a", created_at=at(30))
        early = write_cache(store, "z", created_at=at(10))
        tie_b = write_cache(store, "b", created_at=at(20))
        tie_a = write_cache(store, "a2", created_at=at(20))

        assert store.cache_records() == [early, tie_a, tie_b, late]

    def test_delete_removes_one_record_and_says_whether_there_was_one(
        self, store: RunStore
    ) -> None:
        write_cache(store, "k1")
        kept = write_cache(store, "k2")

        assert store.delete_cache("k1") is True
        assert store.delete_cache("k1") is False
        assert store.read_cache("k1") is None
        assert store.cache_records() == [kept]

    def test_prune_deletes_records_expired_at_or_before_now(self, store: RunStore) -> None:
        write_cache(store, "past", expires_at=at(5))
        write_cache(store, "now", expires_at=at(10))
        future = write_cache(store, "future", expires_at=at(10.000001))
        forever = write_cache(store, "forever", expires_at=None)

        assert store.prune_cache(at(10)) == 2
        assert sorted(store.cache_records()) == sorted([future, forever])
        assert store.prune_cache(at(10)) == 0
        assert store.prune_cache(at(3600)) == 1
        assert store.cache_records() == [forever]

    def test_reads_follow_the_stores_own_changes(self, store: RunStore) -> None:
        # A record read once must not be served again after the store changed or removed it.
        write_cache(store, "k1", b"one", expires_at=at(5))
        assert store.read_cache("k1") is not None
        newer = write_cache(store, "k1", b"two", expires_at=at(5))
        assert store.read_cache("k1") == newer
        assert store.prune_cache(at(5)) == 1
        assert store.read_cache("k1") is None
        again = write_cache(store, "k1", b"three")
        assert store.read_cache("k1") == again
        assert store.delete_cache("k1") is True
        assert store.read_cache("k1") is None

    def test_naive_times_are_read_as_utc(self, store: RunStore) -> None:
        naive = T0.replace(tzinfo=None)
        store.write_cache("k1", b"v", "pickle", naive + timedelta(seconds=5), None, naive)

        record = store.read_cache("k1")

        assert record is not None
        assert (record.created_at, record.expires_at) == (T0, at(5))
        assert store.prune_cache(naive + timedelta(seconds=5)) == 1

    def test_a_bytes_like_value_is_stored_as_bytes(self, store: RunStore) -> None:
        store.write_cache("k1", bytearray(b"abc"), "pickle", None, None, T0)  # type: ignore[arg-type]
        record = store.read_cache("k1")
        assert record is not None and record.value == b"abc" and type(record.value) is bytes

    def test_a_value_that_is_not_bytes_is_refused(self, store: RunStore) -> None:
        with pytest.raises(TypeError, match="'k1'.*bytes.*str"):
            store.write_cache("k1", "text", "json", None, None, T0)  # type: ignore[arg-type]
        assert store.read_cache("k1") is None

    def test_prune_needs_a_datetime(self, store: RunStore) -> None:
        with pytest.raises(TypeError, match="datetime"):
            store.prune_cache(10)  # type: ignore[arg-type]

    def test_cache_records_do_not_disturb_runs(self, store: RunStore) -> None:
        record_flow(store, [Pending(timestamp=at(0)), Running(timestamp=at(1))], "f1")
        write_cache(store, "k1")
        record_flow(store, [Completed(timestamp=at(2))], "f1")

        assert store.flow_run("f1").state_names == ["Pending", "Running", "Completed"]
        assert [r.key for r in store.cache_records()] == ["k1"]
