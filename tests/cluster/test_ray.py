"""RayTaskRunner on a real local Ray (``ray.init(num_cpus=2)``): the conformance suite,
states in the flow's store, remote_options, a lost worker, bad input."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("ray")

from wfkit import flow  # noqa: E402
from wfkit.exceptions import ConfigurationError  # noqa: E402
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
    import os

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


def test_a_task_whose_worker_dies_ends_crashed(h: Harness) -> None:
    @flow(task_runner=RayTaskRunner())
    def deadly() -> Any:
        with remote_options(max_retries=0):
            return _tasks.kills_its_worker.submit().wait()

    deadly()
    run = h.task_run(_tasks.kills_its_worker)
    assert run.state_names == ["Pending", "Crashed"]
    assert "WorkerCrashedError" in (run.state.message or "")


def test_an_argument_that_cannot_be_serialized_is_named(h: Harness) -> None:
    @flow(task_runner=RayTaskRunner())
    def locked() -> Any:
        return _tasks.inc.submit(threading.Lock()).wait()  # type: ignore[arg-type]

    locked()
    assert "argument 'x' (lock) cannot be serialized" in (
        h.task_run(_tasks.inc).state.message or ""
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


def test_running_reaches_the_store_while_the_task_runs(ray_session: Any, tmp_path: Path) -> None:
    """The run's start comes back through the runner's mailbox actor, before its outcome."""
    assert_running_shows_while_it_runs(RayTaskRunner(), tmp_path)
