"""Prefect's import paths and small APIs that Prefect 3's documentation uses (issue 15,
item 4; SPEC §13). Each test names the page of ``docs/v3/`` in PrefectHQ/prefect that uses
the API; the code is ours."""

from __future__ import annotations

import logging
import os
import pickle
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

from wfkit import flow, get_run_logger, runtime, tags, task
from wfkit.context import FlowRunContext, TaskRunContext, with_context
from wfkit.exceptions import ConfigurationError
from wfkit.logging.loggers import flow_run_logger, task_run_logger
from wfkit.states import Completed, State
from wfkit.testing import Harness
from wfkit.testing.utilities import prefect_test_harness
from wfkit.utilities import annotations


def run_script(tmp_path: Path, code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` as a script, as a user would, with a WFKIT_HOME of its own."""
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(code), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("WFKIT_")}
    env["WFKIT_HOME"] = str(tmp_path / "home")
    return subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip


# -- wfkit.testing.utilities.prefect_test_harness -------------------------------------------
def test_prefect_test_harness_isolates_runs_and_ignores_the_server_timeout() -> None:
    # how-to-guides/workflows/test-workflows.mdx: `with prefect_test_harness(): ...`, and
    # `prefect_test_harness(server_startup_timeout=60)`.
    @flow
    def my_favorite_flow() -> int:
        return 42

    with prefect_test_harness(server_startup_timeout=60) as h:
        assert my_favorite_flow() == 42
        assert h.flow_run(my_favorite_flow).state_names == ["Pending", "Running", "Completed"]
    with prefect_test_harness() as other:
        assert other.flow_runs() == []  # a fresh store each time


def test_prefect_test_harnesses_nest() -> None:
    # how-to-guides/workflows/test-workflows.mdx: a session-scoped harness, and a
    # function-scoped one for a test that needs a fresh database.
    @flow
    def answer() -> int:
        return 42

    with prefect_test_harness() as session:
        answer()
        with prefect_test_harness() as fresh:
            assert fresh.flow_runs() == []
            answer()
            assert len(fresh.flow_runs()) == 1
        assert len(session.flow_runs()) == 1


def test_prefect_test_harness_as_a_session_fixture(pytester: pytest.Pytester) -> None:
    # how-to-guides/workflows/test-workflows.mdx: an autouse, session-scoped fixture, and
    # caplog seeing the run loggers' lines.
    pytester.makepyfile(
        """
        import logging
        import pytest
        from wfkit import flow, get_run_logger, task
        from wfkit.testing.utilities import prefect_test_harness

        @task
        def log_message():
            get_run_logger().info("Logging from task")

        @flow
        def parent_flow():
            get_run_logger().info("Logging from flow")
            log_message()

        @pytest.fixture(autouse=True, scope="session")
        def prefect_test_fixture():
            with prefect_test_harness():
                yield

        def test_flow_log_message(caplog):
            caplog.set_level(logging.INFO)
            parent_flow()
            assert "Logging from flow" in caplog.messages
            assert "Logging from task" in caplog.messages
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


# -- wfkit.utilities.annotations ----------------------------------------------------------
def test_annotations_are_reachable_by_prefects_path() -> None:
    # concepts/tasks.mdx: `from prefect.utilities.annotations import quote` (and opaque).
    import wfkit

    assert annotations.quote is wfkit.quote
    assert annotations.allow_failure is wfkit.allow_failure
    assert annotations.unmapped is wfkit.unmapped
    assert annotations.opaque(1).unwrap() == 1


def test_quote_hands_a_dataclass_over_unchanged(wf_harness: Harness) -> None:
    import dataclasses

    @dataclasses.dataclass
    class Box:
        content: Any

    box = Box(content=[1, 2])

    @task
    def same(b: Box) -> bool:
        return b is box

    assert same(annotations.quote(box)) is True


# -- FlowRunContext.get(), TaskRunContext.get() ---------------------------------------------
def test_run_contexts_are_none_outside_runs_and_describe_them_inside(
    wf_harness: Harness,
) -> None:
    # concepts/runtime-context.mdx, "Access the run context directly".
    assert FlowRunContext.get() is None and TaskRunContext.get() is None
    seen: dict[str, Any] = {}

    @task
    def inner(y: int) -> None:
        seen["task"] = TaskRunContext.get()
        seen["flow_from_task"] = FlowRunContext.get()

    @flow
    def outer(x: int) -> None:
        seen["flow"] = FlowRunContext.get()
        seen["task_in_flow"] = TaskRunContext.get()
        inner(2)

    outer(1)
    flow_ctx, task_ctx = seen["flow"], seen["task"]
    assert seen["task_in_flow"] is None
    assert seen["flow_from_task"] is flow_ctx
    assert flow_ctx.flow is outer and flow_ctx.flow_run.id == wf_harness.flow_run(outer).id
    assert flow_ctx.parameters == {"x": 1}
    assert task_ctx.task is inner and task_ctx.task_run.name.startswith("inner-")
    assert task_ctx.parameters == {"y": 2}


# -- wfkit.runtime.deployment -------------------------------------------------------------
def test_runtime_deployment_has_neutral_values(wf_harness: Harness) -> None:
    # concepts/runtime-context.mdx: "I belong to deployment None" when run without one.
    from wfkit.runtime import deployment

    assert (deployment.id, deployment.name, deployment.version) == (None, None, None)
    assert deployment.flow_run_id is None and deployment.parameters == {}
    seen = {}

    @flow
    def main(x: int) -> None:
        seen.update(
            name=runtime.deployment.name,
            flow_run_id=runtime.deployment.flow_run_id,
            parameters=runtime.deployment.parameters,
        )

    main(1)
    assert seen == {
        "name": None,
        "flow_run_id": wf_harness.flow_run(main).id,
        "parameters": {"x": 1},
    }
    with pytest.raises(AttributeError, match="available"):
        deployment.nonsense  # noqa: B018


# -- decorator hooks ------------------------------------------------------------------------
def test_hooks_can_be_added_with_decorators(wf_harness: Harness) -> None:
    # how-to-guides/workflows/state-change-hooks.mdx: `@another_task.on_running` and
    # `@failing_flow.on_failure`.
    calls: list[str] = []

    @task
    def another_task() -> str:
        return "world"

    @another_task.on_running
    def log_start(task: Any, task_run: Any, state: State) -> None:
        calls.append(f"{task.name} {state.name}")

    @another_task.on_completion
    def log_end(task: Any, task_run: Any, state: State) -> None:
        calls.append(f"{task_run.name.split('-')[0]} {state.name}")

    @flow
    def failing_flow() -> None:
        another_task()
        raise ValueError("oops!")

    @failing_flow.on_failure
    def notify(flow: Any, flow_run: Any, state: State) -> None:
        calls.append(f"{flow.name} {state.name}")

    assert log_start.__name__ == "log_start"  # the decorator returns the hook
    failing_flow(return_state=True)
    assert calls == ["another_task Running", "another_task Completed", "failing-flow Failed"]
    # with_options keeps hooks added this way
    calls.clear()
    another_task.with_options(name="renamed")()
    assert calls == ["renamed Running", "renamed Completed"]


def test_a_hook_decorator_refuses_what_is_not_callable() -> None:
    @task
    def t() -> None: ...

    with pytest.raises(ConfigurationError, match="on_failure"):
        t.on_failure("not a hook")  # type: ignore[arg-type]


# -- wfkit.logging.loggers ------------------------------------------------------------------
def test_flow_run_logger_in_a_hook_records_with_the_run(wf_harness: Harness) -> None:
    # how-to-guides/workflows/state-change-hooks.mdx: `flow_run_logger(flow_run, flow)`.
    def my_hook(flow: Any, flow_run: Any, state: State) -> None:
        flow_run_logger(flow_run, flow).info(f"Flow {flow_run.name} entered {state.name}")

    @flow(on_failure=[my_hook])
    def failing_flow() -> None:
        raise ValueError("oops!")

    failing_flow(return_state=True)
    run = wf_harness.flow_run(failing_flow)
    messages = [line.message for line in wf_harness.logs(run)]
    assert f"Flow {run.name} entered Failed" in messages
    with pytest.raises(ValueError, match="flow_run"):
        flow_run_logger()


def test_task_run_logger_records_with_the_task_run(wf_harness: Harness) -> None:
    def my_hook(task: Any, task_run: Any, state: State) -> None:
        task_run_logger(task_run, task).warning("noted")

    @task(on_completion=[my_hook])
    def step() -> int:
        return 1

    step()
    run = wf_harness.task_run(step)
    (line,) = [x for x in wf_harness.logs(run) if x.message == "noted"]
    assert line.level == logging.WARNING


# -- Flow.parameters ------------------------------------------------------------------------
def test_flow_parameters_is_the_parameter_schema() -> None:
    # concepts/flows.mdx, "View the parameter schema for a flow".
    @flow
    def schleeb(x: int, y: str, z: bool | None = None) -> None: ...

    schema = schleeb.parameters
    assert schema.model_json_schema()["title"] == "ParameterSchema"
    assert (schema.title, schema.type, schema.required) == ("Parameters", "object", ["x", "y"])
    assert schema.properties["x"] == {"title": "x", "position": 0, "type": "integer"}
    assert schema.properties["z"]["default"] is None
    assert {"type": "boolean"} in schema.properties["z"]["anyOf"]


# -- State.id -------------------------------------------------------------------------------
def test_states_have_ids(wf_harness: Harness) -> None:
    # how-to-guides/workflows/state-change-hooks.mdx reads `state.id` in a hook.
    state = Completed()
    assert state.id == state.id and len(state.id) == 36
    assert state.copy().id != state.id
    assert pickle.loads(pickle.dumps(state)).id == state.id
    ids = []

    @task(on_completion=[lambda t, r, s: ids.append(s.id)])
    def step() -> None: ...

    step()
    step()
    assert len(set(ids)) == 2


# -- wfkit.context.with_context -------------------------------------------------------------
def test_with_context_in_a_thread_logs_to_the_run(wf_harness: Harness) -> None:
    def work(item: int) -> int:
        get_run_logger().info(f"Processing {item}")
        return item * 2

    @task
    def threaded(item: int) -> int:
        out: list[int] = []
        carried = with_context(work)
        worker = threading.Thread(target=lambda: out.append(carried(item)))
        worker.start()
        worker.join()
        return out[0]

    @flow
    def main() -> int:
        with tags("t"):
            return threaded(21)

    assert main() == 42
    run = wf_harness.task_run(threaded)
    assert "Processing 21" in [line.message for line in wf_harness.logs(run)]


def test_with_context_outside_a_run_just_calls(wf_harness: Harness) -> None:
    assert with_context(lambda x: x + 1)(1) == 2


@pytest.mark.parametrize("method", ["spawn", "fork"])
def test_with_context_in_other_processes_logs_to_the_stored_run(
    tmp_path: Path, method: str
) -> None:
    # how-to-guides/workflows/add-logging.mdx: `pool.map(with_context(process_item), items)`
    # inside a task, with get_run_logger() in the worker processes (and a Process too).
    proc = run_script(
        tmp_path,
        """
        import multiprocessing
        METHOD = "<method>"
        from wfkit import flow, runtime, task
        from wfkit.context import with_context
        from wfkit.logging import get_run_logger
        from wfkit.stores import open_store

        def process_item(item):
            get_run_logger().info(f"Processing {item} in {runtime.task_run.task_name}")
            return item * 2

        @task
        def parallel_task(items):
            processes = multiprocessing.get_context(METHOD)
            with processes.Pool(2) as pool:
                doubled = pool.map(with_context(process_item), items)
            single = processes.Process(target=with_context(process_item), args=(5,))
            single.start()
            single.join()
            return doubled

        @flow
        def my_flow():
            return parallel_task([1, 2, 3, 4])

        if __name__ == "__main__":
            print("result:", my_flow())
            run = open_store().task_runs(task_name="parallel_task")[-1]
            for line in open_store().logs(run.id):
                print("stored:", line.message)
        """.replace("<method>", method),
    )
    assert proc.returncode == 0, proc.stderr
    assert "result: [2, 4, 6, 8]" in proc.stdout
    for item in (1, 2, 3, 4, 5):
        assert f"stored: Processing {item} in parallel_task" in proc.stdout


# -- log_prints, as a user sees it ----------------------------------------------------------
def test_log_prints_shows_a_print_once(tmp_path: Path) -> None:
    # how-to-guides/workflows/add-logging.mdx ("Log print statements"): the print appears
    # as a log line of the run (on stderr), not a second time on stdout.
    proc = run_script(
        tmp_path,
        """
        from wfkit import flow, task

        @task
        def greet():
            print("hello from the task")

        @flow(log_prints=True)
        def hello():
            print("hello from the flow")
            greet()

        hello()
        print("after the flow")
        """,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "after the flow\n"
    assert proc.stderr.count("hello from the flow") == 1
    assert proc.stderr.count("hello from the task") == 1
    assert "Task run 'greet-" in proc.stderr and "Finished in state Completed()" in proc.stderr
