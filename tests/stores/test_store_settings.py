"""The settings the SQLite store reads: WFKIT_STORE_COMMIT_INTERVAL, and a WFKIT_HOME that
cannot hold the store file."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import wfkit.stores
from wfkit import settings
from wfkit.exceptions import ConfigurationError
from wfkit.stores.sqlite import SqliteStore

SRC = Path(wfkit.stores.__file__).resolve().parents[2]


@pytest.fixture
def fresh_settings() -> Iterator[None]:
    """Settings read again from the environment the test set, and again afterwards."""
    settings.get_settings.cache_clear()
    yield
    settings.get_settings.cache_clear()


@pytest.mark.parametrize("value", [-0.1, float("nan"), float("inf"), 61, True, "0.1"])
def test_a_bad_commit_interval_argument_is_refused_naming_it(tmp_path: Path, value: object) -> None:
    with pytest.raises(ConfigurationError, match=r"commit_interval=.* from 0 to 60") as info:
        SqliteStore(tmp_path / "runs.db", commit_interval=value)  # type: ignore[arg-type]
    assert repr(value) in str(info.value)
    assert not (tmp_path / "runs.db").exists()  # refused before the file is made


@pytest.mark.parametrize("value", [0, 0.05, 60])
def test_a_commit_interval_from_0_to_60_seconds_is_taken(value: float) -> None:
    assert settings.store_commit_interval(value) == value


def test_the_commit_interval_setting_is_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, fresh_settings: None
) -> None:
    monkeypatch.setenv("WFKIT_STORE_COMMIT_INTERVAL", "0.25")
    assert settings.store_commit_interval() == 0.25


@pytest.mark.parametrize("value", ["-1", "nan", "inf", "soon", "61"])
def test_a_bad_commit_interval_setting_is_a_configuration_error_naming_it(
    monkeypatch: pytest.MonkeyPatch, fresh_settings: None, value: str
) -> None:
    monkeypatch.setenv("WFKIT_STORE_COMMIT_INTERVAL", value)
    with pytest.raises(ConfigurationError, match="WFKIT_STORE_COMMIT_INTERVAL"):
        settings.store_commit_interval()


def test_the_default_commit_interval_needs_no_pydantic_settings(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("WFKIT_")}
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")])
    code = (
        "import sys\n"
        "from wfkit.settings import store_commit_interval\n"
        "print(store_commit_interval(), 'pydantic_settings' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["0.1", "False"]


# WFKIT_HOME -------------------------------------------------------------------------------
@pytest.mark.parametrize("under", ["", "sub"], ids=["the file", "under the file"])
def test_a_wfkit_home_that_is_a_file_is_a_configuration_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_settings: None, under: str
) -> None:
    a_file = tmp_path / "not-a-dir"
    a_file.write_text("hello")
    home = a_file / under if under else a_file
    monkeypatch.setenv("WFKIT_HOME", str(home))
    with pytest.raises(ConfigurationError, match="a file, not a directory") as info:
        settings.store_url()
    assert repr(str(home)) in str(info.value)
    assert "Point WFKIT_HOME at a directory" in str(info.value)
    assert a_file.read_text() == "hello"


def test_a_wfkit_home_that_is_missing_or_a_directory_is_fine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_settings: None
) -> None:
    for home in (tmp_path, tmp_path / "new" / "home"):
        settings.get_settings.cache_clear()
        monkeypatch.setenv("WFKIT_HOME", str(home))
        assert settings.store_url() == f"sqlite:///{home / 'wfkit.db'}"
