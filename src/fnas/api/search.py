"""The Python API: a search you drive from Python, on your own space and objective.

::

    import fnas

    def train_and_score(arch):            # your training: an architecture -> accuracy
        ...
        return accuracy                    # or {"accuracy": ..., "latency_ms": ...}

    search = fnas.create_search(store="runs/", name="my-search", space="mnas",
                                objective=train_and_score, load_if_exists=True)
    search.optimize(budget=64)             # resumes where it stopped if it exists
    search.best_params, search.best_value  # as Optuna's; search.best: the whole record
    search.trials_dataframe()              # one row per evaluation, params_<decision> columns

Modelled on Optuna's ``create_study(...).optimize(objective)``. The objective is wrapped into
an :class:`~fnas.execution.evaluators.Evaluator` (:class:`ObjectiveEvaluator`); everything else
(the store, the cache, checkpoints, resume, the strategies) is the one ``fnas search`` uses.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypedDict

from fnas.api.runs import Search, open_search
from fnas.errors import ConfigError
from fnas.execution.evaluators import Evaluator
from fnas.execution.executors import Executor
from fnas.execution.objective import ObjectiveError, ObjectiveEvaluator
from fnas.knowledge.schema import default_run_name
from fnas.search.config import (
    SPACES,
    STORED_TABLES,
    STRATEGIES,
    FixedSpace,
    SearchConfig,
    space_factory,
)
from fnas.space.factorized import MAX_DECISIONS, Decision, FactorizedSpace, choice_key
from fnas.tasks.reward import RewardConfig
from fnas.tasks.trainer import TaskConfig

if TYPE_CHECKING:  # typing.Unpack is 3.11's; type checkers know typing_extensions' everywhere
    from typing_extensions import Unpack

__all__ = ["Choices", "ObjectiveError", "ObjectiveEvaluator", "Search", "SearchSettings",
           "create_search", "make_space", "register_space"]


class SearchSettings(TypedDict, total=False):
    """The :class:`~fnas.search.config.SearchConfig` fields that :func:`create_search` takes as
    keywords beyond its own parameters, typed for mypy and pyright (a misspelt keyword is a
    type error; at run time it is a ``ConfigError``). A test keeps it in step with
    ``SearchConfig``."""

    task: TaskConfig | Mapping[str, Any]
    knowledge: str
    knowledge_as: str
    budget_counts: str
    max_samples: int | None
    checkpoint: bool
    pool: str
    pool_epochs: int | None
    replay: str
    budget_seconds: float | None
    eval_timeout: float | None
    eval_isolation: str
    threads: int
    confirm: int
    strategy_config: Any
    fnas: Any
    ppo: Any
    rea: Any
    replay_cfg: Any


class Choices(Mapping):
    """An architecture of a space made by :func:`make_space` without ``decode``: the chosen
    value of each decision (a read-only mapping), with the ``key`` and ``to_str()`` the store
    records."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self._v = dict(values)
        self.key = ",".join(f"{k}={choice_key(v)}" for k, v in self._v.items())

    def __getitem__(self, k: str) -> Any:
        return self._v[k]

    def __iter__(self):
        return iter(self._v)

    def __len__(self) -> int:
        return len(self._v)

    def __hash__(self) -> int:
        return hash(self.key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Choices) and other.key == self.key

    def to_str(self) -> str:
        return self.key

    def __repr__(self) -> str:
        return f"Choices({self._v!r})"


def make_space(name: str, decisions: Mapping[str, Sequence[Any]],
               decode: Callable[[Mapping[str, Any]], Any] | None = None,
               meta: Mapping[str, Any] | None = None) -> FactorizedSpace:
    """A search space from ``{decision name: choices}``, in the order the controller samples.

    Without ``decode`` an architecture is a :class:`Choices` mapping (decision -> value), which
    the objective turns into a network itself; with it, ``decode(values)`` must return an
    object with a ``key`` attribute and a ``to_str()`` method (an
    :class:`~fnas.space.ArchSpec`, for instance).

    Raises:
        InvalidArchitecture: a decision without choices or with a repeated choice.
        ConfigError: no decisions, or a bad name.
    """
    if not isinstance(name, str) or not name.strip():
        raise ConfigError("a space needs a non-empty name")
    if not isinstance(decisions, Mapping):
        raise ConfigError(f"space {name!r}: decisions must be a dict of decision name -> "
                          f"choices, got {type(decisions).__name__}")
    if not decisions:
        raise ConfigError(f"space {name!r} has no decisions")
    if len(decisions) > MAX_DECISIONS:
        raise ConfigError(f"space {name!r} has {len(decisions)} decisions: at most "
                          f"{MAX_DECISIONS}")
    ds = [Decision(str(k), v) for k, v in decisions.items()]
    return FactorizedSpace(name, ds, decode or Choices, meta=meta)


