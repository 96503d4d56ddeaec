"""Using found models: ``fnas train --out``, ``fnas export``, ``fnas.build`` and ``fnas.load``.

Real trainings on digits (1 epoch, a few hundred images), real exports, real runtimes; no
mocks. The ONNX tests need the ``export`` extra and onnxruntime (both in ``.[dev]``).
"""

import json
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch

import fnas
from fnas.errors import ConfigError, InvalidArchitecture, ModelError
from fnas.nn.export import compare_outputs
from fnas.space import arch_cost, resolve_arch
from fnas.tasks import evaluate, load_dataset

from fast import TINY_SET, cli_in_process

ARCH = "cn_r1_k3_s1_c16 | ir_r1_k3_s2_e3_c24_se0.25 | cn_r1_k1_s1_c64"
POOL_ARCH = "cn_r1_k3_s1_c16 | ir_r2_k3_s2_e3_c24_poolskip | ds_r1_k5_s1_e1_c24 | cn_r1_k1_s1_c32"


# One torch thread: these networks are tiny, and on a busy 2-core machine two OpenMP threads
# spin-wait for each other on every op (a 2-architecture search went from seconds to minutes).
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
# the module fixtures train and search once: under pytest -n 2 one worker runs the module
pytestmark = pytest.mark.xdist_group("models")


def fnas_cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fnas.cli", *args], capture_output=True,
                          text=True, timeout=300, cwd=cwd, env=ENV)


def assert_one_line_error(p: subprocess.CompletedProcess, needle: str) -> None:
    assert p.returncode == 2, p
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    assert needle in lines[0] and "Traceback" not in p.stderr, lines[0]


