"""Run logs: ``get_run_logger()``, ``log_prints`` and ``disable_run_logger`` (SPEC §3.8)."""

from __future__ import annotations

import builtins
import logging
from datetime import timedelta
from typing import Any

import pytest

from wfkit import flow, get_run_logger, task
from wfkit.context import Runtime, current_clock
from wfkit.exceptions import MissingContextError, WfkitError
from wfkit.logging import disable_run_logger

from ._support import only_run


def messages(runtime: Runtime, run_id: str | None = None) -> list[str]:
    return [log.message for log in runtime.store.logs(run_id)]


def test_flow_logger_records_in_the_store(runtime: Runtime, mode: Any) -> None:
    def body() -> None:
        current_clock().advance(30)
        get_run_logger().info("hello from %s", "the flow")
        get_run_logger().warning("careful")

    mode.call(mode.flow(body))

    run = only_run(runtime, "flow")
    logs = {log.message: log for log in runtime.store.logs(run.id)}
    hello = logs["hello from the flow"]
    assert hello.flow_run_id == run.id
    assert hello.task_run_id is None
    assert hello.level == logging.INFO
    assert hello.timestamp == runtime.clock.start + timedelta(seconds=30)
    assert logs["careful"].level == logging.WARNING
    assert logs["careful"].level_name == "WARNING"


def test_task_logger_records_both_run_ids(runtime: Runtime, mode: Any) -> None:
    @task
    def step() -> None:
        current_clock().advance(5)
        get_run_logger().info("hello from the task")

    def body() -> None:
        get_run_logger().info("before the task")
        step()

    mode.call(mode.flow(body))

    flow_run = only_run(runtime, "flow")
    task_run = only_run(runtime, "task")
    [record] = [
        log for log in runtime.store.logs(task_run.id) if log.message == "hello from the task"
    ]
    assert record.task_run_id == task_run.id
    assert record.flow_run_id == flow_run.id
    assert record.run_id == task_run.id
    assert record.timestamp == runtime.clock.start + timedelta(seconds=5)
    assert "before the task" not in messages(runtime, task_run.id)
    assert {"before the task", "hello from the task"} <= set(messages(runtime, flow_run.id))


def test_task_logger_outside_a_flow(runtime: Runtime, mode: Any) -> None:
    mode.call(mode.task(lambda: get_run_logger().info("lonely task")))

    task_run = only_run(runtime, "task")
    [record] = [log for log in runtime.store.logs(task_run.id) if log.message == "lonely task"]
    assert record.flow_run_id is None
    assert record.task_run_id == task_run.id


def test_logs_are_kept_in_order(runtime: Runtime, mode: Any) -> None:
    def body() -> None:
        for i in range(5):
            get_run_logger().info("line %d", i)

    mode.call(mode.flow(body))

    lines = [m for m in messages(runtime) if m.startswith("line ")]
    assert lines == [f"line {i}" for i in range(5)]


def test_exceptions_are_logged_with_their_traceback(runtime: Runtime, mode: Any) -> None:
    def body() -> None:
        try:
            raise KeyError("missing")
        except KeyError:
            get_run_logger().exception("lookup failed")

    mode.call(mode.flow(body))

    [text] = [m for m in messages(runtime) if m.startswith("lookup failed")]
    assert "Traceback" in text
    assert "KeyError: 'missing'" in text


def test_logger_carries_the_run_ids(runtime: Runtime, mode: Any) -> None:
    seen: list[Any] = []

    def body() -> None:
        seen.append(get_run_logger())

    mode.call(mode.flow(body))

    assert seen[0].extra["wf_flow_run_id"] == only_run(runtime, "flow").id


def test_get_run_logger_outside_a_run_is_a_clear_error() -> None:
    with pytest.raises(MissingContextError) as info:
        get_run_logger()

    assert isinstance(info.value, WfkitError)
    assert "@flow" in str(info.value)
    assert "@task" in str(info.value)


def test_plain_loggers_do_not_reach_the_store(runtime: Runtime, mode: Any) -> None:
    mode.call(mode.flow(lambda: logging.getLogger("somebody.else").warning("not a run log")))

    assert "not a run log" not in messages(runtime)


