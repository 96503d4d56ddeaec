"""``fnas`` command line. Every user error is one line on stderr and exit status 2."""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
from collections.abc import Sequence

from fnas.cli_report import add_report_parser
from fnas.errors import ConfigError, FnasError

__all__ = ["main", "build_parser"]


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (no usage dump, no traceback)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _human(n: float) -> str:
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= div:
            return f"{n / div:.2f}{unit}"
    return f"{n:.0f}"


def _int_at_least(lo: int, what: str):
    """An argparse type: an integer >= ``lo``, else a one-line 'expected <what>' error."""
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            v = lo - 1
        if v < lo:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return v
    return parse


def _seed(text: str) -> int:
    """An argparse type: a seed, an integer in [0, 2**32 - 1]."""
    try:
        v = int(text)
    except ValueError:
        v = -1
    if not 0 <= v <= 2**32 - 1:
        raise argparse.ArgumentTypeError(f"expected a seed in [0, 2**32 - 1], got {text!r:.40}")
    return v


_positive_int = _int_at_least(1, "a positive integer")
_nonneg_int = _int_at_least(0, "an integer >= 0")


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not v > 0 or v == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return v


def _share(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        v = -1.0
    if not 0 <= v < 1:
        raise argparse.ArgumentTypeError(f"expected a share in [0, 1), got {text!r}")
    return v


def _replay_args(p: argparse.ArgumentParser, default_none: bool) -> None:
    """The experience buffer's switches (``SearchConfig.replay`` and ``replay_cfg``)."""
    p.add_argument("--replay", choices=["auto", "on", "off"], default=None,
                   help="experience buffer: replay earlier real results in each update "
                        "(auto: on for fnas)")
    p.add_argument("--replay-share", type=_share, default=None, metavar="S",
                   help="share of each update's batch replayed (0.5)")
    p.add_argument("--replay-capacity", type=_positive_int, default=None, metavar="N",
                   help="entries kept in the buffer (1024)")
    p.add_argument("--replay-sampling", choices=["uniform", "prioritized"], default=None,
                   help="which entries are replayed (uniform)")
    p.add_argument("--correction", choices=["on", "off"], default=None,
                   help="weight replayed samples by min(c_max, pi_old/mu_b) (on); off: 1")
    p.add_argument("--c-max", type=_positive_float, default=None, metavar="C",
                   help="truncation of the correction weight (1)")


def replay_from_args(args: argparse.Namespace) -> dict:
    """``ReplayConfig`` overrides given on the command line."""
    out = {k: getattr(args, a) for k, a in (("share", "replay_share"),
                                            ("capacity", "replay_capacity"),
                                            ("sampling", "replay_sampling"), ("c_max", "c_max"))
           if getattr(args, a, None) is not None}
    if getattr(args, "correction", None) is not None:
        out["correction"] = args.correction == "on"
    return out


def _screen_args(p: argparse.ArgumentParser) -> None:
    """fnas's screening flags (``FNASConfig.acquisition`` and ``ScreenConfig``)."""
    p.add_argument("--acquisition", choices=["ucb", "ts", "ei", "off"], default=None,
                   help="fnas: how the critic picks what is trained among screened "
                        "candidates (ucb); off: the first design's veto rule")
    p.add_argument("--candidates", type=_positive_int, default=None, metavar="N",
                   help="fnas: policy samples the critic screens per round (512)")
    p.add_argument("--mutants", type=_nonneg_int, default=None, metavar="M",
                   help="fnas: mutants of the best real results screened per round (128)")
    p.add_argument("--policy", choices=["learn", "frozen"], default=None,
                   help="fnas: the PPO controller proposes (learn) or uniform samples "
                        "(frozen, an ablation)")


def fnas_from_args(args: argparse.Namespace, base: dict | None = None) -> dict:
    """The ``SearchConfig.fnas`` settings the flags give, over ``base``."""
    f = dict(base or {})
    if getattr(args, "no_critic", None):
        f["critic"] = False
    if args.imagined is not None:
        f["imagined"] = args.imagined
    if args.acquisition is not None:
        f["acquisition"] = args.acquisition
    screen = {k: getattr(args, k) for k in ("candidates", "mutants", "policy")
              if getattr(args, k) is not None}
    if screen:
        f["screen"] = {**f.get("screen", {}), **screen}
    return f


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="fnas", description="Fast sampling-based neural architecture search.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    i = sub.add_parser("inspect", help="params, multiply-adds and per-block cost of an arch")
    i.add_argument("arch", help="block string ('ir_r2_k3_s2_e6_c24 | ...') or a name: "
                                "mnasnet_a1, mnasnet_b1, mobilenetv2_100, mnas_default")
    i.add_argument("--input-size", type=_positive_int, default=224, help="input H = W (224)")
    i.add_argument("--classes", type=_positive_int, default=1000, help="classifier outputs (1000)")
    i.add_argument("--in-chans", type=_positive_int, default=3, help="input channels (3)")
    i.add_argument("--latency", action="store_true", help="also measure CPU batch-1 latency")
    i.add_argument("--json", action="store_true", help="machine-readable output")

    t = sub.add_parser("train", help="train one architecture, score it, save its weights")
    t.add_argument("arch", help="block string, name (mnas_default picks the task's variant) "
                                "or RUN:RANK (the RANK-th best of run RUN in --store)")
    t.add_argument("--task", default=None,
                   help="digits | mnist5k | cifar10:PATH | folder:PATH (digits; RUN:RANK: "
                        "the run's)")
    t.add_argument("--epochs", type=_positive_int, default=5)
    t.add_argument("--batch", type=_positive_int, default=64)
    t.add_argument("--lr", type=_positive_float, default=0.1)
    t.add_argument("--max-samples", type=_positive_int, default=None)
    t.add_argument("--image-size", type=_positive_int, default=None)
    t.add_argument("--seed", type=_seed, default=0)
    t.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    g = t.add_mutually_exclusive_group()
    g.add_argument("--target-latency", type=_positive_float, metavar="MS")
    g.add_argument("--target-macs", type=_positive_float, metavar="M",
                   help="target multiply-adds, in millions")
    t.add_argument("--hard", action="store_true", help="hard constraint (alpha=0, beta=-1)")
    t.add_argument("--out", default=None, metavar="FILE",
                   help="weights file (./fnas-<arch key>.safetensors)")
    t.add_argument("--store", default="fnas-store", help="store of RUN:RANK (./fnas-store)")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.add_argument("--json", action="store_true")

    x = sub.add_parser("export", help="export an architecture: ONNX, TorchScript or JSON spec")
    x.add_argument("arch", nargs="?", default=None,
                   help="block string, name or RUN:RANK (optional with --weights)")
    x.add_argument("--format", required=True, choices=["onnx", "torchscript", "spec"])
    x.add_argument("--weights", default=None, metavar="FILE",
                   help="trained weights from 'fnas train' (default: fresh init, --seed)")
    x.add_argument("--out", default=None, metavar="PATH",
                   help="output file (./fnas-<arch key>.onnx|.pt|.json)")
    x.add_argument("--input-size", type=_positive_int, default=None,
                   help="input H = W (the weights' size, the run's, or 224)")
    x.add_argument("--classes", type=_positive_int, default=None,
                   help="classifier outputs (the weights', the run's, or 1000)")
    x.add_argument("--in-chans", type=_positive_int, default=None,
                   help="input channels (the weights', the run's, or 3)")
    x.add_argument("--seed", type=_seed, default=0, help="seed of a fresh initialisation (0)")
    x.add_argument("--store", default="fnas-store", help="store of RUN:RANK (./fnas-store)")

    s = sub.add_parser("search", help="run (or resume) an architecture search")
    s.add_argument("--config", default=None, metavar="FILE",
                   help="search settings from a JSON or TOML file (flags override it)")
    s.add_argument("--space", choices=["mnas"], default=None, help="search space (mnas)")
    s.add_argument("--task", default=None, help="digits | mnist5k | cifar10:PATH | folder:PATH")
    s.add_argument("--strategy", choices=["fnas", "ppo", "rea", "random"], default=None,
                   help="search strategy (fnas: PPO + critic; ppo: vanilla MnasNet PPO)")
    s.add_argument("--knowledge", default=None, metavar="none|all|RUN,RUN",
                   help="earlier runs whose results pre-train the critic (all)")
    s.add_argument("--knowledge-as", choices=["measurements", "rewards"], default=None,
                   help="teach their measurements re-scored with this run's reward "
                        "(measurements, default) or the rewards they were given")
    s.add_argument("--no-critic", action="store_true", default=None,
                   help="fnas without its critic (an ablation: vanilla PPO)")
    s.add_argument("--pool", choices=["auto", "on", "off"], default=None,
                   help="initialise trainings from the knowledge pool (auto: on for fnas)")
    s.add_argument("--pool-epochs", type=_positive_int, default=None, metavar="E",
                   help="epochs of a pool-initialised training (half of --epochs)")
    s.add_argument("--imagined", type=_nonneg_int, default=None, metavar="N",
                   help="fnas: extra PPO updates per round on critic-scored samples "
                        "(2 with screening, 4 with --acquisition off; 0: none)")
    _screen_args(s)
    _replay_args(s, default_none=True)
    s.add_argument("--budget", type=_positive_int, default=None,
                   help="architectures to sample (32); with --resume, a new total")
    s.add_argument("--batch", type=_positive_int, default=None, help="architectures per update (8)")
    s.add_argument("--epochs", type=_positive_int, default=None, help="proxy epochs (5)")
    s.add_argument("--device", default=None, help="training device: cpu, cuda, ...")
    g = s.add_mutually_exclusive_group()
    g.add_argument("--target-latency", type=_positive_float, metavar="MS")
    g.add_argument("--target-macs", type=_positive_float, metavar="M", help="in millions")
    s.add_argument("--hard", action="store_true", default=None,
                   help="hard constraint (alpha=0, beta=-1)")
    s.add_argument("--seed", type=_seed, default=None, help="seed (0)")
    s.add_argument("--name", default=None, help="run name (default: strategy-task-seed-time)")
    s.add_argument("--store", default="fnas-store", help="store folder (./fnas-store)")
    s.add_argument("--resume", metavar="RUN", default=None, help="continue a stopped run")
    s.add_argument("--executor", choices=["local", "ray"], default="local",
                   help="where rollouts run: here (local) or as Ray tasks (ray)")
    s.add_argument("--ray-address", default=None, metavar="ADDR",
                   help="ray: an existing cluster (default: start a local Ray)")
    s.add_argument("--parallel", type=_positive_int, default=2, metavar="N",
                   help="ray: rollouts in flight at once (2)")
    s.add_argument("--retries", type=_nonneg_int, default=1, metavar="N",
                   help="ray: re-runs of a rollout whose worker died (1)")
    s.add_argument("--no-progress", action="store_true", help="no progress bar")

    b = sub.add_parser("bench", help="compare strategies over seeds on a benchmark")
    b.add_argument("--bench", choices=["macro", "real"], default="macro",
                   help="macro: NAS-Bench-Macro table (needs --data); real: proxy training")
    b.add_argument("--data", default=None, help="path of nas-bench-macro_cifar10.json")
    b.add_argument("--task", default="digits", help="real: digits | mnist5k | ...")
    b.add_argument("--epochs", type=_positive_int, default=3, help="real: proxy epochs (3)")
    b.add_argument("--strategies", default="random,rea,ppo,fnas", help="comma-separated")
    b.add_argument("--seeds", type=_positive_int, default=20, help="runs per strategy (20)")
    b.add_argument("--budget", type=_positive_int, default=1000, help="queries per run (1000)")
    b.add_argument("--batch", type=_positive_int, default=8, help="proposals per round (8)")
    b.add_argument("--noisy", action="store_true", help="macro: one seed's accuracy per query")
    b.add_argument("--jobs", type=int, default=0, help="parallel runs (0: one per core)")
    b.add_argument("--source-flops", type=_positive_float, default=None, metavar="M",
                   help="macro: pre-train fnas on a source search with this FLOPs target (M)")
    b.add_argument("--source-budget", type=_positive_int, default=200,
                   help="queries of each knowledge-source search (200)")
    b.add_argument("--knowledge-as", choices=["measurements", "rewards"],
                   default="measurements", help="what the source teaches (measurements)")
    b.add_argument("--imagined", type=_nonneg_int, default=None, metavar="N",
                   help="fnas: extra PPO updates per round on critic-scored samples "
                        "(2 with screening, 4 with --acquisition off)")
    _screen_args(b)
    b.add_argument("--source-invert", action="store_true",
                   help="macro transfer: the source measures 1 - accuracy (misleading)")
    _replay_args(b, default_none=True)
    b.add_argument("--label", default=None,
                   help="name the runs LABEL instead of the strategy (one strategy only)")
    b.add_argument("--out", default="bench-results", help="output folder (./bench-results)")
    b.add_argument("--name", default=None, help="file stem (default bench-BENCH[-noisy])")
    b.add_argument("--no-progress", action="store_true")

    o = sub.add_parser("pool", help="the knowledge pool of trained block weights")
    o.add_argument("action", choices=["stats"], help="stats: entries, hit ratio, coverage, disk")
    o.add_argument("--store", default="fnas-store")
    o.add_argument("--recent", type=_positive_int, default=100,
                   help="rollouts the hit ratio and coverage are averaged over (100)")
    o.add_argument("--json", action="store_true")

    r = sub.add_parser("runs", help="list the runs in a store")
    r.add_argument("--store", default="fnas-store")

    w = sub.add_parser("show", help="show one run and its best architectures")
    w.add_argument("run", help="run name or id (see 'fnas runs')")
    w.add_argument("--top", type=_positive_int, default=5)
    w.add_argument("--store", default="fnas-store")
    w.add_argument("--json", action="store_true")
    add_report_parser(sub)
    return p


def reward_from_args(args: argparse.Namespace):
    """RewardConfig from --target-latency / --target-macs (millions) / --hard."""
    from fnas.tasks import RewardConfig

    mode = "hard" if args.hard else "soft"
    if args.target_latency:
        return RewardConfig("latency", args.target_latency, mode)
    if args.target_macs:
        return RewardConfig("macs", args.target_macs * 1e6, mode)
    if args.hard:
        raise ConfigError("--hard needs --target-latency or --target-macs")
    return RewardConfig()


def _cmd_inspect(args: argparse.Namespace) -> int:
    from fnas.nn.builder import check_model_size
    from fnas.space import arch_cost, resolve_arch

    spec = resolve_arch(args.arch, args.input_size)
    check_model_size(spec, args.in_chans, args.classes, args.input_size)
    cost = arch_cost(spec, args.input_size, args.in_chans, args.classes)
    out = {"arch": spec.to_str(), "key": spec.key, **cost.to_dict()}
    if args.latency:
        from fnas.nn import build_model
        from fnas.tasks import measure_latency

        model = build_model(spec, args.in_chans, args.classes)
        out["latency_ms"] = measure_latency(model, (args.in_chans, args.input_size,
                                                    args.input_size))
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print(f"arch    {spec.to_str()}")
    print(f"key     {spec.key}")
    print(f"input   {args.in_chans}x{args.input_size}x{args.input_size}, {args.classes} classes")
    w = max(len(b.block) for b in cost.blocks)
    print(f"{'#':>3}  {'block':<{w}}  {'channels':>11}  {'size':>9}  {'params':>8}  {'MACs':>8}")
    for b in cost.blocks:
        print(f"{b.index:>3}  {b.block:<{w}}  {b.in_chs:>4} -> {b.out_chs:<4}  "
              f"{b.in_size:>3} -> {b.out_size:<3}  {_human(b.params):>8}  {_human(b.macs):>8}")
    print(f"{'':>3}  {'classifier':<{w}}  {cost.blocks[-1].out_chs:>4} -> {args.classes:<4}  "
          f"{'':>9}  {_human(cost.classifier_params):>8}  {_human(cost.classifier_macs):>8}")
    print(f"total   {cost.params:,} params ({_human(cost.params)}), "
          f"{cost.macs:,} multiply-adds ({_human(cost.macs)})")
    if args.latency:
        print(f"latency {out['latency_ms']:.2f} ms (median of 30 batch-1 forwards, CPU)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    from fnas.cli_models import cmd_export, cmd_train
    from fnas.cli_pool import cmd_pool
    from fnas.cli_report import cmd_report
    from fnas.cli_search import cmd_bench, cmd_runs, cmd_search, cmd_show

    args = build_parser().parse_args(argv)
    commands = {"inspect": _cmd_inspect, "train": cmd_train, "export": cmd_export,
                "search": cmd_search, "runs": cmd_runs, "show": cmd_show, "bench": cmd_bench,
                "pool": cmd_pool, "report": cmd_report}
    try:
        if args.command not in commands:
            raise ConfigError(f"unknown command {args.command!r}")
        code = commands[args.command](args)
        sys.stdout.flush()  # here, so that a closed pipe is met inside the try
        return code
    except FnasError as e:
        print(f"fnas {args.command}: error: {_one_line(str(e))}", file=sys.stderr)
        return 2
    except sqlite3.DatabaseError as e:  # a damaged store met past the checks
        print(f"fnas {args.command}: error: store database: {_one_line(str(e))}",
              file=sys.stderr)
        return 2
    except BrokenPipeError:  # 'fnas show ... | head': the reader left; no traceback
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except OSError:
            pass
        return 141
    except KeyboardInterrupt:
        print(f"fnas {args.command}: interrupted", file=sys.stderr)
        return 130


def _one_line(text: str) -> str:
    """A message as one printable line (control characters escaped)."""
    text = " ".join(text.split())
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


if __name__ == "__main__":
    sys.exit(main())
