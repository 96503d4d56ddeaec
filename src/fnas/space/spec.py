"""Architecture specs and their timm-style block-string codec (no torch here).

An architecture is a sequence of *blocks*; each block is one timm/EfficientNet block string
that expands into ``r`` layers of the same op::

    cn_r1_k3_s2_c32 | ds_r1_k3_s1_e1_c16_noskip | ir_r2_k3_s2_e6_c24_se0.25 | cn_r1_k1_s1_c1280

Blocks are separated by ``|`` (spaces around it are ignored). The network is the blocks in
order, then global average pooling and a linear classifier; input channels and the number of
classes come from the task, not from the string.

Block grammar (tokens joined by ``_``; the first token is the op):

=========  ===========================================================================
``ir``     MBConv / inverted residual: 1x1 expand, kxk depthwise [+SE], 1x1 project
``ds``     depthwise-separable: kxk depthwise [+SE], 1x1 project (expansion must be 1)
``cn``     regular conv: kxk conv [+SE]
``rN``     N layers (the first one carries the stride and the channel change)
``kN``     kernel size, odd
``sN``     stride of the first layer
``eX``     expansion ratio (``ir`` and ``ds``; ``ds`` is always ``e1``)
``cN``     output channels
``seX``    squeeze-excitation ratio in (0, 1), reduced from the *layer's input* channels
           as in TF MnasNet and timm
``nA``     activation: ``nre`` ReLU (default), ``nr6`` ReLU6, ``nsw`` SiLU/swish,
           ``nhs`` hard-swish
skip       ``ir``/``ds`` default to an identity shortcut (``noskip`` removes it);
           ``cn`` defaults to none (``skip`` adds it), as in timm. ``poolskip`` is a
           pooling shortcut on every layer: avg-pool by the stride, then 1x1 conv + BN when
           the channels change (fnas's reading of MnasNet's "pooling" skip op).
=========  ===========================================================================

**Limits.** Strings are checked against fixed limits before anything is built, so that a
string (or a model file's metadata) cannot make fnas allocate without bound: at most
:data:`MAX_BLOCKS` (64) blocks, :data:`MAX_REPEATS` (32) layers per block and
:data:`MAX_LAYERS` (256) in all, kernels up to :data:`MAX_KERNEL` (15), up to
:data:`MAX_CHANNELS` (4096) output channels, expansion up to :data:`MAX_EXPANSION` (16), and
only ASCII digits. (The image size, up to 1024, is the task's: ``fnas.tasks.MAX_IMAGE_SIZE``;
``fnas.nn.build_model`` also refuses a network of more than ``MAX_PARAMS`` parameters.)

An identity shortcut only applies to layers whose input and output shapes match. The
canonical string puts tokens in the order above and omits defaults, so
``ArchSpec.parse(s).to_str() == s`` for every canonical ``s``. :attr:`ArchSpec.key` hashes the
*effective* network, so two strings for the same network (say ``noskip`` on a layer whose
shapes never match) share a key.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, replace

from fnas.errors import InvalidArchitecture

__all__ = ["BlockSpec", "ArchSpec", "OPS", "ACTS", "SKIPS", "MAX_BLOCKS", "MAX_REPEATS",
           "MAX_LAYERS", "MAX_KERNEL", "MAX_CHANNELS", "MAX_EXPANSION", "MAX_ARCH_CHARS"]

MAX_BLOCKS = 64
MAX_REPEATS = 32
MAX_LAYERS = 256
MAX_KERNEL = 15
MAX_CHANNELS = 4096
MAX_EXPANSION = 16.0
MAX_ARCH_CHARS = 8192
"""Longest architecture string parsed (64 blocks of long tokens fit well within it)."""

OPS = ("ir", "ds", "cn")
ACTS = {"re": "relu", "r6": "relu6", "sw": "swish", "hs": "hard_swish"}
SKIPS = ("id", "none", "pool")
_DEFAULT_SKIP = {"ir": "id", "ds": "id", "cn": "none"}
_NUM = r"(?:[0-9]{1,12}(?:\.[0-9]{1,12})?)"  # ASCII digits only: int("٣") would parse


_PATTERNS = [
    ("repeats", r"r([0-9]{1,12})", int), ("kernel", r"k([0-9]{1,12})", int),
    ("stride", r"s([0-9]{1,12})", int), ("exp", rf"e({_NUM})", float),
    ("out_chs", r"c([0-9]{1,12})", int),
    ("se", rf"se({_NUM})", float), ("act", r"n(re|r6|sw|hs)", str),
]
_SKIP_TOKENS = {"noskip": "none", "skip": "id", "poolskip": "pool"}


def _match_token(tok: str, block: str) -> tuple[str, object]:
    """One option token -> (field, value); raises naming the token if it matches nothing."""
    if tok in _SKIP_TOKENS:
        return "skip", _SKIP_TOKENS[tok]
    for key, pat, conv in _PATTERNS:
        m = re.fullmatch(pat, tok)
        if m:
            return key, conv(m.group(1))
    raise InvalidArchitecture(f"bad token {tok!r} in block {block!r}: unknown option")


def _fmt_num(x: float) -> str:
    """Shortest faithful text for a ratio: 6.0 -> '6', 0.25 -> '0.25'."""
    return str(int(x)) if float(x).is_integer() else repr(float(x))


@dataclass(frozen=True)
class BlockSpec:
    """One block: ``repeats`` layers of ``op``; the first layer has ``stride`` and the new width."""

    op: str
    """``ir`` (MBConv), ``ds`` (depthwise-separable) or ``cn`` (regular conv)."""
    repeats: int
    """Number of layers in the block (>= 1)."""
    kernel: int
    """Kernel size of the spatial conv (odd, >= 1)."""
    stride: int
    """Stride of the block's first layer (>= 1); later layers use stride 1."""
    out_chs: int
    """Output channels of every layer in the block."""
    exp: float = 1.0
    """Expansion ratio of ``ir`` (>= 1); always 1 for ``ds`` and ``cn``."""
    se: float = 0.0
    """Squeeze-excitation ratio; 0 means no SE."""
    skip: str = ""
    """``id``, ``none`` or ``pool``; empty means the op's default (``id``, or ``none`` for cn)."""
    act: str = "re"
    """Activation code, a key of :data:`ACTS`."""

    def __post_init__(self) -> None:
        if not self.skip:
            object.__setattr__(self, "skip", _DEFAULT_SKIP.get(self.op, "id"))
        object.__setattr__(self, "exp", float(self.exp))
        object.__setattr__(self, "se", float(self.se))
        self._validate()

    def _validate(self) -> None:
        where = f"in block {self.to_str(check=False)!r}"
        if self.op not in OPS:
            raise InvalidArchitecture(f"unknown op {self.op!r} {where}: expected one of {OPS}")
        checks = [
            (1 <= self.repeats <= MAX_REPEATS, f"r{self.repeats}",
             f"layers must be 1..{MAX_REPEATS}"),
            (self.kernel >= 1 and self.kernel % 2 == 1, f"k{self.kernel}", "kernel must be odd"),
            (self.kernel <= MAX_KERNEL, f"k{self.kernel}", f"kernel must be <= {MAX_KERNEL}"),
            (1 <= self.stride <= 4, f"s{self.stride}", "stride must be 1..4"),
            (1 <= self.out_chs <= MAX_CHANNELS, f"c{self.out_chs}",
             f"channels must be 1..{MAX_CHANNELS}"),
            (0.0 <= self.se < 1.0, f"se{_fmt_num(self.se)}", "SE ratio must be in [0, 1)"),
            (self.skip in SKIPS, self.skip, f"skip must be one of {SKIPS}"),
            (self.act in ACTS, f"n{self.act}", f"activation must be one of {tuple(ACTS)}"),
        ]
        if self.op == "ir":
            checks.append((1.0 <= self.exp <= MAX_EXPANSION, f"e{_fmt_num(self.exp)}",
                           f"expansion must be in [1, {MAX_EXPANSION:g}]"))
        else:
            checks.append((self.exp == 1.0, f"e{_fmt_num(self.exp)}", f"{self.op} takes e1 only"))
        for ok, token, why in checks:
            if not ok:
                raise InvalidArchitecture(f"bad token {token!r} {where}: {why}")

    # ---- codec ------------------------------------------------------------------------------
    @classmethod
    def parse(cls, text: str) -> BlockSpec:
        """Parse one block string such as ``ir_r2_k3_s2_e6_c24_se0.25``.

        Raises:
            InvalidArchitecture: a token is unknown, repeated, missing or out of range; the
                message names the token and the block.
        """
        s = text.strip()
        tokens = s.split("_")
        op = tokens[0]
        if op not in OPS:
            raise InvalidArchitecture(
                f"bad token {op!r} in block {s!r}: op must be one of {', '.join(OPS)}"
            )
        fields: dict[str, object] = {}
        for tok in tokens[1:]:
            key, val = _match_token(tok, s)
            if key in fields:
                raise InvalidArchitecture(f"bad token {tok!r} in block {s!r}: {key} given twice")
            fields[key] = val
        for key, tok in (("repeats", "rN"), ("kernel", "kN"), ("stride", "sN"), ("out_chs", "cN")):
            if key not in fields:
                raise InvalidArchitecture(f"block {s!r} lacks the {tok} token")
        if op == "ir" and "exp" not in fields:
            raise InvalidArchitecture(f"block {s!r} lacks the eX token (ir needs an expansion)")
        return cls(op=op, **fields)  # type: ignore[arg-type]

    def to_str(self, check: bool = True) -> str:
        """Canonical block string (token order fixed, defaults omitted, ``ds`` keeps ``e1``)."""
        parts = [self.op, f"r{self.repeats}", f"k{self.kernel}", f"s{self.stride}"]
        if self.op != "cn":
            parts.append(f"e{_fmt_num(self.exp)}")
        parts.append(f"c{self.out_chs}")
        if self.se > 0:
            parts.append(f"se{_fmt_num(self.se)}")
        if self.act != "re":
            parts.append(f"n{self.act}")
        default = _DEFAULT_SKIP.get(self.op, "id")
        if self.skip != default:
            parts.append({"none": "noskip", "id": "skip", "pool": "poolskip"}.get(self.skip, "?"))
        return "_".join(parts)

    def __str__(self) -> str:
        return self.to_str()

    def effective_skip(self, in_chs: int | None, layer: int) -> str:
        """The shortcut layer ``layer`` really gets, given the block's input channels.

        ``in_chs=None`` (unknown: the network's first block before the task fixes the input
        channels) keeps the declared skip of the first layer.
        """
        if in_chs is None and layer == 0:
            return self.skip
        same = layer > 0 or (self.stride == 1 and in_chs == self.out_chs)
        if self.skip == "none":
            return "none"
        if same:
            return "id"  # a pooling shortcut over matching shapes is the identity
        return "pool" if self.skip == "pool" else "none"


