"""A plain function as an evaluator (:class:`ObjectiveEvaluator`): what
``fnas.create_search(objective=...)`` and ``fnas bench --objective`` wrap a user's
``arch -> accuracy`` function in."""

from __future__ import annotations

import copy
import inspect
import math
import numbers
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from fnas.errors import ConfigError, FnasError
from fnas.execution.evaluators import Evaluator, check_fidelity
from fnas.execution.identity import Unhashable, fingerprint, qualified_name
from fnas.tasks.reward import RewardConfig
from fnas.tasks.rollout import RolloutResult

__all__ = ["DIRECTIONS", "ObjectiveError", "ObjectiveEvaluator"]

DIRECTIONS = ("maximize", "minimize")
"""What a search does with an objective's value: ``maximize`` (an accuracy, the default) or
``minimize`` (a loss, an error); fnas maximises the reward, so a minimised value's reward is
its negation."""

_METRICS = ("accuracy", "reward", "latency_ms", "macs", "params")
OWN_REWARD = "reward given by the objective"
"""The message of a result whose reward the objective returned (a cached repeat keeps it)."""
_MARK = {"minimize": "/minimize"}  # a minimised objective's signature ends so
_COUNTS = ("macs", "params")  # stored as SQLite integers
_INT64_MAX = 2**63 - 1


class ObjectiveError(FnasError):
    """An objective returned something that is not a result, or raised."""


