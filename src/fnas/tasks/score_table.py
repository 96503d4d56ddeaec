"""A user's benchmark table: architecture key -> score (and optionally a cost), from JSON or CSV.

The key of a row is the space's canonical architecture key, ``space.decode(indices).key``:
an 8-digit code for the NAS-Bench-Macro space (``"22212220"``), ``name=value`` pairs for a
space made by ``fnas.make_space`` without ``decode`` (``"depth=2,width=16"``), the block
string for the MnasNet space. Higher scores are better; for a field where lower is better (an
error rate, a loss), name it with a leading minus (``metric="-error"``, ``--metric=-error``):
the score is then the field's negation, and so are the targets and regrets reported.

Accepted files:

- JSON: an object ``{key: score}`` or ``{key: {field: value, ...}}`` (the score is the field
  named by ``metric``; the NAS-Bench-Macro file is of this form, ``metric="mean_acc"``), or a
  list of objects each with a ``key`` (or ``arch``) field; a score field may hold a list of
  per-seed scores (``test_acc`` in NAS-Bench-Macro): the score is their mean, and a noisy
  benchmark draws one per query;
- CSV: a header row, a ``key`` (or ``arch``) column, and the ``metric`` column.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fnas._io import read_source, regular_source
from fnas.errors import TaskError

__all__ = ["ScoreTable", "load_score_table", "KEY_FIELDS"]

KEY_FIELDS = ("key", "arch")
"""Names of the field holding a row's architecture key (JSON lists and CSV)."""


@dataclass(frozen=True)
class ScoreTable:
    """A table of scores: what a benchmark answers for each listed architecture."""

    path: str
    """The file it was read from (resolved)."""
    metric: str
    """The field read as the score (``"score"`` for a JSON object of bare numbers), with a
    leading ``-`` when lower is better and the score is the field's negation."""
    scores: dict[str, float]
    """Architecture key -> score (higher is better)."""
    costs: dict[str, float] | None = None
    """Architecture key -> the cost of querying it (the ``cost`` field), if one was named."""
    samples: dict[str, tuple[float, ...]] | None = None
    """Architecture key -> its per-seed scores, where the score field holds a list (the score
    is then their mean); None when every row has one score."""

    @functools.cached_property
    def best_key(self) -> str:
        """The key of the best score (the first listed, among ties)."""
        return max(self.scores, key=self.scores.__getitem__)

    @property
    def best(self) -> float:
        """The best score."""
        return self.scores[self.best_key]

    @functools.cached_property
    def worst(self) -> float:
        """The worst score (what an unlisted architecture is given under ``missing='fail'``)."""
        return min(self.scores.values())


def _number(v: Any, where: str) -> float:
    if isinstance(v, bool):
        raise TaskError(f"{where}: {v!r} is not a number")
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise TaskError(f"{where}: {str(v)!r:.40} is not a number") from None
    if not math.isfinite(x):
        raise TaskError(f"{where}: {v!r} is not a finite number")
    return x


def _rows_from_json(p: Path, text: str) -> list[tuple[str, Any]]:
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as e:
        raise TaskError(f"{p} is not valid JSON: {e}") from None
    if isinstance(raw, dict):
        return [(str(k), v) for k, v in raw.items()]
    if isinstance(raw, list):
        rows = []
        for i, r in enumerate(raw):
            k = next((f for f in KEY_FIELDS if isinstance(r, dict) and f in r), None)
            if k is None:
                raise TaskError(f"{p}: row {i} is not an object with a 'key' (or 'arch') field")
            rows.append((str(r[k]), {f: v for f, v in r.items() if f != k}))
        return rows
    raise TaskError(f"{p}: expected a JSON object {{key: score or row}} or a list of rows, got "
                    f"{type(raw).__name__}")


def _rows_from_csv(p: Path, text: str) -> list[tuple[str, Any]]:
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
        header = reader.fieldnames or []
        k = next((f for f in KEY_FIELDS if f in header), None)
        if k is None:
            raise TaskError(f"{p}: the CSV header {header[:8]} has no 'key' (or 'arch') column")
        rows = []
        for r in reader:
            if None in r or any(v is None for v in r.values()):
                raise TaskError(f"{p}: malformed CSV: line {reader.line_num} does not have the "
                                f"header's {len(header)} fields")
            rows.append((r[k], {f: v for f, v in r.items() if f != k}))
        return rows
    except csv.Error as e:
        raise TaskError(f"{p}: malformed CSV: {e}") from None


@functools.lru_cache(maxsize=8)
def load_score_table(path: str | Path, metric: str | None = None,
                     cost: str | None = None) -> ScoreTable:
    """Read a table (JSON, or CSV when the file name ends in ``.csv``).

    Args:
        path: the file.
        metric: the field read as the score; may be omitted when each value is a bare number.
            A leading ``-`` (``"-error"``) reads a lower-is-better field: the score is its
            negation.
        cost: a field read as each query's cost (e.g. training seconds or FLOPs), or None.

    Raises:
        TaskError: a missing or unreadable file, no rows, an unknown field (the message lists
            the known ones), a repeated key, or a score that is not a finite number.
        ConfigError: a FIFO, device or folder (refused unread: it could hang or never end).
    """
    p = regular_source(Path(path).expanduser(), "benchmark table")  # a FIFO would hang
    if not p.is_file():
        raise TaskError(f"benchmark table not found at {p}")
    try:  # a spreadsheet's byte-order mark too
        text = read_source(p, "benchmark table").decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise TaskError(f"{p} cannot be read: {type(e).__name__}") from None
    if not text.strip():
        raise TaskError(f"{p}: the table is empty")
    rows = (_rows_from_csv if p.suffix.lower() == ".csv" else _rows_from_json)(p, text)
    if not rows:
        raise TaskError(f"{p}: the table has no rows")
    field, sign = metric, 1.0
    if metric is not None and metric.startswith("-"):  # lower is better: score = -value
        field, sign = metric[1:], -1.0
        if not field:
            raise TaskError(f"{p}: metric '-' names no field: write -FIELD for a "
                            "lower-is-better field")
    scores: dict[str, float] = {}
    costs: dict[str, float] = {}
    samples: dict[str, tuple[float, ...]] = {}
    for key, v in rows:
        if key in scores:
            raise TaskError(f"{p}: key {key!r} is listed twice")
        if not isinstance(v, dict):  # {key: number}
            if metric is not None or cost is not None:
                raise TaskError(f"{p}: row {key!r} is a bare value, it has no field "
                                f"{metric or cost!r}")
            scores[key] = _number(v, f"{p}: row {key!r}")
            continue
        if metric is None:
            raise TaskError(f"{p}: rows have fields {sorted(v)[:8]}: choose the score with "
                            "--metric (metric=...)")
        for f in (field, cost):
            if f is not None and f not in v:
                raise TaskError(f"{p}: row {key!r} has no field {f!r} (it has {sorted(v)[:8]})")
        where = f"{p}: row {key!r}, {field}"
        if isinstance(v[field], list):  # one score per training seed: the score is their mean
            if not v[field]:
                raise TaskError(f"{where}: an empty list of scores")
            samples[key] = tuple(sign * _number(x, where) for x in v[field])
            scores[key] = sum(samples[key]) / len(samples[key])
        else:
            scores[key] = sign * _number(v[field], where)
            samples[key] = (scores[key],)
        if cost is not None:
            costs[key] = _number(v[cost], f"{p}: row {key!r}, {cost}")
    seeded = any(len(x) > 1 for x in samples.values())
    return ScoreTable(str(p.resolve()), metric or "score", scores,
                      costs if cost is not None else None, samples if seeded else None)
