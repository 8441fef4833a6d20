"""What :class:`~wfkit.Flow` and :class:`~wfkit.Task` share: a wrapped function (plain,
async, generator; function, method, classmethod or staticmethod), its signature, its
source-derived metadata, and binding to instances. No lifecycle logic lives here.

``Decorated[P, R]`` is generic over the function's parameters and return type; the public
subclasses spell out, with overloads, what calling and binding them returns."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import inspect
from collections.abc import AsyncGenerator, Callable, Generator, Mapping
from typing import Any, Generic, ParamSpec, Self, TypeVar

from wfkit._engine.parameters import positional_names
from wfkit.exceptions import ConfigurationError, ReservedArgumentError

RESERVED_PARAMETERS = ("return_state", "wait_for")

# The type variables of Flow, Task and their overloads: P and R are a function's parameters
# and return type. Q and T are fresh ones for ``self`` annotations that pick an overload by
# the return type (pyright does not match a self annotation that reuses the class's own P);
# G is a generator function's return type.
P = ParamSpec("P")
R = TypeVar("R")
Q = ParamSpec("Q")
T = TypeVar("T")
G = TypeVar("G", bound="Generator[Any, Any, Any] | AsyncGenerator[Any, Any]")
H = TypeVar("H", bound="Callable[..., object]")  # a state hook, returned by its decorator


class Decorated(Generic[P, R]):
    """Base of Flow and Task: the function plus its calling convention."""

    kind = ""  # "flow" | "task"

    def __init__(self, fn: Callable[P, R]) -> None:
        self._method_kind: str | None = None
        # (Type checkers see the plain function under @classmethod/@staticmethod in a class
        # body, hence ``Callable[P, R]``; at run time the decorator gets the wrapper.)
        if isinstance(fn, classmethod):
            fn, self._method_kind = fn.__func__, "class"
        elif isinstance(fn, staticmethod):
            fn, self._method_kind = fn.__func__, "static"
        if not callable(fn):
            raise ConfigurationError(
                f"@{self.kind} needs a function; got {fn!r}. Decorate a def or async def."
            )
        self.fn: Callable[P, R] = fn  # the undecorated function
        self._bound_to: Any = None  # the instance or class a method is bound to
        # Whether the first parameter is ``self``/``cls`` (not recorded as a parameter).
        self.skips_first_parameter = self._method_kind == "class"
        self.signature = inspect.signature(fn)
        for reserved in RESERVED_PARAMETERS:
            if reserved in self.signature.parameters:
                raise ReservedArgumentError(
                    f"{self.kind} function {fn.__qualname__!r} has a parameter named "
                    f"{reserved!r}, which wfkit reserves for its own use when calling "
                    f"{self.kind}s. Rename the parameter."
                )
        # The parameter names when every one is plain positional-or-keyword (a call can
        # then be bound by position and made as ``fn(*arguments.values())``), else None.
        self.positional_names = positional_names(self.signature)
        self.isasync = inspect.iscoroutinefunction(fn)
        self.isgenerator = inspect.isgeneratorfunction(fn)
        self.isasyncgen = inspect.isasyncgenfunction(fn)
        self._version: str | None | bool = False  # False: not computed yet
        self.__doc__ = fn.__doc__
        self.__name__ = getattr(fn, "__name__", self.kind)
        self.__qualname__ = getattr(fn, "__qualname__", self.__name__)
        self.__module__ = getattr(fn, "__module__", None)  # type: ignore[assignment]
        self.__wrapped__ = fn

    def _bound_copy(self, instance: Any, owner: type | None) -> Any:
        """What ``__get__`` returns: this object, or a copy bound to ``instance`` (a method)
        or to ``owner`` (a classmethod). The copy's ``fn`` is still the plain function (the
        engine passes the instance itself), though its type no longer names ``self``."""
        if self._method_kind == "static":
            return self
        target = owner if self._method_kind == "class" else instance
        if target is None:
            return self
        bound = copy.copy(self)
        bound._bind_to(target)
        return bound

    def _bind_to(self, target: Any) -> None:
        """Make this copy a method bound to ``target`` (passed as the first argument)."""
        self._bound_to = target
        self.skips_first_parameter = target is not None or self._method_kind == "class"

    def source_file_md5(self) -> str | None:
        """MD5 hex digest of the function's source file, or None without a readable file."""
        if self._version is False:
            try:
                path = inspect.getsourcefile(self.fn)
                with open(path, "rb") as fh:  # type: ignore[arg-type]
                    self._version = hashlib.md5(fh.read(), usedforsecurity=False).hexdigest()
            except (TypeError, OSError):
                self._version = None
        return self._version  # type: ignore[return-value]

    def owner_label(self, name: str) -> str:
        return f"@{self.kind} {name!r}"

    # What flows and tasks share of their options (``self.options``, set by subclasses).
    options: Any
    _given: dict[str, Any]

    @property
    def name(self) -> str:
        return self.options.name  # type: ignore[no-any-return]

    @property
    def description(self) -> str | None:
        return self.options.description  # type: ignore[no-any-return]

    @property
    def retries(self) -> int:
        return self.options.retries  # type: ignore[no-any-return]

    @property
    def timeout_seconds(self) -> float | None:
        return self.options.timeout_seconds  # type: ignore[no-any-return]

    # Hooks added with decorators, as in Prefect (``@my_flow.on_failure``,
    # ``@my_task.on_running``): each adds ``hook(flow_or_task, run, state)`` to this
    # object's hooks of that kind and returns it.
    def on_completion(self, hook: H) -> H:
        """Decorator: also call ``hook(flow_or_task, run, state)`` when a run completes."""
        return self._add_hook("on_completion", hook)

    def on_failure(self, hook: H) -> H:
        """Decorator: also call ``hook(flow_or_task, run, state)`` when a run fails."""
        return self._add_hook("on_failure", hook)

    def on_running(self, hook: H) -> H:
        """Decorator: also call ``hook(flow_or_task, run, state)`` when a run starts."""
        return self._add_hook("on_running", hook)

    def _add_hook(self, which: str, hook: H) -> H:
        """Append ``hook`` to the ``which`` hooks (``on_failure``...) of this object, as the
        decorator form ``@my_flow.on_failure`` does in Prefect; returns ``hook``.

        Raises:
            ConfigurationError: ``hook`` is not callable.
        """
        if not callable(hook):
            raise ConfigurationError(
                f"@{self.name}.{which} decorates a hook function hook({self.kind}, run, "
                f"state); got {hook!r}."
            )
        hooks = (*getattr(self.options, which), hook)
        self.options = dataclasses.replace(self.options, **{which: hooks})
        self._given[which] = hooks  # (kept by with_options)
        self.__dict__.pop("run_spec", None)  # (a cached_property: worked out again)
        return hook

    def _replaced(self, changes: Mapping[str, Any]) -> Self:
        """A new Flow/Task with the same function and ``changes`` applied to the options."""
        fn: Any = self.fn
        if self._method_kind == "class":
            fn = classmethod(fn)
        elif self._method_kind == "static":
            fn = staticmethod(fn)
        new = type(self)(fn, **{**self._given, **changes})  # type: ignore[call-arg]
        if self._bound_to is not None:
            new._bind_to(self._bound_to)
        return new
