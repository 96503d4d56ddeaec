"""Block similarity and role-based weight transfer (fnas.nn.transfer), on tiny models."""

import itertools

import pytest
import torch

from fnas.nn import build_model
from fnas.nn.transfer import (
    SimilarityWeights,
    block_distance,
    fresh_state_dict,
    is_buffer,
    rank_candidates,
    split_blocks,
    transfer_block,
)
from fnas.space import ArchSpec, BlockSpec, arch_cost

IN = 3
STEM, HEAD = "cn_r1_k3_s1_c8", "cn_r1_k1_s1_c16"
# Stage 1 of "STEM | variant | HEAD" (input 8 channels): every op, with/without SE, both
# kernels, several widths, depths, strides, skips and an activation.
VARIANTS = [
    "ir_r2_k3_s1_e3_c8",
    "ir_r1_k5_s2_e6_c12_se0.25",
    "ir_r2_k3_s1_e1_c8_se0.25_poolskip",
    "ir_r3_k5_s1_e6_c6_nsw_noskip",
    "ds_r1_k3_s1_e1_c8",
    "ds_r3_k5_s2_e1_c12_se0.25_poolskip",
    "cn_r1_k3_s1_c8",
    "cn_r2_k5_s1_c12_se0.25_skip",
    "cn_r1_k3_s2_c6_poolskip",
]
# The test's own reading of each tensor's role (independent of fnas.nn.transfer's table).
ROLE = {
    "ir": {"conv_pw": "expand", "bn1": "expand_bn", "conv_dw": "dw", "bn2": "dw_bn",
           "se": "dw_se", "conv_pwl": "proj", "bn3": "proj_bn", "shortcut": "shortcut"},
    "ds": {"conv_dw": "dw", "bn1": "dw_bn", "se": "dw_se", "conv_pw": "proj", "bn2": "proj_bn",
           "shortcut": "shortcut"},
    "cn": {"conv": "conv", "bn1": "conv_bn", "se": "conv_se", "shortcut": "shortcut"},
}


def arch(block: str) -> ArchSpec:
    return ArchSpec.parse(f"{STEM} | {block} | {HEAD}")


def trained_state(spec: ArchSpec, seed: int) -> dict[str, torch.Tensor]:
    """A state dict with every tensor randomised (BN variances positive), as if trained."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for k, v in build_model(spec, IN, 10).state_dict().items():
        if v.dtype == torch.long:
            out[k] = torch.tensor(100 + seed)
        elif k.endswith("running_var"):
            out[k] = torch.rand(v.shape, generator=g) + 0.5
        else:
            out[k] = torch.randn(v.shape, generator=g)
    return out


def find_source(src_op, src_layers, src_block, dst_op, name):
    """The source tensor (or None) that block-relative destination ``name`` must copy from."""
    j, module, rest = name.split(".", 2)
    role = ROLE[dst_op][module]
    sj = min(int(j), src_layers - 1)
    for k, t in src_block.items():
        sj2, smod, srest = k.split(".", 2)
        if int(sj2) == sj and ROLE[src_op][smod] == role and srest == rest:
            return t
    return None


def expected(src: torch.Tensor, fresh: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Reference copy: channel dims take the first min(C); kernel dims are centred."""
    out = fresh.clone()
    if fresh.dim() == 0:
        return src.clone(), 1
    m = [min(a, b) for a, b in zip(src.shape, fresh.shape, strict=True)]
    if fresh.dim() < 4:
        out[tuple(slice(0, n) for n in m)] = src[tuple(slice(0, n) for n in m)]
        return out, src[tuple(slice(0, n) for n in m)].numel()
    ks, kd = src.shape[2], fresh.shape[2]
    s = src[: m[0], : m[1]]
    if ks >= kd:
        o = (ks - kd) // 2
        out[: m[0], : m[1]] = s[:, :, o:o + kd, o:o + kd]
        return out, m[0] * m[1] * kd * kd
    o = (kd - ks) // 2
    out[: m[0], : m[1]] = 0
    out[: m[0], : m[1], o:o + ks, o:o + ks] = s
    return out, m[0] * m[1] * ks * ks


def load_checked(model: torch.nn.Module, weights: dict[str, torch.Tensor]) -> None:
    own = model.state_dict()
    for k, v in weights.items():
        assert k in own and own[k].shape == v.shape and own[k].dtype == v.dtype, k
    model.load_state_dict(weights, strict=False)