def register_space(name: str, space: FactorizedSpace | Callable[..., FactorizedSpace]) -> None:
    """Make a space reachable by name (``SearchConfig(space=name)``, ``fnas search --space``,
    resume): a :class:`FactorizedSpace`, or a factory taking the task's input size.

    Raises:
        ConfigError: the name is taken by another space, or ``space`` is neither.
    """
    if not isinstance(name, str) or not name.strip():
        raise ConfigError("a space needs a non-empty name")
    if isinstance(space, FactorizedSpace):
        factory = FixedSpace(space)
    elif callable(space):
        factory = space
    else:
        raise ConfigError(f"register_space({name!r}): expected a FactorizedSpace or a factory, "
                          f"got {type(space).__name__}")
    old = SPACES.get(name)
    same = old is factory or (isinstance(old, FixedSpace) and isinstance(factory, FixedSpace)
                              and old.space.signature == factory.space.signature)
    if old is not None and not same:
        raise ConfigError(f"space name {name!r} is taken (registered spaces: "
                          f"{sorted(SPACES)}); pick another name")
    SPACES[name] = factory


_OWN = {"store", "name", "space", "objective", "load_if_exists", "version", "strategy",
        "budget", "batch", "seed", "reward", "catch", "timeout", "executor", "direction"}
"""create_search's own parameters (a setting of the same name is one of them)."""


def _check_direction(direction: Any, objective: Any, reward: RewardConfig | None,
                     catch: Any, timeout: Any) -> None:
    """``direction`` is one an objective function can take, in one line if not."""
    if direction is None or direction == "maximize":
        return
    if direction != "minimize":
        raise ConfigError(f"direction={direction!r:.40}: expected 'maximize' or 'minimize'")
    if objective is None or isinstance(objective, Evaluator):
        raise ConfigError("direction='minimize' needs an objective function (objective=f, "
                          "f(arch) -> the value to minimise): an evaluator's reward and the "
                          "proxy task's are maximised")
    if reward is None and (catch or timeout is not None):
        raise ConfigError("direction='minimize' with catch= or timeout=: pass reward="
                          "RewardConfig(failure_reward=R), the reward a failed architecture "
                          "gets (R = minus the value it should count as, e.g. -10.0)")