@dataclass(frozen=True)
class ArchSpec:
    """A whole architecture: blocks in order, then global pooling and a linear classifier."""

    blocks: tuple[BlockSpec, ...]

    def __post_init__(self) -> None:
        if not self.blocks:
            raise InvalidArchitecture("an architecture needs at least one block")
        object.__setattr__(self, "blocks", tuple(self.blocks))
        if len(self.blocks) > MAX_BLOCKS:
            raise InvalidArchitecture(f"{len(self.blocks)} blocks: an architecture has at most "
                                      f"{MAX_BLOCKS}")
        if self.num_layers > MAX_LAYERS:
            raise InvalidArchitecture(f"{self.num_layers} layers: an architecture has at most "
                                      f"{MAX_LAYERS}")

    @classmethod
    def parse(cls, text: str) -> ArchSpec:
        """Parse ``block | block | ...``.

        Raises:
            InvalidArchitecture: empty string, empty block, or any bad block token.
        """
        if not isinstance(text, str) or not text.strip():
            raise InvalidArchitecture("empty architecture string")
        if len(text) > MAX_ARCH_CHARS:
            raise InvalidArchitecture(f"architecture string of {len(text)} characters: at "
                                      f"most {MAX_ARCH_CHARS}")
        parts = [p.strip() for p in text.split("|")]
        if len(parts) > MAX_BLOCKS:
            raise InvalidArchitecture(f"{len(parts)} blocks: an architecture has at most "
                                      f"{MAX_BLOCKS}")
        for i, p in enumerate(parts):
            if not p:
                raise InvalidArchitecture(f"empty block at position {i} in {text.strip()!r}")
        return cls(tuple(BlockSpec.parse(p) for p in parts))

    def to_str(self) -> str:
        """Canonical architecture string: canonical blocks joined by ``" | "``."""
        return " | ".join(b.to_str() for b in self.blocks)

    def __str__(self) -> str:
        return self.to_str()

    def layer_skips(self, in_chans: int | None = None) -> tuple[tuple[str, ...], ...]:
        """Effective shortcut of every layer of every block (see :meth:`BlockSpec.effective_skip`).

        ``in_chans`` is the network's input channels, if known.
        """
        out, in_chs = [], in_chans
        for b in self.blocks:
            out.append(tuple(b.effective_skip(in_chs, j) for j in range(b.repeats)))
            in_chs = b.out_chs
        return tuple(out)

    @property
    def canonical(self) -> str:
        """String of the effective network: each block's skip replaced by what it really does."""
        parts = []
        for b, skips in zip(self.blocks, self.layer_skips(), strict=True):
            plain = replace(b, skip=_DEFAULT_SKIP[b.op]).to_str()  # skip shown per layer instead
            parts.append(plain + "_" + "".join(s[0] for s in skips))
        return "|".join(parts)

    @property
    def key(self) -> str:
        """Canonical key: 16 hex digits of sha256 over :attr:`canonical` (cache, store, pool)."""
        return hashlib.sha256(self.canonical.encode()).hexdigest()[:16]

    @property
    def num_layers(self) -> int:
        return sum(b.repeats for b in self.blocks)
