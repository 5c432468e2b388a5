"""Plain JSON <-> frozen dataclasses, generically: one `from_dict`/`to_dict` for every typed spec and decision.

`from_dict(cls, data, path)` builds `cls` from plain JSON by its type hints (nested dataclasses, tuple[X, ...],
fixed tuples, dict[str, X], unions such as `X | None`, int/float/str/bool, Any), rejecting unknown keys,
missing required keys and wrong types with a SpecError that names the field path (`inputs.model.moe.experts`,
`decision.groups[2].ranks[0]`); `to_plain(obj)` is its inverse (tuples become lists). `Typed` gives a
dataclass the two as methods. `schema_of(cls)` is the JSON Schema the hints imply (every field described,
required ones required, nothing else allowed). A field's `metadata` may carry `schema` (extra JSON Schema
keywords, e.g. an enum; `items` is merged into the items schema) and `omit_none` (the key is left out,
not written as null, when the value is None).
"""

import dataclasses
import types
import typing
from typing import Any, TypeVar

from costmodels.errors import SpecError

T = TypeVar("T")


def _convert(hint: Any, value: Any, path: str) -> Any:
    """`value` (plain JSON) as `hint`: dataclasses, tuple[X, ...], fixed tuples, X | None, int/float/str/bool."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        for inner in options[:-1]:  # the first alternative that accepts the value
            try:
                return _convert(inner, value, path)
            except SpecError:
                continue
        return _convert(options[-1], value, path)
    if hint is Any:
        return value
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return from_dict(hint, value, path)
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise SpecError(f"must be an object, got {type(value).__name__}", field=path)
        value_hint = args[1] if len(args) == 2 else Any
        return {k: _convert(value_hint, v, f"{path}.{k}") for k, v in value.items()}
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise SpecError(f"must be a list, got {type(value).__name__}", field=path)
        items = args[:1] * len(value) if len(args) == 2 and args[1] is Ellipsis else args
        if len(items) != len(value):
            raise SpecError(f"must have {len(items)} items, got {len(value)}", field=path)
        return tuple(_convert(h, v, f"{path}[{i}]") for i, (h, v) in enumerate(zip(items, value, strict=True)))
    ok = isinstance(value, int | float) and not isinstance(value, bool) if hint is float else (
        isinstance(value, hint) and (hint is bool or not isinstance(value, bool)))
    if not ok:
        raise SpecError(f"must be {hint.__name__}, got {value!r}", field=path)
    return float(value) if hint is float else value


def from_dict(cls: type[T], data: Any, path: str = "") -> T:
    """`cls` built from the plain dict `data`; `path` names `data` in error messages (e.g. "inputs.model")."""
    if not isinstance(data, dict):
        raise SpecError(f"must be an object, got {type(data).__name__}", field=path)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise SpecError(f"unknown keys {unknown}; valid: {', '.join(fields)}", field=path)
    hints = typing.get_type_hints(cls)
    values = {}
    for name, f in fields.items():
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if name not in data:
            if required:
                raise SpecError("is required", field=f"{path}.{name}" if path else name)
            continue
        values[name] = _convert(hints[name], data[name], f"{path}.{name}" if path else name)
    return cls(**values)


def to_plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {}
        for f in dataclasses.fields(value):
            item = getattr(value, f.name)
            if item is None and f.metadata.get("omit_none"):
                continue
            out[f.name] = to_plain(item)
        return out
    if isinstance(value, tuple):
        return [to_plain(v) for v in value]
    return value


class Typed:
    """Mixin: one `to_dict`/`from_dict` pair for a frozen dataclass."""

    __slots__ = ()

    def to_dict(self) -> dict[str, Any]:
        plain: dict[str, Any] = to_plain(self)
        return plain

    @classmethod
    def from_dict(cls: type[T], data: Any, path: str = "") -> T:
        return from_dict(cls, data, path)


def _schema_of_hint(hint: Any) -> dict[str, Any]:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return {"anyOf": [_schema_of_hint(a) if a is not type(None) else {"type": "null"} for a in args]}
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return schema_of(hint)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return {"type": "array", "items": _schema_of_hint(args[0])}
        return {"type": "array", "prefixItems": [_schema_of_hint(a) for a in args], "minItems": len(args),
                "maxItems": len(args)}
    return {"type": {int: "integer", float: "number", str: "string", bool: "boolean"}[hint]}


def schema_of(cls: type) -> dict[str, Any]:
    """The JSON Schema of a decision type: every field described, required ones required, nothing else allowed."""
    hints = typing.get_type_hints(cls)
    props: dict[str, Any] = {}
    required = []
    for f in dataclasses.fields(cls):
        prop = _schema_of_hint(hints[f.name])
        extra = f.metadata.get("schema", {})
        if "items" in extra:
            prop = {**prop, "items": {**prop["items"], **extra["items"]}}
        prop.update({k: v for k, v in extra.items() if k != "items"})
        props[f.name] = prop
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            required.append(f.name)
    return {"type": "object", "required": required, "properties": props, "additionalProperties": False}
