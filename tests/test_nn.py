"""Builder and blocks: every op/skip/SE variant builds, trains a step, and costs what it says."""

import itertools

import pytest
import torch
from torch import nn

from fnas.nn import LAYER_TYPES, build_model
from fnas.space import NAMED_ARCHS, ArchSpec, arch_cost, mnas_space


def count_macs(model: nn.Module, x: torch.Tensor) -> int:
    """Multiply-adds of one sample, counted from the convs and linears actually run."""
    total = 0

    def hook(m, inp, out):
        nonlocal total
        if isinstance(m, nn.Conv2d):
            per_out = m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]
            total += out[0].numel() * per_out
        elif isinstance(m, nn.Linear):
            total += m.in_features * m.out_features

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, (nn.Conv2d, nn.Linear))]
    model.eval()
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return total


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


OPS = {"ir": ["_e1", "_e3"], "ds": ["_e1"], "cn": [""]}
SKIPS = {"ir": ["", "_noskip", "_poolskip"], "ds": ["", "_noskip", "_poolskip"],
         "cn": ["", "_skip", "_poolskip"]}
VARIANTS = [
    f"{op}_r2_k{k}_s{s}{e}_c{c}{se}{act}{skip}"
    for op in OPS for e in OPS[op] for skip in SKIPS[op]
    for k, s, c, se, act in itertools.product([3, 5], [1, 2], [16, 24], ["", "_se0.25"], [""])
] + [f"ir_r1_k3_s1_e3_c16_n{a}" for a in ("r6", "sw", "hs")]


def _variant_spec(v: str) -> ArchSpec:
    return ArchSpec.parse(f"cn_r1_k3_s1_c16 | {v} | cn_r1_k1_s1_c32")


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_block_variant(variant):
    spec = _variant_spec(variant)
    assert spec.blocks[1].op in LAYER_TYPES
    torch.manual_seed(0)
    model = build_model(spec, in_chans=3, num_classes=5)
    x = torch.randn(4, 3, 9, 9)  # odd size: exercises ceil in strided layers and pool skips
    model.train()
    out = model(x)
    assert out.shape == (4, 5)
    out.square().mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
    assert torch.isfinite(out).all()
    cost = arch_cost(spec, 9, 3, 5)
    assert cost.params == n_params(model)
    assert cost.macs == count_macs(model, x[:1])
    for i, b in enumerate(cost.blocks):
        block_params = sum(p.numel() for p in model.blocks[i].parameters())
        assert b.params == block_params, (i, b.block)


def test_parameter_names_are_stable_per_block():
    spec = ArchSpec.parse("cn_r1_k3_s1_c8 | ir_r2_k3_s2_e3_c16_se0.25 | ds_r1_k3_s1_e1_c16")
    names = [n for n, _ in build_model(spec, 1, 10).named_parameters()]
    assert "blocks.0.0.conv.weight" in names
    assert "blocks.1.0.conv_pw.weight" in names and "blocks.1.1.conv_dw.weight" in names
    assert "blocks.1.0.se.conv_reduce.weight" in names
    assert "blocks.2.0.conv_pw.weight" in names and "classifier.weight" in names
    again = [n for n, _ in build_model(spec, 1, 10).named_parameters()]
    assert names == again


@pytest.mark.parametrize(
    ("name", "params", "macs", "p_tol", "m_tol"),
    [
        ("mnasnet_a1", 3.9e6, 312e6, 0.02, 0.03),  # MnasNet paper, Table 1
        ("mobilenetv2_100", 3.4e6, 300e6, 0.04, 0.03),  # MobileNetV2 paper (3.4M, 300M)
    ],
)
def test_reference_architectures(name, params, macs, p_tol, m_tol):
    spec = ArchSpec.parse(NAMED_ARCHS[name])
    cost = arch_cost(spec, 224, 3, 1000)
    assert abs(cost.params - params) / params <= p_tol, cost.params
    assert abs(cost.macs - macs) / macs <= m_tol, cost.macs
    model = build_model(spec, 3, 1000)
    assert n_params(model) == cost.params
    assert count_macs(model, torch.randn(1, 3, 224, 224)) == cost.macs


def test_timm_param_counts_exact():
    # timm's mnasnet_a1 and mobilenetv2_100 have exactly these parameter counts.
    assert arch_cost(ArchSpec.parse(NAMED_ARCHS["mnasnet_a1"])).params == 3_887_038
    assert arch_cost(ArchSpec.parse(NAMED_ARCHS["mobilenetv2_100"])).params == 3_504_872


@pytest.mark.parametrize("input_size", [8, 28, 32])
def test_random_space_members_build_and_cost(input_size):
    import numpy as np

    space = mnas_space(input_size)
    rng = np.random.default_rng(0)
    for _ in range(4):
        spec = space.decode(space.sample(rng))
        model = build_model(spec, 1, 10)
        x = torch.randn(2, 1, input_size, input_size)
        assert model(x).shape == (2, 10)
        cost = arch_cost(spec, input_size, 1, 10)
        assert cost.params == n_params(model)
        assert cost.macs == count_macs(model, x[:1])
