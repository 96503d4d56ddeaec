"""Readers of the binary dataset formats of :mod:`fnas.tasks.datasets`, with numpy only (nothing
is unpickled): CIFAR-10's binary batches and MNIST's idx files. Corrupt input raises a one-line
:class:`~fnas.errors.TaskError` naming the file."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from fnas._io import read_source, regular_source
from fnas.errors import TaskError

_CIFAR_RECORD = 1 + 3 * 32 * 32


def resolve_cifar(root: Path) -> tuple[tuple[str, ...], int]:
    """The data_batch_*.bin files in root or root/cifar-10-batches-bin, sorted, and their
    total size in bytes."""
    # test_batch.bin is deliberately never read: the search's validation split is held out from
    # the training batches, which keeps the real CIFAR-10 test set untouched by the search.
    for d in (root, root / "cifar-10-batches-bin"):
        files = sorted(p for p in d.glob("data_batch_*.bin") if p.is_file())
        if files:
            nbytes = sum(p.stat().st_size for p in files)
            return tuple(map(str, files)), nbytes
    raise TaskError(f"no data_batch_*.bin in {str(root)!r} or its cifar-10-batches-bin/ subfolder")


def read_cifar(files: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """CIFAR-10 binary batches -> (x (N, 3, 32, 32) uint8, y (N,) int64)."""
    xs, ys = [], []
    for f in files:
        try:
            raw = np.frombuffer(read_source(f, "CIFAR-10 batch"), dtype=np.uint8)
        except OSError as exc:
            raise TaskError(f"cannot read CIFAR-10 batch {f!r}: {exc.strerror}") from exc
        if raw.size == 0 or raw.size % _CIFAR_RECORD:
            raise TaskError(
                f"CIFAR-10 batch {f!r} is {raw.size} bytes, "
                f"not a positive multiple of {_CIFAR_RECORD} (truncated or not binary)"
            )
        records = raw.reshape(-1, _CIFAR_RECORD)  # (n, 1 + 3072)
        bad = np.flatnonzero(records[:, 0] > 9)
        if bad.size:
            raise TaskError(
                f"CIFAR-10 batch {f!r} record {bad[0]} has label {records[bad[0], 0]} > 9"
            )
        ys.append(records[:, 0].astype(np.int64))
        xs.append(records[:, 1:].reshape(-1, 3, 32, 32))
    return np.concatenate(xs), np.concatenate(ys)


def _idx_file(root: Path, stem: str) -> Path:
    """root/stem or root/stem.gz, TaskError when neither is there."""
    for p in (root / stem, root / f"{stem}.gz"):
        if regular_source(p, "idx file").is_file():  # a FIFO is refused: it would hang
            return p
    raise TaskError(f"idx dataset {str(root)!r} has no {stem} (or {stem}.gz): expected the "
                    "MNIST-format train-images-idx3-ubyte and train-labels-idx1-ubyte")


def resolve_idx(root: Path) -> tuple[tuple[str, ...], tuple[str, ...], int]:
    """The train (images, labels) files of an MNIST-format folder, the class names and the
    files' total size. The labels (small) are read here to know the classes. The t10k-* test
    files are deliberately never read, as for CIFAR-10."""
    images, labels = _idx_file(root, "train-images-idx3-ubyte"), _idx_file(
        root, "train-labels-idx1-ubyte")
    y = _read_idx(labels, ndim=1)
    classes = tuple(str(c) for c in range(int(y.max()) + 1)) if y.size else ()
    if len(np.unique(y)) < 2:
        raise TaskError(f"idx labels {str(labels)!r} hold fewer than 2 classes")
    nbytes = images.stat().st_size + labels.stat().st_size
    return (str(images), str(labels)), classes, nbytes


def _read_idx(path: Path | str, ndim: int) -> np.ndarray:
    """An idx file of unsigned bytes (magic 0x00000800 + ndim) -> array; TaskError if it is
    not one: wrong magic, other element type, or a size that does not match its header."""
    try:
        raw = read_source(path, "idx file")  # a FIFO or device is refused unread
        raw = gzip.decompress(raw) if str(path).endswith(".gz") else raw
    except (OSError, EOFError) as exc:  # gzip raises BadGzipFile (an OSError) or EOFError
        raise TaskError(f"cannot read idx file {str(path)!r}: {exc}") from exc
    if len(raw) < 4 + 4 * ndim or raw[:3] != b"\x00\x00\x08" or raw[3] != ndim:
        raise TaskError(f"{str(path)!r} is not an idx file of {ndim}-d unsigned bytes "
                        f"(magic {raw[:4].hex() or 'missing'}, expected 000008{ndim:02x})")
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    body = len(raw) - 4 - 4 * ndim
    if int(np.prod(shape)) != body or shape[0] == 0:
        raise TaskError(f"idx file {str(path)!r} header says {shape} but holds {body} bytes "
                        "(truncated or corrupt)")
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def read_idx_pair(files: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(images, labels) idx files -> (x (N, 1, H, W) uint8, y (N,) int64)."""
    x, y = _read_idx(files[0], ndim=3), _read_idx(files[1], ndim=1)
    if len(x) != len(y):
        raise TaskError(f"idx images {files[0]!r} hold {len(x)} images but labels "
                        f"{files[1]!r} hold {len(y)}")
    return x[:, None], y.astype(np.int64)
