"""Export a network for use outside fnas: a JSON spec, ONNX, or a ``torch.export`` program
(the formats; :func:`fnas.export` is the call, which ``fnas export`` makes). It needs the
networks and the space only, so it sits beside them (the old path ``fnas.report.export`` is
this module too).

- **spec**: the block string and a JSON description (every block's fields, shapes, analytic
  params and multiply-adds). :func:`spec_from_dict` reads it back to the same architecture.
- **onnx**: ``torch.onnx.export(dynamo=True)``, opset 20, input ``input`` of shape
  ``[batch, C, H, W]`` with a dynamic batch and a fixed H = W, output ``logits``. Needs the
  ``export`` extra (``onnx`` and ``onnxscript``). :func:`check_onnx` compares onnxruntime's
  outputs with PyTorch's when ``onnxruntime`` is installed.
- **pt2**: ``torch.export.export`` with a dynamic batch at the given H = W, saved by
  ``torch.export.save`` with the fnas metadata as extra files; ``torch.export.load`` reads it
  with no fnas installed (``.module()`` is the runnable network).

NOTE: the TorchScript-based ONNX exporter (``dynamo=False``) is lighter (no onnxscript) but
cannot export a pooling shortcut whose output size is not a factor of its input size (the
``poolskip`` op on odd feature maps), and it needs ``onnx`` all the same; the dynamo exporter
handles every op of the space. TorchScript itself (``torch.jit.trace``) is deprecated upstream
since torch 2.13: ``pt2`` replaces it. Both graphs fix H = W (a pooling shortcut's branch is
decided at export time).
"""

from __future__ import annotations

import io
import json
import logging
import os
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fnas._io import read_source, regular_source, regular_target
from fnas.errors import InvalidArchitecture, ModelError
from fnas.space.cost import arch_cost
from fnas.space.spec import ArchSpec, BlockSpec

__all__ = ["SPEC_FORMAT", "ONNX_OPSET", "spec_dict", "spec_from_dict", "export_spec",
           "export_onnx", "export_pt2", "check_onnx", "check_pt2",
           "compare_outputs", "Match",
           "example_input", "info_metadata", "require_onnx"]

SPEC_FORMAT = "fnas-spec/1"
ONNX_OPSET = 20
_BLOCK_FIELDS = tuple(f.name for f in fields(BlockSpec))


def _model_shape(model: nn.Module, input_size: int | None) -> tuple[int, int]:
    size = input_size or getattr(model, "input_size", None)
    if not size:
        raise ModelError("the model records no input size: give one (--input-size)")
    return int(getattr(model, "in_chans", 3)), int(size)


def example_input(in_chans: int, input_size: int, batch: int = 3, seed: int = 0) -> torch.Tensor:
    """A seeded standard-normal input batch (the checks' reference input)."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(batch, in_chans, input_size, input_size, generator=gen)


def spec_dict(spec: ArchSpec, in_chans: int, num_classes: int, input_size: int,
              weights: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The JSON spec of ``spec`` at one input shape; ``weights`` is a model file's info."""
    cost = arch_cost(spec, input_size, in_chans, num_classes)
    blocks = []
    for b, c in zip(spec.blocks, cost.blocks, strict=True):
        blocks.append({"index": c.index, "block": c.block,
                       "config": {k: getattr(b, k) for k in _BLOCK_FIELDS},
                       "in_chs": c.in_chs, "out_chs": c.out_chs, "in_size": c.in_size,
                       "out_size": c.out_size, "params": c.params, "macs": c.macs})
    return {"format": SPEC_FORMAT, "arch": spec.to_str(), "key": spec.key,
            "in_chans": in_chans, "num_classes": num_classes, "input_size": input_size,
            "params": cost.params, "macs": cost.macs, "blocks": blocks,
            "classifier": {"in_features": cost.blocks[-1].out_chs, "out_features": num_classes,
                           "params": cost.classifier_params, "macs": cost.classifier_macs},
            "weights": dict(weights) if weights is not None else None}


