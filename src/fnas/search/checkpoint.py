"""Atomic search checkpoints: one safetensors file whose header carries the JSON state.

Tensors (policy, optimiser moments, torch generator state) are stored as safetensors; every
other piece of state (iteration, baseline, numpy generator state, optimiser hyper-parameters)
is JSON in the file's metadata. One file means one ``os.replace``: a kill at any moment leaves
either the previous checkpoint or the new one, never a mix. ``checkpoint.json`` beside it is a
human-readable copy of the metadata; loading never reads it. Nothing is ever unpickled.

**Checksum.** The file's header also carries a sha256 over the JSON state and every tensor's
name, dtype, shape and bytes (:func:`checkpoint_digest`), copied into ``checkpoint.json`` for
people; loading recomputes it and refuses a mismatch (flipped bytes the safetensors format
cannot notice) with one :class:`StoreError` line, before anything is restored or recorded.
The checksum lives in the same file as what it covers, so one ``os.replace`` still switches
both at once.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from fnas.agent.optim_state import load_optimizer_state, optimizer_state
from fnas.errors import StoreError

__all__ = ["save_checkpoint", "load_checkpoint", "optimizer_state", "load_optimizer_state",
           "CHECKPOINT_NAME", "checkpoint_digest"]

CHECKPOINT_NAME = "checkpoint.safetensors"


def _fsync_write(path: Path, write) -> None:
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def checkpoint_digest(text: str, tensors: dict[str, torch.Tensor]) -> str:
    """sha256 over a checkpoint's JSON state and its tensors (names, dtypes, shapes, bytes)."""
    h = hashlib.sha256(text.encode())
    for name in sorted(tensors):
        t = tensors[name].detach().to("cpu")
        h.update(f"|{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        # via a fresh contiguous copy: a 1-element tensor may carry a 0 stride
        flat = torch.empty(t.numel(), dtype=t.dtype).copy_(t.reshape(-1))
        h.update(flat.view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def save_checkpoint(run_dir: Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """Write ``run_dir/checkpoint.safetensors`` atomically (temp file, fsync, rename).

    Raises:
        StoreError: the file cannot be written (a full disk, say); the previous checkpoint is
            left as it was.
    """
    run_dir = Path(run_dir)
    text = json.dumps(meta, sort_keys=True)
    flat = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    digest = checkpoint_digest(text, flat)
    try:
        _fsync_write(run_dir / CHECKPOINT_NAME, lambda p: save_file(
            flat, p, metadata={"fnas": text, "sha256": digest}))
        _fsync_write(run_dir / "checkpoint.json", lambda p: p.write_text(
            json.dumps({**meta, "sha256": digest}, indent=2, sort_keys=True)))
    except OSError as e:
        raise StoreError(f"cannot write checkpoint in {run_dir}: {e.strerror or e}") from None
    except SafetensorError as e:
        raise StoreError(f"cannot write checkpoint in {run_dir}: {e}") from None
    try:  # make the rename itself durable
        fd = os.open(run_dir, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass


def load_checkpoint(run_dir: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
    """The last checkpoint of a run, or ``None`` if it never completed an update.

    Raises:
        StoreError: the file exists but is corrupted.
    """
    path = Path(run_dir) / CHECKPOINT_NAME
    if not path.exists():
        return None
    hint = "remove it to restart the run from its recorded evaluations"
    try:
        tensors = load_file(path)
        from safetensors import safe_open

        with safe_open(path, framework="pt") as f:
            header = f.metadata() or {}
        text = header["fnas"]
        meta = json.loads(text)
    except (SafetensorError, OSError, KeyError, ValueError, RuntimeError, RecursionError,
            MemoryError) as e:
        raise StoreError(f"checkpoint {path} is corrupted ({type(e).__name__}); {hint}"
                         ) from None
    want = header.get("sha256")
    if want is not None and checkpoint_digest(text, tensors) != want:
        raise StoreError(f"checkpoint {path} is corrupted: its contents do not match its "
                         f"sha256; {hint}")
    if not isinstance(meta, dict):
        raise StoreError(f"checkpoint {path} is corrupted (its state is not a JSON object); "
                         f"{hint}")
    return tensors, meta