@pytest.mark.parametrize("src_s,dst_s", list(itertools.product(VARIANTS, VARIANTS)))
def test_transfer_every_pair(src_s, dst_s):
    src_spec, dst_spec = arch(src_s), arch(dst_s)
    src_b, dst_b = src_spec.blocks[1], dst_spec.blocks[1]
    src = split_blocks(trained_state(src_spec, 1))[1]
    fresh = split_blocks(fresh_state_dict(dst_spec, IN, 10, seed=7))[1]
    bt = transfer_block(src_b, src, dst_b, fresh)

    copied = 0
    for name, f in fresh.items():
        s = find_source(src_b.op, src_b.repeats, src, dst_b.op, name)
        if s is None:
            assert name not in bt.tensors, f"{name} has no counterpart but was set"
            continue
        assert name in bt.tensors, f"{name} has a counterpart but was not copied"
        want, n = expected(s, f)
        assert torch.equal(bt.tensors[name], want), name
        copied += 0 if is_buffer(name) else n
    assert bt.copied == copied
    # The coverage denominator is the block's analytic parameter count.
    assert bt.total == arch_cost(dst_spec, 8, IN, 10).blocks[1].params
    if src_b.op == dst_b.op or {src_b.op, dst_b.op} == {"ir", "ds"}:
        assert bt.copied > 0  # the dw/proj (or conv) roles always carry over
    # Shapes are valid: the model loads the dict and runs forward in both modes.
    model = build_model(dst_spec, IN, 10)
    load_checked(model, {f"blocks.1.{k}": v for k, v in bt.tensors.items()})
    x = torch.randn(2, IN, 8, 8)
    for train in (True, False):
        model.train(train)
        with torch.no_grad():
            assert torch.isfinite(model(x)).all()


@pytest.mark.parametrize("block", VARIANTS)
def test_identical_config_reproduces_outputs(block):
    spec = arch(block)
    trained = trained_state(spec, 3)
    src = build_model(spec, IN, 10)
    src.load_state_dict(trained)
    fresh = split_blocks(fresh_state_dict(spec, IN, 10, seed=11))
    dst = build_model(spec, IN, 10)
    for i, b in enumerate(spec.blocks):
        bt = transfer_block(b, split_blocks(trained)[i], b, fresh[i])
        assert bt.coverage == 1.0 and set(bt.tensors) == set(fresh[i])
        load_checked(dst, {f"blocks.{i}.{k}": v for k, v in bt.tensors.items()})
    src.eval()
    dst.eval()
    x = torch.randn(3, IN, 8, 8)
    with torch.no_grad():
        assert torch.equal(src.blocks[1](src.blocks[0](x)), dst.blocks[1](dst.blocks[0](x)))
        assert torch.equal(src.forward_features(x), dst.forward_features(x))


def test_coverage_hand_count():
    # src ir k5 e3 c8 (in 8, mid 24); dst ir r2 k3 e6 c12 (layer 0: in 8, mid 48; layer 1:
    # in 12, mid 72; shapes never match on layer 0, so no shortcut).
    src_b, dst_b = BlockSpec.parse("ir_r1_k5_s1_e3_c8"), BlockSpec.parse("ir_r2_k3_s1_e6_c12")
    src = split_blocks(trained_state(arch(src_b.to_str()), 0))[1]
    fresh = split_blocks(fresh_state_dict(arch(dst_b.to_str()), IN, 10, seed=0))[1]
    bt = transfer_block(src_b, src, dst_b, fresh)
    # total: layer 0: pw 48*8 + bn 2*48 + dw 48*9 + bn 2*48 + pwl 12*48 + bn 2*12 = 1608
    #        layer 1: pw 72*12 + bn 2*72 + dw 72*9 + bn 2*72 + pwl 12*72 + bn 2*12 = 2688
    assert bt.total == 1608 + 2688
    # copied, per layer (layer 1 copies the source's only layer again):
    # pw 24*8, bn1 2*24, dw 24*(3*3 centre crop), bn2 2*24, pwl 8*24, bn3 2*8 = 712
    assert bt.copied == 2 * (24 * 8 + 48 + 24 * 9 + 48 + 8 * 24 + 16)
    assert bt.coverage == pytest.approx(1424 / 4296)
    # The crop is the centre 3x3 of the 5x5 kernel; running stats move with their channels.
    assert torch.equal(bt.tensors["1.conv_dw.weight"][:24], src["0.conv_dw.weight"][:, :, 1:4, 1:4])
    assert torch.equal(bt.tensors["0.bn2.running_var"][:24], src["0.bn2.running_var"])
    assert torch.equal(bt.tensors["0.bn2.running_var"][24:], fresh["0.bn2.running_var"][24:])


