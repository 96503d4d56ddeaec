"""NAS-Bench-Macro's space (Su et al., CVPR 2021), defined with the generic factorized API.

Eight searchable layers of a MobileNetV2-style CIFAR-10 network, each one of ``id`` (identity,
i.e. the layer is skipped), ``mb3_k3`` (MBConv, expansion 3, kernel 3) or ``mb6_k5`` (expansion
6, kernel 5): 3^8 = 6,561 architectures, all trained in the benchmark table. An architecture
is named by its 8-digit table key, one digit per layer (0, 1, 2 as listed).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fnas.errors import InvalidArchitecture
from fnas.space.factorized import Decision, FactorizedSpace

__all__ = ["MacroArch", "macro_space", "MACRO_CHOICES"]

MACRO_CHOICES = ("id", "mb3_k3", "mb6_k5")


@dataclass(frozen=True)
class MacroArch:
    """A NAS-Bench-Macro architecture: its 8-digit table key (``"22212220"``)."""

    code: str

    def __post_init__(self) -> None:
        if len(self.code) != 8 or any(c not in "012" for c in self.code):
            raise InvalidArchitecture(
                f"bad NAS-Bench-Macro key {self.code!r}: expected 8 digits in 0, 1, 2")

    @property
    def key(self) -> str:
        return self.code

    def to_str(self) -> str:
        return self.code

    def __str__(self) -> str:
        return self.code


def macro_space() -> FactorizedSpace:
    """The 8-decision NAS-Bench-Macro space."""

    def decode(c: Mapping[str, Any]) -> MacroArch:
        return MacroArch("".join(str(MACRO_CHOICES.index(c[f"layer{i}"])) for i in range(8)))

    def encode(arch: MacroArch) -> dict[str, Any]:
        return {f"layer{i}": MACRO_CHOICES[int(ch)] for i, ch in enumerate(arch.code)}

    return FactorizedSpace("macro", [Decision(f"layer{i}", MACRO_CHOICES) for i in range(8)],
                           decode, encode)
