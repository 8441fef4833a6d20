"""Cache policies: what a task's cache key is made of.

A policy computes a key from a task call; two calls with the same key share one cached
result. The policies mirror Prefect 3's:

- :data:`INPUTS`: the task's arguments (``INPUTS - "arg"`` leaves one out);
- :data:`TASK_SOURCE`: the task function's source code;
- :data:`RUN_ID`: the flow run id (the task run id for a task called outside a flow);
- :data:`FLOW_PARAMETERS`: the parameters of the enclosing flow run;
- :data:`NO_CACHE` (alias :data:`NONE`): no key, so the task is never cached;
- :data:`DEFAULT` ``= INPUTS + TASK_SOURCE + RUN_ID``.

Policies combine with ``+`` (a :class:`CompoundCachePolicy`); ``policy - "arg"`` excludes an
argument from every :class:`Inputs` part. :class:`CacheKeyFnPolicy` wraps a legacy
``cache_key_fn(context, parameters)``, and :func:`task_input_hash` is Prefect's legacy key
function. Policies are frozen: :meth:`CachePolicy.configure` returns a changed copy.

Keys are hex digests that are the same in every process and Python session: values are turned
into a canonical JSON tree (dict items and set elements sorted, tuples told apart from lists),
and values JSON cannot hold are pickled with sets and dicts inside them put in a canonical order
first. An input that can be neither JSON-encoded nor pickled raises :class:`CacheKeyError`,
naming the argument.

Deliberate choices (Prefect differences are marked):

- ``NONE is NO_CACHE``: one object, so ``policy is NO_CACHE`` is a reliable test (Prefect has
  two equal ``_None()`` instances that mean the same thing).
- ``INPUTS`` gives no key (``None``) when nothing is left to hash: no arguments, or all of them
  excluded. A constant key would make every such task share one cache entry (Prefect returns a
  constant key when all arguments are excluded).
- Combining policies keeps the stricter isolation level (Prefect refuses to combine different
  ones); different ``key_storage`` or ``lock_manager`` values cannot be combined.
- ``NO_CACHE - "arg"`` is still ``NO_CACHE`` (Prefect would start hashing the inputs).
- :func:`task_input_hash` returns ``None`` (do not cache) for inputs it cannot hash, as in
  Prefect; the policies raise :class:`CacheKeyError` instead.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Mapping
from functools import partial
from types import CodeType, FunctionType
from typing import Any, Literal

from wfkit._cache_keys import (
    JSON_SCALARS,
    ByCode,
    Canonicalizer,
    Unhashable,
    code_of,
    digest,
    source_tree,
)
from wfkit.exceptions import ConfigurationError

__all__ = [
    "DEFAULT",
    "FLOW_PARAMETERS",
    "INPUTS",
    "NONE",
    "NO_CACHE",
    "RUN_ID",
    "TASK_SOURCE",
    "CacheKeyContext",
    "CacheKeyError",
    "CacheKeyFnPolicy",
    "CachePolicy",
    "CompoundCachePolicy",
    "FlowParameters",
    "Inputs",
    "IsolationLevel",
    "NoCache",
    "RunId",
    "TaskSource",
    "task_input_hash",
]

IsolationLevel = Literal["READ_COMMITTED", "SERIALIZABLE"]
_ISOLATION_LEVELS: tuple[str, ...] = ("READ_COMMITTED", "SERIALIZABLE")


class CacheKeyError(ConfigurationError, TypeError):
    """A cache key cannot be computed because a value can be neither JSON-encoded nor pickled.

    Attributes:
        argument: the name of the task argument (or flow parameter) holding the value.
    """

    def __init__(self, message: str, argument: str | None = None) -> None:
        super().__init__(message)
        self.argument = argument


@dataclasses.dataclass(frozen=True)
class CacheKeyContext:
    """What a cache policy may know about the task call it computes a key for.

    The engine builds one per task run and passes it to :meth:`CachePolicy.compute_key`, and
    to a ``cache_key_fn(context, parameters)`` as its ``context``.

    Attributes:
        task_name: the task's name.
        task_fn: the task's function (the decorated one), or None if unknown.
        task_run_id: the id of the task run the key is computed for.
        flow_run_id: the id of the enclosing flow run; None for a task called outside a flow.
        flow_parameters: the enclosing flow run's parameters; None outside a flow.
    """

    task_name: str
    task_fn: Callable[..., Any] | None = None
    task_run_id: str | None = None
    flow_run_id: str | None = None
    flow_parameters: Mapping[str, Any] | None = None


# policies ---------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True, kw_only=True, repr=False)
class CachePolicy:
    """The base of every cache policy: subclasses implement :meth:`compute_key`.

    Attributes:
        key_storage: where Prefect keeps cache records; accepted for compatibility, while
            wfkit keeps them in the run store.
        isolation_level: ``"READ_COMMITTED"`` (default: concurrent identical misses may each
            run the task) or ``"SERIALIZABLE"`` (one runs it, the others wait and get
            ``Cached``).
        lock_manager: accepted for Prefect compatibility; wfkit's engine does the locking.
    """

    key_storage: Any = None
    isolation_level: IsolationLevel = "READ_COMMITTED"
    lock_manager: Any = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "isolation_level", _check_isolation(self.isolation_level))

    @classmethod
    def from_cache_key_fn(
        cls, cache_key_fn: Callable[[CacheKeyContext, dict[str, Any]], str | None]
    ) -> CacheKeyFnPolicy:
        """A policy whose key is ``cache_key_fn(context, parameters)``."""
        return CacheKeyFnPolicy(cache_key_fn)

    def compute_key(
        self,
        task_ctx: CacheKeyContext,
        inputs: Mapping[str, Any],
        flow_parameters: Mapping[str, Any] | None,
        **kwargs: Any,
    ) -> str | None:
        """The cache key of one task call, or None: do not cache this call.

        Args:
            task_ctx: the task call (see :class:`CacheKeyContext`).
            inputs: the call's arguments by parameter name.
            flow_parameters: the enclosing flow run's parameters (None outside a flow).
            **kwargs: ignored; room for what later engines pass.

        Raises:
            CacheKeyError: a value the key depends on cannot be hashed.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement compute_key()")

    def configure(
        self,
        *,
        key_storage: Any = None,
        isolation_level: IsolationLevel | None = None,
        lock_manager: Any = None,
    ) -> CachePolicy:
        """A copy of this policy with the given settings changed (None keeps a setting).

        Raises:
            ConfigurationError: ``isolation_level`` is not one wfkit knows.
        """
        changes: dict[str, Any] = {
            "key_storage": key_storage,
            "isolation_level": isolation_level,
            "lock_manager": lock_manager,
        }
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def __add__(self, other: object) -> CachePolicy:
        if not isinstance(other, CachePolicy):
            return NotImplemented
        if isinstance(other, NoCache):
            return self
        return CompoundCachePolicy((self, other), **_merged_settings(self, other))

    def __sub__(self, name: object) -> CachePolicy:
        """This policy, also keyed on the inputs except ``name`` (as in Prefect)."""
        return self + Inputs(exclude=(_check_excluded(name),))

    def __repr__(self) -> str:
        return _CONSTANT_NAMES.get(type(self), type(self).__name__ + "()") + self._settings_repr()

    def _settings_repr(self) -> str:
        changed = [
            f"{name}={getattr(self, name)!r}"
            for name, default in _SETTINGS_DEFAULTS.items()
            if getattr(self, name) != default
        ]
        return f".configure({', '.join(changed)})" if changed else ""


