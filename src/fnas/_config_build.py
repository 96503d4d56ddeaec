"""Config dataclasses built from plain dicts (a user's file, a stored run's JSON, a Python
caller's dict), field by field.

Each value is checked against its field's annotation before the class's own range checks run;
a field annotated with a config dataclass (``SearchConfig.task``, ``FNASConfig.screen``...) is
built from its table the same way, recursively. Every failure is one :class:`ConfigError` line
naming the dotted key (``fnas.screen.kappa``). ``strict`` refuses unknown keys (a user's typo);
without it they are ignored (a stored run may carry keys of an older version). A class with
a ``table_over(table, base)`` classmethod rewrites a table before it is applied over ``base``
(``FNASConfig``: two settings that are one).
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from collections.abc import Mapping
from typing import Any

from fnas.errors import ConfigError

__all__ = ["build_config", "config_kwargs", "nested_fields"]


@functools.cache
def nested_fields(cls: type) -> dict[str, type]:
    """{field: dataclass} for the fields of dataclass ``cls`` that are dataclasses themselves."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)
            if isinstance(hints.get(f.name), type) and dataclasses.is_dataclass(hints[f.name])}


def _annotation(f: dataclasses.Field) -> str:
    """A field's annotation as written (``"int | None"``), whether or not it is a string."""
    return f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))


def _type_ok(value: Any, annotation: str) -> bool:
    """Does ``value`` (from JSON/TOML) fit a field annotated ``annotation``?"""
    for k in (a.strip() for a in annotation.split("|")):
        if k == "None" and value is None:
            return True
        if k == "bool" and isinstance(value, bool):
            return True
        if k == "int" and isinstance(value, int) and not isinstance(value, bool):
            return True
        if k == "float" and isinstance(value, (int, float)) and not isinstance(value, bool):
            return True  # ranges (and NaN) are checked by the class itself
        if k == "str" and isinstance(value, str):
            return True
        if k.startswith("dict") and isinstance(value, dict):
            return True
        if k.startswith("tuple") and isinstance(value, (list, tuple)):
            return True
    return False


def _key(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def config_kwargs(cls: type, d: Any, where: str = "", strict: bool = True,
                  base: Any = None) -> dict[str, Any]:
    """The keyword arguments of dataclass ``cls`` that table ``d`` gives, each type-checked,
    nested tables built into their dataclasses (over ``base``'s, when given). ``where`` is the
    table's dotted key ("" for the top level).

    Raises:
        ConfigError: not a table, an unknown key (``strict``), a value of the wrong type, or a
            nested table its class refuses.
    """
    if not isinstance(d, Mapping):
        raise ConfigError(f"{'config setting ' + where if where else 'config'} must be a table "
                          f"of settings, got {type(d).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(str(k) for k in d if k not in fields)
    if unknown and strict:
        raise ConfigError(f"unknown config setting(s) {[_key(where, k) for k in unknown]}: "
                          f"expected some of {', '.join(sorted(fields))}")
    nested = nested_fields(cls)
    kw: dict[str, Any] = {}
    for name, value in d.items():
        if name not in fields:
            continue
        if name in nested:
            sub = nested[name]
            kw[name] = value if isinstance(value, sub) else build_config(
                sub, value, _key(where, name), strict,
                None if base is None else getattr(base, name))
            continue
        ann = _annotation(fields[name])
        if not _type_ok(value, ann):
            raise ConfigError(f"config setting {_key(where, name)}={value!r:.60}: "
                              f"expected {ann}")
        kw[name] = tuple(value) if ann.startswith("tuple") else value
    return kw


def build_config(cls: type, d: Any, where: str = "", strict: bool = True,
                 base: Any = None) -> Any:
    """A ``cls`` from table ``d``: the keys it gives over ``base``'s values (or the class's
    defaults). ``where``, the table's dotted key, names the bad setting in errors.

    Raises:
        ConfigError: any bad setting, in one line naming its key.
    """
    over = getattr(cls, "table_over", None)
    if over is not None and isinstance(d, Mapping):
        try:  # a class whose settings interlock says what a partial table means over base
            d = over(d, base)
        except ConfigError as e:
            raise ConfigError(f"config settings {where}: {e}" if where else str(e)) from None
    kw = config_kwargs(cls, d, where, strict, base)
    try:
        return cls(**kw) if base is None else dataclasses.replace(base, **kw)
    except ConfigError as e:
        if not where:  # the top level's own messages name their field
            raise
        raise ConfigError(_blame(cls, kw, where, e)) from None


def _blame(cls: type, kw: dict[str, Any], where: str, e: ConfigError) -> str:
    """``e`` (a class's range check) prefixed by the key that fails on its own, or by the
    table when only a combination fails (``rea``: sample > population)."""
    for name, value in kw.items():
        try:
            cls(**{name: value})
        except Exception:  # noqa: BLE001  (a probe: whatever fails names the culprit)
            return f"config setting {where}.{name}: {e}"
    return f"config settings {where}: {e}"
