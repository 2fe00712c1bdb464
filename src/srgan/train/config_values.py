"""Checking one config value against its type hint: what `--set` and a TOML file may give
for a bool, an int, a finite float, a string, a list or a table, and one-line errors that
name the key."""

from __future__ import annotations

import math
import reprlib
import typing
from typing import Any


class ConfigError(ValueError):
    """A config file or override is malformed; the message names the key."""


def type_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) if not typing.get_args(hint) else str(hint)


def coerce(value: Any, hint: Any, key: str) -> Any:
    """Check `value` against a type hint; ints pass as floats, a string as a one-item list."""
    origin = typing.get_origin(hint)
    bad = ConfigError(f"{key}: expected {type_name(hint)}, got {short_repr(value)}")
    if hint is bool:
        if not isinstance(value, bool):
            raise bad
        return value
    if hint is int:  # 64 bits at most: 1e23 steps or a seed of 10**30 is a typo, not a plan
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
        if abs(value) >= 2**63:
            raise ConfigError(f"{key}: expected an integer of at most 19 digits, got "
                              f"{short_repr(value)}")
        return value
    if hint is float:  # nan passes every range check, and no key means anything by inf
        if (isinstance(value, bool) or not isinstance(value, int | float)
                or not math.isfinite(value)):
            raise ConfigError(f"{key}: expected a finite number, got {short_repr(value)}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise bad
        return value
    if origin is list:
        (item,) = typing.get_args(hint)
        if isinstance(value, str) and item is str:
            value = [value]
        if not isinstance(value, list | tuple):
            raise bad
        return [coerce(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        _, item = typing.get_args(hint)
        if isinstance(value, str):  # `--set loss.content=vgg54`: one term, weight 1
            value = {value: 1.0}
        elif isinstance(value, list | tuple):  # ["vgg54", "mse"] or [["vgg54", 1.0], ...]
            pairs = {}
            for v in value:
                if isinstance(v, str):
                    pairs[v] = 1.0
                elif isinstance(v, list | tuple) and len(v) == 2 and isinstance(v[0], str):
                    pairs[v[0]] = v[1]
                else:
                    raise bad
            value = pairs
        if not isinstance(value, dict):
            raise bad
        return {str(k): coerce(v, item, f"{key}.{k}") for k, v in value.items()}
    raise ConfigError(f"{key}: unsupported type {hint}")


def short_repr(value: Any) -> str:
    """repr for error messages: a pathological value (a list nested 200 deep) stays one line."""
    r = reprlib.Repr()
    r.maxlevel, r.maxstring, r.maxother, r.maxlist, r.maxdict = 3, 60, 60, 6, 6
    return r.repr(value)
