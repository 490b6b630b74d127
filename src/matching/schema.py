"""Typed sections from plain mappings: a dataclass's fields read from a dict, each value checked by its
type hint (int, float, str, bool, Literal, lists, optional values, nested sections) and by the bounds in
its field's metadata (`positive`, `between`). The first bad value raises ConfigError with one line that
names the dotted key and says what is allowed. A section may collect the keys it does not declare into
one mapping field, named by its class attribute `OPEN_FIELD`."""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Literal, Union

from matching.errors import ConfigError

# The largest integer a param may hold: LightGBM, faiss and torch take counts as 32-bit C ints, and a
# larger one overflows inside them (a crash, not an error).
INT_MAX = 2**31 - 1


def positive(maximum: float | None = None) -> dict:
    return {"min": 1, "max": maximum}


def between(low: float, high: float, low_open: bool = False, high_open: bool = False) -> dict:
    return {"min": low, "max": high, "low_open": low_open, "high_open": high_open}


def fail(key: str, value: Any, allowed: str) -> typing.NoReturn:
    raise ConfigError(f"params.yaml: {key} is {value!r}; use {allowed}")


def distinct(key: str, values: list) -> None:
    if not values:
        fail(key, values, "a list of at least one name")
    repeated = sorted({v for v in values if values.count(v) > 1})
    if repeated:
        fail(key, values, f"each name once ({', '.join(map(str, repeated))} repeated)")


def _describe(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin is Literal:
        return "one of " + ", ".join(map(str, typing.get_args(hint)))
    if origin is list:
        return f"a list of {_describe(typing.get_args(hint)[0])}"
    if origin in (Union, types.UnionType):
        return " or ".join("null" if a is type(None) else _describe(a) for a in typing.get_args(hint))
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(hint, str(hint))


def convert(value: Any, hint: Any, key: str, bounds: dict) -> Any:
    origin = typing.get_origin(hint)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return section(hint, value, key)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in typing.get_args(hint):
            return None
        inner = [a for a in typing.get_args(hint) if a is not type(None)][0]
        return convert(value, inner, key, bounds)
    if origin is Literal:
        if value not in typing.get_args(hint):
            fail(key, value, _describe(hint))
        return value
    if origin is list:
        if not isinstance(value, list):
            fail(key, value, _describe(hint))
        return [convert(v, typing.get_args(hint)[0], key, {}) for v in value]
    if origin is dict or hint is Any:
        return value
    numeric = hint in (int, float) and isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int and not (numeric and float(value).is_integer()):
        fail(key, value, _describe(hint))
    if hint is float and not numeric:
        fail(key, value, _describe(hint))
    if hint in (str, bool) and not isinstance(value, hint):
        fail(key, value, _describe(hint))
    value = hint(value)
    low, high = bounds.get("min"), bounds.get("max")
    low_open, high_open = bounds.get("low_open"), bounds.get("high_open")
    if hint is int and high is None and value > INT_MAX:  # the implicit limit, named only to a value above it
        high, high_open = INT_MAX, False
    too_low = low is not None and (value < low or low_open and value == low)
    too_high = high is not None and (value > high or high_open and value == high)
    if too_low or too_high:
        texts = [f"> {low}" if low_open else f">= {low}"] if low is not None else []
        texts += [f"< {high}" if high_open else f"<= {high}"] if high is not None else []
        fail(key, value, f"{_describe(hint)} {' and '.join(texts)}")
    return value


def section(cls: type, values: Any, key: str) -> Any:
    if not isinstance(values, dict):
        fail(key, values, f"a mapping with keys {', '.join(f.name for f in dataclasses.fields(cls))}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    extra = getattr(cls, "OPEN_FIELD", None)
    unknown = [k for k in values if k not in fields or k == extra]
    if unknown and not extra:
        fail(f"{key}.{unknown[0]}".lstrip("."), values[unknown[0]], f"only the keys {', '.join(fields)}")
    kwargs = {}
    for name, spec in fields.items():
        if name == extra:
            kwargs[name] = {k: values[k] for k in unknown}
            continue
        dotted = f"{key}.{name}".lstrip(".")
        if name not in values:
            if spec.default is not dataclasses.MISSING:
                continue
            raise ConfigError(f"params.yaml: {dotted} is missing; add it (see conf/ and `make params`)")
        kwargs[name] = convert(values[name], hints[name], dotted, dict(spec.metadata))
    return cls(**kwargs)


def as_dict(config: Any) -> dict:
    """A config (or section) back as the plain mapping params.yaml holds, open sections flattened."""
    out = {}
    for spec in dataclasses.fields(config):
        value = getattr(config, spec.name)
        if getattr(type(config), "OPEN_FIELD", None) == spec.name:
            out.update(value)
        else:
            out[spec.name] = as_dict(value) if dataclasses.is_dataclass(value) else value
    return out