def test_kernel_pad_is_centred_with_zeros():
    src_b, dst_b = BlockSpec.parse("ds_r1_k3_s1_e1_c8"), BlockSpec.parse("ds_r1_k5_s1_e1_c8")
    src = split_blocks(trained_state(arch(src_b.to_str()), 0))[1]
    fresh = split_blocks(fresh_state_dict(arch(dst_b.to_str()), IN, 10, seed=0))[1]
    w = transfer_block(src_b, src, dst_b, fresh).tensors["0.conv_dw.weight"]  # (8, 1, 5, 5)
    assert torch.equal(w[:, :, 1:4, 1:4], src["0.conv_dw.weight"])
    border = w.clone()
    border[:, :, 1:4, 1:4] = 0
    assert not border.any()


def test_no_counterpart_keeps_fresh_init():
    # A regular conv shares nothing with a depthwise block (no pooling shortcut on either).
    src_b, dst_b = BlockSpec.parse("cn_r1_k3_s1_c8_se0.25"), BlockSpec.parse("ir_r1_k3_s1_e3_c8")
    src = split_blocks(trained_state(arch(src_b.to_str()), 0))[1]
    fresh = split_blocks(fresh_state_dict(arch(dst_b.to_str()), IN, 10, seed=0))[1]
    bt = transfer_block(src_b, src, dst_b, fresh)
    assert bt.tensors == {} and bt.copied == 0 and bt.total > 0
    # An SE head comes only from an SE head.
    src_b = BlockSpec.parse("ir_r1_k3_s1_e3_c8")
    se_dst = BlockSpec.parse("ir_r1_k3_s1_e3_c8_se0.25")
    fresh = split_blocks(fresh_state_dict(arch(se_dst.to_str()), IN, 10, seed=0))[1]
    src = split_blocks(trained_state(arch(src_b.to_str()), 0))[1]
    bt = transfer_block(src_b, src, se_dst, fresh)
    assert not any(".se." in k for k in bt.tensors) and "0.conv_dw.weight" in bt.tensors


def test_fresh_state_matches_rollout_build_and_keeps_global_rng():
    spec = arch(VARIANTS[1])
    state = torch.get_rng_state()
    a = fresh_state_dict(spec, IN, 10, seed=5)
    assert torch.equal(state, torch.get_rng_state())
    torch.manual_seed(5)
    b = build_model(spec, IN, 10).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in b)


def test_distance_is_zero_only_for_identical_and_symmetric():
    blocks = [BlockSpec.parse(v) for v in VARIANTS]
    for a, b in itertools.product(blocks, blocks):
        d = block_distance(a, 8, b, 8)
        assert d == block_distance(b, 8, a, 8)
        assert (d == 0) == (a == b)
    a = BlockSpec.parse("ir_r2_k3_s1_e6_c12")
    assert block_distance(a, 8, a, 12) > 0  # input width counts too


def test_rank_closest_first_ties_freshest():
    t = BlockSpec.parse("ir_r2_k3_s1_e6_c12")
    cands = [
        (BlockSpec.parse("ir_r2_k3_s1_e6_c12"), 8),  # 0: exact, older
        (BlockSpec.parse("cn_r2_k3_s1_c12"), 8),  # 1: other op
        (BlockSpec.parse("ir_r2_k5_s1_e6_c12"), 8),  # 2: other kernel
        (BlockSpec.parse("ir_r2_k3_s1_e6_c12"), 8),  # 3: exact, fresher
        (BlockSpec.parse("ir_r3_k3_s1_e6_c12"), 8),  # 4: one more layer
    ]
    order = [i for i, _ in rank_candidates(t, 8, cands)]
    assert order[:2] == [3, 0]
    assert order[-1] == 1  # a different op is the farthest
    assert order.index(4) < order.index(2)  # |dr| = 1 costs half of |dk| = 2
    # The weights are the user's: with kernels free, the kernel variant ties the exact ones
    # and, being fresher than entry 0, comes before it.
    order = [i for i, _ in rank_candidates(t, 8, cands, SimilarityWeights(kernel=0.0))]
    assert order[:3] == [3, 2, 0]
