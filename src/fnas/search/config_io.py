"""Search configurations from user files and stored dicts, validated field by field.

``load_config(path)`` reads a JSON or TOML file (TOML needs Python >= 3.11's ``tomllib``);
``search_config_from_dict(d)`` builds a :class:`SearchConfig` from a plain dict. Every field,
nested ones included, is checked against its declared type before the dataclasses' own range
checks run (:mod:`fnas._config_build`), so a bad value is reported here, in one line
naming its dotted key (``fnas.screen.kappa``), as a :class:`ConfigError`, never as a traceback
later in the search. No input makes these functions raise anything else (fuzzed in
``tests/test_fuzz.py``).

A file holds the ``SearchConfig`` fields, with a table per nested dataclass: ``task``,
``reward``, and the strategy's settings as runs record them (:mod:`fnas.strategies.settings`):
``fnas`` (``FNASConfig``, with ``screen``, ``decision`` and ``critic_cfg`` tables of its
own), ``ppo`` (``PPOConfig``), ``rea`` (``REAConfig``) and ``replay_cfg`` (``ReplayConfig``),
or ``strategy_config`` (the chosen strategy's, whatever its class)::

    {"strategy": "fnas", "budget": 64, "batch": 8,
     "task": {"dataset": "mnist5k", "epochs": 3},
     "reward": {"metric": "macs", "target": 5e6},
     "fnas": {"acquisition": "ucb", "screen": {"candidates": 256, "kappa": 1.0}},
     "replay_cfg": {"share": 0.5, "correction": true}}

In TOML the nested tables are ``[fnas]``, ``[fnas.screen]``, ``[replay_cfg]``... Fields left
out keep their defaults; unknown fields are refused at every level (a typo must not be
ignored).
"""

from __future__ import annotations

import json
from pathlib import Path

from fnas._io import read_source
from fnas.errors import ConfigError
from fnas.search.config import search_config_from_dict

__all__ = ["load_config", "read_config", "search_config_from_dict"]


def load_config(path: str | Path):
    """A validated :class:`SearchConfig` from a JSON (``.json``) or TOML (``.toml``) file.

    Raises:
        ConfigError: unreadable file (or a FIFO, device or folder: refused unread), bad
        syntax, or bad settings; one line each.
    """
    return search_config_from_dict(read_config(path))


def read_config(path: str | Path) -> dict:
    """The table of settings a JSON (``.json``) or TOML (``.toml``) config file holds, not yet
    checked (``fnas search`` puts ``--set`` and its flags over it before building it).

    Raises:
        ConfigError: unreadable file (or a FIFO, device or folder: refused unread), bad
        syntax, or not a table; one line each.
    """
    p = Path(path)
    try:
        raw = read_source(p, "config")
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
        except (tomllib.TOMLDecodeError, ValueError) as e:  # ValueError: a 5,000-digit int
            raise ConfigError(f"config {p} is not valid TOML: {e}") from None
    else:
        try:
            d = json.loads(text)
        except (ValueError, RecursionError) as e:  # ValueError: a 5,000-digit number too
            msg = e.msg if isinstance(e, json.JSONDecodeError) else (
                "nested too deep" if isinstance(e, RecursionError) else str(e).split(";")[0])
            raise ConfigError(f"config {p} is not valid JSON: {msg}") from None
    if not isinstance(d, dict):
        raise ConfigError(f"config {p} must be a table of settings, got {type(d).__name__}")
    return d
