"""Trained-model files: one safetensors file, the weights plus what it takes to rebuild them.

A model file holds the tensors of ``Net.state_dict()`` under their own names and a single
metadata key ``fnas``: the JSON of a :class:`ModelInfo` (architecture string, input channels,
classes, input size, task, epochs, accuracy, preprocessing, fnas version, format tag and a
sha256 over the tensors). One key, because safetensors writes several in hash order and the
same weights should give the same bytes.

Contract:

- **No pickle.** :func:`load` reads safetensors only; nothing in a model file is executed.
- **Strict.** The network is rebuilt from the architecture string alone and every tensor must
  match it (``load_state_dict(strict=True)``); the sha256 catches flipped bytes that the
  safetensors header cannot.
- **Atomic.** :func:`save_model` writes a temporary file and renames it.
- **Errors.** A missing, truncated, corrupted or foreign file raises :class:`ModelError` with
  one line naming the file.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fnas._io import atomic_write_bytes, regular_source
from fnas.errors import FnasError, ModelError
from fnas.nn.builder import Net, build_model, check_model_size
from fnas.space.spec import ArchSpec

__all__ = ["FORMAT", "ModelInfo", "save_model", "read_info", "load", "fnas_version"]

FORMAT = "fnas-model/1"
"""Format tag of a model file; a reader refuses any other."""


def fnas_version() -> str:
    """The installed fnas version (``unknown`` when running from a bare source tree)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("fnas")
    except PackageNotFoundError:
        return "unknown"


@dataclass(frozen=True)
class ModelInfo:
    """Everything a model file says about its weights (its ``fnas`` metadata, as JSON)."""

    arch: str
    """Canonical block string; with the three sizes below it rebuilds the network."""
    key: str
    """Canonical architecture key (``ArchSpec.key``), checked against ``arch`` on load."""
    in_chans: int
    """Input channels."""
    num_classes: int
    """Classifier outputs."""
    input_size: int
    """Input height = width the weights were trained (or exported) at."""
    dataset: str | None = None
    """Task the weights were trained on (``digits``, ``cifar10:PATH``...); None: untrained."""
    task: dict | None = None
    """The training's ``TaskConfig`` fields (schedule, split, subsample), to re-measure."""
    epochs: int | None = None
    """Training epochs."""
    accuracy: float | None = None
    """Top-1 accuracy on the task's held-out split right after training."""
    seed: int | None = None
    """Seed of the initialisation and the minibatch order."""
    mean: tuple[float, ...] | None = None
    """Per-channel mean of the [0, 1]-scaled training pixels: inputs are ``(x - mean) / std``."""
    std: tuple[float, ...] | None = None
    """Per-channel std that goes with ``mean``."""
    source: str | None = None
    """Where the architecture came from (``run NAME rank R``), if from a search."""
    fnas_version: str = ""
    """fnas version that wrote the file."""
    sha256: str = ""
    """sha256 over the tensors' names, dtypes, shapes and bytes (set by :func:`save_model`)."""
    format: str = FORMAT
    """Format tag, :data:`FORMAT`."""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("mean", "std"):
            d[k] = list(d[k]) if d[k] is not None else None
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "model file") -> ModelInfo:
        """Inverse of :meth:`to_dict`, type-checked.

        Raises:
            ModelError: a field is missing, unknown or of the wrong type.
        """
        if not isinstance(d, Mapping):
            raise ModelError(f"{where}: fnas metadata is not a JSON object")
        if d.get("format") != FORMAT:
            raise ModelError(f"{where}: format {d.get('format')!r} is not {FORMAT!r} "
                             "(written by another fnas version?)")
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(d) - set(known))
        if unknown:
            raise ModelError(f"{where}: unknown metadata field {unknown[0]!r}")
        types = {"arch": str, "key": str, "in_chans": int, "num_classes": int,
                 "input_size": int, "dataset": str, "task": dict, "epochs": int,
                 "accuracy": (int, float), "seed": int, "mean": list, "std": list,
                 "source": str, "fnas_version": str, "sha256": str, "format": str}
        for name in ("arch", "key", "in_chans", "num_classes", "input_size"):
            if name not in d:
                raise ModelError(f"{where}: metadata lacks {name!r}")
        for name, v in d.items():
            if v is None and known[name].default is None:
                continue
            if isinstance(v, bool) or not isinstance(v, types[name]):
                raise ModelError(f"{where}: metadata field {name!r} has a bad value {v!r:.60}")
        from fnas._limits import MAX_IMAGE_SIZE
        from fnas.nn.builder import MAX_CLASSES, MAX_IN_CHANS

        for name, hi in (("in_chans", MAX_IN_CHANS), ("num_classes", MAX_CLASSES),
                         ("input_size", MAX_IMAGE_SIZE)):
            if not 1 <= d[name] <= hi:
                raise ModelError(f"{where}: metadata field {name!r} is {d[name]}, outside "
                                 f"[1, {hi}]")
        for k in ("mean", "std"):
            if d.get(k) is not None and not all(
                    isinstance(x, (int, float)) and not isinstance(x, bool) for x in d[k]):
                raise ModelError(f"{where}: metadata field {k!r} must be a list of numbers")
        out = dict(d)
        for k in ("mean", "std"):
            if out.get(k) is not None:
                out[k] = tuple(float(x) for x in out[k])
        return cls(**out)


