"""Your own data on the built-in proxy task: tensors or a torch ``Dataset``, registered by name.

::

    import fnas

    fnas.register_dataset("mydata", images, labels, version="v1")  # (N, C, H, W), (N,)
    search = fnas.create_search(store="runs/", space="mnas",
                                task=fnas.tasks.TaskConfig(dataset="mydata", epochs=3))

After registration, ``TaskConfig(dataset="mydata")`` trains on the data exactly as on a built-in
dataset: the same stratified train/validation split (``val_fraction``, ``split_seed``),
``max_samples`` subsample, ``image_size`` resize and per-channel normalisation with the train
split's statistics (:func:`fnas.tasks.load_dataset`).

- **Copied, then fixed.** The data is copied at registration (read-only numpy arrays), so
  changing your tensors afterwards changes nothing; register again to change it.
- **Keyed by content.** The dataset's signature (part of the task signature that keys the
  result cache and that a resume checks) holds the name, your ``version`` tag and a
  fingerprint: sample count, shape, dtype, classes and a BLAKE2 hash of every pixel and
  label. Two different datasets never share cached results, and a run resumes only on the
  same data.
- **In-process.** The registry lives in this process: a new process (a resume, ``fnas
  train``) registers the data again first; until then the name is refused in one line.
  Ray workers receive the data with the evaluator (it is pickled with it once per run).
- **Pixels.** ``uint8`` pixels are divided by 255; any other numeric dtype is taken as it is
  (the per-channel normalisation follows either way).
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fnas._limits import MAX_IMAGE_SIZE
from fnas.errors import ConfigError

__all__ = ["RegisteredDataset", "register_dataset", "unregister_dataset", "registered_dataset",
           "registered_datasets", "recorded_shape", "BUILTIN_NAMES"]

BUILTIN_NAMES = ("digits", "mnist5k", "cifar10", "idx", "folder")
"""Names a registered dataset cannot take (``fnas.tasks.datasets.DATASET_KINDS``)."""
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9._-]{0,63}")
_MAX_SIDE = MAX_IMAGE_SIZE
_REGISTRY: dict[str, RegisteredDataset] = {}
_LOCK = threading.Lock()


@dataclass(frozen=True, eq=False)
class RegisteredDataset:
    """A dataset registered with :func:`register_dataset`: a read-only copy and its key."""

    name: str
    """The name a ``TaskConfig(dataset=...)`` gives."""
    version: str | None
    """Your tag for this version of the data (part of :attr:`signature`)."""
    images: np.ndarray = field(repr=False)
    """(N, C, H, W) pixels, read-only, in the dtype given (``uint8`` or float32)."""
    labels: np.ndarray = field(repr=False)
    """(N,) int64 class indices in ``[0, num_classes)``."""
    num_classes: int
    """Number of classes (the classifier's outputs)."""
    fingerprint: str
    """BLAKE2b of the shape, dtype, pixels and labels (32 hex digits)."""

    @property
    def scale(self) -> float:
        """The full-scale pixel value: 255 for ``uint8``, else 1 (values taken as they are)."""
        return 255.0 if self.images.dtype == np.uint8 else 1.0

    @property
    def signature(self) -> str:
        """Name, version and content fingerprint: what the result cache is keyed by."""
        n, c, h, w = self.images.shape
        return (f"user:{self.name}@{self.version}|n={n}|shape={c}x{h}x{w}|"
                f"dtype={self.images.dtype}|classes={self.num_classes}|hash={self.fingerprint}")


def register_dataset(name: str, images: Any, labels: Any = None, *,
                     version: str | int | None = None, num_classes: int | None = None,
                     replace: bool = False) -> RegisteredDataset:
    """Make ``name`` a dataset of the proxy task (``TaskConfig(dataset=name)``) in this process.

    Args:
        name: letters, digits, ``.``, ``_``, ``-`` (starting with a letter, at most 64), not a
            built-in dataset's name.
        images: (N, C, H, W) tensor or numpy array (``uint8`` pixels, or floats), or a
            ``torch.utils.data.Dataset`` whose items are ``(image, label)`` pairs with a
            (C, H, W) tensor/array or a PIL image (then ``labels`` stays None). Images need
            not be square if the task sets ``image_size``.
        labels: (N,) integer class indices (tensor, array or sequence).
        version: your tag for this version of the data (keys the result cache with the
            content fingerprint).
        num_classes: the classifier's outputs; default: the largest label + 1.
        replace: let ``name`` take other data or another version than it has now.

    Returns:
        The :class:`RegisteredDataset`. Registering the same data and version again is a no-op
        (it returns the existing one), so a script can run twice in one process.

    Raises:
        ConfigError: a bad name, a name holding other data (without ``replace``), images that
            are not (N, C, H, W) numbers, labels of another length, negative or not integers,
            fewer than 2 classes, or a class with fewer than 2 samples (the stratified
            split puts at least one on each side).
    """
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ConfigError(f"dataset name {name!r:.80} must be letters, digits, '.', '_', '-' "
                          "(starting with a letter, at most 64 characters)")
    if name.lower() in BUILTIN_NAMES:
        raise ConfigError(f"dataset name {name!r} is a built-in dataset's; pick another name")
    if isinstance(version, bool) or not isinstance(version, (str, int, type(None))):
        raise ConfigError(f"dataset {name!r}: version must be a string or an integer, "
                          f"got {version!r:.60}")
    if labels is None:
        x, y = _from_dataset(name, images)
    else:
        x, y = _images(name, images), _labels(name, labels)
    k = _check(name, x, y, num_classes)
    x = np.ascontiguousarray(x if x.dtype == np.uint8 else x.astype(np.float32))
    y = np.ascontiguousarray(y, dtype=np.int64)
    x.flags.writeable = y.flags.writeable = False
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{x.shape}|{x.dtype}|{k}".encode())
    h.update(memoryview(x).cast("B"))
    h.update(memoryview(y).cast("B"))
    data = RegisteredDataset(name, None if version is None else str(version), x, y, k,
                             h.hexdigest())
    with _LOCK:
        old = _REGISTRY.get(name)
        if old is not None and old.signature == data.signature:
            return old
        if old is not None and not replace:
            raise ConfigError(f"dataset name {name!r} already holds other data or another "
                              f"version ({old.signature}); pass replace=True or pick another name")
        _REGISTRY[name] = data
    return data


def unregister_dataset(name: str) -> None:
    """Forget ``name`` (a no-op if it is not registered)."""
    with _LOCK:
        _REGISTRY.pop(name, None)


def registered_dataset(name: str) -> RegisteredDataset | None:
    """The dataset registered under ``name`` in this process, or None."""
    return _REGISTRY.get(name)


def recorded_shape(signature: str, name: str) -> tuple[int, int, int, int] | None:
    """(C, H, W, classes) of registered dataset ``name`` as a signature that holds its
    :attr:`RegisteredDataset.signature` records them (a run's task signature does), or None
    when it holds no such record. The data need not be registered in this process: what a run
    recorded is enough to know the shape of the networks it trained."""
    if not isinstance(signature, str):
        return None
    head = f"user:{name}@"
    at = signature.find(head)
    if at < 0:
        return None
    found = _RECORD.search(signature, at + len(head))
    if found is None:
        return None
    c, h, w, k = (int(g) for g in found.groups())
    return c, h, w, k


_RECORD = re.compile(r"\|n=\d+\|shape=(\d+)x(\d+)x(\d+)\|dtype=[^|]*\|classes=(\d+)\|hash=")
"""The shape and classes in :attr:`RegisteredDataset.signature` (after its name and version)."""


def registered_datasets() -> list[str]:
    """The names registered in this process, sorted."""
    return sorted(_REGISTRY)


def adopt(data: RegisteredDataset) -> None:
    """Register ``data`` as shipped from another process (a Ray worker receiving an
    evaluator): it replaces whatever the name held here."""
    with _LOCK:
        _REGISTRY[data.name] = data


def _as_array(value: Any) -> np.ndarray:
    """A tensor (moved to the CPU), array or sequence as a numpy array."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor, without torch
        return value.detach().cpu().numpy()
    return np.asarray(value)


def _array(name: str, what: str, value: Any) -> np.ndarray:
    """``value`` as a numpy array, else ConfigError naming ``what`` of dataset ``name``."""
    try:
        return _as_array(value)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ConfigError(f"dataset {name!r}: {what} are not an array or tensor "
                          f"({type(value).__name__}: {exc})") from None


def _images(name: str, images: Any) -> np.ndarray:
    """(N, C, H, W) real numbers, else ConfigError saying what was given."""
    x = _array(name, "images", images)
    if x.dtype == bool or x.dtype.kind not in "uif":
        raise ConfigError(f"dataset {name!r}: images must be numbers, got dtype {x.dtype}")
    if x.ndim != 4:
        hint = " (greyscale (N, H, W): pass images[:, None])" if x.ndim == 3 else ""
        raise ConfigError(f"dataset {name!r}: images must be (N, C, H, W), got shape "
                          f"{tuple(x.shape)}{hint}")
    n, c, h, w = x.shape
    if c > 4 and w <= 4:
        raise ConfigError(f"dataset {name!r}: images of shape {tuple(x.shape)} look "
                          "channels-last (N, H, W, C); pass images.permute(0, 3, 1, 2)")
    if min(n, c, h, w) < 1 or max(h, w) > _MAX_SIDE:
        raise ConfigError(f"dataset {name!r}: images of shape {tuple(x.shape)}: need N, C >= 1 "
                          f"and 1 <= H, W <= {_MAX_SIDE}")
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        raise ConfigError(f"dataset {name!r}: images hold NaN or infinite values")
    return x


def _labels(name: str, labels: Any) -> np.ndarray:
    """(N,) integers, else ConfigError."""
    y = _array(name, "labels", labels)
    if y.dtype == bool or y.dtype.kind not in "ui":
        raise ConfigError(f"dataset {name!r}: labels must be integer class indices, got dtype "
                          f"{y.dtype}")
    if y.ndim != 1:
        raise ConfigError(f"dataset {name!r}: labels must be (N,), got shape {tuple(y.shape)}")
    return y


def _from_dataset(name: str, ds: Any) -> tuple[np.ndarray, np.ndarray]:
    """Read every ``(image, label)`` item of a map-style dataset into two arrays."""
    if isinstance(ds, (str, bytes)) or hasattr(ds, "shape") or not (
            hasattr(ds, "__getitem__") and hasattr(ds, "__len__")):
        raise ConfigError(f"dataset {name!r}: labels are missing: pass them, or a map-style "
                          f"torch Dataset of (image, label) items, not {type(ds).__name__}")
    n = len(ds)
    if n < 1:
        raise ConfigError(f"dataset {name!r}: the Dataset is empty")
    xs, ys = [], []
    for i in range(n):
        item = ds[i]
        if not (isinstance(item, Sequence) and len(item) == 2):
            raise ConfigError(f"dataset {name!r}: item {i} is not an (image, label) pair")
        img, label = item
        a = _as_array(img)
        if hasattr(img, "getbands"):  # a PIL image: (H, W) or (H, W, C) -> (C, H, W)
            a = a[None] if a.ndim == 2 else a.transpose(2, 0, 1)
        if a.ndim != 3 or (xs and a.shape != xs[0].shape):
            want = "(C, H, W)" if not xs else f"{xs[0].shape} like item 0"
            raise ConfigError(f"dataset {name!r}: item {i}'s image has shape {a.shape}, "
                              f"expected {want}")
        xs.append(a)
        ys.append(_as_array(label).reshape(-1))
    if any(len(y) != 1 for y in ys):
        raise ConfigError(f"dataset {name!r}: each label must be one integer")
    return _images(name, np.stack(xs)), _labels(name, np.concatenate(ys))


def _check(name: str, x: np.ndarray, y: np.ndarray, num_classes: int | None) -> int:
    """The class count after checking labels against the images; ConfigError otherwise."""
    if len(y) != len(x):
        raise ConfigError(f"dataset {name!r}: {len(x)} images but {len(y)} labels")
    if int(y.min()) < 0:
        raise ConfigError(f"dataset {name!r}: labels must be >= 0, found {int(y.min())}")
    top = int(y.max())
    if num_classes is None:
        k = top + 1
    elif isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)):
        raise ConfigError(f"dataset {name!r}: num_classes must be an integer, "
                          f"got {num_classes!r:.40}")
    else:
        k = int(num_classes)
        if top >= k:
            raise ConfigError(f"dataset {name!r}: label {top} is out of range for "
                              f"num_classes={k} (labels must be in [0, {k}))")
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) < 2:
        raise ConfigError(f"dataset {name!r}: labels hold {len(classes)} class; need >= 2")
    if counts.min() < 2:
        c = int(classes[np.argmin(counts)])
        raise ConfigError(f"dataset {name!r}: class {c} has {int(counts.min())} sample; the "
                          "stratified train/validation split needs >= 2 per class")
    return k
