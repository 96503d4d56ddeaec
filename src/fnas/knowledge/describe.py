"""What a stored run is, in words, from its record alone (:func:`describe_run`): the proxy
task it trained on, or the objective or evaluator that scored it, its space and its reward
target, and whether its architectures are networks fnas can build (and so train and export).

``fnas show``, ``fnas report`` and their hints read this, so that a run of your own objective
is described as yours, never as the digits training it did not do. Nothing is imported but
the space's block-string parser (no torch)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

__all__ = ["RunDescription", "describe_run", "buildable"]


@dataclass(frozen=True)
class RunDescription:
    """One run, described."""

    kind: str
    """``proxy`` (fnas trained networks on a proxy task), ``objective`` (a function of yours,
    ``fnas.create_search(objective=...)``) or ``evaluator`` (any other: a table, a benchmark,
    the synthetic test reward, an ``Evaluator`` of yours)."""
    label: str
    """What to call :attr:`text`: ``task``, ``objective`` or ``evaluator``."""
    text: str
    """Short and human: ``digits, 5 epochs``, ``score (mybench.score), version 2``."""
    signature: str
    """The full signature that keys the run's cached results (the long form of :attr:`text`)."""
    space: str
    """The space's name and signature."""
    reward: str | None
    """The reward's cost target in words, or None where the reward is the accuracy (or the
    objective's own)."""


def _table(cfg: dict[str, Any], key: str) -> dict[str, Any]:
    """``cfg[key]`` if it is a table (a damaged row's may not be), else an empty one."""
    value = cfg.get(key)
    return value if isinstance(value, dict) else {}


def _reward(cfg: dict[str, Any]) -> str | None:
    rew = _table(cfg, "reward")
    target = rew.get("target")
    if target is None:
        return None
    try:
        value = float(target)
    except (TypeError, ValueError):  # a damaged row: its value as it is
        return f"{rew.get('metric', '?')} target {str(target)[:40]}"
    shown = (f"{value / 1e6:g}M multiply-adds" if rew.get("metric") == "macs"
             else f"{value:g} ms latency")
    return f"{shown} target ({rew.get('mode', 'soft')})"


def _objective(signature: str) -> str:
    """``objective:mod.fn#fp`` or ``objective:mod.fn@version`` as ``fn (mod.fn), ...``."""
    body = signature.removeprefix("objective:").split("|", 1)[0]
    at, hash_ = body.find("@"), body.find("#")
    cut = min(i for i in (at, hash_, len(body)) if i >= 0)
    name, rest = body[:cut], body[cut:]
    short = name.rsplit(".", 1)[-1].split("<locals>.")[-1] or name
    what = short if short == name else f"{short} ({name})"
    if rest.startswith("@"):
        return f"{what}, version {rest[1:]}"
    if rest.startswith("#"):
        return f"{what}, fingerprint {rest[1:9]}"
    return what


def _evaluator(signature: str) -> str:
    kind, _, rest = signature.partition("|")
    path = rest.split("|", 1)[0]
    if kind == "macro":
        return f"NAS-Bench-Macro table {os.path.basename(path)}"
    if kind == "table":
        return f"score table {os.path.basename(path)}"
    if kind == "synthetic":
        return "synthetic reward (a known optimum, for tests)"
    return signature if len(signature) <= 60 else signature[:57] + "..."


def describe_run(exp: Any) -> RunDescription:
    """``exp`` (an :class:`~fnas.knowledge.store.Experiment`) described from its record: its
    task signature says what scored it (``proxy|...``: fnas's training on ``config['task']``;
    ``objective:...``: a function given to ``fnas.create_search``; anything else: an
    evaluator), ``config['objective']`` says so too for a run made by ``create_search``."""
    cfg = exp.config if isinstance(exp.config, dict) else {}
    sig = str(exp.task_signature or "")
    space_name = cfg.get("space")
    space = str(exp.space_signature or "?")
    if space_name and not space.startswith(str(space_name)):
        space = f"{space_name} ({space})"
    reward = _reward(cfg)
    if sig.startswith("proxy|"):
        task = _table(cfg, "task")
        epochs = task.get("epochs", "?")
        return RunDescription("proxy", "task", f"{task.get('dataset', '?')}, {epochs} "
                              f"epoch{'' if epochs == 1 else 's'}", sig, space, reward)
    objective = str(cfg.get("objective") or sig)
    if objective.startswith("objective:"):
        return RunDescription("objective", "objective", _objective(objective), sig, space,
                              reward)
    return RunDescription("evaluator", "evaluator", _evaluator(objective), sig, space, reward)


def buildable(arch: str) -> bool:
    """Whether ``arch`` (an architecture as a run records it) is a block string, which
    ``fnas train`` and ``fnas export`` can build; a space of your own gives its own strings."""
    from fnas.errors import FnasError
    from fnas.space.spec import ArchSpec

    try:
        ArchSpec.parse(arch)
    except (FnasError, ValueError, TypeError, IndexError, KeyError):
        return False
    return True
