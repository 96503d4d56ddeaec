"""``fnas.train``: train one architecture on a task, score it, save its weights."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fnas.api.target import Target, resolve_target
from fnas.errors import ConfigError

if TYPE_CHECKING:
    from fnas.nn.weights import ModelInfo
    from fnas.tasks import RewardConfig, RolloutResult, TaskConfig

__all__ = ["Trained", "train"]


@dataclass(frozen=True)
class Trained:
    """What :func:`train` did: the scored result and, if it succeeded, the weights file."""

    result: RolloutResult
    """Accuracy, latency, params, MACs, reward and status of the training."""
    weights: Path | None
    """The model file written (``fnas.load`` reads it); ``None`` when the training failed."""
    info: ModelInfo | None
    """The model file's metadata (with its ``sha256``); ``None`` when the training failed."""
    target: Target
    """The architecture trained, and the run and rank it came from (``RUN:RANK``)."""
    task: TaskConfig
    """The task it was trained on."""
    dataset: str
    """The dataset's display name."""
    n_val: int
    """Held-out images the accuracy was measured on."""

    @property
    def ok(self) -> bool:
        return self.result.ok


def train(arch: str, task: TaskConfig | str | None = None, reward: RewardConfig | None = None,
          *, seed: int = 0, out: str | Path | None = None, store: str | Path = "fnas-store",
          on_epoch: Callable[[int, float], None] | None = None, progress: bool = False,
          threads: int = 1, **task_fields: Any) -> Trained:
    """Train ``arch`` once, score it with ``reward`` and save the weights to ``out``.

    Args:
        arch: a block string, a name (``mnasnet_a1``; ``mnas_default`` picks the task's
            variant) or ``RUN:RANK``, the RANK-th best architecture of run RUN in ``store``.
        task: a :class:`~fnas.tasks.TaskConfig`, a dataset (``digits``, ``mnist5k``,
            ``cifar10:PATH``, ``idx:PATH``, ``folder:PATH``), or ``None``: the run's dataset
            and image size for ``RUN:RANK``, else ``digits``.
        reward: the reward (default: plain accuracy, :class:`~fnas.tasks.RewardConfig`).
        seed: seeds the initialisation and the data order.
        out: the weights file (default ``./fnas-<arch key>.safetensors``).
        store: the store ``RUN:RANK`` is looked up in.
        on_epoch: called after each epoch with (epoch, held-out accuracy).
        progress: show a progress bar (epochs, held-out accuracy) on stderr.
        threads: torch threads the training runs on (the caller's setting is restored
            after it); 0: torch's default, one per core. One by default, as in a search
            (``SearchConfig.threads``: more thrash on a machine that runs other work).
        **task_fields: :class:`~fnas.tasks.TaskConfig` fields over ``task`` (``epochs``,
            ``batch_size``, ``lr``, ``max_samples``, ``image_size``, ``device``...); a
            ``None`` value leaves the field as it is.

    Returns:
        :class:`Trained`. A training that fails (diverges, runs out of memory) is a result
        with ``ok`` false and no file written, not an exception.

    Raises:
        ConfigError: a bad argument, device or ``RUN:RANK``; a minibatch larger than the data.
        InvalidArchitecture: a bad block string or name.
        StoreError: ``RUN:RANK`` names no store or run.
        TaskError: the dataset cannot be read.
        ModelError: the weights file cannot be written.
    """
    from fnas._limits import check_int
    from fnas.agent.threads import MAX_THREADS, torch_threads
    from fnas.nn.weights import ModelInfo, save_model
    from fnas.space import resolve_arch
    from fnas.tasks import RewardConfig, TaskConfig, evaluate, load_dataset, run_rollout
    from fnas.tasks.trainer import check_device

    threads = check_int(threads, "threads", 0, MAX_THREADS)
    known = {f.name for f in fields(TaskConfig)}
    unknown = sorted(set(task_fields) - known)
    if unknown:
        raise ConfigError(f"unknown task field {unknown[0]!r}: expected TaskConfig fields")
    given = {k: v for k, v in task_fields.items() if v is not None}
    target = resolve_target(arch, store)
    if isinstance(task, TaskConfig):
        task = replace(task, **given)
    else:
        run_task = target.task or {}
        if task is None and "image_size" not in given and run_task.get("image_size"):
            given["image_size"] = run_task["image_size"]  # the size the run searched at
        task = TaskConfig(dataset=task or run_task.get("dataset") or "digits", **given)
    reward = reward or RewardConfig()
    check_device(task.device)
    out = Path(out) if out is not None else None
    if out is not None and out.is_dir():
        raise ConfigError(f"--out {out} is a directory; give a file name (.safetensors)")
    data = load_dataset(task.dataset, val_fraction=task.val_fraction, split_seed=task.split_seed,
                        max_samples=task.max_samples, image_size=task.image_size)
    if task.batch_size > data.y_train.shape[0]:
        raise ConfigError(f"--batch {task.batch_size} exceeds the {data.y_train.shape[0]} "
                          f"training images of {data.name}: no full minibatch to train on")
    spec = resolve_arch(target.arch, data.image_size)
    out = out or Path(f"fnas-{spec.key}.safetensors")

    from tqdm.auto import tqdm

    bar = tqdm(total=task.epochs, desc="train", unit="epoch", disable=not progress,
               file=sys.stderr, dynamic_ncols=True)

    def each_epoch(epoch: int, model) -> None:
        acc = evaluate(model, data.x_val, data.y_val)
        bar.set_postfix(val_acc=f"{acc:.4f}")
        bar.update()
        if on_epoch is not None:
            on_epoch(epoch, acc)

    try:
        with torch_threads(threads):
            rollout = run_rollout(spec, task, reward, seed, return_weights=True,
                                  on_epoch=each_epoch if progress or on_epoch else None)
    finally:
        bar.close()
    res = rollout.result
    done = Trained(res, None, None, target, task, data.name, int(data.y_val.shape[0]))
    if not res.ok:
        return done
    task_dict = {k: v for k, v in asdict(task).items() if k not in ("device", "latency_repeats")}
    info = save_model(out, rollout.weights, ModelInfo(
        arch=spec.to_str(), key=spec.key, in_chans=data.in_chans, num_classes=data.num_classes,
        input_size=data.image_size, dataset=task.dataset, task=task_dict, epochs=task.epochs,
        accuracy=res.accuracy, seed=seed, mean=data.mean, std=data.std, source=target.source))
    return replace(done, weights=out, info=info)
