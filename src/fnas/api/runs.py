"""A search recorded in a store (:class:`Search`), and the ways to one that the Python API and
the command line share.

``fnas.create_search`` (:mod:`fnas.api.search`) turns Python arguments (a space object, an
objective function...) into a :class:`~fnas.search.config.SearchConfig` and ends in
:func:`open_search`; ``fnas search`` turns its flags into the same config
(:func:`search_config`: a config file, then a table of settings) and calls :func:`open_search`
too, or :func:`load_search` for ``--resume``. Both then run :meth:`Search.optimize`, so a
search started from Python and one started from the shell are recorded alike.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fnas.agent.threads import MAX_THREADS
from fnas.api.results import best_of, direction_of, params_of, run_space, trials_frame, value_of
from fnas.errors import ConfigError, FnasError, StoreError
from fnas.execution.evaluators import Evaluator, ProxyEvaluator
from fnas.execution.executors import Executor, LocalExecutor
from fnas.execution.objective import ObjectiveEvaluator
from fnas.knowledge.records import Evaluation
from fnas.knowledge.store import Experiment, Store, check_run_name
from fnas.search.config import SearchConfig
from fnas.search.loop import SearchOutcome, resume_search, run_search
from fnas.space.factorized import FactorizedSpace
from fnas.tasks.trainer import MAX_COUNT, check_int

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Search", "open_search", "load_search", "search_config", "open_store"]


class Search:
    """One search recorded in a store: run it with :meth:`optimize`, read it with
    :attr:`best_params`, :attr:`best_value`, :attr:`best`, :meth:`trials` and
    :meth:`trials_dataframe`. Made by
    :func:`fnas.create_search`, :func:`open_search` or :func:`load_search`.

    ``name`` None is a new run that fnas names as it records it (``name`` then holds the
    name); ``config`` None is a recorded run, continued with the settings it recorded.
    """

    def __init__(self, store: Store, name: str | None, config: SearchConfig | None,
                 evaluator: Evaluator | None, space: FactorizedSpace | None,
                 executor: Executor | None = None) -> None:
        self.store, self.name, self.config = store, name, config
        self.evaluator, self.space, self.executor = evaluator, space, executor
        self.outcome: SearchOutcome | None = None

    @property
    def exists(self) -> bool:
        """Whether the run has been started (it is in the store)."""
        if self.name is None:
            return False
        try:
            self.store.get_experiment(self.name)
            return True
        except StoreError:
            return False

    def optimize(self, budget: int | None = None, *, progress: bool = True,
                 stop_after: int | None = None, callbacks: Sequence[Any] = (),
                 budget_seconds: float | None = None, threads: int | None = None,
                 n_workers: int | None = None,
                 executor: str | Executor | None = None) -> SearchOutcome:
        """Run the search until its total ``budget`` (default: the configured one) is spent;
        a search that exists resumes from its last checkpoint, and a larger ``budget``
        extends a finished one. ``budget_seconds`` also stops it when that much compute
        (wall seconds, over resumes) is spent. ``threads``: torch threads per training for
        this call (default: the run's ``threads`` setting, 1; 0: torch's default).
        ``stop_after`` stops after that many rounds (resumable). ``callbacks``
        (:mod:`fnas.search.callbacks`: a ``Callback`` or a function of each evaluation) run
        after each evaluation and update; one may raise ``StopSearch``.

        ``n_workers`` evaluates that many architectures of a batch at once, in worker
        processes on this machine (each trains on ``threads`` torch threads; the objective
        must be picklable by cloudpickle), or as Ray tasks with ``executor="ray"`` (a local
        Ray is started, or the one this process joined is used). ``executor`` (for this call;
        default: the search's): ``"local"`` (here, one at a time, or ``n_workers``
        processes), ``"ray"`` (``n_workers`` at once, 2 by default) or an
        :class:`~fnas.execution.executors.Executor`.

        Returns the :class:`~fnas.search.loop.SearchOutcome`. Ctrl-C leaves the run
        resumable; so does an exception the objective raises (unless listed in ``catch``).

        Raises:
            ConfigError: a bad ``n_workers`` or ``executor``, Ray missing for
                ``executor="ray"``, or an objective that cannot go to a worker process.
        """
        if budget is not None:
            budget = check_int(budget, "budget", 1, MAX_COUNT)
        if threads is not None:
            threads = check_int(threads, "threads", 0, MAX_THREADS)
        made = _call_executor(executor, n_workers)
        if made is not None and made.name == "worker":  # refused before anything is written
            from fnas.execution.workers import can_ship

            if (why := can_ship(self.evaluator)) is not None:
                raise ConfigError(f"n_workers={n_workers} runs evaluations in worker "
                                  f"processes, and the objective cannot be sent there "
                                  f"({why}): define it at module level")
        kw = dict(evaluator=self.evaluator, space=self.space, progress=progress,
                  stop_after=stop_after, callbacks=tuple(callbacks),
                  executor=self.executor if made is None else made)
        try:
            if self.name is None:  # a new run: no other thread can know the name it will get
                return self._optimize(budget, budget_seconds, threads, kw)
            with self.store.running(self.name):  # another thread of this process: refused
                return self._optimize(budget, budget_seconds, threads, kw)
        finally:
            if made is not None and made is not executor:
                made.close()  # a Ray this call started ends with it

    def _optimize(self, budget: int | None, budget_seconds: float | None,
                  threads: int | None, kw: dict[str, Any]) -> SearchOutcome:
        try:
            if self.config is None or self.exists:
                if isinstance(self.evaluator, ObjectiveEvaluator):  # refused before any write
                    self.evaluator.directed(direction_of(self.experiment))
                self.outcome = resume_search(self.store, self.name, budget=budget,
                                             budget_seconds=budget_seconds, threads=threads,
                                             **kw)
            else:
                cfg = self.config if budget is None else replace(self.config, budget=budget)
                if budget_seconds is not None:
                    cfg = replace(cfg, budget_seconds=budget_seconds)
                if threads is not None:
                    cfg = replace(cfg, threads=threads)
                self.outcome = run_search(self.store, cfg, name=self.name,
                                          on_created=self._created, **kw)
        except (KeyboardInterrupt, FnasError):
            raise
        except Exception:
            self._interrupted()
            raise
        return self.outcome

    def _created(self, exp: Experiment) -> None:
        self.name = exp.name  # the name fnas chose (a taken one gets -2, -3...)

    def _interrupted(self) -> None:
        try:
            exp = self.store.get_experiment(self.name)
            if exp.status == "running":
                self.store.update_experiment(exp.id, status="interrupted")
        except FnasError:
            pass

    @property
    def experiment(self) -> Experiment:
        """The run's record in the store (its settings, status, budget...).

        Raises:
            StoreError: the run has not started yet, or the store is damaged.
        """
        return self.store.get_experiment(self.name)

    @property
    def direction(self) -> str:
        """``maximize`` or ``minimize``: what the run does with its objective's value (a run
        not started yet: what it will do)."""
        if self.config is not None and not self.exists:
            return self.config.direction
        return direction_of(self.experiment)

    @property
    def best(self) -> Evaluation | None:
        """The best really evaluated result (an ``Evaluation``: ``arch``, ``decisions``,
        ``reward``, ``accuracy``...), or None before any. With racing (``confirm`` >= 2), the
        confirmed incumbent, its ``reward`` and ``accuracy`` the means of its replicates."""
        top = self.store.top(self.experiment.id, 1)
        return top[0] if top else None

    @property
    def best_params(self) -> dict[str, Any]:
        """The best result's ``{decision name: chosen value}``, decoded by the run's space (as
        Optuna's ``study.best_params``).

        Raises:
            StoreError: no result yet. ConfigError: the run's space is not known in this
                process (pass ``space=``, or register it).
        """
        exp = self.experiment
        return params_of(run_space(exp, self.space), best_of(self.store, exp))

    @property
    def best_value(self) -> float:
        """The best result's value, in the objective's units (as Optuna's
        ``study.best_value``): the accuracy (or the dict's ``reward``) an objective returned,
        the least value for ``direction="minimize"``, or the proxy task's MnasNet reward.

        Raises:
            StoreError: no result yet.
        """
        exp = self.experiment
        value = value_of(best_of(self.store, exp), direction_of(exp))
        assert value is not None  # best_of returns a result that counts: it has a value
        return value

    def trials(self) -> list[Evaluation]:
        """Every evaluation of the run, in order."""
        return self.store.evaluations(self.experiment.id)

    def trials_dataframe(self) -> pd.DataFrame:
        """The evaluations as a pandas DataFrame, one row each (needs pandas): after ``run``,
        Optuna's ``value``, ``datetime_start``, ``datetime_complete``, ``duration`` and one
        ``params_<decision>`` column per decision (:func:`fnas.api.results.trials_frame`),
        then ``Store.to_dataframe``'s columns (:mod:`fnas.knowledge.frame`).

        Raises:
            ImportError: no pandas. ConfigError: the run's space is not known here.
        """
        exp = self.experiment
        return trials_frame(self.store, exp, run_space(exp, self.space))

    def __repr__(self) -> str:
        if not self.exists:
            what = "not started"
            if self.config is not None:
                what += f", {self.config.strategy} on space {self.config.space!r}, budget " \
                        f"{self.config.budget}, {self.config.direction}"
            return f"<Search {self.name!r} in {self.store.root}: {what}>"
        try:
            exp = self.experiment
            n, best = len(self.trials()), self.store.top(exp.id, 1)
        except FnasError as e:
            return f"<Search {self.name!r} in {self.store.root}: unreadable ({e})>"
        value = value_of(best[0], direction_of(exp)) if best else None
        shown = f", best value {value:.6g}" if value is not None else ", no result yet"
        return (f"<Search {exp.name!r} in {self.store.root}: {exp.status}, {n}/{exp.budget} "
                f"evaluations, {exp.strategy} on space {exp.config.get('space')!r}, "
                f"{direction_of(exp)}{shown}>")


def _call_executor(executor: Any, n_workers: Any) -> Executor | None:
    """The executor of one :meth:`Search.optimize` call (see there); None: the search's."""
    if n_workers is not None:
        n_workers = check_int(n_workers, "n_workers", 1, MAX_COUNT)
    if isinstance(executor, Executor):
        if n_workers is not None and n_workers != executor.parallel:
            raise ConfigError(f"n_workers={n_workers}, but the executor given runs "
                              f"{executor.parallel} at once: give one of them")
        return executor
    if executor not in (None, "local", "ray"):
        raise ConfigError(f"executor={executor!r:.60}: expected 'local', 'ray' or a "
                          "fnas.execution.executors.Executor")
    if executor in (None, "local") and n_workers not in (None, 1):
        from fnas.execution.workers import WorkerExecutor

        return WorkerExecutor(parallel=n_workers)  # worker processes on this machine
    if executor == "local":
        return LocalExecutor()
    if executor is None:
        return None
    try:
        import ray  # noqa: F401  (only whether it is there)
    except ImportError:
        raise ConfigError("executor='ray' runs evaluations as Ray tasks, and Ray is not "
                          "installed: pip install 'ray>=2.9' (fnas's ray extra), or use "
                          f"n_workers={n_workers or 2} alone for processes on this "
                          "machine") from None
    from fnas.execution.executors import RayExecutor

    return RayExecutor(parallel=n_workers or 2)


def open_store(store: str | Path | Store, create: bool = True) -> Store:
    """``store`` if it is an open store, else the store in folder ``store`` (made there if
    missing, with ``create``).

    Raises:
        ConfigError: ``store`` is neither a folder nor a store. StoreError: no store there
            (``create`` False), or it is damaged.
    """
    _check_store(store)
    return store if isinstance(store, Store) else Store(Path(store), create=create)


def _check_store(store: Any) -> None:
    if not isinstance(store, (Store, str, Path)) or (isinstance(store, str) and not store):
        raise ConfigError(f"store={store!r:.60}: expected a folder (a path) or an open Store")


def search_config(config: str | Path | SearchConfig | None = None,
                  settings: Mapping[str, Any] | None = None) -> SearchConfig:
    """A search's settings: those of ``config`` (a JSON or TOML file, or a ``SearchConfig``;
    default: the defaults), then the table ``settings`` over them, as a config file writes
    one (a nested table changes only the keys it gives: ``{"fnas": {"screen": {"kappa":
    1}}}``), all checked together. ``fnas search --config FILE --set ... --FLAG ...`` is
    ``search_config(FILE, the --set table under the flags')``.

    Raises:
        ConfigError: an unreadable file, an unknown key or a bad value, in one line.
    """
    if config is None:
        return SearchConfig().with_settings(dict(settings or {}))
    if isinstance(config, SearchConfig):
        return config.with_settings(dict(settings or {}))
    from fnas.search.config_io import read_config
    from fnas.strategies.settings import merged

    # one table, built once: a setting of another strategy in the file still applies when a
    # setting switches to that strategy
    table = merged(read_config(config), dict(settings or {}))
    return SearchConfig().with_settings(table)


def _executor(executor: Any) -> Executor | None:
    if executor is not None and not isinstance(executor, Executor):
        raise ConfigError(f"executor: expected a fnas.execution.executors.Executor, got "
                          f"{type(executor).__name__}")
    return executor


def open_search(store: str | Path | Store, config: SearchConfig, name: str | None = None, *,
                evaluator: Evaluator | None = None, space: FactorizedSpace | None = None,
                load_if_exists: bool = False, executor: Executor | None = None) -> Search:
    """The search ``config`` describes, recorded in ``store`` as run ``name``: what
    ``fnas.create_search`` ends in, and what ``fnas search`` runs.

    Before any store is touched (a refused search makes none), a new search's name, its
    task's device (where ``executor`` runs the evaluations) and, without an ``evaluator``,
    the proxy task's data are checked; the data read then serves the run. With
    ``load_if_exists`` those checks wait for the run to start, since a run of that name
    continues with its recorded settings instead.

    Args:
        store: a store folder (created if missing) or an open store.
        config: the settings (:func:`search_config` reads them from a file).
        name: the run's name; None: fnas names the run when it starts
            (``strategy-task-sSEED-YYYYmmdd-HHMMSS``, made unique in the store).
        evaluator: what scores architectures (default: the proxy task of ``config.task``).
        space: the space object, when ``config.space`` names one registered in this process.
        load_if_exists: a run of that name continues instead of being refused.
        executor: where evaluations run (:mod:`fnas.execution.executors`; default: here).

    Raises:
        ConfigError: a bad setting, device, executor or proxy task. StoreError: a bad name,
            the name is taken (without ``load_if_exists``), or the store is damaged.
    """
    if not isinstance(config, SearchConfig):
        raise ConfigError(f"config: expected a SearchConfig, got {type(config).__name__}")
    _check_store(store)
    executor = _executor(executor)
    if name is not None:
        check_run_name(name)
    if not load_if_exists:
        (executor or LocalExecutor()).check_device(config.task.device)
        if evaluator is None:  # the data, and a minibatch larger than it, refused now
            evaluator = ProxyEvaluator(config.task, config.reward)
    st = open_store(store)
    search = Search(st, name, config, evaluator, space, executor)
    if search.exists and not load_if_exists:
        if st is not store:  # opened here: closed, so that nothing of it stays behind
            st.close()
        raise StoreError(f"run {name!r} already exists in {st.root}: continue it "
                         f"(load_if_exists=True; fnas search --resume {name}) or give another "
                         "name")
    return search


def load_search(store: str | Path | Store, name: str, *, evaluator: Evaluator | None = None,
                space: FactorizedSpace | None = None,
                executor: Executor | None = None) -> Search:
    """The recorded run ``name`` (or id) of ``store``, to continue with the settings it
    recorded (``fnas search --resume``): :meth:`Search.optimize` resumes it from its last
    checkpoint, and a larger ``budget`` extends it. A run not scored by the proxy task needs
    its ``evaluator`` again (the resume checks that it is the same); one made by
    ``fnas.create_search(objective=...)`` continues most simply the way it was made, with
    ``load_if_exists=True``.

    Raises:
        ConfigError: a bad executor. StoreError: no store there (none is made). An unknown
            run is refused when :meth:`Search.optimize` looks it up (with a resume's checks).
    """
    executor = _executor(executor)
    return Search(open_store(store, create=False), name, None, evaluator, space, executor)
