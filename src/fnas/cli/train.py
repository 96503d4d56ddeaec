"""``fnas train``: train one architecture, score it, save its weights (:func:`fnas.train`).

``ARCH`` is a block string, a name (``mnasnet_a1``, ``mnas_default``...) or ``RUN:RANK``, the
RANK-th best distinct architecture (1-based, by real reward) of run RUN in ``--store``.
"""

from __future__ import annotations

import argparse
import sys

from fnas.cli._common import (
    human,
    json_text,
    nonneg_int,
    positive_float,
    positive_int,
    reward_args,
    reward_from_args,
    seed,
)
from fnas.cli._config import add_field, dataset_forms, field_help

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    sub.add_parser("train", help="train one architecture, score it, save its weights",
                   populate=_arguments)


def _arguments(t: argparse.ArgumentParser) -> None:
    from fnas.tasks import TaskConfig

    t.add_argument("arch", help="block string, name (mnas_default picks the task's variant) "
                                "or RUN:RANK (the RANK-th best of run RUN in --store)")
    t.add_argument("--task", default=None,
                   help=f"{dataset_forms()} (default: digits; RUN:RANK: the run's)")
    add_field(t, "--epochs", TaskConfig, "epochs", type=positive_int)
    add_field(t, "--batch", TaskConfig, "batch_size", type=positive_int)
    add_field(t, "--lr", TaskConfig, "lr", type=positive_float)
    add_field(t, "--max-samples", TaskConfig, "max_samples", type=positive_int)
    add_field(t, "--image-size", TaskConfig, "image_size", type=positive_int,
              help=field_help(TaskConfig, "image_size") + "; RUN:RANK without --task: the run's")
    t.add_argument("--seed", type=seed, default=0, help="seeds the initialisation and the "
                                                        "data order (default: 0)")
    add_field(t, "--device", TaskConfig, "device")
    t.add_argument("--threads", type=nonneg_int, default=1, metavar="N",
                   help="torch threads the training runs on; 0: torch's default, one per "
                        "core (default: 1: more thrash on a machine that runs other work)")
    reward_args(t)
    t.add_argument("--out", default=None, metavar="FILE",
                   help="weights file (./fnas-<arch key>.safetensors)")
    t.add_argument("--store", default="fnas-store", help="store of RUN:RANK (./fnas-store)")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.add_argument("--json", action="store_true")


def run(args: argparse.Namespace) -> int:
    import fnas

    done = fnas.train(args.arch, args.task, reward_from_args(args), seed=args.seed,
                      out=args.out, store=args.store, progress=not args.no_progress,
                      epochs=args.epochs, batch_size=args.batch, lr=args.lr,
                      max_samples=args.max_samples, image_size=args.image_size,
                      device=args.device, threads=args.threads)
    res, source = done.result, done.target.source
    if not done.ok:
        if args.json:  # as before weights files existed: the failed result, exit 1
            print(json_text({**res.to_dict(), "weights": None, "source": source}))
        else:
            print(f"fnas train: rollout {res.status}: {res.message} (nothing written)",
                  file=sys.stderr)
        return 1
    if args.json:
        print(json_text({**res.to_dict(), "weights": str(done.weights),
                         "sha256": done.info.sha256, "source": source}))
        return 0
    print(f"arch      {res.arch}")
    if source:
        print(f"from      {source} (reward {done.target.reward:.4f} in the search)")
    print(f"accuracy  {res.accuracy:.4f} on {done.n_val} held-out images "
          f"({done.dataset}, {done.task.epochs} epochs, seed {args.seed})")
    print(f"latency   {res.latency_ms:.2f} ms   params {human(res.params)}   "
          f"MACs {human(res.macs)}")
    print(f"reward    {res.reward:.4f}   training {res.train_seconds:.1f} s")
    print(f"weights   {done.weights} (use: fnas.load, or fnas export --weights)")
    return 0
