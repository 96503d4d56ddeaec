"""``ARCH`` arguments: a block string, a name, or ``RUN:RANK`` (a stored run's RANK-th best)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fnas.errors import ConfigError, FnasError

__all__ = ["Target", "RunShape", "resolve_target", "shape_of_run"]


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
    task_signature: str | None = None
    """The run's task signature (a registered dataset's records its shape)."""

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
    return Target(ev.arch, exp.name, rank, dict(exp.config.get("task", {})), ev.reward,
                  exp.task_signature)


@dataclass(frozen=True)
class RunShape:
    """The input and output sizes of the networks a run trained, and where they came from."""

    in_chans: int
    num_classes: int
    input_size: int
    """Input H = W."""
    source: str
    """Where they came from, in words (the CLI prints it)."""
    loaded: bool = False
    """Whether the run's dataset was loaded to learn them (its shape is recorded nowhere)."""


def shape_of_run(target: Target) -> RunShape:
    """The sizes of a ``RUN:RANK`` target's networks, from what the run recorded: a registered
    dataset's shape in the run's task signature, else the known shape of a built-in dataset
    (``digits``, ``mnist5k``, ``cifar10``: :data:`fnas.tasks.datasets.KNOWN_SHAPES`), each
    with the run's ``image_size``. Only a dataset whose shape is recorded nowhere (an ``idx``
    or ``folder`` one) is loaded, and the result says so.

    Raises:
        ConfigError: that dataset cannot be read here (the message says which sizes to give
            instead).
    """
    from fnas.tasks.datasets import known_shape, load_dataset
    from fnas.tasks.user_data import recorded_shape

    t = target.task or {}
    dataset, size = t.get("dataset", "digits"), t.get("image_size")
    where = f"run {target.run}'s"
    recorded = recorded_shape(target.task_signature or "", str(dataset).strip())
    if recorded is not None:
        c, h, _, k = recorded
        return RunShape(c, k, size or h, f"{where} task signature ({dataset})")
    try:
        known = known_shape(dataset, size)
    except FnasError:  # not registered here: loading says so in one line below
        known = None
    if known is not None:
        return RunShape(*known, f"{where} task ({dataset})")
    try:
        data = load_dataset(dataset, val_fraction=t.get("val_fraction", 0.2),
                            split_seed=t.get("split_seed", 0),
                            max_samples=t.get("max_samples"), image_size=size)
    except FnasError as e:
        raise ConfigError(f"{e}; give --input-size, --classes and --in-chans instead") from None
    return RunShape(data.in_chans, data.num_classes, data.image_size,
                    f"{where} dataset {dataset}, loaded: the run records no shape for it", True)