def needs_onnx():
    for mod in ("onnx", "onnxscript", "onnxruntime"):
        pytest.importorskip(mod, reason=f"{mod} missing: pip install -e '.[dev]' (CI has it)")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 1-epoch digits training through the CLI, progress bar on: (weights path, process)."""
    path = tmp_path_factory.mktemp("trained") / "digits.safetensors"
    p = fnas_cli("train", ARCH, "--task", "digits", "--epochs", "1", "--max-samples", "300",
                 "--batch", "32", "--out", str(path))
    assert p.returncode == 0, p.stderr
    return path, p


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """A real 2-architecture search on 100 digits images (tests/fast.py): (store dir, its best
    architectures)."""
    store = tmp_path_factory.mktemp("store") / "s"
    p = fnas_cli("search", "--budget", "2", "--batch", "2", "--epochs", "1", "--store",
                 str(store), "--name", "r1", "--no-progress", *TINY_SET)
    assert p.returncode == 0, p.stderr
    show = fnas_cli("show", "r1", "--json", "--store", str(store))
    assert show.returncode == 0, show.stderr
    top = json.loads(show.stdout)["top"]
    assert top, "the search recorded no successful architecture"
    return store, top


# ---- fnas.build -------------------------------------------------------------------------------

def test_import_fnas_stays_light():
    code = "import sys, fnas; assert callable(fnas.build) and callable(fnas.load); " \
           "print('torch' in sys.modules)"
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "False"


def test_build_returns_module_with_right_output_shape():
    model = fnas.build(POOL_ARCH, num_classes=7, input_size=16, in_chans=2)
    assert isinstance(model, torch.nn.Module)
    assert (model.in_chans, model.num_classes, model.input_size) == (2, 7, 16)
    assert model(torch.randn(3, 2, 16, 16)).shape == (3, 7)
    named = fnas.build("mnas_default", num_classes=10, input_size=8, in_chans=1)
    assert named.spec == resolve_arch("mnas_default", 8)
    n_params = sum(p.numel() for p in named.parameters())
    assert n_params == arch_cost(named.spec, 8, 1, 10).params
    assert named(torch.randn(2, 1, 8, 8)).shape == (2, 10)


@pytest.mark.parametrize(("kwargs", "error", "needle"), [
    ({"arch": "ir_r2_k4_s2_e6_c24"}, InvalidArchitecture, "'k4'"),
    ({"arch": "resnet50"}, InvalidArchitecture, "resnet50"),
    ({"arch": None}, InvalidArchitecture, "None"),
    ({"arch": ARCH, "num_classes": 0}, ConfigError, "num_classes=0"),
    ({"arch": "mnas_default", "input_size": 100}, ConfigError, "100"),
])
def test_build_bad_input_is_one_line(kwargs, error, needle):
    with pytest.raises(error) as e:
        fnas.build(**kwargs)
    assert needle in str(e.value) and "\n" not in str(e.value)


# ---- fnas train, then fnas.load ---------------------------------------------------------------

@pytest.mark.slow
def test_train_writes_weights_with_progress_and_accuracy(trained):
    path, p = trained
    info = fnas.load(path).info
    assert path.is_file() and str(path) in p.stdout
    assert f"accuracy  {info.accuracy:.4f}" in p.stdout
    assert "1/1" in p.stderr and "epoch" in p.stderr  # the tqdm bar, one tick per epoch
    assert info.arch == resolve_arch(ARCH).to_str() and info.key == resolve_arch(ARCH).key
    assert (info.in_chans, info.num_classes, info.input_size) == (1, 10, 8)
    assert (info.dataset, info.epochs, info.seed) == ("digits", 1, 0)
    assert info.task["max_samples"] == 300 and info.task["batch_size"] == 32
    assert info.fnas_version and info.format == "fnas-model/1" and len(info.sha256) == 64
    assert len(info.mean) == len(info.std) == 1


def test_load_reproduces_the_recorded_accuracy_and_outputs(trained):
    path, _ = trained
    model = fnas.load(path)
    info = model.info
    assert not model.training
    t = info.task
    data = load_dataset(info.dataset, val_fraction=t["val_fraction"], split_seed=t["split_seed"],
                        max_samples=t["max_samples"], image_size=t["image_size"])
    assert evaluate(model, data.x_val, data.y_val) == info.accuracy
    x = data.x_val[:16]
    with torch.no_grad():
        out = model(x)
        assert torch.equal(out, fnas.load(path)(x))  # a second load: the same network
        fresh = fnas.build(info.arch, info.num_classes, info.input_size, info.in_chans).eval()
        assert not torch.allclose(out, fresh(x))  # the trained weights really were loaded


def test_load_leaves_the_global_rng_alone(trained):
    torch.manual_seed(123)
    want = torch.rand(3)
    torch.manual_seed(123)
    fnas.load(trained[0])
    assert torch.equal(torch.rand(3), want)


class _Trap:
    """Unpickling this creates a file: proof that a loader executed pickle."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _corrupt(kind: str, good, tmp_path):
    from safetensors.torch import save_file

    bad = tmp_path / f"{kind}.safetensors"
    blob = good.read_bytes()
    if kind == "truncated":
        bad.write_bytes(blob[: len(blob) // 2])
    elif kind == "flipped":
        i = len(blob) - 100  # inside the last tensor's data, past the header
        bad.write_bytes(blob[:i] + bytes([blob[i] ^ 0xFF]) + blob[i + 1:])
    elif kind == "garbage":
        bad.write_text("not a model\n")
    elif kind == "pickle":
        with open(bad, "wb") as f:
            pickle.dump({"state_dict": _Trap(str(tmp_path / "pwned"))}, f)
    elif kind == "plain":
        save_file({"w": torch.zeros(2)}, bad)
    elif kind in ("format", "arch"):
        sd = {k: v.contiguous() for k, v in fnas.load(good).state_dict().items()}
        meta = fnas.load(good).info.to_dict()
        if kind == "format":
            meta["format"] = "fnas-model/99"
        else:  # a valid, different architecture: the tensors no longer fit it
            other = resolve_arch("cn_r1_k3_s1_c8 | cn_r1_k1_s1_c16")
            meta.update(arch=other.to_str(), key=other.key)
        save_file(sd, bad, metadata={"fnas": json.dumps(meta)})
    return bad


@pytest.mark.parametrize(("kind", "needle"), [
    ("truncated", "not a readable safetensors"), ("flipped", "corrupted"),
    ("garbage", "not a readable safetensors"), ("pickle", "not a readable safetensors"),
    ("plain", "not an fnas model file"), ("format", "fnas-model/99"),
    ("arch", "do not fit"),
])
def test_bad_weights_file_is_one_clear_error(trained, tmp_path, kind, needle):
    bad = _corrupt(kind, trained[0], tmp_path)
    with pytest.raises(ModelError) as e:
        fnas.load(bad)
    assert needle in str(e.value) and "\n" not in str(e.value)
    assert not (tmp_path / "pwned").exists()  # nothing was unpickled


def test_cli_reports_a_corrupted_weights_file_on_one_line(trained, tmp_path):
    bad = _corrupt("flipped", trained[0], tmp_path)
    out = tmp_path / "never.json"
    assert_one_line_error(fnas_cli("export", "--weights", str(bad), "--format", "spec",
                                   "--out", str(out)), "corrupted")
    assert not out.exists()


# ---- fnas export ------------------------------------------------------------------------------

@pytest.mark.slow
def test_onnx_export_matches_pytorch_under_onnxruntime(trained, tmp_path):
    needs_onnx()
    import onnxruntime as ort

    path, _ = trained
    out = tmp_path / "m.onnx"
    p = fnas_cli("export", "--weights", str(path), "--format", "onnx", "--out", str(out))
    assert p.returncode == 0, p.stderr
    assert "matches PyTorch" in p.stdout and "trained weights" in p.stdout
    model = fnas.load(path)
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    meta = sess.get_modelmeta().custom_metadata_map
    assert meta["fnas.key"] == model.info.key
    assert json.loads(meta["fnas.model"])["sha256"] == model.info.sha256
    x = torch.randn(7, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    for batch in (1, 7):  # the batch dimension is dynamic
        (got,) = sess.run(["logits"], {"input": x[:batch].numpy()})
        with torch.no_grad():
            want = model(x[:batch]).numpy()
        assert got.shape == (batch, 10)
        assert compare_outputs(torch.from_numpy(got), torch.from_numpy(want)).ok


@pytest.mark.slow
def test_onnx_export_fresh_init_is_the_stated_seed(tmp_path):
    """Without --weights: torch.manual_seed(S) then fnas.build; a pooling shortcut on an odd
    feature map (7 -> 4), which the TorchScript-based exporter cannot handle."""
    needs_onnx()
    import onnxruntime as ort

    out = tmp_path / "fresh.onnx"
    p = fnas_cli("export", POOL_ARCH, "--format", "onnx", "--input-size", "7", "--in-chans",
                 "3", "--classes", "5", "--seed", "3", "--out", str(out))
    assert p.returncode == 0, p.stderr
    assert "fresh initialisation, seed 3" in p.stdout and "NOT trained" in p.stdout
    torch.manual_seed(3)
    model = fnas.build(POOL_ARCH, num_classes=5, input_size=7, in_chans=3).eval()
    x = torch.randn(4, 3, 7, 7)
    (got,) = ort.InferenceSession(str(out)).run(None, {"input": x.numpy()})
    with torch.no_grad():
        assert np.abs(got - model(x).numpy()).max() <= 1e-4


@pytest.mark.slow
def test_pt2_loads_without_fnas_and_matches(trained, tmp_path):
    """``--format pt2``: a ``torch.export`` program that ``torch.export.load`` runs with no
    fnas installed, at any batch size, carrying the model file's metadata."""
    path, _ = trained
    out = tmp_path / "m.pt2"
    p = fnas_cli("export", "--weights", str(path), "--format", "pt2", "--out", str(out))
    assert p.returncode == 0, p.stderr
    assert "torch.export.load matches PyTorch" in p.stdout and p.stderr == ""  # no torch notes
    x = torch.randn(5, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    np.save(tmp_path / "x.npy", x.numpy())
    code = ("import sys; sys.modules['fnas'] = None\n"  # any fnas import would now fail
            "import numpy as np, torch\n"
            f"m = torch.export.load({str(out)!r}).module()\n"
            f"x = torch.from_numpy(np.load({str(tmp_path / 'x.npy')!r}))\n"
            f"np.save({str(tmp_path / 'y.npy')!r}, m(x).detach().numpy())\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env=ENV)
    assert r.returncode == 0, r.stderr
    with torch.no_grad():
        want = fnas.load(path)(x).numpy()
    assert np.abs(np.load(tmp_path / "y.npy") - want).max() <= 1e-5
    extra = {"fnas.key": "", "fnas.model": ""}
    prog = torch.export.load(out, extra_files=extra)
    assert extra["fnas.key"] == fnas.load(path).info.key
    assert json.loads(extra["fnas.model"])["sha256"] == fnas.load(path).info.sha256
    with torch.no_grad():  # the batch is dynamic: 1 works too
        assert prog.module()(x[:1]).shape == (1, 10)


def test_spec_json_round_trips_to_the_same_key(tmp_path):
    from fnas.nn.export import spec_from_dict
    from fnas.space import ArchSpec

    out = tmp_path / "a1.json"
    p = fnas_cli("export", "mnasnet_a1", "--format", "spec", "--out", str(out))
    assert p.returncode == 0, p.stderr
    d = json.loads(out.read_text())
    want = resolve_arch("mnasnet_a1")
    assert d["key"] == want.key and ArchSpec.parse(d["arch"]).key == want.key
    assert spec_from_dict(d).key == want.key  # rebuilt from the blocks' fields alone
    assert (d["input_size"], d["num_classes"], d["in_chans"]) == (224, 1000, 3)
    assert d["params"] == 3_887_038 and len(d["blocks"]) == 9 and d["weights"] is None
    assert sum(b["macs"] for b in d["blocks"]) + d["classifier"]["macs"] == d["macs"]
    assert (tmp_path / "a1.txt").read_text().strip() == want.to_str()


# ---- RUN:RANK from a real search ---------------------------------------------------------------

@pytest.mark.slow
def test_run_rank_trains_and_exports_the_runs_best(searched, tmp_path):
    store, top = searched
    out = tmp_path / "best.safetensors"
    p = fnas_cli("train", "r1:1", "--store", str(store), "--epochs", "1", "--max-samples",
                 "300", "--no-progress", "--out", str(out))
    assert p.returncode == 0, p.stderr
    info = fnas.load(out).info
    assert info.arch == top[0]["arch"] and info.source == "run r1 rank 1"
    assert info.dataset == "digits" and "from      run r1 rank 1" in p.stdout
    spec = tmp_path / "best.json"
    p = fnas_cli("export", f"r1:{len(top)}", "--store", str(store), "--format", "spec",
                 "--out", str(spec))
    assert p.returncode == 0, p.stderr
    d = json.loads(spec.read_text())
    assert d["arch"] == top[-1]["arch"]
    assert (d["in_chans"], d["num_classes"], d["input_size"]) == (1, 10, 8)  # the run's task


def _reads_no_dataset(monkeypatch):
    """From here on, reading any dataset fails the test (its loader and its file reader both
    raise): sizes must come from what the run recorded."""
    from fnas.tasks import datasets

    def refuse(*args, **kwargs):
        raise AssertionError("a dataset was read")

    datasets.clear_dataset_cache()
    monkeypatch.setattr(datasets, "load_dataset", refuse)
    monkeypatch.setattr(datasets, "_read_pool", refuse)


def _scored(arch):
    return len(arch.to_str()) / 1000  # an objective: the run reads no data at all


def test_run_rank_export_of_a_builtin_dataset_reads_no_dataset(tmp_path, monkeypatch, capsys):
    """The run's task says cifar10 at a path that does not exist: its shape is known."""
    from fnas.cli import main

    task = {"dataset": f"cifar10:{tmp_path / 'absent'}"}
    fnas.create_search(store=tmp_path / "s", name="c", space="mnas", objective=_scored,
                       strategy="random", budget=2, batch=2, task=task).optimize(progress=False)
    _reads_no_dataset(monkeypatch)
    out = tmp_path / "c.json"
    assert main(["export", "c:1", "--format", "spec", "--store", str(tmp_path / "s"),
                 "--out", str(out)]) == 0
    d = json.loads(out.read_text())
    assert (d["in_chans"], d["num_classes"], d["input_size"]) == (3, 10, 32)
    assert f"sizes     3x32x32 input, 10 classes: from run c's task (cifar10:{tmp_path}" in (
        capsys.readouterr().out)
    done = fnas.export("c:1", "spec", out=tmp_path / "c16.json", store=tmp_path / "s",
                       input_size=16)  # a size given wins; the others still the run's
    assert (done.in_chans, done.num_classes, done.input_size) == (3, 10, 16)


def test_run_rank_export_of_a_registered_dataset_reads_its_recorded_shape(tmp_path, monkeypatch):
    """A run on a registered dataset (real training), exported once the data is gone from the
    process and the name holds other data: the shape its task signature recorded."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (40, 1, 14, 14), dtype=np.uint8)
    fnas.register_dataset("export_t", images, np.arange(40) % 4)
    try:
        s = fnas.create_search(store=tmp_path / "s", name="u", space="mnas", strategy="random",
                               budget=2, batch=2, task={"dataset": "export_t", "epochs": 1,
                                                        "batch_size": 8, "latency_repeats": 0})
        s.optimize(progress=False)
        assert s.best is not None
        fnas.register_dataset("export_t", np.zeros((40, 3, 20, 20), np.uint8),
                              np.arange(40) % 2, replace=True)
        _reads_no_dataset(monkeypatch)
        done = fnas.export("u:1", "spec", out=tmp_path / "u.json", store=tmp_path / "s")
    finally:
        fnas.unregister_dataset("export_t")
    assert (done.in_chans, done.num_classes, done.input_size) == (1, 4, 14)
    assert done.sizes_from == "run u's task signature (export_t)"


def test_run_rank_export_loads_a_folder_dataset_and_says_so(tmp_path):
    """A folder's classes are its subfolders, recorded nowhere: the dataset is loaded, and the
    export says so; once the folder is gone, which sizes to give instead."""
    from PIL import Image

    for k in range(2):
        (tmp_path / "imgs" / f"c{k}").mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (5, 5), (80 * k, 0, 0)).save(tmp_path / "imgs" / f"c{k}" / f"{i}.png")
    task = {"dataset": f"folder:{tmp_path / 'imgs'}", "image_size": 16}
    fnas.create_search(store=tmp_path / "s", name="f", space="mnas", objective=_scored,
                       strategy="random", budget=2, batch=2, task=task).optimize(progress=False)
    done = fnas.export("f:1", "spec", out=tmp_path / "f.json", store=tmp_path / "s")
    assert (done.in_chans, done.num_classes, done.input_size) == (3, 2, 16)
    assert "loaded: the run records no shape for it" in done.sizes_from
    import shutil

    shutil.rmtree(tmp_path / "imgs")
    with pytest.raises(ConfigError, match="give --input-size, --classes and --in-chans"):
        fnas.export("f:1", "spec", out=tmp_path / "g.json", store=tmp_path / "s")


@pytest.mark.parametrize(("args", "needle"), [
    (["train", "ir_r2_k4_s2_e6_c24", "--epochs", "1"], "'k4'"),
    (["train", "nosuch:1", "--epochs", "1"], "nosuch"),
    (["train", "r1:99", "--epochs", "1"], "no rank 99"),
    (["train", "r1:0", "--epochs", "1"], "bad RUN:RANK"),
    (["export", "r1:x", "--format", "spec"], "bad RUN:RANK"),
    (["export", "--format", "spec"], "give ARCH"),
    (["export", ARCH, "--format", "pdf"], "invalid choice"),
    (["export", "resnet50", "--format", "pt2"], "resnet50"),
    (["export", ARCH, "--format", "torchscript"], "invalid choice"),
])
@pytest.mark.slow
def test_bad_input_is_one_line_and_writes_nothing(searched, tmp_path, args, needle, capsys,
                                                  monkeypatch):
    store, _ = searched
    out = tmp_path / "never.out"
    argv = [*args, "--store", str(store), "--out", str(out)]
    if args[0] == "train" and args[1] == "nosuch:1":  # one as the program
        assert_one_line_error(fnas_cli(*argv, cwd=tmp_path), needle)
    else:  # the same main() in this process, in the same empty folder
        monkeypatch.chdir(tmp_path)
        in_process_one_line(capsys, needle, *argv)
    assert not out.exists() and list(tmp_path.iterdir()) == []


def in_process_one_line(capsys, needle, *args):
    """``fnas ARGS`` refused in this process (``main()``): exit 2, one line naming ``needle``."""
    code, _, err = cli_in_process(capsys, *args)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert needle in err and "Traceback" not in err


def test_missing_store_is_one_line(tmp_path, capsys):
    out = tmp_path / "never.safetensors"
    in_process_one_line(capsys, "no fnas store", "train", "r1:1", "--store", tmp_path / "none",
                        "--out", out)
    assert not out.exists() and not (tmp_path / "none").exists()


@pytest.mark.slow
def test_weights_contradicting_flags_are_refused(trained, tmp_path, capsys):
    path, _ = trained
    in_process_one_line(capsys, "contradicts", "export", "--weights", path, "--classes", "3",
                        "--format", "spec", "--out", tmp_path / "x.json")
    in_process_one_line(capsys, "is not the architecture", "export", "mnasnet_a1", "--weights",
                        path, "--format", "spec", "--out", tmp_path / "x.json")
    assert list(tmp_path.iterdir()) == []


def test_spec_export_with_weights_carries_their_metadata(trained, tmp_path):
    path, _ = trained
    out = tmp_path / "w.json"
    p = fnas_cli("export", "--weights", str(path), "--format", "spec", "--out", str(out))
    assert p.returncode == 0, p.stderr
    d, info = json.loads(out.read_text()), fnas.load(path).info
    assert d["weights"]["sha256"] == info.sha256 and d["weights"]["accuracy"] == info.accuracy
    assert (d["in_chans"], d["num_classes"], d["input_size"]) == (1, 10, 8)
    assert d["key"] == info.key


def test_onnx_without_the_export_extra_is_one_line(tmp_path):
    out = tmp_path / "m.onnx"
    code = ("import sys; sys.modules['onnxscript'] = None  # as if not installed\n"
            "from fnas.cli import main\n"
            f"sys.exit(main(['export', {ARCH!r}, '--format', 'onnx', '--out', {str(out)!r}]))\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=120, env=ENV)
    assert_one_line_error(p, "pip install onnx onnxscript")
    assert not out.exists() and p.stdout == ""


@pytest.mark.slow
def test_failed_training_writes_no_weights(tmp_path):
    out = tmp_path / "never.safetensors"
    p = fnas_cli("train", ARCH, "--epochs", "1", "--lr", "1e30", "--max-samples", "200",
                 "--batch", "32", "--no-progress", "--out", str(out))  # diverges: a failed run
    assert p.returncode == 1 and "nothing written" in p.stderr, p
    assert not out.exists() and list(tmp_path.iterdir()) == []
    # a minibatch larger than the data is bad input, refused before training (issue 18)
    p = fnas_cli("train", ARCH, "--epochs", "1", "--batch", "5000", "--no-progress", "--out",
                 str(out))
    assert p.returncode == 2 and "exceeds" in p.stderr, p
    assert not out.exists() and list(tmp_path.iterdir()) == []