def create_search(store: str | Path | Any = "fnas-store", name: str | None = None,
                  space: str | FactorizedSpace = "mnas",
                  objective: Callable[..., Any] | Evaluator | None = None, *,
                  load_if_exists: bool = False, version: str | int | None = None,
                  strategy: str = "fnas", budget: int = 32, batch: int = 8, seed: int = 0,
                  reward: RewardConfig | None = None,
                  catch: tuple[type[BaseException], ...] = (),
                  timeout: float | None = None, executor: Executor | None = None,
                  direction: Literal["maximize", "minimize"] | None = None,
                  **settings: Unpack[SearchSettings]) -> Search:
    """A search over ``space`` that scores architectures with ``objective``.

    Args:
        store: a store folder (created if missing) or an open ``fnas.knowledge.Store``.
        name: the run's name (letters, digits, ``.``, ``_``, ``-``); default: from the
            strategy, space and objective.
        space: a registered space's name (``mnas``, ``macro``, or one from
            :func:`register_space`) or a :class:`FactorizedSpace` (registered under its name,
            so the run records it and resumes in this process).
        objective: a function ``arch -> accuracy`` (or a dict of metrics; see
            :class:`ObjectiveEvaluator`), or an ``Evaluator``. Default: the proxy task of
            ``settings['task']`` (digits training for the MnasNet space).
        load_if_exists: a run of that name continues instead of being refused (with its
            recorded settings: those given here apply to a new run only, as in Optuna).
        version: your tag for the objective's current version (keys the result cache).
        strategy: ``fnas`` (default), ``ppo``, ``rea``, ``random``, or a registered one.
        budget, batch, seed: as in :class:`~fnas.search.config.SearchConfig`.
        reward: a cost target for the objective's accuracy (MnasNet's reward).
        catch: exception types of the objective recorded as failed architectures.
        timeout: seconds one evaluation may take; past them it is stopped and recorded as
            failed (``SearchConfig.eval_timeout``). The objective then runs in a worker
            process (:mod:`fnas.execution.workers`): it must be picklable by cloudpickle (a
            closure or a lambda is), and what it keeps in globals stays in that process.
        executor: where evaluations run (:mod:`fnas.execution.executors`, e.g. a
            ``RayExecutor``); default: here.
        direction: ``maximize`` (default) or ``minimize`` the objective's value (a loss, an
            error); the reward is then the negated value, while ``best_value`` and
            ``trials_dataframe()``'s ``value`` are in the objective's units. A run records
            it; None continues a recorded run in its own. Minimising takes no reward cost
            target, and with ``catch`` or ``timeout`` needs ``reward=RewardConfig(
            failure_reward=...)``: the reward (the negated value) a failure counts as.
        **settings: any other :class:`~fnas.search.config.SearchConfig` field
            (``budget_counts``, ``knowledge``, ``fnas``, ``task``, ``pool``...).

    Before the store is touched, a new search's name, device and (without an objective)
    proxy-task data are checked (:func:`fnas.api.runs.open_search`, which this ends in, as
    ``fnas search`` does).

    Raises:
        ConfigError: a bad setting, an unknown space or strategy. StoreError: the name is
            taken and ``load_if_exists`` is False, or the store is damaged.
    """
    if isinstance(space, FactorizedSpace):
        register_space(space.name, space)
        space_obj: FactorizedSpace | None = space
        space_name = space.name
    elif isinstance(space, str):
        space_factory(space)  # a registered name or module:attr; else one ConfigError line
        space_obj, space_name = None, space
    else:
        raise ConfigError(f"space: expected a name or a FactorizedSpace, got "
                          f"{type(space).__name__}")
    if strategy not in STRATEGIES:
        raise ConfigError(f"unknown strategy {strategy!r}: expected one of {sorted(STRATEGIES)}")
    known = {f.name for f in fields(SearchConfig)} | set(STORED_TABLES)  # fnas=, ppo=...
    extra: dict[str, Any] = dict(settings)  # checked below, as at run time
    bad = sorted(set(extra) - known)
    if bad:
        raise ConfigError(f"unknown setting(s) {bad}: create_search takes {sorted(_OWN)} and "
                          f"the SearchConfig fields {sorted(known - _OWN - {'objective'})}")
    _check_direction(direction, objective, reward, catch,
                     extra.get("eval_timeout") if timeout is None else timeout)
    if isinstance(objective, Evaluator):
        evaluator: Evaluator | None = objective
        label = type(objective).__name__.lower()
    elif objective is not None:
        evaluator = ObjectiveEvaluator(objective, version, reward, catch, direction)
        label = getattr(objective, "__name__", "objective")
    else:
        evaluator, label = None, None
    if reward is not None and not isinstance(objective, Evaluator):
        # the proxy task's reward, or the objective's: recorded so that the run says so
        if "reward" in extra:
            raise ConfigError("give reward= or a reward setting, not both")
        extra["reward"] = reward
    if evaluator is not None:
        extra.setdefault("objective", getattr(evaluator, "signature", label))
    if timeout is not None:
        if "eval_timeout" in extra:
            raise ConfigError("give timeout= or eval_timeout=, not both")
        extra["eval_timeout"] = timeout
    cfg = SearchConfig(space=space_name, strategy=strategy, budget=budget, batch=batch,
                       seed=seed, direction=direction or "maximize", **extra)
    if name is None:
        kind = label or cfg.task.dataset.split(":", 1)[0]
        name = default_run_name(strategy, space_name, kind, f"s{seed}")
    return open_search(store, cfg, name, evaluator=evaluator, space=space_obj,
                       load_if_exists=load_if_exists, executor=executor)
