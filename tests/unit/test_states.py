"""States: constructors, predicates and ``result()``."""

from __future__ import annotations

import copyreg
import io
import pickle
from datetime import UTC, datetime

import pytest

from wfkit import states
from wfkit.exceptions import FailedRun, UnfinishedRun, WfkitError
from wfkit.states import State, StateType

CONSTRUCTORS = [
    ("Scheduled", StateType.SCHEDULED),
    ("Pending", StateType.PENDING),
    ("Running", StateType.RUNNING),
    ("Completed", StateType.COMPLETED),
    ("Cached", StateType.COMPLETED),
    ("Failed", StateType.FAILED),
    ("TimedOut", StateType.FAILED),
    ("Crashed", StateType.CRASHED),
    ("Cancelled", StateType.CANCELLED),
    ("Cancelling", StateType.CANCELLING),
    ("Paused", StateType.PAUSED),
    ("AwaitingRetry", StateType.SCHEDULED),
    ("Retrying", StateType.RUNNING),
    ("NotReady", StateType.PENDING),
]

PREDICATES = {
    StateType.SCHEDULED: "is_scheduled",
    StateType.PENDING: "is_pending",
    StateType.RUNNING: "is_running",
    StateType.COMPLETED: "is_completed",
    StateType.FAILED: "is_failed",
    StateType.CRASHED: "is_crashed",
    StateType.CANCELLED: "is_cancelled",
    StateType.CANCELLING: "is_cancelling",
    StateType.PAUSED: "is_paused",
}

FINAL = {StateType.COMPLETED, StateType.FAILED, StateType.CRASHED, StateType.CANCELLED}


@pytest.mark.parametrize(("name", "state_type"), CONSTRUCTORS)
def test_constructor_sets_name_and_type(name: str, state_type: StateType) -> None:
    state = getattr(states, name)()

    assert isinstance(state, State)
    assert state.name == name
    assert state.type is state_type


def test_every_constructor_is_exported() -> None:
    assert {name for name, _ in CONSTRUCTORS} <= set(states.__all__)


@pytest.mark.parametrize(("name", "state_type"), CONSTRUCTORS)
def test_exactly_one_type_predicate_is_true(name: str, state_type: StateType) -> None:
    state = getattr(states, name)()

    truths = {pred: getattr(state, pred)() for pred in PREDICATES.values()}

    assert truths == {pred: t is state_type for t, pred in PREDICATES.items()}


@pytest.mark.parametrize(("name", "state_type"), CONSTRUCTORS)
def test_is_final_only_for_completed_failed_crashed_cancelled(
    name: str, state_type: StateType
) -> None:
    assert getattr(states, name)().is_final() is (state_type in FINAL)


def test_constructor_keeps_its_arguments() -> None:
    when = datetime(2026, 1, 1, tzinfo=UTC)
    error = ValueError("boom")

    state = states.Failed(message="it broke", exception=error, timestamp=when)

    assert (state.message, state.exception, state.timestamp) == ("it broke", error, when)


def test_constructor_name_can_be_overridden() -> None:
    state = states.Completed(name="Done")

    assert (state.name, state.type) == ("Done", StateType.COMPLETED)


def test_state_type_is_a_string_enum() -> None:
    assert StateType.COMPLETED == "COMPLETED"
    assert str(StateType.FAILED) == "FAILED"


def test_state_without_name_is_named_after_its_type() -> None:
    assert State(StateType.CANCELLING).name == "Cancelling"


# -- result() -------------------------------------------------------------------------------
def test_result_of_completed_is_its_data() -> None:
    assert states.Completed(data={"a": 1}).result() == {"a": 1}


def test_result_of_cached_is_its_data() -> None:
    assert states.Cached(data=42).result() == 42


@pytest.mark.parametrize(
    "constructor", [states.Failed, states.Crashed, states.Cancelled, states.TimedOut]
)
def test_result_of_a_failure_raises_its_exception(constructor) -> None:  # type: ignore[no-untyped-def]
    error = ValueError("boom")

    with pytest.raises(ValueError, match="boom") as info:
        constructor(exception=error).result()

    assert info.value is error


