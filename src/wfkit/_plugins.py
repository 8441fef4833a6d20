"""The plugin manager: wfkit's hooks called with pluggy's semantics, failing plugins isolated.

:mod:`wfkit.hookspecs` states the contract plugins rely on; this is how it is kept.
``notify`` and ``publish_state_change`` call a notification hook one of two ways:

* Through pluggy's own hook caller (``pm.hook.<name>(**kwargs)``) whenever the hook has a
  wrapper (``wrapper=True`` or ``hookwrapper=True``), a ``tryfirst``/``trylast``
  implementation or one with a defaulted argument, or hook-call monitoring (also
  ``enable_tracing``) is in force. If the call raises, the exception is traced back to the
  implementation whose code raised it (see ``_origin``) and logged on the ``wfkit.plugins``
  logger with that plugin's name; then the plain implementations pluggy had not reached
  are called, in pluggy's order, each isolated.
* Directly otherwise: every implementation is plain, and calling each in pluggy's order,
  isolated, is exactly what pluggy's caller would do, minus its cost. (Measured with
  ``benchmarks/instructions.py --workload sqlite``: a task run took 264k instructions
  through pluggy's caller, 222k directly, 217k with the old cache that skipped wrappers.)
  ``_PluginManager`` keeps these plans in a table it drops on every registration,
  unregistration and monitoring change, however they are made.
"""

from __future__ import annotations

import linecache
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from types import TracebackType
from typing import Any

import pluggy
from pluggy import HookCaller, HookImpl, PluginValidationError

import wfkit.hookspecs as hookspecs

__all__ = [
    "add_builtin_plugin",
    "notify",
    "plugin_manager",
    "publish_state_change",
    "register_plugin",
    "unregister_plugin",
]

_log = logging.getLogger("wfkit.plugins")
_lock = threading.Lock()
_pm: _PluginManager | None = None
_ENTRY_POINT_GROUP = "wfkit"
# A direct plan: each plain implementation with the positions of the arguments it asks for
# (pluggy lets it ask for fewer), or None when it takes them all in the spec's order, the
# common case, which is called with the caller's tuple as it is.
_Plan = tuple[tuple[HookImpl, tuple[int, ...] | None], ...]
_HOOK_NAMES = sorted(name for name in vars(hookspecs) if name.startswith("wfkit_"))


# Built-in plugins, added by the modules that implement them (wfkit.logging adds the store
# writer when ``import wfkit`` loads it): (name, factory), registered before any other
# plugin when the manager is created. The plugin manager sits below the run context and the
# stores, so it cannot import what the built-ins need; they come to it instead.
_builtins: list[tuple[str, Callable[[], object]]] = []


def add_builtin_plugin(name: str, factory: Callable[[], object]) -> None:
    """Have the plugin manager register ``factory()`` as ``name`` first, before the
    plugins of the entry-point group and of :func:`register_plugin` (at once, if the
    manager already exists)."""
    with _lock:
        _builtins.append((name, factory))
        pm = _pm
    if pm is not None:
        pm.register(factory(), name=name)


