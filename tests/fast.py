"""Small, real settings for tests whose subject is not the training itself.

A search test that checks bookkeeping (resume, the pool's snapshots, Ray, kill -9, records)
still trains for real, on real digits images, but on 100 of them (80 to train, 20 to
validate) in minibatches of 32, without a latency measurement: two optimiser steps an epoch
instead of 22, and every path (weights, pool files, safetensors, rewards, checkpoints) is the
same. Accuracies are then near chance, so a test that needs distinct rewards adds a MACs
target. The trainer's own tests (``test_tasks.py``), the examples, ``fnas train`` and the
CLI's smoke search (``test_cli_search.py``) train at full size.
"""

import sqlite3
from dataclasses import dataclass

TINY_TASK = {"dataset": "digits", "max_samples": 100, "batch_size": 32, "latency_repeats": 0}
"""``TaskConfig(**TINY_TASK, epochs=...)``: digits, 100 images, minibatches of 32."""

TINY_SET = [arg for key, value in TINY_TASK.items() if key != "dataset"
            for arg in ("--set", f"task.{key}={value}")]
"""The same for ``fnas search``: ``--set task.max_samples=100 ...`` (digits is its default)."""


@dataclass(frozen=True)
class Toy:
    """An architecture of a small test space whose ``decode`` is not an ``ArchSpec``: the
    decisions themselves (``key`` and ``to_str`` are all a search needs of it)."""

    bits: tuple

    @property
    def key(self):
        return "".join(map(str, self.bits))

    def to_str(self):
        return self.key

FAST_PPO = {"update_epochs": 2}
"""``SearchConfig(ppo=FAST_PPO)`` for a search test whose subject is not the controller
(resume, knowledge, the veto rule's records, fidelity, the pool): 2 PPO epochs an update, not
10, the same updates and checkpoints in a fifth of their time (PPO's epochs were most of such
a search's own time). Tests of what the controller learns keep the default."""

FAST_PPO_SET = [arg for key, value in FAST_PPO.items()
                for arg in ("--set", f"ppo.{key}={value}")]
"""The same for ``fnas search``: ``--set ppo.update_epochs=2``."""


def count_evaluations(db) -> int:
    """Evaluations a store's database ``db`` holds so far, read-only (never creates the file):
    0 before it exists. For tests that kill or read a search running in another process."""
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        n = con.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0]
        con.close()
        return n
    except sqlite3.OperationalError:
        return 0


def cli_in_process(capsys, *args) -> tuple[int, str, str]:
    """``fnas ARGS`` run by ``fnas.cli.main`` in this process: (exit status, stdout, stderr).
    For refusals (bad input is one line, exit 2): the same code path as the program, without
    a process that imports torch (1-2 s each). An exception escaping ``main`` (a traceback for
    a user) fails the test. What only a real process shows (exit hooks, signals) stays in the
    subprocess tests."""
    from fnas.cli import main

    try:
        code = main([str(a) for a in args])
    except SystemExit as e:  # argparse's own refusals exit through its error()
        code = e.code
    out = capsys.readouterr()
    return code, out.out, out.err