@pytest.mark.parametrize("constructor", [states.Failed, states.Crashed, states.Cancelled])
def test_result_without_raising_returns_the_exception(constructor) -> None:  # type: ignore[no-untyped-def]
    error = RuntimeError("boom")

    assert constructor(exception=error).result(raise_on_failure=False) is error


def test_result_of_failure_without_exception_raises_failed_run() -> None:
    state = states.Failed(message="2 of 3 futures failed")

    with pytest.raises(FailedRun) as info:
        state.result()

    assert "Failed" in str(info.value)
    assert "2 of 3 futures failed" in str(info.value)
    assert isinstance(info.value, WfkitError)


def test_result_of_failure_without_exception_and_without_raising_returns_failed_run() -> None:
    assert isinstance(states.Failed().result(raise_on_failure=False), FailedRun)


@pytest.mark.parametrize(
    "constructor",
    [
        states.Pending,
        states.Running,
        states.Scheduled,
        states.AwaitingRetry,
        states.Retrying,
        states.Paused,
    ],
)
def test_result_of_an_unfinished_state_raises_unfinished_run(constructor) -> None:  # type: ignore[no-untyped-def]
    state = constructor()

    with pytest.raises(UnfinishedRun) as info:
        state.result()

    assert state.name in str(info.value)
    assert "not final" in str(info.value)


def test_unfinished_raises_even_when_not_raising_on_failure() -> None:
    with pytest.raises(UnfinishedRun):
        states.Running().result(raise_on_failure=False)


# -- value behaviour ------------------------------------------------------------------------
def test_copy_applies_changes_and_leaves_the_original() -> None:
    original = states.Completed(data=1, message="m")

    copied = original.copy(data=2)

    assert (copied.data, copied.message, copied.name) == (2, "m", "Completed")
    assert original.data == 1


def test_states_compare_by_value() -> None:
    assert states.Completed(data=1) == states.Completed(data=1)
    assert states.Completed(data=1) != states.Completed(data=2)
    assert states.Completed() != states.Cached()


def test_repr_names_the_state_and_message() -> None:
    text = repr(states.Failed(message="it broke"))

    assert text.startswith("Failed(")
    assert "it broke" in text


@pytest.mark.parametrize(("name", "state_type"), CONSTRUCTORS)
def test_a_pickled_state_comes_back_equal_with_its_id(name: str, state_type: StateType) -> None:
    when = datetime(2026, 12, 8, 1, 2, 3, 456789, tzinfo=UTC)
    state = getattr(states, name)(
        message="m", data={"x": [1]}, exception=ValueError("v"), timestamp=when
    )
    state.scheduled_time = when

    for asked_for_an_id in (False, True):
        if asked_for_an_id:
            _ = state.id
        copy = pickle.loads(pickle.dumps(state))

        assert copy.copy(exception=None) == state.copy(exception=None)  # (exceptions: by id)
        assert copy.type is state_type  # (the member itself: states compare types with `is`)
        assert (copy.name, copy.timestamp.tzinfo) == (state.name, UTC)
        assert repr(copy.exception) == "ValueError('v')"
        assert hasattr(copy, "_id") is asked_for_an_id
        if asked_for_an_id:
            assert copy.id == state.id


def test_a_state_pickled_the_default_way_still_loads() -> None:
    # (how a state pickled before State had __reduce__ looks: its slots as BUILD state)
    state = states.Completed(data=3, message="m")
    slots = {slot: getattr(state, slot) for slot in states._FIELDS}

    class OldWay(pickle.Pickler):
        def reducer_override(self, obj: object) -> object:
            if type(obj) is State:
                return (copyreg.__newobj__, (State,), (None, slots))
            return NotImplemented

    buffer = io.BytesIO()
    OldWay(buffer).dump(state)

    assert pickle.loads(buffer.getvalue()) == state
