"""Stable hashing for cache keys: the same value gives the same digest in every process.

Python's ``hash()`` of a string changes between sessions, dicts keep insertion order and sets
iterate in an order that follows ``hash()``; none of that may reach a key. Values are turned
into a canonical JSON tree (lists and scalars only): built-in containers are walked, with dict
items and set elements sorted by their encoding and a tag telling tuples from lists; other
values become the digest of a pickle in which every dict and set is replaced by its canonical
tree and every function by its code. Unpicklable values raise :class:`Unhashable`.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import io
import weakref
from collections.abc import Callable
from types import CodeType, FunctionType
from typing import Any

__all__ = [
    "JSON_SCALARS",
    "ByCode",
    "Canonicalizer",
    "Unhashable",
    "code_of",
    "digest",
    "encode",
    "source_tree",
]

_KEY_LENGTH = 32  # hex characters kept of a sha256 digest: 128 bits
JSON_SCALARS = frozenset({str, int, float, bool, type(None)})
_CONTAINERS = (list, tuple, dict, set, frozenset)
_CONTAINER_TAGS: dict[type, str] = {
    list: "list",
    tuple: "tuple",
    dict: "dict",
    set: "set",
    frozenset: "frozenset",
}
_KEY_STEP = object()  # path step: a dict key
_SET_STEP = object()  # path step: a set element


class Unhashable(Exception):
    """A value can be neither JSON-encoded nor pickled.

    Attributes:
        type_name: the qualified name of the value's type.
        reason: why pickling failed.
        path: the steps from the top-level value to it (``["['k']", "[0]"]``), for messages.
    """

    def __init__(self, value: object, reason: str) -> None:
        super().__init__(reason)
        self.type_name = type(value).__qualname__
        self.reason = reason
        self.path: list[str] = []


def encode(tree: Any) -> str:
    """The canonical JSON text of a tree (ASCII only, no whitespace)."""
    return (_encode or _make_encoder())(tree)


def digest(tree: Any) -> str:
    """A 32-character hex digest (sha256) of a tree's canonical JSON."""
    text = (_encode or _make_encoder())(tree)
    return hashlib.sha256(text.encode("ascii")).hexdigest()[:_KEY_LENGTH]


_encode: Callable[[Any], str] | None = None


def _make_encoder() -> Callable[[Any], str]:
    """Build ``encode``'s function once. Trees hold no cycles (the canonicalizer breaks
    them), so the encoder needs no cycle markers."""
    global _encode
    # (lazy: json is ~1.1 ms of ``import wfkit.cache_policies``, which user modules do)
    from wfkit._json import reusable_encoder

    _encode = reusable_encoder(None, separators=(",", ":"))
    return _encode


class Canonicalizer:
    """Turns values into canonical trees; use one per key (it tracks cycles).

    ``stack`` holds the ids of the containers and functions being walked, so that a value
    containing itself becomes a back reference instead of an endless recursion.
    """

    def __init__(self) -> None:
        self.stack: list[int] = []

    def tree(self, value: Any) -> Any:
        """The canonical tree of ``value``.

        Raises:
            Unhashable: ``value`` holds something that can be neither walked nor pickled.
        """
        if type(value) in JSON_SCALARS:
            return value
        if isinstance(value, _CONTAINERS) or isinstance(value, FunctionType):
            marker = id(value)
            if marker in self.stack:
                return ["cycle", len(self.stack) - self.stack.index(marker)]
            self.stack.append(marker)
            try:
                if isinstance(value, FunctionType):
                    return self._function(value)
                return self._container(value)
            finally:
                self.stack.pop()
        if isinstance(value, CodeType):
            return self._code(value)
        if type(value) is bytes:
            return ["bytes", hashlib.sha256(value).hexdigest()]
        return ["pickle", self._pickle_digest(value)]

    def child(self, value: Any, step: object) -> Any:
        """``tree(value)``, adding ``step`` to the path of an unhashable value inside it."""
        try:
            return self.tree(value)
        except Unhashable as exc:
            exc.path.insert(0, _format_step(step))
            raise

    def _container(self, value: Any) -> list[Any]:
        kind = type(value)
        tag = _CONTAINER_TAGS.get(kind) or f"{kind.__module__}.{kind.__qualname__}"
        if isinstance(value, dict):
            pairs = [[self.child(k, _KEY_STEP), self.child(v, k)] for k, v in value.items()]
            return [tag, sorted(pairs, key=encode)]
        if isinstance(value, set | frozenset):
            return [tag, sorted((self.child(item, _SET_STEP) for item in value), key=encode)]
        return [tag, [self.child(item, index) for index, item in enumerate(value)]]

    def _function(self, fn: FunctionType) -> list[Any]:
        # By content, not by name: a lambda or local function is hashable and a changed body
        # changes the key. Captured values and defaults count; the globals it reads do not.
        cells = [
            self.child(cell.cell_contents, "<closure>") if _cell_is_set(cell) else ["empty"]
            for cell in fn.__closure__ or ()
        ]
        defaults = [
            self.child(fn.__defaults__, "<defaults>"),
            self.child(fn.__kwdefaults__, "<defaults>"),
        ]
        code = self._code(fn.__code__)
        return ["function", fn.__module__, fn.__qualname__, code, defaults, cells]

    def _code(self, code: CodeType) -> list[Any]:
        consts = [self.tree(const) for const in code.co_consts]
        return ["code", code.co_code.hex(), consts, list(code.co_names)]

    def _pickle_digest(self, value: Any) -> str:
        buffer = io.BytesIO()
        try:
            _stable_pickler()(buffer, self).dump(value)
        except Unhashable:
            raise
        except RecursionError as exc:
            raise Unhashable(value, "it is nested too deeply") from exc
        except Exception as exc:  # pickle raises TypeError, PicklingError, AttributeError, ...
            raise Unhashable(value, f"{type(exc).__name__}: {exc}") from exc
        return hashlib.sha256(buffer.getbuffer()).hexdigest()


