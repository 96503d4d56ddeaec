"""Small file helpers: the store's writers (:func:`atomic_write_bytes`), the readers of a
file the user names (:func:`regular_source`, :func:`read_source`), and the import of a module
the user names as ``module:attr`` (:func:`import_user_module`)."""

from __future__ import annotations

import errno
import importlib
import os
import stat
import sys
from pathlib import Path

from fnas.errors import ConfigError

__all__ = ["atomic_write_bytes", "regular_target", "regular_source", "read_source",
           "import_user_module"]


def _not_regular(mode: int, path: str | Path, what: str) -> ConfigError:
    kind = ("a directory" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode)
            else "a socket" if stat.S_ISSOCK(mode) else "a device")
    return ConfigError(f"{what} {str(path)!r:.200}: not a regular file ({kind}); give a file")


def regular_source(path: str | Path, what: str) -> Path:
    """``path`` as a Path, if it is a regular file (symlinks followed) or missing (the reader
    says so itself, in its words): every loader of a file the user names checks it before
    opening it, since reading a FIFO waits for a writer forever and a device may never end.

    Raises:
        ConfigError: ``path`` is a FIFO, a device, a socket or a folder; one line, naming
        ``what`` it was given as (``config``, ``--table``...).
    """
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):  # missing, unreadable, or a NUL in the name
        return Path(path)
    if not stat.S_ISREG(mode):
        raise _not_regular(mode, path, what)
    return Path(path)


def read_source(path: str | Path, what: str) -> bytes:
    """The bytes of a regular file the user names, refusing anything else without waiting:
    opened non-blocking and checked on the open file (no window in which a FIFO could take
    the file's place between the check and the read).

    Raises:
        ConfigError: a FIFO, a device, a socket or a folder (:func:`regular_source`).
        OSError: missing or unreadable (the caller words it).
    """
    fd = os.open(regular_source(path, what), os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as f:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise _not_regular(mode, path, what)
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return f.read()


def regular_target(path: Path) -> Path:
    """Where a write to ``path`` goes: through a symlink to the file it names, and only to a
    regular file (or a new one). A device node (``/dev/null``, ``/dev/full``), a FIFO or a
    folder is refused: an atomic rename would replace it with a regular file.

    Raises:
        OSError: ``path`` (or what it links to) exists and is not a regular file.
    """
    target = Path(os.path.realpath(path))
    if target.exists() and not target.is_file():
        raise IsADirectoryError(errno.EISDIR, "not a regular file (fnas writes only regular "
                                "files: a device, FIFO or folder is left alone)", str(path))
    return target


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a reader (or a kill -9) sees the old file or the
    whole new one, never a part: a temp file beside it, fsync, atomic rename. Creates the
    parent folder; writes through a symlink; refuses a path that is not a regular file
    (:func:`regular_target`). Raises ``OSError`` (the temp file is removed)."""
    path = regular_target(Path(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise


def import_user_module(name: str) -> object:
    """The module ``name`` of a ``module:attr`` the user gave (``--space mybench:space``),
    found as ``python -m`` finds it: the current folder is searched first. The ``fnas``
    console script, unlike ``python -m fnas``, does not put the current folder on
    ``sys.path``, so it is put at its front here, once (a ``mybench.py`` beside the user
    then imports from ``fnas bench`` too).

    Raises:
        ImportError (and whatever the module raises as it runs): the caller words it.
    """
    here = os.getcwd()
    if not any(os.path.abspath(p or os.curdir) == here for p in sys.path
               if isinstance(p, str)):
        sys.path.insert(0, here)
        importlib.invalidate_caches()
    return importlib.import_module(name)
