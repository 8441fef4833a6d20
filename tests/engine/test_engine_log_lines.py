"""The engine's own log lines ("Finished in state ...") as a script sees them: outside
pytest nothing but wfkit's handlers listens, and the lines take a short path that makes no
LogRecord (see wfkit.logging). Run in subprocesses, because pytest's own log capture adds a
handler to the root logger, which sends every line the long way."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

SCRIPT = """
import json, logging, sys
from wfkit import flow, task
from wfkit.context import use_runtime
from wfkit.stores import open_store

if "--filter" in sys.argv:  # a user's filter on the task logger: it sees every record
    seen = []
    def keep(record):
        seen.append(record.getMessage())
        return "skip-me" not in record.getMessage()
    logging.getLogger("wfkit.task_runs").addFilter(keep)

@task(task_run_name="double-{x}")
def double(x):
    return 2 * x

@flow(flow_run_name="lines")
def lines():
    return double(1) + double(2)

with use_runtime(store="sqlite:///" + sys.argv[1]):
    lines()
store = open_store("sqlite:///" + sys.argv[1])
(run,) = store.flow_runs()
tasks = {t.id: t.name for t in store.task_runs()}
print(json.dumps([[tasks.get(r.task_run_id), r.flow_run_id == run.id, r.level_name,
                   r.logger, r.message] for r in store.logs()]))
if "--filter" in sys.argv:
    print(json.dumps(seen))
"""

LINE = re.compile(r"^\d\d:\d\d:\d\d\.\d{3} \| (\w+) +\| (.*)$")


def _run(tmp_path: Path, *flags: str) -> tuple[list[str], list[str]]:
    script = tmp_path / "lines.py"
    script.write_text(SCRIPT)
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "runs.db"), *flags],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines(), done.stderr.splitlines()


def test_a_scripts_console_and_store_get_every_line(tmp_path: Path) -> None:
    out, err = _run(tmp_path)

    shown = [LINE.match(line) for line in err]
    assert all(shown), err
    assert [m.groups() for m in shown if m] == [
        ("INFO", "Flow run 'lines' - Beginning flow run 'lines' for flow 'lines'"),
        ("INFO", "Task run 'double-1' - Finished in state Completed()"),
        ("INFO", "Task run 'double-2' - Finished in state Completed()"),
        ("INFO", "Flow run 'lines' - Finished in state Completed()"),
    ]
    stored = json.loads(out[0])
    assert stored[1:3] == [
        ["double-1", True, "INFO", "wfkit.task_runs", "Finished in state Completed()"],
        ["double-2", True, "INFO", "wfkit.task_runs", "Finished in state Completed()"],
    ]


def test_a_users_filter_sees_the_engines_lines(tmp_path: Path) -> None:
    out, err = _run(tmp_path, "--filter")

    assert json.loads(out[1]) == ["Finished in state Completed()"] * 2
    assert sum("Task run 'double-" in line for line in err) == 2
