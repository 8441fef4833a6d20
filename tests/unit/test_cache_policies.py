"""Cache policies and their keys: stability, composition, bad input, the legacy key function."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import functools
import json
import os
import pickle
import subprocess
import sys
import textwrap
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import wfkit
from wfkit.cache_policies import (
    DEFAULT,
    FLOW_PARAMETERS,
    INPUTS,
    NO_CACHE,
    NONE,
    RUN_ID,
    TASK_SOURCE,
    CacheKeyContext,
    CacheKeyError,
    CacheKeyFnPolicy,
    CachePolicy,
    CompoundCachePolicy,
    Inputs,
    NoCache,
    task_input_hash,
)
from wfkit.exceptions import ConfigurationError

SRC = Path(wfkit.__file__).resolve().parents[1]


def add(x: int, y: int) -> int:
    return x + y


def multiply(x: int, y: int) -> int:
    return x * y


CTX = CacheKeyContext("add", task_fn=add, task_run_id="task-1", flow_run_id="flow-1")


def key(policy: CachePolicy, inputs: dict[str, Any], ctx: CacheKeyContext = CTX, **kw: Any) -> Any:
    return policy.compute_key(ctx, inputs, kw.get("flow_parameters"))


def _exec_function(source: str) -> Any:
    """A function compiled from ``source`` with no file behind it (no inspect.getsource)."""
    namespace: dict[str, Any] = {}
    exec(compile(textwrap.dedent(source), "<generated>", "exec"), namespace)
    return namespace["f"]


# stability ------------------------------------------------------------------------------------
STABILITY_SCRIPT = """
import json, sys, textwrap
from datetime import date
from decimal import Decimal
from wfkit.cache_policies import (
    DEFAULT, FLOW_PARAMETERS, INPUTS, TASK_SOURCE, CacheKeyContext, task_input_hash,
)

