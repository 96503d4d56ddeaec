"""A stable fingerprint of a Python callable, for the result cache (:class:`ObjectiveEvaluator`).

Two closures of one factory, two ``functools.partial`` of one function, two instances of one
callable class or two lambdas of one module share a qualified name, so a name alone would let
one serve its cached results to the other. :func:`fingerprint` hashes what tells them apart:
the code (byte code, constants, names; nested code too), default arguments, the values a
closure holds, a partial's arguments, a bound method's or callable instance's attributes.
It depends on no memory address, so a new process computes the same value, and it changes
when the function's code changes.

Values are hashed by their content when they are numbers, text, bytes, ``None``, containers of
such values, numpy arrays, torch tensors, other callables, or instances of classes written in
Python (by their attributes, so a torch module by its weights). Anything held in a C object
(an open file, a lock, a database connection) cannot be told apart by content:
:class:`Unhashable` is raised, naming it, and the caller asks for an explicit ``version=``.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import re
import types
import weakref
from typing import Any

import numpy as np

__all__ = ["Unhashable", "fingerprint", "qualified_name", "HASHED_AS"]

_MAX_DEPTH = 24
_HEAPTYPE = 1 << 9  # Py_TPFLAGS_HEAPTYPE: a class written in Python (not a C type)


class Unhashable(TypeError):
    """A value whose content fnas cannot hash stably (the message names where it is)."""


def qualified_name(obj: Any) -> str:
    """``module.qualname`` of a function or class (of an instance: of its class; of a
    ``functools.partial``: ``partial(`` its function's name ``)``)."""
    if isinstance(obj, functools.partial):
        return f"partial({qualified_name(obj.func)})"
    target = obj if isinstance(obj, (type, types.FunctionType, types.BuiltinFunctionType,
                                     types.MethodType)) else type(obj)
    return f"{getattr(target, '__module__', '?')}.{getattr(target, '__qualname__', '?')}"


HASHED_AS = {
    "fnas.strategies.base": "fnas.search.strategy",
    "fnas.strategies.random_search": "fnas.search.random_search",
    "fnas.strategies.rea": "fnas.search.rea",
    "fnas.strategies.ppo": "fnas.search.ppo",
    "fnas.strategies.fnas.screening": "fnas.search.screening",
    "fnas.strategies.fnas.candidates": "fnas.search.screen_candidates",
    "fnas.strategies.fnas.screen_config": "fnas.search.screen_config",
    "fnas.strategies.fnas.veto": "fnas.search.fnas_strategy",
    "fnas.strategies.fnas.config": "fnas.search.fnas_config",
    "fnas.strategies.fnas.state": "fnas.search.fnas_state",
    "fnas.execution.evaluators": "fnas.search.evaluators",
    "fnas.execution.objective": "fnas.search.objective",
    "fnas.execution.identity": "fnas.search.identity",
    "fnas.execution.executors": "fnas.search.executors",
    "fnas.execution.jobs": "fnas.search.jobs",
    "fnas.execution.workers": "fnas.search.workers",
    "fnas.execution.worker_main": "fnas.search.worker_main",
    "fnas.execution.ray_net": "fnas.search.ray_net",
    "fnas.execution.ray_guard": "fnas.search.ray_guard",
    "fnas._config_build": "fnas.search.config_build",
    "fnas.benchmark.harness": "fnas.search.bench",
    "fnas.benchmark.summary": "fnas.search.bench_summary",
    "fnas.benchmark.truth": "fnas.search.bench_truth",
    "fnas.benchmark.plot": "fnas.report.bench_plot",
    "fnas.nn.export": "fnas.report.export",
    "fnas.strategies.registry": "fnas.search.config",
    "fnas.benchmark.config": "fnas.search.bench",
    "fnas._limits": "fnas.tasks.trainer",
}
"""fnas modules that moved (issue 33), hashed under their old names: an objective that holds
an fnas object (an evaluator, a config) keeps its fingerprint, and so its cached results. The
last three hold what was split out of the old module named."""
_MOVED = re.compile(r"(?<![\w.])(" + "|".join(re.escape(k) for k in sorted(HASHED_AS, key=len,
                                                                          reverse=True))
                    + r")(?![\w])")


def _hashed(name: str) -> str:
    """``name`` (a module or ``module.qualname``) as fingerprints hash it: see HASHED_AS."""
    return _MOVED.sub(lambda m: HASHED_AS[m.group(1)], name) if "fnas." in name else name


_FIRST: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


def fingerprint(obj: Any) -> str:
    """A 16-hex-digit hash of ``obj``'s behaviour-determining content (see the module).

    The first value computed for an object is kept for the rest of the process: an objective
    whose closure or attributes change as it runs (a call counter, a cache) keeps its
    fingerprint when the same object is passed again (resuming in the same process), and a
    new process computes it from the same starting state.

    Raises:
        Unhashable: ``obj`` holds a value that cannot be hashed by content.
    """
    try:
        return _FIRST[obj]
    except (KeyError, TypeError):  # not seen, or not weakly referenceable (or unhashable)
        pass
    h = hashlib.sha256()
    _feed(h, obj, "objective", 0, set())
    fp = h.hexdigest()[:16]
    try:
        _FIRST[obj] = fp
    except TypeError:
        pass
    return fp


def torch_uint8() -> Any:
    import torch

    return torch.uint8


def _put(h: Any, tag: str, data: bytes = b"") -> None:
    h.update(tag.encode() + b":" + str(len(data)).encode() + b":" + data + b";")


def _feed(h: Any, v: Any, where: str, depth: int, seen: set[int]) -> None:
    if depth > _MAX_DEPTH:
        raise Unhashable(f"{where} nests deeper than {_MAX_DEPTH} levels")
    if v is None or isinstance(v, (bool, int, float, complex, str, bytes, np.generic)):
        _put(h, type(v).__name__, repr(v).encode() if not isinstance(v, bytes) else v)
        return
    if type(v).__module__.startswith("torch") and type(v).__name__ in ("Tensor", "Parameter"):
        try:
            t = v.detach().cpu().contiguous()
            raw = t.view(-1).view(torch_uint8()).numpy().tobytes() if t.numel() else b""
        except (RuntimeError, TypeError) as e:  # sparse, or a dtype without a byte view
            raise Unhashable(f"{where} is a torch tensor fnas cannot read ({e})") from None
        _put(h, "tensor", f"{t.dtype}{tuple(t.shape)}".encode() + raw)
        return
    if isinstance(v, np.ndarray):
        if v.dtype == object:
            raise Unhashable(f"{where} is a numpy array of Python objects")
        _put(h, "ndarray", f"{v.dtype.str}{v.shape}".encode() + np.ascontiguousarray(v).tobytes())
        return
    if isinstance(v, (list, tuple)):
        _put(h, type(v).__name__, str(len(v)).encode())
        for i, x in enumerate(v):
            _feed(h, x, f"{where}[{i}]", depth + 1, seen)
        return
    if isinstance(v, (set, frozenset)):
        parts = []
        for x in v:
            sub = hashlib.sha256()
            _feed(sub, x, f"{where} (an element)", depth + 1, seen)
            parts.append(sub.digest())
        _put(h, type(v).__name__, b"".join(sorted(parts)))
        return
    if isinstance(v, dict):
        _put(h, "dict", str(len(v)).encode())
        for k in sorted(v, key=repr):
            _feed(h, k, f"{where} (a key)", depth + 1, seen)
            _feed(h, v[k], f"{where}[{k!r:.30}]", depth + 1, seen)
        return
    if isinstance(v, types.CodeType):
        _put(h, "code", v.co_code + v.co_name.encode())
        _feed(h, v.co_consts, f"{where} (constants)", depth + 1, seen)
        _feed(h, v.co_names, f"{where} (names)", depth + 1, seen)
        return
    if id(v) in seen:  # a recursive function or a cycle: its name is enough the second time
        _put(h, "again", _hashed(qualified_name(v)).encode())
        return
    seen = seen | {id(v)}
    if isinstance(v, functools.partial):
        _put(h, "partial")
        _feed(h, v.func, f"{where} (partial's function)", depth + 1, seen)
        _feed(h, v.args, f"{where} (partial's arguments)", depth + 1, seen)
        _feed(h, v.keywords, f"{where} (partial's keywords)", depth + 1, seen)
        return
    if isinstance(v, types.MethodType):
        _put(h, "method", _hashed(qualified_name(v)).encode())
        _feed(h, v.__func__, f"{where}", depth + 1, seen)
        _feed(h, v.__self__, f"{where} (its instance)", depth + 1, seen)
        return
    if isinstance(v, types.FunctionType):
        _put(h, "function", _hashed(qualified_name(v)).encode())
        _feed(h, v.__code__, where, depth + 1, seen)
        _feed(h, v.__defaults__, f"{where} (defaults)", depth + 1, seen)
        _feed(h, v.__kwdefaults__, f"{where} (keyword defaults)", depth + 1, seen)
        for name, cell in zip(v.__code__.co_freevars, v.__closure__ or (), strict=False):
            try:
                content = cell.cell_contents
            except ValueError:  # an empty cell (a name assigned later)
                content = None
            _feed(h, content, f"{where}'s closure variable {name!r}", depth + 1, seen)
        return
    if isinstance(v, (types.BuiltinFunctionType, type, types.ModuleType)):
        _put(h, type(v).__name__, _hashed(getattr(v, "__module__", "") or "").encode()
             + b"." + _hashed(getattr(v, "__qualname__", getattr(v, "__name__", "?"))).encode())
        return
    state = getattr(v, "__dict__", None)
    if not type(v).__flags__ & _HEAPTYPE:  # a C type (a file, a lock, a connection...): its
        raise Unhashable(f"{where} is a {type(v).__name__}")  # state is not in __dict__
    if callable(v) and inspect.isclass(type(v)) and isinstance(state, dict):
        # a callable instance: its class (and its __call__'s code) and its attributes
        _put(h, "instance", _hashed(qualified_name(v)).encode())
        _feed(h, type(v).__call__, f"{where}.__call__", depth + 1, seen)
        _feed(h, state, f"{where}'s attributes", depth + 1, seen)
        return
    if isinstance(state, dict):
        _put(h, "object", _hashed(qualified_name(v)).encode())
        _feed(h, state, f"{where}'s attributes", depth + 1, seen)
        return
    raise Unhashable(f"{where} is a {type(v).__name__}")
