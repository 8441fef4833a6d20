"""The reusable JSON encoder gives json.dumps's text."""

from __future__ import annotations

import json
from typing import Any

import pytest

from wfkit._json import reusable_encoder

VALUES: list[Any] = [
    {"x": 1, "y": [1, 2.5, None, True, False], "z": 'é\n"q"', 3: "int key"},
    ["a", {"nested": {"deep": [float("nan"), float("inf"), -0.0]}}],
    "plain",
    12345678901234567890,
    {},
    [],
]


@pytest.mark.parametrize("separators", [(",", ":"), (", ", ": ")])
@pytest.mark.parametrize("value", VALUES)
def test_same_text_as_json_dumps(value: Any, separators: tuple[str, str]) -> None:
    encode = reusable_encoder(repr, separators=separators)
    assert encode(value) == json.dumps(value, default=repr, separators=separators)


def test_default_is_used_for_other_values_and_none_means_type_error() -> None:
    assert reusable_encoder(repr, separators=(",", ":"))({"s": {1}}) == '{"s":"{1}"}'
    with pytest.raises(TypeError):
        reusable_encoder(None, separators=(",", ":"))({"s": {1}})


def test_a_value_containing_itself_raises_recursion_error() -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(RecursionError):
        reusable_encoder(repr, separators=(",", ":"))(loop)
