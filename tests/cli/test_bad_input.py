"""Bad input, as a user meets it in a terminal: ``python -m wfkit`` in a subprocess. Each case
gets a clear message on stderr and exit 2 (usage) or 1 (error), never a traceback."""

from __future__ import annotations

import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

Wf = Callable[..., subprocess.CompletedProcess[str]]


def refused(result: subprocess.CompletedProcess[str], code: int, *phrases: str) -> None:
    assert result.returncode == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    for phrase in phrases:
        assert phrase in result.stderr, result.stderr


@pytest.mark.parametrize(
    ("args", "code", "phrases"),
    [
        (["runs", "show", "no-such-run"], 1, ["No flow run matches RUN='no-such-run'"]),
        (["runs", "logs", "no-such-run"], 1, ["No flow run matches RUN='no-such-run'"]),
        (["runs", "show", "child-7"], 1, ["RUN='child-7' is ambiguous"]),
        (["runs", "ls", "--since", "yesterday-ish"], 2, ["'yesterday-ish' is not a time", "2h"]),
        (["runs", "ls", "--limit", "-3"], 2, ["Invalid value for '--limit'", "-3"]),
        (["runs", "logs", "etl-3", "--level", "loud"], 2, ["'loud' is not a log level"]),
        (["store", "prune"], 2, ["Missing option '--older-than'"]),
        (["store", "prune", "--older-than", "soon"], 2, ["'soon' is not an age"]),
        (["runs", "watch", "--json"], 2, ["--json cannot be combined with `wf runs watch`"]),
        (["runs", "nope"], 2, ["No such command 'nope'"]),
    ],
)
def test_bad_arguments(wf_process: Wf, args: list[str], code: int, phrases: list[str]) -> None:
    refused(wf_process(*args), code, *phrases)


def test_a_store_url_of_an_unknown_scheme(wf_process: Wf) -> None:
    result = wf_process("runs", "ls", store="mysql://db/runs")
    refused(result, 2, "store url='mysql://db/runs", "has a scheme wfkit does not know")


def test_a_memory_store_cannot_be_read_from_another_process(wf_process: Wf) -> None:
    refused(wf_process("runs", "ls", store="memory://"), 2, "is a memory store")


def test_a_path_that_is_not_a_store(wf_process: Wf, tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    refused(wf_process("runs", "ls", store=text), 1, "is not a SQLite database")
    refused(wf_process("runs", "ls", store=tmp_path / "missing.db"), 1, "There is no run store")
    assert not (tmp_path / "missing.db").exists()  # read-only: nothing created


def test_a_newer_schema_store(wf_process: Wf, store_copy: Path) -> None:
    with sqlite3.connect(store_copy) as conn:
        conn.execute("UPDATE wfkit_meta SET value = '99' WHERE key = 'schema_version'")
    conn.close()
    refused(wf_process("store", "info", store=store_copy), 1, "schema version 99", "Upgrade wfkit")


def test_help_and_version(wf_process: Wf) -> None:
    result = wf_process("--help", store=None)
    assert result.returncode == 0
    assert "  runs       See, follow and re-run flow runs.\n" in result.stdout
    assert "  store      Look after a run store.\n" in result.stdout
    version = wf_process("--version", store=None)
    assert version.returncode == 0 and version.stdout.startswith("wf, version ")
