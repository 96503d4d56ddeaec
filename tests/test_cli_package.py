"""The CLI as a package (issue 19): ``python -m fnas``, ``--version``, flags generated from the
registries and configs, ``--log-level``, and ``fnas.train`` / ``fnas.export`` as Python calls."""

import ast
import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import fnas
from fnas.errors import ConfigError

from fast import cli_in_process

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
# the module fixture trains once: under pytest -n 2 one worker runs the module
pytestmark = pytest.mark.xdist_group("cli_package")
ARCH = "cn_r1_k3_s1_c16 | ir_r1_k3_s2_e3_c24_se0.25 | cn_r1_k1_s1_c64"
POOL_ARCH = "cn_r1_k3_s1_c16 | ir_r2_k3_s2_e3_c24_poolskip | ds_r1_k5_s1_e1_c24 | cn_r1_k1_s1_c32"


# ---- packaging ---------------------------------------------------------------------------------

def test_python_m_fnas_version():
    p = subprocess.run([sys.executable, "-m", "fnas", "--version"], capture_output=True,
                       text=True, timeout=120, env=ENV)
    assert p.returncode == 0, p.stderr
    assert re.fullmatch(r"fnas \d+\.\d+\.\d+\S*\n", p.stdout), p.stdout
    assert p.stdout == f"fnas {fnas.__version__}\n"


def test_version_matches_pyproject():
    text = (ROOT / "pyproject.toml").read_text()  # no tomllib: Python 3.10 is supported
    version = re.search(r'^version = "([^"]+)"$', text, re.M).group(1)
    assert fnas.__version__ == version
    assert fnas._SOURCE_VERSION == version  # the fallback of an uninstalled tree
    assert 'fnas = "fnas.cli:main"' in text


def test_cli_modules_are_small_and_import_no_helper_from_the_package():
    for path in sorted((ROOT / "src" / "fnas" / "cli").glob("*.py")):
        text = path.read_text()
        assert len(text.splitlines()) < 400, path.name
        if path.name in ("__init__.py", "__main__.py"):
            continue
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ImportFrom):
                assert node.module != "fnas.cli", f"{path.name} imports from fnas.cli"


