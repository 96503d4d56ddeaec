"""Atomic search checkpoints: one safetensors file whose header carries the JSON state.

Tensors (policy, optimiser moments, torch generator state) are stored as safetensors; every
other piece of state (iteration, baseline, numpy generator state, optimiser hyper-parameters)
is JSON in the file's metadata. One file means one ``os.replace``: a kill at any moment leaves
either the previous checkpoint or the new one, never a mix. ``checkpoint.json`` beside it is a
human-readable copy of the metadata; loading never reads it. Nothing is ever unpickled.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from fnas.errors import StoreError

__all__ = ["save_checkpoint", "load_checkpoint", "optimizer_state", "load_optimizer_state",
           "CHECKPOINT_NAME"]

CHECKPOINT_NAME = "checkpoint.safetensors"


def _fsync_write(path: Path, write) -> None:
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def save_checkpoint(run_dir: Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """Write ``run_dir/checkpoint.safetensors`` atomically (temp file, fsync, rename)."""
    run_dir = Path(run_dir)
    text = json.dumps(meta, sort_keys=True)
    flat = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    _fsync_write(run_dir / CHECKPOINT_NAME, lambda p: save_file(flat, p, metadata={"fnas": text}))
    _fsync_write(run_dir / "checkpoint.json",
                 lambda p: p.write_text(json.dumps(meta, indent=2, sort_keys=True)))
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
    try:
        tensors = load_file(path)
        from safetensors import safe_open

        with safe_open(path, framework="pt") as f:
            meta = json.loads((f.metadata() or {})["fnas"])
    except (SafetensorError, OSError, KeyError, ValueError) as e:
        raise StoreError(f"checkpoint {path} is corrupted ({type(e).__name__}); "
                         "remove it to restart the run from its recorded evaluations") from None
    return tensors, meta


def optimizer_state(opt: torch.optim.Optimizer, prefix: str) -> tuple[dict, dict]:
    """Split an optimiser's state dict into tensors and JSON-able metadata."""
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for idx, st in sd["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"{prefix}.{idx}.{k}"] = v
            else:
                scalars[f"{idx}.{k}"] = v
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def load_optimizer_state(opt: torch.optim.Optimizer, prefix: str,
                         tensors: dict[str, torch.Tensor], meta: dict) -> None:
    """Inverse of :func:`optimizer_state`."""
    state: dict[int, dict] = {}
    for name, v in tensors.items():
        if name.startswith(prefix + "."):
            idx, k = name[len(prefix) + 1:].split(".", 1)
            state.setdefault(int(idx), {})[k] = v
    for name, v in meta["scalars"].items():
        idx, k = name.split(".", 1)
        state.setdefault(int(idx), {})[k] = v
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
