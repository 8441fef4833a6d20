"""``task.submit`` / ``task.map`` on the default ThreadPoolTaskRunner, and bad input."""

from __future__ import annotations

import threading

import pytest

from wfkit import flow, task, unmapped
from wfkit.exceptions import (
    ConfigurationError,
    MappingLengthMismatch,
    MappingMissingIterable,
    MissingContextError,
    WfkitError,
)
from wfkit.futures import WfFuture, WfFutureList
from wfkit.task_runners import ProcessPoolTaskRunner, TaskRunner, ThreadPoolTaskRunner


@task
def add(x, y=0):
    return x + y


@task
def ident(x):
    return x


@task
def pair(a, b):
    return (a, b)


@task
def thread_name():
    return threading.current_thread().name


# -- submit ---------------------------------------------------------------------------------
def test_submit_returns_a_future_with_the_result(h):
    seen = {}

    @flow
    def main():
        future = add.submit(1, 2)
        seen["future"] = future
        return future.result()

    assert main() == 3
    future = seen["future"]
    assert isinstance(future, WfFuture)
    (run,) = h.task_runs(add)
    assert run.id == future.task_run_id
    assert run.state_names == ["Pending", "Running", "Completed"]
    assert run.flow_run_id == h.flow_run(main).id
    assert run.parameters == {"x": 1, "y": 2}


def test_submit_accepts_keyword_arguments(h):
    @flow
    def main():
        return add.submit(y=5, x=1).result()

    assert main() == 6


def test_default_runner_is_a_thread_pool(h):
    @flow
    def main():
        return thread_name.submit().result(), threading.current_thread().name

    worker, caller = main()
    assert worker != caller
    assert worker.startswith("wfkit-task")


def test_flow_task_runner_option_takes_an_instance_or_a_class(h):
    @flow(task_runner=ThreadPoolTaskRunner(max_workers=3))
    def with_instance():
        return add.map([1, 2, 3]).result()

    @flow(task_runner=ThreadPoolTaskRunner)
    def with_class():
        return add.map([1, 2, 3]).result()

    assert with_instance() == [1, 2, 3]
    assert with_class() == [1, 2, 3]


def test_invalid_task_runner_option_is_a_type_error_naming_what_is_missing():
    with pytest.raises(TypeError, match="task_runner") as info:

        @flow(task_runner="threads")
        def main():
            pass

    message = str(info.value)
    assert "'threads'" in message
    assert "duplicate(), submit(), shutdown()" in message
    assert "ThreadPoolTaskRunner(max_workers=4)" in message


def test_each_flow_run_uses_a_fresh_runner(h):
    runner = ThreadPoolTaskRunner(max_workers=2)

    @flow(task_runner=runner)
    def main(n):
        return add.map(range(n)).result()

    assert main(3) == [0, 1, 2]
    assert main(2) == [0, 1]  # the first run shut down its copy, not the shared template
    assert runner.duplicate() is not runner
    assert runner.duplicate().max_workers == 2


# -- map ------------------------------------------------------------------------------------
def test_map_returns_a_future_list_with_results_in_order(h):
    seen = {}

    @flow
    def main():
        futures = add.map([1, 2, 3], unmapped(10))
        seen["futures"] = futures
        return futures.result()

    assert main() == [11, 12, 13]
    futures = seen["futures"]
    assert isinstance(futures, WfFutureList)
    assert all(isinstance(f, WfFuture) for f in futures)
    runs = {r.id: r for r in h.task_runs(add)}
    assert set(runs) == {f.task_run_id for f in futures}
    assert sorted(r.parameters["x"] for r in runs.values()) == [1, 2, 3]
    assert {r.parameters["y"] for r in runs.values()} == {10}
    assert all(r.state_names == ["Pending", "Running", "Completed"] for r in runs.values())


def test_map_over_several_iterables_pairs_them_by_position(h):
    @flow
    def main():
        return pair.map([1, 2, 3], ["a", "b", "c"]).result()

    assert main() == [(1, "a"), (2, "b"), (3, "c")]


def test_unmapped_list_is_passed_whole_to_every_run(h):
    @flow
    def main():
        return pair.map([1, 2], unmapped([7, 8])).result()

    assert main() == [(1, [7, 8]), (2, [7, 8])]


class _CountingList(list):
    iterations = 0

    def __iter__(self):
        type(self).iterations += 1
        return super().__iter__()