def test_light_commands_do_not_import_torch(tmp_path):
    code = ("import sys\nfrom fnas.cli import main\n"
            f"main(['runs', '--store', {str(tmp_path)!r}])\n"
            "print('torch' in sys.modules)\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=120, env=ENV)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines()[-1] == "False"


def test_the_search_modules_leave_scipy_stats_until_a_search_ranks():
    """``scipy.stats`` takes about half a second to import: the screening imports it when it
    first ranks, so a process that never ranks (vanilla searches, ``fnas show``) never pays."""
    code = ("import sys\nimport fnas.search\nprint('scipy.stats' in sys.modules)\n"
            "from fnas.agent.acquisition import rank_gauss\n"
            "print(rank_gauss([0.3, 0.1, 0.2]).argsort().tolist(), 'scipy.stats' in sys.modules)\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=120, env=ENV)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines()[-2:] == ["False", "[1, 2, 0] True"]


# ---- flags from the registries and the configs -------------------------------------------------

def test_a_registered_strategy_and_space_are_reachable(monkeypatch, capsys):
    from fnas.cli import build_parser
    from fnas.cli.search import config_from_args
    from fnas.search import SPACES, STRATEGIES, loop
    from fnas.space import mnas_space

    monkeypatch.setitem(STRATEGIES, "mine", loop.STRATEGIES["random"])
    monkeypatch.setitem(SPACES, "tiny", lambda input_size=8: mnas_space(8))
    args = build_parser().parse_args(["search", "--strategy", "mine", "--space", "tiny"])
    cfg = config_from_args(args)
    assert (cfg.strategy, cfg.space) == ("mine", "tiny")
    code, out, _ = cli_in_process(capsys, "search", "--help")
    assert code == 0 and "mine" in out and "tiny" in out
    code, out, _ = cli_in_process(capsys, "bench", "--help")
    assert code == 0 and "mine" in out
    monkeypatch.delitem(STRATEGIES, "mine")
    code, _, err = cli_in_process(capsys, "search", "--strategy", "mine")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "invalid choice" in err


def test_help_texts_and_defaults_come_from_the_configs(capsys):
    from fnas.agent.buffer import ReplayConfig
    from fnas.search import SearchConfig
    from fnas.strategies.fnas.screening import ScreenConfig

    code, out, _ = cli_in_process(capsys, "search", "--help")
    out = " ".join(out.split())
    assert code == 0
    assert f"architectures to sample in total (cached ones count: they are samples) " \
           f"(default: {SearchConfig().budget})" in out
    assert f"(default: {ScreenConfig().candidates})" in out
    assert f"(default: {ReplayConfig().capacity})" in out
    code, out, _ = cli_in_process(capsys, "train", "--help")
    flat = " ".join(out.split())  # argparse wraps the help text
    assert code == 0 and "digits | mnist5k | cifar10:PATH | idx:PATH | folder:PATH" in flat


def test_log_level_shows_the_fnas_logger_on_stderr(monkeypatch, capsys):
    import fnas.cli.runs

    def fake_run(args):
        logging.getLogger("fnas.search").info("one evaluation")
        return 0

    monkeypatch.setattr(fnas.cli.runs, "run", fake_run)
    assert cli_in_process(capsys, "runs")[2] == ""  # WARNING by default
    code, _, err = cli_in_process(capsys, "--log-level", "info", "runs")
    assert code == 0 and err == "fnas: one evaluation\n"
    handlers = logging.getLogger("fnas").handlers  # the CLI's is removed when it returns
    assert all(isinstance(h, logging.NullHandler) for h in handlers)
    code, _, err = cli_in_process(capsys, "--log-level", "loud", "runs")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "LOUD" in err


# ---- fnas.train and fnas.export from Python ----------------------------------------------------

@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("api") / "m.safetensors"
    epochs = []
    done = fnas.train(ARCH, "digits", epochs=1, max_samples=300, batch_size=32, out=out,
                      on_epoch=lambda e, acc: epochs.append((e, acc)))
    return done, epochs


def test_train_from_python(trained):
    done, epochs = trained
    assert done.ok and done.weights.exists() and done.task.epochs == 1
    assert len(epochs) == 1 and 0 <= epochs[0][1] <= 1
    model = fnas.load(done.weights)
    assert model.info.sha256 == done.info.sha256 and model.info.accuracy == done.result.accuracy
    assert done.n_val > 0 and done.target.source is None


def test_train_refuses_a_field_that_is_not_the_tasks(tmp_path):
    with pytest.raises(ConfigError, match="epoch"):
        fnas.train(ARCH, "digits", epoch=1, out=tmp_path / "x.safetensors")
    assert list(tmp_path.iterdir()) == []


def test_export_pt2_from_python_round_trips(trained, tmp_path):
    done, _ = trained
    out = tmp_path / "m.pt2"
    ex = fnas.export(format="pt2", out=out, weights=done.weights)
    assert ex.paths == (out,) and ex.check.ok and ex.engine == "torch.export.load"
    extra = {"fnas.model": ""}
    prog = torch.export.load(out, extra_files=extra)
    assert json.loads(extra["fnas.model"])["sha256"] == done.info.sha256
    x = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(prog.module()(x), fnas.load(done.weights)(x), atol=1e-5)


def test_export_pt2_fresh_init_is_the_stated_seed(tmp_path):
    """A pooling shortcut on an odd feature map (7 -> 4) exports and reloads exactly."""
    out = tmp_path / "fresh.pt2"
    ex = fnas.export(POOL_ARCH, "pt2", out, input_size=7, in_chans=3, num_classes=5, seed=3)
    assert ex.check.ok and ex.info is None and (ex.in_chans, ex.input_size) == (3, 7)
    torch.manual_seed(3)
    model = fnas.build(POOL_ARCH, num_classes=5, input_size=7, in_chans=3).eval()
    x = torch.randn(2, 3, 7, 7)
    with torch.no_grad():
        assert torch.allclose(torch.export.load(out).module()(x), model(x), atol=1e-5)


def test_export_spec_and_bad_format_from_python(tmp_path):
    ex = fnas.export("mnasnet_a1", out=tmp_path / "a1.json")
    assert [p.name for p in ex.paths] == ["a1.json", "a1.txt"] and ex.check is None
    assert json.loads(ex.paths[0].read_text())["key"] == ex.spec.key
    with pytest.raises(ConfigError, match="torchscript"):
        fnas.export("mnasnet_a1", "torchscript", tmp_path / "x.pt")
    with pytest.raises(ConfigError, match="give ARCH"):
        fnas.export(format="spec")
