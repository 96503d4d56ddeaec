"""The search loop (DESIGN.md's numbered loop) with the vanilla parts; later parts plug in here.

One iteration = one batch of B architectures:

1. **Sample**: ``strategy.ask(B)``: B fresh proposals, or fewer when the strategy replays
   the rest of its update's batch from its experience buffer (replays are no evaluations).
2. **Decide**: an architecture already evaluated on this task signature (in any experiment)
   reuses its stored result, flagged ``cached``; otherwise it is trained. (The critic's
   decision module will add ``predicted`` and ``audited`` here.)
3. **Evaluate**: the evaluator trains it; each evaluation is committed as it completes.
4. **Update**: ``strategy.tell(...)`` (PPO); its metrics (entropy, loss, the replay weights)
   are recorded per update (``Store.updates``).
5. **Persist**: the strategy's state, the loop's counters and timers, atomically.

Resume is exact: the checkpoint restores every generator, and evaluations already recorded for
the interrupted batch are reused slot by slot, so a resumed search makes the same decisions as
an uninterrupted one and nothing recorded is lost or duplicated.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any

import numpy as np

from fnas.agent.buffer import ReplayConfig
from fnas.agent.ppo import PPOConfig
from fnas.errors import ConfigError, StoreError
from fnas.knowledge.store import Evaluation, Experiment, Store
from fnas.search.callbacks import dispatch
from fnas.search.checkpoint import load_checkpoint, save_checkpoint
from fnas.search.evaluators import Evaluator, ProxyEvaluator
from fnas.search.ppo import PPOStrategy
from fnas.search.strategy import Strategy, Verdict
from fnas.space.factorized import FactorizedSpace
from fnas.space.macro import macro_space
from fnas.space.mnas import mnas_space
from fnas.tasks.reward import RewardConfig
from fnas.tasks.trainer import TaskConfig

__all__ = ["SearchConfig", "SearchOutcome", "run_search", "resume_search", "STRATEGIES",
           "SPACES", "replay_config"]

logger = logging.getLogger(__name__)


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
            SPACES[name] = lambda input_size=224, _space=obj: _space
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
        from fnas.search.config_io import search_config_from_dict

        return search_config_from_dict(d, strict=strict)


@dataclass
class SearchOutcome:
    """What a finished (or stopped) search returns."""

    experiment: Experiment
    best: list[Evaluation]
    stats: dict[str, float]


_TIMERS = ("sample", "evaluate", "train", "pool", "store", "update", "checkpoint", "wall")


def pool_epochs(cfg: SearchConfig, evaluator: Evaluator) -> int | None:
    """Epochs of a pool-initialised training in this search, or None if the pool is off.

    Raises:
        ConfigError: the pool is ``on`` but the evaluator trains no weights (a table).
    """
    if cfg.pool == "off" or (cfg.pool == "auto" and (cfg.strategy != "fnas"
                                                     or not evaluator.trains)):
        return None
    if not evaluator.trains:
        raise ConfigError("the knowledge pool needs an evaluator that trains weights (a "
                          "benchmark table has none): use pool 'off' or 'auto'")
    return cfg.pool_epochs or max(1, evaluator.epochs // 2)


def task_signature(cfg: SearchConfig, evaluator: Evaluator) -> str:
    """The evaluator's signature, marked when the pool shortens trainings: pool-initialised
    results share the cache only with runs that use the pool the same way."""
    if not isinstance(evaluator.signature, str) or not evaluator.signature.strip():
        raise ConfigError(f"evaluator {type(evaluator).__name__} has an empty signature: set "
                          "its .signature to name everything that determines its results "
                          "(runs with equal signatures share cached results)")
    e = pool_epochs(cfg, evaluator)
    return evaluator.signature + ("" if e is None else f"|pool:e{e}")


def _rollout_seed(seed: int, iteration: int, slot: int) -> int:
    return int(np.random.SeedSequence([seed, iteration, slot]).generate_state(1)[0])


def _make(cfg: SearchConfig, evaluator: Evaluator | None,
          space: FactorizedSpace | None) -> tuple[Evaluator, FactorizedSpace, Strategy]:
    evaluator = evaluator or ProxyEvaluator(cfg.task, cfg.reward)
    if space is None:
        space = SPACES[cfg.space](getattr(evaluator, "input_size", 224))
    strategy = STRATEGIES[cfg.strategy](space, cfg)
    return evaluator, space, strategy


def run_search(store: Store, cfg: SearchConfig, *, name: str | None = None,
               evaluator: Evaluator | None = None, space: FactorizedSpace | None = None,
               progress: bool = True, stop_after: int | None = None,
               executor: Any = None, callbacks: Sequence[Any] = ()) -> SearchOutcome:
    """Start a new search recorded in ``store``.

    ``stop_after`` stops after that many iterations (as a kill would, minus the kill), leaving
    the experiment resumable. ``callbacks`` (``fnas.search.callbacks``) run after each
    evaluation and each update; one that raises ``StopSearch`` stops the search.
    ``executor`` (``fnas.search.executors``) runs the rollouts; None runs them here, one
    after the other.

    Raises:
        ConfigError: bad configuration. StoreError: the name is taken, or the store fails.
    """
    evaluator, space, strategy = _make(cfg, evaluator, space)
    kind = cfg.task.dataset.split(":", 1)[0]
    name = name or f"{cfg.strategy}-{kind}-s{cfg.seed}-{datetime.now():%Y%m%d-%H%M%S}"
    config = {**cfg.to_dict(), "decision_signature": space.decision_signature}
    _check_new_run(store, cfg, space, name, executor)  # nothing is written before this
    exp = store.create_experiment(name, cfg.strategy, cfg.seed, space.signature,
                                  task_signature(cfg, evaluator), config, cfg.budget)
    store.acquire_lease(exp.id, exp.name)
    _pretrain(store, exp, cfg, space, strategy, evaluator)
    return _loop(store, exp, cfg, evaluator, strategy, {}, progress, stop_after, executor,
                 callbacks)


def _check_device(device: str, executor: Any) -> None:
    """The task's device is usable where the rollouts run (here, or on the Ray cluster)."""
    if executor is not None and hasattr(executor, "check_device"):
        executor.check_device(device)
    else:
        from fnas.tasks.trainer import check_device

        check_device(device)


