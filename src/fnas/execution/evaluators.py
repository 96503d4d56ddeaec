"""Evaluators turn an architecture into a result; strategies see nothing else.

Contract: ``evaluate(spec, seed)`` returns a :class:`~fnas.tasks.RolloutResult` and never
raises for a bad architecture or a failed training (a failure is a result with a status).
``signature`` names everything that determines a result, so that equal signatures may share
cached results; ``rescore`` recomputes a reward from a stored result's metrics, so a cached
result can serve a search with another reward target.

An evaluator that really trains weights (``trains = True``) also offers ``train(spec, seed,
init_weights, epochs)``, which returns the trained weights too: the knowledge pool uses it.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from fnas.agent.threads import single_thread
from fnas.errors import ConfigError, FnasError
from fnas.nn.builder import build_model
from fnas.nn.zero_cost import PROXIES, zero_cost
from fnas.space.cost import arch_cost
from fnas.space.factorized import FactorizedSpace
from fnas.space.features import arch_features
from fnas.space.spec import ArchSpec
from fnas.tasks.datasets import load_dataset
from fnas.tasks.macro_table import load_macro_table
from fnas.tasks.reward import RewardConfig, mnas_reward
from fnas.tasks.rollout import Rollout, RolloutResult, run_rollout
from fnas.tasks.trainer import TaskConfig
from fnas.tasks.user_data import adopt, registered_dataset

__all__ = ["Evaluator", "ProxyEvaluator", "SyntheticEvaluator", "MacroTableEvaluator",
           "check_fidelity"]

PROBE_SEED = 0
"""The seed of the network :meth:`ProxyEvaluator.probe` initialises (every architecture's)."""
PROBE_BATCH = 64
"""Training images in the minibatch of :meth:`ProxyEvaluator.probe`."""


class Evaluator(ABC):
    """Base class of evaluators."""

    signature: str = ""
    """Everything that determines a result; must be non-empty (a search refuses an empty
    one: two custom tasks would silently share cached results)."""
    reward: RewardConfig = RewardConfig()
    trains: bool = False
    """Whether :meth:`train` exists (weights are trained, so the knowledge pool applies)."""
    epochs: int = 0
    """Epochs of a from-scratch training (for ``trains`` evaluators)."""
    fidelities: bool = False
    """Whether :meth:`evaluate_at` offers fidelities below 1 (a multi-fidelity search
    refuses an evaluator without them)."""
    instant: bool = False
    """Whether an evaluation is a quick lookup that cannot hang (a table, a formula): such
    evaluations stay in the search's process even with ``budget_seconds``."""
    input_size: int = 224
    """The input's height = width, which a space that depends on it is built for."""
    in_chans: int = 3
    """Input channels of the networks it trains (``trains`` evaluators: the pool reads it)."""
    num_classes: int = 10
    """Classifier outputs of the networks it trains (``trains`` evaluators)."""

    @property
    def device(self) -> str:
        """Where an evaluation runs (``cpu``, ``cuda``...; an executor asks for a GPU for it):
        the one set, else its ``task``'s, else ``cpu``."""
        return self.__dict__.get("_device") or getattr(getattr(self, "task", None), "device",
                                                       "cpu")

    @device.setter
    def device(self, value: str) -> None:
        self.__dict__["_device"] = value

    @abstractmethod
    def evaluate(self, spec: Any, seed: int) -> RolloutResult:
        """Train/score ``spec``; never raises for bad input."""

    def evaluate_at(self, spec: Any, seed: int, fidelity: float = 1.0) -> RolloutResult:
        """``spec``'s result at ``fidelity``, a fraction in (0, 1] of a full evaluation (of its
        epochs, for an evaluator that trains); 1 is :meth:`evaluate`. An evaluator without
        lower fidelities refuses any other.

        Raises:
            ConfigError: a fidelity outside (0, 1], or one this evaluator does not offer.
        """
        if check_fidelity(fidelity) != 1.0:
            raise ConfigError(f"{type(self).__name__} evaluates at full fidelity only "
                              f"(asked for {fidelity!r:.20})")
        return self.evaluate(spec, seed)

    def cost(self, key: str) -> float | None:
        """A known compute estimate of evaluating architecture ``key`` (a table's FLOPs
        ratio), or None: the evaluation's measured seconds are its cost."""
        return None

    def known_factor(self, spec: Any) -> float | None:
        """The reward's part that is known before any training, when the reward is
        ``accuracy x known_factor(spec)`` (MnasNet's ``(MACs / T) ** w`` with analytic MACs),
        else None (the default: the reward is learnt whole). The fnas critic then learns only
        the accuracy and composes the reward exactly (docs/DESIGN.md, "The critic")."""
        return None

    def features(self, spec: Any) -> Sequence[float] | None:
        """What is known about ``spec`` before training, as a fixed-length row of finite
        numbers (log MACs, log params, per-block depth and width...), or None (the default:
        none). The fnas critic takes them as inputs next to the decisions."""
        return None

    def probe(self, spec: Any) -> Sequence[float] | None:
        """Zero-cost proxies of ``spec``: scores of the network at initialisation that cost a
        small share of a training (a forward and backward pass on one minibatch), as a
        fixed-length row of finite, well-scaled numbers (logs), a deterministic function of
        the architecture; or None (the default: none offered, or none for this architecture).
        The fnas screening (``ScreenConfig.zero_cost``) asks for them only for its shortlist
        and its results, and its critic learns how to use them (their sign is not assumed).
        Must not raise for a bad architecture (return None)."""
        return None

    def train(self, spec: Any, seed: int, init_weights: Any = None,
              epochs: int | None = None, fidelity: float = 1.0) -> Rollout:
        """Train from ``init_weights`` (a partial state dict) for ``epochs`` (default: the
        task's), at ``fidelity`` of that training's steps; the result and the trained
        weights. Only for ``trains`` evaluators."""
        raise NotImplementedError(f"{type(self).__name__} does not train weights")

    def rescorable(self, prior: Any) -> bool:
        """Whether a stored result's reward can be recomputed from its metrics by
        :meth:`rescore` (else a cached result keeps its recorded reward)."""
        return prior.accuracy is not None

    def rescore(self, accuracy: float | None, latency_ms: float | None, macs: int | None) -> float:
        """This evaluator's reward for stored metrics. (A cached result recorded without an
        accuracy, from an evaluator that fills only ``reward``, keeps its recorded reward: the
        search does not call this for it.)"""
        if accuracy is None:
            return self.reward.failure_reward
        return mnas_reward(accuracy, latency_ms if self.reward.metric == "latency" else macs,
                           self.reward)


def check_fidelity(f: Any) -> float:
    """``f`` as a float in (0, 1].

    Raises:
        ConfigError: anything else.
    """
    if isinstance(f, bool) or not isinstance(f, (int, float)) or not 0 < f <= 1:
        raise ConfigError(f"fidelity={f!r:.20} must be a number in (0, 1]")
    return float(f)


class ProxyEvaluator(Evaluator):
    """Real training on the proxy task (:func:`fnas.tasks.run_rollout`); a lower fidelity
    trains for that fraction of the full training's optimisation steps (at least one; with 2
    epochs, 0.25 stops after half an epoch's minibatches), on the full schedule compressed to
    them. The result records its ``fidelity``, ``steps`` and the ``epochs`` it began."""

    def __init__(self, task: TaskConfig, reward: RewardConfig) -> None:
        self.task, self.reward = task, reward
        data = load_dataset(task.dataset, val_fraction=task.val_fraction,
                            split_seed=task.split_seed, max_samples=task.max_samples,
                            image_size=task.image_size)
        if task.batch_size > data.y_train.shape[0]:
            raise ConfigError(f"task batch_size={task.batch_size} exceeds the "
                              f"{data.y_train.shape[0]} training images of {data.name}")
        self.input_size, self.in_chans = data.image_size, data.in_chans
        self.num_classes = data.num_classes
        self.signature = f"proxy|{data.signature}|{task.signature}"
        self.trains, self.epochs, self.fidelities = True, task.epochs, True
        # A registered dataset exists in this process only: it travels with the evaluator
        # (pickled once per run to Ray workers), which registers it there (__setstate__).
        self.shipped_data = registered_dataset(task.dataset.strip())

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_probe_xy", None)  # the probes' minibatch: rebuilt where it is needed
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if state.get("shipped_data") is not None:
            adopt(state["shipped_data"])

    def evaluate(self, spec: Any, seed: int) -> RolloutResult:
        return run_rollout(spec, self.task, self.reward, seed, return_weights=False).result

    def evaluate_at(self, spec: Any, seed: int, fidelity: float = 1.0) -> RolloutResult:
        return run_rollout(spec, self.task, self.reward, seed, return_weights=False,
                           fidelity=check_fidelity(fidelity)).result

    def known_factor(self, spec: Any) -> float | None:
        """``(MACs / T) ** w`` for a MACs target (the analytic MACs the training records
        too); None for a latency target (measured during the evaluation) or none."""
        if self.reward.target is None or self.reward.metric != "macs" \
                or not isinstance(spec, ArchSpec):
            return None
        cost = arch_cost(spec, self.input_size, self.in_chans, self.num_classes)
        return mnas_reward(1.0, cost.macs, self.reward)

    def features(self, spec: Any) -> Sequence[float] | None:
        """:func:`fnas.space.features.arch_features` at this task's input."""
        if not isinstance(spec, ArchSpec):
            return None
        return arch_features(spec, self.input_size, self.in_chans, self.num_classes)

    def probe(self, spec: Any) -> Sequence[float] | None:
        """``log(grad_norm)`` and ``log(snip)`` (:func:`fnas.nn.zero_cost.zero_cost`) of
        ``spec`` built as training builds it, initialised with seed :data:`PROBE_SEED` (the
        same for every architecture: a function of the architecture alone), on one fixed
        minibatch of :data:`PROBE_BATCH` training images (drawn by the task's split seed, the
        same for every architecture), on the CPU with one torch thread. None for a network
        that does not build or a non-finite or non-positive proxy. About 0.28 CPU-s per
        MnasNet-28 network on mnist5k (``benchmarks/critic_inputs.py``), 3% of a training."""
        if not isinstance(spec, ArchSpec):
            return None
        try:
            x, y = self._probe_batch()
            with single_thread(), torch.random.fork_rng(devices=[]):
                torch.manual_seed(PROBE_SEED)
                model = build_model(spec, self.in_chans, self.num_classes)
                got = zero_cost(model, x, y)
        except (FnasError, RuntimeError, ValueError, MemoryError):
            return None  # a network that does not build or run: no probe, never a crash
        vals = [got[k] for k in PROXIES]
        if not all(math.isfinite(v) and v > 0 for v in vals):
            return None
        return [math.log(v) for v in vals]

    def _probe_batch(self) -> tuple[Any, Any]:
        """The probes' fixed minibatch, cached (dropped when pickled: ``__getstate__``)."""
        xy = self.__dict__.get("_probe_xy")
        if xy is None:
            t = self.task
            data = load_dataset(t.dataset, val_fraction=t.val_fraction,
                                split_seed=t.split_seed, max_samples=t.max_samples,
                                image_size=t.image_size)
            g = torch.Generator().manual_seed(int(t.split_seed))
            pick = torch.randperm(int(data.y_train.shape[0]), generator=g)[:PROBE_BATCH]
            xy = (data.x_train[pick].clone(), data.y_train[pick].clone())
            self.__dict__["_probe_xy"] = xy
        return xy

    def train(self, spec: Any, seed: int, init_weights: Any = None,
              epochs: int | None = None, fidelity: float = 1.0) -> Rollout:
        task = self.task if epochs is None else replace(self.task, epochs=int(epochs))
        return run_rollout(spec, task, self.reward, seed, init_weights or None,
                           fidelity=check_fidelity(fidelity))


class SyntheticEvaluator(Evaluator):
    """Instant reward with a known optimum: the fraction of decisions equal to ``target``.

    For testing strategies: the best architecture is known, so one can check that a strategy
    raises its probability. ``noise`` adds Gaussian noise seeded by the evaluation seed.
    """

    instant = True

    def __init__(self, space: FactorizedSpace, target: Sequence[int], noise: float = 0.0) -> None:
        self.space, self.noise = space, noise
        self.target = np.asarray(space.check(target))
        self.signature = f"synthetic|{space.signature}|{list(self.target)}|{noise}"
        self.reward = RewardConfig()

    def evaluate(self, spec: Any, seed: int) -> RolloutResult:
        d = np.asarray(self.space.encode(spec))
        acc = float((d == self.target).mean())
        if self.noise:
            acc += float(np.random.default_rng(seed).normal(0.0, self.noise))
        return RolloutResult(spec.to_str(), spec.key, "ok", "", acc, acc, None, None, None,
                             0.0, 0, seed)


class MacroTableEvaluator(Evaluator):
    """NAS-Bench-Macro lookups: a query costs nothing but the query (and its FLOPs estimate).

    The accuracy is the table's ``mean_acc`` (noiseless), or in ``noisy`` mode one of the three
    seeds' ``test_acc``, drawn by the evaluation seed as a real training would give. The
    reward is the accuracy as a fraction, or MnasNet's reward with the table's FLOPs as the
    cost (``RewardConfig("macs", target)``). ``train_seconds`` is left at 0; a query's compute
    estimate is ``flops / table.mean_flops`` (:meth:`cost`).
    """

    instant = True

    def __init__(self, path: str, reward: RewardConfig | None = None, noisy: bool = False,
                 tag: str = "", invert: bool = False) -> None:
        self.table = load_macro_table(str(path))
        self.reward = reward or RewardConfig()
        if self.reward.target is not None and self.reward.metric != "macs":
            raise ConfigError("NAS-Bench-Macro has no latency: use a FLOPs target (metric 'macs')")
        self.noisy = noisy
        self.input_size = 32
        # ``tag`` separates the cache of benchmark runs that must not share results (a
        # knowledge-source experiment teaches only through the critic, never by the cache).
        # ``invert`` reports 1 - accuracy: a task that ranks the table upside down, the
        # misleading knowledge source of the transfer benchmarks.
        self.invert = invert
        self.signature = f"macro|{self.table.path}|noisy={noisy}|{tag}" + (
            "|inverted" if invert else "")

    def evaluate(self, spec: Any, seed: int) -> RolloutResult:
        key = spec.key
        e = self.table.entries.get(key)
        if e is None:
            return RolloutResult(key, key, "invalid", f"{key!r} is not in the table",
                                 self.reward.failure_reward)
        acc = e.test_acc[int(np.random.default_rng(seed).integers(3))] if self.noisy else e.mean_acc
        acc /= 100.0
        if self.invert:
            acc = 1.0 - acc
        r = mnas_reward(acc, e.flops, self.reward)
        return RolloutResult(key, key, "ok", "", r, acc, None, e.flops, e.params, 0.0, 0, seed)

    def cost(self, key: str) -> float:
        """Training-compute estimate of one query, in units of the table's mean FLOPs."""
        return self.table.entries[key].flops / self.table.mean_flops

    def known_factor(self, spec: Any) -> float | None:
        """``(FLOPs / T) ** w`` for a FLOPs target (the table's FLOPs stand for analytic
        ones), else None."""
        e = self.table.entries.get(getattr(spec, "key", None))
        if self.reward.target is None or e is None:
            return None
        return mnas_reward(1.0, e.flops, self.reward)

    def features(self, spec: Any) -> Sequence[float] | None:
        """Log FLOPs and log params (analytic for a real network; the table's here)."""
        e = self.table.entries.get(getattr(spec, "key", None))
        if e is None:
            return None
        return [float(np.log(max(e.flops, 1))), float(np.log(max(e.params, 1)))]