def spec_from_dict(d: Mapping[str, Any]) -> ArchSpec:
    """The architecture of a JSON spec, rebuilt from its blocks' fields (not from ``arch``).

    Raises:
        InvalidArchitecture: not an fnas spec, or a block's fields are invalid.
    """
    if not isinstance(d, Mapping) or d.get("format") != SPEC_FORMAT:
        raise InvalidArchitecture(f"not an fnas spec (format {SPEC_FORMAT!r} expected)")
    try:
        return ArchSpec(tuple(BlockSpec(**b["config"]) for b in d["blocks"]))
    except (KeyError, TypeError) as e:
        raise InvalidArchitecture(f"bad block in the spec: {e}") from None


def _atomic(path: Path, write) -> Path:
    try:
        path = regular_target(path)  # through a symlink; never over a device or FIFO
    except OSError as e:
        raise ModelError(f"cannot write {path}: {e.strerror or e}") from None
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write(tmp)
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise ModelError(f"cannot write {path}: {e.strerror or e}") from None
    return path


def export_spec(spec: ArchSpec, path: str | Path, in_chans: int, num_classes: int,
                input_size: int, weights: Mapping[str, Any] | None = None) -> tuple[Path, Path]:
    """Write the JSON spec to ``path`` and the block string beside it (``.txt``)."""
    path = Path(path)
    d = spec_dict(spec, in_chans, num_classes, input_size, weights)
    js = _atomic(path, lambda p: p.write_text(json.dumps(d, indent=2) + "\n"))
    txt = _atomic(path.with_suffix(".txt"), lambda p: p.write_text(spec.to_str() + "\n"))
    return js, txt


def require_onnx() -> None:
    """Raises :class:`ModelError` (one line) unless the ONNX exporter's packages import."""
    try:
        import onnx  # noqa: F401 - the dynamo exporter needs both
        import onnxscript  # noqa: F401
    except ImportError as e:
        raise ModelError(f"ONNX export needs {e.name}: pip install onnx onnxscript (fnas's "
                         "export extra)") from None
    import inspect

    if "dynamo" not in inspect.signature(torch.onnx.export).parameters:
        raise ModelError(f"ONNX export needs torch >= 2.5 (the dynamo exporter); this is "
                         f"torch {torch.__version__}")


def export_onnx(model: nn.Module, path: str | Path, input_size: int | None = None,
                metadata: Mapping[str, str] | None = None) -> Path:
    """Export ``model`` (eval mode) to ONNX with a dynamic batch; ``metadata`` goes into the
    model's ``metadata_props``.

    Raises:
        ModelError: ``onnx``/``onnxscript`` is missing, or the exporter fails.
    """
    require_onnx()
    in_chans, size = _model_shape(model, input_size)
    x = example_input(in_chans, size, batch=2)  # not 1: a size-1 dim would be specialised
    was_training = model.training
    model.eval()
    quiet = logging.getLogger("torch.onnx")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # per-op registration chatter (torchvision ops absent)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            prog = torch.onnx.export(
                model, (x,), dynamo=True, verbose=False, opset_version=ONNX_OPSET,
                input_names=["input"], output_names=["logits"],
                dynamic_shapes=({0: torch.export.Dim("batch")},))
    except Exception as e:  # noqa: BLE001 - any exporter failure is one line for the user
        why = " ".join(str(e).split())[:200]
        raise ModelError(f"ONNX export failed: {type(e).__name__}: {why}") from None
    finally:
        quiet.setLevel(level)
        model.train(was_training)
    for k, v in (metadata or {}).items():
        prog.model.metadata_props[k] = v
    return _atomic(Path(path), lambda p: prog.save(p, external_data=False))


def export_pt2(model: nn.Module, path: str | Path, input_size: int | None = None,
               metadata: Mapping[str, str] | None = None) -> Path:
    """Export ``model`` (eval mode) with ``torch.export`` (a dynamic batch, H = W fixed at
    ``input_size``) and save it; ``metadata`` becomes the archive's extra files
    (``torch.export.load(p, extra_files=...)`` reads them).

    Raises:
        ModelError: the exporter fails.
    """
    in_chans, size = _model_shape(model, input_size)
    x = example_input(in_chans, size, batch=2)  # not 1: a size-1 dim would be specialised
    was_training = model.training
    model.eval()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            prog = torch.export.export(model, (x,),
                                       dynamic_shapes=({0: torch.export.Dim("batch")},))
    except Exception as e:  # noqa: BLE001 - any exporter failure is one line for the user
        why = " ".join(str(e).split())[:200]
        raise ModelError(f"torch.export failed: {type(e).__name__}: {why}") from None
    finally:
        model.train(was_training)
    buf = io.BytesIO()  # a buffer: torch warns about an archive named other than *.pt2
    torch.export.save(prog, buf, extra_files=dict(metadata or {}))
    return _atomic(Path(path), lambda p: p.write_bytes(buf.getvalue()))


