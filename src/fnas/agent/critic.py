"""The uncertainty-aware critic: a deep ensemble over an architecture's categorical decisions.

Input: the one-hots of the T decisions, concatenated, plus a T-dim "decision present" mask. A
full architecture has every one-hot and mask bit set; a prefix a_<t keeps the one-hots and mask
bits of decisions < t and zeros after. Each of the K members is a small ReLU MLP -> 1 output,
with its own init seed and its own bootstrap resample of the data (online bootstrap: every point
gets an independent Poisson(1) count per member). The members' mean is the predicted reward
mu(a), their standard deviation the uncertainty sigma(a). Training is MSE on minibatches drawn
in proportion to a member's counts.

Each member also has a value net V(a_<t) = E[r | a_<t] (PPO's per-decision advantages:
docs/DESIGN.md, "The critic"), same input, trained on the same resample: with probability
``prefix_prob`` an example is shown as a uniformly random strict prefix of its architecture
with the same target (a Monte-Carlo value estimate), otherwise as the full architecture.
The reward nets see full architectures only (docs/DESIGN.md, "Departures": one network for
both jobs lost ranking quality as fits accumulated).

Fidelity (``fidelity=True``, a multi-fidelity search): each point also carries the fidelity
f in (0, 1] its target was measured at, as one more input column, log2(f) (0 at full
fidelity), on every row, prefixes included. Every prediction (:meth:`predict`,
:meth:`predict_members`, :meth:`prefix_values`) is made at full fidelity, f = 1.

Persistence: :meth:`EnsembleCritic.state` returns everything for an exact resume (weights,
optimiser moments, data, counts, both generators); keys start with ``critic.``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from fnas.agent.optim_state import load_optimizer_state, optimizer_state
from fnas.agent.threads import single_thread
from fnas.errors import ConfigError, StoreError

__all__ = ["CriticConfig", "EnsembleCritic"]


@dataclass(frozen=True)
class CriticConfig:
    """The ensemble critic's size and optimisation."""

    members: int = 5
    """K, the number of ensemble members (>= 2: one member has no spread)."""
    hidden: int = 64
    """Hidden units per layer of each member's MLP."""
    layers: int = 2
    """Hidden layers per member (ReLU)."""
    lr: float = 3e-3
    """AdamW learning rate of every member."""
    weight_decay: float = 1e-4
    """AdamW's decoupled weight decay."""
    steps: int = 100
    """Optimiser steps per :meth:`EnsembleCritic.fit` call and member (warm-started)."""
    batch: int = 64
    """Examples per minibatch and member, drawn with replacement by bootstrap count."""
    prefix_prob: float = 0.5
    """Share of the value nets' examples presented as a random strict prefix (the rest full)."""

    def __post_init__(self) -> None:
        checks = [(self.members >= 2, "members"), (self.hidden >= 1, "hidden"),
                  (self.layers >= 1, "layers"), (self.lr > 0, "lr"),
                  (self.weight_decay >= 0, "weight_decay"), (self.steps >= 1, "steps"),
                  (self.batch >= 1, "batch"), (0 <= self.prefix_prob <= 1, "prefix_prob")]
        for ok, name in checks:
            if not ok:
                raise ConfigError(f"critic {name}={getattr(self, name)!r} is out of range")


