"""A search's configuration: :class:`SearchConfig`, the registries of strategies and spaces,
and the field-by-field validation of a config that comes from a dict (a user's file through
:mod:`fnas.search.config_io`, or a stored run).

``STRATEGIES`` maps a name to a factory ``(space, SearchConfig) -> Strategy`` and ``SPACES``
a name to a factory taking the task's input size; register your own in them (or use
``fnas.register_space``). A space may also be named ``"module:attr"``: it is imported.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field
from typing import Any

from fnas.agent.buffer import ReplayConfig
from fnas.agent.ppo import PPOConfig
from fnas.errors import ConfigError, FnasError
from fnas.search.ppo import PPOStrategy
from fnas.search.strategy import Strategy
from fnas.space.factorized import FactorizedSpace
from fnas.space.macro import macro_space
from fnas.space.mnas import mnas_space
from fnas.tasks.reward import RewardConfig
from fnas.tasks.trainer import TaskConfig

__all__ = ["SearchConfig", "STRATEGIES", "SPACES", "replay_config", "space_factory",
           "search_config_from_dict"]


def replay_config(cfg: SearchConfig) -> ReplayConfig | None:
    """The experience buffer's settings in this search, or None if replay is off.

    ``auto`` turns it on for the ``fnas`` strategy only (vanilla ``ppo`` is MnasNet's, with
    all three FNAS parts off); ``on`` gives it to ``ppo`` too. Other strategies have no
    policy to update and refuse ``on``
    (``SearchConfig`` already refused bad settings and ``on`` for a strategy without one.)
    """
    if cfg.replay == "off" or (cfg.replay == "auto" and cfg.strategy != "fnas"):
        return None
    return ReplayConfig.from_dict(cfg.replay_cfg)


def _ppo(space: FactorizedSpace, cfg: SearchConfig) -> Strategy:
    return PPOStrategy(space, cfg.seed, cfg.ppo, replay_config(cfg))


def _rea(space: FactorizedSpace, cfg: SearchConfig) -> Strategy:
    from fnas.search.rea import REAConfig, REAStrategy

    return REAStrategy(space, cfg.seed, REAConfig(**cfg.rea) if cfg.rea else None)


def _fnas(space: FactorizedSpace, cfg: SearchConfig) -> Strategy:
    from fnas.search.fnas_strategy import FNASConfig, FNASStrategy
    from fnas.search.screening import ScreeningStrategy

    f = FNASConfig.from_dict(cfg.fnas)
    if not f.critic or f.acquisition == "off":  # vanilla PPO, or the first design's veto rule
        return FNASStrategy(space, cfg.seed, cfg.ppo, f, replay_config(cfg))
    return ScreeningStrategy(space, cfg.seed, cfg.ppo, f.critic_cfg, f.screen, f.acquisition,
                             f.n_imagined, replay_config(cfg))


def _random(space: FactorizedSpace, cfg: SearchConfig) -> Strategy:
    from fnas.search.random_search import RandomSearch

    return RandomSearch(space, cfg.seed)


STRATEGIES = {"fnas": _fnas, "ppo": _ppo, "rea": _rea, "random": _random}
"""Strategy factories ``(space, SearchConfig) -> Strategy``; register your own here."""
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
    naming a ``FactorizedSpace`` or a factory in an importable module (imported and registered
    under that name, so that a stored run resumes with it).

    Raises:
        ConfigError: an unknown name, or one that cannot be imported.
    """
    if name in SPACES:
        return SPACES[name]
    if isinstance(name, str) and ":" in name:
        import importlib

        mod, _, attr = name.partition(":")
        try:
            obj = getattr(importlib.import_module(mod), attr)
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
    raise ConfigError(f"unknown space {name!r}: expected one of {sorted(SPACES)}, or "
                      "module:attribute naming a FactorizedSpace")


@dataclass(frozen=True)
class SearchConfig:
    """A whole search: what to search, on what, how long, with which controller."""

    space: str = "mnas"
    """Search space: a registered name (``mnas``, ``macro``, or ``fnas.register_space``), or
    ``module:attr`` naming a space in an importable module; its input-size variant follows
    the task's images"""
    strategy: str = "fnas"
    """Search strategy name: ``fnas`` (PPO + critic), ``ppo`` (vanilla), ``rea``, ``random``."""
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
    ppo: PPOConfig = field(default_factory=PPOConfig)
    """Controller hyper-parameters."""
    fnas: dict = field(default_factory=dict)
    """FNAS settings (``FNASConfig`` as a dict: ``critic``, ``decision``, ``critic_cfg``)."""
    knowledge: str = "all"
    """Earlier experiments whose real results pre-train the critic: ``none``, ``all`` (every
    experiment in the store with the same decisions) or ``RUN,RUN`` (names or ids)."""
    knowledge_as: str = "measurements"
    """What earlier runs teach: ``measurements`` (their accuracy, latency and MACs re-scored
    with this search's reward) or ``rewards`` (the rewards they were given)."""
    rea: dict = field(default_factory=dict)
    """Regularized-evolution settings (``REAConfig`` fields); empty means its defaults."""
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
    it, each batch of ``batch`` is part fresh samples, part replayed earlier real results."""
    replay_cfg: dict = field(default_factory=dict)
    """Replay settings (``ReplayConfig`` fields: share, capacity, sampling, alpha, correction,
    c_max); empty means its defaults."""
    budget_seconds: float | None = None
    """Also stop once the search's compute is spent: its wall-clock seconds (trainings plus
    the search's own overhead: sampling, critic, updates, store), summed over resumes."""
    objective: str | None = None
    """What scores architectures when it is not the proxy task ``task`` (the objective's
    signature, set by ``fnas.create_search``): recorded so that a run says what it searched."""

    def __post_init__(self) -> None:
        space_factory(self.space)  # a registered name, or "module:attribute" imported now
        if self.strategy not in STRATEGIES:
            raise ConfigError(
                f"unknown strategy {self.strategy!r}: expected one of {sorted(STRATEGIES)}")
        if self.budget < 1:
            raise ConfigError(f"budget={self.budget} must be >= 1")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) \
                or not 0 <= self.seed <= 2**32 - 1:
            raise ConfigError(f"seed={self.seed!r:.40} must be an integer in [0, 2**32 - 1]")
        if self.batch < 2:
            raise ConfigError(f"batch={self.batch} must be >= 2 (PPO needs a spread)")
        if self.pool not in ("auto", "on", "off"):
            raise ConfigError(f"pool={self.pool!r}: expected 'auto', 'on' or 'off'")
        if self.pool_epochs is not None and self.pool_epochs < 1:
            raise ConfigError(f"pool_epochs={self.pool_epochs} must be >= 1")
        if self.replay not in ("auto", "on", "off"):
            raise ConfigError(f"replay={self.replay!r}: expected 'auto', 'on' or 'off'")
        ReplayConfig.from_dict(self.replay_cfg)  # validates the settings
        if self.replay == "on" and self.strategy not in ("fnas", "ppo"):
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

    @property
    def sample_cap(self) -> int:
        """Most architectures a run may sample."""
        if self.budget_counts == "samples":
            return self.budget
        return self.max_samples or 20 * self.budget

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any], strict: bool = False) -> SearchConfig:
        """From a dict, each field type-checked (``fnas.search.config_io``); ``strict``
        refuses unknown keys (a stored config has extras, a user's file must not).

        Raises:
            ConfigError: a bad value, in one line.
        """
        return search_config_from_dict(d, strict=strict)



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
