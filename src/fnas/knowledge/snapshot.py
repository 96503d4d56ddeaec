"""The read side of the knowledge pool: entries, snapshots and initialisation from them.

An **entry** is one trained block (stage ``i`` of an architecture, state-dict prefix
``blocks.{i}.``, BN statistics included) in a safetensors file named by the sha256 of its
bytes, ``ROOT/pool/<sha[:2]>/<sha256>.safetensors``, under block-relative tensor names
(``"0.conv_dw.weight"``). Its metadata is a row of the store's ``pool_entries`` table
(:mod:`fnas.knowledge.pool`, the write side). Nothing is ever unpickled.

A :class:`PoolSnapshot` is an immutable view: a tuple of entries and the folder their files
live in, and no database connection. :meth:`PoolSnapshot.init_weights` gives every block of an
architecture the closest entry of the same stage (:func:`fnas.nn.transfer.rank_candidates`;
ties go to the freshest) and moves its weights by role (:func:`fnas.nn.transfer.transfer_block`).
A file that is missing, whose bytes do not hash to its name, or that does not parse is skipped
with one :class:`PoolWarning` line (once per snapshot), and the next closest entry is tried: the
search goes on. The result is a plain dict of CPU tensors that depends only on the snapshot's
entries, the (hash-checked) files and the arguments, so it can run on the driver or, the
snapshot pickled, in a worker that sees the files.

NOTE: the classifier is task-specific and never pooled; stem and head are blocks like any
other (stage 0 and the last stage).
"""

from __future__ import annotations

import hashlib
import warnings
from collections import OrderedDict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as st_load

from fnas.nn.transfer import (
    SimilarityWeights,
    block_in_chs,
    fresh_state_dict,
    is_buffer,
    rank_candidates,
    split_blocks,
    transfer_block,
)
from fnas.space.spec import ArchSpec, BlockSpec

__all__ = ["PoolSnapshot", "PoolEntry", "BlockInit", "InitStats", "PoolWarning", "entry_path"]

_CACHE = 64  # loaded entries kept per snapshot (a block of the 224 space is a few MB at most)


class PoolWarning(UserWarning):
    """A pool file was missing or corrupted and skipped; the search goes on."""


@dataclass(frozen=True)
class PoolEntry:
    """One pooled block as recorded (a row of ``pool_entries``)."""

    id: int
    space: str
    stage: int
    block: str
    in_chs: int
    sha256: str
    nbytes: int
    params: int
    arch_key: str
    source_eval: int | None
    task: str
    epochs: int
    total_epochs: int
    created: float


@dataclass(frozen=True)
class BlockInit:
    """How one block of an architecture was initialised."""

    stage: int
    block: str
    entry_id: int | None
    """Pool entry it started from; ``None``: no usable entry in its stage (fresh init)."""
    distance: float | None
    copied: int
    params: int
    source_epochs: int = 0
    """Total epochs the source entry had seen (0 without one)."""

    @property
    def coverage(self) -> float:
        return self.copied / self.params if self.params else 0.0


@dataclass(frozen=True)
class InitStats:
    """Per-rollout initialisation report: hit ratio and parameter coverage."""

    snapshot_id: int
    blocks: tuple[BlockInit, ...]
    skipped: tuple[int, ...] = ()
    """Entry ids passed over for this architecture (missing or corrupted files); each file
    warns once per snapshot."""

    @property
    def hits(self) -> int:
        return sum(b.entry_id is not None for b in self.blocks)

    @property
    def hit_ratio(self) -> float:
        """Blocks initialised from an entry / blocks (the paper's hit ratio).

        NOTE: a block counts as hit when an entry was assigned, even if no tensor matched by
        role (a regular conv from an MBConv entry copies nothing): :attr:`coverage` and each
        :attr:`BlockInit.coverage` say how much really moved.
        """
        return self.hits / len(self.blocks) if self.blocks else 0.0

    @property
    def coverage(self) -> float:
        """Block parameter elements copied / all block parameter elements (classifier excluded)."""
        total = sum(b.params for b in self.blocks)
        return sum(b.copied for b in self.blocks) / total if total else 0.0

    def to_metrics(self) -> dict[str, float]:
        """Stable metric names for logs."""
        return {"pool/hit_ratio": self.hit_ratio, "pool/coverage": self.coverage,
                "pool/snapshot": float(self.snapshot_id)}

    def to_dict(self) -> dict[str, Any]:
        return {"snapshot_id": self.snapshot_id, "hit_ratio": self.hit_ratio,
                "coverage": self.coverage, "skipped": list(self.skipped),
                "blocks": [asdict(b) for b in self.blocks]}


def entry_path(root: Path, sha256: str) -> Path:
    """Where the file of an entry with this hash lives under a store root."""
    return Path(root) / "pool" / sha256[:2] / f"{sha256}.safetensors"


