"""Wrappers that change how a task argument is treated: ``unmapped``, ``allow_failure``,
``quote``, ``opaque`` (as in Prefect's ``prefect.utilities.annotations``; public under
:mod:`wfkit.utilities.annotations`)."""

from __future__ import annotations

from typing import Generic, TypeVar

__all__ = ["BaseAnnotation", "allow_failure", "opaque", "quote", "unmapped"]

T = TypeVar("T")


class BaseAnnotation(Generic[T]):
    """A value wrapped to carry an instruction to the engine; ``unwrap()`` returns it."""

    __slots__ = ("value",)

    def __init__(self, value: T) -> None:
        self.value = value

    def unwrap(self) -> T:
        return self.value

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.value == other.value  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self), id(self.value)))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.value!r})"


class unmapped(BaseAnnotation[T]):  # noqa: N801 - Prefect's name
    """In ``task.map(...)``: pass this value whole to every mapped run instead of mapping
    over it."""


class allow_failure(BaseAnnotation[T]):  # noqa: N801
    """Around an upstream future: run the downstream task even if the upstream did not
    complete; it receives the upstream's exception as the value."""


class quote(BaseAnnotation[T]):  # noqa: N801
    """Pass the value as it is: wfkit does not look inside it for futures (cheap for large
    collections)."""


class opaque(BaseAnnotation[T]):  # noqa: N801
    """Resolve a future (or state) passed whole, without looking inside the value: a
    future's result is handed over as it is, never walked or rebuilt (for example a
    dataclass whose ``__post_init__`` must not run again)."""
