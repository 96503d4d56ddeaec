"""Spec -> ``nn.Module``. The only place an :class:`~fnas.space.ArchSpec` becomes a network.

Parameter names are stable: ``blocks.{i}.{j}.<layer part>`` for layer ``j`` of block ``i``
(block 0 is the stem), then ``classifier``. The knowledge pool keys block weights on them.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from fnas.errors import ConfigError, InvalidArchitecture
from fnas.nn.blocks import make_layer
from fnas.space.mnas import resolve_arch
from fnas.space.spec import ArchSpec

__all__ = ["Net", "build", "build_model", "block_prefix"]


def block_prefix(index: int) -> str:
    """State-dict prefix of block ``index`` (``"blocks.3."``)."""
    return f"blocks.{index}."


class Net(nn.Module):
    """Blocks in order, global average pool, linear classifier."""

    def __init__(self, spec: ArchSpec, in_chans: int = 3, num_classes: int = 1000,
                 input_size: int | None = None) -> None:
        super().__init__()
        self.spec = spec
        self.in_chans = in_chans
        self.num_classes = num_classes
        # Metadata only (exports trace at this size): pooling makes the network size-agnostic.
        self.input_size = input_size
        self.info = None  # a ModelInfo when the weights come from a model file (fnas.load)
        blocks, chs = [], in_chans
        for b, skips in zip(spec.blocks, spec.layer_skips(in_chans), strict=True):
            layers = []
            for j, skip in enumerate(skips):
                layers.append(make_layer(b, chs, b.stride if j == 0 else 1, skip))
                chs = b.out_chs
            blocks.append(nn.Sequential(*layers))
        self.blocks = nn.Sequential(*blocks)
        self.num_features = chs
        self.classifier = nn.Linear(chs, num_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """timm/TF EfficientNet init: conv normal(fan_out), BN (1, 0), linear uniform(fan_out)."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels // m.groups
                nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                r = 1.0 / math.sqrt(m.weight.size(0))
                nn.init.uniform_(m.weight, -r, r)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x)  # (N, C, H', W')

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.forward_features(x).mean((2, 3))  # (N, C)
        return self.classifier(x)  # (N, num_classes)


MAX_PARAMS = 500_000_000
"""Most parameters fnas builds a network with (2 GB of float32): a bigger one is refused before
any allocation (a forged model file or string must not exhaust memory)."""
MAX_IN_CHANS = 256
MAX_CLASSES = 100_000


def check_model_size(spec: ArchSpec, in_chans: int = 3, num_classes: int = 1000,
                     input_size: int | None = None) -> None:
    """Refuse, in one line and before any allocation, sizes beyond fnas's documented limits.

    Raises:
        ConfigError: in_chans, num_classes or input_size out of range, or more than
            :data:`MAX_PARAMS` parameters.
    """
    from fnas._limits import MAX_IMAGE_SIZE
    from fnas.space.cost import arch_cost

    for name, v, hi in (("in_chans", in_chans, MAX_IN_CHANS),
                        ("num_classes", num_classes, MAX_CLASSES),
                        ("input_size", input_size, MAX_IMAGE_SIZE)):
        if v is None and name == "input_size":
            continue
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= hi:
            raise ConfigError(f"{name}={v!r:.40}: expected an integer in [1, {hi}]")
    params = arch_cost(spec, 32, in_chans, num_classes).params
    if params > MAX_PARAMS:
        raise ConfigError(f"architecture {spec.key} has {params:,} parameters; fnas builds at "
                          f"most {MAX_PARAMS:,}")


def build_model(spec: ArchSpec, in_chans: int = 3, num_classes: int = 1000,
                input_size: int | None = None) -> Net:
    """Build ``spec`` for ``in_chans``-channel input and ``num_classes`` outputs.

    Raises:
        ConfigError: beyond the size limits (:func:`check_model_size`); nothing is allocated.
    """
    check_model_size(spec, in_chans, num_classes, input_size)
    return Net(spec, in_chans, num_classes, input_size)


def build(arch: str | ArchSpec, num_classes: int = 1000, input_size: int = 224,
          in_chans: int = 3) -> Net:
    """A freshly initialised network (``fnas.build``): a block string, a name such as
    ``mnasnet_a1`` or ``mnas_default`` (the space variant of ``input_size``), or an ArchSpec.

    Initialisation draws from torch's global RNG: seed it with ``torch.manual_seed`` first for
    a reproducible model. ``input_size`` picks the ``mnas_default`` variant and is recorded
    on the module (``model.input_size``); the network itself accepts any input size.

    Raises:
        InvalidArchitecture: ``arch`` is neither a known name nor a valid block string.
        ConfigError: ``num_classes``, ``input_size`` or ``in_chans`` is not a positive integer,
            or ``mnas_default`` has no variant for ``input_size``.
    """
    for name, v in (("num_classes", num_classes), ("input_size", input_size),
                    ("in_chans", in_chans)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ConfigError(f"{name}={v!r}: expected a positive integer")
    if not isinstance(arch, (str, ArchSpec)):
        raise InvalidArchitecture(f"expected a block string, a name or an ArchSpec, got {arch!r}")
    spec = arch if isinstance(arch, ArchSpec) else resolve_arch(arch, input_size)
    return build_model(spec, in_chans, num_classes, input_size)
