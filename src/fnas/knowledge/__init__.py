"""Knowledge that outlives one search: the SQLite store (and, later, the weight pool)."""

from fnas.knowledge.store import EVAL_FLAGS, SCHEMA_VERSION, Evaluation, Experiment, Store

__all__ = ["EVAL_FLAGS", "SCHEMA_VERSION", "Evaluation", "Experiment", "Store"]