@dataclasses.dataclass(frozen=True, repr=False)
class Inputs(CachePolicy):
    """Keyed on the task's arguments, except the names in ``exclude``."""

    exclude: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        names = (self.exclude,) if isinstance(self.exclude, str) else self.exclude
        object.__setattr__(self, "exclude", tuple(sorted({_check_excluded(n) for n in names})))

    def compute_key(
        self,
        task_ctx: CacheKeyContext,
        inputs: Mapping[str, Any],
        flow_parameters: Mapping[str, Any] | None,
        **kwargs: Any,
    ) -> str | None:
        """A digest of the arguments not excluded; None when there are none."""
        exclude = self.exclude
        kept = {n: v for n, v in inputs.items() if n not in exclude} if exclude else inputs
        if not kept:
            return None
        known = _small_inputs(kept)
        if known is not None:
            key = _inputs_keys.get(known)
            if key is not None:
                return key
        key = digest(["inputs", _named_trees(kept, "argument", task_ctx)])
        if known is not None:
            if len(_inputs_keys) >= _MAX_INPUTS_KEYS:
                _inputs_keys.clear()
            _inputs_keys[known] = key
        return key

    def __sub__(self, name: object) -> CachePolicy:
        return dataclasses.replace(self, exclude=(*self.exclude, _check_excluded(name)))

    def __repr__(self) -> str:
        excluded = "".join(f" - {name!r}" for name in self.exclude)
        return f"INPUTS{excluded}{self._settings_repr()}"


