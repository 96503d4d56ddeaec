"""Block similarity and weight transfer between block configurations (the pool's pure half).

Everything here is a pure function of specs and plain tensors: no files, no SQLite, no global
state. :mod:`fnas.knowledge.pool` chooses and loads the entries; this module ranks them and
moves their weights into a freshly initialised block.

**Similarity.** :func:`block_distance` is a weighted sum of per-choice distances, each scaled to
about [0, 1] over the MnasNet space's range: op type (``ir``/``ds`` are half apart, ``cn`` is
1 from both), expansion (log ratio / log 6), kernel (|dk| / 2), filters (log ratio / log 5/3),
layers (|dr| / 2), SE (1 if only one side has it), skip (0/1), activation (0/1), and the
block's input channels (log ratio / log 5/3). :func:`rank_candidates` sorts by distance; ties
go to the freshest candidate (the later one in insertion order).
NOTE: the FNAS paper as reconstructed lists the block's choices only; the input-channel term
(weight 0.5) is added because the first layer's tensors depend on it, so among equal configs the
entry whose input width matches transfers more (docs/DESIGN.md, "Departures from the paper").

**Transfer by role** (:func:`transfer_block`). A tensor's role is its place in the layer,
independent of the op: ``expand`` (MBConv's 1x1 expansion), ``dw`` (the depthwise conv, its BN
and the SE that follows it; ``ds`` and ``ir`` share it), ``proj`` (the 1x1 projection and its
BN), ``conv`` (a regular conv's kxk conv, BN and SE) and ``shortcut`` (the pooling skip's 1x1
conv + BN). A destination tensor takes values only from the source tensor of the same role in
layer ``min(j, source_layers - 1)`` (extra layers copy the source's last layer):

- channel dims (every dim but a conv's two spatial ones): the first ``min(C)`` are copied, the
  rest keep the fresh init;
- kernel dims: centre crop (large -> small); small -> large puts the source in the centre and
  zeros around it (within the copied channels: the layer computes what the source computed);
- BN running statistics move with their channels; ``num_batches_tracked`` is copied;
- an SE head comes only from an SE head of the same role, and tensors with no counterpart
  (a regular conv vs a depthwise one, MBConv's expansion vs ``ds``) keep their fresh init.

NOTE: the FNAS paper as reconstructed says "an SE head only from an SE head"; here it must also
sit in the same place (docs/DESIGN.md, "Departures from the paper"): ``ir``/``ds`` gate the
depthwise channels, ``cn`` its output channels, so a ``cn`` SE never feeds an ``ir``/``ds``
one. BN statistics follow their conv: a BN whose conv has no counterpart keeps its fresh init
too.

**Coverage** counts *parameters* (what :func:`fnas.space.arch_cost` counts: conv weights, BN
affine, SE convs), not buffers: ``copied`` is the number of destination parameter elements that
took a source value (zero padding is not copied), ``total`` all of the block's parameters.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from fnas.nn.builder import build_model
from fnas.space.spec import ArchSpec, BlockSpec

__all__ = [
    "SimilarityWeights", "block_distance", "rank_candidates", "BlockTransfer", "transfer_block",
    "tensor_role", "fresh_state_dict", "split_blocks", "block_in_chs", "is_buffer",
]

_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")
_ROLES: dict[str, tuple[tuple[str, str], ...]] = {
    # (layer-relative prefix, role prefix); "conv_pw." never matches "conv_pwl.".
    "ir": (("conv_pw.", "expand.conv."), ("bn1.", "expand.bn."), ("conv_dw.", "dw.conv."),
           ("bn2.", "dw.bn."), ("se.", "dw.se."), ("conv_pwl.", "proj.conv."),
           ("bn3.", "proj.bn."), ("shortcut.", "shortcut.")),
    "ds": (("conv_dw.", "dw.conv."), ("bn1.", "dw.bn."), ("se.", "dw.se."),
           ("conv_pw.", "proj.conv."), ("bn2.", "proj.bn."), ("shortcut.", "shortcut.")),
    "cn": (("conv.", "conv.conv."), ("bn1.", "conv.bn."), ("se.", "conv.se."),
           ("shortcut.", "shortcut.")),
}
_OP_DIST = {frozenset(("ir", "ds")): 0.5}
_WIDTH_SPAN = math.log(5 / 3)  # filters x0.75 .. x1.25


@dataclass(frozen=True)
class SimilarityWeights:
    """Weights of :func:`block_distance`'s terms (each term is scaled to about [0, 1])."""

    op: float = 4.0
    """Op type: a regular conv shares nothing with ``ir``/``ds`` but a pooling shortcut."""
    exp: float = 1.0
    """MBConv expansion (``ds`` and ``cn`` count as 1): the width of the ``dw`` tensors."""
    kernel: float = 1.0
    """Kernel size: a crop or pad keeps most of the kernel's mass."""
    filters: float = 2.0
    """Output channels: every tensor of the block is cut or padded along them."""
    layers: float = 1.0
    """Number of layers: extra layers are copies, missing ones are dropped."""
    se: float = 1.0
    """SE presence: an SE head comes only from an SE head."""
    skip: float = 0.5
    """Shortcut type: only the pooling shortcut carries weights."""
    act: float = 0.5
    """Activation: weights trained under another nonlinearity fit less well."""
    in_chs: float = 0.5
    """Block input channels, beyond the paper as reconstructed: the first layer's tensors are
    cut along them (docs/DESIGN.md, "The knowledge pool")."""


