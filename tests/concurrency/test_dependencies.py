"""Futures as task inputs: resolution, upstream ids, ``wait_for``, ``NotReady``,
``allow_failure``, ``quote``."""

from __future__ import annotations

import threading
from collections import namedtuple

import pytest

from wfkit import allow_failure, flow, quote, task, unmapped
from wfkit.exceptions import UpstreamTaskError
from wfkit.futures import WfFuture

WAIT = 30


@task
def value(x):
    return x


@task
def echo(a=None, b=None, c=None, point=None, frozen=None, again=None):
    return a, b, c, point, frozen, again


@task
def star(*args, **kwargs):
    return args, kwargs


@task
def boom(message="upstream broke"):
    raise ValueError(message)


def record_of(h, future):
    (record,) = [r for r in h.task_runs() if r.id == future.task_run_id]
    return record


# -- resolution and upstream ids -------------------------------------------------------------
def test_future_arguments_resolve_to_results_and_are_recorded_upstream(h):
    seen = {}

    @task
    def add(x, y):
        return x + y

    @flow
    def main():
        a, b = value.submit(1), value.submit(2)
        total = add.submit(a, b)
        seen.update(a=a, b=b, total=total)
        return total.result()

    assert main() == 3
    assert record_of(h, seen["total"]).upstream_ids == (
        seen["a"].task_run_id,
        seen["b"].task_run_id,
    )
    assert record_of(h, seen["a"]).upstream_ids == ()


def test_futures_nested_in_lists_dicts_tuples_and_sets_resolve(h):
    seen = {}
    Point = namedtuple("Point", "x y")

    @flow
    def main():
        fs = [value.submit(i) for i in range(7)]
        result = echo.submit(
            [fs[0], fs[1]],
            {"k": fs[2], "deep": {"list": [fs[3], (fs[4],)]}},
            (fs[5], "plain"),
            point=Point(fs[6], 99),
            frozen=frozenset([fs[0]]),
        )
        seen.update(fs=fs, result=result)
        return result.result()

    a, b, c, point, frozen, _ = main()
    assert (a, b, c) == ([0, 1], {"k": 2, "deep": {"list": [3, (4,)]}}, (5, "plain"))
    assert type(c) is tuple
    assert point == (6, 99)
    assert type(point) is Point
    assert frozen == frozenset([0])
    upstream = record_of(h, seen["result"]).upstream_ids
    # Every future once (fs[0] appears twice), in the order they were found.
    assert sorted(upstream) == sorted(f.task_run_id for f in seen["fs"])
    assert len(upstream) == 7


def test_futures_in_var_positional_and_var_keyword_arguments(h):
    seen = {}

    @flow
    def main():
        f = value.submit(1)
        down = star.submit(f, [f], key=f)
        seen.update(f=f, down=down)
        return down.result(), star(f, 2, key=f)

    submitted, inline = main()
    assert inline == ((1, 2), {"key": 1})
    assert submitted == ((1, [1]), {"key": 1})
    assert record_of(h, seen["down"]).upstream_ids == (seen["f"].task_run_id,)


def test_a_future_passed_twice_is_one_upstream(h):
    seen = {}

    @flow
    def main():
        f = value.submit(4)
        down = echo.submit(f, f, again=[f])
        seen.update(f=f, down=down)
        return down.result()

    assert main() == (4, 4, None, None, None, [4])
    assert record_of(h, seen["down"]).upstream_ids == (seen["f"].task_run_id,)


def test_downstream_starts_after_upstream_finished(h):
    events = []
    lock = threading.Lock()

    def log(event):
        with lock:
            events.append(event)

    @task
    def up(x):
        log("up-start")
        threading.Event().wait(0.2)  # real (not virtual) time: give a wrong order a chance
        log("up-end")
        return x

    @task
    def down(x):
        log(f"down got {x}")
        return x

    @flow
    def main():
        return down.submit(up.submit(7)).result()

    assert main() == 7
    assert events == ["up-start", "up-end", "down got 7"]