class PoolSnapshot:
    """An immutable view of the pool: the entries of one space with id <= :attr:`id`.

    Built by :meth:`fnas.knowledge.Pool.snapshot`. Reads files, never writes; picklable.
    Not thread-safe (it keeps a small cache of loaded entries).
    """

    def __init__(self, root: Path, space: str, snapshot_id: int,
                 entries: tuple[PoolEntry, ...], weights: SimilarityWeights) -> None:
        self.root = Path(root)
        self.space = space
        self.id = snapshot_id
        self.entries = entries
        self.weights = weights
        self._specs: dict[str, BlockSpec] = {}
        self._stages: dict[int, tuple[list[PoolEntry], list[tuple[BlockSpec, int]]]] = {}
        for e in entries:
            if e.block not in self._specs:
                self._specs[e.block] = BlockSpec.parse(e.block)
            ents, cands = self._stages.setdefault(e.stage, ([], []))
            ents.append(e)
            cands.append((self._specs[e.block], e.in_chs))
        self._cache: OrderedDict[str, dict[str, torch.Tensor]] = OrderedDict()
        self._bad: set[str] = set()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_cache"] = OrderedDict()  # ship the view, not the loaded tensors
        return state

    def __repr__(self) -> str:
        return f"PoolSnapshot(space={self.space!r}, id={self.id}, entries={len(self.entries)})"

    def ranked(self, stage: int, block: BlockSpec, in_chs: int) -> list[tuple[PoolEntry, float]]:
        """Entries of ``stage``, closest to ``(block, in_chs)`` first, with their distances."""
        ents, cands = self._stages.get(stage, ([], []))
        return [(ents[i], d) for i, d in rank_candidates(block, in_chs, cands, self.weights)]

    def load(self, entry: PoolEntry) -> dict[str, torch.Tensor] | None:
        """The entry's tensors (block-relative names), or ``None`` with one :class:`PoolWarning`
        if its file is missing, does not match its hash, or does not parse."""
        sha = entry.sha256
        if sha in self._cache:
            self._cache.move_to_end(sha)
            return self._cache[sha]
        if sha in self._bad:
            return None
        path = entry_path(self.root, sha)
        what = f"pool entry {entry.id} (stage {entry.stage}, {entry.block}): {path}"
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return self._skip(sha, f"{what} is missing; skipped")
        except OSError as e:
            return self._skip(sha, f"{what} is unreadable ({e.strerror or e}); skipped")
        if hashlib.sha256(data).hexdigest() != sha:
            return self._skip(sha, f"{what} does not match its sha256 (corrupted); skipped")
        try:
            tensors = st_load(data)
        except Exception as e:  # noqa: BLE001 - any parse failure is a corrupted entry
            return self._skip(sha, f"{what} is not a readable safetensors file ({e}); skipped")
        self._cache[sha] = tensors
        if len(self._cache) > _CACHE:
            self._cache.popitem(last=False)
        return tensors

    def _skip(self, sha: str, message: str) -> None:
        self._bad.add(sha)
        warnings.warn(" ".join(message.split()), PoolWarning, stacklevel=3)
        return None

    def init_weights(self, spec: ArchSpec | str, *, in_chans: int = 3, num_classes: int = 1000,
                     seed: int = 0) -> tuple[dict[str, torch.Tensor], InitStats]:
        """Initial weights for ``spec`` from this snapshot, and the report.

        Returns a partial state dict for :func:`fnas.tasks.run_rollout`'s ``init_weights``:
        every tensor that took pool values, full-shaped; where a tensor is only partly copied
        the rest is the fresh init :func:`fnas.tasks.run_rollout` would draw for the same
        ``seed``, ``in_chans`` and ``num_classes`` (tensors not returned keep it anyway).

        Raises:
            InvalidArchitecture: ``spec`` is a malformed string.
        """
        if isinstance(spec, str):
            spec = ArchSpec.parse(spec)
        fresh = split_blocks(fresh_state_dict(spec, in_chans, num_classes, seed))
        out: dict[str, torch.Tensor] = {}
        report, skipped = [], []
        for i, (b, c) in enumerate(zip(spec.blocks, block_in_chs(spec, in_chans), strict=True)):
            params = sum(t.numel() for k, t in fresh[i].items() if not is_buffer(k))
            init = BlockInit(i, b.to_str(), None, None, 0, params)
            for e, dist in self.ranked(i, b, c):
                tensors = self.load(e)
                if tensors is None:
                    skipped.append(e.id)
                    continue
                bt = transfer_block(self._specs[e.block], tensors, b, fresh[i])
                out.update({f"blocks.{i}.{k}": v for k, v in bt.tensors.items()})
                init = BlockInit(i, b.to_str(), e.id, dist, bt.copied, params, e.total_epochs)
                break
            report.append(init)
        return out, InitStats(self.id, tuple(report), tuple(skipped))
