"""benchmarks/equivalence.py (issue 33): its dump is the same run to run, and its compare
notices a changed reward.

Two tiny cases (random search and regularized evolution on a user space with a synthetic
objective, 32 evaluations each) run in this process, twice: about 1 s.
"""

from __future__ import annotations

import json

import pytest

CASES = ["synth-random", "synth-rea"]


@pytest.fixture(scope="module")
def eq(bench_script):
    return bench_script("equivalence")


@pytest.fixture(scope="module")
def dumps(eq, tmp_path_factory):
    """The two cases dumped twice, as ``dump`` writes them."""
    out = []
    for i in range(2):
        d = eq.dump_cases(CASES, None, eq.REPO / "src", log=lambda line: None)
        p = tmp_path_factory.mktemp("eq") / f"dump{i}.json"
        p.write_text(json.dumps(d, sort_keys=True, indent=1) + "\n")
        out.append(p)
    return out


def test_dump_twice_is_identical(eq, dumps, capsys):
    a, b = dumps
    assert a.read_bytes() == b.read_bytes()
    cases = json.loads(a.read_text())["cases"]
    assert sorted(cases) == CASES
    for rec in cases.values():
        assert len(rec["evaluations"]) == 32 and rec["status"] == "done"
        row = rec["evaluations"][0]
        assert isinstance(row["reward"], str) and float(row["reward"]) > 0  # repr(float)
        assert "created" not in row and "train_seconds" not in row
        assert rec["checkpoint"]["sha256"]
    assert eq.main(["compare", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "synth-random" in out and "2 case(s) compared: all identical" in out


def test_compare_finds_a_changed_reward(eq, dumps, tmp_path, capsys):
    d = json.loads(dumps[0].read_text())
    row = d["cases"]["synth-rea"]["evaluations"][5]
    row["reward"] = repr(float(row["reward"]) + 1e-12)
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps(d, sort_keys=True, indent=1) + "\n")
    assert eq.main(["compare", str(dumps[0]), str(tampered)]) == 1
    out = capsys.readouterr().out
    assert "synth-random                   identical" in out
    assert (f"synth-rea                      DIFFERS at evaluations[5] (iteration "
            f"{row['iteration']}, slot {row['slot']}).reward") in out
    assert "NOT identical" in out
    del d["cases"]["synth-random"]  # a case missing from one dump is a difference
    tampered.write_text(json.dumps(d))
    assert eq.main(["compare", str(dumps[1]), str(tampered)]) == 1
    assert "only in A" in capsys.readouterr().out
