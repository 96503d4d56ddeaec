"""fnas's exception hierarchy (Optuna-style: small, one base class).

Everything a user can cause by bad input raises a subclass of :class:`FnasError` whose message
is a single line naming the offending value. The CLI prints that line and exits with status 2;
it never shows a traceback for a :class:`FnasError`.
"""

from __future__ import annotations

__all__ = ["FnasError", "InvalidArchitecture", "ConfigError", "StoreError", "TaskError",
           "ModelError"]


MAX_MESSAGE = 500
"""Characters of an error message kept: a message quoting a huge value (a 1 MB setting)
keeps its start and its end."""


class FnasError(Exception):
    """Base class of every error fnas raises on purpose. Its message is one line of at most
    :data:`MAX_MESSAGE` characters (a longer one is cut in the middle)."""

    def __init__(self, *args: object) -> None:
        if len(args) == 1 and isinstance(args[0], str) and len(args[0]) > MAX_MESSAGE:
            m = args[0]
            args = (f"{m[:MAX_MESSAGE - 120]} [... {len(m) - MAX_MESSAGE + 100} characters "
                    f"left out ...] {m[-80:]}",)
        super().__init__(*args)


class InvalidArchitecture(FnasError, ValueError):
    """An architecture or block string (or a decision vector) is malformed or out of range."""


class ConfigError(FnasError, ValueError):
    """A configuration value (task, reward, search, CLI argument) is invalid."""


class StoreError(FnasError):
    """The persistent store is missing, corrupted or incompatible."""


class TaskError(FnasError):
    """A dataset or task cannot be loaded (missing file, wrong format, missing extra)."""


class ModelError(FnasError):
    """A model file cannot be read or written: missing, truncated or corrupted weights, not an
    fnas model file, or an export whose optional dependency is not installed."""
