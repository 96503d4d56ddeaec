"""``fnas export``: an architecture as ONNX, a ``torch.export`` program or a JSON spec
(:func:`fnas.export`)."""

from __future__ import annotations

import argparse
import sys

from fnas.cli._common import positive_int, seed

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    sub.add_parser("export", help="export an architecture: ONNX, torch.export (.pt2) or JSON "
                                  "spec", populate=_arguments)


def _arguments(x: argparse.ArgumentParser) -> None:
    from fnas.api import EXPORT_FORMATS

    x.add_argument("arch", nargs="?", default=None,
                   help="block string, name or RUN:RANK (optional with --weights)")
    x.add_argument("--format", required=True, choices=list(EXPORT_FORMATS),
                   help="onnx: ONNX (needs the export extra: onnx, onnxscript); pt2: "
                        "torch.export program (torch.export.load reads it); spec: JSON spec "
                        "and block string")
    x.add_argument("--weights", default=None, metavar="FILE",
                   help="trained weights from 'fnas train' (default: fresh init, --seed)")
    x.add_argument("--out", default=None, metavar="PATH",
                   help="output file (./fnas-<arch key>"
                        f"{'|'.join(EXPORT_FORMATS.values())})")
    x.add_argument("--input-size", type=positive_int, default=None,
                   help="input H = W (the weights' size, the run's, or 224)")
    x.add_argument("--classes", type=positive_int, default=None,
                   help="classifier outputs (the weights', the run's, or 1000)")
    x.add_argument("--in-chans", type=positive_int, default=None,
                   help="input channels (the weights', the run's, or 3)")
    x.add_argument("--seed", type=seed, default=0, help="seed of a fresh initialisation (0)")
    x.add_argument("--store", default="fnas-store", help="store of RUN:RANK (./fnas-store)")


def run(args: argparse.Namespace) -> int:
    import fnas
    from fnas.nn.export import ONNX_OPSET

    done = fnas.export(args.arch, args.format, args.out, weights=args.weights,
                       input_size=args.input_size, num_classes=args.classes,
                       in_chans=args.in_chans, seed=args.seed, store=args.store)
    c, k, size, spec = done.in_chans, done.num_classes, done.input_size, done.spec
    print(f"arch      {spec.to_str()}")
    if done.sizes_from is not None:
        print(f"sizes     {c}x{size}x{size} input, {k} classes: from {done.sizes_from}")
    if done.format == "spec":
        js, txt = done.paths
        print(f"wrote     {js} (JSON spec at {c}x{size}x{size}, {k} classes) "
              f"and {txt} (block string)")
        return 0
    info = done.info
    if info is None:
        where = (f"fresh initialisation, seed {done.seed} (torch.manual_seed({done.seed}); "
                 "fnas.build), NOT trained: pass --weights FILE from 'fnas train'")
    elif info.accuracy is not None:
        where = (f"trained weights from {done.weights} ({info.dataset}, {info.epochs} epochs, "
                 f"accuracy {info.accuracy:.4f})")
    else:
        where = f"weights from {done.weights}"
    print(f"weights   {where}")
    out = done.paths[0]
    shape = f"[batch, {c}, {size}, {size}] -> [batch, {k}]"
    if done.format == "onnx":
        print(f"wrote     {out} (ONNX opset {ONNX_OPSET}, 'input' {shape} 'logits', "
              "dynamic batch)")
    else:
        print(f"wrote     {out} (torch.export program at {shape}, dynamic batch; "
              "torch.export.load needs no fnas)")
    diff = done.check
    if diff is None:
        print("check     skipped: onnxruntime is not installed (pip install onnxruntime)")
        return 0
    tol = f"tolerance {diff.atol:g} x max(1, max |out|) + {diff.rtol:g} x |out|"
    if not diff.ok:
        print(f"fnas export: {done.engine} outputs differ from PyTorch's by {diff.max_abs:.3g} "
              f"(outputs up to {diff.scale:.3g}; {tol}); the file is written but suspect",
              file=sys.stderr)
        return 1
    print(f"check     {done.engine} matches PyTorch: max |diff| {diff.max_abs:.2e} on 3 seeded "
          f"inputs, outputs up to {diff.scale:.3g} ({tol})")
    return 0