@dataclasses.dataclass(frozen=True, repr=False)
class TaskSource(CachePolicy):
    """Keyed on the task function's source code (its compiled code when there is no source)."""

    def compute_key(
        self,
        task_ctx: CacheKeyContext,
        inputs: Mapping[str, Any],
        flow_parameters: Mapping[str, Any] | None,
        **kwargs: Any,
    ) -> str | None:
        """A digest of the task function's source; None when the function is unknown."""
        fn = getattr(task_ctx, "task_fn", None)
        return None if fn is None else _source_key(fn)


@dataclasses.dataclass(frozen=True, repr=False)
class RunId(CachePolicy):
    """Keyed on the flow run id, or the task run id for a task called outside a flow."""

    def compute_key(
        self,
        task_ctx: CacheKeyContext,
        inputs: Mapping[str, Any],
        flow_parameters: Mapping[str, Any] | None,
        **kwargs: Any,
    ) -> str | None:
        """The run id itself; None when the context knows neither id."""
        run_id = getattr(task_ctx, "flow_run_id", None) or getattr(task_ctx, "task_run_id", None)
        return None if run_id is None else str(run_id)


@dataclasses.dataclass(frozen=True, repr=False)
class FlowParameters(CachePolicy):
    """Keyed on the enclosing flow run's parameters."""

    def compute_key(
        self,
        task_ctx: CacheKeyContext,
        inputs: Mapping[str, Any],
        flow_parameters: Mapping[str, Any] | None,
        **kwargs: Any,
    ) -> str | None:
        """A digest of the flow parameters (``flow_parameters``, else the context's); None
        when there are none."""
        if flow_parameters is None:
            flow_parameters = getattr(task_ctx, "flow_parameters", None)
        if not flow_parameters:
            return None
        return digest(
            ["flow_parameters", _named_trees(flow_parameters, "flow parameter", task_ctx)]
        )


@dataclasses.dataclass(frozen=True, repr=False)
class NoCache(CachePolicy):
    """No key: a task with this policy is never cached. Adding it to a policy changes nothing."""

    def compute_key(
        self,
        task_ctx: CacheKeyContext,
        inputs: Mapping[str, Any],
        flow_parameters: Mapping[str, Any] | None,
        **kwargs: Any,
    ) -> str | None:
        """Always None."""
        return None

    def __add__(self, other: object) -> CachePolicy:
        return other if isinstance(other, CachePolicy) else NotImplemented

    def __sub__(self, name: object) -> CachePolicy:
        _check_excluded(name)
        return self  # never caching, whatever is excluded

    def __reduce_ex__(self, protocol: Any) -> Any:
        # The module constant stays one object through pickling (process pools) and copies.
        return "NO_CACHE" if self == NO_CACHE else super().__reduce_ex__(protocol)


