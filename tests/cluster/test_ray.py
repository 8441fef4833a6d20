"""RayTaskRunner on a real local Ray (``ray.init(num_cpus=2)``): the conformance suite,
states in the flow's store, remote_options, a lost worker, bad input."""

from __future__ import annotations

import contextvars
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

ray = pytest.importorskip("ray")

from wfkit import flow  # noqa: E402
from wfkit.context import FlowRunContext  # noqa: E402
from wfkit.exceptions import ConfigurationError  # noqa: E402
from wfkit.stores import open_store  # noqa: E402
from wfkit.task_runners.ray import RayTaskRunner, remote_options  # noqa: E402
from wfkit.testing.harness import Harness, harness  # noqa: E402
from wfkit.testing.runner_conformance import RunnerConformance  # noqa: E402

from . import _ray_tasks, _tasks  # noqa: E402
from ._checks import assert_running_shows_while_it_runs  # noqa: E402


class TestRayTaskRunner(RunnerConformance):
    @pytest.fixture
    def runner(self, ray_session: Any) -> RayTaskRunner:
        return RayTaskRunner()


@pytest.fixture
def h(tmp_path: Path, ray_session: Any) -> Any:
    with harness(store="sqlite", directory=tmp_path) as hh:
        yield hh


def test_states_and_logs_come_back_to_the_flows_sqlite_store(h: Harness) -> None:
    @flow(task_runner=RayTaskRunner())
    def on_ray() -> tuple[int, list[int], int]:
        return _tasks.inc.submit(1).result(), _tasks.inc.map([5, 6]).result(), _tasks.where()

    first, mapped, _ = on_ray()
    assert (first, mapped) == (2, [6, 7])
    runs = h.task_runs(_tasks.inc)
    assert [r.state_names for r in runs] == [["Pending", "Running", "Completed"]] * 3
    assert sorted(r.message for r in h.logs() if r.message.startswith("inc got")) == [
        "inc got 1", "inc got 5", "inc got 6"
    ]  # fmt: skip
    pid = h.task_run(_tasks.where).state.result()
    assert pid != os.getpid()  # (the direct call ran here; its submitted twin did not)


def test_remote_options_reach_ray(h: Harness) -> None:
    @flow(task_runner=RayTaskRunner())
    def resourced() -> tuple[float, float]:
        with remote_options(num_cpus=2):
            big = _ray_tasks.assigned_cpus.submit()
        return big.result(), _ray_tasks.assigned_cpus.submit().result()

    assert resourced() == (2.0, 1.0)


def test_a_task_whose_worker_dies_at_once_ends_crashed(h: Harness) -> None:
    @flow(task_runner=RayTaskRunner())
    def deadly() -> Any:
        with remote_options(max_retries=0):
            return _tasks.kills_its_worker.submit().wait()

    deadly()
    run = h.task_run(_tasks.kills_its_worker)
    assert run.state_names == ["Pending", "Crashed"]
    message = run.state.message or ""
    assert "WorkerDiedError: The worker died unexpectedly" in message
    assert "Which worker ran the task is not known" in message  # (it never published)


@pytest.mark.parametrize("max_retries", [0, 1])
def test_a_worker_killed_mid_task_is_named_or_ray_runs_the_task_again(
    h: Harness, tmp_path: Path, max_retries: int
) -> None:
    """SIGKILL the worker running a task: the run ends Crashed naming the worker, or, with
    a retry left, Ray runs it again and it completes."""
    pid_file = tmp_path / "pid"

    @flow(task_runner=RayTaskRunner())
    def killed() -> Any:
        with remote_options(max_retries=max_retries):
            return _ray_tasks.reports_its_pid.submit(str(pid_file)).wait()

    thread = threading.Thread(target=contextvars.copy_context().run, args=(killed,))
    thread.start()
    try:
        for _ in range(6000):  # (up to ~60 s of real time, in 10 ms steps)
            runs = h.task_runs(_ray_tasks.reports_its_pid)
            if pid_file.exists() and runs and runs[0].state_names[-1:] == ["Running"]:
                break
            threading.Event().wait(0.01)
        pid = int(pid_file.read_text())
        os.kill(pid, signal.SIGKILL)
    finally:
        thread.join(60)
    run = h.task_run(_ray_tasks.reports_its_pid)
    if max_retries:  # (its first run was killed: this is its second)
        assert run.state_names == ["Pending", "Running", "Completed"]
    else:
        assert run.state_names == ["Pending", "Running", "Crashed"]
        message = run.state.message or ""
        assert "WorkerDiedError: The worker died unexpectedly" in message
        assert re.search(rf"The task ran in Ray worker pid {pid} on node \w+ \([\d.]+\)", message)


