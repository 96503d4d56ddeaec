"""``fnas`` command line. Every user error is one line on stderr and exit status 2.

One module per command, each an ``add_parser(subparsers)`` / ``run(args)`` pair; a command's
arguments are added when it is parsed (``_common.Parser``), so ``fnas runs`` or
``fnas --version`` never import torch to learn the registries' names.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import sys
from collections.abc import Sequence

from fnas.cli import bench, export, inspect, pool, report, runs, search, show, train
from fnas.cli._common import Parser, load_failure, one_line, regular_file
from fnas.errors import ConfigError, FnasError

__all__ = ["main", "build_parser", "COMMANDS"]

COMMANDS = {m.__name__.rsplit(".", 1)[1]: m
            for m in (inspect, train, export, search, bench, pool, runs, show, report)}
"""Command name -> its module (``add_parser``, ``run``), in ``fnas --help`` order."""

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")

INPUT_FILES = ("config", "table", "source_table", "data", "weights")
"""The arguments (by dest) that name a file a command reads (``--config``, ``--table``,
``--source-table``, ``--data``, ``--weights``): each must be a regular file if it exists."""


def build_parser() -> Parser:
    from fnas import __version__

    p = Parser(prog="fnas", description="Fast sampling-based neural architecture search.")
    p.add_argument("--version", action="version", version=f"fnas {__version__}")
    p.add_argument("--log-level", choices=LOG_LEVELS, default=None, type=str.upper,
                   help="messages of the 'fnas' logger shown on stderr (default: WARNING; "
                        "INFO with --no-progress: one line per evaluation and update)")
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)
    for module in COMMANDS.values():
        module.add_parser(sub)
    return p


def _log_to_stderr(args) -> tuple[logging.Logger, logging.Handler, int]:
    """A stderr handler on the ``fnas`` logger, for the command's duration."""
    level = args.log_level or ("INFO" if getattr(args, "no_progress", False) else "WARNING")
    logger = logging.getLogger("fnas")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("fnas: %(message)s"))
    old = logger.level
    logger.setLevel(level)
    logger.addHandler(handler)
    return logger, handler, old


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logger, handler, old_level = _log_to_stderr(args)
    try:
        if args.command not in COMMANDS:
            raise ConfigError(f"unknown command {args.command!r}")
        for dest in INPUT_FILES:  # a FIFO must not hang the command, nor a device
            if isinstance(getattr(args, dest, None), str):
                regular_file(getattr(args, dest), "--" + dest.replace("_", "-"))
        code = COMMANDS[args.command].run(args)
        sys.stdout.flush()  # here, so that a closed pipe is met inside the try
        return code
    except FnasError as e:
        print(f"fnas {args.command}: error: {one_line(str(e))}", file=sys.stderr)
        return 2
    except sqlite3.DatabaseError as e:  # a damaged store met past the checks
        print(f"fnas {args.command}: error: store database: {one_line(str(e))}",
              file=sys.stderr)
        return 2
    except BrokenPipeError:  # 'fnas show ... | head': the reader left; no traceback
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except OSError:
            pass
        return 141
    except (ImportError, MemoryError, RuntimeError, OSError) as e:
        line = load_failure(e)  # torch or numpy that cannot load (ulimit -v), no memory
        if line is None:
            raise
        print(f"fnas {args.command}: error: {line}", file=sys.stderr)
        if argv is None:  # the program itself: a half-loaded library's exit hooks stay quiet
            sys.excepthook = sys.unraisablehook = lambda *a: None
        return 2
    except KeyboardInterrupt:
        print(f"fnas {args.command}: interrupted", file=sys.stderr)
        return 130
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
