"""A strategy's settings (``SearchConfig.strategy_config``), built from a table of their
fields or from the stored shape, and written back in the stored shape: the one place that
translates between the two.

**The stored shape.** Before issue 33 a search's config held every strategy's settings side
by side, as the tables ``ppo``, ``fnas``, ``rea`` and ``replay_cfg`` (:data:`STORED_TABLES`).
Stored runs and checkpoints, config files, ``--set ppo.lr=...`` and
``create_search(fnas=...)`` spell them so, and runs still record them so: a search's chosen
strategy's settings are read from the tables that feed them (``fnas``: its own table, and
``ppo`` and ``replay_cfg`` for its controller and buffer; ``ppo``: ``ppo`` and
``replay_cfg``; ``rea``: its own), while the other tables are checked and ignored (they never
applied). Settings of a strategy registered with another class are stored under
``strategy_config``. ``FNASConfig.decision_rule`` is stored as its old spelling
(``acquisition='off'`` for ``veto``; ``FNASConfig`` keeps the two in step).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, is_dataclass, replace
from typing import Any

from fnas._config_build import build_config
from fnas.agent.buffer import ReplayConfig
from fnas.agent.ppo import PPOConfig
from fnas.errors import ConfigError
from fnas.strategies.fnas.config import FNASConfig
from fnas.strategies.rea import REAConfig
from fnas.strategies.registry import config_class

__all__ = ["STORED_TABLES", "LEGACY_DEFAULTS", "strategy_settings", "stored_tables", "merged",
           "with_legacy_defaults"]

STORED_TABLES: dict[str, type] = {"ppo": PPOConfig, "fnas": FNASConfig, "rea": REAConfig,
                                  "replay_cfg": ReplayConfig}
"""The stored shape's tables (see the module) and their classes."""


def strategy_settings(strategy: str, value: Any, old: Mapping[str, Any], strict: bool,
                      base: Any = None) -> Any:
    """The settings of registered ``strategy``: ``value`` (an instance of its class, a table
    of some of its fields, or None) over the stored shape's tables ``old`` that feed it, over
    ``base`` (or its defaults). The more specific wins: the tables of its parts (``ppo``,
    ``replay_cfg``), then its own table (``fnas``, whose ``ppo`` would be more specific than
    ``ppo``'s), then ``value``; an instance given whole is the start instead. The tables that
    do not feed it are checked, then ignored. ``strict`` refuses unknown keys.

    Raises:
        ConfigError: a bad setting (named by the key it was given under), or settings for a
            strategy that takes none.
    """
    cls = config_class(strategy)
    defaults = cls() if cls is not None else None
    home = next((n for n, kind in STORED_TABLES.items() if kind is cls), None)
    parts = [n for n in old if n != home and is_dataclass(getattr(defaults, n, None))]
    for n, v in old.items():
        if n != home and n not in parts and not isinstance(v, STORED_TABLES[n]):
            _table(STORED_TABLES[n], v, n, strict, None)  # another strategy's: checked only
    if cls is None:
        if value not in (None, {}):
            raise ConfigError(f"strategy {strategy!r} takes no settings: drop strategy_config")
        return None
    sc = base if isinstance(base, cls) else defaults
    for start in (value, old.get(home)):
        sc = start if isinstance(start, cls) else sc
    for n in parts:  # the controller's, the buffer's
        v, part = old[n], getattr(sc, n)
        sc = replace(sc, **{n: v if isinstance(v, type(part)) else
                            _table(type(part), v, n, strict, part)})
    for where, table in ((home, old.get(home)), ("strategy_config", value)):
        if table is not None and not isinstance(table, cls):
            sc = _table(cls, table, where or "strategy_config", strict, sc)
    return sc


def _table(cls: type, v: Any, where: str, strict: bool, base: Any) -> Any:
    if not isinstance(v, Mapping):
        raise ConfigError(f"config setting {where} must be a table of settings or a "
                          f"{cls.__name__}, got {type(v).__name__}")
    return build_config(cls, v, where, strict, base)


def stored_tables(sc: Any) -> dict[str, Any]:
    """Settings ``sc`` (a strategy's, or None) in the stored shape: a table for each of
    :data:`STORED_TABLES` (the defaults where ``sc`` has none), and ``strategy_config`` for
    what the settings of a strategy registered with another class hold besides them."""
    out = {n: _stored(asdict(cls())) for n, cls in STORED_TABLES.items()}
    if sc is None:
        return out
    d = asdict(sc)
    for n in STORED_TABLES:
        if n in d and is_dataclass(getattr(sc, n)):
            out[n] = d.pop(n)
    home = [n for n, cls in STORED_TABLES.items() if type(sc) is cls]
    if home:
        out[home[0]] = _stored(d)
    elif d:
        out["strategy_config"] = d
    return out


def _stored(table: dict[str, Any]) -> dict[str, Any]:
    """A table as stored: without the parts stored as tables of their own (``FNASConfig``'s
    ``ppo`` and ``replay_cfg``) and without ``decision_rule`` (its old spelling records it)."""
    return {k: v for k, v in table.items() if k not in STORED_TABLES and k != "decision_rule"}


def merged(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    """Table ``b`` over table ``a``, nested tables merged key by key."""
    out = dict(a)
    for k, v in b.items():
        both = isinstance(v, Mapping) and isinstance(out.get(k), Mapping)
        out[k] = merged(out[k], v) if both else v
    return out


LEGACY_DEFAULTS: dict[tuple[str, ...], Any] = {
    ("fnas", "screen", "decompose"): False,
    ("fnas", "screen", "features"): "off",
    ("fnas", "screen", "learn_cost"): False,
    ("replay_cfg", "per_decision"): False,
    ("replay_cfg", "max_age"): None,
    ("fnas", "screen", "rungs"): (),
    ("fnas", "screen", "eta"): 3,
    ("fnas", "screen", "zero_cost"): 0,
    ("fnas", "screen", "knowledge_rule"): "judge",
    ("fnas", "screen", "knowledge_mass"): 32.0,
    ("fnas", "screen", "stagnation"): 3,
    ("fnas", "screen", "hedge"): 0.0,
    ("fnas", "screen", "hedge_trust"): "all",
    ("threads",): 0,
    ("confirm",): 1,
}
"""Settings added after runs were recorded, with the value that gives those runs' behaviour
(issue 34: the critic's known factor and features, per-decision replay weights, fidelity
rungs, zero-cost probes: none; issue 35: knowledge judged once; issue 36: trainings on
torch's default threads, which ``--threads`` changes on a resume). A stored
config that holds the table but not the key was recorded before the setting existed, so it
resumes as it ran; a config file or ``--set`` table that leaves a key out gets the default."""


def with_legacy_defaults(stored: Mapping[str, Any]) -> dict[str, Any]:
    """A run's stored config with :data:`LEGACY_DEFAULTS` filled in where it lacks them."""
    out = merged({}, stored)
    for path, value in LEGACY_DEFAULTS.items():
        table: Any = out
        for key in path[:-1]:
            table = table.get(key) if isinstance(table, dict) else None
        if isinstance(table, dict) and path[-1] not in table:
            table[path[-1]] = value
    return out
