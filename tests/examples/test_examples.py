"""Every script in ``examples/`` runs as a user would run it and prints what it promises.

Each script runs in a fresh interpreter (``sys.executable``) with ``WFKIT_HOME`` in the test's
tmp dir and no ``WFKIT_STORE``, so it records into its own default SQLite store and never
touches ``~/.wfkit``.

Every script must have an expectation in ``EXPECTATIONS``: a new example without one fails
``test_example`` until someone writes down what it should print.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SCRIPTS = sorted(p.name for p in EXAMPLES.glob("*.py"))
WEEKDAYS = "Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday"


@dataclass(frozen=True)
class Ran:
    """The outcome of running one example script."""

    script: str
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    home: Path

    @property
    def lines(self) -> list[str]:
        return self.stdout.splitlines()

    def line(self, pattern: str) -> re.Match[str]:
        """The single stdout line fully matching ``pattern``."""
        found = [m for m in (re.fullmatch(pattern, line) for line in self.lines) if m]
        assert len(found) == 1, (
            f"{self.script}: expected exactly one stdout line matching {pattern!r}, "
            f"found {len(found)}.\nstdout:\n{self.stdout}"
        )
        return found[0]


Check = Callable[[Ran], None]
EXPECTATIONS: dict[str, Check] = {}

# Scripts whose expected output is right (it is what Prefect does) but which the engine does
# not produce yet. strict xfail: when the engine is fixed the test XPASSes and fails, so
# remove the entry then.
KNOWN_ENGINE_BUGS: dict[str, str] = {}


def expect(script: str, *, clean_stderr: bool = True) -> Callable[[Check], Check]:
    """Register the expectation for ``examples/<script>``. With ``clean_stderr`` the run must
    not print a traceback (run logs on stderr are fine)."""

    def register(check: Check) -> Check:
        def full_check(ran: Ran) -> None:
            assert ran.returncode == 0, (
                f"{script} exited {ran.returncode}\nstdout:\n{ran.stdout}\nstderr:\n{ran.stderr}"
            )
            if clean_stderr:
                assert "Traceback" not in ran.stderr, f"{script} printed a traceback:\n{ran.stderr}"
            check(ran)

        EXPECTATIONS[script] = full_check
        return check

    return register


def run_example(script: str, tmp_path: Path) -> Ran:
    home = tmp_path / "wfkit-home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("WFKIT_")}
    env["WFKIT_HOME"] = str(home)
    env["PYTHONUNBUFFERED"] = "1"
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return Ran(script, proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started, home)


# -- expectations, one per script -----------------------------------------------------------
@expect("hello_world.py")
def _hello_world(ran: Ran) -> None:
    assert ran.lines == ["Hello, world!"]


@expect("quickstart.py")
def _quickstart(ran: Ran) -> None:
    ran.line(r"result: Hello, world!")
    db = ran.home / "wfkit.db"
    assert ran.line(r"store: (.*)").group(1) == f"sqlite:///{db}"
    assert db.is_file(), f"the default SQLite store was not created at {db}"
    ran.line(r"flow run: [a-z]+-[a-z]+ \(flow 'hello-world', parameters \{'name': 'world'\}\)")
    ran.line(re.escape("flow run states: ['Pending', 'Running', 'Completed']"))
    ran.line(
        re.escape("task run: greet-")
        + r"[0-9a-f]{3} states: "
        + re.escape("['Pending', 'Running', 'Completed']")
    )


@expect("class_methods.py")
def _class_methods(ran: Ran) -> None:
    assert ran.lines == [
        "Howdy, from an instance method!",
        "Hello, from a class method of Greeter!",
        "Hello, from a static method!",
    ]


@expect("generator_flow.py")
def _generator_flow(ran: Ran) -> None:
    # Interleaved: each value reaches the caller before the generator produces the next.
    assert ran.lines == [
        "yielding 0",
        "received 0",
        "yielding 1",
        "received 1",
        "yielding 2",
        "received 2",
    ]


@expect("tasks_and_child_flows.py")
def _tasks_and_child_flows(ran: Ran) -> None:
    verdict = ran.line(r"(\d+) is (even|odd)")
    number = int(verdict.group(1))
    assert 0 <= number <= 100
    assert verdict.group(2) == ("even" if number % 2 == 0 else "odd")
    ran.line(r"parent flow run [a-z]+-[a-z]+: " + re.escape("['Pending', 'Running', 'Completed']"))
    ran.line(re.escape("child flow runs: [('is-even', 'Completed')]"))
    ran.line(re.escape("task runs: [('pick_a_number', 'Completed')]"))


@expect("timeouts.py", clean_stderr=False)  # the TimedOut run is logged with its traceback
def _timeouts(ran: Ran) -> None:
    assert "I will not execute" not in ran.stdout
    assert "I will not execute" not in ran.stderr  # not printed, not logged (log_prints)
    # log_prints turned the first print into a run log line, shown once (as in Prefect)
    assert "I will execute" not in ran.stdout
    assert ran.stderr.count("I will execute") == 1
    ran.line(r"final state: TimedOut \(type FAILED\)")
    ran.line(r"message: Flow run '[a-z]+-[a-z]+' exceeded its timeout of 1 second.*")
    elapsed = float(ran.line(r"returned after ([0-9.]+)s").group(1))
    # Interrupted at the 1 s deadline, not after the 5 s sleep.
    assert 0.9 <= elapsed < 3.0, elapsed
    assert ran.seconds < 5.0, f"the script took {ran.seconds:.1f}s: the sleep was not interrupted"


@expect("task_configuration.py")
def _task_configuration(ran: Ran) -> None:
    assert ran.lines[0] == "Hello from a task"
    ran.line(r"task name: say-hello")
    ran.line(r"task description: Prints a greeting from a task\.")
    ran.line(r"recorded task run: say-hello-[0-9a-f]{3} \(Completed\)")


@expect("task_run_name_template.py")
def _task_run_name_template(ran: Ran) -> None:
    assert ran.lines == ["task run name: hello-ford-on-Thursday"]


@expect("task_run_name_function.py")
def _task_run_name_function(ran: Ran) -> None:
    ran.line(rf"no-argument function: ({WEEKDAYS})-is-a-lovely-day")
    ran.line(r"function reading wfkit\.runtime: named-runs-runtime-task-with-marvin-and-100")
    ran.line(r"function with parameters: fetch-zaphod-x3")


# -- the tests ------------------------------------------------------------------------------
def _params() -> list[object]:
    return [
        pytest.param(
            s,
            id=s.removesuffix(".py"),
            marks=[pytest.mark.xfail(strict=True, reason=KNOWN_ENGINE_BUGS[s])]
            if s in KNOWN_ENGINE_BUGS
            else [],
        )
        for s in SCRIPTS
    ]


def test_there_are_examples() -> None:
    assert "quickstart.py" in SCRIPTS, f"examples/quickstart.py is missing; found {SCRIPTS}"


def test_every_expectation_has_a_script() -> None:
    stale = sorted(set(EXPECTATIONS) - set(SCRIPTS))
    assert not stale, f"expectations for scripts that do not exist in examples/: {stale}"


@pytest.mark.parametrize("script", _params())
def test_example(script: str, tmp_path: Path) -> None:
    check = EXPECTATIONS.get(script)
    assert check is not None, (
        f"examples/{script} has no expectation: add an @expect({script!r}) function to "
        f"{Path(__file__).name} saying what the script must print."
    )
    check(run_example(script, tmp_path))
