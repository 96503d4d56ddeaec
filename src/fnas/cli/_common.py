"""What every command shares: the one-line-error parser, argument types, output helpers."""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable, Mapping
from typing import Any

from fnas._io import regular_source
from fnas.errors import ConfigError

__all__ = ["Parser", "human", "one_line", "shown", "int_at_least", "positive_int",
           "nonneg_int", "positive_float", "share", "seed", "reward_args", "reward_from_args",
           "print_top", "json_text", "regular_file", "load_failure"]


def _finite(obj: Any) -> Any:
    """``obj`` with every NaN or infinite float as None; tuples, sets and other iterables as
    lists (what ``json`` writes them as)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [_finite(v) for v in obj]
    return obj


def json_text(obj: Any, indent: int | None = 2) -> str:
    """Standard JSON for ``--json`` output: a missing or non-finite number is ``null`` (Python's
    ``json`` would write ``NaN`` or ``-Infinity``, which strict parsers such as
    ``JSON.parse`` refuse); anything else unknown is written as its text."""
    return json.dumps(_finite(obj), indent=indent, allow_nan=False, default=str)


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (no usage dump, no traceback).

    ``populate`` adds the arguments when the parser is first used: a command's flags may read
    the registries (which import torch), and only the command run needs them.
    """

    def __init__(self, *args, populate: Callable[[Parser], None] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self._populate = populate

    def populated(self) -> Parser:
        if self._populate is not None:
            populate, self._populate = self._populate, None
            populate(self)
        return self

    def parse_known_args(self, args=None, namespace=None):
        self.populated()
        return super().parse_known_args(args, namespace)

    def _parse_known_args(self, *args, **kwargs):  # the subparsers' path on some Pythons
        self.populated()
        return super()._parse_known_args(*args, **kwargs)

    def format_help(self) -> str:
        self.populated()
        return super().format_help()

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


STOP_REASONS = {
    "budget": "budget spent",
    "seconds": "compute budget spent (--budget-seconds) before the budget",
    "exhausted": "every architecture of the space evaluated: nothing unseen left",
    "max_samples": "sample cap reached (max_samples) before the budget was spent",
    "callback": "a callback stopped it (resumable)",
    "stopped": "stopped before its budget (resumable)",
}
"""Why a search stopped (``stats['stop_reason']``), in words."""


def human(n: float) -> str:
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= div:
            return f"{n / div:.2f}{unit}"
    return f"{n:.0f}"


def one_line(text: str) -> str:
    """A message as one printable line (control characters escaped)."""
    text = " ".join(text.split())
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def shown(name: str) -> str:
    """A run name as printed in a table: control characters (from a damaged row) escaped."""
    return name if name.isprintable() else repr(name)


def regular_file(path: str, flag: str) -> None:
    """Refuse, in one :class:`ConfigError` line, an input path that exists but is not a
    regular file (symlinks followed): reading a FIFO would wait for a writer forever, and a
    device may never end. A missing path is left to the reader, which says so itself
    (:func:`fnas._io.regular_source`, which every loader uses too)."""
    regular_source(path, flag)


_MEMORY = ("failed to map segment", "cannot allocate memory", "bad_alloc", "out of memory")


def load_failure(e: BaseException) -> str | None:
    """The one line for a library that could not be loaded (torch or numpy under ``ulimit
    -v``: a shared object that cannot be mapped, a ``MemoryError`` or ``std::bad_alloc``
    while a module runs its top level), or for memory running out anywhere; None for any
    other error (it is not about loading)."""
    frames, tb = [], e.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_name == "<module>":  # a module's top level: an import
            frames.append(str(tb.tb_frame.f_globals.get("__name__", "?")))
        tb = tb.tb_next
    if not isinstance(e, (ImportError, MemoryError)) and not frames:
        return None
    name = frames[-1] if frames else getattr(e, "name", None) or ""
    name = name if name.startswith("fnas") else name.split(".")[0]
    cause = e
    while cause.__cause__ is not None or (cause.__context__ is not None
                                         and not cause.__suppress_context__):
        cause = cause.__cause__ or cause.__context__  # numpy's advice wraps the real error
    lines = [ln.strip() for ln in str(cause).splitlines() if ln.strip()]
    why = lines[-1] if lines and "Original error" in str(cause) else lines[0] if lines else ""
    why = one_line(why.removeprefix("Original error was: "))[:300]
    memory = isinstance(e, MemoryError) or isinstance(cause, MemoryError) or any(
        m in (str(e) + str(cause)).lower() for m in _MEMORY)
    hint = " (out of memory? check ulimit -v and free memory)" if memory else ""
    if not frames and isinstance(e, MemoryError):
        return "out of memory (check ulimit -v and free memory)" + (f": {why}" if why else "")
    what = name or "a library"
    return f"cannot load {what}{hint}: {why or type(cause).__name__}"


def int_at_least(lo: int, what: str):
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


positive_int = int_at_least(1, "a positive integer")
nonneg_int = int_at_least(0, "an integer >= 0")


def seed(text: str) -> int:
    """An argparse type: a seed, an integer in [0, 2**32 - 1]."""
    try:
        v = int(text)
    except ValueError:
        v = -1
    if not 0 <= v <= 2**32 - 1:
        raise argparse.ArgumentTypeError(f"expected a seed in [0, 2**32 - 1], got {text!r:.40}")
    return v


def positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not v > 0 or v == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return v


def share(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        v = -1.0
    if not 0 <= v < 1:
        raise argparse.ArgumentTypeError(f"expected a share in [0, 1), got {text!r}")
    return v


def reward_args(p: argparse.ArgumentParser, default_none: bool = False) -> None:
    """--target-latency / --target-macs / --hard (``RewardConfig``)."""
    g = p.add_mutually_exclusive_group()
    g.add_argument("--target-latency", type=positive_float, metavar="MS",
                   help="target batch-1 CPU latency, in milliseconds")
    g.add_argument("--target-macs", type=positive_float, metavar="M",
                   help="target multiply-adds, in millions")
    p.add_argument("--hard", action="store_true", default=None if default_none else False,
                   help="hard constraint (alpha=0, beta=-1)")


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


def print_top(best: list, file=None) -> None:
    """The ranked table of a run's best evaluations."""
    file = file or sys.stdout  # looked up now: sys.stdout may have been replaced since import
    if not best:
        print("no successful evaluation yet", file=file)
        return
    print(f"{'rank':>4}  {'reward':>7}  {'acc':>6}  {'lat ms':>6}  {'MACs':>7}  arch", file=file)
    for i, e in enumerate(best, 1):
        lat = f"{e.latency_ms:6.2f}" if e.latency_ms is not None else f"{'-':>6}"
        macs = human(e.macs) if e.macs is not None else "-"
        acc = f"{e.accuracy:6.4f}" if e.accuracy is not None else f"{'-':>6}"
        print(f"{i:>4}  {e.reward:7.4f}  {acc}  {lat}  {macs:>7}  {e.arch}", file=file)
