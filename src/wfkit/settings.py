"""Settings, read from ``WFKIT_*`` environment variables.

========================  ===================================  =================================
variable                  default                              meaning
========================  ===================================  =================================
``WFKIT_HOME``            ``~/.wfkit``                         where wfkit keeps its files
``WFKIT_STORE``           ``sqlite:///$WFKIT_HOME/wfkit.db``   the run store URL (see stores)
``WFKIT_LOGGING_LEVEL``   ``INFO``                             level of the ``wfkit`` loggers
``WFKIT_STORE_COMMIT_``   ``0.1``                              most seconds a recorded state
``INTERVAL``                                                   waits before it is committed
``WFKIT_HEARTBEAT_``      ``10``                               seconds between heartbeats of a
``INTERVAL``                                                   process with live runs
========================  ===================================  =================================

The settings are loaded on first use and cached; :func:`reload_settings` reads the
environment again. The engine asks for one setting at a time (:func:`store_url`,
:func:`logging_level`, :func:`store_commit_interval`, :func:`store_heartbeat_interval`): a
setting none of whose variables is set is its default, without loading (and importing) pydantic-settings, which keeps a script's first flow call and a
test's first run fast. Asking for a setting whose variable is set loads and validates them
all. Variable names are matched without regard to case, as pydantic-settings matches them.
"""

from __future__ import annotations

import logging
import math
import os
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from wfkit._pydantic import load_pydantic
from wfkit.exceptions import ConfigurationError

if TYPE_CHECKING:
    from pydantic_settings import BaseSettings

__all__ = [
    "DEFAULT_HOME",
    "DEFAULT_LOGGING_LEVEL",
    "DEFAULT_HEARTBEAT_INTERVAL",
    "DEFAULT_STORE_COMMIT_INTERVAL",
    "get_settings",
    "logging_level",
    "reload_settings",
    "store_commit_interval",
    "store_heartbeat_interval",
    "store_url",
]

DEFAULT_HOME = "~/.wfkit"
DEFAULT_LOGGING_LEVEL = "INFO"
DEFAULT_STORE_COMMIT_INTERVAL = 0.1  # seconds: what a SIGKILL may lose
_MAX_STORE_COMMIT_INTERVAL = 60.0
DEFAULT_HEARTBEAT_INTERVAL = 10.0  # seconds; another host judges a run Crashed after three
_HEARTBEAT_RANGE = (0.001, 3600.0)


def _default_store_url(home: Path) -> str:
    _check_home(home)
    return f"sqlite:///{home / 'wfkit.db'}"


def _check_home(home: Path) -> None:
    """Raise ConfigurationError if ``home`` (or a parent) exists and is not a directory:
    the store file could not be made there, and the OS error would not say why."""
    for path in (home, *home.parents):
        if path.exists():  # the nearest existing one decides
            if path.is_dir():
                return
            named = "it" if path == home else f"its parent {str(path)!r}"
            raise ConfigurationError(
                f"wfkit's home directory WFKIT_HOME={str(home)!r} cannot be used: {named} is "
                "a file, not a directory. Point WFKIT_HOME at a directory (it is created if "
                "missing), or move the file aside."
            )


def _configured(*variables: str) -> bool:
    """Whether any of these ``WFKIT_*`` variables is set."""
    return any(name.upper() in variables for name in os.environ)


def store_url() -> str:
    """The configured run store URL."""
    if not _configured("WFKIT_HOME", "WFKIT_STORE"):
        return _default_store_url(Path(DEFAULT_HOME).expanduser())
    return get_settings().store_url  # type: ignore[no-any-return]


def logging_level() -> str:
    """The configured level of the ``wfkit`` loggers."""
    if not _configured("WFKIT_LOGGING_LEVEL"):
        return DEFAULT_LOGGING_LEVEL
    return get_settings().logging_level  # type: ignore[no-any-return]


def store_commit_interval(value: float | None = None) -> float:
    """``value`` if given (checked), else the configured ``WFKIT_STORE_COMMIT_INTERVAL``:
    the most seconds a state recorded in a SQLite store waits before it is committed.

    Raises:
        ConfigurationError: the value is not a number of seconds from 0 to 60.
    """
    if value is not None:
        return _checked_argument(_commit_interval, value, "commit_interval")
    if not _configured("WFKIT_STORE_COMMIT_INTERVAL"):
        return DEFAULT_STORE_COMMIT_INTERVAL
    return get_settings().store_commit_interval  # type: ignore[no-any-return]