def test_a_generator_task_cannot_be_submitted(h: Harness) -> None:
    @flow(task_runner=RayTaskRunner())
    def streaming() -> Any:
        return _ray_tasks.streams.submit()

    with pytest.raises(TypeError, match="'streams' is a generator; generator tasks stream"):
        streaming()


@pytest.mark.parametrize("address", ["127.0.0.1:1", "ray://127.0.0.1:1"])
def test_an_address_nothing_answers_is_named(tmp_path: Path, address: str) -> None:
    """In a process of its own (no Ray started there): a ConnectionError naming the
    address, at once (Ray on its own gives up after a minute or two, with SystemExit)."""
    (tmp_path / "ray_address_tasks.py").write_text(
        "from wfkit import flow, task\n"
        "from wfkit.task_runners.ray import RayTaskRunner\n"
        "@task\ndef one() -> int:\n    return 1\n"
        f"@flow(task_runner=RayTaskRunner(address={address!r}))\n"
        "def reaches() -> int:\n    return one.submit().result()\n"
    )
    code = (
        "from ray_address_tasks import reaches\n"
        "try:\n    reaches()\nexcept ConnectionError as exc:\n    print(exc)\n"
    )
    src = str(Path(__file__).resolve().parents[2] / "src")
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": os.pathsep.join([src, str(tmp_path)]), "WFKIT_HOME": str(tmp_path)},
        timeout=120,  # (a guard against the minutes Ray would wait, not a measure)
    )
    assert f"RayTaskRunner(address={address!r}): no Ray cluster answered" in out.stdout, (
        out.stdout + out.stderr
    )
    assert "nothing answers at 127.0.0.1:1" in out.stdout


@pytest.fixture(params=["ray", "dask"])
def any_cluster_runner(request: pytest.FixtureRequest) -> Any:
    """A RayTaskRunner on the session's Ray, or a DaskTaskRunner on its LocalCluster."""
    if request.param == "ray":
        return RayTaskRunner()
    from wfkit.task_runners.dask import DaskTaskRunner

    return DaskTaskRunner(cluster=request.getfixturevalue("dask_cluster"))


def test_an_argument_that_cannot_be_serialized_fails_its_run_naming_it(
    h: Harness, any_cluster_runner: Any
) -> None:
    """Failed, not Crashed: the run's own value is at fault, not the cluster."""

    @flow(task_runner=any_cluster_runner)
    def locked() -> Any:
        return _tasks.inc.submit(threading.Lock()).wait()  # type: ignore[arg-type]

    locked()
    run = h.task_run(_tasks.inc)
    assert run.state_names == ["Pending", "Failed"]
    assert (run.state.message or "").startswith(
        "argument 'x' (lock) cannot be serialized by cloudpickle to go to another process: "
        "TypeError: cannot pickle '_thread.lock' object."
    )


def test_a_result_that_cannot_be_serialized_fails_its_run(
    h: Harness, any_cluster_runner: Any
) -> None:
    @flow(task_runner=any_cluster_runner)
    def returns() -> Any:
        return _ray_tasks.returns_a_lock.submit().wait()

    returns()
    run = h.task_run(_ray_tasks.returns_a_lock)
    assert run.state_names[0] == "Pending" and run.state_names[-1] == "Failed"
    assert "cannot be serialized by cloudpickle to go back to the flow's process" in (
        run.state.message or ""
    )


