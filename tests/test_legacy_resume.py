"""Old stored runs and checkpoints still resume (issue 33): runs an older fnas stopped partway
resume with this one, along the public routes, to exactly what the older fnas recorded when it
resumed them itself.

The fixture is ``tests/data/legacy/``: ``stores/CASE/`` (a store folder as fnas c137b5c left
it: ``fnas.db``, the run's checkpoint, the knowledge pool's weight files) and
``expected.json`` (that fnas's records of each run resumed to its full budget), both made by
``tests/data/legacy/make_legacy.py`` (its docstring lists the cases and says how to
regenerate them). Each test copies a store to ``tmp_path`` (nothing is written into
``tests/data``), resumes it with the current code through ``fnas.create_search(...,
load_if_exists=True)``, ``fnas.search.resume_search`` or ``fnas search --resume``, and
compares every evaluation row and update row with the older fnas's, field by field. A stored
config or checkpoint the current code reads differently (a renamed or dropped setting, a
strategy state it restores otherwise) changes the rows or refuses the resume, and fails here.
"""

from __future__ import annotations

import importlib.util
import json
import math
import shutil
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest

LEGACY = Path(__file__).resolve().parent / "data" / "legacy"


def _load_fixture_module() -> Any:
    """``make_legacy`` under that name: the runs' objective is ``make_legacy.synth_metrics``
    (the stored task signature names it) and the tiny space is ``make_legacy:tiny_space``,
    which resuming imports by name."""
    if "make_legacy" not in sys.modules:
        spec = importlib.util.spec_from_file_location("make_legacy", LEGACY / "make_legacy.py")
        mod = importlib.util.module_from_spec(spec)
        sys.modules["make_legacy"] = mod
        spec.loader.exec_module(mod)
    return sys.modules["make_legacy"]


legacy = _load_fixture_module()
EXPECTED = json.loads((LEGACY / "expected.json").read_text())


def test_the_fixture_holds_every_case_made_by_older_code():
    assert EXPECTED["format"] == legacy.FORMAT
    assert EXPECTED["made_by"] == "fnas at c137b5c"  # before issue 33's restructuring
    assert sorted(EXPECTED["cases"]) == sorted(legacy.CASES)
    assert sorted(p.name for p in (LEGACY / "stores").iterdir()) == sorted(legacy.CASES)


def _as_stored(store: Path) -> tuple[str, int]:
    """The run's status and number of evaluations, read without opening it as a Store (which
    may migrate the database: the resume must be the first to touch it)."""
    con = sqlite3.connect(f"file:{store / 'fnas.db'}?immutable=1", uri=True)
    try:
        (exp_id, status), = con.execute("SELECT id, status FROM experiments WHERE name='run'")
        (rows,), = con.execute("SELECT COUNT(*) FROM evaluations WHERE experiment_id=?",
                               (exp_id,))
        return status, rows
    finally:
        con.close()


def _without_added(evaluations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows without the fields added after the fixture was made (schema v5): ``fidelity``,
    which must say what the older rows meant (1.0, the full protocol), and ``steps`` (the
    optimisation steps a training ran: new information, None or a count)."""
    out = []
    for g in evaluations:
        assert g.get("fidelity", repr(1.0)) == repr(1.0), g
        assert g.get("steps") is None or g["steps"] > 0, g
        out.append({k: v for k, v in g.items() if k not in ("fidelity", "steps")})
    return out


def _same(g: Any, w: Any) -> bool:
    """Equal, or for two numbers (stored as their ``repr``) equal to float rounding: torch's
    float32 kernels differ between CPU instruction sets (the fixture was made on an AVX2
    machine; on an AVX-512 one a log-probability differs in its 7th digit), so the old
    code's numbers are reproduced to within rounding, not bit for bit, on another CPU. A
    changed setting or restored state changes them far more, or changes an architecture, a
    slot or a status, which must match exactly."""
    if g == w:
        return True
    if isinstance(g, list) and isinstance(w, list):  # a recorded list of numbers
        return len(g) == len(w) and all(_same(a, b) for a, b in zip(g, w, strict=True))
    try:
        gf, wf = float(g), float(w)
    except (TypeError, ValueError):
        return False
    if isinstance(g, bool) or isinstance(w, bool) or not (math.isfinite(gf) and
                                                          math.isfinite(wf)):
        return False
    return math.isclose(gf, wf, rel_tol=1e-4, abs_tol=1e-7)


def _first_difference(got: dict[str, Any], want: dict[str, Any]) -> str | None:
    got = {**got, "evaluations": _without_added(got["evaluations"])}
    for key in ("status", "stop_reason"):
        if got[key] != want[key]:
            return f"{key}: {got[key]!r} != {want[key]!r}"
    for part in ("evaluations", "updates"):
        for i, (g, w) in enumerate(zip(got[part], want[part], strict=False)):
            diff = sorted(k for k in set(g) | set(w)
                          if not _same(g.get(k, "<absent>"), w.get(k, "<absent>")))
            if diff:
                k = diff[0]
                return (f"{part}[{i}] (iteration {w.get('iteration')}) field {k}: "
                        f"{g.get(k, '<absent>')!r} != {w.get(k, '<absent>')!r}"
                        + (f" (and {len(diff) - 1} more fields)" if len(diff) > 1 else ""))
        if len(got[part]) != len(want[part]):
            return f"{part}: {len(got[part])} rows != {len(want[part])}"
    return None


# the CLI route starts a Python process (torch and fnas imported again): 5 to 10 s
ROUTES = [pytest.param(c, r, marks=[pytest.mark.slow] if r == "cli" else [])
          for c in legacy.CASES for r in legacy.ROUTES[c]]


@pytest.mark.parametrize(("case", "route"), ROUTES)
def test_an_old_stopped_run_resumes_to_what_the_old_code_recorded(case, route, tmp_path):
    store = tmp_path / case
    shutil.copytree(LEGACY / "stores" / case, store)
    want = EXPECTED["cases"][case]
    status, rows = _as_stored(store)  # partway, so the resume must read the old checkpoint
    assert status in ("stopped", "interrupted")
    assert 0 < rows < len(want["evaluations"])
    assert (store / "runs" / "run" / "checkpoint.safetensors").is_file()

    legacy.resume(case, store, route)

    got = legacy.record(store)
    assert got["status"] == "done"
    diff = _first_difference(got, want)
    assert diff is None, f"{case} resumed along {route} differs from the old code's run: {diff}"


def test_numbers_match_to_rounding_and_the_rest_exactly():
    """What the comparison forgives: float rounding between CPUs, nothing more."""
    assert _same("-6.831232070922852", "-6.83123254776001")  # AVX-512 against AVX2
    assert _same(["0.968955", "1.0"], ["0.968956", "1.0"])
    assert not _same("0.5", "0.5001") and not _same(["0.5"], ["0.5", "1.0"])
    assert not _same("nan", "0.0") and not _same("inf", "1e308") and not _same(3, "3.01")
    assert not _same("ok", "error")
    assert not _same("cn_r1_k3_s1_c16", "cn_r1_k3_s1_c24") and not _same(None, "0.0")