def _log_ratio(a: float, b: float) -> float:
    return abs(math.log(a / b))


def block_distance(a: BlockSpec, a_in_chs: int, b: BlockSpec, b_in_chs: int,
                   weights: SimilarityWeights = SimilarityWeights()) -> float:
    """Weighted distance between two block configs (0 for identical ones), symmetric."""
    w = weights
    op = 0.0 if a.op == b.op else _OP_DIST.get(frozenset((a.op, b.op)), 1.0)
    if a.se == b.se:
        se = 0.0
    elif a.se > 0 and b.se > 0:
        se = abs(a.se - b.se) / max(a.se, b.se)
    else:
        se = 1.0
    d = (w.op * op
         + w.exp * _log_ratio(a.exp, b.exp) / math.log(6.0)
         + w.kernel * abs(a.kernel - b.kernel) / 2.0
         + w.filters * _log_ratio(a.out_chs, b.out_chs) / _WIDTH_SPAN
         + w.layers * abs(a.repeats - b.repeats) / 2.0
         + w.se * se
         + w.skip * float(a.skip != b.skip)
         + w.act * float(a.act != b.act)
         + w.in_chs * _log_ratio(a_in_chs, b_in_chs) / _WIDTH_SPAN)
    return round(d, 9)  # equal configs reached by different float paths still tie


def rank_candidates(target: BlockSpec, target_in_chs: int,
                    candidates: Sequence[tuple[BlockSpec, int]],
                    weights: SimilarityWeights = SimilarityWeights()) -> list[tuple[int, float]]:
    """``(index, distance)`` of every candidate ``(block, in_chs)``, closest first.

    Candidates are given in insertion order: on equal distance the later one (the freshest)
    comes first.
    """
    memo: dict[tuple[BlockSpec, int], float] = {}
    scored = []
    for i, (b, c) in enumerate(candidates):
        if (b, c) not in memo:
            memo[(b, c)] = block_distance(target, target_in_chs, b, c, weights)
        scored.append((memo[(b, c)], -i))
    scored.sort()
    return [(-neg_i, d) for d, neg_i in scored]


def tensor_role(op: str, name: str) -> str | None:
    """Role of a layer-relative tensor name (``ir``'s ``"conv_dw.weight"`` -> ``"dw.conv.weight"``).

    ``None`` for a name that has no role (a new layer type's tensor): it keeps its fresh init.
    """
    for prefix, role in _ROLES[op]:
        if name.startswith(prefix):
            return role + name[len(prefix):]
    return None


def is_buffer(name: str) -> bool:
    """A BN running statistic: moved with its channels, not counted in coverage."""
    return name.rsplit(".", 1)[-1] in _BUFFERS


@dataclass(frozen=True)
class BlockTransfer:
    """What :func:`transfer_block` produced for one block."""

    tensors: dict[str, torch.Tensor]
    """Block-relative names (``"0.conv_dw.weight"``) of every tensor that took source values,
    each a full destination-shaped tensor (the rest of it is the fresh init)."""
    copied: int
    """Destination parameter elements that took a source value."""
    total: int
    """All parameter elements of the destination block."""

    @property
    def coverage(self) -> float:
        return self.copied / self.total if self.total else 0.0


