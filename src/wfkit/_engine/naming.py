"""Run names: readable random slugs, format templates over parameters, callables."""

from __future__ import annotations

import inspect
import random
import string
from collections.abc import Callable, Mapping
from typing import Any

from wfkit.exceptions import ConfigurationError

__all__ = ["check_name_template", "random_slug", "render_run_name", "short_suffix"]

_ADJECTIVES = (
    "amber",
    "bold",
    "brave",
    "bright",
    "calm",
    "clever",
    "cosmic",
    "crimson",
    "curious",
    "daring",
    "dapper",
    "eager",
    "electric",
    "emerald",
    "fancy",
    "fearless",
    "gentle",
    "glowing",
    "golden",
    "happy",
    "hidden",
    "humble",
    "icy",
    "indigo",
    "jolly",
    "keen",
    "lively",
    "lucky",
    "mellow",
    "misty",
    "nimble",
    "noble",
    "olive",
    "patient",
    "polite",
    "quick",
    "quiet",
    "rapid",
    "rustic",
    "sapphire",
    "scarlet",
    "silver",
    "smart",
    "snowy",
    "spry",
    "steady",
    "sunny",
    "swift",
    "tidy",
    "vivid",
    "witty",
    "zesty",
)
_ANIMALS = (
    "albatross",
    "alpaca",
    "badger",
    "beaver",
    "bison",
    "caracal",
    "cheetah",
    "condor",
    "cougar",
    "coyote",
    "crane",
    "dingo",
    "dolphin",
    "eagle",
    "falcon",
    "ferret",
    "finch",
    "gazelle",
    "gecko",
    "heron",
    "ibex",
    "jackal",
    "jaguar",
    "kestrel",
    "koala",
    "lemur",
    "lynx",
    "macaw",
    "marmot",
    "mongoose",
    "narwhal",
    "ocelot",
    "otter",
    "owl",
    "panda",
    "pelican",
    "penguin",
    "puffin",
    "quail",
    "raccoon",
    "raven",
    "salamander",
    "seal",
    "sparrow",
    "stork",
    "tapir",
    "tiger",
    "toucan",
    "vulture",
    "walrus",
    "wombat",
    "yak",
)
# Names are not part of any deterministic contract; keep them off the injectable RNG.
_names_rng = random.Random()


def random_slug() -> str:
    """A readable random run name such as ``crimson-otter``."""
    return f"{_names_rng.choice(_ADJECTIVES)}-{_names_rng.choice(_ANIMALS)}"


_HEX3 = [f"{i:03x}" for i in range(4096)]  # (made once: formatting costs more than a lookup)


def short_suffix() -> str:
    """Three random hex characters, as in a default task run name ``add-3f9``."""
    return _HEX3[_names_rng.getrandbits(12)]


def check_name_template(
    template: str, signature: inspect.Signature, *, argument: str, owner: str
) -> None:
    """Fail at decoration if ``template`` names a field that is not a parameter."""
    accepts_any = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as exc:
        raise ConfigurationError(
            f"{argument}={template!r} of {owner} is not a valid format template ({exc}). "
            "Use fields like '{name}' or '{date:%Y-%m-%d}'."
        ) from exc
    for field in fields:
        base = field.split(".", 1)[0].split("[", 1)[0]
        if base == "" or base.isdigit():
            raise ConfigurationError(
                f"{argument}={template!r} of {owner} uses a positional field {{{field}}}; "
                "name a parameter instead, like '{x}'."
            )
        if base not in signature.parameters and not accepts_any:
            raise ConfigurationError(
                f"{argument}={template!r} of {owner} names {{{base}}}, which is not one of its "
                f"parameters {list(signature.parameters)}. Use one of those names."
            )


def render_run_name(
    spec: str | Callable[..., Any] | None,
    parameters: Mapping[str, Any],
    *,
    default: Callable[[], str],
    argument: str,
) -> str:
    """Render a run name from a template, a callable, or the default."""
    if spec is None:
        return default()
    if isinstance(spec, str):
        try:
            return spec.format(**parameters)
        except (KeyError, IndexError, ValueError, AttributeError) as exc:
            raise ConfigurationError(
                f"{argument}={spec!r} could not be rendered with parameters "
                f"{dict(parameters)!r}: {exc!r}. Check the field names and format specs."
            ) from exc
    if _wants_parameters(spec):
        name = spec(parameters=dict(parameters))
    else:
        name = spec()
    if not isinstance(name, str):
        raise ConfigurationError(
            f"{argument} callable {getattr(spec, '__name__', spec)!r} returned {name!r}; "
            "it must return a string."
        )
    return name


def _wants_parameters(fn: Callable[..., Any]) -> bool:
    try:
        return "parameters" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
