"""``import wfkit`` stays light: no heavy or test-only module is imported by it."""

from __future__ import annotations

import json
import subprocess
import sys

# What `import wfkit` must not load, and why (see also test_import_rules.py).
HEAVY = {
    "pydantic",  # ~45 ms with its model machinery: only coercing arguments needs it
    "pydantic_settings",  # ~37 ms more: only a set WFKIT_* variable needs it
    "pydantic_core",  # (pydantic's)
    "asyncio",  # ~12 ms: only async flows and tasks (and the harness's patches) need it
    "sqlite3",  # ~1 ms, but it marks the SQLite store (~12 ms): only opening that store needs it
    "pytest",  # test-only: the engine never imports it (and a pytest run loads it anyway)
    "hypothesis",  # test-only, an optional extra: only wfkit.testing.strategies imports it
    "freezegun",  # test-only, an optional extra: only a harness freezing wall time needs it
    "_pytest",  # (pytest's)
    "psycopg",  # an optional extra: only the PostgreSQL store needs it
    "distributed",  # an optional extra: only the Dask task runner needs it
    "dask",  # (distributed's)
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


def _clean_env(tmp_path) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("WFKIT_")}
    env["HOME"] = str(tmp_path)  # the default store goes to $HOME/.wfkit
    return env


def test_first_flow_call_without_settings_or_coercion_imports_no_pydantic(tmp_path):
    code = (
        "import sys, wfkit\n"
        "@wfkit.task\n"
        "def t(x: int) -> int: return x\n"
        "@wfkit.flow\n"
        "def f(x: int) -> int: return t(x)\n"
        "assert f(1) == 1\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'pydantic', 'pydantic_settings'}))\n"
        "from wfkit.stores import open_store\n"
        "print(open_store().flow_runs()[-1].state_names)\n"  # reading loads the record models
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=_clean_env(tmp_path),
        check=True,
    ).stdout.splitlines()
    assert out == ["[]", "['Pending', 'Running', 'Completed']"]
    assert (tmp_path / ".wfkit" / "wfkit.db").exists()


def test_unconfigured_defaults_are_the_settings_defaults(tmp_path):
    code = (
        "from wfkit import settings\n"
        "fast = (settings.store_url(), settings.logging_level())\n"
        "full = settings.get_settings()\n"
        "print(fast == (full.store_url, full.logging_level))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=_clean_env(tmp_path),
        check=True,
    ).stdout.strip()
    assert out == "True"


def test_a_setting_whose_variable_is_unset_is_its_default_without_pydantic_settings(tmp_path):
    env = _clean_env(tmp_path)
    env["WFKIT_HOME"] = str(tmp_path / "elsewhere")
    code = (
        "import sys, wfkit\n"
        "from wfkit import settings\n"
        "from wfkit.testing import harness\n"
        "@wfkit.task\n"
        "def t(x: int) -> int: return x\n"
        "with harness():\n"
        "    assert t(1) == 1\n"  # the first run reads the logging level
        "print(settings.logging_level(), 'pydantic_settings' in sys.modules)\n"
        "print(settings.store_url(), 'pydantic_settings' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    ).stdout.splitlines()
    assert out == ["INFO False", f"sqlite:///{tmp_path / 'elsewhere' / 'wfkit.db'} True"]


def test_variable_names_match_without_regard_to_case_as_in_pydantic_settings(tmp_path):
    env = _clean_env(tmp_path)
    env.update(wfkit_store="memory://", Wfkit_Logging_Level="debug")
    code = "from wfkit import settings\nprint(settings.store_url(), settings.logging_level())"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    ).stdout.strip()
    assert out == "memory:// DEBUG"


def test_the_pytest_plugin_loads_nothing_only_a_harness_needs():
    # Every pytest session loads the plugin; entering a harness loads asyncio and freezegun.
    loaded = _modules_after("import pytest\nimport wfkit.testing.pytest_plugin")
    assert loaded & (HEAVY - {"pytest", "_pytest"}) == set()


def test_entering_a_harness_loads_no_module_that_a_lazy_package_only_promises():
    # freezegun's first freeze would read concurrent.futures.ProcessPoolExecutor,
    # dateutil.zoneinfo... and so import multiprocessing and tarfile.
    loaded = _modules_after("from wfkit.testing import harness\nwith harness():\n    pass")
    assert "freezegun" in loaded
    assert loaded & {"multiprocessing", "tarfile"} == set()


def test_a_set_wfkit_variable_is_validated(tmp_path):
    env = _clean_env(tmp_path)
    env["WFKIT_LOGGING_LEVEL"] = "loud"
    result = subprocess.run(
        [sys.executable, "-c", "import wfkit\n@wfkit.flow\ndef f(): return 1\nf()"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode != 0
    assert "WFKIT_LOGGING_LEVEL='loud' is not a logging level" in result.stderr