def _check_new_run(store: Store, cfg: SearchConfig, space: FactorizedSpace, name: str,
                   executor: Any) -> None:
    """Everything a new run needs, checked before its row is created (no phantom run)."""
    from fnas.knowledge.store import check_run_name

    check_run_name(name)
    _check_device(cfg.task.device, executor)
    if cfg.knowledge not in ("none", "all"):
        for r in (r.strip() for r in cfg.knowledge.split(",") if r.strip()):
            e = store.get_experiment(r)
            if e.config.get("decision_signature") != space.decision_signature:
                raise ConfigError(f"run {e.name!r} searched other decisions: it cannot teach "
                                  "this search")


def gather_knowledge(store: Store, exclude: int, decision_signature: str,
                     which: str = "all", rescore: Any = None,
                     ) -> tuple[list[tuple[tuple[int, ...], float]], list[str]]:
    """Real results of earlier experiments with the same decisions, each distinct architecture
    of an experiment once (its first real result; a cached repeat is no new evidence), each
    experiment's rewards turned into rank-Gaussian scores within that experiment (so that
    tasks of different accuracy levels and heavy low tails teach the same ranking). Returns
    ``(knowledge, experiment names)``.

    ``rescore(accuracy, latency_ms, macs) -> reward`` (this search's reward, e.g.
    :meth:`Evaluator.rescore`) re-scores every stored measurement first: a run that optimised
    another objective teaches what it *measured*, not what it was rewarded for. A run lacking
    a metric the new reward needs (no latency recorded, say) teaches its own rewards instead.

    Raises:
        StoreError: ``which`` names an unknown run. ConfigError: it names an incompatible one.
    """
    from fnas.agent.acquisition import rank_gauss

    if which == "none":
        return [], []
    if which == "all":
        exps = [e for e in store.list_experiments()
                if e.id != exclude and e.config.get("decision_signature") == decision_signature]
    else:
        exps = [store.get_experiment(r.strip()) for r in which.split(",") if r.strip()]
        for e in exps:
            if e.config.get("decision_signature") != decision_signature:
                raise ConfigError(f"run {e.name!r} searched other decisions: it cannot teach "
                                  "this search")
    knowledge, names = [], []
    for e in exps:
        rows, seen = [], set()
        for ev in store.evaluations(e.id):
            if ev.status == "ok" and not ev.predicted and (ev.trained or ev.cached) \
                    and ev.arch_key not in seen:
                seen.add(ev.arch_key)
                rows.append(ev)
        if len(rows) < 2:
            continue
        r = np.array([ev.reward for ev in rows])
        if rescore is not None:
            try:
                r = np.array([rescore(ev.accuracy, ev.latency_ms, ev.macs) for ev in rows])
            except ConfigError:  # a metric this reward needs was not recorded by that run
                pass
        knowledge += [(ev.decisions, float(z)) for ev, z in zip(rows, rank_gauss(r),
                                                                 strict=True)]
        names.append(e.name)
    return knowledge, names