class ObjectiveEvaluator(Evaluator):
    """A plain function as an evaluator: ``objective(arch)`` or ``objective(arch, seed)``
    returns the accuracy (a float; higher is better) or a dict of metrics with ``accuracy``
    and optionally ``reward``, ``latency_ms``, ``macs``, ``params``. An objective with a
    parameter named ``fidelity`` (``objective(arch, seed, fidelity=1.0)``) offers lower
    fidelities: fnas passes a fraction in (0, 1] of a full evaluation (of your epochs or
    steps; 1.0 for a full one), so a multi-fidelity search (``fnas={"screen": {"rungs":
    [0.25, 1.0]}}``) trains most candidates cheaply and promotes the best, as ASHA does.

    Its :attr:`signature`, which keys the result cache, is the function's qualified name plus
    either your ``version`` tag (runs with the same name and tag share cached results) or,
    without a tag, a fingerprint of its content (:mod:`fnas.execution.identity`: its code, the
    values its closure holds, a partial's arguments, a callable instance's attributes), so
    that two closures of one factory, two partials or two instances never share results,
    and an edited function starts afresh. An objective holding something fnas cannot hash by
    content (an open file, a data loader) needs a ``version``.

    Args:
        objective: the function.
        version: your tag for this version of it (see above); None: its fingerprint.
        reward: a cost target (``RewardConfig``) to combine accuracy with latency or MACs, as
            MnasNet's reward does; default: the reward is the accuracy (or the dict's
            ``reward``).
        catch: exception types that make an architecture a failed result (recorded, reward
            ``reward.failure_reward``) instead of stopping the search, as Optuna's ``catch``.
        direction: ``maximize`` or ``minimize`` the value (the float, or the dict's
            ``reward``, else its ``accuracy``); minimised, the reward is the negated value
            and the signature ends in ``/minimize`` (its cached rewards are its own). None:
            ``maximize`` until a run says otherwise (:meth:`directed`).
    """

    def __init__(self, objective: Callable[..., Any], version: str | int | None = None,
                 reward: RewardConfig | None = None,
                 catch: tuple[type[BaseException], ...] = (),
                 direction: str | None = None) -> None:
        if not callable(objective):
            raise ConfigError(f"objective must be a function, got {type(objective).__name__}")
        if isinstance(catch, type):
            catch = (catch,)
        if not isinstance(catch, (tuple, list)) or not all(
                isinstance(c, type) and issubclass(c, BaseException) for c in catch):
            raise ConfigError(f"catch={catch!r:.60} must be a tuple of exception classes, "
                              "e.g. (RuntimeError,)")
        if version is not None and (isinstance(version, bool)
                                    or not isinstance(version, (str, int))
                                    or len(str(version)) > 200):
            raise ConfigError(f"version={version!r:.60} must be a short text or an integer")
        if direction is not None and direction not in DIRECTIONS:
            raise ConfigError(f"direction={direction!r:.40}: expected 'maximize' or 'minimize'")
        if direction == "minimize" and reward is not None and reward.target is not None:
            raise ConfigError("direction='minimize' minimises the objective's value: a reward "
                              "cost target (reward=RewardConfig(target=...)) applies to an "
                              "accuracy to maximise; leave one of them out")
        self.objective, self.catch = objective, tuple(catch)
        self.reward = reward or RewardConfig()
        self.direction = direction
        """``maximize``, ``minimize``, or None (not said: maximise, or a resumed run's)."""
        self.name = qualified_name(objective)
        if version is not None:  # the user's word: equal names and tags share results
            self.signature = f"objective:{self.name}@{version}"
        else:  # the code, closure, partial arguments or attributes tell two objectives apart
            try:
                self.signature = f"objective:{self.name}#{fingerprint(objective)}"
            except Unhashable as e:
                raise ConfigError(
                    f"objective {self.name}: {e}, which fnas cannot tell apart from another "
                    f"by its content; pass version='...' (your tag for this objective: runs "
                    f"with the same name and tag share cached results)") from None
        self.signature += _MARK.get(direction or "maximize", "")
        try:
            params = list(inspect.signature(objective).parameters.values())
        except (TypeError, ValueError):  # a builtin without a signature: called with arch only
            params = None
        positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        # a parameter named fidelity (passed by keyword) offers lower fidelities
        self.fidelities = params is not None and any(
            p.name == "fidelity" and p.kind != p.POSITIONAL_ONLY for p in params)
        params = None if params is None else [p for p in params if p.name != "fidelity"
                                               or p.kind == p.POSITIONAL_ONLY]
        self._with_seed = params is not None and (
            sum(p.kind in positional for p in params) >= 2
            or any(p.kind == p.VAR_POSITIONAL for p in params))
        needed = [p.name for p in params or () if p.default is p.empty
                  and p.kind in (*positional, inspect.Parameter.KEYWORD_ONLY)]
        if len(needed) > 2 or any(p.kind == p.KEYWORD_ONLY and p.default is p.empty
                                  for p in params or ()):
            raise ConfigError(f"objective {self.name} needs the arguments {needed}: fnas calls "
                              "objective(arch), objective(arch, seed), and with a parameter "
                              "named fidelity, objective(arch, seed, fidelity=f)")

    def evaluate(self, spec: Any, seed: int) -> RolloutResult:
        return self.evaluate_at(spec, seed, 1.0)

    def evaluate_at(self, spec: Any, seed: int, fidelity: float = 1.0) -> RolloutResult:
        """``spec``'s result at ``fidelity``: the objective called with ``fidelity=`` (1.0 for
        a full evaluation) where it has a parameter of that name, else only at 1.

        Raises:
            ConfigError: a fidelity outside (0, 1], or below 1 for an objective without the
                parameter.
        """
        f = check_fidelity(fidelity)
        if not self.fidelities:
            if f != 1.0:
                raise ConfigError(f"objective {self.name} evaluates at full fidelity only "
                                  f"(asked for {fidelity!r:.20}): give it a parameter named "
                                  "fidelity")
            return self._call(spec, seed, None)
        return self._call(spec, seed, f)

    def _call(self, spec: Any, seed: int, fidelity: float | None) -> RolloutResult:
        t0 = time.perf_counter()
        kw = {} if fidelity is None else {"fidelity": fidelity}
        try:
            out = (self.objective(spec, seed, **kw) if self._with_seed
                   else self.objective(spec, **kw))
        except self.catch as e:  # noqa: B030  (a tuple of exception types; () catches nothing)
            msg = " ".join(f"{type(e).__name__}: {e}".split())[:300]
            return RolloutResult(spec.to_str(), spec.key, "error", msg,
                                 self.reward.failure_reward, seed=seed,
                                 train_seconds=time.perf_counter() - t0,
                                 fidelity=fidelity or 1.0)
        m = self._metrics(out)
        reward, note = m.get("reward"), OWN_REWARD
        if reward is None:
            reward = self.rescore(m["accuracy"], m.get("latency_ms"), m.get("macs"))
            note = ""
        elif self.direction == "minimize":
            reward = -reward
        return RolloutResult(spec.to_str(), spec.key, "ok", note, float(reward), m["accuracy"],
                             m.get("latency_ms"), m.get("macs"), m.get("params"),
                             time.perf_counter() - t0, 0, seed, fidelity=fidelity or 1.0)

    def rescorable(self, prior: Any) -> bool:
        """A reward the objective returned itself is kept for a cached repeat: it cannot be
        recomputed from the accuracy."""
        return prior.accuracy is not None and prior.message != OWN_REWARD

    def rescore(self, accuracy: float | None, latency_ms: float | None, macs: int | None) -> float:
        if accuracy is not None and self.reward.target is None:
            return -float(accuracy) if self.direction == "minimize" else float(accuracy)
        return super().rescore(accuracy, latency_ms, macs)

    def directed(self, direction: str) -> ObjectiveEvaluator:
        """This objective for a run that ``direction``s its value (``maximize`` or
        ``minimize``): itself if it says the same or nothing and the run maximises, else a
        copy that does (its signature marked).

        Raises:
            ConfigError: it was made for the other direction (the run records its own).
        """
        if direction == (self.direction or "maximize"):
            return self
        if self.direction is not None:
            raise ConfigError(f"direction={self.direction!r}, but the run was recorded to "
                              f"{direction} its objective: leave direction= out to continue it")
        if direction == "minimize" and self.reward.target is not None:
            raise ConfigError("the run minimises its objective's value: a reward cost target "
                              "(reward=RewardConfig(target=...)) cannot apply to it")
        out = copy.copy(self)
        out.direction = direction
        out.signature = self.signature + _MARK.get(direction, "")
        return out

    def _metrics(self, out: Any) -> dict[str, Any]:
        if isinstance(out, Mapping):
            unknown = sorted(set(out) - set(_METRICS))
            if unknown or ("accuracy" not in out and "reward" not in out):
                raise ObjectiveError(
                    f"objective {self.name} returned a dict with keys {sorted(out)}: expected "
                    f"'accuracy' (and optionally {', '.join(_METRICS[1:])})")
            m = dict(out)
        else:
            m = {"accuracy": out}
        for k, v in m.items():
            if v is None and (k != "accuracy" and (k != "reward" or "accuracy" in m)):
                continue  # an optional metric left out (reward: computed from accuracy)
            m[k] = self._number(k, v)
        m.setdefault("accuracy", m.get("reward"))
        return m

    def _number(self, key: str, v: Any) -> float | int:
        """``v`` as the store keeps ``key``: a finite float, or for ``macs`` and ``params`` a
        non-negative integer (a float count is rounded); numpy scalars are numbers. Anything
        else is an :class:`ObjectiveError` naming the objective, the key and the value."""
        what = ("a non-negative integer count (at most 2**63 - 1)" if key in _COUNTS
                else "a finite number")
        bad = ObjectiveError(f"objective {self.name} returned {key}={v!r:.60}: expected {what}")
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real):
            raise bad
        try:
            x = float(v)
        except (OverflowError, ValueError, TypeError):  # 10**400, or a Real that is not one
            raise bad from None
        if not math.isfinite(x):
            raise bad
        if key not in _COUNTS:
            return x
        n = int(v) if isinstance(v, numbers.Integral) else round(x)
        if not 0 <= n <= _INT64_MAX:
            raise bad
        return n
