"""The ``fnas`` CLI as a user runs it: a subprocess, good and bad input."""

import json
import subprocess
import sys

import pytest

from fast import cli_in_process


def fnas(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fnas.cli", *args], capture_output=True,
                          text=True, timeout=300)


def assert_one_line_error(p: subprocess.CompletedProcess, needle: str) -> None:
    assert p.returncode == 2, p
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    assert needle in lines[0] and "Traceback" not in p.stderr


def test_inspect_named_arch_json():
    p = fnas("inspect", "mnasnet_a1", "--json")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["params"] == 3_887_038
    assert abs(out["macs"] - 312e6) / 312e6 < 0.03
    assert len(out["blocks"]) == 9 and out["blocks"][2]["block"] == "ir_r2_k3_s2_e6_c24"


def test_inspect_block_string_table_and_latency():
    arch = "cn_r1_k3_s1_c16 | ir_r2_k5_s2_e6_c24_se0.25 | cn_r1_k1_s1_c64"
    p = fnas("inspect", arch, "--input-size", "8", "--classes", "10", "--in-chans", "1",
             "--latency")
    assert p.returncode == 0, p.stderr
    assert "ir_r2_k5_s2_e6_c24_se0.25" in p.stdout
    assert "total" in p.stdout and "latency" in p.stdout and "ms" in p.stdout


AS_PROGRAM = {("frobnicate",), ("train", "mnas_default", "--task", "imagenet")}
"""Bad-input cases below that run as the program (argparse's refusal, a config's); the
others go through the same ``main()`` in this process."""


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["inspect", "ir_r2_k4_s2_e6_c24"], "'k4'"),
        (["inspect", "cn_r1_k3_s1_c8 | | cn_r1_k1_s1_c8"], "empty block"),
        (["inspect", "resnet50"], "resnet50"),
        (["inspect", "mnasnet_a1", "--input-size", "abc"], "abc"),
        (["inspect", "mnasnet_a1", "--input-size", "0"], "'0'"),
        (["inspect"], "arch"),
        (["frobnicate"], "frobnicate"),
        (["train", "mnas_default", "--task", "imagenet"], "imagenet"),
        (["train", "mnas_default", "--task", "cifar10:/no/such/dir"], "/no/such/dir"),
        (["train", "mnas_default", "--epochs", "-3"], "-3"),
        (["train", "mnas_default", "--device", "warp9"], "warp9"),
        (["train", "mnas_default", "--target-latency", "5", "--target-macs", "3"], "not allowed"),
    ],
)
def test_bad_input_is_one_line(args, needle, capsys):
    if tuple(args) in AS_PROGRAM:
        assert_one_line_error(fnas(*args), needle)
        return
    code, _, err = cli_in_process(capsys, *args)  # the same main(), no torch-importing process
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert needle in err and "Traceback" not in err


@pytest.mark.slow
def test_train_smoke_on_digits(tmp_path):
    weights = tmp_path / "m.safetensors"
    p = fnas("train", "cn_r1_k3_s1_c16 | ir_r1_k3_s2_e3_c24 | cn_r1_k1_s1_c64", "--epochs", "4",
             "--target-macs", "0.1", "--json", "--out", str(weights))
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["weights"] == str(weights) and weights.is_file()
    assert out["status"] == "ok" and out["accuracy"] > 0.6
    assert out["macs"] > 0.1e6 and out["reward"] < out["accuracy"]  # over target: penalised