def _pretrain(store: Store, exp: Experiment, cfg: SearchConfig, space: FactorizedSpace,
              strategy: Strategy, evaluator: Evaluator) -> None:
    rescore = evaluator.rescore if cfg.knowledge_as == "measurements" else None
    knowledge, names = gather_knowledge(store, exp.id, space.decision_signature, cfg.knowledge,
                                        rescore)
    used = strategy.pretrain(knowledge) if knowledge else 0
    store.update_experiment(exp.id, stats={"knowledge/points": used,
                                           "knowledge/experiments": names if used else []})


def resume_search(store: Store, ref: int | str, *, budget: int | None = None,
                  budget_seconds: float | None = None,
                  evaluator: Evaluator | None = None, space: FactorizedSpace | None = None,
                  progress: bool = True, stop_after: int | None = None,
                  executor: Any = None, callbacks: Sequence[Any] = ()) -> SearchOutcome:
    """Continue a stopped search from its last checkpoint; ``budget`` may extend it (any
    executor: rollouts that were in flight when it stopped run again); ``budget_seconds``
    sets the run's compute limit (total wall seconds over resumes) for this call.

    Raises:
        StoreError: unknown run, corrupted checkpoint, or a task/space that changed since.
    """
    exp = store.get_experiment(ref)
    try:
        cfg = SearchConfig.from_dict(exp.config)
    except ConfigError as e:
        raise StoreError(f"run {exp.name!r}: field 'config' is unusable: {e}") from None
    _check_device(cfg.task.device, executor)
    store.acquire_lease(exp.id, exp.name)
    if budget is not None:
        cfg = replace(cfg, budget=budget)
        store.update_experiment(exp.id, budget=budget)
    if budget_seconds is not None:
        cfg = replace(cfg, budget_seconds=budget_seconds)
    evaluator, space, strategy = _make(cfg, evaluator, space)
    if space.signature != exp.space_signature or \
            task_signature(cfg, evaluator) != exp.task_signature:
        raise StoreError(f"run {exp.name!r} was recorded with another space or task "
                         "(data or training settings changed); start a new run instead")
    loop_state = _restore(store, exp, strategy)
    if loop_state is None:  # killed before its first update: pre-train again, as at the start
        loop_state = {}
        _pretrain(store, exp, cfg, space, strategy, evaluator)
    return _loop(store, exp, cfg, evaluator, strategy, loop_state, progress, stop_after,
                 executor, callbacks)


def _restore(store: Store, exp: Experiment, strategy: Strategy) -> dict[str, Any] | None:
    """Restore ``strategy`` from the run's checkpoint; its loop counters, or None without one.
    A damaged checkpoint, or one that does not fit the run, refuses the resume in one line
    before anything is recorded; a run left ``running`` by a crash is then ``interrupted``."""
    try:
        ckpt = load_checkpoint(store.run_dir(exp.name))
        if ckpt is None:
            return None
        tensors, meta = ckpt
        loop_state = _checked_loop_state(exp, meta)
        try:
            strategy.load_state(tensors, meta["strategy"])
        except (KeyError, IndexError, TypeError, ValueError, RuntimeError, AttributeError) as e:
            why = " ".join(f"{type(e).__name__}: {e}".split())[:160]
            raise StoreError(f"run {exp.name!r}: its checkpoint does not fit the run "
                             f"(field 'strategy': {why}); remove "
                             f"{store.run_dir(exp.name)}/checkpoint.* to restart the run from "
                             "its recorded evaluations") from None
        return loop_state
    except StoreError:
        if store.get_experiment(exp.id).status == "running":
            store.update_experiment(exp.id, status="interrupted")
        raise


