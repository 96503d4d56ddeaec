"""The library's Python API: a search (``fnas.create_search``, :mod:`fnas.api.search`), and
the one-call tasks: train an architecture, export it (``fnas.train``, ``fnas.export``). The
command line's ``fnas train`` and ``fnas export`` only parse and call these.
"""

from fnas.api.exporting import EXPORT_FORMATS, Exported, export
from fnas.api.target import Target, resolve_target
from fnas.api.training import Trained, train

__all__ = ["EXPORT_FORMATS", "Exported", "export", "Target", "resolve_target", "Trained",
           "train"]
