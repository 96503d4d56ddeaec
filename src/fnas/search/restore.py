"""Resuming a run from its checkpoint: the strategy's state restored and the loop's counters
type-checked; a damaged checkpoint, or one that does not fit the run, is refused in one line
before anything is recorded."""

from __future__ import annotations

from typing import Any

from fnas.errors import StoreError
from fnas.knowledge.store import Experiment, Store
from fnas.search.checkpoint import load_checkpoint
from fnas.strategies.base import Strategy

__all__ = ["restore", "checked_loop_state", "check_rows_against"]


def restore(store: Store, exp: Experiment, strategy: Strategy) -> dict[str, Any] | None:
    """Restore ``strategy`` from the run's checkpoint; its loop counters, or None without one.
    A damaged checkpoint, or one that does not fit the run, refuses the resume in one line
    before anything is recorded; a run left ``running`` by a crash is then ``interrupted``."""
    try:
        ckpt = load_checkpoint(store.run_dir(exp.name))
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
    except StoreError:
        if store.get_experiment(exp.id).status == "running":
            store.update_experiment(exp.id, status="interrupted")
        raise


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
