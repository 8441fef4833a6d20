"""The futures API: result/wait/state/task_run_id/add_done_callback, ``wait``,
``as_completed``, ``WfFutureList``, ``await``.

Blocking is done with ``threading.Event`` under the real clock (the ``store`` fixture), and
the tests release what they blocked before the flow returns.
"""

from __future__ import annotations

import asyncio
import threading

import pytest

from wfkit import flow, task
from wfkit.futures import PrefectFuture, WfFuture, WfFutureList, as_completed, wait
from wfkit.task_runners import ThreadPoolTaskRunner

WAIT = 30  # seconds a test waits on an event that must come (never reached when it works)


class Gate:
    """A task body that says it started, then blocks until the test opens the gate."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.opened = threading.Event()

    def __call__(self, value=None):
        self.started.set()
        if not self.opened.wait(WAIT):
            raise RuntimeError("the gate was never opened")
        return value


@task
def quick(x=1):
    return x


@task
def boom(message="boom"):
    raise ValueError(message)


def test_prefect_future_alias():
    assert PrefectFuture is WfFuture


def test_result_timeout_raises_timeout_error_naming_the_task_run(store):
    gate = Gate()
    blocked = task(gate, name="blocked")
    seen: dict = {}

    @flow
    def main():
        future = blocked.submit("late")
        assert gate.started.wait(WAIT)
        try:
            future.result(timeout=0.05)
        except TimeoutError as exc:
            seen["error"] = exc
            seen["state"] = future.state.name
        seen["future"] = future
        gate.opened.set()
        return future.result()

    assert main() == "late"
    future = seen["future"]
    error = seen["error"]
    assert type(error) is TimeoutError
    message = str(error)
    assert future.task_run_id in message
    (run,) = store.task_runs(task_name="blocked")
    assert repr(run.name) in message
    assert "0.05" in message
    assert seen["state"] == "Running"
    assert run.state_names == ["Pending", "Running", "Completed"]


def test_wait_with_timeout_never_raises(store):
    gate = Gate()
    blocked = task(gate, name="blocked")
    seen: dict = {}

    @flow
    def main():
        slow = blocked.submit()
        bad = boom.submit()
        assert gate.started.wait(WAIT)
        seen["wait_slow"] = slow.wait(0.05)
        seen["slow_done"] = slow.done()
        seen["wait_bad"] = bad.wait()
        seen["bad_done"] = bad.done()
        seen["bad_wait_again"] = bad.wait(0)
        gate.opened.set()
        slow.wait()
        seen["slow_done_after"] = slow.done()
        return bad.state.name

    assert main() == "Failed"
    assert seen == {
        "wait_slow": None,
        "slow_done": False,
        "wait_bad": None,
        "bad_done": True,
        "bad_wait_again": None,
        "slow_done_after": True,
    }


def test_state_moves_from_pending_to_running_to_final(store):
    gate = Gate()
    blocked = task(gate, name="blocked")
    seen: dict = {}

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=1))
    def main():
        first = blocked.submit()
        assert gate.started.wait(WAIT)
        second = quick.submit(2)  # queued behind `first`: the only worker is busy
        third = boom.submit()
        seen["first"] = first.state.name
        seen["second"] = second.state.name
        seen["third"] = third.state.name
        gate.opened.set()
        second.wait()
        third.wait()
        first.wait()
        seen["final"] = [f.state.name for f in (first, second, third)]
        seen["types"] = [f.state.is_final() for f in (first, second, third)]
        return second.result()

    assert main() == 2
    assert seen["first"] == "Running"
    assert seen["second"] == "Pending"
    assert seen["third"] == "Pending"
    assert seen["final"] == ["Completed", "Completed", "Failed"]
    assert seen["types"] == [True, True, True]


def test_task_run_id_and_flow_run_id_match_the_records(h):
    seen: dict = {}

    @flow
    def main():
        futures = [quick.submit(i) for i in range(3)]
        seen["futures"] = futures
        return [f.result() for f in futures]

    assert main() == [0, 1, 2]
    flow_run = h.flow_run(main)
    for future in seen["futures"]:
        (record,) = [r for r in h.task_runs(quick) if r.id == future.task_run_id]
        assert record.parameters["x"] == seen["futures"].index(future)
        assert future.flow_run_id == flow_run.id == record.flow_run_id
    assert len({f.task_run_id for f in seen["futures"]}) == 3


def test_task_run_id_is_known_at_once(store):
    gate = Gate()
    blocked = task(gate, name="blocked")
    seen: dict = {}

    @flow
    def main():
        future = blocked.submit()
        seen["id"] = future.task_run_id
        seen["recorded"] = [r.id for r in store.task_runs(task_name="blocked")]
        gate.opened.set()
        return future.result()

    main()
    assert seen["recorded"] == [seen["id"]]  # recorded Pending before the worker ran it


def test_result_raises_the_task_exception_or_returns_it(h):
    seen: dict = {}

    @flow
    def main():
        future = boom.submit("bad input")
        with pytest.raises(ValueError, match="bad input"):
            future.result()
        seen["returned"] = future.result(raise_on_failure=False)
        return "handled"

    assert main() == "handled"
    assert isinstance(seen["returned"], ValueError)
    assert str(seen["returned"]) == "bad input"


def test_add_done_callback_is_called_once_before_and_after_completion(store):
    gate = Gate()
    blocked = task(gate, name="blocked")
    early: list = []
    late: list = []
    failed: list = []
    seen: dict = {}

    @flow
    def main():
        future = blocked.submit(5)
        future.add_done_callback(early.append)  # before completion: called from the worker
        bad = boom.submit()
        bad.add_done_callback(failed.append)
        gate.opened.set()
        value = future.result()
        bad.wait()
        future.add_done_callback(late.append)  # after completion: called at once
        seen["late_at_once"] = list(late)
        seen["future"] = future
        seen["bad"] = bad
        return value

    assert main() == 5
    future = seen["future"]
    assert seen["late_at_once"] == [future]
    # The flow run waits for its runner, callbacks included, before it returns.
    assert early == [future]
    assert late == [future]
    assert failed == [seen["bad"]]


def test_module_wait_returns_done_and_not_done(store):
    gate = Gate()
    blocked = task(gate, name="blocked")
    seen: dict = {}

    @flow
    def main():
        slow = blocked.submit()
        fast = quick.submit()
        bad = boom.submit()
        fast.wait()
        bad.wait()
        assert gate.started.wait(WAIT)
        first = wait([slow, fast, bad], timeout=0.05)
        gate.opened.set()
        second = wait([slow, fast, bad])
        seen.update(slow=slow, fast=fast, bad=bad, first=first, second=second)

    main()
    slow, fast, bad = seen["slow"], seen["fast"], seen["bad"]
    first, second = seen["first"], seen["second"]
    assert first.done == {fast, bad}
    assert first.not_done == {slow}
    done, not_done = second
    assert done == {slow, fast, bad}
    assert not_done == set()


def test_module_wait_of_nothing():
    assert wait([]) == (set(), set())


def test_as_completed_yields_every_future_once(h):
    seen: dict = {}

    @flow
    def main():
        futures = quick.map(range(8))
        seen["futures"] = futures
        seen["yielded"] = list(as_completed(futures))

    main()
    assert len(seen["yielded"]) == 8
    assert set(seen["yielded"]) == set(seen["futures"])
    assert all(f.done() for f in seen["yielded"])


def test_as_completed_yields_in_completion_order(store):
    gate = Gate()
    blocked = task(gate, name="blocked")
    seen: dict = {}

    @flow
    def main():
        slow = blocked.submit()
        fast = quick.submit()
        order = []
        for future in as_completed([slow, fast]):
            order.append(future)
            if future is fast:
                gate.opened.set()
        seen.update(order=order, slow=slow, fast=fast)

    main()
    assert seen["order"] == [seen["fast"], seen["slow"]]


def test_as_completed_raises_timeout_error_when_some_do_not_finish(store):
    gate = Gate()
    blocked = task(gate, name="blocked")
    seen: dict = {}

    @flow
    def main():
        slow = blocked.submit()
        fast = [quick.submit(i) for i in range(2)]
        for f in fast:
            f.wait()
        yielded = []
        try:
            for future in as_completed([slow, *fast], timeout=0.1):
                yielded.append(future)
        except TimeoutError as exc:
            seen["error"] = exc
        seen.update(yielded=yielded, fast=fast)
        gate.opened.set()

    main()
    assert set(seen["yielded"]) == set(seen["fast"])
    assert "1 of 3 task runs did not finish" in str(seen["error"])


def test_future_list_result_and_wait(h):
    seen: dict = {}

    @flow
    def main():
        futures = quick.map([3, 1, 2])
        futures.wait()
        seen["all_done"] = all(f.done() for f in futures)
        return futures.result()

    assert main() == [3, 1, 2]
    assert seen["all_done"]


def test_future_list_result_with_a_failure(h):
    seen: dict = {}

    @task
    def maybe(x):
        if x == 2:
            raise ValueError(f"no {x}")
        return x

    @flow
    def main():
        futures = maybe.map([1, 2, 3])
        with pytest.raises(ValueError, match="no 2"):
            futures.result()
        seen["lenient"] = futures.result(raise_on_failure=False)

    main()
    one, error, three = seen["lenient"]
    assert (one, three) == (1, 3)
    assert isinstance(error, ValueError)


def test_future_list_result_timeout(store):
    gate = Gate()
    blocked = task(gate, name="blocked")
    seen: dict = {}

    @flow
    def main():
        futures = WfFutureList([blocked.submit(), quick.submit()])
        try:
            futures.result(timeout=0.05)
        except TimeoutError as exc:
            seen["error"] = exc
        gate.opened.set()
        return futures.result()

    assert main() == [None, 1]
    assert "1 of 2 task runs did not finish" in str(seen["error"])


def test_await_a_future_in_an_async_flow(h):
    @task
    async def async_double(x):
        await asyncio.sleep(1)
        return 2 * x

    @flow
    async def main():
        sync_future = quick.submit(3)
        async_future = async_double.submit(4)
        first = await sync_future
        second = await async_future
        gathered = await asyncio.gather(quick.submit(5), async_double.submit(6))
        return first, second, gathered

    assert asyncio.run(main()) == (3, 8, [5, 12])


def test_await_a_failed_future_raises(h):
    @flow
    async def main():
        future = boom.submit("awaited")
        try:
            await future
        except ValueError as exc:
            return str(exc)

    assert asyncio.run(main()) == "awaited"


def test_repr_names_the_task_run_and_state(h):
    seen: dict = {}

    @flow
    def main():
        future = quick.submit()
        future.wait()
        seen["repr"] = repr(future)
        seen["name"] = h.task_run(quick).name

    main()
    assert seen["name"] in seen["repr"]
    assert "Completed" in seen["repr"]


def test_a_finished_future_keeps_its_final_state_not_its_live_run(h):
    import gc

    from wfkit._engine.runs import TaskRunLive

    kept: list[WfFuture] = []

    @task
    def add(x, y):
        return x + y

    @flow
    def main():
        kept.extend(add.map([1, 2], [3, 4]))
        kept[0].wait()  # waited for, its state never read

    main()
    gc.collect()
    ids = {f.task_run_id for f in kept}
    assert not [o for o in gc.get_objects() if isinstance(o, TaskRunLive) and o.id in ids]
    assert [f.state.name for f in kept] == ["Completed", "Completed"]
    assert [f.result() for f in kept] == [4, 6]