# -- log_prints ---------------------------------------------------------------------------------
def test_log_prints_logs_a_print_instead_of_printing_it(
    runtime: Runtime, mode: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # As in Prefect (docs/v3/how-to-guides/workflows/add-logging.mdx, "Log print
    # statements"): the print becomes a run log line, and is not printed as well.
    mode.call(mode.flow(lambda: print("printed", 42, sep="-"), log_prints=True))

    assert "printed-42" in messages(runtime, only_run(runtime, "flow").id)
    assert "printed" not in capsys.readouterr().out


def test_without_log_prints_print_only_goes_to_stdout(
    runtime: Runtime, mode: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    mode.call(mode.flow(lambda: print("just stdout")))

    assert "just stdout" not in messages(runtime)
    assert "just stdout\n" in capsys.readouterr().out


def test_print_to_another_file_is_not_logged(
    runtime: Runtime, mode: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    import sys

    mode.call(mode.flow(lambda: print("to stderr", file=sys.stderr), log_prints=True))

    assert "to stderr" not in messages(runtime)
    assert "to stderr" in capsys.readouterr().err


def test_tasks_inherit_log_prints_from_the_flow(
    runtime: Runtime, mode: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    step = task(lambda: print("from the task"))

    mode.call(mode.flow(lambda: step(), log_prints=True))

    task_run = only_run(runtime, "task")
    [record] = [log for log in runtime.store.logs(task_run.id) if log.message == "from the task"]
    assert record.flow_run_id == only_run(runtime, "flow").id
    assert "from the task" not in capsys.readouterr().out  # logged, not printed


def test_task_can_opt_out_of_inherited_log_prints(runtime: Runtime, mode: Any) -> None:
    step = task(lambda: print("quiet task"), log_prints=False)

    mode.call(mode.flow(lambda: step(), log_prints=True))

    assert "quiet task" not in messages(runtime)


def test_task_can_opt_in_to_log_prints(runtime: Runtime, mode: Any) -> None:
    step = task(lambda: print("loud task"), log_prints=True)

    mode.call(mode.flow(lambda: (print("quiet flow"), step())))

    assert "loud task" in messages(runtime)
    assert "quiet flow" not in messages(runtime)


def test_print_outside_runs_is_untouched(
    runtime: Runtime, capsys: pytest.CaptureFixture[str]
) -> None:
    flow(lambda: None, log_prints=True)()

    print("after the run")

    assert "after the run" not in messages(runtime)
    assert capsys.readouterr().out == "after the run\n"


def test_print_is_replaced_only_while_log_prints_runs_are_active(
    runtime: Runtime, mode: Any
) -> None:
    original = builtins.print
    seen: list[bool] = []

    @task(log_prints=True)
    def inner() -> None:
        seen.append(builtins.print is not original)

    def body() -> None:
        seen.append(builtins.print is not original)
        inner()
        seen.append(builtins.print is not original)  # the flow still prints to its log

    mode.call(mode.flow(body, log_prints=True))
    mode.call(mode.flow(lambda: seen.append(builtins.print is not original)))

    assert seen == [True, True, True, False]
    assert builtins.print is original


def test_a_print_replaced_by_someone_else_during_a_run_is_left_alone(runtime: Runtime) -> None:
    original = builtins.print

    def theirs(*args: Any, **kwargs: Any) -> None:
        original(*args, **kwargs)

    def body() -> None:
        builtins.print = theirs

    try:
        flow(body, log_prints=True)()
        assert builtins.print is theirs
    finally:
        builtins.print = original


# -- disable_run_logger -----------------------------------------------------------------------
def test_disable_run_logger_inside_a_run_records_nothing(runtime: Runtime, mode: Any) -> None:
    def body() -> None:
        with disable_run_logger():
            get_run_logger().info("silenced")
        get_run_logger().info("heard")

    mode.call(mode.flow(body))

    assert "silenced" not in messages(runtime)
    assert "heard" in messages(runtime)


def test_disable_run_logger_lets_fn_run_outside_a_flow(runtime: Runtime) -> None:
    @task
    def chatty(x: int) -> int:
        get_run_logger().info("working on %d", x)
        return x + 1

    with disable_run_logger():
        assert chatty.fn(1) == 2

    assert runtime.store.logs() == []
    with pytest.raises(MissingContextError):
        chatty.fn(1)


def test_completed_task_logs_its_final_state_at_info(runtime: Runtime, mode: Any) -> None:
    # A completed task's "Finished" line is INFO, as in Prefect (its console output on
    # docs/v3/concepts/runtime-context.mdx shows one per task run); the run
    # logger is made only when the line is logged, so a task-run logger above INFO records
    # nothing.
    task_logger = logging.getLogger("wfkit.task_runs")
    old_level = task_logger.level
    try:
        task_logger.setLevel(logging.WARNING)
        mode.call(mode.task(lambda: 1, name="quiet"))
        task_logger.setLevel(logging.INFO)
        mode.call(mode.task(lambda: 2, name="chatty"))
    finally:
        task_logger.setLevel(old_level)
    quiet, chatty = (
        runtime.store.task_runs(task_name="quiet")[0],
        runtime.store.task_runs(task_name="chatty")[0],
    )
    assert messages(runtime, quiet.id) == []
    assert messages(runtime, chatty.id) == ["Finished in state Completed()"]
    (line,) = runtime.store.logs(chatty.id)
    assert line.level == logging.INFO and line.task_run_id == chatty.id
