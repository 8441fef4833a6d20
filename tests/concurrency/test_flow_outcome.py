"""A flow that returns futures or states (§3.3, §13): as in Prefect (docs/v3/concepts/flows.mdx,
"Final state determination"), it is Failed when it returns a future or state that did not
complete, or a list, tuple or set made entirely of futures and states of which one did not;
futures elsewhere in what it returns are waited for, but do not decide its state."""

from __future__ import annotations

import asyncio

import pytest

from wfkit import flow, task
from wfkit.exceptions import UpstreamTaskError
from wfkit.states import State, StateType


@task
def ok(x=1):
    return x


@task
def bad(message="bad"):
    raise ValueError(message)


def test_returning_completed_futures_returns_their_results(h):
    @flow
    def as_list():
        return [ok.submit(1), ok.submit(2)]

    @flow
    def as_dict():
        return {"a": ok.submit(1), "b": ok.submit(2), "c": "plain"}

    @flow
    def as_tuple():
        return ok.submit(1), 2

    @flow
    def as_future_list():
        return ok.map([4, 5])

    @flow
    def single():
        return ok.submit(7)

    assert as_list() == [1, 2]
    assert as_dict() == {"a": 1, "b": 2, "c": "plain"}
    assert as_tuple() == (1, 2)
    assert as_future_list() == [4, 5]
    assert single() == 7
    for run in h.flow_runs():
        assert run.state_names == ["Pending", "Running", "Completed"]


def test_returning_completed_futures_from_an_async_flow(h):
    @flow
    async def main():
        return [ok.submit(1), ok.submit(2)]

    assert asyncio.run(main()) == [1, 2]


@pytest.mark.parametrize("shape", ["list", "tuple", "future_list"])
def test_returning_futures_where_one_failed_fails_the_flow(h, shape):
    @flow
    def main():
        good, failed = ok.submit(1), bad.submit()
        return {
            "list": lambda: [good, failed],
            "tuple": lambda: (good, failed),
            "future_list": lambda: bad.map(["x", "y"]),
        }[shape]()

    state = main(return_state=True)
    assert state.is_failed()
    run = h.flow_run(main)
    assert run.state_names == ["Pending", "Running", "Failed"]
    expected = "2/2 states failed." if shape == "future_list" else "1/2 states failed."
    assert run.state.message == expected
    # Returning failed states is not an error: the caller gets the collection (completed
    # futures replaced by their results, the others by their final states).
    returned = main()
    assert all(isinstance(item, State) and item.is_failed() for item in returned[-1:])
    if shape != "future_list":
        assert returned[0] == 1


def test_futures_in_a_dict_do_not_decide_the_flow_state(h):
    # A dict is not a collection of states (Prefect checks lists, tuples and sets only).
    @flow
    def main():
        return {"good": ok.submit(1), "failed": bad.submit()}

    returned = main()
    assert returned["good"] == 1 and returned["failed"].is_failed()
    assert h.flow_run(main).state_names == ["Pending", "Running", "Completed"]


def test_returning_futures_counts_every_one_that_did_not_complete(h):
    @flow
    def main():
        failed = bad.submit()
        not_ready = ok.submit(failed)
        return [ok.submit(), failed, not_ready]

    main(return_state=True)
    run = h.flow_run(main)
    assert run.state_names == ["Pending", "Running", "Failed"]
    assert run.state.message == "1/3 states failed."  # NotReady is not final, not failed


def test_returning_states_where_one_failed_fails_the_flow(h):
    @flow
    def main():
        return [ok(return_state=True), bad(return_state=True)]

    state = main(return_state=True)
    assert state.is_failed()
    run = h.flow_run(main)
    assert run.state_names == ["Pending", "Running", "Failed"]
    assert run.state.message == "1/2 states failed."


def test_returning_a_single_failed_future_fails_the_flow(h):
    @flow
    def main():
        return bad.submit("single")

    with pytest.raises(ValueError, match="single"):
        main()
    run = h.flow_run(main)
    assert run.state_names == ["Pending", "Running", "Failed"]
    assert run.state.is_final()


def test_returning_a_single_not_ready_future_fails_the_flow(h):
    # NotReady is a PENDING state: a flow whose returned future ended NotReady has not
    # completed, and its own final state must be a final one (Failed).
    @flow
    def main():
        return ok.submit(bad.submit())

    with pytest.raises(UpstreamTaskError):
        main()
    run = h.flow_run(main)
    assert run.state.is_final()
    assert run.state.type is StateType.FAILED
    assert run.state_names == ["Pending", "Running", "Failed"]


def test_returning_a_single_not_ready_state_fails_the_flow(h):
    @flow
    def main():
        return ok(bad.submit(), return_state=True)

    main(return_state=True)
    run = h.flow_run(main)
    assert run.state.is_final()
    assert run.state_names == ["Pending", "Running", "Failed"]


def test_a_flow_waits_for_futures_it_did_not_return(h):
    finished = []

    @task
    def slow(x):
        finished.append(x)
        return x

    @flow
    def main():
        slow.map(range(5))
        return "returned early"

    assert main() == "returned early"
    assert sorted(finished) == [0, 1, 2, 3, 4]  # the runner was drained before the flow ended
    assert all(r.state.is_final() for r in h.task_runs(slow))


def test_returning_nested_completed_futures_returns_their_results(h):
    # As in Prefect, which resolves futures anywhere in the returned collection.
    @flow
    def main():
        return {"xs": [ok.submit(1), ok.submit(2)], "pair": (ok.submit(3), 4)}

    assert main() == {"xs": [1, 2], "pair": (3, 4)}


def test_a_nested_failed_future_does_not_fail_the_flow(h):
    # Only a top-level list, tuple or set of states decides (as in Prefect): deeper down, a
    # future that did not complete is replaced by its final state, and the flow completes.
    @flow
    def main():
        return {"xs": [ok.submit(1), bad.submit()]}

    state = main(return_state=True)
    assert state.is_completed()
    assert state.result()["xs"][1].is_failed()
