"""Cache records as the engine writes them, read and pruned through the store API (what the
CLI builds on)."""

from __future__ import annotations

import pickle
from datetime import timedelta

from wfkit import task
from wfkit._engine.caching import MAC_SIZE
from wfkit.cache_policies import INPUTS
from wfkit.testing import Harness

from .conftest import Calls


def test_cache_records_list_what_the_engine_wrote(store_h: Harness) -> None:
    h = store_h

    @task(cache_policy=INPUTS)
    def extract(x: int) -> int:
        return x

    @task(cache_policy=INPUTS, cache_expiration=timedelta(minutes=1), result_serializer="json")
    def transform(label: str) -> list[str]:
        return [label]

    extract(1)
    h.clock.advance(5)
    transform("a")
    extract(1)  # a hit writes nothing
    records = h.store.cache_records()
    assert [r.task_name for r in records] == ["extract", "transform"]  # oldest first
    first, second = records
    assert first.key == h.task_runs(extract)[0].cache_key
    assert second.key == h.task_run(transform).cache_key
    assert (first.serializer, second.serializer) == ("pickle", "json")
    assert pickle.loads(first.value[MAC_SIZE:]) == 1
    assert first.expires_at is None
    assert second.created_at == h.clock.now()
    assert second.expires_at == h.clock.now() + timedelta(minutes=1)


def test_prune_cache_removes_expired_records_only(store_h: Harness, calls: Calls) -> None:
    h = store_h

    @task(cache_policy=INPUTS, cache_expiration=60)
    def short(x: int) -> int:
        return calls(("short", x))

    @task(cache_policy=INPUTS, cache_expiration=600)
    def long(x: int) -> int:
        return calls(("long", x))

    @task(cache_policy=INPUTS)
    def forever(x: int) -> int:
        return calls(("forever", x))

    short(1)
    long(2)
    forever(3)
    assert h.store.prune_cache(h.clock.now()) == 0
    assert len(h.store.cache_records()) == 3

    h.clock.advance(61)
    assert h.store.prune_cache(h.clock.now()) == 1
    assert sorted(r.task_name for r in h.store.cache_records()) == ["forever", "long"]
    assert h.store.prune_cache(h.clock.now()) == 0  # nothing left to prune

    h.clock.advance(600)
    assert h.store.prune_cache(h.clock.now()) == 1
    assert [r.task_name for r in h.store.cache_records()] == ["forever"]

    # The pruned entries are misses again; the surviving one is still a hit.
    long(2)
    forever(3)
    assert calls.args == [("short", 1), ("long", 2), ("forever", 3), ("long", 2)]


def test_delete_cache_forces_a_miss(store_h: Harness, calls: Calls) -> None:
    h = store_h

    @task(cache_policy=INPUTS)
    def compute(x: int) -> int:
        return calls(x)

    compute(1)
    key = h.task_run(compute).cache_key
    assert h.store.delete_cache(key) is True
    assert h.store.delete_cache(key) is False
    assert h.store.read_cache(key) is None
    assert compute(1) == 2
    assert h.store.read_cache(key) is not None