@torch.no_grad()
def _reference(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    was_training = model.training
    model.eval()
    try:
        return model(x.to(next(model.parameters()).device)).cpu()
    finally:
        model.train(was_training)


RTOL, ATOL = 1e-3, 1e-4
"""Tolerances of an export check: float32 kernels of another engine (or another op order)
promise agreement relative to the outputs, not an absolute 1e-4 on logits of any size."""


@dataclass(frozen=True)
class Match:
    """How an exported model's outputs compare with PyTorch's (``torch.testing.assert_close``
    style: element-wise ``|got - want| <= atol * max(1, scale) + rtol * |want|``)."""

    max_abs: float
    """Largest absolute difference."""
    scale: float
    """Largest absolute reference output (the absolute tolerance scales with it)."""
    worst: float
    """Largest difference as a share of its allowance; <= 1 passes."""
    rtol: float = RTOL
    atol: float = ATOL

    @property
    def ok(self) -> bool:
        return self.worst <= 1.0


def compare_outputs(got: torch.Tensor, want: torch.Tensor, rtol: float = RTOL,
                    atol: float = ATOL) -> Match:
    """Compare two output tensors with a relative plus an absolute tolerance."""
    got, want = got.detach().double().cpu(), want.detach().double().cpu()
    diff = (got - want).abs()
    scale = float(want.abs().max()) if want.numel() else 0.0
    allowed = atol * max(1.0, scale) + rtol * want.abs()
    worst = float((diff / allowed).max()) if diff.numel() else 0.0
    if not torch.isfinite(diff).all():
        worst = float("inf")
    return Match(float(diff.max()) if diff.numel() else 0.0, scale, worst, rtol, atol)


def check_onnx(path: str | Path, model: nn.Module, input_size: int | None = None,
               batch: int = 3) -> Match | None:
    """onnxruntime's outputs compared with PyTorch's on a seeded batch (:func:`compare_outputs`);
    ``None`` when onnxruntime is not installed."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    in_chans, size = _model_shape(model, input_size)
    x = example_input(in_chans, size, batch)
    regular_source(path, "ONNX model")  # a FIFO is refused: onnxruntime would wait on it
    try:
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        (out,) = sess.run(["logits"], {"input": x.numpy()})
    except Exception as e:  # noqa: BLE001 - onnxruntime's own exception types
        why = " ".join(str(e).split())[:200]
        raise ModelError(f"onnxruntime cannot run {path}: {why}") from None
    return compare_outputs(torch.from_numpy(out), _reference(model, x))


def check_pt2(path: str | Path, model: nn.Module, input_size: int | None = None,
              batch: int = 3) -> Match:
    """The saved ``torch.export`` program's outputs compared with ``model``'s.

    Raises:
        ModelError: the file cannot be loaded or run.
    """
    in_chans, size = _model_shape(model, input_size)
    x = example_input(in_chans, size, batch)
    try:
        data = read_source(path, "exported program")  # a FIFO is refused: it would hang
    except OSError as e:
        raise ModelError(f"cannot read {path}: {e.strerror or e}") from None
    try:
        loaded = torch.export.load(io.BytesIO(data)).module()
        with torch.no_grad():
            out = loaded(x)
    except Exception as e:  # noqa: BLE001
        why = " ".join(str(e).split())[:200]
        raise ModelError(f"torch.export.load cannot run {path}: {why}") from None
    return compare_outputs(out, _reference(model, x))


def info_metadata(info: Any | None, spec: ArchSpec) -> dict[str, str]:
    """String metadata for an export: the architecture and, if trained, the model file's info."""
    meta = {"fnas.arch": spec.to_str(), "fnas.key": spec.key}
    if info is not None:
        d = info.to_dict() if hasattr(info, "to_dict") else asdict(info)
        meta["fnas.model"] = json.dumps(d, sort_keys=True)
    return meta