@dataclasses.dataclass(frozen=True, repr=False)
class CompoundCachePolicy(CachePolicy):
    """Keyed on the keys of several policies, in order; parts without a key are skipped and
    the compound has no key when none of its parts has one. Nested compounds are flattened."""

    policies: tuple[CachePolicy, ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        flat: list[CachePolicy] = []
        for part in self.policies:
            if not isinstance(part, CachePolicy):
                raise ConfigurationError(
                    f"CompoundCachePolicy got {part!r}, which is not a cache policy; combine "
                    "policies from wfkit.cache_policies, for example INPUTS + TASK_SOURCE."
                )
            flat.extend(part.policies if isinstance(part, CompoundCachePolicy) else [part])
        object.__setattr__(self, "policies", tuple(flat))

    def compute_key(
        self,
        task_ctx: CacheKeyContext,
        inputs: Mapping[str, Any],
        flow_parameters: Mapping[str, Any] | None,
        **kwargs: Any,
    ) -> str | None:
        """A digest of the parts' keys in order; None when no part has a key."""
        keys = [
            key
            for part in self.policies
            if (key := part.compute_key(task_ctx, inputs, flow_parameters, **kwargs)) is not None
        ]
        return digest(["compound", keys]) if keys else None

    def __sub__(self, name: object) -> CachePolicy:
        """Exclude ``name`` from every :class:`Inputs` part (adding one if there is none)."""
        name = _check_excluded(name)
        if not any(isinstance(part, Inputs) for part in self.policies):
            return dataclasses.replace(self, policies=(*self.policies, Inputs(exclude=(name,))))
        parts = tuple(part - name if isinstance(part, Inputs) else part for part in self.policies)
        return dataclasses.replace(self, policies=parts)

    def __repr__(self) -> str:
        joined = " + ".join(repr(part) for part in self.policies) or "CompoundCachePolicy()"
        settings = self._settings_repr()
        return f"({joined}){settings}" if settings else joined


@dataclasses.dataclass(frozen=True, repr=False)
class CacheKeyFnPolicy(CachePolicy):
    """Keyed by a legacy ``cache_key_fn(context, parameters) -> str | None``.

    Exceptions the function raises propagate unchanged, so the engine can run the task
    uncached with a warning, as Prefect does.
    """

    cache_key_fn: Callable[[CacheKeyContext, dict[str, Any]], str | None] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.cache_key_fn is not None and not callable(self.cache_key_fn):
            raise ConfigurationError(
                f"cache_key_fn={self.cache_key_fn!r} is not callable; pass a function "
                "(context, parameters) -> str | None, for example wfkit.tasks.task_input_hash."
            )

    def compute_key(
        self,
        task_ctx: CacheKeyContext,
        inputs: Mapping[str, Any],
        flow_parameters: Mapping[str, Any] | None,
        **kwargs: Any,
    ) -> str | None:
        """``cache_key_fn(task_ctx, inputs)``.

        Raises:
            TypeError: the function returned something other than a string or None.
        """
        if self.cache_key_fn is None:
            return None
        key = self.cache_key_fn(task_ctx, dict(inputs))
        if key is not None and not isinstance(key, str):
            raise TypeError(
                f"cache_key_fn {_callable_name(self.cache_key_fn)} returned {key!r}; a cache "
                "key function must return a string, or None to skip the cache."
            )
        return key

    def __repr__(self) -> str:
        return f"CacheKeyFnPolicy({_callable_name(self.cache_key_fn)}){self._settings_repr()}"


# validation helpers -----------------------------------------------------------------------
def _check_isolation(value: Any) -> IsolationLevel:
    raw = getattr(value, "value", value)  # an enum member such as Prefect's IsolationLevel
    if value is None:
        return "READ_COMMITTED"
    if isinstance(raw, str) and raw.upper() in _ISOLATION_LEVELS:
        return raw.upper()  # type: ignore[return-value]
    raise ConfigurationError(
        f"isolation_level={value!r} is not an isolation level wfkit knows. Use "
        "'READ_COMMITTED' (the default: concurrent identical cache misses may each run the "
        "task) or 'SERIALIZABLE' (one runs it; the others wait and get the cached result)."
    )


def _check_excluded(name: object) -> str:
    if not isinstance(name, str) or not name:
        raise TypeError(
            f"Only an argument name can be subtracted from a cache policy, got {name!r}; "
            "write INPUTS - 'arg' to leave the argument 'arg' out of the cache key."
        )
    return name


def _merged_settings(a: CachePolicy, b: CachePolicy) -> dict[str, Any]:
    """The settings of ``a + b``: the stricter isolation level, the one storage/lock manager."""
    merged: dict[str, Any] = {}
    for name in ("key_storage", "lock_manager"):
        mine, theirs = getattr(a, name), getattr(b, name)
        if mine is not None and theirs is not None and mine != theirs:
            raise ConfigurationError(
                f"Cannot combine cache policies with different {name} values ({mine!r} and "
                f"{theirs!r}); configure one of them, or both the same way."
            )
        merged[name] = mine if mine is not None else theirs
    serial = "SERIALIZABLE" in (a.isolation_level, b.isolation_level)
    merged["isolation_level"] = "SERIALIZABLE" if serial else "READ_COMMITTED"
    return merged


def _callable_name(fn: object) -> str:
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None)
    return str(name) if name else repr(fn)


# INPUTS keys of arguments that are all small str/int/bool/None values, by (name, type, value)
# triples: equal values of one exact type have one canonical JSON text, so a key hashed once
# serves every call with the same such arguments. (Floats are left out: 0.0 == -0.0.)
_inputs_keys: dict[tuple[Any, ...], str] = {}
_MAX_INPUTS_KEYS = 2048
_SMALL_TYPES = frozenset({str, int, bool, type(None)})
_SMALL_STR = 100


def _small_inputs(inputs: Mapping[str, Any]) -> tuple[Any, ...] | None:
    """``(name, type, value, ...)`` for ``_inputs_keys`` when every value is a small scalar,
    else None."""
    parts: list[Any] = []
    for name, value in inputs.items():
        kind = type(value)
        if kind not in _SMALL_TYPES:
            return None
        if kind is str and len(value) > _SMALL_STR:
            return None
        if kind is int and not -(2**63) <= value < 2**63:
            return None
        parts += (name, kind, value)
    return tuple(parts)


