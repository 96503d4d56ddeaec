"""Generic factorized search spaces: named categorical decisions plus a decode function.

A controller (PPO's LSTM, evolution's mutation, random search) only ever sees a space as a
list of categorical decisions and a vector of choice indices. ``decode`` turns that vector into
an architecture; ``encode`` (optional) goes back. Define a new space in a few lines::

    from fnas.space import Decision, FactorizedSpace, ArchSpec

    def decode(c):  # c maps decision name -> chosen value
        blocks = [f"cn_r1_k3_s1_c{c['stem']}"]
        blocks += [f"ir_r{c['depth']}_k{c['kernel']}_s2_e6_c{32 * 2**i}" for i in range(3)]
        return ArchSpec.parse(" | ".join(blocks))

    space = FactorizedSpace(
        "tiny",
        [Decision("stem", (16, 32)), Decision("kernel", (3, 5)), Decision("depth", (1, 2, 3))],
        decode,
    )
    arch = space.decode(space.sample(numpy.random.default_rng(0)))

No torch here: spaces are handled by the controller, critic and store, which never build
modules.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import re
import types
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from fnas.errors import InvalidArchitecture

__all__ = ["Decision", "FactorizedSpace", "choice_key", "MAX_DECISIONS", "MAX_CHOICES",
           "MAX_CHOICE_KEY", "MAX_ARCH_KEY"]

MAX_DECISIONS = 512
"""Most decisions a space may have (MnasNet's has 42): the controller unrolls one step each."""
MAX_CHOICES = 4096
"""Most choices one decision may have: the controller's head has one logit each."""
MAX_CHOICE_KEY = 200
"""Longest :func:`choice_key` of one choice, in characters: the key enters the space's
signature and every stored architecture key (``decision=key,...``) that chooses it."""
MAX_ARCH_KEY = 8192
"""Longest architecture key a space may give (every decision's name and its longest choice
key, ``name=key`` joined by commas), in characters: one is stored with every evaluation."""

_ADDRESS = re.compile(r" at 0x[0-9A-Fa-f]+")


def choice_key(value: Any) -> str:
    """The stable text that identifies a choice in space signatures and architecture keys:
    its ``repr``, or for a function or class its qualified name (``fn:module.qualname``), so
    that no key holds a memory address and a new process computes the same one.

    Raises:
        InvalidArchitecture: a lambda (two share one name), or a value whose ``repr`` holds a
            memory address (use a name or a number and map it in ``decode``).
    """
    if isinstance(value, (types.FunctionType, types.BuiltinFunctionType, type,
                          types.MethodType, functools.partial)):
        func = value.func if isinstance(value, functools.partial) else value
        qual = getattr(func, "__qualname__", "")
        if "<lambda>" in qual or isinstance(value, functools.partial):
            raise InvalidArchitecture(
                f"choice {value!r:.60} has no stable name (a lambda or a partial): use a named "
                "function, or a name or number mapped to it in decode")
        return f"fn:{getattr(func, '__module__', '?')}.{qual}"
    try:
        text = _stable_repr(value)
    except RecursionError:
        raise InvalidArchitecture(f"a choice of type {type(value).__name__} is nested too deep "
                                  "to be keyed: use a name or a number") from None
    except Exception as e:  # noqa: BLE001 (a user's __repr__ that raises)
        raise InvalidArchitecture(f"a choice of type {type(value).__name__} has no usable "
                                  f"repr ({type(e).__name__}): use a name or a number") from None
    if _ADDRESS.search(text):
        raise InvalidArchitecture(
            f"choice {text:.60} is known only by its memory address: use a name or a number "
            "(mapped to the object in decode), or a function or class")
    return text


def _stable_repr(value: Any) -> str:
    """``repr(value)``, except that a set's members are in a fixed order (numbers by value,
    the rest by their text), inside lists, tuples and dicts too: the order Python prints a
    set of strings in changes from process to process (hash randomisation)."""
    kind = type(value)
    if kind in (set, frozenset) and value:
        parts = sorted((_stable_repr(v) for v in value), key=lambda t: (_number(t), t))
        inner = "{" + ", ".join(parts) + "}"
        return inner if kind is set else f"frozenset({inner})"
    if kind in (list, tuple) and any(type(v) in _NESTED for v in value):
        inner = ", ".join(_stable_repr(v) for v in value)
        return f"[{inner}]" if kind is list else f"({inner}{',' * (len(value) == 1)})"
    if kind is dict and any(type(v) in _NESTED or type(k) in _NESTED for k, v in value.items()):
        return "{" + ", ".join(f"{_stable_repr(k)}: {_stable_repr(v)}"
                               for k, v in value.items()) + "}"
    return repr(value)


_NESTED = (set, frozenset, list, tuple, dict)


def _number(text: str) -> tuple[int, float]:
    try:
        v = float(text)
    except ValueError:
        return 1, 0.0
    return (0, v) if v == v else (1, 0.0)  # NaN sorts with the text


@dataclass(frozen=True)
class Decision:
    """One categorical decision: a name and its ordered choices (numbers, text, other values
    with a stable ``repr``, or named functions and classes: :func:`choice_key`)."""

    name: str
    choices: tuple

    def __post_init__(self) -> None:
        if isinstance(self.choices, (str, bytes)) or not isinstance(self.choices, Iterable):
            raise InvalidArchitecture(f"decision {self.name!r}: choices must be a sequence, "
                                      f"got {type(self.choices).__name__}")
        object.__setattr__(self, "choices", tuple(itertools.islice(self.choices,
                                                                   MAX_CHOICES + 1)))
        if len(self.choices) < 1:
            raise InvalidArchitecture(f"decision {self.name!r} has no choices")
        if len(self.choices) > MAX_CHOICES:
            raise InvalidArchitecture(f"decision {self.name!r} has more than {MAX_CHOICES} "
                                      "choices")
        keys = list(map(choice_key, self.choices))
        if len(set(keys)) != len(self.choices):
            raise InvalidArchitecture(f"decision {self.name!r} repeats a choice")
        longest = max(keys, key=len)
        if len(longest) > MAX_CHOICE_KEY:
            raise InvalidArchitecture(
                f"decision {self.name!r}: choice {longest[:40]!r}... has a key of {len(longest)} "
                f"characters; at most {MAX_CHOICE_KEY} (use a name or a number, mapped to the "
                "value in decode)")
        object.__setattr__(self, "_key_length", len(longest))  # not a field: eq and hash skip it

    @property
    def keys(self) -> list[str]:
        """Each choice's :func:`choice_key`."""
        return [choice_key(c) for c in self.choices]

    @property
    def size(self) -> int:
        return len(self.choices)


class FactorizedSpace:
    """A search space as an ordered list of :class:`Decision` and a decode function.

    Args:
        name: short identifier, part of :attr:`signature`.
        decisions: the decisions in the order an autoregressive controller samples them.
        decode: maps ``{decision name: chosen value}`` to an architecture (an
            :class:`~fnas.space.ArchSpec`, or any hashable object with ``key`` and ``to_str()``).
        encode: optional inverse, architecture -> ``{decision name: value}``. Without it
            :meth:`encode` raises ``NotImplementedError``.
        meta: extra JSON-able facts that change what ``decode`` returns (input size, width
            multiplier...); they enter :attr:`signature`.
    """

    def __init__(
        self,
        name: str,
        decisions: Sequence[Decision],
        decode: Callable[[Mapping[str, Any]], Any],
        encode: Callable[[Any], Mapping[str, Any]] | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        self.name = name
        self.decisions = tuple(itertools.islice(decisions, MAX_DECISIONS + 1))
        if len(self.decisions) > MAX_DECISIONS:
            raise InvalidArchitecture(f"space {name!r} has more than {MAX_DECISIONS} decisions")
        names = [d.name for d in self.decisions]
        if len(set(names)) != len(names):
            raise InvalidArchitecture(f"space {name!r} has duplicate decision names")
        longest = sum(len(str(d.name)) + 2 + getattr(d, "_key_length", 0)
                      for d in self.decisions) - 1  # name=key, commas between
        if longest > MAX_ARCH_KEY:
            raise InvalidArchitecture(
                f"space {name!r}: an architecture's key (decision=choice for each decision) may "
                f"reach {longest} characters; at most {MAX_ARCH_KEY}: use shorter decision names "
                "or choices (names or numbers, mapped to the values in decode)")
        self._decode = decode
        self._encode = encode
        self.meta = dict(meta or {})

    # ---- shape of the space -----------------------------------------------------------------
    @property
    def sizes(self) -> tuple[int, ...]:
        """Number of choices of each decision, in order."""
        return tuple(d.size for d in self.decisions)

    @property
    def size(self) -> int:
        """Number of decision vectors (architectures may repeat if decode merges some)."""
        return int(np.prod(self.sizes, dtype=object))

    @property
    def signature(self) -> str:
        """Stable identifier of the space: name, decisions, choices and meta, hashed."""
        body = json.dumps(
            {"name": self.name, "decisions": [[d.name, d.keys] for d in self.decisions],
             "meta": self.meta},
            sort_keys=True,
        )
        return f"{self.name}-{hashlib.sha256(body.encode()).hexdigest()[:12]}"

    @property
    def decision_signature(self) -> str:
        """Identifier of the decisions alone (names and choices, not ``meta``): spaces that
        share it share decision vectors, so knowledge moves between them (digits -> mnist)."""
        body = json.dumps([[d.name, d.keys] for d in self.decisions])
        return hashlib.sha256(body.encode()).hexdigest()[:12]

    def __len__(self) -> int:
        return len(self.decisions)

    def __repr__(self) -> str:
        return f"FactorizedSpace({self.name!r}, {len(self)} decisions, {self.size:.3g} points)"

    # ---- conversions ------------------------------------------------------------------------
    def check(self, indices: Sequence[int]) -> tuple[int, ...]:
        """Validate a decision vector.

        Raises:
            InvalidArchitecture: wrong length or an index out of range (names the decision).
        """
        idx = tuple(int(i) for i in indices)
        if len(idx) != len(self.decisions):
            raise InvalidArchitecture(
                f"space {self.name!r} has {len(self.decisions)} decisions, got {len(idx)} indices"
            )
        for d, i in zip(self.decisions, idx, strict=True):
            if not 0 <= i < d.size:
                raise InvalidArchitecture(
                    f"decision {d.name!r}: index {i} out of range 0..{d.size - 1}"
                )
        return idx

    def values(self, indices: Sequence[int]) -> dict[str, Any]:
        """Decision vector -> ``{name: value}``."""
        idx = self.check(indices)
        return {d.name: d.choices[i] for d, i in zip(self.decisions, idx, strict=True)}

    def indices(self, values: Mapping[str, Any]) -> tuple[int, ...]:
        """``{name: value}`` -> decision vector.

        Raises:
            InvalidArchitecture: a decision is missing or its value is not a choice.
        """
        out = []
        for d in self.decisions:
            if d.name not in values:
                raise InvalidArchitecture(f"decision {d.name!r} missing")
            v = values[d.name]
            try:
                out.append(d.choices.index(v))
            except ValueError:
                raise InvalidArchitecture(
                    f"decision {d.name!r}: {v!r} is not one of {d.choices}"
                ) from None
        return tuple(out)

    def decode(self, indices: Sequence[int]) -> Any:
        """Decision vector -> architecture."""
        return self._decode(self.values(indices))

    def encode(self, arch: Any) -> tuple[int, ...]:
        """Architecture -> a decision vector that decodes to it.

        Raises:
            NotImplementedError: the space was defined without ``encode``.
            InvalidArchitecture: the architecture is not a member of the space.
        """
        if self._encode is None:
            raise NotImplementedError(f"space {self.name!r} defines no encode function")
        return self.indices(self._encode(arch))

    def sample(self, rng: np.random.Generator) -> tuple[int, ...]:
        """A uniform random decision vector drawn from ``rng`` (the caller owns the generator)."""
        return tuple(int(rng.integers(n)) for n in self.sizes)
