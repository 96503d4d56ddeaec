"""Resuming a run: its recorded settings read back (:func:`recorded_config`: a space or an
objective this process lacks is named), and its checkpoint: the strategy's state restored and
the loop's counters type-checked; a damaged checkpoint, or one that does not fit the run, is
refused in one line before anything is recorded."""

from __future__ import annotations

from typing import Any

from fnas.errors import ConfigError, StoreError
from fnas.knowledge.store import Experiment, Store
from fnas.search.checkpoint import CHECKPOINT_NAME, load_checkpoint
from fnas.search.config import SPACES, FixedSpace, SearchConfig, space_factory
from fnas.space.factorized import FactorizedSpace
from fnas.strategies.base import Strategy
from fnas.strategies.settings import with_legacy_defaults

__all__ = ["restore", "checked_loop_state", "check_rows_against", "recorded_config",
           "checkpoint_stamp"]


def recorded_config(exp: Experiment, space: FactorizedSpace | None = None,
                    evaluator: Any = None) -> SearchConfig:
    """The run's settings as it recorded them, ready to resume with ``space`` (the space
    object, for one made in Python) and ``evaluator`` (for a run scored by the user's
    objective). Writes nothing.

    Raises:
        ConfigError: the run's space is not registered in this process (or cannot be
            imported), or it was scored by an objective and none is given: the line says what
            to pass. StoreError: the recorded settings are damaged.
    """
    d = with_legacy_defaults(exp.config)
    name = d.get("space") if isinstance(d, dict) else None
    if isinstance(name, str) and name not in SPACES:
        if space is not None:
            if space.name != name:
                raise ConfigError(f"run {exp.name!r} used space {name!r}; the space given is "
                                  f"{space.name!r}")
            SPACES[name] = FixedSpace(space)  # as create_search registers a space object
        elif ":" not in name:
            raise ConfigError(
                f"run {exp.name!r} used space {name!r}, which is not registered in this "
                f"process: pass space= (or call fnas.register_space({name!r}, ...) first); the "
                "command line cannot rebuild a space made in Python (a space named "
                "module:attr can be)")
        else:
            try:
                space_factory(name)
            except ConfigError as e:
                raise ConfigError(f"run {exp.name!r} used space {name!r}: {e} (run from the "
                                  "folder that holds its module)") from None
    objective = d.get("objective") if isinstance(d, dict) else None
    if evaluator is None and isinstance(objective, str) and objective:
        raise ConfigError(f"run {exp.name!r} was scored by your objective ({objective[:80]}): "
                          "pass it again (fnas.create_search(..., objective=..., "
                          "load_if_exists=True)); the command line cannot resume it")
    try:
        return SearchConfig.from_dict(d)
    except ConfigError as e:
        raise StoreError(f"run {exp.name!r}: field 'config' is unusable: {e}") from None


def checkpoint_stamp(store: Store, exp: Experiment) -> tuple[int, int, int] | None:
    """The run's checkpoint file as it is now (inode, size, modification time), or None
    without one: a resume compares it before and after taking the run's lease, so that a run
    another process advanced meanwhile is not resumed from an older state."""
    try:
        st = (store.run_dir(exp.name, create=False) / CHECKPOINT_NAME).stat()
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def restore(store: Store, exp: Experiment, strategy: Strategy) -> dict[str, Any] | None:
    """Restore ``strategy`` from the run's checkpoint; its loop counters, or None without one.
    A damaged checkpoint, or one that does not fit the run, refuses the resume in one line,
    and nothing is written (a run left ``running`` by a crash already reads ``interrupted``:
    :meth:`~fnas.knowledge.Store.get_experiment`)."""
    ckpt = load_checkpoint(store.run_dir(exp.name, create=False))
    if ckpt is None:
        return None
    tensors, meta = ckpt
    loop_state = checked_loop_state(exp, meta)
    check_rows_against(store, exp, loop_state)
    try:
        strategy.load_state(tensors, meta["strategy"])
    except (KeyError, IndexError, TypeError, ValueError, RuntimeError, AttributeError) as e:
        why = " ".join(f"{type(e).__name__}: {e}".split())[:160]
        raise StoreError(f"run {exp.name!r}: its checkpoint does not fit the run "
                         f"(field 'strategy': {why}); remove "
                         f"{store.run_dir(exp.name)}/checkpoint.* to restart the run from "
                         "its recorded evaluations") from None
    return loop_state


def check_rows_against(store: Store, exp: Experiment, loop: dict[str, Any]) -> None:
    """Refuse, in one line, a store that does not hold what the checkpoint counts: the
    checkpoint is written after every batch's rows are committed, so the rows of the batches
    before ``loop['iteration']`` number exactly ``loop['n_done']``, and no row belongs to a
    later batch. Fewer rows: some were lost (a damaged WAL, a database restored from an older
    copy); more, or later ones: the checkpoint is older than the store. Either way a resume
    would silently redo or skip work, so nothing is changed and the run is left as it is."""
    it, n_done = loop.get("iteration", 0), loop.get("n_done", 0)
    rows = store.evaluations(exp.id)
    before = sum(e.iteration < it for e in rows)
    later = sum(e.iteration > it for e in rows)
    where = f"{store.path} and {store.run_dir(exp.name)}/checkpoint.*"
    if before < n_done:
        raise StoreError(f"run {exp.name!r}: {n_done - before} of the {n_done} evaluations its "
                         f"checkpoint counts (batches 0-{it - 1}) are missing from the store: "
                         "the database was damaged or restored from an older copy; nothing "
                         f"was changed (restore both of {where} from one backup, or start a "
                         "new run)")
    if before > n_done or later:
        raise StoreError(f"run {exp.name!r}: the store holds {before - n_done + later} "
                         f"evaluation(s) its checkpoint (batch {it}) does not count: the "
                         "checkpoint is older than the database; nothing was changed (restore "
                         f"both of {where} from one backup, or start a new run)")


def checked_loop_state(exp: Experiment, meta: Any) -> dict[str, Any]:
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
    cost = loop.get("trained_cost")  # absent before fidelities, and while all are full
    if cost is not None and (isinstance(cost, bool) or not isinstance(cost, (int, float))
                             or not 0 <= cost <= loop.get("n_trained", 0)):
        raise bad("loop.trained_cost")
    timed = loop.get("timed", [])  # absent but in a checkpoint written within a batch
    if not isinstance(timed, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 2**31 for v in timed):
        raise bad("loop.timed")
    timers = loop.get("timers", {})
    if not isinstance(timers, dict) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in timers.values()):
        raise bad("loop.timers")
    return loop