class EnsembleCritic:
    """K bootstrapped MLP pairs over one-hot decisions: mean and spread of the reward, values.

    The K reward nets and K value nets are stored stacked, ``(2K, in, out)`` per layer (reward
    nets first), and run as one batched matmul. One AdamW over the stacked tensors is exactly
    2K independent AdamWs: every quantity of Adam is elementwise and the loss is the sum of
    the nets' own losses.

    Not thread-safe. Targets must already be normalised by the caller (per experiment).
    """

    def __init__(self, sizes: Sequence[int], cfg: CriticConfig | None = None, seed: int = 0,
                 features: Callable[[np.ndarray], np.ndarray] | None = None,
                 n_features: int = 0, fidelity: bool = False):
        self.sizes = tuple(int(s) for s in sizes)
        if (features is None) != (n_features == 0) or n_features < 0:
            raise ConfigError("critic features: give both a feature function and its width")
        # decisions (n, T) -> (n, F) finite, fixed-scale features (fnas.space.features)
        self._featurize, self.n_features = features, int(n_features)
        self.fidelity = bool(fidelity)  # one more input: log2 of each point's fidelity
        if not self.sizes or min(self.sizes) < 1:
            raise ConfigError(f"critic sizes={list(self.sizes)!r}: need >= 1 decision, each >= 1")
        self.cfg = cfg or CriticConfig()
        self.seed = int(seed)
        t, k = len(self.sizes), 2 * self.cfg.members  # reward nets, then value nets
        self._offsets = np.concatenate([[0], np.cumsum(self.sizes)[:-1]])  # (T,)
        d_in = sum(self.sizes) + t + self.n_features + int(self.fidelity)
        # column j of the one-hot block belongs to decision _col_dec[j]
        self._col_dec = torch.repeat_interleave(torch.arange(t), torch.tensor(self.sizes))
        dims = [d_in] + [self.cfg.hidden] * self.cfg.layers + [1]
        self.weights: list[torch.Tensor] = []
        self.biases: list[torch.Tensor] = []
        for i, (fan_in, fan_out) in enumerate(zip(dims[:-1], dims[1:], strict=True)):
            w, b = torch.empty(k, fan_in, fan_out), torch.empty(k, 1, fan_out)
            bound = fan_in ** -0.5  # nn.Linear's default init, seeded per member and layer
            for m in range(k):
                g = torch.Generator().manual_seed(self.seed * 1_000_003 + 1009 * m + i)
                w[m].uniform_(-bound, bound, generator=g)
                b[m].uniform_(-bound, bound, generator=g)
            self.weights.append(w.requires_grad_())
            self.biases.append(b.requires_grad_())
        # NOTE: AdamW, not Adam's L2: with L2 the weights of a choice never seen in the data get
        # only the decay's gradient, which Adam normalises to a full lr-sized step, so they are
        # zeroed within ~100 steps and the members stop disagreeing off the data.
        self.optimizer = torch.optim.AdamW(self._params(), lr=self.cfg.lr,
                                           weight_decay=self.cfg.weight_decay, foreach=True)
        self._gen = torch.Generator().manual_seed(self.seed)  # minibatches and prefixes
        self._rng = np.random.default_rng(self.seed)  # bootstrap counts
        self._x = np.zeros((0, t), dtype=np.int64)  # (n, T) decisions
        self._y = np.zeros(0, dtype=np.float32)  # (n,) normalised targets
        self._counts = np.zeros((self.cfg.members, 0), dtype=np.int64)  # (K, n) bootstrap counts
        self._f = np.zeros((0, self.n_features), dtype=np.float32)  # (n, F) the points' features
        self._yv: np.ndarray | None = None  # (n,) the value nets' own targets (None: _y)
        self._fid = np.zeros(0, dtype=np.float32)  # (n,) log2 of each point's fidelity
        self._weights: np.ndarray | None = None  # (n,) fit weights (None: all 1; not stored)

    def _params(self) -> list[torch.Tensor]:
        return self.weights + self.biases

    @property
    def n_points(self) -> int:
        """Number of (architecture, target) points added so far."""
        return int(self._y.shape[0])

    def _check(self, decisions: Any) -> np.ndarray:
        x = np.asarray(decisions, dtype=np.int64)
        if x.ndim == 1 and x.size == len(self.sizes):
            x = x[None]
        if x.ndim != 2 or x.shape[1] != len(self.sizes):
            raise ValueError(f"critic decisions of shape {x.shape}: expected (n, "
                             f"{len(self.sizes)})")
        bad = (x < 0) | (x >= np.asarray(self.sizes))
        if bad.any():
            i, t = map(int, np.argwhere(bad)[0])
            raise ValueError(f"critic decision {t} of row {i} is {int(x[i, t])}: expected 0.."
                             f"{self.sizes[t] - 1}")
        return x

    def add(self, decisions: Any, targets: Any, fidelity: Any = None) -> None:
        """Add points: decisions (n, T) ints, targets (n,) normalised rewards, measured at
        ``fidelity`` (n,) in (0, 1] (None: all at full fidelity; below 1 only for a critic
        made with ``fidelity=True``). Each new point gets an independent Poisson(1) count per
        member (online bootstrap). Raises ``ValueError`` for bad shapes, an out-of-range
        decision or a non-finite target."""
        x = self._check(decisions)
        y = np.asarray(targets, dtype=np.float32).reshape(-1)
        if y.shape[0] != x.shape[0]:
            raise ValueError(f"critic got {x.shape[0]} architectures but {y.shape[0]} targets")
        if not np.isfinite(y).all():
            raise ValueError(f"critic target {y[~np.isfinite(y)][0]!r} is not finite")
        f = np.ones(x.shape[0]) if fidelity is None else \
            np.asarray(fidelity, dtype=np.float64).reshape(-1)
        if f.shape[0] != x.shape[0] or not ((f > 0) & (f <= 1)).all() or \
                (not self.fidelity and (f < 1).any()):
            raise ValueError(f"critic fidelities {f[:4].tolist()}...: expected {x.shape[0]} in "
                             "(0, 1], below 1 only with fidelity=True")
        counts = self._rng.poisson(1.0, size=(self.cfg.members, x.shape[0]))
        self._x = np.concatenate([self._x, x])
        self._y = np.concatenate([self._y, y])
        if self._yv is not None:
            self._yv = np.concatenate([self._yv, y])
        self._counts = np.concatenate([self._counts, counts.astype(np.int64)], axis=1)
        self._f = np.concatenate([self._f, self._features(x)])
        self._fid = np.concatenate([self._fid, np.log2(f).astype(np.float32)])

    def set_weights(self, weights: Any) -> None:
        """Each point's weight (n,) in the next fits (order of :meth:`points`; None: all 1):
        a point is drawn into a member's minibatches in proportion to its bootstrap count
        times its weight (fnas weighs earlier runs' knowledge so). Not in :meth:`state`: the
        caller sets them before each fit; points added since weigh 1. Raises ``ValueError``
        for a wrong length or a weight negative or not finite."""
        w = None if weights is None else np.asarray(weights, dtype=np.float64).reshape(-1)
        if w is not None and (w.shape[0] != self.n_points or not (np.isfinite(w) & (w >= 0)).all()):
            raise ValueError(f"critic weights: expected {self.n_points} finite values >= 0")
        self._weights = w

    def points(self) -> tuple[np.ndarray, np.ndarray]:
        """Copies of the data added so far: decisions (n, T) and targets (n,), in order."""
        return self._x.copy(), self._y.copy()

    def fidelities(self) -> np.ndarray:
        """Each point's fidelity (n,), in the order of :meth:`points` (1: full)."""
        return np.exp2(self._fid.astype(np.float64))

    def retarget(self, targets: Any, value_targets: Any = None) -> None:
        """Replace every point's target (same order as :meth:`points`), e.g. after the caller
        changed its normalisation; bootstrap counts and weights are kept (refit after).
        ``value_targets``: the value nets' own targets, when they differ from the reward nets'
        (which learn the reward's unknown part, the values the whole reward); None: the same.
        Raises ``ValueError`` for a wrong length or a non-finite target."""
        ys = [np.asarray(t, dtype=np.float32).reshape(-1)
              for t in (targets, targets if value_targets is None else value_targets)]
        for y in ys:
            if y.shape[0] != self.n_points or not np.isfinite(y).all():
                raise ValueError(f"critic retarget needs {self.n_points} finite targets, got "
                                 f"{y.shape[0]}")
        self._y = ys[0].copy()
        self._yv = None if value_targets is None else ys[1].copy()

    def _features(self, x: np.ndarray) -> np.ndarray:
        if self._featurize is None:
            return np.zeros((x.shape[0], 0), dtype=np.float32)
        f = np.asarray(self._featurize(x), dtype=np.float32).reshape(x.shape[0], -1)
        if f.shape[1] != self.n_features or not np.isfinite(f).all():
            raise ValueError(f"critic features of shape {f.shape} (finite: "
                             f"{bool(np.isfinite(f).all())}): expected ({x.shape[0]}, "
                             f"{self.n_features}) finite values")
        return f

    def _encode(self, x: torch.Tensor, length: torch.Tensor, f: torch.Tensor | None = None,
                g: torch.Tensor | None = None) -> torch.Tensor:
        """Inputs (n, sum(sizes) + T + F [+ 1]) for decisions x (n, T) cut to prefixes of
        ``length`` (n,), with features f (n, F) for the full architectures (a prefix's are
        zeros: they describe the whole network) and, with ``fidelity``, the log2 fidelity g
        (n,) of each row (None: 0, full fidelity)."""
        mask = (torch.arange(x.shape[1]) < length[:, None]).float()  # (n, T)
        onehot = torch.zeros(x.shape[0], int(self._col_dec.shape[0]))
        onehot.scatter_(1, x + torch.as_tensor(self._offsets)[None], 1.0)
        parts = [onehot * mask[:, self._col_dec], mask]
        if self.n_features:
            full = (length == x.shape[1]).float()[:, None]
            parts.append(f * full)
        if self.fidelity:
            parts.append(torch.zeros(x.shape[0], 1) if g is None else g.reshape(-1, 1))
        return torch.cat(parts, 1)

    def _forward(self, h: torch.Tensor, nets: slice = slice(None)) -> torch.Tensor:
        """h (k, n, in) -> (k, n): each of the ``nets`` on its own rows."""
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = torch.baddbmm(b[nets], h, w[nets])
            if i < last:
                h = torch.relu(h)
        return h.squeeze(-1)

    def fit(self, steps: int | None = None) -> dict[str, float]:
        """Train every member for ``steps`` (default ``cfg.steps``) minibatches, warm-started.

        A no-op with no data. Returns ``{"critic/loss": ..., "critic/value_loss": ...}``: the
        reward and value nets' mean MSE over the call's last 10 steps (nan if no step ran).
        """
        steps = self.cfg.steps if steps is None else int(steps)
        n, t, k, bs = self.n_points, len(self.sizes), 2 * self.cfg.members, self.cfg.batch
        # k = 2K nets: member m's reward net is row m, its value net row K + m
        if n == 0 or steps <= 0:
            return {"critic/loss": float("nan"), "critic/value_loss": float("nan")}
        probs = torch.as_tensor(self._counts, dtype=torch.float32).repeat(2, 1)  # (2K, n)
        w = torch.ones(n)  # drawn in proportion to the weights too (points added since: 1)
        if self._weights is not None:
            w[: min(n, self._weights.shape[0])] = torch.as_tensor(self._weights[:n])
            probs = probs * w
        empty = probs.sum(1) == 0  # a member whose resample is empty (tiny n): all points
        probs[empty] = w if float(w.sum()) > 0 else 1.0
        x_all, y_all = torch.as_tensor(self._x), torch.as_tensor(self._y)
        f_all, g_all = torch.as_tensor(self._f), torch.as_tensor(self._fid)
        if self._yv is not None:  # the value nets' rows read the second half
            y_all = torch.cat([y_all, torch.as_tensor(self._yv)])
        losses = []
        with single_thread():
            for step in range(steps):
                idx = torch.multinomial(probs, bs, replacement=True, generator=self._gen)
                idx = idx.reshape(-1)  # (2K * B,)
                cut = torch.rand(k * bs, generator=self._gen) < self.cfg.prefix_prob
                cut[: k * bs // 2] = False  # the reward nets see full architectures only
                plen = torch.randint(0, t, (k * bs,), generator=self._gen)
                length = torch.where(cut, plen, torch.full_like(plen, t))
                inp = self._encode(x_all[idx], length, f_all[idx], g_all[idx] if self.fidelity
                                   else None).reshape(k, bs, -1)
                yi = idx if self._yv is None else torch.cat([idx[: k * bs // 2],
                                                              idx[k * bs // 2:] + n])
                err = self._forward(inp) - y_all[yi].reshape(k, bs)  # (2K, B)
                mse = (err ** 2).mean(1)  # (2K,) each net's own MSE: independent grads
                loss = mse.sum()
                self.optimizer.zero_grad()
                loss.backward()
                self.optimizer.step()
                if step >= steps - 10:
                    losses.append(mse.detach().reshape(2, -1).mean(1).numpy())
        loss, value_loss = np.mean(losses, axis=0)
        return {"critic/loss": float(loss), "critic/value_loss": float(value_loss)}

    @torch.no_grad()
    def _members(self, x: np.ndarray, length: np.ndarray, value: bool) -> np.ndarray:
        """The K reward (or value) nets' outputs (K, n) on x (n, T) cut to ``length`` (n,)."""
        k = self.cfg.members
        with single_thread():
            f = None
            if self.n_features:  # prefixes carry no features: compute only for full rows
                f = torch.zeros(x.shape[0], self.n_features)
                full = np.flatnonzero(length == len(self.sizes))
                if full.size:
                    f[full] = torch.as_tensor(self._features(x[full]))
            inp = self._encode(torch.as_tensor(x), torch.as_tensor(length), f)
            out = self._forward(inp.expand(k, -1, -1), slice(k, None) if value else slice(k))
        return out.numpy().astype(np.float64)

    def predict(self, decisions: Any) -> tuple[np.ndarray, np.ndarray]:
        """Mean (n,) and spread (n,) of full architectures over the members.

        The spread is the members' standard deviation (ddof=1). With no data: mean 0 and an
        infinite spread, so that nothing is trusted.

        Raises:
            ValueError: bad shape or out-of-range decision.
        """
        x = self._check(decisions)
        if self.n_points == 0:
            return np.zeros(x.shape[0]), np.full(x.shape[0], np.inf)
        out = self._members(x, np.full(x.shape[0], len(self.sizes)), value=False)
        return out.mean(0), out.std(0, ddof=1)

    def predict_members(self, decisions: Any) -> np.ndarray:
        """Each reward net's prediction (K, n) of full architectures (Thompson sampling draws
        one member). Zeros with no data. Raises ``ValueError`` like :meth:`predict`."""
        x = self._check(decisions)
        if self.n_points == 0:
            return np.zeros((self.cfg.members, x.shape[0]))
        return self._members(x, np.full(x.shape[0], len(self.sizes)), value=False)

    def prefix_values(self, decisions: Any) -> np.ndarray:
        """(n, T): column t is the ensemble-mean value E[r | a_<t] (t = 0: the empty prefix).

        Zeros with no data. Raises ``ValueError`` like :meth:`predict`.
        """
        x = self._check(decisions)
        n, t = x.shape
        if self.n_points == 0:
            return np.zeros((n, t))
        rows = np.repeat(x, t, axis=0)  # (n*T, T), row i*T + j is prefix a_<j of arch i
        length = np.tile(np.arange(t), n)
        return self._members(rows, length, value=True).mean(0).reshape(n, t)

    def state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """Tensors and JSON-able metadata for an exact resume (keys start with ``critic.``)."""
        tensors = {f"critic.w{i}": w.detach().clone() for i, w in enumerate(self.weights)}
        tensors.update({f"critic.b{i}": b.detach().clone() for i, b in enumerate(self.biases)})
        opt_t, opt_meta = optimizer_state(self.optimizer, "critic.optim")
        tensors.update({k: v.clone() for k, v in opt_t.items()})
        tensors["critic.x"] = torch.from_numpy(self._x.copy())
        tensors["critic.y"] = torch.from_numpy(self._y.copy())
        tensors["critic.counts"] = torch.from_numpy(self._counts.copy())
        if self._yv is not None:  # absent before issue 34: the values share the targets
            tensors["critic.yv"] = torch.from_numpy(self._yv.copy())
        tensors["critic.rng.torch"] = self._gen.get_state()
        meta = {"sizes": list(self.sizes), "cfg": asdict(self.cfg), "seed": self.seed,
                "optim": opt_meta, "rng_numpy": self._rng.bit_generator.state}
        if self.n_features:  # absent before issue 34: 0 features
            meta["features"] = self.n_features
        if self.fidelity:  # absent without a fidelity input (and before it existed)
            meta["fidelity"] = True
            tensors["critic.fidelity"] = torch.from_numpy(self._fid.copy())
        return tensors, meta

    def load_state(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        """Restore :meth:`state`'s output.

        Raises:
            StoreError: the state belongs to another space or ensemble shape.
        """
        cfg = meta.get("cfg", {})
        shape = (list(self.sizes), self.cfg.members, self.cfg.hidden, self.cfg.layers)
        shape = (*shape, self.n_features, self.fidelity)
        theirs = (meta.get("sizes"), cfg.get("members"), cfg.get("hidden"), cfg.get("layers"),
                  meta.get("features", 0), bool(meta.get("fidelity", False)))
        if list(theirs) != list(shape):
            raise StoreError(f"critic state (sizes, members, hidden, layers, features, "
                             f"fidelity)={theirs} does not match this critic's {shape}")
        with torch.no_grad():
            for i, w in enumerate(self.weights):
                w.copy_(tensors[f"critic.w{i}"])
            for i, b in enumerate(self.biases):
                b.copy_(tensors[f"critic.b{i}"])
        load_optimizer_state(self.optimizer, "critic.optim", tensors, meta["optim"])
        self._x = tensors["critic.x"].numpy().astype(np.int64)
        self._y = tensors["critic.y"].numpy().astype(np.float32)
        self._counts = tensors["critic.counts"].numpy().astype(np.int64)
        self._f = self._features(self._x)  # a pure function of the decisions: not stored
        fid = tensors.get("critic.fidelity")  # missing: every point at full fidelity
        self._fid = np.zeros(len(self._x), np.float32) if fid is None else \
            fid.numpy().astype(np.float32)
        yv = tensors.get("critic.yv")
        self._yv = None if yv is None else yv.numpy().astype(np.float32)
        self._gen.set_state(tensors["critic.rng.torch"])
        self._rng.bit_generator.state = meta["rng_numpy"]
