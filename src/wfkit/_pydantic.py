"""Loading pydantic so that a frozen test clock cannot break it for the rest of the process.

pydantic picks a validator by class: the schema machinery it loads on first use maps
``datetime.datetime`` and ``datetime.date`` to the datetime and date validators. If that first
use happens while freezegun freezes time (inside ``wfkit.testing.harness()``), those names are
freezegun's fake classes, pydantic maps the fakes, and from then on it cannot build a model with
a real ``datetime`` field. So wfkit reaches pydantic (parameter validation, settings) only after
:func:`load_pydantic`, which, while freezegun is active, imports pydantic with the real classes
put back in the ``datetime`` module for the moment of the import (another thread that looks
``datetime.datetime`` up in that moment gets the real class too). wfkit never imports
freezegun: it only looks whether something else has.
"""

from __future__ import annotations

import datetime
import importlib
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

__all__ = ["load_pydantic"]

# The public modules whose import loads what binds the datetime classes: ``pydantic.main``
# brings the schema machinery, ``pydantic.types`` and ``pydantic.fields`` are otherwise first
# imported by the first model built.
_MODULES = ("pydantic", "pydantic.main", "pydantic.types", "pydantic.fields")
_loaded = False
_lock = threading.Lock()


def load_pydantic() -> ModuleType:
    """Import pydantic's model machinery once, with the real ``datetime`` classes, and
    return the ``pydantic`` module. wfkit reaches pydantic only through this."""
    global _loaded
    if not _loaded:
        with _lock:
            if not _loaded:
                with _real_datetime_classes():
                    for name in _MODULES:
                        # (lazy: ~45 ms, as much as ``import wfkit``; only coercing arguments
                        # and a set WFKIT_* variable need pydantic)
                        importlib.import_module(name)
                _loaded = True
    return sys.modules["pydantic"]


@contextmanager
def _real_datetime_classes() -> Iterator[None]:
    """While freezegun is active, the real ``datetime.datetime``/``datetime.date`` in the
    ``datetime`` module for the duration of the block (code that bound the fake classes
    earlier keeps them)."""
    freezegun = sys.modules.get("freezegun.api")
    real = getattr(freezegun, "real_datetime", None), getattr(freezegun, "real_date", None)
    if None in real or datetime.datetime is real[0]:
        yield
        return
    fakes = datetime.datetime, datetime.date
    datetime.datetime, datetime.date = real  # type: ignore[misc, assignment]
    try:
        yield
    finally:
        datetime.datetime, datetime.date = fakes  # type: ignore[misc]