def _checked_loop_state(exp: Experiment, meta: Any) -> dict[str, Any]:
    """A checkpoint's loop counters, type-checked, or a StoreError naming the field."""
    def bad(field: str) -> StoreError:
        return StoreError(f"run {exp.name!r}: its checkpoint's field {field!r} is damaged or "
                          "belongs to another run; remove the checkpoint to restart the run "
                          "from its recorded evaluations")
    if not isinstance(meta, dict) or not isinstance(meta.get("strategy"), dict):
        raise bad("strategy")
    loop = meta.get("loop")
    if not isinstance(loop, dict):
        raise bad("loop")
    if loop.get("experiment", exp.id) != exp.id:
        raise bad("loop.experiment")
    for k in ("iteration", "n_done", "n_trained"):
        v = loop.get(k, 0)
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 2**31:
            raise bad(f"loop.{k}")
    timers = loop.get("timers", {})
    if not isinstance(timers, dict) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in timers.values()):
        raise bad("loop.timers")
    return loop


def _loop(store: Store, exp: Experiment, cfg: SearchConfig, evaluator: Evaluator,
          strategy: Strategy, loop_state: dict[str, Any], progress: bool,
          stop_after: int | None, executor: Any = None,
          callbacks: Sequence[Any] = ()) -> SearchOutcome:
    from tqdm.auto import tqdm

    e_pool = pool_epochs(cfg, evaluator)
    runner = None
    if e_pool is not None:
        from fnas.search.pooling import PoolRunner

        runner = PoolRunner(store, exp.config.get("decision_signature", exp.space_signature),
                            exp.task_signature, e_pool)
    iteration = int(loop_state.get("iteration", 0))
    n_done = int(loop_state.get("n_done", 0))
    n_trained = int(loop_state.get("n_trained", 0))
    by_trained = cfg.budget_counts == "trained"
    timers = {k: float(loop_state.get("timers", {}).get(k, 0.0)) for k in _TIMERS}
    real = [e.reward for e in store.evaluations(exp.id) if not e.predicted and e.status == "ok"]
    best = max(real, default=float("-inf"))
    keep = {k: v for k, v in store.get_experiment(exp.id).stats.items()
            if k.startswith("knowledge/")}
    store.update_experiment(exp.id, status="running")
    progress_now = n_trained if by_trained else n_done
    bar = tqdm(total=cfg.budget, initial=min(progress_now, cfg.budget), desc=exp.name,
               disable=not progress, unit="arch", dynamic_ncols=True)
    t_wall = time.perf_counter()
    iters_this_call = 0
    stop_asked: str | None = None  # a callback's StopSearch message

    def ask(message: str | None) -> None:
        nonlocal stop_asked
        stop_asked = stop_asked or message
    metrics: dict[str, float] = {}
    try:
        while (n_trained if by_trained else n_done) < cfg.budget and n_done < cfg.sample_cap \
                and (stop_after is None or iters_this_call < stop_after) and not stop_asked \
                and not _out_of_time(cfg, timers) and not getattr(strategy, "exhausted", False):
            n, left = cfg.batch, cfg.sample_cap - n_done
            while n > 1 and strategy.fresh_count(n) > left:  # the last batch may be smaller
                n -= 1
            fresh = strategy.fresh_count(n)
            if left - fresh == 1 and fresh == n:  # never leave a lone last sample: fold it in
                n += 1  # (a strategy that replays gives a lone sample company from memory)
            t = time.perf_counter()
            proposals = strategy.ask(n)  # fewer than n if the rest is replayed from memory
            n = len(proposals)
            verdicts = strategy.decide(proposals)
            timers["sample"] += time.perf_counter() - t
            t = time.perf_counter()
            existing = {e.slot: e for e in store.evaluations(exp.id, iteration)}
            timers["store"] += time.perf_counter() - t
            if runner is not None:
                runner.begin_batch(existing.values())
            for slot, p in enumerate(proposals):
                ev = existing.get(slot)
                if ev is not None and ev.arch_key != p.spec.key:
                    raise StoreError(f"run {exp.name!r}: recorded slot {slot} of iteration "
                                     f"{iteration} holds another architecture; cannot resume")

            def done(ev: Evaluation, existing: dict[int, Evaluation] = existing) -> None:
                nonlocal n_trained, best
                n_trained += ev.trained
                if ev.status == "ok" and not ev.predicted:
                    best = max(best, ev.reward)
                if ev.trained or not by_trained:
                    bar.update(1)
                bar.set_postfix(_postfix(best, strategy, n_trained))
                _log_evaluation(exp, ev, best, resumed=existing.get(ev.slot) is ev)
                ask(dispatch(callbacks, "on_evaluation", exp, ev))

            if executor is None or executor.name == "local":  # in order, here
                evals = []
                for slot, p in enumerate(proposals):
                    ev = existing.get(slot)
                    if ev is None:
                        ev = _evaluate(store, exp, evaluator, p, iteration, slot, cfg.seed,
                                       timers, verdicts[slot], runner)
                    evals.append(ev)
                    done(ev)
            else:
                evals = _evaluate_parallel(store, exp, evaluator, proposals, verdicts, existing,
                                           iteration, cfg.seed, timers, runner, executor, done)
            t = time.perf_counter()
            strategy.observe(evals)
            metrics = strategy.tell(proposals, [e.reward for e in evals])
            timers["update"] += time.perf_counter() - t
            bar.set_postfix(_postfix(best, strategy, n_trained))  # this round's screening too
            n_done += n
            t = time.perf_counter()
            store.add_update(exp.id, iteration, metrics, n_done=n_done, n_trained=n_trained)
            timers["store"] += time.perf_counter() - t
            _log_update(exp, iteration, n_done, n_trained, best, metrics)
            ask(dispatch(callbacks, "on_update", exp, iteration, metrics))
            iteration += 1
            iters_this_call += 1
            t = time.perf_counter()
            timers["wall"] += t - t_wall
            t_wall = t
            if cfg.checkpoint:
                tensors, meta = strategy.state()
                loop = {"iteration": iteration, "n_done": n_done, "n_trained": n_trained,
                        "timers": timers, "experiment": exp.id}
                save_checkpoint(store.run_dir(exp.name), tensors,
                                {"strategy": meta, "loop": loop})
            timers["checkpoint"] += time.perf_counter() - t
            t = time.perf_counter()
            stats = {**keep, **timers, "iteration": iteration, "n_done": n_done,
                     "n_trained": n_trained, "best_reward": best,
                     **{f"last/{k}": v for k, v in metrics.items()}}
            store.update_experiment(exp.id, stats=stats)
            timers["store"] += time.perf_counter() - t
    except KeyboardInterrupt:  # Ctrl-C, and SIGTERM (the CLI turns it into this)
        store.update_experiment(exp.id, status="interrupted")
        raise
    except (StoreError, OSError, ConfigError):  # a full disk, a damaged file: resumable
        try:
            store.update_experiment(exp.id, status="interrupted")
        except StoreError:
            pass  # the disk may be too full even for that; resume works all the same
        raise
    finally:
        bar.close()
        if runner is not None:
            runner.close()
        store.release_lease(exp.id)
    timers["wall"] += time.perf_counter() - t_wall
    if runner is not None:
        pooled = [e for e in store.evaluations(exp.id) if e.pool_snapshot is not None]
        keep.update({"pool/rollouts": len(pooled), "pool/hit_ratio": float(np.mean(
            [e.pool_hit_ratio for e in pooled])) if pooled else 0.0, "pool/coverage": float(
            np.mean([e.pool_coverage for e in pooled])) if pooled else 0.0})
    spent = (n_trained if by_trained else n_done) >= cfg.budget
    seconds = not spent and _out_of_time(cfg, timers)
    exhausted = not spent and not seconds and getattr(strategy, "exhausted", False)
    done = spent or seconds or exhausted or n_done >= cfg.sample_cap
    # why it stopped: a budget counted in trainings can end at the sample cap instead (a
    # policy that only resamples known architectures), which the user must be told
    reason = "budget" if spent else "seconds" if seconds else "exhausted" if exhausted \
        else "max_samples" if done else "callback" if stop_asked else "stopped"
    stats = {**keep, **timers, "iteration": iteration, "n_done": n_done, "n_trained": n_trained,
             "best_reward": best, "stop_reason": reason,
             **({"stop_message": stop_asked} if reason == "callback" else {}),
             **{f"last/{k}": v for k, v in metrics.items()}}
    store.update_experiment(exp.id, status="done" if done else "stopped", stats=stats)
    logger.info("run %s %s (%s): %d samples, %d trained, best reward %.4f", exp.name,
                "done" if done else "stopped", reason, n_done, n_trained, best)
    return SearchOutcome(store.get_experiment(exp.id), store.top(exp.id, 5), stats)


