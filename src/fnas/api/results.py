"""What a recorded search found, in the shape Optuna users know: the best architecture's
decision values (``best_params``), its objective value (``best_value``) and the trials as a
table with one ``params_<decision>`` column each (:class:`~fnas.api.runs.Search` reads them
here).

A run's *value* is what it maximised or minimised, in the objective's units: the reward for a
run that maximises (an objective's accuracy, the dict's ``reward``, or the proxy task's
MnasNet reward), and minus the reward for one that minimises (``direction="minimize"``: the
value the objective returned). Only results that count (real, successful, full fidelity) have
one.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from fnas.errors import ConfigError, FnasError, StoreError
from fnas.knowledge.records import Evaluation, Experiment
from fnas.search.config import space_factory
from fnas.space.factorized import FactorizedSpace

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["direction_of", "value_of", "run_space", "params_of", "trials_frame"]

OPTUNA_COLUMNS = ("value", "datetime_start", "datetime_complete", "duration")
"""The columns :func:`trials_frame` puts after ``run``, before the ``params_`` ones."""


def direction_of(exp: Experiment) -> str:
    """``maximize`` or ``minimize``: what run ``exp`` did with its objective's value (runs
    recorded before ``direction`` existed maximised)."""
    return str(exp.config.get("direction") or "maximize")


def value_of(ev: Evaluation, direction: str) -> float | None:
    """``ev``'s objective value in the objective's units (see the module), or None for a
    result that does not count (failed, predicted, or at a lower fidelity)."""
    if not ev.counts:
        return None
    return -ev.reward if direction == "minimize" else ev.reward


def run_space(exp: Experiment, space: FactorizedSpace | None) -> FactorizedSpace:
    """The space run ``exp`` searched: ``space`` (the object the search was given), else the
    one registered under its recorded name.

    Raises:
        ConfigError: neither is there (a space made in another process), or the one found
            has other decisions than the run's.
    """
    name = exp.config.get("space", "?")
    if space is None:
        try:
            space = space_factory(name)()
        except FnasError:
            raise ConfigError(f"run {exp.name!r} used space {name!r}, which this process does "
                              "not know: pass space= or register it (fnas.register_space)"
                              ) from None
    want = exp.config.get("decision_signature")
    if want is not None and space.decision_signature != want:
        raise ConfigError(f"run {exp.name!r} searched other decisions than space "
                          f"{space.name!r} has: pass the space it used")
    return space


def params_of(space: FactorizedSpace, ev: Evaluation) -> dict[str, Any]:
    """``{decision name: chosen value}`` of ``ev`` (a plain dict, in the space's order)."""
    return dict(space.values(ev.decisions))


def best_of(store: Any, exp: Experiment) -> Evaluation:
    """The run's best result that counts.

    Raises:
        StoreError: the run has none yet (as Optuna, which has no best before a trial).
    """
    top = store.top(exp.id, 1)
    if not top:
        raise StoreError(f"run {exp.name!r} has no successful evaluation yet: no best")
    return top[0]


def trials_frame(store: Any, exp: Experiment, space: FactorizedSpace) -> pd.DataFrame:
    """``Store.to_dataframe(run)`` with, after ``run``: ``value`` (see the module; NaN where
    the result does not count), ``datetime_complete`` (when it was recorded, a local
    ``datetime``), ``datetime_start`` (that minus ``train_seconds``: when its evaluation
    began, or the same moment for a cached or predicted one), ``duration`` (a ``timedelta``),
    then one ``params_<decision>`` column per decision with its chosen value.
    """
    import pandas as pd

    df = store.to_dataframe(exp.name)
    direction = direction_of(exp)
    evals = {ev.id: ev for ev in store.evaluations(exp.id)}
    values = [value_of(evals[i], direction) if i in evals else None for i in df["id"]]
    done = [datetime.fromtimestamp(t) for t in df["created"]]
    took = [pd.Timedelta(seconds=float(s)) for s in df["train_seconds"]]
    cols: dict[str, Any] = {
        "value": pd.Series(values, index=df.index, dtype="float64"),
        "datetime_start": pd.Series([d - t for d, t in zip(done, took, strict=True)],
                                    index=df.index, dtype="datetime64[ns]"),
        "datetime_complete": pd.Series(done, index=df.index, dtype="datetime64[ns]"),
        "duration": pd.Series(took, index=df.index, dtype="timedelta64[ns]"),
    }
    rows = [space.values(d) for d in df["decisions"]]
    for dec in space.decisions:
        cols[f"params_{dec.name}"] = pd.Series([r[dec.name] for r in rows], index=df.index,
                                               dtype=object).infer_objects()
    front = pd.DataFrame(cols, index=df.index)
    return pd.concat([df[["run"]], front, df.drop(columns=["run"])], axis=1)
