"""Factorized spaces: the generic API, the MnasNet space, decisions <-> spec round trips."""

import numpy as np
import pytest

from fnas.errors import ConfigError, InvalidArchitecture
from fnas.space import (
    NAMED_ARCHS,
    ArchSpec,
    Decision,
    FactorizedSpace,
    arch_cost,
    mnas_default,
    mnas_space,
)


def test_mnas_space_shape():
    space = mnas_space(224)
    assert len(space) == 42  # 7 blocks x 6 decisions
    assert space.sizes[:6] == (4, 2, 2, 3, 3, 3)
    assert space.size == (4 * 2 * 2 * 3 * 3 * 3) ** 7


@pytest.mark.parametrize("input_size", [8, 14, 28, 32, 224])
def test_decisions_round_trip(input_size):
    space = mnas_space(input_size)
    rng = np.random.default_rng(1)
    for _ in range(200):
        idx = space.sample(rng)
        spec = space.decode(idx)
        back = space.encode(spec)
        assert space.decode(back) == spec
        # encode(decode(x)) == x except where two choices decode to the same block
        # (layers -1/0 on single-layer blocks), which the canonical index resolves.
        for i, (a, b) in enumerate(zip(idx, back, strict=True)):
            if a != b:
                name = space.decisions[i].name
                assert name.endswith("_layers") and name[1] in "06", name


def test_variants_change_widths_not_decisions():
    small, big = mnas_space(8), mnas_space(224)
    assert [d.choices for d in small.decisions] == [d.choices for d in big.decisions]
    assert small.signature != big.signature
    idx = small.sample(np.random.default_rng(0))
    assert small.decode(idx).to_str() != big.decode(idx).to_str()


def test_half_resolution_variant_shares_28s_weights_at_a_quarter_of_the_macs():
    """14x14 is 28x28's layout at half resolution: knowledge and pooled blocks carry over."""
    from fnas.space.cost import arch_cost

    half, full = mnas_space(14), mnas_space(28)
    assert half.decision_signature == full.decision_signature
    assert half.signature != full.signature
    rng = np.random.default_rng(3)
    for _ in range(5):
        idx = half.sample(rng)
        a, b = half.decode(idx), full.decode(idx)
        assert a.blocks == b.blocks  # same channels and strides: the same weights
        ratio = arch_cost(a, 14, 1, 10).macs / arch_cost(b, 28, 1, 10).macs
        assert 0.2 < ratio < 0.35, ratio


def test_filter_choices_stay_distinct():
    for size in (8, 14, 28, 32, 224):
        space = mnas_space(size)
        for i in range(7):
            chs = set()
            for r in (0.75, 1.0, 1.25):
                v = {d.name: d.choices[0] for d in space.decisions}
                v[f"b{i}_filters"] = r
                chs.add(space.decode(space.indices(v)).blocks[i + 1].out_chs)
            assert len(chs) == 3, (size, i, chs)


def test_unknown_variant():
    with pytest.raises(ConfigError, match="input size 64"):
        mnas_space(64)


def test_encode_rejects_non_members():
    space = mnas_space(224)
    a1 = ArchSpec.parse(NAMED_ARCHS["mnasnet_a1"])
    with pytest.raises(InvalidArchitecture, match="112 channels"):
        space.encode(a1)  # 112 = 1.17 x 96 lies between the filter grid points
    with pytest.raises(InvalidArchitecture, match="9 blocks"):
        space.encode(ArchSpec.parse("cn_r1_k3_s1_c8"))


def test_check_rejects_bad_indices():
    space = mnas_space(8)
    with pytest.raises(InvalidArchitecture, match="42 decisions"):
        space.decode((0,) * 3)
    with pytest.raises(InvalidArchitecture, match="b0_op"):
        space.decode((9,) + (0,) * 41)


def test_default_is_mobilenetv2_like():
    spec = mnas_default(224)
    assert [b.repeats for b in spec.blocks[1:-1]] == [1, 2, 3, 4, 3, 3, 1]
    assert [b.out_chs for b in spec.blocks[1:-1]] == [16, 24, 32, 64, 96, 160, 320]


def test_user_defined_space_from_readme():
    def decode(c):
        blocks = [f"cn_r1_k3_s1_c{c['stem']}"]
        blocks += [f"ir_r{c['depth']}_k{c['kernel']}_s2_e6_c{32 * 2**i}" for i in range(3)]
        return ArchSpec.parse(" | ".join(blocks))

    space = FactorizedSpace(
        "tiny",
        [Decision("stem", (16, 32)), Decision("kernel", (3, 5)), Decision("depth", (1, 2, 3))],
        decode,
    )
    assert space.size == 12
    arch = space.decode(space.sample(np.random.default_rng(0)))
    assert arch_cost(arch, 32, 3, 10).params > 0
    with pytest.raises(NotImplementedError):
        space.encode(arch)
    specs = {space.decode((a, b, c)).key for a in range(2) for b in range(2) for c in range(3)}
    assert len(specs) == 12
    with pytest.raises(InvalidArchitecture):
        FactorizedSpace("dup", [Decision("a", (1, 2)), Decision("a", (3,))], decode)
    with pytest.raises(InvalidArchitecture):
        Decision("x", (1, 1))


def test_sampling_is_seeded():
    space = mnas_space(8)
    a = [space.sample(np.random.default_rng(7)) for _ in range(3)]
    assert a[0] == a[1] == a[2]
    assert space.sample(np.random.default_rng(8)) != a[0]
