"""fnas inside Optuna: :class:`FnasSampler`, the ``fnas`` strategy (its screening critic and
its policy) as an Optuna sampler of categorical parameters, so that a study keeps Optuna's
storage, dashboard, pruners and ``study.optimize`` loop::

    import optuna
    from fnas.integration.optuna import FnasSampler

    study = optuna.create_study(direction="maximize", sampler=FnasSampler(seed=0))
    study.optimize(objective, n_trials=100)   # objective: trial.suggest_categorical(...)

How it maps onto fnas's loop (docs/DESIGN.md, "The loop"):

- **The space.** Each categorical parameter of the study (one with two choices or more, in
  every finished trial: Optuna's ``IntersectionSearchSpace``) is one decision, in the order of
  their names; the space is fixed by the first finished trial and kept. Other parameters (floats,
  integers, conditional ones) and every parameter of a trial before the space is known go to
  the independent sampler (``RandomSampler(seed)`` by default), as Optuna's own relative
  samplers do: the study's first trial is a random one. ``features`` (cheap numbers of the
  parameters: log FLOPs, log params) are what the critic knows before training, as an
  evaluator's ``features`` in fnas's loop.
- **Batches.** The strategy asks ``batch`` architectures at a time; the sampler hands them to
  the next trials in order, and once every one of them has a result it tells the strategy and
  asks the next batch. A proposal the strategy would not train (the veto rule's ``predict``)
  is recorded as the loop records it, without a trial; a proposal already evaluated in the
  study is served from the study's result (``cached``), as fnas's cache does.
- **Results.** A complete trial's value (negated for ``direction="minimize"``); a failed
  trial is a failed evaluation (the lowest reward so far, as ``failure_reward`` is below any
  accuracy); a pruned trial counts as a low-fidelity result: its last intermediate value
  teaches the controller, never the critic.
- **Parallel workers.** With ``n_jobs`` threads, a worker that finds the batch handed out
  waits for the batch's trials that run in other threads. A slot whose trial runs elsewhere
  (another process, or one that was killed) is handed out again rather than waited for,
  unless the storage has Optuna's heartbeat, which fails the trials of dead workers; a thread
  that asks more trials than a batch before telling them (``study.ask``) gets independent ones.
- **Resume.** Each proposed trial records its batch and slot, and the batch it triggered
  records which trials' results the strategy was told. A sampler made in a new process (same
  ``seed``, ``batch`` and settings) replays the study's trials into a fresh strategy, which
  is deterministic, and goes on as an uninterrupted one would (as ``strategies/tpe.py`` does).
- **Other trials.** Finished trials that this sampler did not propose (an earlier sampler's,
  ``enqueue_trial``'s) before its first batch are the critic's knowledge (pre-training, as
  results of earlier runs are, ranked within the study); those that finish later are in the
  study but do not teach the strategy. Enqueued trials are never given a proposal.

Needs ``optuna`` (``pip install 'optuna>=3.4'``, the ``optuna`` extra); without it,
importing this module is a one-line error. One objective only.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import fields, replace
from typing import Any

from fnas.errors import ConfigError

try:  # first: without Optuna, the error comes before fnas's heavier imports
    import optuna
except ImportError:
    raise ConfigError("fnas.integration.optuna needs Optuna: pip install 'optuna>=3.4' "
                      "(fnas's optuna extra)") from None

from fnas.agent.acquisition import rank_gauss
from fnas.api.search import make_space
from fnas.integration.results import Known, Result
from fnas.search.config import SearchConfig
from fnas.strategies.base import Proposal, Strategy, Verdict
from fnas.strategies.fnas import FNASConfig, make_fnas

__all__ = ["FnasSampler"]

logger = logging.getLogger(__name__)

BATCH = next(f.default for f in fields(SearchConfig) if f.name == "batch")
"""fnas's default batch (``SearchConfig.batch``)."""
STALLED = 20
"""Batches in a row that need no trial (every proposal cached or predicted) after which the
sampler leaves the trials to the independent sampler: the strategy has nothing new."""
_RUN, _BATCH, _SLOT, _TOLD, _KNOW = ("fnas:run", "fnas:batch", "fnas:slot", "fnas:told",
                                     "fnas:knowledge")
_DONE = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED,
         optuna.trial.TrialState.FAIL)


