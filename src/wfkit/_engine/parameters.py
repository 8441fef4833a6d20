"""Binding call arguments to a signature, and validating them with pydantic."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import Any

from wfkit._pydantic import load_pydantic
from wfkit.exceptions import ParameterBindError

__all__ = [
    "ParameterValidator",
    "bind_arguments",
    "bind_parameters",
    "parameter_schema",
    "positional_names",
]

_SIMPLE = frozenset({int, float, str, bool, bytes, dict, list, tuple, set, frozenset})


def bind_parameters(
    owner: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[inspect.BoundArguments, dict[str, Any], dict[str, Any]]:
    """Bind a call of ``owner`` (a Flow or Task; a bound method's instance or class goes
    first) to its signature.

    Returns ``(bound, passed, parameters)``: the bound arguments to call with, the arguments
    given explicitly, and the parameters to record (defaults applied, ``self``/``cls`` left
    out). ``passed`` may be the ``parameters`` dict itself (when every parameter was
    passed); ``parameters`` never aliases ``bound.arguments``.

    Raises:
        ParameterBindError: the arguments do not fit the signature.
    """
    if owner._bound_to is not None:
        args = (owner._bound_to, *args)
    signature, names = owner.signature, owner.positional_names
    if names is not None and not kwargs and len(args) == len(names):
        # Every parameter given positionally: nothing to check, no default to apply.
        arguments = dict(zip(names, args, strict=True))
        bound = inspect.BoundArguments(signature, arguments)  # type: ignore[arg-type]
        parameters = dict(arguments)
        if owner.skips_first_parameter and parameters:
            parameters.pop(names[0], None)
        return bound, parameters, parameters  # all were passed: one dict serves as both
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError as exc:
        expected = ", ".join(str(p) for p in signature.parameters.values())
        raise ParameterBindError(
            f"{owner.kind} {owner.name!r} was called with arguments that do not fit its "
            f"signature ({expected}): {exc}. Got args={args!r}, kwargs={kwargs!r}."
        ) from None
    passed = dict(bound.arguments)
    bound.apply_defaults()
    parameters = dict(bound.arguments)
    if owner.skips_first_parameter and parameters:
        first = next(iter(signature.parameters))
        parameters.pop(first, None)
        passed.pop(first, None)
    return bound, passed, parameters


def positional_names(signature: inspect.Signature) -> tuple[str, ...] | None:
    """The parameter names when all are plain positional-or-keyword parameters, else None."""
    params = signature.parameters.values()
    if all(p.kind is p.POSITIONAL_OR_KEYWORD for p in params):
        return tuple(signature.parameters)
    return None


def bind_arguments(
    owner: Any, arguments: dict[str, Any]
) -> tuple[inspect.BoundArguments, dict[str, Any], dict[str, Any]]:
    """Like :func:`bind_parameters`, for arguments already bound by name (as
    ``bound.arguments``, so ``*args``/``**kwargs`` parameters hold their tuple/dict; a bound
    method's instance or class is among them)."""
    signature, names = owner.signature, owner.positional_names
    if names is not None and tuple(arguments) == names:
        # Every parameter given, in the signature's order: no default to apply.
        bound = inspect.BoundArguments(signature, dict(arguments))  # type: ignore[arg-type]
        parameters = dict(arguments)
        if owner.skips_first_parameter and parameters:
            parameters.pop(names[0], None)
        return bound, parameters, parameters
    bound = inspect.BoundArguments(signature, dict(arguments))  # type: ignore[arg-type]
    passed = dict(bound.arguments)
    bound.apply_defaults()
    parameters = dict(bound.arguments)
    if owner.skips_first_parameter and parameters:
        first = next(iter(signature.parameters))
        parameters.pop(first, None)
        passed.pop(first, None)
    return bound, passed, parameters


class ParameterValidator:
    """Validates and coerces explicitly passed arguments from the function's type hints.

    Arguments whose hint is a plain builtin class and whose value is exactly of that class
    are accepted without calling pydantic, so most calls never import it.
    """

    def __init__(self, fn: Callable[..., Any], signature: inspect.Signature) -> None:
        self._fn = fn
        self._signature = signature
        self._hints: dict[str, Any] | None = None
        self._model: Any = None

    def _resolve_hints(self) -> dict[str, Any]:
        if self._hints is None:
            try:
                hints = typing.get_type_hints(self._fn)
            except Exception:  # some forward reference does not resolve: take the others
                hints = self._resolvable_hints()
            self._hints = {
                name: hints[name]
                for name, p in self._signature.parameters.items()
                if name in hints
                and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
                and hints[name] is not typing.Any
            }
        return self._hints

    def _resolvable_hints(self) -> dict[str, Any]:
        namespace = getattr(self._fn, "__globals__", {})
        hints: dict[str, Any] = {}
        for name, parameter in self._signature.parameters.items():
            annotation = parameter.annotation
            if annotation is inspect.Parameter.empty:
                continue
            try:
                hints[name] = (
                    eval(annotation, namespace) if isinstance(annotation, str) else annotation
                )
            except Exception:  # a name local to where the function was defined: skip it
                continue
        return hints

    def validate(self, passed: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
        """Return ``(coerced_values, problems)``; ``problems`` lists one line per bad argument."""
        hints = self._resolve_hints()
        if not hints:
            return passed, []
        if all(
            name not in hints or (hints[name] in _SIMPLE and type(value) is hints[name])
            for name, value in passed.items()
        ):
            return passed, []
        pydantic = load_pydantic()  # (lazy: ~45 ms; most calls never get here)
        model_class = self._get_model()  # may drop hints it cannot validate
        to_check = {k: v for k, v in passed.items() if k in self._resolve_hints()}
        try:
            model = model_class.model_validate(to_check)
        except pydantic.ValidationError as exc:
            problems = [
                f"- {'.'.join(str(p) for p in err['loc'])}: {err['msg']} (got {err.get('input')!r})"
                for err in exc.errors()
            ]
            return passed, problems
        coerced = dict(passed)
        coerced.update({k: getattr(model, k) for k in to_check})
        return coerced, []

    def _get_model(self) -> Any:
        if self._model is None:
            hints = self._resolve_hints()
            fields = {name: self._field(name, hint) for name, hint in hints.items()}
            try:
                self._model = self._build(fields)
            except Exception:
                # Some hint pydantic cannot build a validator for (a plain Protocol, say):
                # leave those parameters unvalidated rather than failing every call.
                usable = {}
                for name, field in fields.items():
                    try:
                        self._build({name: field})
                    except Exception:
                        continue
                    usable[name] = field
                self._hints = {name: hints[name] for name in usable}
                self._model = self._build(usable)
        return self._model

    def _field(self, name: str, hint: Any) -> tuple[Any, Any]:
        default = self._signature.parameters[name].default
        return (hint, ... if default is inspect.Parameter.empty else default)

    def _build(self, fields: dict[str, Any]) -> Any:
        pydantic = load_pydantic()
        return pydantic.create_model(
            f"{getattr(self._fn, '__name__', 'fn')}_parameters",
            __config__=pydantic.ConfigDict(arbitrary_types_allowed=True),
            **fields,
        )


_ParameterSchema: Any = None


def parameter_schema(fn: Callable[..., Any], signature: inspect.Signature, skip_first: bool) -> Any:
    """The JSON schema of ``fn``'s parameters, as Prefect's ``ParameterSchema``: a pydantic
    model with ``title="Parameters"``, ``type="object"``, ``properties`` (one per parameter:
    ``title``, ``position``, its type's schema, ``default``), ``required`` and
    ``definitions`` (the models the types refer to). A parameter whose type pydantic cannot
    describe gets no type in its schema; ``*args``/``**kwargs`` are left out."""
    pydantic = load_pydantic()  # (lazy: ~45 ms; only asking for the schema needs it)
    try:
        hints = typing.get_type_hints(fn)
    except Exception:  # an unresolvable forward reference: no types
        hints = {}
    properties: dict[str, Any] = {}
    required: list[str] = []
    definitions: dict[str, Any] = {}
    parameters = list(signature.parameters.values())[1 if skip_first else 0 :]
    for position, p in enumerate(parameters):
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        schema: dict[str, Any] = {"title": p.name, "position": position}
        hint = hints.get(p.name, Any)
        if hint is not Any:
            try:
                described = pydantic.TypeAdapter(hint).json_schema(
                    ref_template="#/definitions/{model}"
                )
            except Exception:  # an arbitrary class pydantic has no schema for
                described = {}
            definitions.update(described.pop("$defs", {}))
            schema.update(described)
        if p.default is p.empty:
            required.append(p.name)
        else:
            schema["default"] = _json_default(p.default)
        properties[p.name] = schema
    return _schema_model(pydantic)(
        properties=properties, required=required, definitions=definitions
    )


def _json_default(value: Any) -> Any:
    """A default as the schema shows it: itself when JSON can hold it, else its repr."""
    import json  # (lazy: only the schema needs it)

    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
    return value


def _schema_model(pydantic: Any) -> Any:
    """The ``ParameterSchema`` model class, defined once pydantic is loaded."""
    global _ParameterSchema
    if _ParameterSchema is None:

        class ParameterSchema(pydantic.BaseModel):  # type: ignore[name-defined, misc]
            """The parameters of a flow as a JSON schema (Prefect's ``ParameterSchema``)."""

            title: typing.Literal["Parameters"] = "Parameters"
            type: typing.Literal["object"] = "object"
            properties: dict[str, Any] = pydantic.Field(default_factory=dict)
            required: list[str] = pydantic.Field(default_factory=list)
            definitions: dict[str, Any] = pydantic.Field(default_factory=dict)

        _ParameterSchema = ParameterSchema
    return _ParameterSchema