def _copy_into(src: torch.Tensor, fresh: torch.Tensor) -> tuple[torch.Tensor, int]:
    """``fresh`` with the role-matched part of ``src`` copied in; also the copied element count."""
    if fresh.dim() == 0:
        return src.to(fresh.dtype).clone(), 1
    out = fresh.clone()
    spatial = fresh.dim() == 4  # conv weight (O, I, kh, kw): dims 2 and 3 are the kernel
    s_idx, d_idx, pad_idx, padded = [], [], [], False
    for dim, (a, b) in enumerate(zip(src.shape, fresh.shape, strict=True)):
        if spatial and dim >= 2:
            if a >= b:  # centre crop
                off = (a - b) // 2
                s_idx.append(slice(off, off + b))
                d_idx.append(slice(0, b))
            else:  # centre of a zero-padded kernel
                off = (b - a) // 2
                s_idx.append(slice(0, a))
                d_idx.append(slice(off, off + a))
                padded = True
            pad_idx.append(slice(None))
        else:
            m = min(a, b)
            s_idx.append(slice(0, m))
            d_idx.append(slice(0, m))
            pad_idx.append(slice(0, m))
    if padded:
        out[tuple(pad_idx)] = 0
    part = src[tuple(s_idx)]
    out[tuple(d_idx)] = part.to(out.dtype)
    return out, part.numel()


def transfer_block(src: BlockSpec, src_tensors: Mapping[str, torch.Tensor], dst: BlockSpec,
                   dst_fresh: Mapping[str, torch.Tensor]) -> BlockTransfer:
    """Move ``src_tensors`` (a trained block of config ``src``) into block ``dst`` by role.

    Both mappings use block-relative names (``"{layer}.{tensor}"``); ``dst_fresh`` holds the
    destination block's freshly initialised tensors (all of them: they give the shapes, the
    values of what is not copied, and the coverage denominator). Inputs are not modified.
    """
    by_role: dict[tuple[int, str], torch.Tensor] = {}
    for name, t in src_tensors.items():
        j, rest = name.split(".", 1)
        role = tensor_role(src.op, rest)
        if role is not None:
            by_role[(int(j), role)] = t
    last = src.repeats - 1
    out: dict[str, torch.Tensor] = {}
    copied = total = 0
    for name, fresh in dst_fresh.items():
        j, rest = name.split(".", 1)
        param = not is_buffer(rest)
        total += fresh.numel() if param else 0
        role = tensor_role(dst.op, rest)
        s = by_role.get((min(int(j), last), role)) if role is not None else None
        if s is None or s.dim() != fresh.dim():
            continue
        out[name], n = _copy_into(s, fresh)
        copied += n if param else 0
    return BlockTransfer(out, copied, total)


# ---- whole-architecture helpers ---------------------------------------------------------------
def fresh_state_dict(spec: ArchSpec, in_chans: int, num_classes: int,
                     seed: int) -> dict[str, torch.Tensor]:
    """The state dict :func:`fnas.tasks.run_rollout` builds for ``seed`` (same RNG sequence).

    So a transferred dict keeps, where it copies nothing, exactly the values the rollout's own
    model starts from. The caller's global RNG state is left untouched.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_model(spec, in_chans, num_classes)
    return {k: v.detach() for k, v in model.state_dict().items()}


def split_blocks(state: Mapping[str, torch.Tensor]) -> dict[int, dict[str, torch.Tensor]]:
    """``{"blocks.3.0.bn1.weight": t}`` -> ``{3: {"0.bn1.weight": t}}``; other names dropped."""
    out: dict[int, dict[str, torch.Tensor]] = {}
    for k, v in state.items():
        parts = k.split(".", 2)
        if len(parts) == 3 and parts[0] == "blocks" and parts[1].isdigit():
            out.setdefault(int(parts[1]), {})[parts[2]] = v
    return out


def block_in_chs(spec: ArchSpec, in_chans: int) -> list[int]:
    """Input channels of every block of ``spec`` for an ``in_chans``-channel input."""
    return [in_chans] + [b.out_chs for b in spec.blocks[:-1]]