ns = {}
exec(compile("def f(x):\\n    return x in {'alpha', 'beta', 'gamma', 'delta'}\\n", "<generated>", "exec"), ns)
ctx = CacheKeyContext("work", task_fn=json.dumps, task_run_id="t-1", flow_run_id="f-1")
no_source = CacheKeyContext("work", task_fn=ns["f"])
inputs = {
    "names": {"ada", "grace", "linus", "guido", "barbara"},
    "frozen": frozenset({"x", "y", "z", ("t", 1)}),
    "mapping": {"b": [1, 2.5, None, True], "a": {"z": "\\u00fc", "y": (1, "two")}},
    "when": date(2024, 5, 1),
    "amount": Decimal("1.10"),
    "blob": b"\\x00\\xff",
    "fn": lambda v: v + 1,
}
print(json.dumps([
    INPUTS.compute_key(ctx, inputs, None),
    DEFAULT.compute_key(ctx, inputs, None),
    TASK_SOURCE.compute_key(ctx, {}, None),
    TASK_SOURCE.compute_key(no_source, {}, None),
    FLOW_PARAMETERS.compute_key(ctx, {}, {"s": {"p", "q", "r"}}),
    task_input_hash(ctx, {"s": {"p", "q", "r"}}),
]))
"""


def _keys_in_a_new_interpreter(hash_seed: str) -> list[str]:
    env = {
        **os.environ,
        "PYTHONHASHSEED": hash_seed,
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
    }
    out = subprocess.run(
        [sys.executable, "-c", STABILITY_SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_keys_are_the_same_in_every_process_and_session() -> None:
    here: dict[str, Any] = {"__name__": "__main__"}  # as in `python -c`
    exec(STABILITY_SCRIPT.replace("print(", "result = ("), here)
    in_this_process = json.loads(here["result"])

    assert all(isinstance(k, str) and len(k) == 32 for k in in_this_process[:2])
    for seed in ("1", "2", "12345"):  # str hashes (and set orders) differ between these
        assert _keys_in_a_new_interpreter(seed) == in_this_process


def test_keys_are_32_hex_characters() -> None:
    for policy in (INPUTS, DEFAULT, TASK_SOURCE, FLOW_PARAMETERS):
        k = key(policy, {"x": 1}, flow_parameters={"p": 1})
        assert isinstance(k, str) and len(k) == 32 and int(k, 16) >= 0


def test_the_order_of_the_arguments_does_not_change_the_key() -> None:
    assert key(INPUTS, {"x": 1, "y": 2}) == key(INPUTS, {"y": 2, "x": 1})


def test_dict_order_inside_an_argument_does_not_change_the_key() -> None:
    one = {"a": 1, "b": {"c": [1, 2], "d": 3}}
    other = {"b": {"d": 3, "c": [1, 2]}, "a": 1}
    assert key(INPUTS, {"x": one}) == key(INPUTS, {"x": other})


def test_set_order_does_not_change_the_key() -> None:
    forwards, backwards = set(), set()
    words = [f"word-{i}" for i in range(50)]
    for w in words:
        forwards.add(w)
    for w in reversed(words):
        backwards.add(w)
    assert key(INPUTS, {"x": forwards}) == key(INPUTS, {"x": backwards})


@dataclasses.dataclass
class Config:
    names: set[str]
    options: dict[str, int]


def test_sets_and_dicts_inside_objects_do_not_change_the_key() -> None:
    one = Config({"a", "b", "c"}, {"x": 1, "y": 2})
    other = Config({"c", "b", "a"}, {"y": 2, "x": 1})
    assert key(INPUTS, {"cfg": one}) == key(INPUTS, {"cfg": other})
    assert key(INPUTS, {"cfg": one}) != key(INPUTS, {"cfg": Config({"a"}, {"x": 1, "y": 2})})


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ((1, 2), [1, 2]),
        (1, 1.5),
        (1, True),
        ("1", 1),
        ({1, 2}, frozenset({1, 2})),
        (None, "None"),
        (b"ab", "ab"),
        ({"a": 1}, [["a", 1]]),
    ],
)
def test_different_values_give_different_keys(one: Any, other: Any) -> None:
    assert key(INPUTS, {"x": one}) != key(INPUTS, {"x": other})


def test_values_json_cannot_hold_are_hashed_by_content() -> None:
    assert key(INPUTS, {"x": Decimal("1.10")}) == key(INPUTS, {"x": Decimal("1.10")})
    assert key(INPUTS, {"x": Decimal("1.10")}) != key(INPUTS, {"x": Decimal("1.1")})
    day = dt.date(2024, 1, 1)
    assert key(INPUTS, {"x": day}) != key(INPUTS, {"x": day + dt.timedelta(days=1)})


def test_functions_are_hashed_by_code_and_captured_values() -> None:
    def adder(n: int) -> Any:
        return lambda v: v + n

    assert key(INPUTS, {"fn": adder(1)}) == key(INPUTS, {"fn": adder(1)})
    assert key(INPUTS, {"fn": adder(1)}) != key(INPUTS, {"fn": adder(2)})
    assert key(INPUTS, {"fn": lambda v: v + 1}) != key(INPUTS, {"fn": lambda v: v - 1})


def test_a_value_that_contains_itself_is_hashed() -> None:
    loop: list[Any] = [1]
    loop.append(loop)
    mapping: dict[str, Any] = {"a": 1}
    mapping["self"] = mapping
    assert key(INPUTS, {"x": loop}) == key(INPUTS, {"x": loop})
    assert key(INPUTS, {"x": mapping}) is not None


# INPUTS and subtraction ---------------------------------------------------------------------
def test_inputs_minus_an_argument_ignores_it() -> None:
    policy = INPUTS - "x"
    assert key(policy, {"x": 1, "y": 2}) == key(policy, {"x": 999, "y": 2})
    assert key(policy, {"x": 1, "y": 2}) != key(policy, {"x": 1, "y": 3})
    assert key(policy, {"x": 1, "y": 2}) == key(INPUTS, {"y": 2})


def test_subtracting_in_any_order_gives_the_same_policy() -> None:
    assert INPUTS - "a" - "b" == INPUTS - "b" - "a" == Inputs(exclude=("b", "a", "a"))
    assert INPUTS - "a" != INPUTS


def test_inputs_gives_no_key_when_nothing_is_left_to_hash() -> None:
    assert key(INPUTS, {}) is None
    assert key(INPUTS - "x", {"x": 1}) is None


def test_subtracting_from_a_compound_changes_its_inputs_parts() -> None:
    policy = DEFAULT - "x"
    assert isinstance(policy, CompoundCachePolicy)
    assert policy.policies == (INPUTS - "x", TASK_SOURCE, RUN_ID)
    assert key(policy, {"x": 1, "y": 2}) == key(policy, {"x": 2, "y": 2})


def test_subtracting_from_a_policy_without_inputs_adds_inputs_without_the_argument() -> None:
    # As in Prefect: "everything this policy uses, and the inputs except x".
    policy = TASK_SOURCE - "x"
    assert policy == TASK_SOURCE + (INPUTS - "x")
    assert (TASK_SOURCE + RUN_ID - "x").policies == (TASK_SOURCE, RUN_ID, INPUTS - "x")


@pytest.mark.parametrize("bad", [3, None, "", ["x"]])
def test_only_an_argument_name_can_be_subtracted(bad: Any) -> None:
    for policy in (INPUTS, DEFAULT, TASK_SOURCE, NO_CACHE):
        with pytest.raises(TypeError, match="INPUTS - 'arg'"):
            policy - bad


# the other policies -------------------------------------------------------------------------
def test_default_is_inputs_plus_task_source_plus_run_id() -> None:
    assert DEFAULT == INPUTS + TASK_SOURCE + RUN_ID
    assert isinstance(DEFAULT, CompoundCachePolicy)


def test_default_depends_on_the_flow_run_id() -> None:
    other_run = dataclasses.replace(CTX, flow_run_id="flow-2", task_run_id="task-9")
    same_run = dataclasses.replace(CTX, task_run_id="task-9")
    assert key(DEFAULT, {"x": 1}) != key(DEFAULT, {"x": 1}, other_run)
    assert key(DEFAULT, {"x": 1}) == key(DEFAULT, {"x": 1}, same_run)


def test_run_id_is_the_flow_run_id_or_else_the_task_run_id() -> None:
    assert key(RUN_ID, {}) == "flow-1"
    assert key(RUN_ID, {}, dataclasses.replace(CTX, flow_run_id=None)) == "task-1"
    assert key(RUN_ID, {}, CacheKeyContext("t")) is None


def test_task_source_differs_between_functions_and_not_between_calls() -> None:
    other = dataclasses.replace(CTX, task_fn=multiply)
    assert key(TASK_SOURCE, {"x": 1}) == key(TASK_SOURCE, {"x": 2})
    assert key(TASK_SOURCE, {}) != key(TASK_SOURCE, {}, other)
    assert key(TASK_SOURCE, {}, CacheKeyContext("t")) is None


def test_task_source_without_source_code_uses_the_compiled_code() -> None:
    one = _exec_function("def f(x):\n    return x + 1\n")
    same = _exec_function("def f(x):\n    return x + 1\n")
    other = _exec_function("def f(x):\n    return x + 2\n")

    def ctx(fn: Any) -> CacheKeyContext:
        return CacheKeyContext("f", task_fn=fn)

    assert key(TASK_SOURCE, {}, ctx(one)) == key(TASK_SOURCE, {}, ctx(same))
    assert key(TASK_SOURCE, {}, ctx(one)) != key(TASK_SOURCE, {}, ctx(other))


def _load_module(path: Path, name: str) -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_task_source_is_the_source_of_the_code_that_runs(tmp_path: Path) -> None:
    # The key is read once per code object: editing the file later does not change the key
    # of a function already loaded (its code is the old one), while the function loaded from
    # the edited file gets a new key.
    path = tmp_path / "tasks_under_edit.py"
    path.write_text("def work(x):\n    return x + 1\n")
    old = _load_module(path, "tasks_under_edit_v1").work
    old_key = key(TASK_SOURCE, {}, CacheKeyContext("work", task_fn=old))

    path.write_text("def work(x):\n    return x + 1000  # edited\n")
    assert key(TASK_SOURCE, {}, CacheKeyContext("work", task_fn=old)) == old_key
    new = _load_module(path, "tasks_under_edit_v2").work
    new_key = key(TASK_SOURCE, {}, CacheKeyContext("work", task_fn=new))
    assert new_key != old_key
    assert old(1) == 2 and new(1) == 1001


def test_task_source_follows_a_replaced_code_object() -> None:
    first = _exec_function("def f(x):\n    return x + 1\n")
    second = _exec_function("def f(x):\n    return x + 2\n")
    target = _exec_function("def f(x):\n    return x + 1\n")
    ctx = CacheKeyContext("f", task_fn=target)

    assert key(TASK_SOURCE, {}, ctx) == key(TASK_SOURCE, {}, CacheKeyContext("f", first))
    target.__code__ = second.__code__
    assert key(TASK_SOURCE, {}, ctx) == key(TASK_SOURCE, {}, CacheKeyContext("f", second))


def test_task_source_of_a_wrapper_is_the_wrapped_functions() -> None:
    def wrap(fn: Any) -> Any:
        @functools.wraps(fn)
        def wrapper(*args: Any) -> Any:
            return fn(*args)

        return wrapper

    assert key(TASK_SOURCE, {}, CacheKeyContext("t", task_fn=wrap(add))) == key(TASK_SOURCE, {})
    assert key(TASK_SOURCE, {}, CacheKeyContext("t", task_fn=wrap(multiply))) != key(
        TASK_SOURCE, {}
    )


@pytest.mark.parametrize(
    "tree",
    [
        "text",
        ["inputs", [["x", 7]]],
        [1.5, -0.0, float("nan"), float("inf"), -float("inf"), 10**30, True, None],
        ['é ☃ \u2028 \x00 "quoted" \\', ["nested", [[], {}]]],
        {"b": 1, "a": [2]},
    ],
)
def test_keys_hash_the_same_text_as_json_dumps(tree: Any) -> None:
    from wfkit._cache_keys import encode

    expected = json.dumps(tree, ensure_ascii=True, separators=(",", ":"), allow_nan=True)
    assert encode(tree) == expected


class Doubler:
    def __call__(self, x: int) -> int:
        return 2 * x


@pytest.mark.parametrize("fn", [functools.partial(add, 1), Doubler(), Doubler().__call__, len])
def test_task_source_handles_any_callable(fn: Any) -> None:
    k = key(TASK_SOURCE, {}, CacheKeyContext("t", task_fn=fn))
    assert isinstance(k, str) and k == key(TASK_SOURCE, {}, CacheKeyContext("t", task_fn=fn))


def test_flow_parameters_are_hashed_in_any_order() -> None:
    assert key(FLOW_PARAMETERS, {"x": 1}, flow_parameters={"a": 1, "b": 2}) == key(
        FLOW_PARAMETERS, {"x": 2}, flow_parameters={"b": 2, "a": 1}
    )
    assert key(FLOW_PARAMETERS, {}, flow_parameters={"a": 1}) != key(
        FLOW_PARAMETERS, {}, flow_parameters={"a": 2}
    )


def test_flow_parameters_give_no_key_outside_a_flow_and_fall_back_to_the_context() -> None:
    assert key(FLOW_PARAMETERS, {"x": 1}) is None
    assert key(FLOW_PARAMETERS, {}, flow_parameters={}) is None
    ctx = dataclasses.replace(CTX, flow_parameters={"a": 1})
    assert key(FLOW_PARAMETERS, {}, ctx) == key(FLOW_PARAMETERS, {}, flow_parameters={"a": 1})


def test_no_cache_has_no_key_and_none_is_the_same_object() -> None:
    assert NONE is NO_CACHE and isinstance(NO_CACHE, NoCache)
    assert key(NO_CACHE, {"x": 1}, flow_parameters={"p": 1}) is None
    assert pickle.loads(pickle.dumps(NO_CACHE)) is NO_CACHE
    assert copy.deepcopy(NO_CACHE) is NO_CACHE and NO_CACHE - "x" is NO_CACHE


# composition --------------------------------------------------------------------------------
def test_adding_policies_flattens_them_in_order() -> None:
    combined = (INPUTS + TASK_SOURCE) + (RUN_ID + FLOW_PARAMETERS)
    assert isinstance(combined, CompoundCachePolicy)
    assert combined.policies == (INPUTS, TASK_SOURCE, RUN_ID, FLOW_PARAMETERS)


def test_a_compound_key_combines_the_keys_of_its_parts() -> None:
    assert key(INPUTS + RUN_ID, {"x": 1}) != key(INPUTS, {"x": 1})
    assert key(INPUTS + RUN_ID, {"x": 1}) != key(INPUTS + RUN_ID, {"x": 2})
    assert key(INPUTS + RUN_ID, {"x": 1}) != key(RUN_ID + INPUTS, {"x": 1})


def test_parts_without_a_key_are_skipped() -> None:
    # FLOW_PARAMETERS has no key outside a flow: the compound is keyed on INPUTS alone.
    with_none = key(INPUTS + FLOW_PARAMETERS, {"x": 1})
    assert with_none == CompoundCachePolicy((INPUTS,)).compute_key(CTX, {"x": 1}, None)
    assert with_none is not None


def test_a_compound_whose_parts_have_no_key_has_none() -> None:
    no_ids = CacheKeyContext("t")
    assert key(FLOW_PARAMETERS + RUN_ID + INPUTS, {}, no_ids) is None
    assert CompoundCachePolicy().compute_key(CTX, {"x": 1}, None) is None


def test_adding_no_cache_changes_nothing() -> None:
    assert INPUTS + NO_CACHE is INPUTS
    assert NO_CACHE + INPUTS is INPUTS
    assert DEFAULT + NONE is DEFAULT


def test_only_policies_can_be_added() -> None:
    with pytest.raises(TypeError):
        INPUTS + "x"  # type: ignore[operator]
    with pytest.raises(TypeError):
        NO_CACHE + 1  # type: ignore[operator]
    with pytest.raises(ConfigurationError, match="'INPUTS'.*not a cache policy"):
        CompoundCachePolicy((INPUTS, "INPUTS"))  # type: ignore[arg-type]


def test_policies_are_frozen_and_show_how_to_build_them() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        INPUTS.exclude = ("x",)  # type: ignore[misc]
    assert repr(DEFAULT - "x") == "INPUTS - 'x' + TASK_SOURCE + RUN_ID"
    serial = INPUTS.configure(isolation_level="SERIALIZABLE")
    assert repr(serial) == "INPUTS.configure(isolation_level='SERIALIZABLE')"
    assert repr(NO_CACHE) == "NO_CACHE" and repr(FLOW_PARAMETERS) == "FLOW_PARAMETERS"


# configure ----------------------------------------------------------------------------------
def test_configure_returns_a_changed_copy() -> None:
    serial = DEFAULT.configure(isolation_level="SERIALIZABLE")
    assert serial.isolation_level == "SERIALIZABLE"
    assert DEFAULT.isolation_level == "READ_COMMITTED"
    assert key(serial, {"x": 1}) == key(DEFAULT, {"x": 1})
    assert serial.configure(key_storage="/tmp/keys").isolation_level == "SERIALIZABLE"


def test_isolation_levels_are_read_case_insensitively() -> None:
    assert INPUTS.configure(isolation_level="serializable").isolation_level == "SERIALIZABLE"  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["REPEATABLE_READ", "", 3, "serial"])
def test_an_unknown_isolation_level_is_a_clear_error(bad: Any) -> None:
    with pytest.raises(ConfigurationError) as info:
        INPUTS.configure(isolation_level=bad)
    message = str(info.value)
    assert repr(bad) in message and "READ_COMMITTED" in message and "SERIALIZABLE" in message


def test_configure_takes_keywords_only() -> None:
    with pytest.raises(TypeError):
        INPUTS.configure("storage")  # type: ignore[misc]


def test_combining_keeps_the_stricter_isolation_level() -> None:
    serial = INPUTS.configure(isolation_level="SERIALIZABLE")
    assert (serial + TASK_SOURCE).isolation_level == "SERIALIZABLE"
    assert (TASK_SOURCE + serial).isolation_level == "SERIALIZABLE"
    assert (INPUTS + TASK_SOURCE).isolation_level == "READ_COMMITTED"


def test_policies_with_different_storage_cannot_be_combined() -> None:
    with pytest.raises(ConfigurationError, match="key_storage"):
        INPUTS.configure(key_storage="a") + TASK_SOURCE.configure(key_storage="b")
    combined = INPUTS.configure(key_storage="a") + TASK_SOURCE
    assert combined.key_storage == "a"


# unhashable inputs --------------------------------------------------------------------------
def _generator() -> Any:
    yield 1


@pytest.mark.parametrize(
    "make", [lambda p: open(p, "w"), lambda p: threading.Lock(), lambda p: _generator()]
)
def test_an_unhashable_input_names_the_argument_and_both_fixes(make: Any, tmp_path: Path) -> None:
    value = make(tmp_path / "out.txt")
    try:
        with pytest.raises(CacheKeyError) as info:
            key(DEFAULT, {"x": 1, "handle": value})
    finally:
        getattr(value, "close", lambda: None)()

    error = info.value
    message = str(error)
    assert error.argument == "handle"
    assert "argument 'handle'" in message and "task 'add'" in message
    assert "INPUTS - 'handle'" in message and "cache_key_fn" in message
    assert type(value).__qualname__ in message
    assert isinstance(error, ConfigurationError) and isinstance(error, TypeError)
    assert error.__cause__ is not None


def test_the_error_shows_where_inside_the_argument_the_value_is() -> None:
    with pytest.raises(CacheKeyError) as info:
        key(INPUTS, {"cfg": {"locks": [1, threading.Lock()]}})
    assert "cfg['locks'][1]" in str(info.value)


def test_an_excluded_unhashable_input_is_fine() -> None:
    assert key(INPUTS - "lock", {"lock": threading.Lock(), "x": 1}) == key(INPUTS, {"x": 1})


def test_an_unhashable_flow_parameter_is_named() -> None:
    with pytest.raises(CacheKeyError) as info:
        key(FLOW_PARAMETERS, {}, flow_parameters={"conn": threading.Lock()})
    assert info.value.argument == "conn" and "flow parameter 'conn'" in str(info.value)


# cache_key_fn and task_input_hash -----------------------------------------------------------
def test_cache_key_fn_policy_returns_what_the_function_returns() -> None:
    seen: list[Any] = []

    def by_x(context: CacheKeyContext, parameters: dict[str, Any]) -> str | None:
        seen.append((context, parameters))
        return None if parameters["x"] < 0 else f"x={parameters['x']}"

    policy = CachePolicy.from_cache_key_fn(by_x)
    assert policy == CacheKeyFnPolicy(by_x)
    assert key(policy, {"x": 3, "lock": threading.Lock()}) == "x=3"
    assert key(policy, {"x": -1}) is None
    assert seen[0][0] is CTX and type(seen[0][1]) is dict


def test_a_cache_key_fn_error_propagates_unchanged() -> None:
    def broken(context: Any, parameters: Any) -> str:
        raise KeyError("boom")

    with pytest.raises(KeyError, match="boom"):
        key(CacheKeyFnPolicy(broken), {"x": 1})


def test_a_cache_key_fn_must_return_a_string_or_none() -> None:
    with pytest.raises(TypeError, match="returned 42") as info:
        key(CacheKeyFnPolicy(lambda c, p: 42), {"x": 1})  # type: ignore[arg-type, return-value]
    assert not isinstance(info.value, CacheKeyError)  # a bug in the function, not an input


def test_a_cache_key_fn_must_be_callable() -> None:
    with pytest.raises(ConfigurationError, match="'not callable'"):
        CacheKeyFnPolicy("not callable")  # type: ignore[arg-type]


def test_task_input_hash_depends_on_the_task_and_its_arguments() -> None:
    base = task_input_hash(CTX, {"x": 1, "y": 2})
    assert isinstance(base, str) and len(base) == 32
    assert task_input_hash(CTX, {"y": 2, "x": 1}) == base
    assert task_input_hash(CTX, {"x": 1, "y": 3}) != base
    assert task_input_hash(dataclasses.replace(CTX, task_name="other"), {"x": 1, "y": 2}) != base
    assert task_input_hash(dataclasses.replace(CTX, task_fn=multiply), {"x": 1, "y": 2}) != base
    # Not the run: a legacy key is shared across flow runs.
    assert task_input_hash(dataclasses.replace(CTX, flow_run_id="f-9"), {"x": 1, "y": 2}) == base


def test_task_input_hash_gives_no_key_for_unhashable_arguments() -> None:
    # As in Prefect: the task then runs uncached.
    assert task_input_hash(CTX, {"lock": threading.Lock()}) is None


def test_task_input_hash_works_as_a_cache_key_fn() -> None:
    assert key(CacheKeyFnPolicy(task_input_hash), {"x": 1}) == task_input_hash(CTX, {"x": 1})


def test_importing_cache_policies_stays_light() -> None:
    code = (
        "import sys, wfkit.cache_policies\n"
        "print(sorted(m for m in ('pydantic', 'pickle', 'json', 'sqlite3') if m in sys.modules))"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
    }
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


# properties ---------------------------------------------------------------------------------
scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
values = st.recursive(
    scalars | st.binary(),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=5), inner, max_size=4)
        | st.frozensets(st.integers() | st.text(max_size=5), max_size=4)
    ),
    max_leaves=20,
)
arguments = st.dictionaries(st.text(min_size=1, max_size=8), values, min_size=1, max_size=5)


def _reordered(value: Any) -> Any:
    """An equal value with every dict's insertion order reversed, rebuilt from scratch."""
    if isinstance(value, dict):
        return {k: _reordered(v) for k, v in reversed(list(value.items()))}
    if isinstance(value, list):
        return [_reordered(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_reordered(v) for v in value)
    if isinstance(value, frozenset):
        return frozenset(reversed(list(value)))
    return value


@given(arguments)
def test_the_inputs_key_is_a_function_of_the_inputs(inputs: dict[str, Any]) -> None:
    k = key(INPUTS, inputs)
    assert isinstance(k, str)
    assert key(INPUTS, copy.deepcopy(inputs)) == k
    assert key(INPUTS, _reordered(inputs)) == k


@given(arguments, arguments)
def test_different_inputs_give_different_keys(one: dict[str, Any], other: dict[str, Any]) -> None:
    if one != other:
        assert key(INPUTS, one) != key(INPUTS, other)


# remembered keys ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "values",
    [(1, True, 1.0, "1"), (0, False, 0.0, -0.0, None, ""), (2**63 - 1, 2**63, float(2**63))],
)
def test_equal_arguments_of_other_types_keep_their_own_keys(values: tuple[Any, ...]) -> None:
    # The keys of small scalar arguments are remembered between calls: values that compare
    # equal but are of other types (1 == True == 1.0) must not share one.
    first = [key(INPUTS, {"x": v}) for v in values]
    again = [key(INPUTS, {"x": v}) for v in values]
    assert first == again
    assert len(set(first)) == len(values)


@given(st.dictionaries(st.text(min_size=1, max_size=8), scalars, min_size=1, max_size=4))
def test_a_remembered_inputs_key_is_the_key_computed_afresh(inputs: dict[str, Any]) -> None:
    import wfkit.cache_policies as policies

    served = key(INPUTS, inputs)
    policies._inputs_keys.clear()
    assert key(INPUTS, inputs) == served
    assert key(INPUTS - "other", inputs) == served  # another Inputs, the same arguments kept


def test_task_input_hash_follows_a_replaced_code_object() -> None:
    # The code's part of the key is worked out once per code object, not once per function.
    target = _exec_function("def f(x):\n    return x + 1\n")
    other = _exec_function("def f(x):\n    return x + 2\n")
    ctx = CacheKeyContext("f", task_fn=target)
    before = task_input_hash(ctx, {"x": 1})

    assert task_input_hash(ctx, {"x": 1}) == before
    target.__code__ = other.__code__
    after = task_input_hash(ctx, {"x": 1})
    assert after == task_input_hash(CacheKeyContext("f", task_fn=other), {"x": 1}) != before
