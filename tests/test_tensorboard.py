"""The TensorBoard callback: a real search (PPO on a toy space, a plain objective) stopped,
resumed with a new callback, and the event files read back and checked against the store."""

from __future__ import annotations

import struct
import sys

import pytest

import fnas
from fnas.errors import ConfigError

tbx = pytest.importorskip("tensorboardX", reason="pip install tensorboardX")
from tensorboardX.proto.event_pb2 import Event  # noqa: E402

from fnas.search.tensorboard import TensorBoardCallback  # noqa: E402


def _scalars(folder) -> dict[str, dict[int, float]]:
    """{tag: {step: value}} from every event file in folder (TFRecord: length, crc, data,
    crc), later files last, as TensorBoard reads them."""
    out: dict[str, dict[int, float]] = {}
    for f in sorted(folder.glob("events.out.tfevents.*")):
        data, i = f.read_bytes(), 0
        while i < len(data):
            (n,) = struct.unpack("<Q", data[i:i + 8])
            event = Event.FromString(data[i + 12:i + 12 + n])
            i += 12 + n + 4
            for v in event.summary.value:
                out.setdefault(v.tag, {})[event.step] = v.simple_value
    return out


def score(arch):
    return -sum((v - 3) ** 2 for v in arch.values()) / 10


def test_scalars_match_the_store_across_a_resume(tmp_path):
    space = fnas.make_space("tb-toy", {f"x{i}": range(5) for i in range(4)})
    search = fnas.create_search(store=tmp_path / "s", name="tb", space=space, objective=score,
                                strategy="ppo", budget=12, batch=4)
    with TensorBoardCallback(tmp_path / "tb") as cb:
        search.optimize(progress=False, stop_after=1, callbacks=[cb])
    with TensorBoardCallback(tmp_path / "tb") as cb:  # a new process, say: a new callback
        search.optimize(progress=False, callbacks=[cb])
    got = _scalars(tmp_path / "tb" / "tb")
    evals = search.trials()
    assert len(evals) == 12
    rewards = {e.iteration * 4 + e.slot: e.reward for e in evals}
    assert got["search/reward"] == pytest.approx(rewards)
    running, best = {}, float("-inf")
    for step in sorted(rewards):
        best = max(best, rewards[step])
        running[step] = best
    assert got["search/best_reward"] == pytest.approx(running)  # continued over the resume
    updates = search.store.updates(search.experiment.id)
    assert len(updates) == 3
    for name in ("losses/approx_kl", "losses/entropy", "losses/policy_loss"):
        assert got[name] == pytest.approx({u["iteration"]: u[name] for u in updates}), name


def test_without_tensorboardx_it_is_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboardX", None)
    with pytest.raises(ConfigError) as exc:
        TensorBoardCallback()
    assert "pip install tensorboardX" in str(exc.value) and "\n" not in str(exc.value)
