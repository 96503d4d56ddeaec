"""Your own tensors on the built-in proxy task: fnas.register_dataset, real training on a slice
of scikit-learn's digits (1 x 8 x 8), its split, signature, resume and one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.datasets import load_digits
from torch.utils.data import TensorDataset

import fnas
from fnas.errors import ConfigError
from fnas.knowledge import Store
from fnas.tasks import TaskConfig, load_dataset, registered_datasets, unregister_dataset

_DIGITS = load_digits()
X = torch.tensor(_DIGITS.images[:, None], dtype=torch.float32)  # (1797, 1, 8, 8), 0..16
Y = torch.tensor(_DIGITS.target)  # (1797,) int64


@pytest.fixture(autouse=True)
def _clean_registry():
    yield
    for name in registered_datasets():
        unregister_dataset(name)


def _one_line(exc: pytest.ExceptionInfo[BaseException]) -> str:
    msg = str(exc.value)
    assert msg and "\n" not in msg, f"not one line: {msg!r}"
    return msg


def test_split_subsample_and_resize_match_the_builtin_digits():
    fnas.register_dataset("mydigits", X, Y, version="v1")
    for kw in ({}, {"max_samples": 500, "image_size": 16, "split_seed": 3}):
        mine, ref = load_dataset("mydigits", **kw), load_dataset("digits", **kw)
        # the same stratified split and subsample (labels equal, in order) ...
        assert torch.equal(mine.y_train, ref.y_train) and torch.equal(mine.y_val, ref.y_val)
        # ... and the same pixels after the train-statistics normalisation (digits' 0..16
        # scale, which fnas divides by 16 and a user may not, normalises away)
        assert torch.allclose(mine.x_train, ref.x_train, atol=1e-4)
        assert torch.allclose(mine.x_val, ref.x_val, atol=1e-4)
        assert (mine.name, mine.num_classes, mine.in_chans) == ("mydigits", 10, 1)
        assert mine.image_size == kw.get("image_size", 8)


def test_signature_holds_name_version_and_content():
    a = fnas.register_dataset("a", X[:300], Y[:300], version="v1")
    assert a.name in a.signature and "@v1" in a.signature and a.fingerprint in a.signature
    assert "shape=1x8x8" in a.signature and "n=300" in a.signature
    assert fnas.register_dataset("a", X[:300].clone(), Y[:300], version="v1") is a  # no-op
    b = fnas.register_dataset("b", X[:300], Y[:300], version="v1")
    c = fnas.register_dataset("c", X[:300], Y[:300], version="v2")
    x = X[:300].clone()
    x[7, 0, 3, 3] += 1  # one pixel
    d = fnas.register_dataset("d", x, Y[:300], version="v1")
    assert b.fingerprint == a.fingerprint == c.fingerprint != d.fingerprint
    sigs = {load_dataset(n).signature for n in "abcd"}
    assert len(sigs) == 4  # name, version and content each change the cache key
    with pytest.raises(ConfigError) as exc:
        fnas.register_dataset("a", x, Y[:300], version="v1")
    assert "'a' already holds other data" in _one_line(exc) and "replace=True" in str(exc.value)
    e = fnas.register_dataset("a", x, Y[:300], version="v1", replace=True)
    assert load_dataset("a").signature.startswith(e.signature)
    x[0] = 99  # the registry holds a copy: the user's tensor is free to change
    assert load_dataset("a").signature.startswith(e.signature)
    assert not e.images.flags.writeable


def test_a_torch_dataset_and_pil_images_register_the_same_data():
    tensors = fnas.register_dataset("t", X[:200], Y[:200])
    from_ds = fnas.register_dataset("ds", TensorDataset(X[:200], Y[:200]))
    assert from_ds.fingerprint == tensors.fingerprint
    pixels = (X[:60, 0] * 15).to(torch.uint8).numpy()  # (60, 8, 8) uint8
    pil = [(Image.fromarray(p), int(y)) for p, y in zip(pixels, Y[:60], strict=True)]
    reg = fnas.register_dataset("pil", pil, num_classes=10)
    assert reg.images.shape == (60, 1, 8, 8) and reg.images.dtype == np.uint8
    assert reg.scale == 255.0 and np.array_equal(reg.images[:, 0], pixels)


@pytest.mark.parametrize(("args", "kw", "words"), [
    ((X[:, 0], Y), {}, "(N, C, H, W), got shape (1797, 8, 8) (greyscale"),
    ((X.permute(0, 2, 3, 1).expand(-1, 8, 8, 3), Y), {}, "channels-last"),
    ((X, Y[:-1]), {}, "1797 images but 1796 labels"),
    ((X, Y - 1), {}, "labels must be >= 0, found -1"),
    ((X, Y.float()), {}, "labels must be integer class indices"),
    ((X, torch.zeros_like(Y)), {}, "need >= 2"),
    ((X[:19], Y[:19]), {}, "class 9 has 1 sample"),
    ((X, Y), {"num_classes": 5}, "label 9 is out of range for num_classes=5"),
    ((X.masked_fill(X > 15, float("nan")), Y), {}, "NaN"),
    ((X > 3, Y), {}, "images must be numbers"),
    (("pixels", None), {}, "labels are missing"),
    ((X, None), {}, "torch Dataset of (image, label) items, not Tensor"),
    (([(X[0], 1), (X[1, :, :4], 2)], None), {},
     "item 1's image has shape (1, 4, 8), expected (1, 8, 8)"),
    ((X, Y), {"version": 1.5}, "version must be a string or an integer"),
])
def test_bad_input_is_one_line(args, kw, words):
    with pytest.raises(ConfigError) as exc:
        fnas.register_dataset("bad", *args, **kw)
    msg = _one_line(exc)
    assert words in msg and "'bad'" in msg
    assert registered_datasets() == []


@pytest.mark.parametrize("name", ["digits", "MNIST5K", "my data", "cifar10:x", "", "9lives"])
def test_bad_names_are_refused(name):
    with pytest.raises(ConfigError) as exc:
        fnas.register_dataset(name, X[:40], Y[:40])
    assert repr(name) in _one_line(exc)


def test_non_square_images_need_an_image_size():
    fnas.register_dataset("wide", X[:, :, :6], Y)  # (N, 1, 6, 8)
    with pytest.raises(ConfigError, match="'wide' has 6x8 images: set the task's image_size"):
        load_dataset("wide")
    assert load_dataset("wide", image_size=8).x_train.shape[1:] == (1, 8, 8)


def test_too_few_samples_for_the_split_is_one_line():
    fnas.register_dataset("tiny", X[:60], Y[:60])
    with pytest.raises(ConfigError) as exc:
        load_dataset("tiny", max_samples=20, val_fraction=0.2)
    assert "cannot split 'tiny' max_samples=20" in _one_line(exc)


def _task(**kw):
    return TaskConfig(dataset="mydigits", epochs=1, batch_size=32, max_samples=300,
                      latency_repeats=0, **kw)


@pytest.mark.slow
def test_search_trains_on_registered_data_refuses_it_unregistered_and_resumes(tmp_path):
    fnas.register_dataset("mydigits", X, Y, version="v1")
    store = Store(tmp_path / "s")
    search = fnas.create_search(store=store, name="mine", strategy="random", budget=4, batch=2,
                                task=_task())
    search.optimize(progress=False, stop_after=1)
    first = search.trials()
    assert len(first) == 2 and all(e.status == "ok" for e in first)
    assert all(0.0 < e.accuracy <= 1.0 for e in first)  # really trained on the 300 images
    assert "user:mydigits@v1" in search.experiment.task_signature

    unregister_dataset("mydigits")  # as in a new process that has not registered it
    again = fnas.create_search(store=store, name="mine", load_if_exists=True)
    with pytest.raises(ConfigError) as exc:
        again.optimize(progress=False)
    assert "'mydigits'" in _one_line(exc) and "fnas.register_dataset" in str(exc.value)

    fnas.register_dataset("mydigits", X, Y, version="v2")  # other version: another task
    with pytest.raises(fnas.errors.StoreError, match="another space or task"):
        again.optimize(progress=False)

    fnas.register_dataset("mydigits", X, Y, version="v1", replace=True)
    out = again.optimize(progress=False)
    assert len(again.trials()) == 4 and out.experiment.status == "done"


@pytest.mark.slow
def test_the_cli_resume_without_the_data_is_one_line(tmp_path):
    fnas.register_dataset("mydigits", X[:300], Y[:300], version="v1")
    search = fnas.create_search(store=tmp_path / "s", name="mine", strategy="random", budget=4,
                                batch=2, task=_task())
    search.optimize(progress=False, stop_after=1)
    search.store.close()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    p = subprocess.run([sys.executable, "-m", "fnas.cli", "search", "--resume", "mine",
                        "--store", str(tmp_path / "s"), "--no-progress"],
                       capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 2 and p.stderr.count("\n") == 1, p.stderr
    assert "'mydigits'" in p.stderr and "not registered" in p.stderr


@pytest.mark.slow
@pytest.mark.xdist_group("ray")
def test_ray_workers_receive_the_registered_data(tmp_path, local_ray):
    from fnas.execution.executors import RayExecutor
    from fnas.search import SearchConfig, run_search

    fnas.register_dataset("mydigits", X, Y, version="v1")
    ex = RayExecutor(parallel=1)  # joins the session's local Ray: its workers are other processes
    store = Store(tmp_path / "s")
    try:
        cfg = SearchConfig(strategy="random", budget=2, batch=2, task=_task())
        out = run_search(store, cfg, name="ray", progress=False, executor=ex)
    finally:
        ex.close()
    evs = store.evaluations(out.experiment.id)
    assert len(evs) == 2 and all(e.status == "ok" for e in evs), [e.message for e in evs]
