"""The NAS-Bench-Macro table (CIFAR-10): 6,561 architectures, 3 training seeds each.

The file is ``nas-bench-macro_cifar10.json`` from the public NAS-Bench-Macro repository
(xiusu/NAS-Bench-Macro, Apache-2.0), ``data/`` folder. fnas never downloads it: pass its path.
Each key is an 8-digit architecture code; each value holds ``test_acc`` (3 seeds), ``mean_acc``,
``std``, ``params`` and ``flops``.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

from fnas._io import read_source, regular_source
from fnas.errors import TaskError

__all__ = ["MacroEntry", "MacroTable", "load_macro_table"]


@dataclass(frozen=True)
class MacroEntry:
    """One row of the table (accuracies in percent)."""

    test_acc: tuple[float, float, float]
    mean_acc: float
    params: int
    flops: int


@dataclass(frozen=True)
class MacroTable:
    """The whole table, with the facts a benchmark needs."""

    path: str
    entries: dict[str, MacroEntry]

    @functools.cached_property
    def best_key(self) -> str:
        return max(self.entries, key=lambda k: self.entries[k].mean_acc)

    @property
    def best_acc(self) -> float:
        return self.entries[self.best_key].mean_acc

    def within(self, delta: float) -> set[str]:
        """Keys whose mean accuracy is within ``delta`` points of the best."""
        return {k for k, e in self.entries.items() if e.mean_acc >= self.best_acc - delta}

    @functools.cached_property
    def mean_flops(self) -> float:
        return sum(e.flops for e in self.entries.values()) / len(self.entries)


@functools.lru_cache(maxsize=4)
def load_macro_table(path: str | Path) -> MacroTable:
    """Read and validate the JSON table.

    Raises:
        TaskError: missing file, invalid JSON, or a row without the expected fields.
        ConfigError: a FIFO, device or folder (refused unread: it could hang or never end).
    """
    p = regular_source(Path(path).expanduser(), "NAS-Bench-Macro table")
    if not p.is_file():
        raise TaskError(f"NAS-Bench-Macro table not found at {p}: get nas-bench-macro_cifar10.json"
                        " from the NAS-Bench-Macro repository (data/ folder) and pass its path")
    try:
        raw = json.loads(read_source(p, "NAS-Bench-Macro table").decode())
    except OSError as e:
        raise TaskError(f"{p} cannot be read: {e.strerror or e}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise TaskError(f"{p} is not valid JSON: {e}") from None
    if not isinstance(raw, dict) or not raw:
        raise TaskError(f"{p}: expected a JSON object of architecture rows")
    entries = {}
    for k, v in raw.items():
        try:
            accs = tuple(float(a) for a in v["test_acc"])
            entries[k] = MacroEntry(accs, float(v["mean_acc"]), int(v["params"]), int(v["flops"]))
        except (KeyError, TypeError, ValueError):
            raise TaskError(f"{p}: row {k!r} lacks test_acc/mean_acc/params/flops") from None
        if len(k) != 8 or any(c not in "012" for c in k) or len(accs) != 3:
            raise TaskError(f"{p}: row {k!r} is not an 8-digit key with 3 accuracies")
    return MacroTable(str(p.resolve()), entries)