def test_wait_for_orders_without_passing_data(h):
    events = []
    seen = {}

    @task
    def up():
        events.append("up-start")
        threading.Event().wait(0.2)
        events.append("up-end")
        return "unused"

    @task
    def down(x):
        events.append(f"down({x})")
        return x

    @flow
    def main():
        first = up.submit()
        second = down.submit(1, wait_for=[first])
        seen.update(first=first, second=second)
        return second.result()

    assert main() == 1
    assert events == ["up-start", "up-end", "down(1)"]
    record = record_of(h, seen["second"])
    assert record.parameters == {"x": 1}
    assert record.upstream_ids == (seen["first"].task_run_id,)


def test_wait_for_on_map_and_inline_calls(h):
    events = []

    @task
    def up():
        threading.Event().wait(0.1)
        events.append("up")

    @task
    def down(x):
        events.append(f"down{x}")
        return x

    @flow
    def main():
        first = up.submit()
        mapped = down.map([1, 2], wait_for=[first]).result()
        second = up.submit()
        inline = down(3, wait_for=[second])
        return mapped, inline

    assert main() == ([1, 2], 3)
    assert events[0] == "up"
    assert set(events[1:3]) == {"down1", "down2"}
    assert events[3:] == ["up", "down3"]


def test_values_in_wait_for_that_are_not_futures_are_ignored(h):
    # As in Prefect (docs/v3/concepts/flows.mdx, "Return a future": wait_for gets the
    # exception that .result(raise_on_failure=False) returned, and the task runs).
    @flow
    def main():
        failed = ValueError("an upstream's exception, not a future")
        return value.submit(1, wait_for=["not a future", failed, None]).result()

    assert main() == 1
    assert h.task_run(value).upstream_ids == ()


# -- failed upstream -----------------------------------------------------------------------
def test_failed_upstream_leaves_downstream_not_ready(h):
    ran = []
    seen = {}

    @task
    def down(x):
        ran.append(x)
        return x

    @flow
    def main():
        up = boom.submit()
        after = down.submit(up)
        try:
            after.result()
        except UpstreamTaskError as exc:
            seen["error"] = exc
        seen.update(up=up, after=after, state=after.state)
        return "done"

    assert main() == "done"
    assert ran == []
    up_record = record_of(h, seen["up"])
    down_record = record_of(h, seen["after"])
    assert up_record.state_names == ["Pending", "Running", "Failed"]
    assert down_record.state_names == ["Pending", "NotReady"]
    assert down_record.state.type.value == "PENDING"
    assert down_record.upstream_ids == (up_record.id,)
    message = str(seen["error"])
    assert repr(up_record.name) in message
    assert up_record.id in message
    assert "allow_failure" in message
    assert seen["state"].name == "NotReady"
    assert isinstance(seen["state"].exception, UpstreamTaskError)
    assert down_record.state.message == message


def test_failed_wait_for_upstream_leaves_downstream_not_ready(h):
    seen = {}

    @flow
    def main():
        up = boom.submit()
        after = value.submit(1, wait_for=[up])
        after.wait()
        seen["after"] = after
        return after.state.name

    assert main() == "NotReady"
    assert record_of(h, seen["after"]).state_names == ["Pending", "NotReady"]


def test_not_ready_propagates_down_a_chain(h):
    seen = {}

    @flow
    def main():
        up = boom.submit()
        mid = value.submit(up)
        down = value.submit(mid)
        down.wait()
        seen.update(mid=mid, down=down)
        with pytest.raises(UpstreamTaskError) as info:
            down.result()
        return str(info.value)

    message = main()
    mid, down = record_of(h, seen["mid"]), record_of(h, seen["down"])
    assert mid.state_names == ["Pending", "NotReady"]
    assert down.state_names == ["Pending", "NotReady"]
    assert repr(mid.name) in message  # the downstream names its own upstream
    assert "NotReady" in message


def test_failed_upstream_for_an_inline_call(h):
    @flow
    def main():
        up = boom.submit()
        state = value(up, return_state=True)
        return state.name, type(state.exception)

    assert main() == ("NotReady", UpstreamTaskError)
    (record,) = h.task_runs(value)
    assert record.state_names == ["Pending", "NotReady"]


