"""PyTorch modules: the blocks and the builder (the only torch-facing part of the space)."""

from fnas.nn.blocks import (
    LAYER_TYPES,
    ConvLayer,
    DepthwiseSeparable,
    InvertedResidual,
    PoolShortcut,
    SqueezeExcite,
    make_layer,
)
from fnas.nn.builder import Net, block_prefix, build_model

__all__ = ["LAYER_TYPES", "ConvLayer", "DepthwiseSeparable", "InvertedResidual", "PoolShortcut",
           "SqueezeExcite", "make_layer", "Net", "block_prefix", "build_model"]
