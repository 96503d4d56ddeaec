"""benchmarks/knowledge_shift.py --rows: one row run, the others carried from the committed
JSON with the date they ran, and the summary rebuilt from both exactly as it was."""

from __future__ import annotations

import argparse
import json


def committed(ks):
    """A committed knowledge_shift.json for one pair (macro-invert) of hand-made rows."""
    rows = {}
    for i, row in enumerate(("scratch", "weigh", "judge", "hedge")):
        per_seed = [10 + i, 20 + i, None]
        e = {"per_seed": per_seed, "median": 20.0 + i, "q25": 10.0 + i, "q75": float("inf")}
        if row != "scratch":
            e["trust_curves"] = [{"n_trained": [8, 16], "trust": [0.5, 0.1 * i],
                                  "weight": [1, 1], "share": [0.9, 0.1]}]
        if row == "weigh":
            e["carried_from"] = "2026-12-01 00:00"
        rows[row] = e
    return {"meta": {"date": "2026-12-07 11:16"}, "pairs": {"macro-invert": {"rows": rows}}}


def test_rows_not_run_are_carried_with_their_date_and_summarised_as_committed(
        bench_script, tmp_path):
    ks = bench_script("knowledge_shift")
    out, work = tmp_path / "out", tmp_path / "work"
    out.mkdir()
    (out / "knowledge_shift.json").write_text(json.dumps(committed(ks)))
    work.mkdir()
    own = ks._file(work, "macro-invert", "hedge")  # a row run here is never overwritten
    own.write_text(json.dumps({"summary": {"per_seed": [5, 5, 5]}, "trust": []}))
    carried = ks.carry(work, out, ["macro-invert"], {"hedge-b"})
    assert carried == ["macro-invert:scratch", "macro-invert:weigh", "macro-invert:judge"]
    assert not ks._file(work, "macro-invert", "hedge-b").exists()  # the row to run
    assert not ks._file(work, "macro-invert", "hedge-s").exists()  # nothing committed
    weigh = json.loads(ks._file(work, "macro-invert", "weigh").read_text())
    assert weigh["carried_from"] == "2026-12-01 00:00"  # its own date, not the file's
    judge = json.loads(ks._file(work, "macro-invert", "judge").read_text())
    assert judge["carried_from"] == "2026-12-07 11:16"
    ks._file(work, "macro-invert", "hedge-b").write_text(json.dumps(
        {"summary": {"per_seed": [9, 30, 40]}, "trust": []}))
    res = ks.summarise(work, tmp_path / "new", argparse.Namespace(budget=200, seeds=3,
                                                                 source_budget=100))
    rows = res["macro-invert"]["rows"]
    assert rows["weigh"]["per_seed"] == [11, 21, None] and rows["weigh"]["median"] == 21
    assert rows["weigh"]["trust_curves"][0]["trust"] == [0.5, 0.1]
    assert rows["hedge"]["per_seed"] == [5, 5, 5] and "carried_from" not in rows["hedge"]
    assert rows["hedge-b"]["median"] == 30 and rows["hedge-b"]["ratio_of_medians"] == 1.5
    assert rows["judge"]["carried_from"] == "2026-12-07 11:16"


def test_an_unknown_row_is_refused_in_one_line(bench_script, tmp_path, capsys, monkeypatch):
    ks = bench_script("knowledge_shift")
    table = tmp_path / "t.json"
    table.write_text("{}")
    monkeypatch.setattr("sys.argv", ["knowledge_shift.py", "--data", str(table), "--rows",
                                     "hedge-x", "--work", str(tmp_path / "w")])
    assert ks.main() == 2
    err = capsys.readouterr().err.strip()
    assert "unknown row 'hedge-x'" in err and len(err.splitlines()) == 1
