"""Search spaces and architecture specs. Nothing in this package imports torch."""

from fnas.space.cost import ArchCost, BlockCost, arch_cost
from fnas.space.factorized import Decision, FactorizedSpace
from fnas.space.macro import MACRO_CHOICES, MacroArch, macro_space
from fnas.space.mnas import (
    MNAS_VARIANTS,
    NAMED_ARCHS,
    MnasVariant,
    make_divisible,
    mnas_default,
    mnas_space,
    resolve_arch,
)
from fnas.space.spec import ACTS, OPS, SKIPS, ArchSpec, BlockSpec

__all__ = [
    "ACTS", "OPS", "SKIPS", "ArchSpec", "BlockSpec", "ArchCost", "BlockCost", "arch_cost",
    "Decision", "FactorizedSpace", "MNAS_VARIANTS", "NAMED_ARCHS", "MnasVariant",
    "make_divisible", "mnas_default", "mnas_space", "resolve_arch", "MACRO_CHOICES", "MacroArch",
    "macro_space",
]