def _out_of_time(cfg: SearchConfig, timers: dict[str, float]) -> bool:
    return cfg.budget_seconds is not None and timers["wall"] >= cfg.budget_seconds


_LOGGED = ("losses/entropy", "controller/entropy", "losses/approx_kl", "losses/clipfrac",
           "screen/screened", "critic/pick_tau", "replay/n")
"""Update metrics that the update's log line shows, where the strategy reports them."""


def _log_evaluation(exp: Experiment, ev: Evaluation, best: float, resumed: bool) -> None:
    """One INFO line per evaluation: where, how (trained, cached, predicted), reward, time."""
    if not logger.isEnabledFor(logging.INFO):
        return
    how = "trained" if ev.trained else "cached" if ev.cached else \
        "predicted" if ev.predicted else "recorded"
    logger.info("run %s eval %d.%d %s%s: reward %.4f (%s), best %.4f, %.2f s, %s", exp.name,
                ev.iteration, ev.slot, how, " (recorded before the resume)" if resumed else "",
                ev.reward, ev.status, best, ev.train_seconds, ev.arch)


def _log_update(exp: Experiment, iteration: int, n_done: int, n_trained: int, best: float,
                metrics: dict[str, Any]) -> None:
    """One INFO line per policy update: its index, progress, best so far, key metrics."""
    if not logger.isEnabledFor(logging.INFO):
        return
    stats = "".join(f", {k} {float(v):.4g}" for k, v in metrics.items()
                    if k in _LOGGED and isinstance(v, (int, float)) and not isinstance(v, bool))
    logger.info("run %s update %d: %d samples, %d trained, best %.4f%s", exp.name, iteration,
                n_done, n_trained, best, stats)


