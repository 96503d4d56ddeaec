"""A search's configuration: :class:`SearchConfig`, with a typed dataclass per concern (the
task, the reward, and the chosen strategy's settings, whose class the strategy registered:
:mod:`fnas.strategies.registry`), and the registry of spaces. A config that comes from a dict
(a user's file through :mod:`fnas.search.config_io`, a stored run) is validated field by field
(:mod:`fnas._config_build`).

**The stored shape.** Before issue 33 a config held every strategy's settings side by side, as
the tables ``ppo``, ``fnas``, ``rea`` and ``replay_cfg``; stored runs, checkpoints, config
files, ``--set ppo.lr=...`` and ``create_search(fnas=...)`` spell them so. That stays the
shape runs record (:meth:`SearchConfig.to_dict`) and one that every input takes: the chosen
strategy's settings are read from the tables that feed them (``fnas``: its own table, and
``ppo`` and ``replay_cfg`` for its controller and buffer; ``ppo``: ``ppo`` and
``replay_cfg``; ``rea``: its own), and the others are checked and ignored (they never applied).
A strategy registered with another settings class is stored under ``strategy_config``.

``STRATEGIES`` (re-exported from :mod:`fnas.strategies.registry`) maps a name to a factory
``(space, SearchConfig) -> Strategy`` and ``SPACES`` a name to a factory taking the task's
input size; register your own in them (or use ``fnas.register_space``). A space may also be
named ``"module:attr"``: it is imported.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from fnas._config_build import build_config, config_kwargs, nested_fields
from fnas._io import import_user_module
from fnas.agent.buffer import ReplayConfig
from fnas.agent.ppo import PPOConfig
from fnas.agent.threads import MAX_THREADS
from fnas.errors import ConfigError, FnasError
from fnas.space.factorized import FactorizedSpace
from fnas.space.macro import macro_space
from fnas.space.mnas import mnas_space
from fnas.strategies.fnas.config import FNASConfig
from fnas.strategies.rea import REAConfig
from fnas.strategies.registry import STRATEGIES, capabilities, replay_config
from fnas.strategies.settings import STORED_TABLES, merged, stored_tables, strategy_settings
from fnas.tasks.reward import RewardConfig
from fnas.tasks.trainer import MAX_COUNT, MAX_SEED, TaskConfig, check_int

__all__ = ["SearchConfig", "STRATEGIES", "SPACES", "STORED_TABLES", "replay_config",
           "space_factory", "search_config_from_dict"]



SPACES = {"mnas": mnas_space, "macro": lambda input_size=32: macro_space()}
"""Space factories taking the task's input size."""


class FixedSpace:
    """A registered space object as a factory: the same space whatever the input size."""

    def __init__(self, space: FactorizedSpace) -> None:
        self.space = space

    def __call__(self, input_size: int = 224) -> FactorizedSpace:
        return self.space


def space_factory(name: str) -> Any:
    """The factory of space ``name``: a registered one (``SPACES``), or ``"module:attr"``
    naming a ``FactorizedSpace`` or a factory in an importable module, the current folder
    searched first as ``python -m`` does (imported and registered under that name, so that a
    stored run resumes with it).

    Raises:
        ConfigError: an unknown name, or one that cannot be imported.
    """
    if name in SPACES:
        return SPACES[name]
    if isinstance(name, str) and ":" in name:
        mod, _, attr = name.partition(":")
        try:
            obj = getattr(import_user_module(mod), attr)
        except Exception as e:  # noqa: BLE001  (the user's module: any error is one line)
            raise ConfigError(f"space {name!r} cannot be imported: {type(e).__name__}: "
                              f"{' '.join(str(e).split())[:160]}") from None
        if isinstance(obj, FactorizedSpace):
            SPACES[name] = FixedSpace(obj)
        elif callable(obj):
            SPACES[name] = obj
        else:
            raise ConfigError(f"space {name!r} is a {type(obj).__name__}: expected a "
                              "FactorizedSpace or a factory of one")
        return SPACES[name]
    raise ConfigError(f"unknown space {name!r}: expected one of {sorted(SPACES)} (a space "
                      "made in Python: pass the object, or fnas.register_space it first), or "
                      "module:attribute naming a FactorizedSpace")