class _PluginManager(pluggy.PluginManager):
    """pluggy's manager, validating every registration and knowing which hooks are plain.

    ``_plans`` maps a hook name to its plain implementations in call order, or to its
    ``HookCaller`` when the hook must go through pluggy's caller. It is replaced by an
    empty dict on every change, never edited in place, so a thread that planned from the
    old implementations writes its plan into a table nobody reads any more."""

    def __init__(self) -> None:
        super().__init__("wfkit")
        self._monitors = 0
        self._plans: dict[str, _Plan | HookCaller] = {}

    def register(self, plugin: object, name: str | None = None) -> str | None:
        """Register ``plugin`` as pluggy does, and also reject an implementation of a hook
        wfkit does not have (pluggy leaves that to ``check_pending()``)."""
        try:
            registered = super().register(plugin, name)
            if registered is not None:
                _check_hook_names(self, plugin)
        except PluginValidationError:
            # (older pluggy versions can leave a plugin that failed validation half registered)
            if self.is_registered(plugin):
                super().unregister(plugin)
            raise
        finally:
            self._plans = {}
        return registered

    def unregister(self, plugin: object | None = None, name: str | None = None) -> Any | None:
        """Unregister as pluggy does; the hooks are planned again on their next call."""
        try:
            return super().unregister(plugin, name)
        finally:
            self._plans = {}

    def add_hookcall_monitoring(
        self, before: Callable[..., None], after: Callable[..., None]
    ) -> Callable[[], None]:
        """Monitor hook calls as pluggy does; while a monitor is in force (this is also how
        ``enable_tracing`` works) every hook goes through pluggy's caller."""
        undo = super().add_hookcall_monitoring(before, after)
        self._monitors += 1
        self._plans = {}

        def undo_and_replan() -> None:
            undo()
            self._monitors -= 1
            self._plans = {}

        return undo_and_replan

    def _plan_for(self, hook_name: str) -> _Plan | HookCaller:
        """How to call ``hook_name``: its plain implementations one by one, in pluggy's
        order, or its ``HookCaller`` if that would not be exactly what the caller does."""
        table = self._plans  # read before the implementations: see the class docstring
        caller = getattr(self.hook, hook_name)
        impls = caller.get_hookimpls()
        spec = caller.spec
        direct = not (
            self._monitors
            or spec is None
            or spec.kwargdefaults
            or spec.opts.get("firstresult")
            or caller.is_historic()
            or any(i.wrapper or i.hookwrapper or i.tryfirst or i.trylast for i in impls)
            or any(i.kwargnames for i in impls)
        )
        # (pluggy keeps implementations in reverse call order)
        plan = _plan(reversed(impls), spec.argnames) if direct else caller
        table[hook_name] = plan
        return plan


def _check_hook_names(pm: pluggy.PluginManager, plugin: object) -> None:
    """Raise for an implementation in ``plugin`` of a hook no spec declares (a misspelling)."""
    for caller in pm.get_hookcallers(plugin) or ():
        if caller.has_spec():
            continue
        for impl in caller.get_hookimpls():
            if impl.plugin is plugin and not impl.optionalhook:
                raise PluginValidationError(
                    plugin,
                    f"plugin {pm.get_name(plugin)!r} implements {caller.name!r}, which is not "
                    f"a wfkit hook. wfkit's hooks are {', '.join(_HOOK_NAMES)}: fix the "
                    "spelling, or mark the function @wfkit.hookimpl(optionalhook=True) if it "
                    "implements a hook some other plugin declares.",
                )


def plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, created (and entry points loaded) on first use.

    A plugin registered or unregistered on it directly (``plugin_manager().register``) is
    validated and takes effect as with :func:`register_plugin` (only the duplicate errors
    keep pluggy's wording), and wrappers, ``tryfirst``/``trylast``, hook-call monitoring
    and ``enable_tracing`` all apply to wfkit's hook calls."""
    return _pm or _create_plugin_manager()


def _create_plugin_manager() -> _PluginManager:
    global _pm
    with _lock:
        if _pm is None:
            pm = _PluginManager()
            pm.add_hookspecs(hookspecs)
            for name, factory in _builtins:
                pm.register(factory(), name=name)
            # (published before the entry points load: a plugin module that registers a
            # plugin as it is imported must find this manager, not wait for the lock)
            _pm = pm
            _load_entry_points(pm)
    return _pm


def _load_entry_points(pm: pluggy.PluginManager) -> None:
    """Register the ``wfkit`` entry-point group's plugins one by one (sorted by name), so
    one that fails to load or to validate is logged and the others still load."""
    # (importlib.metadata takes ~28 ms to import; only the first run needs it)
    from importlib.metadata import entry_points

    for name in sorted({ep.name for ep in entry_points(group=_ENTRY_POINT_GROUP)}):
        try:
            pm.load_setuptools_entrypoints(_ENTRY_POINT_GROUP, name=name)
        except Exception:
            _log.exception(
                "wfkit plugin %r from the %r entry-point group failed to load; wfkit goes on "
                "without it",
                name,
                _ENTRY_POINT_GROUP,
            )


def register_plugin(plugin: object, name: str | None = None) -> str:
    """Register a plugin object or module; returns the name it was registered under.

    Args:
        plugin: an object or module with ``@wfkit.hookimpl`` functions named after the
            hooks in :mod:`wfkit.hookspecs`.
        name: the name to register it under; pluggy derives one from the object if omitted.

    Raises:
        ValueError: the plugin, or another one under the same name, is already registered.
        pluggy.PluginValidationError: an implementation names a hook wfkit does not have,
            or asks for an argument its hook does not pass; nothing was registered.
    """
    pm = plugin_manager()
    try:
        registered = pm.register(plugin, name=name)
    except ValueError as exc:
        raise ValueError(_already_registered(pm, plugin, name)) from exc
    if registered is None:
        raise ValueError(
            f"plugin name {name!r} is blocked (plugin_manager().set_blocked); register "
            f"{plugin!r} under another name."
        )
    return registered


def _already_registered(pm: pluggy.PluginManager, plugin: object, name: str | None) -> str:
    if pm.is_registered(plugin):
        return (
            f"plugin {plugin!r} is already registered as {pm.get_name(plugin)!r}. Register it "
            "once, or unregister it first (wfkit._plugins.unregister_plugin)."
        )
    return (
        f"plugin name {name!r} is already taken by {pm.get_plugin(name or '')!r}; register "
        f"{plugin!r} under another name=."
    )


def unregister_plugin(plugin: object | None = None, name: str | None = None) -> None:
    """Unregister a plugin, given the plugin object or the name it was registered under.

    Raises:
        ValueError: nothing is registered as ``plugin`` or ``name`` (or they disagree), so
            that a typo does not leave a plugin running.
    """
    pm = plugin_manager()
    if plugin is None and name is None:
        raise ValueError("unregister_plugin() needs the plugin object or its name.")
    if (plugin is not None and not pm.is_registered(plugin)) or (
        name is not None and not pm.has_plugin(name)
    ):
        registered = ", ".join(repr(n) for n, _ in pm.list_name_plugin())
        raise ValueError(
            f"cannot unregister plugin={plugin!r}, name={name!r}: it is not registered. "
            f"Registered plugins: {registered}."
        )
    pm.unregister(plugin=plugin, name=name)


def notify(hook_name: str, **kwargs: Any) -> None:
    """Call every implementation of a notification hook, isolating their failures.

    Args:
        hook_name: a hook of :mod:`wfkit.hookspecs` whose return value is ignored.
        kwargs: every argument of the hook, by name.
    """
    argnames = getattr(plugin_manager().hook, hook_name).spec.argnames
    _dispatch(hook_name, tuple([kwargs[name] for name in argnames]))


def publish_log(record: Any) -> None:
    """Publish a run's log line on ``wfkit_log`` (as :func:`notify` does, without looking up
    the hook's argument names: every task run logs a line)."""
    _dispatch("wfkit_log", (record,))


def publish_state_change(hook_name: str, run: Any, old_state: Any, new_state: Any) -> None:
    """Publish a state change on ``wfkit_flow_run_state_changed`` or
    ``wfkit_task_run_state_changed`` (as :func:`notify` does), with the run's snapshot."""
    _dispatch(hook_name, (run, old_state, new_state))


def _dispatch(hook_name: str, args: tuple[Any, ...], plan: _Plan | None = None) -> None:
    """Call ``hook_name`` with ``args`` (its arguments in the spec's order), through
    pluggy's caller or directly (see the module docstring).

    Args:
        plan: the plain implementations to call, isolated one by one; looked up when
            omitted. (The isolating loop is here and not in a function of its own: the
            extra call cost ~2.7k instructions per state change, 8k per task run.)
    """
    if plan is None:
        pm = _pm or _create_plugin_manager()
        planned = pm._plans.get(hook_name)
        if planned is None:
            planned = pm._plan_for(hook_name)
        if not isinstance(planned, tuple):
            _call_through_pluggy(planned, args)
            return
        plan = planned
    for impl, picks in plan:
        try:
            if picks is None:
                impl.function(*args)
            else:
                impl.function(*[args[i] for i in picks])
        except Exception as exc:
            _report(impl, hook_name, exc)


def _plan(impls: Iterable[HookImpl], argnames: tuple[str, ...]) -> _Plan:
    return tuple(
        (i, None if i.argnames == argnames else tuple(argnames.index(a) for a in i.argnames))
        for i in impls
    )


def _call_through_pluggy(caller: HookCaller, args: tuple[Any, ...]) -> None:
    argnames = caller.spec.argnames if caller.spec else ()
    try:
        caller(**dict(zip(argnames, args, strict=True)))
        return
    except Exception as exc:
        failure = exc
    # (Outside the except block, so that failures of the implementations called below are
    # not chained to this one and traced back to the wrong plugin.)
    impls = caller.get_hookimpls()[::-1]
    origin, before_plain = _origin(failure, impls)
    _report(origin, caller.name, failure)
    if origin is None:
        return  # pluggy itself raised; where it stopped is unknown, so call nothing twice
    plain = [i for i in impls if not (i.wrapper or i.hookwrapper)]
    if not before_plain:
        plain = plain[plain.index(origin) + 1 :] if origin in plain else []
    _dispatch(caller.name, args, _plan(plain, argnames))


def _report(impl: HookImpl | None, hook_name: str, exc: BaseException) -> None:
    plugin_name = impl.plugin_name if impl is not None else "<unknown>"
    _log.error(
        "wfkit plugin %r failed in %s; the run goes on", plugin_name, hook_name, exc_info=exc
    )


def _origin(exc: BaseException, impls: Sequence[HookImpl]) -> tuple[HookImpl | None, bool]:
    """The implementation whose exception stopped pluggy's call, and whether it stopped
    before any plain implementation ran (a wrapper raising before its ``yield``).

    That exception is the first of ``exc``'s chain (``__context__``) raised in an
    implementation's own code; a wrapper that turned it into another exception keeps it
    as context. Its innermost implementation frame raised it, and the frame before that is
    pluggy's: starting a wrapper (``next(...)``) or resuming it (``send``/``throw``)."""
    origin: HookImpl | None = None
    before_plain = False
    for link in _chain(exc):
        entries = list(_entries(link.__traceback__))
        for k in reversed(range(len(entries))):
            impl = _impl_of(entries[k], impls)
            if impl is not None:
                origin = impl
                wrapper = impl.wrapper or impl.hookwrapper
                before_plain = wrapper and k > 0 and _starts_wrapper(entries[k - 1])
                break
    return origin, before_plain


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        yield link
        link = link.__context__


def _entries(tb: TracebackType | None) -> Iterator[TracebackType]:
    while tb is not None:
        yield tb
        tb = tb.tb_next


def _impl_of(entry: TracebackType, impls: Sequence[HookImpl]) -> HookImpl | None:
    """The implementation running in this traceback entry's frame, if any (two instances
    of one plugin class share the code; the frame's ``self`` tells them apart)."""
    code = entry.tb_frame.f_code
    matches = [i for i in impls if getattr(i.function, "__code__", None) is code]
    if len(matches) > 1 and code.co_argcount:
        first = entry.tb_frame.f_locals.get(code.co_varnames[0])
        matches = [i for i in matches if getattr(i.function, "__self__", None) is first]
    return matches[0] if matches else None


def _starts_wrapper(caller_entry: TracebackType) -> bool:
    """Whether pluggy's frame was starting a wrapper (it does so with ``next(gen)``, and
    resumes it with ``gen.send``/``gen.throw``, in every version wfkit supports)."""
    code = caller_entry.tb_frame.f_code
    return "next(" in linecache.getline(code.co_filename, caller_entry.tb_lineno)
