"""``fnas report``: the HTML report of a run, or several runs compared."""

from __future__ import annotations

import argparse

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    sub.add_parser("report", help="write a self-contained HTML report of a run (plots "
                                  "embedded), or compare runs", populate=_arguments)


def _arguments(r: argparse.ArgumentParser) -> None:
    r.add_argument("run", nargs="?", default=None, help="run name or id")
    r.add_argument("--compare", nargs="+", default=None, metavar="RUN",
                   help="put these runs on the same axes instead")
    r.add_argument("--out", default=None, metavar="FILE",
                   help="output file (./fnas-report-RUN.html, or ./fnas-compare.html)")
    r.add_argument("--store", default="fnas-store", help="store directory (./fnas-store)")


def run(args: argparse.Namespace) -> int:
    from fnas.errors import ConfigError
    from fnas.knowledge import Store

    if (args.run is None) == (args.compare is None):
        raise ConfigError("name one run, or several after --compare (not both)")
    try:
        import matplotlib  # noqa: F401 - a declared dependency; a broken install is one line
    except ImportError:
        raise ConfigError("fnas report draws its plots with matplotlib, which is not "
                          "installed: pip install matplotlib") from None
    from fnas.report.html import write_report

    refs = [args.run] if args.compare is None else list(args.compare)
    with Store(args.store, create=False, readonly=True) as store:
        path = write_report(store, refs, args.out)
    print(f"report written to {path}")
    return 0
