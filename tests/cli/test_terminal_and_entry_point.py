"""How ``wf`` meets a terminal (Rich tables and colours), ``wf runs watch``, and the console
script: ``[project.scripts] wf`` resolves to the callable ``python -m wfkit`` runs."""

from __future__ import annotations

import importlib
import os
import pty
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest

import wfkit.__main__
from wfkit.cli import main

from .conftest import process_env

Wf = Callable[..., subprocess.CompletedProcess[str]]
ROOT = Path(__file__).resolve().parents[2]


def _in_a_terminal(*args: str) -> str:
    """``python -m wfkit ARGS`` with its stdout on a pseudo-terminal; what it printed."""
    leader, follower = pty.openpty()
    env = process_env(COLUMNS="160", TERM="xterm-256color")
    env.pop("NO_COLOR", None)
    child = subprocess.Popen(
        [sys.executable, "-m", "wfkit", *args], stdout=follower, stderr=subprocess.PIPE, env=env
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # (the terminal closed: the child is done)
            break
        if not chunk:
            break
        chunks.append(chunk)
    child.wait(timeout=60)
    os.close(leader)
    assert child.returncode == 0
    return b"".join(chunks).decode()


def test_a_terminal_gets_a_rich_table_with_coloured_states(filled: Path) -> None:
    shown = _in_a_terminal("runs", "ls", "--store", f"sqlite:///{filled}")

    assert "\x1b[" in shown  # colours
    assert "\x1b[32mCompleted" in shown and "\x1b[31mFailed" in shown
    assert "RUN " in shown and "etl-3" in shown and "wide-250" in shown
    assert "━" in shown or "─" in shown  # a Rich table's rule under the headers


def test_a_pipe_gets_plain_text(wf_process: Wf) -> None:
    result = wf_process("runs", "ls")
    assert "\x1b[" not in result.stdout
    assert result.stdout.splitlines()[0].split() == [
        "RUN", "FLOW", "STATE", "STARTED", "DURATION", "TASK", "RUNS", "ID",
    ]  # fmt: skip


def test_watch_refreshes_a_table_of_recent_runs(wf_process: Wf) -> None:
    result = wf_process("runs", "watch", "--count", "2", "--interval", "0.1", "--limit", "2")

    assert result.returncode == 0, result.stderr
    tables = result.stdout.split("Flow runs at ")[1:]
    assert len(tables) == 2
    for table in tables:
        assert [line.split()[0] for line in table.splitlines()[2:4]] == ["boom", "wide-250"]


def test_the_console_script_is_the_command_python_m_runs() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, name = scripts["wf"].partition(":")

    assert getattr(importlib.import_module(module), name) is main is wfkit.__main__.main


def test_python_m_wfkit_is_wf(wf_process: Wf) -> None:
    result = wf_process("runs", "--help", store=None)
    assert result.returncode == 0
    for command in ("ls", "show", "logs", "watch", "retry"):
        assert f"  {command} " in result.stdout


def test_the_help_lists_each_group_as_the_group_describes_itself() -> None:
    from wfkit.cli import _GROUPS
    from wfkit.cli.runs import runs
    from wfkit.cli.store import store

    assert _GROUPS["runs"][1] == runs.get_short_help_str(100)
    assert _GROUPS["store"][1] == store.get_short_help_str(100)


def test_the_installed_console_script_runs(tmp_path: Path) -> None:
    # What the README's install command puts beside the interpreter (.venv/bin/wf).
    script = Path(sys.executable).with_name("wf")
    if not script.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{script} is missing: the install did not make the console script")
        pytest.skip(f"wfkit is not installed beside {sys.executable} (no {script})")
    env = {**os.environ, "WFKIT_HOME": str(tmp_path)}
    done = subprocess.run(
        [str(script), "store", "info"], capture_output=True, text=True, env=env, timeout=60
    )
    # A new home has no store yet: read-only, wf says so (exit 1) and creates nothing.
    assert done.returncode == 1, done
    assert "There is no run store at" in done.stderr
    assert list(tmp_path.iterdir()) == []
    version = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=60)
    assert version.returncode == 0 and wfkit.__version__ in version.stdout
