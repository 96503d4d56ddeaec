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
from fnas.nn.builder import Net, block_prefix, build, build_model
from fnas.nn.transfer import (
    BlockTransfer,
    SimilarityWeights,
    block_distance,
    fresh_state_dict,
    rank_candidates,
    transfer_block,
)

__all__ = ["LAYER_TYPES", "ConvLayer", "DepthwiseSeparable", "InvertedResidual", "PoolShortcut",
           "SqueezeExcite", "make_layer", "Net", "block_prefix", "build", "build_model",
           "BlockTransfer", "SimilarityWeights", "block_distance", "fresh_state_dict",
           "rank_candidates", "transfer_block"]