class FnasSampler(optuna.samplers.BaseSampler):
    """The ``fnas`` strategy as an Optuna sampler (the module's docstring says how).

    Args:
        seed: seeds the strategy and the default independent sampler; a sampler that resumes
            a study needs the seed (and ``batch`` and ``fnas``) that proposed its trials.
        batch: architectures per round, told together (fnas's default, 8).
        fnas: the strategy's settings (``FNASConfig()``); fidelity rungs and zero-cost probes
            need fnas's own loop (Optuna's pruners stop bad trials early instead).
        independent_sampler: samples what the strategy does not (``RandomSampler(seed)``).
        features: ``params -> numbers`` known of an architecture before it is trained (log
            FLOPs, log parameter count...), read by the critic beside the choices, as an
            evaluator's ``features`` are (``FNASConfig.screen.features``); called on a few
            hundred samples of the space, so it must be cheap.

    Raises:
        ConfigError: a bad setting; in a study, more than one objective.
    """

    def __init__(self, *, seed: int = 0, batch: int = BATCH, fnas: FNASConfig | None = None,
                 independent_sampler: optuna.samplers.BaseSampler | None = None,
                 features: Callable[[Mapping[str, Any]], Sequence[float]] | None = None
                 ) -> None:
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ConfigError(f"FnasSampler seed={seed!r}: expected an integer >= 0")
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise ConfigError(f"FnasSampler batch={batch!r}: expected an integer >= 1")
        fnas = FNASConfig() if fnas is None else fnas
        if not isinstance(fnas, FNASConfig):
            raise ConfigError(f"FnasSampler fnas: expected an FNASConfig, got "
                              f"{type(fnas).__name__}")
        if fnas.screen.rungs or fnas.screen.zero_cost:
            raise ConfigError("FnasSampler: screen rungs and zero_cost need fnas's own loop "
                              "(use Optuna's pruners to stop bad trials early)")
        if features is not None and not callable(features):
            raise ConfigError("FnasSampler features: expected a function params -> numbers")
        self.seed, self.batch, self.cfg, self.features = seed, batch, fnas, features
        self._independent = independent_sampler or optuna.samplers.RandomSampler(seed=seed)
        self._search = optuna.search_space.IntersectionSearchSpace(include_pruned=True)
        self._lock = threading.RLock()
        self._dists: dict[str, Any] | None = None
        self.strategy: Strategy | None = None
        """The fnas strategy (None until the study's space is known)."""

    # ---- Optuna's sampler interface ---------------------------------------------------------
    def reseed_rng(self) -> None:
        self._independent.reseed_rng()

    def infer_relative_search_space(self, study: Any, trial: Any) -> dict[str, Any]:
        if len(study.directions) > 1:
            raise ConfigError("FnasSampler searches one objective: the study has "
                              f"{len(study.directions)}")
        if self._dists is not None:
            return dict(self._dists)
        cat = optuna.distributions.CategoricalDistribution
        return {n: d for n, d in sorted(self._search.calculate(study).items())
                if isinstance(d, cat) and not d.single()}

    def sample_relative(self, study: Any, trial: Any, search_space: dict[str, Any]
                        ) -> dict[str, Any]:
        if not search_space or "fixed_params" in trial.system_attrs:
            return {}  # no space yet (the independent sampler), or an enqueued trial
        with self._lock:
            if self._dists is None:
                self._start(study, search_space)
            d = self._serve(study, trial)
        if d is None:
            return {}
        return {n: dist.to_external_repr(i) for (n, dist), i in zip(self._dists.items(), d,
                                                                     strict=True)}

    def sample_independent(self, study: Any, trial: Any, param_name: str,
                           param_distribution: Any) -> Any:
        return self._independent.sample_independent(study, trial, param_name,
                                                    param_distribution)

    def before_trial(self, study: Any, trial: Any) -> None:
        self._independent.before_trial(study, trial)

    def after_trial(self, study: Any, trial: Any, state: Any, values: Sequence[float] | None
                    ) -> None:
        self._independent.after_trial(study, trial, state, values)

    # ---- the strategy -----------------------------------------------------------------------
    def _start(self, study: Any, dists: dict[str, Any]) -> None:
        """Fix the space, make the strategy, and replay the trials it proposed before."""
        self._dists = dict(dists)
        self._direction = study.direction
        self.space = make_space("optuna", {n: range(len(d.choices)) for n, d in dists.items()})
        body = json.dumps([self.seed, self.batch, repr(self.cfg), self.features is not None,
                           [[n, [repr(c) for c in d.choices]] for n, d in dists.items()]])
        self._run = hashlib.sha256(body.encode()).hexdigest()[:16]
        self._replay(study)

    def _fresh(self) -> None:
        cfg = self.cfg
        self.strategy = make_fnas(self.space, self.seed, cfg.ppo, cfg, cfg.replay_cfg)
        self.strategy.attach(Known(self.features, self._dists))  # known before training
        self._b, self._stalled, self._rewards = -1, 0, []
        self._pending: dict[str, Any] = {}  # records for the next trial handed out
        self._handed: dict[int, tuple[int, int]] = {}  # trial number -> (slot, thread)
        self._knowledge: list[int] | None = None

    def _replay(self, study: Any) -> None:
        """Rebuild the strategy from the trials it proposed (none: a new one)."""
        self._fresh()
        trials = study.get_trials(deepcopy=False)
        mine = [t for t in trials if t.system_attrs.get(_RUN) == self._run]
        told = {int(k): v for t in mine for k, v in t.system_attrs.get(_TOLD, {}).items()}
        know = next((t.system_attrs[_KNOW] for t in mine if _KNOW in t.system_attrs), None)
        if mine:
            self._knowledge = list(know or [])
        by_number = {t.number: t for t in trials}
        self._ask(study)
        while self._b in told:
            for s, p in enumerate(self._props):
                got = [t for t in mine if t.system_attrs.get(_BATCH) == self._b
                       and t.system_attrs.get(_SLOT) == s]
                if any(self._decisions(t) not in (None, p.decisions) for t in got):
                    logger.warning("FnasSampler: the study's fnas trials are not what this "
                                   "sampler proposes (another fnas version?); they teach it "
                                   "as knowledge instead")
                    self._run += "+"
                    self._replay(study)
                    return
            self._tell([None if n is None else by_number[n] for n in told[self._b]])
            self._ask(study)
        if mine:
            self._pending = {}  # what was replayed is recorded already

    def _ask(self, study: Any) -> None:
        """The next batch: the strategy's proposals and verdicts, and the slots to hand out
        (the first batch pre-trains the critic on the study's other results first)."""
        if self._b < 0:
            self._pretrain(study)
        self._b += 1
        self._props: list[Proposal] = self.strategy.ask(self.batch)
        self._verdicts: list[Verdict] = self.strategy.decide(self._props)
        self._queue = [s for s, v in enumerate(self._verdicts) if v.action != "predict"]

    def _pretrain(self, study: Any) -> None:
        """Knowledge: the finished trials this sampler did not propose (recorded by number
        with its first trial, so that a replay uses the same), each architecture once."""
        if self._knowledge is None:
            self._knowledge = [t.number for t in study.get_trials(deepcopy=False, states=(
                optuna.trial.TrialState.COMPLETE,)) if self._decisions(t) is not None]
            self._pending[_KNOW] = self._knowledge
        by_number = {t.number: t for t in study.get_trials(deepcopy=False)}
        rows: dict[tuple[int, ...], float] = {}
        for n in self._knowledge:
            t = by_number[n]
            rows.setdefault(self._decisions(t), self._value(t))
        if len(rows) >= 2:  # as fnas's knowledge: one result or none teaches nothing
            z = rank_gauss(list(rows.values()))
            self.strategy.pretrain([(d, float(v)) for d, v in zip(rows, z, strict=True)])

    # ---- serving trials ---------------------------------------------------------------------
    def _serve(self, study: Any, trial: Any) -> tuple[int, ...] | None:
        """The decisions for ``trial`` (recorded on it), or None: the independent sampler's."""
        me = threading.get_ident()
        while True:
            if self._stalled >= STALLED or getattr(self.strategy, "exhausted", False):
                return None
            trials = study.get_trials(deepcopy=False)
            slots = self._slots(trials)
            cache = self._cache(trials)
            while self._queue:
                s = self._queue.pop(0)
                if not slots.get(s) and self._props[s].decisions not in cache:
                    return self._hand(study, trial, s, me)
            results = [self._result(s, slots.get(s, []), cache) for s in range(len(self._props))]
            missing = [s for s, r in enumerate(results) if r is None]
            if not missing:
                self._tell(results)
                self._stalled += 1
                self._ask(study)
                continue
            running = [(s, t) for s in missing for t in slots.get(s, [])
                       if t.state == optuna.trial.TrialState.RUNNING]
            beat = optuna.storages._heartbeat.is_heartbeat_enabled(study._storage)
            if any(self._handed[t.number][1] != me if t.number in self._handed else beat
                   for _, t in running):
                self._lock.release()  # another worker's trial of this batch: wait for it
                try:
                    time.sleep(0.05)
                finally:
                    self._lock.acquire()
                continue
            mine = {s for s, t in running if t.number in self._handed}
            lost = [s for s in missing if s not in mine]
            if not lost:  # this thread holds them all (study.ask beyond a batch)
                return None
            logger.info("FnasSampler: batch %d slot %d runs in no worker of this sampler: "
                        "proposed again", self._b, lost[0])
            return self._hand(study, trial, lost[0], me)

    def _hand(self, study: Any, trial: Any, s: int, me: int) -> tuple[int, ...]:
        attrs = {_RUN: self._run, _BATCH: self._b, _SLOT: s, **self._pending}
        for k, v in attrs.items():
            study._storage.set_trial_system_attr(trial._trial_id, k, v)
        self._pending = {}
        self._handed[trial.number] = (s, me)
        self._stalled = 0
        return self._props[s].decisions

    def _slots(self, trials: Sequence[Any]) -> dict[int, list[Any]]:
        """The current batch's trials by slot."""
        out: dict[int, list[Any]] = {}
        for t in trials:
            a = t.system_attrs
            if a.get(_RUN) == self._run and a.get(_BATCH) == self._b:
                out.setdefault(int(a[_SLOT]), []).append(t)
        return out

    def _cache(self, trials: Sequence[Any]) -> dict[tuple[int, ...], Any]:
        """Complete trials by decisions (the first of each)."""
        out: dict[tuple[int, ...], Any] = {}
        for t in trials:
            if t.state == optuna.trial.TrialState.COMPLETE:
                d = self._decisions(t)
                if d is not None:
                    out.setdefault(d, t)
        return out

    def _result(self, s: int, own: Sequence[Any], cache: dict) -> Any:
        """Slot ``s``'s result source: its first finished trial, the cached trial, None
        (nothing yet) or the verdict itself (a prediction, 'predicted')."""
        if self._verdicts[s].action == "predict":
            return "predicted"
        done = sorted((t for t in own if t.state in _DONE), key=lambda t: t.number)
        if done:
            return done[0]
        return cache.get(self._props[s].decisions)

    # ---- telling ----------------------------------------------------------------------------
    def _tell(self, sources: Sequence[Any]) -> None:
        """Tell the strategy the batch's results (trials, or None/'predicted' for a
        prediction) and record which they were for the next trial handed out."""
        evals = [self._evaluation(s, src) for s, src in enumerate(sources)]
        self._rewards += [e.reward for e in evals if e.status == "ok" and not e.predicted]
        floor = min(self._rewards, default=0.0)
        evals = [e if math.isfinite(e.reward) else replace(e, reward=floor) for e in evals]
        self.strategy.observe(evals)
        self.strategy.tell(self._props, [e.reward for e in evals])
        told = self._pending.setdefault(_TOLD, {})
        told[str(self._b)] = [src.number if hasattr(src, "number") else None
                              for src in sources]

    def _evaluation(self, s: int, src: Any) -> Result:
        p, v = self._props[s], self._verdicts[s]
        key = self.space.decode(p.decisions).key
        if src is None or src == "predicted":
            return Result(p.decisions, key, float(v.mean), trained=False, predicted=True)
        a = src.system_attrs
        own = a.get(_RUN) == self._run and a.get(_BATCH) == self._b and a.get(_SLOT) == s
        flags = {"trained": own, "cached": not own, "audited": own and v.action == "audit"}
        state = optuna.trial.TrialState
        if self._decisions(src) != p.decisions:  # the objective did not take the proposal
            return Result(p.decisions, key, math.nan, status="failed", **flags)
        if src.state == state.COMPLETE and math.isfinite(src.value):
            return Result(p.decisions, key, self._value(src), **flags)
        if src.state == state.PRUNED and src.intermediate_values:
            last = src.intermediate_values[max(src.intermediate_values)]
            sign = -1.0 if self._minimize else 1.0
            if math.isfinite(last):
                return Result(p.decisions, key, sign * last, status="pruned", **flags)
        return Result(p.decisions, key, math.nan, status="failed", **flags)

    # ---- helpers ----------------------------------------------------------------------------
    def _decisions(self, t: Any) -> tuple[int, ...] | None:
        """A trial's decisions, or None when it lacks one of the space's parameters or took
        a value outside its choices."""
        out = []
        for n, d in self._dists.items():
            if n not in t.params or t.distributions.get(n) != d:
                return None
            out.append(int(d.to_internal_repr(t.params[n])))
        return tuple(out)

    def _value(self, t: Any) -> float:
        return -float(t.value) if self._minimize else float(t.value)

    @property
    def _minimize(self) -> bool:
        return self._direction == optuna.study.StudyDirection.MINIMIZE