@pytest.mark.parametrize(
    ("make", "named"),
    [
        (lambda: RayTaskRunner(init_kwargs=["num_cpus", 2]), "init_kwargs="),  # type: ignore[arg-type]
        (lambda: RayTaskRunner(init_kwargs={"address": "auto"}), "RayTaskRunner(address=...)"),
        (lambda: remote_options(num_cpu=2).__enter__(), "num_cpu=..."),
    ],
)
def test_bad_arguments_are_named(make: Any, named: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        make()
    assert named in str(info.value)


@pytest.mark.parametrize(("module", "extra"), [("ray", "ray"), ("dask", "dask")])
def test_a_missing_extra_names_what_to_install(module: str, extra: str) -> None:
    hide = "distributed" if module == "dask" else "ray"
    code = (
        f"import sys; sys.modules[{hide!r}] = None\n"
        "from wfkit.exceptions import MissingExtraError\n"
        f"try:\n    import wfkit.task_runners.{module}\n"
        "except MissingExtraError as exc:\n    print(exc)\n"
    )
    src = str(Path(__file__).resolve().parents[2] / "src")
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={"PYTHONPATH": src}
    )
    assert f"pip install 'wfkit[{extra}]'" in out.stdout, out.stderr


def test_an_objectref_in_the_arguments_reaches_the_task(h: Harness) -> None:
    """Runs go to Ray as bytes pickled by the runner, except those holding what only Ray's
    serializer hands over right, such as ObjectRefs (which Ray must count)."""

    @flow(task_runner=RayTaskRunner())
    def handed() -> int:
        # (in a list: a Ray task's own ObjectRef arguments are resolved by Ray)
        return _ray_tasks.fetches.submit([ray.put(41)]).result()

    assert handed() == 41


def test_a_class_of_the_flows_main_module_reaches_the_worker(
    ray_session: Any, tmp_path: Path
) -> None:
    """A dataclass defined in the script that runs the flow (``__main__``, which a worker
    cannot import) goes by value, as cloudpickle sends it. In a process of its own,
    connected to the session's cluster by address."""
    (tmp_path / "main_tasks.py").write_text(
        "from wfkit import task\n@task\ndef norm(p: object) -> int:\n"
        "    return p.x + p.y  # type: ignore[attr-defined]\n"
    )
    src = str(Path(__file__).resolve().parents[2] / "src")
    path = os.pathsep.join([src, str(tmp_path)])
    address = ray_session.get_runtime_context().gcs_address
    (tmp_path / "script.py").write_text(
        "from dataclasses import dataclass\n"
        "from wfkit import flow\nfrom wfkit.task_runners.ray import RayTaskRunner\n"
        "import main_tasks\n\n@dataclass\nclass Point:\n    x: int\n    y: int\n\n"
        f"env = {{'env_vars': {{'PYTHONPATH': {path!r}}}}}\n"
        f"runner = RayTaskRunner(address={address!r}, init_kwargs={{'runtime_env': env, "
        "'log_to_driver': False})\n"
        "@flow(task_runner=runner)\ndef measure() -> int:\n"
        "    return main_tasks.norm.submit(Point(1, 2)).result()\n\n"
        "print('norm', measure())\n"
    )
    out = subprocess.run(
        [sys.executable, str(tmp_path / "script.py")],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": path, "WFKIT_HOME": str(tmp_path)},
        timeout=120,
    )
    assert "norm 3" in out.stdout, out.stdout + out.stderr[-3000:]


def test_flow_runs_share_one_live_mailbox_actor(h: Harness, ray_session: Any) -> None:
    """Each flow run's runner listens on the session's one mailbox: an actor per flow run
    would start a Ray worker process (~0.7 s of CPU) per flow run."""

    @flow(task_runner=RayTaskRunner())
    def one() -> int:
        return _tasks.inc.submit(1).result()

    assert one() + one() == 4
    names = ray_session.util.list_named_actors()
    assert len([name for name in names if name.startswith("wfkit-live-")]) == 1


def test_flow_runs_share_the_workers_remote_functions(h: Harness, ray_session: Any) -> None:
    """One pair of Ray remote functions per session: Ray exports a new one to the cluster
    on its first call, ~1.4 ms of each flow run."""
    used = []

    @flow(task_runner=RayTaskRunner())
    def one() -> int:
        value = _tasks.inc.submit(1).result()
        used.append(FlowRunContext.get().task_runner._run_chunk)  # type: ignore[union-attr]
        return value  # type: ignore[no-any-return]

    assert one() + one() == 4
    assert used[0] is used[1]