def test_allow_failure_runs_downstream_with_the_exception(h):
    seen = {}

    @task
    def inspect_it(x, other):
        return x, other

    @flow
    def main():
        up = boom.submit("kaput")
        good = value.submit(5)
        down = inspect_it.submit(allow_failure(up), allow_failure(good))
        seen.update(up=up, down=down)
        return down.result()

    received, other = main()
    assert isinstance(received, ValueError)
    assert str(received) == "kaput"
    assert other == 5  # a completed upstream gives its value
    record = record_of(h, seen["down"])
    assert record.state_names == ["Pending", "Running", "Completed"]
    assert seen["up"].task_run_id in record.upstream_ids


def test_allow_failure_around_a_container_of_futures(h):
    @flow
    def main():
        return value.submit(allow_failure([boom.submit("a"), value.submit(1)])).result()

    error, one = main()
    assert isinstance(error, ValueError) and one == 1


def test_allow_failure_in_wait_for(h):
    @flow
    def main():
        up = boom.submit()
        return value.submit("ran anyway", wait_for=[allow_failure(up)]).result()

    assert main() == "ran anyway"


# -- quote ---------------------------------------------------------------------------------
def test_quote_passes_the_value_untouched_and_not_traversed(store):
    gate = threading.Event()
    seen = {}

    @task
    def blocked():
        gate.wait(WAIT)
        return "late"

    @task
    def receive(items):
        return items

    @flow
    def main():
        pending = blocked.submit()
        payload = [pending, {"k": pending}]
        received = receive.submit(quote(payload)).result()  # does not wait for `pending`
        seen.update(pending_done=pending.done(), pending=pending, payload=payload)
        gate.set()
        seen["received"] = received
        return pending.result()

    assert main() == "late"
    received = seen["received"]
    assert received is seen["payload"]
    assert isinstance(received[0], WfFuture)
    assert received[0] is seen["pending"]
    assert received[1]["k"] is seen["pending"]
    assert seen["pending_done"] is False
    (record,) = store.task_runs(task_name="receive")
    assert record.upstream_ids == ()


def test_quote_of_a_plain_value(h):
    @flow
    def main():
        data = {"a": [1, 2]}
        return value.submit(quote(data)).result() is data

    assert main() is True


# -- inline calls and map with futures ----------------------------------------------------
def test_inline_call_with_a_future_argument(h):
    seen = {}

    @task
    def add(x, y):
        return x + y

    @flow
    def main():
        up = value.submit(10)
        seen["up"] = up
        return add(up, 1), add(x=up, y=1)

    assert main() == (11, 11)
    inline = h.task_runs(add)
    assert len(inline) == 2
    assert all(r.upstream_ids == (seen["up"].task_run_id,) for r in inline)
    assert all(r.state_names == ["Pending", "Running", "Completed"] for r in inline)


def test_map_over_futures_resolves_each_element(h):
    seen = {}

    @task
    def double(x):
        return 2 * x

    @flow
    def main():
        ups = [value.submit(i) for i in range(3)]
        downs = double.map(ups)
        seen.update(ups=ups, downs=downs)
        return downs.result()

    assert main() == [0, 2, 4]
    for up, down in zip(seen["ups"], seen["downs"], strict=True):
        assert record_of(h, down).upstream_ids == (up.task_run_id,)


def test_map_over_a_future_of_an_iterable(h):
    @task
    def numbers():
        return [1, 2, 3]

    @task
    def double(x):
        return 2 * x

    @flow
    def main():
        return double.map(numbers.submit()).result()

    assert main() == [2, 4, 6]


def test_map_with_an_unmapped_future(h):
    seen = {}

    @task
    def add(x, y):
        return x + y

    @flow
    def main():
        base = value.submit(100)
        downs = add.map([1, 2], unmapped(base))
        seen.update(base=base, downs=downs)
        return downs.result()

    assert main() == [101, 102]
    for down in seen["downs"]:
        assert record_of(h, down).upstream_ids == (seen["base"].task_run_id,)