_source_keys = ByCode()  # TASK_SOURCE keys
_code_trees = ByCode()  # task_input_hash's canonical trees of code


def _source_key(fn: Callable[..., Any]) -> str:
    """TASK_SOURCE's key for ``fn``, worked out once per code object.

    Reading the source (which stats its file) cost more than the rest of a cache hit. For a
    plain function (after ``__wrapped__``), the source depends only on its code object, which
    never changes: the key is the source of the code that runs, even if the file is edited
    later. Other callables are read every time.
    """
    target = inspect.unwrap(fn) if hasattr(fn, "__wrapped__") else fn
    if type(target) is not FunctionType:
        return digest(["task_source", source_tree(fn)])
    return _source_keys.get(target.__code__, lambda: digest(["task_source", source_tree(fn)]))  # type: ignore[no-any-return]


def _named_trees(values: Mapping[str, Any], what: str, task_ctx: Any) -> list[Any]:
    """``[[name, tree], ...]`` sorted by name; an unhashable value raises CacheKeyError."""
    canon: Canonicalizer | None = None  # one for all the values: it tracks cycles
    trees: list[Any] = []
    for name in sorted(values, key=str):
        value = values[name]
        if type(value) not in JSON_SCALARS:  # a scalar is its own tree
            try:
                value = (canon or (canon := Canonicalizer())).tree(value)
            except Unhashable as exc:
                raise CacheKeyError(
                    _unhashable_message(exc, what, str(name), task_ctx), str(name)
                ) from (exc.__cause__ or exc)
        trees.append([str(name), value])
    return trees


def _unhashable_message(exc: Unhashable, what: str, name: str, task_ctx: Any) -> str:
    task_name = getattr(task_ctx, "task_name", None)
    of_task = f" of task {task_name!r}" if task_name else ""
    what_is = f"is a {exc.type_name} object"
    if exc.path:
        what_is = f"holds a {exc.type_name} object at {name}{''.join(exc.path)}"
    if what == "argument":
        fix = (
            f"Leave it out of the key with cache_policy=INPUTS - {name!r} (or DEFAULT - "
            f"{name!r}), or give the task a cache_key_fn(context, parameters) that builds the "
            "key from the arguments that matter."
        )
    else:
        fix = (
            "Use a cache policy without FLOW_PARAMETERS, or give the task a "
            "cache_key_fn(context, parameters) that builds the key itself."
        )
    return (
        f"Cannot compute the cache key{of_task}: {what} {name!r} {what_is}, which can be "
        f"neither JSON-encoded nor pickled ({exc.reason}). {fix}"
    )


# the policies ----------------------------------------------------------------------------
INPUTS: Inputs = Inputs()
TASK_SOURCE: TaskSource = TaskSource()
RUN_ID: RunId = RunId()
FLOW_PARAMETERS: FlowParameters = FlowParameters()
NO_CACHE: NoCache = NoCache()
NONE: NoCache = NO_CACHE  # Prefect's second name for "no caching"; the same object here
DEFAULT: CachePolicy = INPUTS + TASK_SOURCE + RUN_ID

_CONSTANT_NAMES: dict[type, str] = {
    TaskSource: "TASK_SOURCE",
    RunId: "RUN_ID",
    FlowParameters: "FLOW_PARAMETERS",
    NoCache: "NO_CACHE",
}
_SETTINGS_DEFAULTS: dict[str, Any] = {
    "key_storage": None,
    "isolation_level": "READ_COMMITTED",
    "lock_manager": None,
}


def task_input_hash(context: CacheKeyContext, arguments: Mapping[str, Any]) -> str | None:
    """Prefect's legacy ``cache_key_fn``: a key from the task's name, its compiled code and
    its arguments; None (do not cache) when an argument cannot be hashed.

    Use it as ``@task(cache_key_fn=task_input_hash)``.
    """
    fn = getattr(context, "task_fn", None)
    code = code_of(fn) if fn is not None else None
    try:
        code_tree = None if code is None else _code_trees.get(code, partial(_code_tree, code))
        arguments_tree = Canonicalizer().tree(dict(arguments))
    except Unhashable:
        return None
    return digest(
        ["task_input_hash", [getattr(context, "task_name", None), code_tree, arguments_tree]]
    )


def _code_tree(code: CodeType) -> Any:
    return Canonicalizer().tree(code)
