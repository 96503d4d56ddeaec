"""``ARCH`` arguments: a block string, a name, or ``RUN:RANK`` (a stored run's RANK-th best)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fnas.errors import ConfigError, FnasError

__all__ = ["Target", "resolve_target", "shape_of_run"]


@dataclass(frozen=True)
class Target:
    """An ``ARCH`` argument resolved to an architecture string (and its run, if any)."""

    arch: str
    """Block string or name, as :func:`fnas.space.resolve_arch` takes it."""
    run: str | None = None
    """Run name, for ``RUN:RANK``."""
    rank: int | None = None
    """1-based rank in that run."""
    task: dict | None = None
    """The run's task config (its dataset and image size)."""
    reward: float | None = None
    """The architecture's reward in that run."""

    @property
    def source(self) -> str | None:
        return f"run {self.run} rank {self.rank}" if self.run is not None else None


def resolve_target(text: str, store_dir: str | Path = "fnas-store") -> Target:
    """``RUN:RANK`` looked up in the store (the RANK-th best distinct architecture, 1-based, by
    real reward); anything else is passed through as an architecture.

    Raises:
        ConfigError: RANK is not a positive integer, or the run has fewer ranked architectures.
        StoreError: no store at ``store_dir``, or no run RUN in it.
    """
    run, sep, rank_text = text.strip().rpartition(":")
    if not sep:  # block strings and names never hold a colon
        return Target(text)
    if not run or not rank_text.isdigit() or int(rank_text) < 1:
        raise ConfigError(f"bad RUN:RANK {text!r}: expected a run name, a colon and a "
                          "rank >= 1 (e.g. my-run:1)")
    from fnas.knowledge.store import Store

    rank = int(rank_text)
    with Store(store_dir, create=False, readonly=True) as store:
        exp = store.get_experiment(run)
        best = store.top(exp.id, rank)
    if len(best) < rank:
        raise ConfigError(f"run {exp.name!r} has {len(best)} successfully trained "
                          f"architecture(s); no rank {rank} (see 'fnas show {exp.name}')")
    ev = best[rank - 1]
    return Target(ev.arch, exp.name, rank, dict(exp.config.get("task", {})), ev.reward)


def shape_of_run(target: Target) -> tuple[int, int, int]:
    """(in_chans, num_classes, input_size) of a run's task, from its dataset.

    Raises:
        ConfigError: the run's dataset cannot be read here (the message says which sizes to
            give instead).
    """
    from fnas.tasks import load_dataset

    t = target.task or {}
    try:
        data = load_dataset(t.get("dataset", "digits"), val_fraction=t.get("val_fraction", 0.2),
                            split_seed=t.get("split_seed", 0),
                            max_samples=t.get("max_samples"), image_size=t.get("image_size"))
    except FnasError as e:
        raise ConfigError(f"{e}; give --input-size, --classes and --in-chans instead") from None
    return data.in_chans, data.num_classes, data.image_size
