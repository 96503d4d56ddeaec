"""Small file helpers shared by the store's writers."""

from __future__ import annotations

import errno
import os
from pathlib import Path

__all__ = ["atomic_write_bytes", "regular_target"]


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
