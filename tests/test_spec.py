"""Architecture strings: codec round trip, canonical keys, one-line errors, no torch."""

import subprocess
import sys

import numpy as np
import pytest

from fnas.errors import FnasError, InvalidArchitecture
from fnas.space import NAMED_ARCHS, ArchSpec, BlockSpec, mnas_space


@pytest.mark.parametrize("input_size", [8, 28, 32, 224])
def test_round_trip_random_space_members(input_size):
    space = mnas_space(input_size)
    rng = np.random.default_rng(input_size)
    for _ in range(200):
        spec = space.decode(space.sample(rng))
        s = spec.to_str()
        again = ArchSpec.parse(s)
        assert again == spec
        assert again.to_str() == s
        assert again.key == spec.key


@pytest.mark.parametrize(
    "block",
    ["ds_r1_k3_s1_e1_c16_noskip", "ir_r2_k3_s2_e6_c24_se0.25", "cn_r1_k3_s2_c32",
     "cn_r2_k5_s1_c8_skip", "ir_r3_k7_s1_e2.5_c40_nhs_poolskip", "ds_r1_k5_s2_e1_c8_se0.5_nsw"],
)
def test_block_round_trip(block):
    assert BlockSpec.parse(block).to_str() == block


@pytest.mark.parametrize("name", sorted(NAMED_ARCHS))
def test_named_archs_round_trip(name):
    spec = ArchSpec.parse(NAMED_ARCHS[name])
    assert ArchSpec.parse(spec.to_str()) == spec
    assert spec.to_str() == " | ".join(p.strip() for p in NAMED_ARCHS[name].split("|"))


def test_parse_fields():
    b = BlockSpec.parse("ir_r2_k5_s2_e6_c24_se0.25")
    assert (b.op, b.repeats, b.kernel, b.stride, b.exp, b.out_chs, b.se, b.skip, b.act) == (
        "ir", 2, 5, 2, 6.0, 24, 0.25, "id", "re")
    assert BlockSpec.parse("cn_r1_k3_s1_c8").skip == "none"
    assert BlockSpec.parse("ds_r1_k3_s1_e1_c8_noskip").skip == "none"


@pytest.mark.parametrize(
    ("text", "token"),
    [
        ("ir_r2_k4_s2_e6_c24", "k4"),
        ("ir_r2_k3_s2_e6_c24_foo", "foo"),
        ("xx_r2_k3_s2_e6_c24", "xx"),
        ("ir_r0_k3_s2_e6_c24", "r0"),
        ("ir_r1_k3_s2_e6_c24_se1.5", "se1.5"),
        ("ds_r1_k3_s1_e6_c24", "e6"),
        ("ir_r1_k3_s1_e6_c24_k5", "k5"),
        ("cn_r1_k3_s1_c8 | ir_r1_k3_s1_e0.5_c8", "e0.5"),
        ("cn_r1_k3_s1_c8_nzz", "nzz"),
    ],
)
def test_bad_strings_name_the_token(text, token):
    with pytest.raises(InvalidArchitecture) as e:
        ArchSpec.parse(text)
    msg = str(e.value)
    assert token in msg and "\n" not in msg
    assert isinstance(e.value, FnasError)


@pytest.mark.parametrize("text", ["", "   ", "cn_r1_k3_s1_c8 || cn_r1_k1_s1_c8", "ir_r1_k3_s1_c8"])
def test_bad_structure(text):
    with pytest.raises(InvalidArchitecture):
        ArchSpec.parse(text)


def test_canonical_key_merges_equivalent_networks():
    # The first layer of c24->c40 s2 never matches shapes, so noskip and id are the same net.
    a = ArchSpec.parse("cn_r1_k3_s2_c24 | ir_r1_k3_s2_e6_c40")
    b = ArchSpec.parse("cn_r1_k3_s2_c24 | ir_r1_k3_s2_e6_c40_noskip")
    assert a.to_str() != b.to_str() and a.key == b.key
    # ...but with two layers the second layer's identity makes them differ.
    c = ArchSpec.parse("cn_r1_k3_s2_c24 | ir_r2_k3_s2_e6_c40")
    d = ArchSpec.parse("cn_r1_k3_s2_c24 | ir_r2_k3_s2_e6_c40_noskip")
    assert c.key != d.key
    # A pooling shortcut over matching shapes is an identity.
    e = ArchSpec.parse("cn_r1_k3_s2_c24 | ir_r1_k3_s1_e6_c24_poolskip")
    f = ArchSpec.parse("cn_r1_k3_s2_c24 | ir_r1_k3_s1_e6_c24")
    assert e.key == f.key
    assert a.key != c.key


def test_space_and_spec_do_not_import_torch():
    code = ("import sys, fnas.space, fnas.errors; import numpy as np; "
            "s = fnas.space.mnas_space(224); a = s.decode(s.sample(np.random.default_rng(0))); "
            "fnas.space.arch_cost(a); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