def _digest(tensors: Mapping[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().to("cpu").contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def save_model(path: str | Path, model: nn.Module | Mapping[str, torch.Tensor],
               info: ModelInfo) -> ModelInfo:
    """Write ``model``'s weights (a module or its state dict) and ``info`` to ``path``
    atomically; returns ``info`` with ``sha256`` and ``fnas_version`` filled in.

    Raises:
        ModelError: the file cannot be written.
    """
    from safetensors.torch import save

    sd = model.state_dict() if isinstance(model, nn.Module) else model
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in sd.items()}
    info = replace(info, sha256=_digest(tensors), fnas_version=info.fnas_version or fnas_version())
    # Bytes first, then a plain Python write: the file gets the user's umask (safetensors'
    # own writer creates it 0600).
    blob = save(tensors, metadata={"fnas": json.dumps(info.to_dict(), sort_keys=True)})
    path = Path(path)
    try:
        atomic_write_bytes(path, blob)
    except OSError as e:
        raise ModelError(f"cannot write model file {path}: {e.strerror or e}") from None
    return info


def _open(path: str | Path) -> tuple[Path, Any]:
    """(path, safe_open handle) or a one-line ModelError."""
    from safetensors import SafetensorError, safe_open

    p = regular_source(path, "model file")  # a FIFO would hang the read
    if not p.is_file():
        raise ModelError(f"no model file at {p}")
    try:
        return p, safe_open(p, framework="pt", device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        why = " ".join(str(e).split())[:120]
        raise ModelError(f"{p} is not a readable safetensors model file ({why})") from None


def read_info(path: str | Path) -> ModelInfo:
    """The :class:`ModelInfo` of a model file, without reading its tensors.

    Raises:
        ModelError: missing or unreadable file, or not an fnas model file.
        ConfigError: a FIFO, device or folder (refused unread: it could hang).
    """
    p, f = _open(path)
    meta = f.metadata() or {}
    if "fnas" not in meta:
        raise ModelError(f"{p} is a safetensors file but not an fnas model file "
                         "(no 'fnas' metadata; write one with 'fnas train')")
    try:
        d = json.loads(meta["fnas"])
    except ValueError:
        raise ModelError(f"{p}: its fnas metadata is not valid JSON") from None
    return ModelInfo.from_dict(d, where=str(p))


def load(path: str | Path, device: str | torch.device = "cpu") -> Net:
    """A trained network from a model file, in eval mode, on ``device`` (``fnas.load``).

    The network is rebuilt from the file's architecture string and its weights are loaded
    strictly; ``model.info`` is the file's :class:`ModelInfo`. The caller's RNG is untouched.

    Raises:
        ModelError: the file is missing, truncated, corrupted, not an fnas model file, or its
            tensors do not match its architecture.
        ConfigError: a FIFO, device or folder (refused unread: it could hang).
    """
    from safetensors import SafetensorError

    info = read_info(path)
    p, f = _open(path)
    try:  # the architecture first: within fnas's size limits before anything is read or built
        spec = ArchSpec.parse(info.arch)
        check_model_size(spec, info.in_chans, info.num_classes, info.input_size)
    except FnasError as e:
        raise ModelError(f"{p}: bad architecture in its metadata: {e}") from None
    if spec.key != info.key:
        raise ModelError(f"{p}: architecture key {spec.key} differs from the recorded {info.key}")
    try:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError, MemoryError) as e:
        why = " ".join(str(e).split())[:120]
        raise ModelError(f"{p}: tensors unreadable ({type(e).__name__} {why})") from None
    if _digest(tensors) != info.sha256:
        raise ModelError(f"{p} is corrupted: its tensors do not match the recorded sha256")
    with torch.random.fork_rng(devices=[]):  # the fresh init is overwritten: spare the caller
        model = build_model(spec, info.in_chans, info.num_classes, info.input_size)
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as e:
        first = " ".join(str(e).split())[:200]
        raise ModelError(f"{p}: weights do not fit architecture {info.key}: {first}") from None
    model.info = info
    return model.to(device).eval()
