"""``import wfkit`` stays light: no heavy or test-only module is imported by it."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = {
    "pydantic",
    "pydantic_settings",
    "pydantic_core",
    "asyncio",
    "sqlite3",
    "pytest",
    "hypothesis",
    "freezegun",
    "_pytest",
    "psycopg",
    "distributed",
    "dask",
}


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            f"{code}\nimport sys, json\n"
            "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return set(json.loads(out.strip().splitlines()[-1]))


def test_import_wfkit_pulls_in_no_heavy_module():
    assert _modules_after("import wfkit") & HEAVY == set()


def test_decorating_pulls_in_no_heavy_module():
    code = (
        "import wfkit\n"
        "@wfkit.task(retries=2, retry_delay_seconds=[1, 2])\n"
        "def t(x: int) -> int: return x\n"
        "@wfkit.flow(timeout_seconds=3, flow_run_name='run-{x}')\n"
        "def f(x: int) -> int: return t(x)\n"
    )
    assert _modules_after(code) & HEAVY == set()


def test_import_has_no_side_effects(tmp_path):
    env_home = tmp_path / "home"
    subprocess.run(
        [sys.executable, "-c", "import wfkit, wfkit.stores, wfkit.runtime"],
        check=True,
        env={"WFKIT_HOME": str(env_home), "PATH": ""},
    )
    assert not env_home.exists()