def test_an_unmapped_container_is_looked_through_once_per_map_not_once_per_run(h):
    table = _CountingList(range(100))

    @task
    def lookup(i, table):
        return table[i]

    @flow
    def main():
        return lookup.map(range(50), unmapped(table)).result()

    assert main() == list(range(50))
    assert _CountingList.iterations <= 2  # was 50 or more: one walk of it per mapped run


def test_an_unmapped_container_of_futures_is_still_each_runs_upstream(h):
    @flow
    def main():
        upstream = [add.submit(1), add.submit(2)]
        futures = pair.map([1, 2], unmapped(upstream))
        return futures.result(), [set(r.upstream_ids) for r in h.task_runs(pair)]

    results, upstream_ids = main()
    assert results == [(1, [1, 2]), (2, [1, 2])]
    assert upstream_ids == [{r.id for r in h.task_runs(add)}] * 2


def test_unmapped_keyword_argument(h):
    @flow
    def main():
        return pair.map(a=[1, 2], b=unmapped((0, 0))).result()

    assert main() == [(1, (0, 0)), (2, (0, 0))]


@pytest.mark.parametrize(
    "make_iterable, expected",
    [
        (lambda: (1, 2, 3), [1, 2, 3]),
        (lambda: range(4), [0, 1, 2, 3]),
        (lambda: (x * 10 for x in [1, 2]), [10, 20]),
        (lambda: iter([5, 6]), [5, 6]),
        (lambda: [], []),
    ],
    ids=["tuple", "range", "generator", "iterator", "empty-list"],
)
def test_map_over_any_iterable(h, make_iterable, expected):
    @flow
    def main():
        return ident.map(make_iterable()).result()

    assert main() == expected
    assert len(h.task_runs(ident)) == len(expected)


def test_map_over_a_dict_maps_over_its_keys(h):
    # As in Prefect: a dict is an iterable, so map() iterates it, which yields its keys.
    # Wrap it in unmapped() to pass the dict itself.
    @flow
    def main():
        return (
            ident.map({"a": 1, "b": 2}).result(),
            pair.map([1, 2], unmapped({"a": 1})).result(),
        )

    keys, whole = main()
    assert keys == ["a", "b"]
    assert whole == [(1, {"a": 1}), (2, {"a": 1})]


def test_strings_and_bytes_are_not_mapped_over(h):
    @flow
    def main():
        return pair.map([1, 2], "xy").result(), pair.map(["p", "q"], b"raw").result()

    strings, raw = main()
    assert strings == [(1, "xy"), (2, "xy")]
    assert raw == [("p", b"raw"), ("q", b"raw")]


def test_map_of_a_string_alone_has_nothing_to_map_over(h):
    @flow
    def main():
        return ident.map("abc")

    with pytest.raises(MappingMissingIterable):
        main()
    assert h.task_runs(ident) == []


def test_map_length_mismatch_names_the_lengths(h):
    @flow
    def main():
        return pair.map([1, 2, 3], [1, 2])

    with pytest.raises(MappingLengthMismatch) as info:
        main()
    message = str(info.value)
    assert "'a': 3" in message and "'b': 2" in message
    assert "unmapped" in message
    assert isinstance(info.value, ValueError) and isinstance(info.value, WfkitError)
    assert h.task_runs(pair) == []  # nothing was submitted
    assert h.flow_run(main).state_names == ["Pending", "Running", "Failed"]


def test_map_with_no_iterable(h):
    @flow
    def main():
        return add.map(1, 2)

    with pytest.raises(MappingMissingIterable) as info:
        main()
    assert "no iterable" in str(info.value)
    assert "unmapped" in str(info.value)
    assert isinstance(info.value, ValueError)
    assert h.task_runs(add) == []


def test_map_with_only_unmapped_arguments_has_no_iterable(h):
    @flow
    def main():
        return pair.map(unmapped([1]), unmapped([2]))

    with pytest.raises(MappingMissingIterable):
        main()


def test_map_with_bad_arguments_is_a_bind_error(h):
    @flow
    def main():
        return add.map([1], [2], [3])

    with pytest.raises(TypeError, match="add"):
        main()


