"""Caching with bad input: unhashable arguments, failing key functions, invalid options and
corrupt cache records. Every case either fails clearly or degrades to running uncached."""

from __future__ import annotations

import logging
import pickle
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from wfkit import flow, task
from wfkit._engine.caching import MAC_SIZE
from wfkit.cache_policies import DEFAULT, INPUTS, CacheKeyError
from wfkit.exceptions import ConfigurationError
from wfkit.testing import Harness

from .conftest import Calls


def warnings_in(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


# unhashable inputs -----------------------------------------------------------------------
def test_a_lock_argument_raises_a_clear_cache_key_error(h: Harness, calls: Calls) -> None:
    @task(cache_policy=INPUTS)
    def guarded(lock: Any, x: int) -> int:
        calls(x)
        return x

    with pytest.raises(CacheKeyError) as info:
        guarded(threading.Lock(), 1)
    err = info.value
    assert isinstance(err, ConfigurationError) and isinstance(err, TypeError)
    assert err.argument == "lock"
    message = str(err)
    assert "'lock'" in message
    assert "cache_key_fn" in message
    assert "INPUTS - 'lock'" in message
    assert calls.count == 0  # the body never ran
    run = h.task_run(guarded)
    assert run.state.name == "Failed"
    assert run.state.is_failed()
    assert "Running" not in run.state_names


def test_an_open_file_argument_raises_a_clear_cache_key_error(h: Harness, tmp_path: Path) -> None:
    @task(cache_policy=DEFAULT)
    def read_all(handle: Any) -> str:
        return str(handle.read())

    path = tmp_path / "data.txt"
    path.write_text("hello")
    with path.open() as handle:
        with pytest.raises(CacheKeyError, match=r"'handle'") as info:
            read_all(handle)
    assert info.value.argument == "handle"
    assert "cache_key_fn" in str(info.value)
    assert h.task_run(read_all).state.name == "Failed"


def test_an_unhashable_argument_nested_in_a_container(h: Harness) -> None:
    @task(cache_policy=INPUTS)
    def use(config: dict[str, Any]) -> int:
        return 1

    with pytest.raises(CacheKeyError) as info:
        use({"name": "x", "lock": threading.Lock()})
    assert info.value.argument == "config"
    assert "'config'" in str(info.value)


def test_unhashable_error_as_a_state_inside_a_flow(h: Harness) -> None:
    @task(cache_policy=INPUTS)
    def guarded(lock: Any) -> int:
        return 1

    @flow
    def pipeline() -> str:
        state = guarded(threading.Lock(), return_state=True)
        assert isinstance(state.exception, CacheKeyError)
        return state.name

    assert pipeline() == "Failed"
    assert h.flow_run(pipeline).state.name == "Completed"


def test_excluding_the_unhashable_argument_makes_it_work(h: Harness, calls: Calls) -> None:
    @task(cache_policy=INPUTS - "lock")
    def guarded(lock: Any, x: int) -> int:
        with lock:
            calls(x)
        return x * 3

    lock = threading.Lock()
    assert guarded(lock, 2) == 6
    assert guarded(threading.Lock(), 2) == 6  # another lock: the same key
    assert calls.count == 1
    assert [r.state.name for r in h.task_runs(guarded)] == ["Completed", "Cached"]


def test_a_cache_key_fn_sidesteps_the_unhashable_argument(h: Harness, calls: Calls) -> None:
    @task(cache_key_fn=lambda context, parameters: f"x={parameters['x']}")
    def guarded(lock: Any, x: int) -> int:
        calls(x)
        return x

    guarded(threading.Lock(), 1)
    guarded(threading.Lock(), 1)
    assert calls.count == 1


# failing key functions -------------------------------------------------------------------
def test_a_raising_cache_key_fn_runs_uncached_with_a_warning(
    h: Harness, calls: Calls, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(context: Any, parameters: dict[str, Any]) -> str:
        raise KeyError("missing")

    @task(cache_key_fn=broken)
    def compute(x: int) -> int:
        calls(x)
        return x + 1

    with caplog.at_level(logging.WARNING):
        assert compute(1) == 2
        assert compute(1) == 2
    assert calls.count == 2
    runs = h.task_runs(compute)
    assert [r.state.name for r in runs] == ["Completed", "Completed"]
    assert [r.cache_key for r in runs] == [None, None]
    assert h.store.cache_records() == []
    warnings = warnings_in(caplog)
    assert len(warnings) == 2
    assert all("KeyError" in w and "without caching" in w for w in warnings)


def test_a_cache_key_fn_returning_a_non_string_runs_uncached_with_a_warning(
    h: Harness, calls: Calls, caplog: pytest.LogCaptureFixture
) -> None:
    @task(cache_key_fn=lambda context, parameters: 42)
    def compute(x: int) -> int:
        calls(x)
        return x

    with caplog.at_level(logging.WARNING):
        compute(1)
        compute(1)
    assert calls.count == 2
    assert any("must return a string" in w for w in warnings_in(caplog))


# invalid options --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"cache_expiration": -1}, "cache_expiration"),
        ({"cache_expiration": timedelta(seconds=-5)}, "cache_expiration"),
        ({"cache_expiration": "1h"}, "cache_expiration"),
        ({"cache_policy": "inputs"}, "cache_policy"),
        ({"cache_policy": INPUTS.compute_key}, "cache_policy"),
        ({"result_serializer": "yaml"}, "result_serializer"),
        ({"cache_key_fn": "task_input_hash"}, "cache_key_fn"),
        ({"refresh_cache": "yes"}, "refresh_cache"),
    ],
    ids=[
        "expiration-negative",
        "expiration-negative-timedelta",
        "expiration-string",
        "policy-string",
        "policy-callable",
        "serializer-yaml",
        "key-fn-string",
        "refresh-string",
    ],
)
def test_invalid_cache_options_fail_at_decoration(options: dict[str, Any], named: str) -> None:
    def body(x: int) -> int:
        return x

    with pytest.raises(ConfigurationError, match=named):
        task(body, **options)
    with pytest.raises(ConfigurationError, match=named):
        task(**options)(body)


