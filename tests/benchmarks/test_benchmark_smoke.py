"""Smoke run of ``benchmarks/run.py`` (tiny N, one repeat) so that the benchmark does not rot.

It checks the shape of the JSON document and that every workload verified its own outputs.
It never looks at timings or targets: those are benchmark results, not test conditions.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

RUN = Path(__file__).resolve().parents[2] / "benchmarks" / "run.py"
CHEAP = [
    "import_wfkit",
    "first_flow_call",
    "first_flow_call_wfkit_home",
    "empty_flow_call_warm_sqlite",
    "sequential_task_memory",
    "task_map_10k",
    "cache_hit_sqlite",
    "store_size_per_task_run",
    "harness_entry",
    "retry_test_in_process",
    "retry_test_pytest",
    "harness_session_warm_up",
    "retry_test_pytest_next",
]


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WFKIT_")}
    env["WFKIT_HOME"] = str(tmp_path / "home")
    return env


def _numbers(values: object) -> bool:
    return (
        isinstance(values, list)
        and bool(values)
        and all(isinstance(v, int | float) and math.isfinite(v) for v in values)
    )


def test_quick_benchmark_prints_one_verified_json_document(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(RUN), "--quick", "--repeat", "1", "--only", ",".join(CHEAP)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=_env(tmp_path),
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(proc.stdout)  # exactly one JSON document on stdout
    assert doc["quick"] is True and doc["repeat"] == 1
    assert [f["name"] for f in doc["figures"]] == CHEAP
    for fig in doc["figures"]:
        name = fig["name"]
        assert fig["unit"], name
        assert fig["status"] in ("ok", "not_available"), (name, fig.get("reason"))
        if fig["status"] == "not_available":
            assert isinstance(fig["reason"], str) and fig["reason"], name
            assert "wfkit" not in fig and fig["meets_target"] is None, name
            continue
        assert _numbers(fig["wfkit"]["samples"]), name
        assert _numbers(fig["plain"]["samples"]), name
        assert isinstance(fig["wfkit"]["median"], int | float), name
        assert fig["verified"] is True, (name, fig.get("failed_checks"))
        assert fig["checks"], name
        assert fig["meets_target"] in (True, False, None), name
        assert fig["prefect"] is None, name
    assert doc["verified"] is True
    # The headline first call runs in the default configuration; WFKIT_HOME has its own figure.
    checks = {f["name"]: " ".join(f["checks"]) for f in doc["figures"]}
    assert "created in $HOME/.wfkit" in checks["first_flow_call"]
    assert "created in WFKIT_HOME" in checks["first_flow_call_wfkit_home"]


def test_unknown_figure_is_refused(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(RUN), "--only", "no_such_figure"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=_env(tmp_path),
        timeout=60,
    )
    assert proc.returncode == 2
    assert "no_such_figure" in proc.stderr and "import_wfkit" in proc.stderr
    assert proc.stdout == ""


def test_interpreter_paths_are_made_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The workloads run in temporary directories, so "../venv/bin/python" must not be
    # resolved there (it was, and the Prefect figures failed with FileNotFoundError).
    import importlib.util

    monkeypatch.setattr(sys, "path", list(sys.path))  # run.py puts benchmarks/ first
    spec = importlib.util.spec_from_file_location("bench_run", RUN)
    assert spec is not None and spec.loader is not None
    run = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run)
    venv = tmp_path / "venv" / "bin"
    venv.mkdir(parents=True)
    (venv / "python").symlink_to(sys.executable)
    monkeypatch.chdir(tmp_path / "venv")

    args = run.parse_args(["--prefect-python", "bin/python", "--python", "bin/python"])

    assert args.prefect_python == str(venv / "python")  # absolute, the symlink kept
    assert args.python == str(venv / "python")


def test_the_instruction_count_workloads_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # benchmarks/instructions.py runs these under valgrind; here they run plainly (tiny N),
    # so that they keep up with the API even where valgrind is not installed.
    import importlib.util

    monkeypatch.setattr(sys, "path", list(sys.path))
    path = RUN.with_name("instructions.py")
    spec = importlib.util.spec_from_file_location("bench_instructions", path)
    assert spec is not None and spec.loader is not None
    instructions = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(instructions)
    assert set(instructions.WORKLOADS) == {"memory", "sqlite", "cache_hit", "remote"}
    for name, text in instructions.WORKLOADS.items():
        script = tmp_path / f"{name}.py"
        script.write_text(text)
        proc = subprocess.run(
            [sys.executable, str(script), "10"],
            capture_output=True,
            text=True,
            env=_env(tmp_path),
            timeout=120,
        )
        assert proc.returncode == 0, f"{name}: {proc.stderr[-2000:]}"