def _postfix(best: float, strategy: Strategy, n_trained: int) -> dict[str, str]:
    """The progress bar's postfix: best real reward, and what the critic screened out."""
    out = {"best": f"{best:.4f}" if best > float("-inf") else "-"}
    screened = getattr(strategy, "screened_total", None)
    if screened is not None:
        out["screened"] = str(screened)
        out["trained"] = str(n_trained)
    return out


def _evaluate_parallel(store: Store, exp: Experiment, evaluator: Evaluator, proposals: list,
                       verdicts: list, existing: dict[int, Evaluation], iteration: int,
                       seed: int, timers: dict[str, float], runner: Any, executor: Any,
                       done: Any) -> list[Evaluation]:
    """One batch through a parallel executor: cached and predicted results first, then every
    training in flight at once, each recorded as it completes (the driver is the only
    writer); a repeat of an architecture trained in this same batch waits for it and is
    then served from the cache, as in the sequential path."""
    from fnas.search.executors import RolloutJob

    evals: list[Evaluation | None] = [None] * len(proposals)
    jobs, later, meta = [], [], {}
    first_of: dict[str, int] = {}
    for slot, p in enumerate(proposals):
        ev = existing.get(slot)
        if ev is None:
            ev = _settle(store, exp, evaluator, p, iteration, slot, timers, verdicts[slot])
            if ev is not None:
                done(ev)
        if ev is not None:
            evals[slot] = ev
            continue
        if p.spec.key in first_of:
            later.append(slot)
            continue
        first_of[p.spec.key] = slot
        rs = _rollout_seed(seed, iteration, slot)
        if runner is not None:
            pool_s = runner.seconds
            init, epochs, fields, stats = runner.prepare(evaluator, p.spec, rs)
            timers["pool"] += runner.seconds - pool_s
            jobs.append(RolloutJob(slot, p.spec, rs, init, epochs, train=True))
        else:
            fields, stats = {}, None
            jobs.append(RolloutJob(slot, p.spec, rs))
        meta[slot] = (fields, stats)
    t = time.perf_counter()
    for job, rollout in executor.run(evaluator, jobs):
        slot = job.slot
        fields, stats = meta[slot]
        then = None
        if runner is not None:
            pool_s = runner.seconds
            then = runner.stage(proposals[slot].spec, rollout, stats)
            timers["pool"] += runner.seconds - pool_s
        ev = _record_trained(store, exp, proposals[slot], iteration, slot, job.seed,
                             rollout.result, verdicts[slot], fields, timers, then)
        evals[slot] = ev
        timers["train"] += rollout.result.train_seconds
        done(ev)
    timers["evaluate"] += time.perf_counter() - t
    for slot in later:  # now a cached result (or retrained if its twin failed transiently)
        evals[slot] = _evaluate(store, exp, evaluator, proposals[slot], iteration, slot, seed,
                                timers, verdicts[slot], runner)
        done(evals[slot])
    return evals  # type: ignore[return-value]