def test_invalid_cache_options_fail_in_with_options() -> None:
    @task(cache_policy=INPUTS)
    def compute(x: int) -> int:
        return x

    with pytest.raises(ConfigurationError, match="cache_policy"):
        compute.with_options(cache_policy="inputs")
    with pytest.raises(ConfigurationError, match="cache_expiration"):
        compute.with_options(cache_expiration=-1)


def test_invalid_isolation_level_fails_at_configure() -> None:
    with pytest.raises(ConfigurationError, match="isolation_level"):
        INPUTS.configure(isolation_level="REPEATABLE_READ")  # type: ignore[arg-type]


# corrupt records ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("garbage", "serializer"),
    [
        (b"garbage", "pickle"),
        (b"{not json", "json"),
        (b"", "pickle"),
        (pickle.dumps(1)[:-1], "pickle"),  # truncated
        (b"garbage", "yaml"),  # a serializer this engine does not know
    ],
    ids=["pickle-garbage", "json-garbage", "empty", "truncated", "unknown-serializer"],
)
def test_a_corrupt_cache_record_is_a_miss_with_a_warning(
    store_h: Harness,
    calls: Calls,
    caplog: pytest.LogCaptureFixture,
    garbage: bytes,
    serializer: str,
) -> None:
    h = store_h

    @task(cache_policy=INPUTS, result_serializer="json" if serializer == "json" else None)
    def compute(x: int) -> int:
        calls(x)
        return x * 5

    assert compute(2) == 10
    key = h.task_run(compute).cache_key
    assert key is not None
    h.store.write_cache(key, garbage, serializer, None, "compute", h.clock.now())

    with caplog.at_level(logging.WARNING):
        state = compute(2, return_state=True)
    assert state.name == "Completed"  # a miss: the body ran again, nothing crashed
    assert state.result() == 10
    assert calls.count == 2
    warnings = warnings_in(caplog)
    assert len(warnings) == 1
    assert key in warnings[0] and "miss" in warnings[0]
    # The recomputed value replaced the corrupt record: the next call hits.
    assert compute(2) == 10
    assert calls.count == 2
    assert [r.state.name for r in h.task_runs(compute)] == ["Completed", "Completed", "Cached"]


def test_a_corrupt_record_written_before_any_run(h: Harness, calls: Calls) -> None:
    @task(cache_key_fn=lambda context, parameters: "fixed-key")
    def compute(x: int) -> int:
        calls(x)
        return x

    h.store.write_cache("fixed-key", b"\x80\x05garbage", "pickle", None, "compute", h.clock.now())
    assert compute(7) == 7
    assert calls.count == 1
    (record,) = h.store.cache_records()
    assert pickle.loads(record.value[MAC_SIZE:]) == 7


def test_a_record_with_an_unknown_serializer_is_a_miss_not_unpickled(
    h: Harness, calls: Calls, caplog: pytest.LogCaptureFixture
) -> None:
    """A record written by some other writer with a serializer this engine does not know
    (here ``"yaml"``) must not be read back as if it were pickle, even when its bytes happen
    to unpickle: the serializer name is the record's contract."""

    @task(cache_key_fn=lambda context, parameters: "shared-key")
    def compute(x: int) -> int:
        calls(x)
        return x

    h.store.write_cache("shared-key", pickle.dumps(-1), "yaml", None, "other", h.clock.now())
    with caplog.at_level(logging.WARNING):
        state = compute(7, return_state=True)
    assert state.name == "Completed"
    assert state.result() == 7  # not -1, decoded from bytes the record does not claim to be
    assert calls.count == 1
    assert len(warnings_in(caplog)) == 1


def test_an_unhashable_flow_parameter_names_the_parameter(h: Harness) -> None:
    from wfkit.cache_policies import FLOW_PARAMETERS

    @task(cache_policy=FLOW_PARAMETERS)
    def keyed(x: int) -> int:
        return x

    @flow
    def pipeline(lock: Any) -> Any:
        state = keyed(1, return_state=True)
        return type(state.exception).__name__, str(state.exception)

    kind, message = pipeline(threading.Lock())
    assert kind == "CacheKeyError"
    assert "flow parameter 'lock'" in message
    assert "cache_key_fn" in message
    assert h.task_run(keyed).state.name == "Failed"
