"""Nothing read from a store's cache is trusted: a record is deserialized only with the task's
own serializer and only when its MAC (keyed by the store's secret) checks; anything else is a
miss with a warning naming the key, and a payload that would run code is never unpickled."""

from __future__ import annotations

import hmac
import logging
import os
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from wfkit import task
from wfkit._engine.caching import MAC_SIZE, sign
from wfkit.stores.memory import MemoryStore
from wfkit.stores.sqlite import SqliteStore
from wfkit.testing import Harness, harness

from .conftest import START, Calls

KEY = "the-key"


class _Booby:
    """Unpickling this makes a directory: proof that the payload was unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.mkdir, (str(self.marker),))


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def _compute(calls: Calls, serializer: str | None = None) -> Any:
    @task(cache_key_fn=lambda context, parameters: KEY, result_serializer=serializer)
    def compute(x: int) -> int:
        calls(x)
        return x * 5

    return compute


def _put(h: Harness, value: bytes, serializer: str = "pickle") -> None:
    h.store.cache_secret()  # the store has its key, as one that has cached anything does
    h.store.write_cache(KEY, value, serializer, None, "compute", h.clock.now())


def _run_expecting_a_miss(
    h: Harness, calls: Calls, caplog: pytest.LogCaptureFixture, compute: Any, *words: str
) -> None:
    """Run ``compute(2)`` over a planted record: the body runs, one warning names the key
    (and ``words``), and the recomputed result replaces the record, so the next call hits."""
    with caplog.at_level(logging.WARNING):
        assert compute(2) == 10
    assert calls.count == 1
    (warning,) = _warnings(caplog)
    assert repr(KEY) in warning and "miss" in warning
    assert all(word in warning for word in words), warning
    assert compute(2) == 10 and calls.count == 1  # signed by this store now: a hit


def test_a_record_signed_by_this_store_is_a_hit(store_h: Harness, calls: Calls) -> None:
    compute = _compute(calls)
    _put(store_h, sign(store_h.store.cache_secret(), KEY, "pickle", pickle.dumps(-1)))

    assert compute(2) == -1
    assert calls.count == 0


def test_a_value_with_a_mac_made_with_another_key_is_a_miss(
    store_h: Harness, calls: Calls, caplog: pytest.LogCaptureFixture
) -> None:
    # An attacker who can write the store but not read its key signs their value with theirs.
    forged = sign(b"attacker's key, 32 bytes long...", KEY, "pickle", pickle.dumps(-1))
    _put(store_h, forged)
    _run_expecting_a_miss(store_h, calls, caplog, _compute(calls), "MAC")


def test_a_tampered_value_is_a_miss(
    store_h: Harness, calls: Calls, caplog: pytest.LogCaptureFixture
) -> None:
    genuine = sign(store_h.store.cache_secret(), KEY, "pickle", pickle.dumps(1))
    _put(store_h, genuine[:MAC_SIZE] + pickle.dumps(-1))  # the old MAC, a new payload
    _run_expecting_a_miss(store_h, calls, caplog, _compute(calls), "MAC")


@pytest.mark.parametrize("value", [pickle.dumps(-1), b"", b"short"], ids=["bare", "empty", "short"])
def test_a_value_without_a_mac_is_a_miss(
    store_h: Harness, calls: Calls, caplog: pytest.LogCaptureFixture, value: bytes
) -> None:
    _put(store_h, value)  # as wfkit wrote records before they were signed, or stripped
    _run_expecting_a_miss(store_h, calls, caplog, _compute(calls), "MAC")


def test_a_record_changed_after_a_hit_is_checked_again(
    store_h: Harness, calls: Calls, caplog: pytest.LogCaptureFixture
) -> None:
    compute = _compute(calls)
    assert compute(2) == 10 and compute(2) == 10  # a checked record, then a hit on it
    (record,) = store_h.store.cache_records()
    _put(store_h, record.value[:MAC_SIZE] + pickle.dumps(-1))
    calls.args.clear()
    _run_expecting_a_miss(store_h, calls, caplog, compute, "MAC")


def test_a_record_signed_for_another_key_is_a_miss(
    store_h: Harness, calls: Calls, caplog: pytest.LogCaptureFixture
) -> None:
    # Moving a genuine record to another key would give another task's result.
    _put(store_h, sign(store_h.store.cache_secret(), "other-key", "pickle", pickle.dumps(-1)))
    _run_expecting_a_miss(store_h, calls, caplog, _compute(calls), "MAC")


@pytest.fixture(params=["memory", "sqlite"])
def two_stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Any, Any]]:
    """Two stores of one kind, each with its own secret."""
    if request.param == "memory":
        yield MemoryStore(), MemoryStore()
        return
    with SqliteStore(tmp_path / "a" / "a.db") as a, SqliteStore(tmp_path / "b" / "b.db") as b:
        yield a, b


def test_a_record_copied_from_another_store_is_a_miss(
    two_stores: tuple[Any, Any], calls: Calls, caplog: pytest.LogCaptureFixture
) -> None:
    source, target = two_stores
    compute = _compute(calls)
    with harness(start=START, store=source):  # (which closes it on exit)
        assert compute(2) == 10  # genuine there, signed with that store's key
        (record,) = source.cache_records()

    with harness(start=START, store=target) as h:
        target.cache_secret()
        target.write_cache(*record)
        calls.args.clear()
        _run_expecting_a_miss(h, calls, caplog, compute, "another store's key")


def test_a_record_of_another_serializer_is_a_miss_naming_both(
    store_h: Harness, calls: Calls, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    # Correctly signed, even: the task's own serializer decides, never the record's.
    marker = tmp_path / "unpickled"
    payload = pickle.dumps(_Booby(marker))
    _put(store_h, sign(store_h.store.cache_secret(), KEY, "pickle", payload))

    _run_expecting_a_miss(store_h, calls, caplog, _compute(calls, "json"), "'pickle'", "'json'")
    assert not marker.exists()


def test_a_payload_that_runs_code_is_never_unpickled_when_its_mac_fails(
    store_h: Harness, calls: Calls, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    marker = tmp_path / "unpickled"
    payload = pickle.dumps(_Booby(marker))
    assert not marker.exists()
    wrong = hmac.digest(b"k" * 32, payload, "sha256")
    _put(store_h, wrong + payload)

    _run_expecting_a_miss(store_h, calls, caplog, _compute(calls), "not deserialized")
    assert not marker.exists()
    # The bait works: with this store's MAC it would have run.
    _put(store_h, sign(store_h.store.cache_secret(), KEY, "pickle", payload))
    _compute(calls)(2)
    assert marker.is_dir()


def test_json_records_are_signed_too(
    store_h: Harness, calls: Calls, caplog: pytest.LogCaptureFixture
) -> None:
    # json.loads runs no code, but a forged value would still be a result never computed.
    _put(store_h, b"-1", "json")
    _run_expecting_a_miss(store_h, calls, caplog, _compute(calls, "json"), "MAC")
    (record,) = store_h.store.cache_records()
    assert record.value == sign(store_h.store.cache_secret(), KEY, "json", b"10")