def store_heartbeat_interval(value: float | None = None) -> float:
    """``value`` if given (checked), else the configured ``WFKIT_HEARTBEAT_INTERVAL``: the
    seconds between heartbeats of a process that has live runs in a store.

    Raises:
        ConfigurationError: the value is not a number of seconds from 0.001 to 3600.
    """
    if value is not None:
        return _checked_argument(_heartbeat_interval, value, "heartbeat_interval")
    if not _configured("WFKIT_HEARTBEAT_INTERVAL"):
        return DEFAULT_HEARTBEAT_INTERVAL
    return get_settings().heartbeat_interval  # type: ignore[no-any-return]


def _checked_argument(check: Any, value: object, name: str) -> float:
    try:
        return check(value, name)  # type: ignore[no-any-return]
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from None


def _seconds(value: object, low: float, high: float) -> float | None:
    """``value`` as seconds if it is a number from ``low`` to ``high``, else None."""
    number = isinstance(value, int | float) and not isinstance(value, bool)
    seconds = float(value) if number else math.nan  # type: ignore[arg-type]
    return seconds if low <= seconds <= high else None  # NaN fails too


def _commit_interval(value: object, name: str) -> float:
    """``value`` as a commit interval, or ValueError naming ``name``."""
    seconds = _seconds(value, 0, _MAX_STORE_COMMIT_INTERVAL)
    if seconds is None:
        raise ValueError(
            f"{name}={value!r} is not a commit interval: give the most seconds a recorded "
            f"state may wait before it is committed, from 0 to {_MAX_STORE_COMMIT_INTERVAL:g} "
            f"(default {DEFAULT_STORE_COMMIT_INTERVAL}; a SIGKILL loses at most that much)."
        )
    return seconds


def _heartbeat_interval(value: object, name: str) -> float:
    """``value`` as a heartbeat interval, or ValueError naming ``name``."""
    seconds = _seconds(value, *_HEARTBEAT_RANGE)
    if seconds is None:
        low, high = _HEARTBEAT_RANGE
        raise ValueError(
            f"{name}={value!r} is not a heartbeat interval: give the seconds between "
            f"heartbeats, from {low:g} to {high:g} (default {DEFAULT_HEARTBEAT_INTERVAL:g}); "
            "another host judges a run Crashed after three intervals without one."
        )
    return seconds


def _settings_class(pydantic: ModuleType) -> type[BaseSettings]:
    # (lazy: pydantic-settings is ~37 ms more than pydantic; only a set WFKIT_* variable needs it)
    from pydantic_settings import BaseSettings, SettingsConfigDict

    class Settings(BaseSettings):
        """wfkit's settings (``WFKIT_*`` environment variables)."""

        model_config = SettingsConfigDict(env_prefix="WFKIT_", extra="ignore", frozen=True)

        home: Path = pydantic.Field(default_factory=lambda: Path(DEFAULT_HOME))
        store: str | None = None
        logging_level: str = DEFAULT_LOGGING_LEVEL
        store_commit_interval: float = DEFAULT_STORE_COMMIT_INTERVAL
        heartbeat_interval: float = DEFAULT_HEARTBEAT_INTERVAL

        @pydantic.field_validator("home")
        @classmethod
        def _expand(cls, value: Path) -> Path:
            return value.expanduser()

        @pydantic.field_validator("logging_level")
        @classmethod
        def _level(cls, value: str) -> str:
            upper = value.upper()
            if not isinstance(logging.getLevelName(upper), int):
                raise ValueError(
                    f"WFKIT_LOGGING_LEVEL={value!r} is not a logging level; "
                    "use DEBUG, INFO, WARNING, ERROR or CRITICAL."
                )
            return upper

        @pydantic.field_validator("store_commit_interval", mode="before")
        @classmethod
        def _commit(cls, value: object) -> float:
            return _commit_interval(_number(value), "WFKIT_STORE_COMMIT_INTERVAL")

        @pydantic.field_validator("heartbeat_interval", mode="before")
        @classmethod
        def _heartbeat(cls, value: object) -> float:
            return _heartbeat_interval(_number(value), "WFKIT_HEARTBEAT_INTERVAL")

        @property
        def store_url(self) -> str:
            """The configured store URL, defaulting to the SQLite file in ``home``."""
            return self.store or _default_store_url(self.home)

    return Settings


def _number(value: object) -> object:
    """An environment variable's text as a float if it is one, else as given: checked
    before pydantic's parsing, so every bad value gets the message naming the variable."""
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return value


@lru_cache(maxsize=1)
def get_settings() -> Any:
    """The current settings (cached)."""
    pydantic = load_pydantic()  # perhaps a test's first run, under frozen time
    try:
        return _settings_class(pydantic)()
    except pydantic.ValidationError as exc:
        raise ConfigurationError(f"Invalid WFKIT_* setting: {exc}") from exc


def reload_settings() -> Any:
    """Read the environment again and return the new settings."""
    get_settings.cache_clear()
    return get_settings()