# -- bad input ------------------------------------------------------------------------------
@pytest.mark.parametrize("runner_type", [ThreadPoolTaskRunner, ProcessPoolTaskRunner])
@pytest.mark.parametrize("value", [0, -1, 1.5, True, "2"])
def test_bad_max_workers_is_a_configuration_error(runner_type, value):
    with pytest.raises(ConfigurationError, match="max_workers") as info:
        runner_type(max_workers=value)
    assert repr(value) in str(info.value)


def test_good_max_workers():
    assert ThreadPoolTaskRunner(max_workers=1).max_workers == 1
    assert ThreadPoolTaskRunner().max_workers is None


@pytest.mark.parametrize("runner_type", [ThreadPoolTaskRunner, ProcessPoolTaskRunner])
def test_submitting_something_else_than_a_task_run_call_is_a_type_error(runner_type):
    with runner_type() as runner, pytest.raises(TypeError) as info:
        runner.submit(len)
    message = str(info.value)
    assert f"{runner_type.__name__}.submit() takes a TaskRunCall" in message
    assert "<built-in function len>" in message
    assert "my_task.submit(...)" in message


def test_submitting_a_generator_task_is_a_type_error(h):
    @task
    def numbers():
        yield 1

    @flow
    def main():
        return numbers.submit()

    with pytest.raises(TypeError, match="generator"):
        main()
    assert h.task_runs(numbers) == []


def test_the_pools_are_task_runners():
    assert isinstance(ThreadPoolTaskRunner(), TaskRunner)
    assert isinstance(ProcessPoolTaskRunner(), TaskRunner)


@pytest.mark.parametrize("verb", ["submit", "map"])
def test_submit_outside_a_flow_is_a_clear_error(h, verb):
    with pytest.raises(MissingContextError) as info:
        getattr(add, verb)([1], 2)
    error = info.value
    assert isinstance(error, RuntimeError)
    message = str(error)
    assert f"add.{verb}(...)" in message
    assert "outside a flow" in message
    assert "@flow" in message
    assert h.task_runs() == []


def test_submit_inside_a_bare_task_outside_a_flow_is_a_clear_error(h):
    @task
    def outer():
        return add.submit(1)

    with pytest.raises(MissingContextError, match="outside a flow"):
        outer()


class TestFutureFromAnotherFlowRun:
    """A future belongs to the flow run that submitted it; using it in another flow run is a
    ConfigurationError (the first run's runner is already shut down)."""

    @pytest.fixture
    def leaked(self, h):
        kept: list[WfFuture] = []

        @flow
        def first():
            future = add.submit(1, 1)
            kept.append(future)
            return future.result()

        assert first() == 2
        return kept[0]

    def _check(self, h, body, leaked):
        @flow
        def second():
            return body(leaked)

        with pytest.raises(ConfigurationError) as info:
            second()
        message = str(info.value)
        assert leaked.flow_run_id in message
        assert "future.result()" in message
        second_run = h.flow_run(second)
        assert second_run.id in message
        assert second_run.state_names == ["Pending", "Running", "Failed"]
        # No task run was created in the second flow run.
        assert h.task_runs(flow_run=second_run) == []

    def test_as_a_submit_argument(self, h, leaked):
        self._check(h, lambda f: add.submit(f, 1).result(), leaked)

    def test_nested_in_a_container(self, h, leaked):
        self._check(h, lambda f: ident.submit({"x": [f]}).result(), leaked)

    def test_in_wait_for(self, h, leaked):
        self._check(h, lambda f: add.submit(1, wait_for=[f]).result(), leaked)

    def test_as_an_inline_call_argument(self, h, leaked):
        self._check(h, lambda f: add(f, 1), leaked)

    def test_as_a_map_element(self, h, leaked):
        self._check(h, lambda f: ident.map([f, f]).result(), leaked)

    def test_as_a_later_map_element_the_runs_created_before_it_still_run(self, h, leaked):
        @flow
        def second():
            return ident.map([1, 2, leaked]).result()

        with pytest.raises(ConfigurationError):
            second()
        runs = h.task_runs(flow_run=h.flow_run(second))
        assert [r.state_names for r in runs] == [["Pending", "Running", "Completed"]] * 2


def test_submit_a_task_with_var_positional_and_var_keyword_parameters(h):
    @task
    def star(first, *rest, **options):
        return first, rest, options

    @flow
    def main():
        return star.submit(1, 2, 3, k=4).result(), star(1, 2, 3, k=4)

    submitted, inline = main()
    assert inline == (1, (2, 3), {"k": 4})
    assert submitted == inline
