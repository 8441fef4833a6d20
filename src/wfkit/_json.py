"""A JSON encoder made once.

``json.dumps`` (and ``JSONEncoder.encode``) builds a new C encoder on every call, which costs
more than encoding a small value. :func:`reusable_encoder` builds that C encoder once and
returns a function giving the same text.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from json import encoder as json_encoder
from typing import Any

__all__ = ["reusable_encoder"]


def reusable_encoder(
    default: Callable[[Any], Any] | None, *, separators: tuple[str, str]
) -> Callable[[Any], str]:
    """``lambda value: json.dumps(value, default=default, separators=separators)``, made
    once (``ensure_ascii`` and ``allow_nan`` as in ``dumps``).

    It keeps no cycle markers (a markers dict shared between threads would not be safe): a
    value that contains itself raises RecursionError instead of ValueError.
    """
    item_separator, key_separator = separators
    make = getattr(json_encoder, "c_make_encoder", None)
    if make is None:  # an interpreter without the C accelerator
        return json.JSONEncoder(default=default, separators=separators).encode
    encode = make(
        None,  # cycle markers
        default if default is not None else json.JSONEncoder().default,
        json_encoder.encode_basestring_ascii,
        None,  # indent
        key_separator,
        item_separator,
        False,  # sort_keys
        False,  # skipkeys
        True,  # allow_nan
    )
    return lambda value: "".join(encode(value, 0))
