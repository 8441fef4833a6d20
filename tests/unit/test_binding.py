"""Binding arguments already given by name (task.submit/map and task runners)."""

from __future__ import annotations

from wfkit import task
from wfkit._engine.parameters import bind_arguments


def add(a: int, b: int = 2, c: int = 3) -> int:
    return a + b + c


ADD = task(add)


class Adder:
    @task
    def add(self, b: int, c: int = 3) -> int:
        return b + c


def test_arguments_in_signature_order_bind_as_given() -> None:
    bound, passed, parameters = bind_arguments(ADD, {"a": 1, "b": 5, "c": 7})
    assert list(bound.arguments.items()) == [("a", 1), ("b", 5), ("c", 7)]
    assert passed == parameters == {"a": 1, "b": 5, "c": 7}
    assert parameters is not bound.arguments  # the recorded parameters never alias them


def test_arguments_out_of_order_or_missing_are_put_in_order_with_defaults() -> None:
    bound, passed, parameters = bind_arguments(ADD, {"c": 7, "a": 1})
    assert list(bound.arguments) == ["a", "b", "c"]  # the body calls fn(*arguments.values())
    assert add(*bound.arguments.values()) == 10
    assert passed == {"c": 7, "a": 1}
    assert parameters == {"a": 1, "b": 2, "c": 7}


def test_a_methods_instance_is_left_out_of_the_record() -> None:
    adder = Adder()
    bound, _, parameters = bind_arguments(adder.add, {"self": adder, "b": 1, "c": 2})
    assert parameters == {"b": 1, "c": 2}
    assert bound.arguments["self"] is adder