@dataclass(frozen=True)
class SearchConfig:
    """A whole search: what to search, on what, how long, with which strategy.

    The nested settings (``task``, ``reward``, ``strategy_config``) are typed dataclasses; a
    dict of some of their fields is accepted too (converted, each value checked, unknown keys
    refused). The stored shape's tables are keywords too (``ppo``, ``fnas``, ``rea``,
    ``replay_cfg``: see the module), so ``SearchConfig(fnas={"screen": {"candidates": 64}})``
    is ``SearchConfig(strategy_config={"screen": {"candidates": 64}})``; and read back as
    properties of the same names.
    """

    space: str = "mnas"
    """Search space: a registered name (``mnas``, ``macro``, or ``fnas.register_space``), or
    ``module:attr`` naming a space in an importable module; its input-size variant follows
    the task's images"""
    strategy: str = "fnas"
    """Search strategy name: ``fnas`` (PPO + critic), ``ppo`` (vanilla), ``rea``, ``random``,
    or a registered one (``fnas.strategies.register_strategy``)."""
    strategy_config: Any = None
    """The strategy's settings: an instance of the dataclass it was registered with
    (``fnas``: ``FNASConfig``; ``ppo``: ``PPOStrategyConfig``; ``rea``: ``REAConfig``;
    ``random``: none, None), or a table of some of its fields; None: its defaults."""
    budget: int = 32
    """Architectures to sample in total (cached ones count: they are samples)."""
    batch: int = 8
    """Architectures per iteration (one controller update each)."""
    seed: int = 0
    """Seeds the strategy and every rollout; same seed, same search."""
    task: TaskConfig = field(default_factory=TaskConfig)
    """The proxy task."""
    reward: RewardConfig = field(default_factory=RewardConfig)
    """The reward."""
    knowledge: str = "all"
    """Earlier experiments whose real results pre-train the critic: ``none``, ``all`` (every
    experiment in the store with the same decisions) or ``RUN,RUN`` (names or ids)."""
    knowledge_as: str = "measurements"
    """What earlier runs teach: ``measurements`` (their accuracy, latency and MACs re-scored
    with this search's reward) or ``rewards`` (the rewards they were given)."""
    budget_counts: str = "samples"
    """What the budget counts: ``samples`` (every sampled architecture) or ``trained`` (real
    evaluations only: cached repeats are free, as when benchmarking queries)."""
    max_samples: int | None = None
    """With ``budget_counts='trained'``: stop after this many samples anyway (a converged
    policy may only resample known architectures). Default: 20 x budget."""
    checkpoint: bool = True
    """Write a resumable checkpoint after every update (benchmark runs may skip it)."""
    pool: str = "auto"
    """Knowledge pool of trained block weights: ``on``, ``off``, or ``auto`` (on for the
    ``fnas`` strategy with an evaluator that trains, off otherwise)."""
    pool_epochs: int | None = None
    """Epochs of a pool-initialised training; default half the task's (at least 1)."""
    replay: str = "auto"
    """Experience buffer: ``on``, ``off``, or ``auto`` (on for ``fnas``, off otherwise). With
    it, each batch of ``batch`` is part fresh samples, part replayed earlier real results;
    its settings are the strategy's (``strategy_config.replay_cfg``)."""
    budget_seconds: float | None = None
    """Also stop once the search's compute is spent: its wall-clock seconds (trainings plus
    the search's own overhead: sampling, critic, updates, store), summed over resumes."""
    eval_timeout: float | None = None
    """Seconds one evaluation may take: past them it is stopped and recorded as failed
    (status ``error``). Evaluations then run in a worker process
    (:mod:`fnas.execution.workers`) or as Ray tasks, which can be stopped."""
    eval_isolation: str = "auto"
    """Where local evaluations run: ``process`` (a worker process, which ``eval_timeout`` and
    ``budget_seconds`` can stop), ``none`` (in this process: a running evaluation is waited
    for), or ``auto`` (a worker when ``eval_timeout`` or ``budget_seconds`` is set and the
    objective can be sent to one, else in this process)."""
    threads: int = 1
    """Torch threads each local training (and your objective, run locally) uses; 0: torch's
    default (one per core). One by default: a proxy training gains little from more, and on a
    machine that runs other work their spin-waits thrash (10-30x slower, issue 36). It sets
    how fast a run goes, not what it finds, so a resume may change it
    (``optimize(threads=)``, ``fnas search --resume RUN --threads N``)."""
    confirm: int = 1
    """Results an architecture needs before it can be the run's best (racing, as SMAC's
    intensification does; 1: no racing). With 2 or more, a result that beats the best is
    trained again with new seeds, a few a batch, and the run returns the architecture with
    the best mean among those confirmed; repeats count in the budget
    (:mod:`fnas.knowledge.racing`). For a noisy
    evaluation (a short training, one seed), where one lucky result would otherwise be what
    the search returns. 1 (the default): every result counts at once, nothing is repeated."""
    objective: str | None = None
    """What scores architectures when it is not the proxy task ``task`` (the objective's
    signature, set by ``fnas.create_search``): recorded so that a run says what it searched."""
    direction: str = "maximize"
    """What the search does with the objective's value: ``maximize`` it, or ``minimize`` it (a
    loss; an objective function's only, ``fnas.create_search(direction=...)``: its reward is
    the negated value)."""

    def __post_init__(self) -> None:
        for name, cls in nested_fields(SearchConfig).items():
            value = getattr(self, name)
            if isinstance(value, Mapping):  # a Python caller's dict of settings
                object.__setattr__(self, name, build_config(cls, value, name))
            elif not isinstance(value, cls):
                raise ConfigError(f"config setting {name} must be a table of settings or a "
                                  f"{cls.__name__}, got {type(value).__name__}")
        space_factory(self.space)  # a registered name, or "module:attribute" imported now
        if self.strategy not in STRATEGIES:
            raise ConfigError(
                f"unknown strategy {self.strategy!r}: expected one of {sorted(STRATEGIES)}")
        value = self.strategy_config
        object.__setattr__(self, "strategy_config", (
            strategy_settings(self.strategy, value.value, value.old, True)
            if isinstance(value, _OldSpelling) else
            strategy_settings(self.strategy, value, {}, True)))
        # integers as integers, in range, before anything is written (a float or a bool budget
        # would be recorded, then read back as a damaged row)
        ints = {"budget": (1, MAX_COUNT), "seed": (0, MAX_SEED), "batch": (2, MAX_COUNT),
                "max_samples": (1, MAX_COUNT), "pool_epochs": (1, MAX_COUNT),
                "threads": (0, MAX_THREADS), "confirm": (1, 100)}
        for name, (lo, hi) in ints.items():
            value = getattr(self, name)
            if value is not None or name in ("budget", "seed", "batch", "threads", "confirm"):
                object.__setattr__(self, name, check_int(value, name, lo, hi))
        if self.pool not in ("auto", "on", "off"):
            raise ConfigError(f"pool={self.pool!r}: expected 'auto', 'on' or 'off'")
        if self.replay not in ("auto", "on", "off"):
            raise ConfigError(f"replay={self.replay!r}: expected 'auto', 'on' or 'off'")
        if self.replay == "on" and not capabilities(self.strategy).policy:
            raise ConfigError(f"strategy {self.strategy!r} has no policy to replay experience "
                              "into: use replay 'off' or 'auto'")
        if self.knowledge_as not in ("measurements", "rewards"):
            raise ConfigError(f"knowledge_as={self.knowledge_as!r}: 'measurements' or 'rewards'")
        if self.budget_counts not in ("samples", "trained"):
            raise ConfigError(f"budget_counts={self.budget_counts!r}: 'samples' or 'trained'")
        if self.budget_seconds is not None and not (
                isinstance(self.budget_seconds, (int, float)) and not isinstance(
                    self.budget_seconds, bool) and 0 < self.budget_seconds < float("inf")):
            raise ConfigError(f"budget_seconds={self.budget_seconds!r:.40} must be a positive "
                              "number of seconds")
        if self.eval_timeout is not None and not (
                isinstance(self.eval_timeout, (int, float)) and not isinstance(
                    self.eval_timeout, bool) and 0 < self.eval_timeout < float("inf")):
            raise ConfigError(f"eval_timeout={self.eval_timeout!r:.40} must be a positive "
                              "number of seconds")
        if self.direction not in ("maximize", "minimize"):
            raise ConfigError(f"direction={self.direction!r:.40}: expected 'maximize' or "
                              "'minimize'")
        if self.eval_isolation not in ("auto", "process", "none"):
            raise ConfigError(f"eval_isolation={self.eval_isolation!r:.40}: expected 'auto', "
                              "'process' or 'none'")
        if self.eval_timeout is not None and self.eval_isolation == "none":
            raise ConfigError("eval_timeout needs evaluations that can be stopped: "
                              "eval_isolation 'none' runs them in this process")

    @property
    def sample_cap(self) -> int:
        """Most architectures a run may sample."""
        if self.budget_counts == "samples":
            return self.budget
        return self.max_samples or 20 * self.budget

    @property
    def ppo(self) -> PPOConfig:
        """The controller's settings (``strategy_config.ppo``; the defaults without one)."""
        return getattr(self.strategy_config, "ppo", None) or PPOConfig()

    @property
    def fnas(self) -> FNASConfig:
        """The ``fnas`` strategy's settings (``strategy_config``; the defaults for another)."""
        sc = self.strategy_config
        return sc if isinstance(sc, FNASConfig) else FNASConfig()

    @property
    def rea(self) -> REAConfig:
        """Regularized evolution's settings (``strategy_config``; the defaults for another)."""
        sc = self.strategy_config
        return sc if isinstance(sc, REAConfig) else REAConfig()

    @property
    def replay_cfg(self) -> ReplayConfig:
        """The experience buffer's settings (``strategy_config.replay_cfg``; the defaults
        without one)."""
        return getattr(self.strategy_config, "replay_cfg", None) or ReplayConfig()

    def to_dict(self) -> dict[str, Any]:
        """Every setting as plain JSON-able values, nested settings as dicts, the strategy's in
        the stored shape (see the module: what a run records); ``from_dict`` turns it back
        into an equal config."""
        d = asdict(self)
        del d["strategy_config"]
        if d["direction"] == "maximize":  # what every run did before it existed: its shape
            del d["direction"]            # stays as it was (a resume reads it back so)
        return {**d, **stored_tables(self.strategy_config)}

    def with_settings(self, d: dict[str, Any]) -> SearchConfig:
        """A copy with the settings of table ``d`` (as in a config file) over this config's:
        a nested table changes only the keys it gives (``{"fnas": {"screen": {"kappa": 1}}}``
        keeps the other ``fnas`` settings). A new ``strategy`` keeps the settings the two
        strategies share (``ppo``, ``replay_cfg``), as their tables.

        Raises:
            ConfigError: an unknown key or a bad value, in one line naming its dotted key.
        """
        return _built(d, strict=True, base=self)

    @classmethod
    def from_dict(cls, d: dict[str, Any], strict: bool = False) -> SearchConfig:
        """From a dict, each field type-checked (``fnas.search.config_io``); ``strict``
        refuses unknown keys (a stored config has extras, a user's file must not).

        Raises:
            ConfigError: a bad value, in one line.
        """
        return search_config_from_dict(d, strict=strict)