@functools.cache
def _stable_pickler() -> Callable[[io.BytesIO, Canonicalizer], Any]:
    """A pickler class whose output does not depend on dict insertion or set iteration order
    (built on first use)."""
    import pickle  # (lazy: ~1.3 ms of ``import wfkit.cache_policies``, which user modules do)

    class StablePickler(pickle.Pickler):
        def __init__(self, file: io.BytesIO, canon: Canonicalizer) -> None:
            super().__init__(file, protocol=5)
            self.canon = canon

        def persistent_id(self, obj: Any) -> Any:
            # Called for every object, built-in ones included: swap dicts and sets (an
            # object's __dict__, a model's set of field names) for their canonical trees.
            return self.canon.tree(obj) if isinstance(obj, dict | set | frozenset) else None

        def reducer_override(self, obj: Any) -> Any:
            if isinstance(obj, FunctionType) and obj is not function_token:
                return function_token, (self.canon.tree(obj),)
            return NotImplemented

    return StablePickler


def function_token(tree: Any) -> None:
    """Stands for a function in a canonical pickle (never called: keys are not unpickled)."""


def _cell_is_set(cell: Any) -> bool:
    try:
        cell.cell_contents  # noqa: B018 - reading an empty cell raises ValueError
    except ValueError:
        return False
    return True


def _format_step(step: object) -> str:
    if step is _KEY_STEP:
        return " (a dict key)"
    if step is _SET_STEP:
        return " (a set element)"
    if isinstance(step, str) and step.startswith("<"):
        return step
    return f"[{step!r}]"


def source_tree(fn: Callable[..., Any]) -> Any:
    """The source code of ``fn`` (a function, method, partial or callable object), or its
    compiled code when the source cannot be found (a REPL, ``python -c``, ``exec``)."""
    target: Any = inspect.unwrap(fn)
    while isinstance(target, functools.partial):
        target = target.func
    kinds = (inspect.isfunction, inspect.ismethod, inspect.isclass, inspect.isbuiltin)
    if not any(is_kind(target) for is_kind in kinds):
        target = type(target)  # a callable object: its class holds the code
    try:
        return ["source", inspect.getsource(target)]
    except (OSError, TypeError):
        pass
    code = code_of(target)
    if code is None:  # a builtin: its name is all there is
        name = getattr(target, "__qualname__", None) or getattr(target, "__name__", None)
        return ["name", getattr(target, "__module__", None), str(name)]
    return Canonicalizer().tree(code)


def code_of(fn: Any) -> CodeType | None:
    """The code object that runs when ``fn`` is called, if it has one."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    fn = getattr(fn, "__wrapped__", fn)
    code = getattr(fn, "__code__", None)
    if code is None and not isinstance(fn, type):
        call = getattr(type(fn), "__call__", None)  # noqa: B004 - its code, not callability
        code = getattr(call, "__code__", None)
    return code if isinstance(code, CodeType) else None


class ByCode:
    """Values worked out once per code object (which never changes); an entry goes when its
    code object does."""

    def __init__(self) -> None:
        self._entries: dict[int, tuple[weakref.ref[CodeType], Any]] = {}

    def get(self, code: CodeType, compute: Callable[[], Any]) -> Any:
        """The value for ``code``, from ``compute()`` the first time."""
        known = self._entries.get(id(code))
        if known is not None and known[0]() is code:
            return known[1]
        value = compute()
        marker, entries = id(code), self._entries
        entries[marker] = (weakref.ref(code, lambda _: entries.pop(marker, None)), value)
        return value