def _base(exp: Experiment, p, iteration: int, slot: int,
          verdict: Verdict | None = None) -> dict[str, Any]:
    v = verdict or Verdict()
    return dict(experiment_id=exp.id, iteration=iteration, slot=slot, arch_key=p.spec.key,
                arch=p.spec.to_str(), decisions=p.decisions, task_signature=exp.task_signature,
                behaviour_logp=p.logp, predicted_reward=v.mean, predicted_spread=v.spread)


def _settle(store: Store, exp: Experiment, evaluator: Evaluator, p, iteration: int, slot: int,
            timers: dict[str, float], verdict: Verdict) -> Evaluation | None:
    """Record a cached or predicted result; None if ``p`` must be trained."""
    base = _base(exp, p, iteration, slot, verdict)
    t = time.perf_counter()
    prior = store.lookup_trained(exp.task_signature, p.spec.key)
    timers["store"] += time.perf_counter() - t
    if prior is None and verdict.action == "predict":
        ev = Evaluation(**base, reward=float(verdict.mean), status="ok",
                        message=f"predicted by the critic (spread {verdict.spread:.4f})",
                        predicted=True)
    elif prior is not None:
        if prior.accuracy is None and prior.status == "ok":
            reward = prior.reward  # nothing to re-score from: keep the recorded reward
        else:
            reward = evaluator.rescore(prior.accuracy, prior.latency_ms, prior.macs)
        ev = Evaluation(**base, reward=reward, status=prior.status, message=prior.message,
                        accuracy=prior.accuracy, latency_ms=prior.latency_ms, macs=prior.macs,
                        params=prior.params, seed=prior.seed, cached=True, epochs=prior.epochs)
    else:
        return None
    t = time.perf_counter()
    ev = store.add_evaluation(ev)
    timers["store"] += time.perf_counter() - t
    return ev


def _record_trained(store: Store, exp: Experiment, p, iteration: int, slot: int, rs: int,
                    r: Any, verdict: Verdict, extra: dict[str, Any],
                    timers: dict[str, float], then: Any = None) -> Evaluation:
    """Record a training's evaluation (and, through ``then``, its pool entries with it)."""
    ev = Evaluation(**_base(exp, p, iteration, slot, verdict), reward=r.reward, status=r.status,
                    message=r.message, accuracy=r.accuracy, latency_ms=r.latency_ms,
                    macs=r.macs, params=r.params, train_seconds=r.train_seconds, seed=rs,
                    trained=True, audited=verdict.action == "audit", epochs=r.epochs or None,
                    **extra)
    t = time.perf_counter()
    ev = store.add_evaluation(ev, then)
    timers["store"] += time.perf_counter() - t
    return ev


def _evaluate(store: Store, exp: Experiment, evaluator: Evaluator, p, iteration: int, slot: int,
              seed: int, timers: dict[str, float], verdict: Verdict | None = None,
              runner: Any = None) -> Evaluation:
    """Reuse a stored result for this task, predict, or train here; record the evaluation."""
    verdict = verdict or Verdict()
    ev = _settle(store, exp, evaluator, p, iteration, slot, timers, verdict)
    if ev is not None:
        return ev
    rs = _rollout_seed(seed, iteration, slot)
    t = time.perf_counter()
    extra: dict[str, Any] = {}
    then = None
    if runner is not None:
        pool_s = runner.seconds
        rollout, extra, stats = runner.train(evaluator, p.spec, rs)
        r = rollout.result
        t += runner.seconds - pool_s  # the pool's share is not the rollout's
        timers["evaluate"] += time.perf_counter() - t
        then = runner.stage(p.spec, rollout, stats)
        timers["pool"] += runner.seconds - pool_s
    else:
        r = evaluator.evaluate(p.spec, rs)
        timers["evaluate"] += time.perf_counter() - t
    timers["train"] += r.train_seconds
    return _record_trained(store, exp, p, iteration, slot, rs, r, verdict, extra, timers, then)