def test_running_reaches_the_store_while_the_task_runs(ray_session: Any, tmp_path: Path) -> None:
    """The run's start comes back through the runner's mailbox actor, before its outcome."""
    assert_running_shows_while_it_runs(RayTaskRunner(), tmp_path)


def test_the_flows_process_prints_the_runs_lines_once(ray_session: Any, tmp_path: Path) -> None:
    """A run's log lines are printed by the flow's process (not by the worker, whose
    console output Ray ships to the flow's process), once each, under the run's name, and
    stored; the task's own print() still comes through Ray's forwarding. In a process of
    its own with Ray's log forwarding on, connected to the session's cluster by address."""
    module = _ray_tasks.__name__  # (as this session named it: the workers import it so)
    root = Path(_ray_tasks.__file__).resolve().parents[module.count(".")]
    path = os.pathsep.join([str(Path(__file__).resolve().parents[2] / "src"), str(root)])
    address = ray_session.get_runtime_context().gcs_address
    (tmp_path / "script.py").write_text(
        "import sys\nimport ray\nfrom wfkit import flow\n"
        "from wfkit.task_runners.ray import RayTaskRunner\n"
        f"import {module} as tasks\n"
        # (Ray started here, not by the runner: it outlives the flow run, so that what the
        # workers printed keeps coming until the test has seen it)
        f"ray.init(address={address!r}, runtime_env={{'env_vars': {{'PYTHONPATH': {path!r}}}}})\n"
        "@flow(task_runner=RayTaskRunner())\ndef speaks() -> int:\n"
        "    return tasks.says.submit(1).result()\n\n"
        "print('result', speaks(), flush=True)\nsys.stdin.readline()\n"
    )
    script = subprocess.Popen(
        [sys.executable, str(tmp_path / "script.py")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONPATH": path, "WFKIT_HOME": str(tmp_path)},
    )
    assert script.stdin is not None and script.stdout is not None
    lines: list[str] = []
    timer = threading.Timer(120, script.kill)  # (a guard against a hang, not a measure)
    timer.start()
    try:
        # Until Ray has forwarded the task's print (the worker wrote its own lines of the
        # run right after it, to the same output)
        for line in script.stdout:
            lines.append(line)
            if "printed by says(1)" in line:
                break
        script.stdin.write("\n")
        script.stdin.close()
        lines.extend(script.stdout)
        script.wait()
    finally:
        timer.cancel()
    output = "".join(lines)
    assert "result 2" in output, output
    printed = [line for line in lines if "printed by says(1)" in line]
    assert len(printed) == 1 and "pid=" in printed[0], output  # (Ray's forwarding)
    for text in ("logged by says(1)", "Finished in state Completed()"):
        shown = [line for line in lines if text in line and "Task run" in line]
        assert len(shown) == 1, output
        assert re.search(rf"^\S+ \| INFO    \| Task run 'says-\w+' - {re.escape(text)}$", shown[0])
    store = open_store(f"sqlite:///{tmp_path / 'wfkit.db'}", read_only=True)
    try:
        stored = [entry.message for entry in store.logs() if entry.task_run_id is not None]
    finally:
        store.close()
    assert stored == ["logged by says(1)", "Finished in state Completed()"]


def test_a_remote_runs_lines_reach_the_flow_process_handlers_stored_once(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """With a handler of the user's (pytest's here), a Ray run's lines reach it in the
    flow's process as a local run's do, under the run's name, and are stored once."""

    @flow(task_runner=RayTaskRunner())
    def speaks() -> int:
        return _ray_tasks.says.submit(2).result()

    with caplog.at_level("INFO", logger="wfkit"):
        assert speaks() == 3
    run = h.task_run(_ray_tasks.says)
    for text in ("logged by says(2)", "Finished in state Completed()"):
        records = [
            r for r in caplog.records
            if r.getMessage() == text and getattr(r, "wf_task_run_id", None) == run.id
        ]  # fmt: skip
        assert [r.wf_label for r in records] == [f"Task run {run.name!r}"]  # type: ignore[attr-defined]
        assert [r.message for r in h.logs(run.id)].count(text) == 1
