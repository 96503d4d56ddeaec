"""``fnas inspect``: params, multiply-adds and per-block cost of an architecture."""

from __future__ import annotations

import argparse

from fnas.cli._common import human, json_text, positive_int

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    sub.add_parser("inspect", help="params, multiply-adds and per-block cost of an arch",
                   populate=_arguments)


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("arch", help="block string ('ir_r2_k3_s2_e6_c24 | ...') or a name: "
                                "mnasnet_a1, mnasnet_b1, mobilenetv2_100, mnas_default")
    p.add_argument("--input-size", type=positive_int, default=224, help="input H = W (224)")
    p.add_argument("--classes", type=positive_int, default=1000, help="classifier outputs (1000)")
    p.add_argument("--in-chans", type=positive_int, default=3, help="input channels (3)")
    p.add_argument("--latency", action="store_true", help="also measure CPU batch-1 latency")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def run(args: argparse.Namespace) -> int:
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
        print(json_text(out))
        return 0
    print(f"arch    {spec.to_str()}")
    print(f"key     {spec.key}")
    print(f"input   {args.in_chans}x{args.input_size}x{args.input_size}, {args.classes} classes")
    w = max(len(b.block) for b in cost.blocks)
    print(f"{'#':>3}  {'block':<{w}}  {'channels':>11}  {'size':>9}  {'params':>8}  {'MACs':>8}")
    for b in cost.blocks:
        print(f"{b.index:>3}  {b.block:<{w}}  {b.in_chs:>4} -> {b.out_chs:<4}  "
              f"{b.in_size:>3} -> {b.out_size:<3}  {human(b.params):>8}  {human(b.macs):>8}")
    print(f"{'':>3}  {'classifier':<{w}}  {cost.blocks[-1].out_chs:>4} -> {args.classes:<4}  "
          f"{'':>9}  {human(cost.classifier_params):>8}  {human(cost.classifier_macs):>8}")
    print(f"total   {cost.params:,} params ({human(cost.params)}), "
          f"{cost.macs:,} multiply-adds ({human(cost.macs)})")
    if args.latency:
        print(f"latency {out['latency_ms']:.2f} ms (median of 30 batch-1 forwards, CPU)")
    return 0
