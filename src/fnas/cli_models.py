"""``fnas train`` and ``fnas export``: turn a found architecture into a usable model.

``ARCH`` is a block string, a name (``mnasnet_a1``, ``mnas_default``...) or ``RUN:RANK``, the
RANK-th best distinct architecture (1-based, by real reward) of run RUN in ``--store``.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from fnas.cli import _human, reward_from_args
from fnas.errors import ConfigError, FnasError

__all__ = ["Target", "resolve_target", "cmd_train", "cmd_export"]

_EXT = {"onnx": ".onnx", "torchscript": ".pt", "spec": ".json"}


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


def resolve_target(text: str, store_dir: str) -> Target:
    """``RUN:RANK`` looked up in the store; anything else is passed through as an arch.

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


def cmd_train(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from fnas.nn.weights import ModelInfo, save_model
    from fnas.space import resolve_arch
    from fnas.tasks import TaskConfig, evaluate, load_dataset, run_rollout
    from fnas.tasks.trainer import check_device

    target = resolve_target(args.arch, args.store)
    run_task = target.task or {}
    dataset = args.task or run_task.get("dataset") or "digits"
    image_size = args.image_size
    if image_size is None and args.task is None:
        image_size = run_task.get("image_size")  # the size the run searched at
    task = TaskConfig(dataset=dataset, epochs=args.epochs, batch_size=args.batch, lr=args.lr,
                      max_samples=args.max_samples, image_size=image_size, device=args.device)
    reward = reward_from_args(args)
    check_device(task.device)
    out = Path(args.out) if args.out else None
    if out is not None and out.is_dir():
        raise ConfigError(f"--out {out} is a directory; give a file name (.safetensors)")
    data = load_dataset(task.dataset, val_fraction=task.val_fraction, split_seed=task.split_seed,
                        max_samples=task.max_samples, image_size=task.image_size)
    if task.batch_size > data.y_train.shape[0]:
        raise ConfigError(f"--batch {task.batch_size} exceeds the {data.y_train.shape[0]} "
                          f"training images of {data.name}: no full minibatch to train on")
    spec = resolve_arch(target.arch, data.image_size)
    out = out or Path(f"fnas-{spec.key}.safetensors")

    bar = tqdm(total=task.epochs, desc="train", unit="epoch", disable=args.no_progress,
               file=sys.stderr, dynamic_ncols=True)

    def on_epoch(epoch: int, model) -> None:
        bar.set_postfix(val_acc=f"{evaluate(model, data.x_val, data.y_val):.4f}")
        bar.update()

    try:
        rollout = run_rollout(spec, task, reward, args.seed, return_weights=True,
                              on_epoch=on_epoch)
    finally:
        bar.close()
    res = rollout.result
    if not res.ok:
        if args.json:  # as before weights files existed: the failed result, exit 1
            print(json.dumps({**res.to_dict(), "weights": None, "source": target.source},
                             indent=2))
        else:
            print(f"fnas train: rollout {res.status}: {res.message} (nothing written)",
                  file=sys.stderr)
        return 1
    task_fields = {k: v for k, v in asdict(task).items() if k not in ("device", "latency_repeats")}
    info = save_model(out, rollout.weights, ModelInfo(
        arch=spec.to_str(), key=spec.key, in_chans=data.in_chans, num_classes=data.num_classes,
        input_size=data.image_size, dataset=task.dataset, task=task_fields, epochs=task.epochs,
        accuracy=res.accuracy, seed=args.seed, mean=data.mean, std=data.std,
        source=target.source))
    if args.json:
        print(json.dumps({**res.to_dict(), "weights": str(out), "sha256": info.sha256,
                          "source": target.source}, indent=2))
        return 0
    print(f"arch      {res.arch}")
    if target.source:
        print(f"from      {target.source} (reward {target.reward:.4f} in the search)")
    print(f"accuracy  {res.accuracy:.4f} on {data.y_val.shape[0]} held-out images "
          f"({data.name}, {task.epochs} epochs, seed {args.seed})")
    print(f"latency   {res.latency_ms:.2f} ms   params {_human(res.params)}   "
          f"MACs {_human(res.macs)}")
    print(f"reward    {res.reward:.4f}   training {res.train_seconds:.1f} s")
    print(f"weights   {out} (use: fnas.load, or fnas export --weights)")
    return 0


def _shape_of_run(target: Target) -> tuple[int, int, int]:
    """(in_chans, num_classes, input_size) of a run's task, from its dataset."""
    from fnas.tasks import load_dataset

    t = target.task or {}
    try:
        data = load_dataset(t.get("dataset", "digits"), val_fraction=t.get("val_fraction", 0.2),
                            split_seed=t.get("split_seed", 0),
                            max_samples=t.get("max_samples"), image_size=t.get("image_size"))
    except FnasError as e:
        raise ConfigError(f"{e}; give --input-size, --classes and --in-chans instead") from None
    return data.in_chans, data.num_classes, data.image_size


def cmd_export(args: argparse.Namespace) -> int:
    import torch

    from fnas.nn.builder import build
    from fnas.nn.weights import load
    from fnas.report import export as ex
    from fnas.space import resolve_arch

    if args.format == "onnx":
        ex.require_onnx()  # before anything is loaded, built or printed
    info = None
    if args.weights is not None:
        model = load(args.weights)
        info = model.info
        for flag, given, have in (("--classes", args.classes, info.num_classes),
                                  ("--in-chans", args.in_chans, info.in_chans)):
            if given is not None and given != have:
                raise ConfigError(f"{flag} {given} contradicts {args.weights} ({have}); "
                                  "drop it")
        spec = model.spec
        if args.arch is not None:
            want = resolve_arch(resolve_target(args.arch, args.store).arch, info.input_size)
            if want.key != spec.key:
                raise ConfigError(f"ARCH {args.arch!r} (key {want.key}) is not the architecture "
                                  f"of {args.weights} (key {spec.key}); drop ARCH")
        in_chans, classes = info.in_chans, info.num_classes
        size = args.input_size or info.input_size
        where = (f"trained weights from {args.weights} ({info.dataset}, {info.epochs} epochs, "
                 f"accuracy {info.accuracy:.4f})" if info.accuracy is not None
                 else f"weights from {args.weights}")
    else:
        if args.arch is None:
            raise ConfigError("give ARCH (a block string, a name or RUN:RANK) or --weights FILE")
        target = resolve_target(args.arch, args.store)
        in_chans, classes, size = args.in_chans, args.classes, args.input_size
        if target.run is not None and None in (in_chans, classes, size):
            run_c, run_k, run_s = _shape_of_run(target)
            in_chans, classes, size = in_chans or run_c, classes or run_k, size or run_s
        in_chans, classes, size = in_chans or 3, classes or 1000, size or 224
        spec = resolve_arch(target.arch, size)
        if args.format != "spec":
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(args.seed)
                model = build(spec, num_classes=classes, input_size=size, in_chans=in_chans)
        where = (f"fresh initialisation, seed {args.seed} (torch.manual_seed({args.seed}); "
                 "fnas.build), NOT trained: pass --weights FILE from 'fnas train'")
    out = Path(args.out or f"fnas-{spec.key}{_EXT[args.format]}")
    if out.is_dir():
        raise ConfigError(f"--out {out} is a directory; give a file name")
    print(f"arch      {spec.to_str()}")
    if args.format == "spec":
        weights = info.to_dict() if info is not None else None
        js, txt = ex.export_spec(spec, out, in_chans, classes, size, weights)
        print(f"wrote     {js} (JSON spec at {in_chans}x{size}x{size}, {classes} classes) "
              f"and {txt} (block string)")
        return 0
    print(f"weights   {where}")
    meta = ex.info_metadata(info, spec)
    shape = f"[batch, {in_chans}, {size}, {size}] -> [batch, {classes}]"
    if args.format == "onnx":
        ex.export_onnx(model, out, size, meta)
        print(f"wrote     {out} (ONNX opset {ex.ONNX_OPSET}, 'input' {shape} 'logits', "
              "dynamic batch)")
        diff = ex.check_onnx(out, model, size)
        if diff is None:
            print("check     skipped: onnxruntime is not installed (pip install onnxruntime)")
            return 0
        engine = "onnxruntime"
    else:
        ex.export_torchscript(model, out, size, meta)
        print(f"wrote     {out} (TorchScript traced at {shape}; torch.jit.load needs no fnas)")
        diff = ex.check_torchscript(out, model, size)
        engine = "torch.jit.load"
    tol = f"tolerance {diff.atol:g} x max(1, max |out|) + {diff.rtol:g} x |out|"
    if not diff.ok:
        print(f"fnas export: {engine} outputs differ from PyTorch's by {diff.max_abs:.3g} "
              f"(outputs up to {diff.scale:.3g}; {tol}); the file is written but suspect",
              file=sys.stderr)
        return 1
    print(f"check     {engine} matches PyTorch: max |diff| {diff.max_abs:.2e} on 3 seeded "
          f"inputs, outputs up to {diff.scale:.3g} ({tol})")
    return 0
