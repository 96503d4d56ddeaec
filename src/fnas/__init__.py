"""fnas: fast sampling-based neural architecture search (FNAS).

``fnas.create_search`` runs a search from Python (``fnas.api.search``); ``fnas.build``,
``fnas.load``, ``fnas.train`` and ``fnas.export`` are the entry points for using a found
architecture. They import torch on first use, so ``import fnas`` stays light. The search
logs to the ``fnas`` logger (one INFO line per evaluation and per policy update); it has only
a ``NullHandler`` until the application configures logging.
"""

from __future__ import annotations

import logging
from importlib import metadata as _metadata
from typing import TYPE_CHECKING

from fnas.api import export, train

if TYPE_CHECKING:  # what __getattr__ gives, as type checkers (mypy, pyright) should see it
    from fnas.api.bench import bench
    from fnas.api.search import (
        Choices,
        ObjectiveError,
        ObjectiveEvaluator,
        Search,
        create_search,
        make_space,
        register_space,
    )
    from fnas.nn.builder import Net
    from fnas.space.spec import ArchSpec
    from fnas.tasks.user_data import register_dataset, unregister_dataset

__all__ = ["__version__", "build", "load", "train", "export", "create_search", "make_space",
           "register_space", "Search", "ObjectiveEvaluator", "bench", "register_dataset",
           "unregister_dataset", "Choices", "ObjectiveError"]

_API = {"create_search", "make_space", "register_space", "Search", "ObjectiveEvaluator",
        "Choices", "ObjectiveError"}
_DATA = {"register_dataset", "unregister_dataset"}  # your tensors on the proxy task


def __getattr__(name: str):  # PEP 562: the search API (and torch) load on first use
    if name in _API:
        from fnas.api import search

        return getattr(search, name)
    if name == "bench":  # fnas.api.bench: compare strategies on your own benchmark
        from fnas.api.bench import bench

        return bench
    if name in _DATA:
        from fnas.tasks import user_data

        return getattr(user_data, name)
    raise AttributeError(f"module 'fnas' has no attribute {name!r}")

# a library adds no handler of its own: the application configures logging
logging.getLogger(__name__).addHandler(logging.NullHandler())

_SOURCE_VERSION = "0.1.0.dev0"
"""``pyproject.toml``'s version, for a source tree that is not installed (a test checks)."""

try:
    __version__ = _metadata.version("fnas")
except _metadata.PackageNotFoundError:
    __version__ = _SOURCE_VERSION


def build(arch: str | ArchSpec, num_classes: int = 1000, input_size: int = 224,
          in_chans: int = 3) -> Net:
    """A freshly initialised ``nn.Module`` for ``arch``: a block string, a name
    (``mnasnet_a1``, ``mnasnet_b1``, ``mobilenetv2_100``, ``mnas_default``) or an ArchSpec.

    Seed torch (``torch.manual_seed``) first for a reproducible initialisation.

    Raises:
        InvalidArchitecture: a bad block string or an unknown name (one line naming it).
        ConfigError: a size is not a positive integer, or no ``mnas_default`` variant exists
            for ``input_size``.
    """
    from fnas.nn.builder import build as _build

    return _build(arch, num_classes=num_classes, input_size=input_size, in_chans=in_chans)


def load(path, device="cpu") -> Net:
    """The trained ``nn.Module`` of a model file written by ``fnas train``, in eval mode.

    Reads safetensors only (never pickle); ``model.info`` holds the file's metadata
    (architecture, task, accuracy, input normalisation...).

    Raises:
        ModelError: the file is missing, truncated, corrupted or not an fnas model file.
    """
    from fnas.nn.weights import load as _load

    return _load(path, device=device)
