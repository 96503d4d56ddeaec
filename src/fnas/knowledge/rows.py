"""Reading rows back from the store's database: every experiment and evaluation row is
type-checked as it is decoded, so a damaged row (bad JSON, wrong types, undecodable text) is one
:class:`StoreError` line naming the run and the field; SQLite failures become one line too."""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Callable
from typing import Any

from fnas.errors import StoreError
from fnas.knowledge.records import EVAL_FLAGS, Evaluation, Experiment, StoreLike

__all__ = ["to_experiment", "to_eval", "to_update", "db_errors", "json_field", "decode_text",
           "EVAL_COLUMNS"]


def db_errors(fn: Callable) -> Callable:
    """A store method whose SQLite failure (a damaged file, a full disk, a lock held too
    long) surfaces as one :class:`StoreError` line naming the database."""
    @functools.wraps(fn)
    def wrapper(self: StoreLike, *args: Any, **kw: Any) -> Any:
        try:
            return fn(self, *args, **kw)
        except sqlite3.IntegrityError:
            raise
        except sqlite3.ProgrammingError as e:
            if "thread" not in str(e):
                raise StoreError(f"store database {self.path}: {' '.join(str(e).split())}"
                                 ) from None
            raise StoreError(f"store {self.root} was opened in another thread: a Store serves "
                             "the thread that opened it; open one in each thread (a path "
                             "given to create_search does)") from None
        except sqlite3.DatabaseError as e:
            why = " ".join(str(e).split())
            hint = "; free disk space, then resume" if "full" in why else ""
            raise StoreError(f"store database {self.path}: {why}{hint}") from None
        except (UnicodeDecodeError, OverflowError, RecursionError) as e:  # damaged rows
            raise StoreError(f"store database {self.path} holds a damaged row "
                             f"({type(e).__name__})") from None
    return wrapper


def json_field(text: Any, what: str, kind: type = dict) -> Any:
    """A JSON column parsed and type-checked, or a StoreError naming ``what``."""
    if not isinstance(text, str):
        raise StoreError(f"{what} is not JSON text (a {type(text).__name__}): the store is "
                         "damaged")
    try:
        v = json.loads(text)
    except (ValueError, RecursionError):
        raise StoreError(f"{what} is not valid JSON: the store is damaged") from None
    if not isinstance(v, kind):
        raise StoreError(f"{what} is a JSON {type(v).__name__}, not a {kind.__name__}: the "
                         "store is damaged")
    return v


_EXP_TYPES = {"id": int, "name": str, "strategy": str, "seed": int, "space_signature": str,
              "task_signature": str, "status": str, "budget": int, "created": (int, float),
              "updated": (int, float)}
_CONFIG_TABLES = ("task", "reward", "ppo", "fnas", "rea", "replay_cfg", "strategy_config")
_CONFIG_INTS = ("budget", "batch", "seed")
_CONFIG_STRS = ("space", "strategy", "knowledge", "knowledge_as", "pool", "replay",
                "budget_counts", "decision_signature")
_EVAL_NUMS = ("reward", "accuracy", "latency_ms", "train_seconds", "behaviour_logp",
              "pool_hit_ratio", "pool_coverage", "predicted_reward", "predicted_spread",
              "created", "fidelity")
_EVAL_INTS = ("experiment_id", "iteration", "slot", "macs", "params", "seed", "epochs",
              "pool_snapshot", "id", "steps")
_EVAL_STRS = ("arch_key", "arch", "task_signature", "status", "message")
_EVAL_REQUIRED = ("reward", "train_seconds", "experiment_id", "iteration", "slot", "seed",
                  "created") + _EVAL_STRS

EVAL_COLUMNS = [f for f in Evaluation.__dataclass_fields__ if f != "id"]


def to_experiment(row: sqlite3.Row) -> Experiment:
    """An experiment row, type-checked (a damaged field is a StoreError naming it)."""
    d = dict(row)
    name = d.get("name")
    run = f"run {name!r}" if isinstance(name, str) else f"run id {d.get('id')}"
    for k, kind in _EXP_TYPES.items():
        if isinstance(d.get(k), bool) or not isinstance(d.get(k), kind):
            raise StoreError(f"{run}: field {k!r} holds {d.get(k)!r:.40} (the store is "
                             "damaged)")
    for k in ("created", "updated"):  # a time any reader can format
        if not 0 <= d[k] < 1e11:
            raise StoreError(f"{run}: field {k!r} holds {d[k]!r:.40}, not a time (the "
                             "store is damaged)")
    d["config"] = cfg = json_field(d["config"], f"{run}: field 'config'")
    d["stats"] = json_field(d.get("stats", "{}"), f"{run}: field 'stats'")
    for k in _CONFIG_TABLES:
        if k in cfg and not isinstance(cfg[k], dict):
            raise StoreError(f"{run}: field 'config.{k}' is not a table (the store is "
                             "damaged)")
    for k, kind in [(k, int) for k in _CONFIG_INTS] + [(k, str) for k in _CONFIG_STRS]:
        if k in cfg and (isinstance(cfg[k], bool) or not isinstance(cfg[k], kind)):
            raise StoreError(f"{run}: field 'config.{k}' holds {cfg[k]!r:.40} (the store "
                             "is damaged)")
    return Experiment(**d)


def to_eval(row: sqlite3.Row) -> Evaluation:
    """An evaluation row, type-checked (a damaged field is a StoreError naming it)."""
    d = {k: v for k, v in dict(row).items() if k in Evaluation.__dataclass_fields__}
    what = f"run id {d.get('experiment_id')!r}, evaluation {d.get('id')!r}"

    def bad(k: str) -> StoreError:
        return StoreError(f"{what}: field {k!r} holds {d.get(k)!r:.40} (the store is "
                          "damaged)")

    for k in _EVAL_NUMS + _EVAL_INTS + _EVAL_STRS:
        v = d.get(k)
        if v is None and k not in _EVAL_REQUIRED:
            continue
        kind = str if k in _EVAL_STRS else int if k in _EVAL_INTS else (int, float)
        if isinstance(v, bool) or not isinstance(v, kind):
            raise bad(k)
    dec = json_field(d.get("decisions"), f"{what}: field 'decisions'", list)
    if not all(isinstance(x, int) and not isinstance(x, bool) for x in dec):
        raise bad("decisions")
    d["decisions"] = tuple(dec)
    if d.get("fidelity") is None:  # recorded before schema v5: the full protocol
        d["fidelity"] = 1.0
    elif not 0 < d["fidelity"] <= 1:
        raise bad("fidelity")
    d["fidelity"] = float(d["fidelity"])
    for f in EVAL_FLAGS:
        d[f] = bool(d[f])
    return Evaluation(**d)


def to_update(row: sqlite3.Row) -> dict[str, Any]:
    """A policy update's row: its counters and metrics, flattened (a damaged metrics field is
    a StoreError naming it)."""
    what = f"run id {row['experiment_id']}, update {row['iteration']!r}: field 'metrics'"
    return {"iteration": row["iteration"], "n_done": row["n_done"],
            "n_trained": row["n_trained"], **json_field(row["metrics"], what)}


def decode_text(b: bytes) -> str:
    """Text columns of a damaged store decode with replacement characters (the row checks then
    refuse the value in one line) instead of raising UnicodeDecodeError."""
    return b.decode("utf-8", "replace")