# ---- the stored shape (see the module) -------------------------------------------------------
@dataclass(frozen=True)
class _OldSpelling:
    """The stored shape's tables given to ``SearchConfig(...)``, until ``__post_init__`` knows
    the strategy they are for."""

    value: Any
    old: dict[str, Any]


_init_fields = SearchConfig.__init__


@functools.wraps(_init_fields)
def _init(self: SearchConfig, *args: Any, ppo: Any = None, fnas: Any = None, rea: Any = None,
          replay_cfg: Any = None, **kw: Any) -> None:
    old = {n: v for n, v in (("ppo", ppo), ("fnas", fnas), ("rea", rea),
                             ("replay_cfg", replay_cfg)) if v is not None}
    if old:
        kw["strategy_config"] = _OldSpelling(kw.get("strategy_config"), old)
    _init_fields(self, *args, **kw)


_init.__signature__ = inspect.signature(_init_fields).replace(parameters=[  # type: ignore[attr-defined]
    *inspect.signature(_init_fields).parameters.values(),
    *(inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=None) for n in STORED_TABLES)])
SearchConfig.__init__ = _init  # type: ignore[method-assign]


def search_config_from_dict(d: Any, strict: bool = True) -> SearchConfig:
    """A validated :class:`SearchConfig` from a dict, nested tables included (in the stored
    shape or with ``strategy_config``); ``strict=False`` ignores unknown keys at any level (a
    stored config carries extras such as ``decision_signature``, and perhaps keys of an
    older version).

    Raises:
        ConfigError: anything wrong, in one line.
    """
    return _built(d, strict)


def _built(d: Any, strict: bool, base: SearchConfig | None = None) -> SearchConfig:
    try:
        if not isinstance(d, Mapping):
            raise ConfigError(f"config must be a table of settings, got {type(d).__name__}")
        d = dict(d)
        old = {n: d.pop(n) for n in STORED_TABLES if n in d}
        value = d.pop("strategy_config", None)
        kw = config_kwargs(SearchConfig, d, "", strict, base)
        strategy = kw.get("strategy", SearchConfig.strategy if base is None else base.strategy)
        if isinstance(strategy, str) and strategy in STRATEGIES:  # else __post_init__ says so
            same = base is not None and strategy == base.strategy
            if base is not None and not same:  # what the two share carries over, as tables
                old = merged(stored_tables(base.strategy_config), old)
            kw["strategy_config"] = strategy_settings(
                strategy, value, old, strict, base.strategy_config if same else None)
        return SearchConfig(**kw) if base is None else replace(base, **kw)
    except FnasError:
        raise
    except Exception as e:  # a value the checks above let through but a class refused
        raise ConfigError(f"bad config: {type(e).__name__}: {' '.join(str(e).split())[:200]}"
                          ) from None
