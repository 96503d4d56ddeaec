"""An optimiser's state as safetensors-ready tensors plus JSON-able metadata (checkpoints
of the policy and the critic: nothing is pickled)."""

from __future__ import annotations

import torch

__all__ = ["optimizer_state", "load_optimizer_state"]


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
    # foreach is how the optimiser computes, not what: the same values bit for bit on the CPU
    # (checked for Adam and AdamW). A checkpoint written before fnas asked for it holds None;
    # the optimiser keeps its own choice, so an old run resumes on the fast path too.
    keep = [g.get("foreach", "absent") for g in opt.param_groups]
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    for g, foreach in zip(opt.param_groups, keep, strict=True):
        if foreach != "absent":  # an optimiser without the setting gets none
            g["foreach"] = foreach
