"""``fnas.export``: an architecture (fresh or trained) as a JSON spec, ONNX or ``torch.export``
program, each file checked against PyTorch's outputs. The formats themselves are
:mod:`fnas.nn.export`; this is the one call that ``fnas export`` parses its flags for."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from fnas.api.target import resolve_target, shape_of_run
from fnas.errors import ConfigError

if TYPE_CHECKING:
    from fnas.nn.export import Match
    from fnas.nn.weights import ModelInfo
    from fnas.space.spec import ArchSpec

__all__ = ["EXPORT_FORMATS", "Exported", "export"]

EXPORT_FORMATS = {"onnx": ".onnx", "pt2": ".pt2", "spec": ".json"}
"""Export formats and their file extensions: ``onnx`` (``torch.onnx.export``, dynamo),
``pt2`` (``torch.export.export`` then ``torch.export.save``; ``torch.export.load`` reads it
without fnas) and ``spec`` (the JSON spec and the block string)."""

_ENGINES = {"onnx": "onnxruntime", "pt2": "torch.export.load"}


@dataclass(frozen=True)
class Exported:
    """What :func:`export` wrote, and how the written file's outputs compare with PyTorch's."""

    format: str
    """A key of :data:`EXPORT_FORMATS`."""
    paths: tuple[Path, ...]
    """Files written (``spec``: the JSON and the ``.txt`` block string)."""
    spec: ArchSpec
    """The architecture."""
    in_chans: int
    """Input channels of the exported graph."""
    num_classes: int
    """Classifier outputs of the exported graph."""
    input_size: int
    """Input H = W of the exported graph."""
    info: ModelInfo | None = None
    """The weights file's metadata; ``None`` for a fresh initialisation."""
    weights: Path | None = None
    """The weights file; ``None`` for a fresh initialisation (seeded with ``seed``)."""
    seed: int = 0
    """The seed of a fresh initialisation."""
    check: Match | None = None
    """The exported file's outputs against PyTorch's on seeded inputs; ``None`` for ``spec``,
    or for ``onnx`` when onnxruntime is not installed."""
    sizes_from: str | None = None
    """Where sizes not given came from for ``RUN:RANK`` (what the run recorded, or its dataset
    loaded when it records none), in words; ``None`` otherwise."""

    @property
    def engine(self) -> str | None:
        """What ran the exported file for the check."""
        return _ENGINES.get(self.format)


def export(arch: str | None = None, format: str = "spec", out: str | Path | None = None, *,
           weights: str | Path | None = None, input_size: int | None = None,
           num_classes: int | None = None, in_chans: int | None = None, seed: int = 0,
           store: str | Path = "fnas-store") -> Exported:
    """Export an architecture for use outside fnas.

    Args:
        arch: a block string, a name or ``RUN:RANK`` (optional with ``weights``, where it must
            name the weights' architecture).
        format: ``onnx``, ``pt2`` or ``spec`` (:data:`EXPORT_FORMATS`).
        out: the output file (default ``./fnas-<arch key>.<ext>``).
        weights: a model file from :func:`fnas.train`; without it the network is freshly
            initialised after ``torch.manual_seed(seed)`` (NOT trained).
        input_size, num_classes, in_chans: the input H = W, classifier outputs and input
            channels; default: the weights', the run's (``RUN:RANK``: what the run recorded,
            without reading its dataset, except one whose shape it records nowhere), or 224,
            1000 and 3.
            With ``weights``, ``num_classes`` and ``in_chans`` must agree with them.
        seed: the seed of a fresh initialisation.
        store: the store ``RUN:RANK`` is looked up in.

    Returns:
        :class:`Exported`. Its ``check`` tells whether the written file's outputs match
        PyTorch's; a file that does not match is written all the same (``check.ok`` false).

    Raises:
        ConfigError: a bad format, contradictory sizes, an ``arch`` that is not the weights',
            neither ``arch`` nor ``weights``, or ``out`` is a directory.
        InvalidArchitecture: a bad block string or name.
        ModelError: a missing or corrupted weights file, ``onnx`` without the ``export``
            extra, or an exporter failure.
        StoreError: ``RUN:RANK`` names no store or run.
    """
    from fnas.nn import export as ex
    from fnas.space import resolve_arch

    if format not in EXPORT_FORMATS:
        raise ConfigError(f"unknown export format {format!r}: expected one of "
                          f"{', '.join(EXPORT_FORMATS)}")
    if format == "onnx":
        ex.require_onnx()  # before anything is loaded or built
    from fnas.tasks.trainer import MAX_IMAGE_SIZE, check_int

    for what, value, top in (("--input-size", input_size, MAX_IMAGE_SIZE),
                             ("--classes", num_classes, 1_000_000), ("--in-chans", in_chans, 4096)):
        if value is not None:  # refused before anything is built or written
            check_int(value, what, 1, top)
    info = model = sizes_from = None
    if weights is not None:
        from fnas.nn.weights import load

        weights = Path(weights)
        model = load(weights)
        info = model.info
        for flag, given, have in (("--classes", num_classes, info.num_classes),
                                  ("--in-chans", in_chans, info.in_chans)):
            if given is not None and given != have:
                raise ConfigError(f"{flag} {given} contradicts {weights} ({have}); drop it")
        spec = model.spec
        if arch is not None:
            want = resolve_arch(resolve_target(arch, store).arch, info.input_size)
            if want.key != spec.key:
                raise ConfigError(f"ARCH {arch!r} (key {want.key}) is not the architecture "
                                  f"of {weights} (key {spec.key}); drop ARCH")
        in_chans, num_classes = info.in_chans, info.num_classes
        input_size = input_size or info.input_size
    else:
        if arch is None:
            raise ConfigError("give ARCH (a block string, a name or RUN:RANK) or --weights FILE")
        target = resolve_target(arch, store)
        if target.run is not None and None in (in_chans, num_classes, input_size):
            shape = shape_of_run(target)  # what the run recorded: no dataset is read for it
            in_chans, num_classes = in_chans or shape.in_chans, num_classes or shape.num_classes
            input_size, sizes_from = input_size or shape.input_size, shape.source
        in_chans, num_classes, input_size = in_chans or 3, num_classes or 1000, input_size or 224
        spec = resolve_arch(target.arch, input_size)
        if format != "spec":
            import torch

            from fnas.nn.builder import build

            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                model = build(spec, num_classes=num_classes, input_size=input_size,
                              in_chans=in_chans)
    path = Path(out or f"fnas-{spec.key}{EXPORT_FORMATS[format]}")
    if path.is_dir():
        raise ConfigError(f"--out {path} is a directory; give a file name")
    done = Exported(format, (path,), spec, in_chans, num_classes, input_size, info, weights,
                    seed, sizes_from=sizes_from)
    if format == "spec":
        paths = ex.export_spec(spec, path, in_chans, num_classes, input_size,
                               info.to_dict() if info is not None else None)
        return replace(done, paths=paths)
    meta = ex.info_metadata(info, spec)
    if format == "onnx":
        ex.export_onnx(model, path, input_size, meta)
        check = ex.check_onnx(path, model, input_size)
    else:
        ex.export_pt2(model, path, input_size, meta)
        check = ex.check_pt2(path, model, input_size)
    return replace(done, check=check)
