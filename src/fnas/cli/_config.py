"""Flags generated from the config dataclasses: their defaults, and help texts read from the
fields' docstrings (the ``\"\"\"...\"\"\"`` after each field), so the CLI cannot drift from them."""

from __future__ import annotations

import argparse
import ast
import dataclasses
import functools
import inspect
import json
import re
import textwrap
from typing import Any

from fnas.cli._common import nonneg_int, positive_float, positive_int, share
from fnas.errors import ConfigError

__all__ = ["field_docs", "field_default", "field_help", "add_field", "dataset_forms",
           "replay_args", "replay_from_args", "screen_args", "fnas_from_args", "set_args",
           "settings_from_args"]

_SENTENCE_END = re.compile(r"(?<=[a-z0-9)])(?<!et al)(?<!e\.g)(?<!i\.e)\.\s+(?=[A-Z0-9(])")
"""Where a docstring's first sentence ends (not at "Schaul et al. 2016" or "e.g. X")."""


@functools.cache
def field_docs(cls: type) -> dict[str, str]:
    """{field: docstring} of a dataclass, read from its source; {} when there is no source."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError, SyntaxError):
        return {}
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    docs = {}
    for node, after in zip(body, body[1:], strict=False):
        if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                and isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant)
                and isinstance(after.value.value, str)):
            docs[node.target.id] = " ".join(after.value.value.split())
    return docs


def field_default(cls: type, name: str) -> Any:
    """The default value of a dataclass field."""
    f = {f.name: f for f in dataclasses.fields(cls)}[name]
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return f.default


def field_help(cls: type, name: str, default: bool = True, first: bool = True) -> str:
    """A help text from a field's docstring (its first sentence with ``first``), followed by
    its default (unless None)."""
    doc = field_docs(cls).get(name, "").replace("``", "")
    if first:
        doc = _SENTENCE_END.split(doc, maxsplit=1)[0]
    if doc[1:2].islower():  # 'Training epochs' -> 'training epochs'; 'PPO...' stays
        doc = doc[0].lower() + doc[1:]
    doc = doc.rstrip(".").replace("%", "%%")
    value = field_default(cls, name)
    if default and value is not None:
        if isinstance(value, bool):
            value = "on" if value else "off"
        elif isinstance(value, (tuple, list)):
            value = ",".join(map(str, value))
        doc += f" (default: {value})"
    return doc


def add_field(p: argparse.ArgumentParser, flag: str, cls: type, name: str, *,
              given_only: bool = False, help_prefix: str = "", **kwargs) -> None:
    """A flag for field ``name`` of ``cls``: its default and its docstring's help.

    ``given_only``: the flag's value is None unless given (the config, or a file, then
    supplies the default; the help still shows it).
    """
    kwargs.setdefault("default", None if given_only else field_default(cls, name))
    kwargs.setdefault("help", help_prefix + field_help(cls, name))
    p.add_argument(flag, **kwargs)


def dataset_forms() -> str:
    """The dataset kinds as given on the command line: 'digits | ... | cifar10:PATH'."""
    from fnas.tasks.datasets import DATASET_KINDS, parse_dataset_spec

    forms = []
    for kind in DATASET_KINDS:
        try:
            parse_dataset_spec(kind)
            forms.append(kind)
        except ConfigError:  # a kind that reads a folder
            forms.append(f"{kind}:PATH")
    return " | ".join(forms)


def replay_args(p: argparse.ArgumentParser) -> None:
    """The experience buffer's switches (``SearchConfig.replay`` and ``ReplayConfig``); None
    unless given."""
    from fnas.agent.buffer import SAMPLING, ReplayConfig
    from fnas.search import SearchConfig

    add_field(p, "--replay", SearchConfig, "replay", given_only=True,
              choices=["auto", "on", "off"])
    for flag, name, typ, meta in (("--replay-share", "share", share, "S"),
                                  ("--replay-capacity", "capacity", positive_int, "N"),
                                  ("--replay-max-age", "max_age", positive_int, "U"),
                                  ("--replay-sampling", "sampling", None, None),
                                  ("--c-max", "c_max", positive_float, "C")):
        extra = {"choices": SAMPLING} if name == "sampling" else {"type": typ, "metavar": meta}
        add_field(p, flag, ReplayConfig, name, given_only=True, **extra)
    add_field(p, "--correction", ReplayConfig, "correction", given_only=True,
              choices=["on", "off"])


def replay_from_args(args: argparse.Namespace) -> dict:
    """``ReplayConfig`` overrides given on the command line."""
    out = {k: getattr(args, a) for k, a in (("share", "replay_share"),
                                            ("capacity", "replay_capacity"),
                                            ("max_age", "replay_max_age"),
                                            ("sampling", "replay_sampling"), ("c_max", "c_max"))
           if getattr(args, a, None) is not None}
    if getattr(args, "correction", None) is not None:
        out["correction"] = args.correction == "on"
    return out


def screen_args(p: argparse.ArgumentParser) -> None:
    """fnas's flags (``FNASConfig.decision_rule``, ``acquisition`` and ``ScreenConfig``);
    None unless given."""
    from fnas.agent.acquisition import ACQUISITIONS
    from fnas.strategies.fnas.config import DECISION_RULES, FNASConfig
    from fnas.strategies.fnas.screening import ScreenConfig

    add_field(p, "--imagined", FNASConfig, "imagined", given_only=True, type=nonneg_int,
              metavar="N", help_prefix="fnas: ")
    add_field(p, "--decision-rule", FNASConfig, "decision_rule", given_only=True,
              choices=list(DECISION_RULES), help_prefix="fnas: ")
    add_field(p, "--acquisition", FNASConfig, "acquisition", given_only=True,
              choices=[*ACQUISITIONS, "off"], help_prefix="fnas: ")
    add_field(p, "--candidates", ScreenConfig, "candidates", given_only=True,
              type=positive_int, metavar="N", help_prefix="fnas: ")
    add_field(p, "--mutants", ScreenConfig, "mutants", given_only=True, type=nonneg_int,
              metavar="M", help_prefix="fnas: ")
    add_field(p, "--policy", ScreenConfig, "policy", given_only=True,
              choices=["learn", "frozen"], help_prefix="fnas: ")


def fnas_from_args(args: argparse.Namespace) -> dict:
    """The ``SearchConfig.fnas`` settings the flags give (a table of ``FNASConfig`` fields,
    ``screen`` a nested one), for ``SearchConfig.with_settings``."""
    f: dict = {}
    if getattr(args, "no_critic", None):
        f["critic"] = False
    if args.imagined is not None:
        f["imagined"] = args.imagined
    if args.decision_rule is not None:
        f["decision_rule"] = args.decision_rule
    if args.acquisition is not None:
        f["acquisition"] = args.acquisition
    screen = {k: getattr(args, k) for k in ("candidates", "mutants", "policy")
              if getattr(args, k) is not None}
    if screen:
        f["screen"] = screen
    return f


def set_args(p: argparse.ArgumentParser) -> None:
    """``--set KEY=VALUE``: any setting of the config, nested ones included, by its dotted key
    (as a config file's tables name it)."""
    p.add_argument("--set", action="append", default=None, metavar="KEY=VALUE",
                   help="any setting by its dotted key, as in a config file (e.g. "
                   "fnas.screen.kappa=1.0, rea.population=50; VALUE is read as JSON, else as "
                   "a string); repeatable; over --config, under the other flags")


def settings_from_args(args: argparse.Namespace) -> dict:
    """The table that the ``--set`` flags give: ``fnas.screen.kappa=1`` becomes
    ``{"fnas": {"screen": {"kappa": 1}}}`` (for ``SearchConfig.with_settings``).

    Raises:
        ConfigError: a flag that is not KEY=VALUE, or a key given both a value and settings.
    """
    out: dict = {}
    for item in getattr(args, "set", None) or ():
        key, eq, text = item.partition("=")
        parts = key.strip().split(".")
        if not eq or not all(parts):
            raise ConfigError(f"--set {item!r:.60}: expected KEY=VALUE, KEY a dotted setting "
                              "such as fnas.screen.kappa")
        try:
            value = json.loads(text)
        except (ValueError, RecursionError):  # a bare word: policy=frozen
            value = text
        table = out
        for i, part in enumerate(parts[:-1]):
            table = table.setdefault(part, {})
            if not isinstance(table, dict):
                raise ConfigError(f"--set {key}: {'.'.join(parts[:i + 1])} was given a value, "
                                  "not settings")
        table[parts[-1]] = value
    return out
