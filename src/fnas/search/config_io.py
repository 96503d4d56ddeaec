"""Search configurations from user files and stored dicts, validated field by field.

``load_config(path)`` reads a JSON or TOML file (TOML needs Python >= 3.11's ``tomllib``);
``search_config_from_dict(d)`` builds a :class:`SearchConfig` from a plain dict. Every field is
checked against its declared type before the dataclasses' own range checks run, and the
strategies' nested settings (``fnas``, ``rea``, ``replay_cfg``) are built once, so a bad value
is reported here, in one line, as a :class:`ConfigError`, never as a traceback later in the
search. No input makes these functions raise anything else (fuzzed in ``tests/test_fuzz.py``).

A file holds the ``SearchConfig`` fields, with ``task``, ``reward`` and ``ppo`` as tables::

    {"strategy": "fnas", "budget": 64, "batch": 8,
     "task": {"dataset": "mnist5k", "epochs": 3},
     "reward": {"metric": "macs", "target": 5e6},
     "replay_cfg": {"share": 0.5, "correction": true}}

Fields left out keep their defaults; unknown fields are refused (a typo must not be ignored).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from fnas.errors import ConfigError, FnasError

__all__ = ["load_config", "search_config_from_dict"]

_NESTED = {"task", "reward", "ppo"}


def _type_ok(value: Any, annotation: str) -> bool:
    """Does ``value`` (from JSON/TOML) fit a field annotated ``annotation``?"""
    kinds = [a.strip() for a in annotation.split("|")]
    for k in kinds:
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


def _build(cls: type, d: Any, where: str, strict: bool) -> Any:
    if not isinstance(d, dict):
        raise ConfigError(f"{where} must be a table of settings, got {type(d).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(str(k) for k in d if k not in fields)
    if unknown and strict:
        raise ConfigError(f"unknown {where} setting(s) {unknown}: expected some of "
                          f"{sorted(fields)}")
    kw = {}
    for name, value in d.items():
        if name not in fields:
            continue
        ann = fields[name].type if isinstance(fields[name].type, str) else str(fields[name].type)
        if where == "config" and name in _NESTED:
            continue
        if not _type_ok(value, ann):
            raise ConfigError(f"{where} setting {name}={value!r:.60}: expected {ann}")
        kw[name] = tuple(value) if ann.startswith("tuple") else value
    return kw


def search_config_from_dict(d: Any, strict: bool = True):
    """A validated :class:`SearchConfig` from a dict; ``strict=False`` ignores unknown keys
    (a stored config carries extras such as ``decision_signature``).

    Raises:
        ConfigError: anything wrong, in one line.
    """
    from fnas.agent.ppo import PPOConfig
    from fnas.search.loop import SearchConfig
    from fnas.tasks.reward import RewardConfig
    from fnas.tasks.trainer import TaskConfig

    try:
        kw = _build(SearchConfig, d, "config", strict)
        for name, cls in (("task", TaskConfig), ("reward", RewardConfig), ("ppo", PPOConfig)):
            if name in d:
                kw[name] = cls(**_build(cls, d[name], name, strict))
        cfg = SearchConfig(**kw)
        _check_strategy_settings(cfg)
        return cfg
    except FnasError:
        raise
    except Exception as e:  # a value the checks above let through but a class refused
        raise ConfigError(f"bad config: {type(e).__name__}: {' '.join(str(e).split())[:200]}"
                          ) from None


def _check_strategy_settings(cfg) -> None:
    """Build the nested strategy settings once, so that a bad one fails now."""
    from fnas.search.fnas_strategy import FNASConfig
    from fnas.search.rea import REAConfig

    if not isinstance(cfg.fnas, dict) or not isinstance(cfg.rea, dict):
        raise ConfigError("config settings fnas and rea must be tables")
    for key in ("decision", "critic_cfg", "screen"):
        if not isinstance(cfg.fnas.get(key, {}), dict):
            raise ConfigError(f"config setting fnas.{key} must be a table")
    allowed = {"critic", "imagined", "acquisition", "screen", "decision", "critic_cfg"}
    unknown = sorted(set(cfg.fnas) - allowed)
    if unknown:
        raise ConfigError(f"unknown fnas setting(s) {unknown}: expected some of "
                          f"{sorted(allowed)}")
    imagined = cfg.fnas.get("imagined")
    if imagined is not None and (isinstance(imagined, bool) or not isinstance(imagined, int)
                                 or imagined < 0):
        raise ConfigError(f"config setting fnas.imagined={imagined!r:.40}: expected an "
                          "integer >= 0 (as --imagined)")
    if not isinstance(cfg.fnas.get("critic", True), bool):
        raise ConfigError(f"config setting fnas.critic={cfg.fnas['critic']!r:.40}: expected "
                          "true or false")
    FNASConfig.from_dict(cfg.fnas)
    if cfg.rea:
        REAConfig(**cfg.rea)


def load_config(path: str | Path):
    """A validated :class:`SearchConfig` from a JSON (``.json``) or TOML (``.toml``) file.

    Raises:
        ConfigError: unreadable file, bad syntax, or bad settings; one line each.
    """
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise ConfigError(f"cannot read config {p}: {e.strerror or e}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"config {p} is not UTF-8 text") from None
    if p.suffix.lower() == ".toml":
        try:
            import tomllib
        except ImportError:  # Python 3.10
            raise ConfigError("TOML configs need Python >= 3.11; write the config as JSON"
                              ) from None
        try:
            d = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"config {p} is not valid TOML: {e}") from None
    else:
        try:
            d = json.loads(text)
        except (json.JSONDecodeError, RecursionError) as e:
            msg = e.msg if isinstance(e, json.JSONDecodeError) else "nested too deep"
            raise ConfigError(f"config {p} is not valid JSON: {msg}") from None
    return search_config_from_dict(d)
