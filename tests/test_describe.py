"""A run is described by what it really is: ``fnas show`` and ``fnas report`` name a user's
objective (never the digits training it did not do), leave out plots with nothing to show and
the export hint where nothing can be exported; plots count updates in whole numbers, and
``fnas bench`` keeps every strategy's curve visible.

The runs here are random searches of a plain function on a small ``make_space`` space: no
training, a fraction of a second each. The proxy task's description is checked on the real
tiny runs of ``test_report.py``.
"""

import json
import warnings
from types import SimpleNamespace

import pytest

import fnas
from fnas.cli import main
from fnas.knowledge import Store, describe_run
from fnas.report import (
    RunData,
    load_run,
    plot_bench,
    plot_best,
    plot_entropy,
    plot_knowledge,
    plot_pareto,
    plot_replay,
    plot_screening,
    write_report,
)
from fnas.tasks import RewardConfig

SPACE = fnas.make_space("desc-mlp", {"width": [16, 32, 64], "depth": [1, 2, 3]})


def score(arch):
    return 0.5 + arch["width"] / 200 + arch["depth"] / 20


def timed(arch):
    """Accuracy and a latency over two decades: one slow architecture among fast ones."""
    return {"accuracy": score(arch),
            "latency_ms": 0.5 * arch["depth"] * (100 if arch["width"] == 64 else 1)}


@pytest.fixture
def store(tmp_path):
    """Two runs of functions (budget 6: both batches of the random search, some repeats)."""
    root = tmp_path / "store"
    for name, objective, kw in (("mine", score, {}),
                                ("timed", timed, {"version": 3,
                                                  "reward": RewardConfig("latency", 5.0)})):
        fnas.create_search(store=root, name=name, space=SPACE, objective=objective,
                           strategy="random", budget=6, batch=3, **kw).optimize(progress=False)
    return root


def test_show_names_the_objective_and_no_proxy_task(store, capsys):
    assert main(["show", "mine", "--store", str(store)]) == 0
    out = capsys.readouterr().out
    assert "digits" not in out and "epoch" not in out and "latency target" not in out
    assert "objective score (test_describe.score), fingerprint " in out
    assert "space     desc-mlp" in out
    assert not any(line.startswith("reward") for line in out.splitlines())  # no cost target
    assert main(["show", "timed", "--store", str(store)]) == 0
    out = capsys.readouterr().out
    assert "objective timed (test_describe.timed), version 3" in out
    assert "reward    5 ms latency target (soft)" in out  # the objective's, recorded
    assert main(["show", "mine", "--store", str(store), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)["description"]
    assert d["kind"] == "objective" and d["signature"].startswith("objective:test_describe.score#")


def test_report_of_an_objective_leaves_out_empty_plots_and_the_export_hint(store, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib's "No artists with labels" among them
        with Store(store, readonly=True, create=False) as s:
            mine = write_report(s, ["mine"], tmp_path / "mine.html").read_text()
            both = write_report(s, ["mine", "mine"], tmp_path / "both.html").read_text()
            timed = write_report(s, ["timed"], tmp_path / "timed.html").read_text()
    for page in (mine, both):  # no evaluation has a cost: no accuracy-against-cost plot
        assert "Accuracy against cost" not in page and 'alt="pareto"' not in page
    summary = mine.split("<h2>Config</h2>")[0]  # the config lists the unused task's defaults
    assert "fnas export" not in mine and "fnas train" not in mine and "digits" not in summary
    assert "space=your_space, load_if_exists=True" in mine  # the best's values, from Python
    assert "search of objective score (test_describe.score)" in mine
    assert 'title="objective:test_describe.score#' in mine  # the full signature, on hover
    assert "latency ms" not in mine and "latency ms" in timed  # empty columns left out
    assert "Accuracy against cost" in timed and "Knowledge pool" not in timed


def test_cost_on_a_log_axis_and_counts_in_whole_numbers(store):
    with Store(store, readonly=True, create=False) as s:
        timed = load_run(s, "timed")
    assert describe_run(timed.exp).kind == "objective"
    fig = plot_pareto([timed])
    assert fig.axes[0].get_xscale() == "log"  # 0.5 ms to 150 ms: the fast front stays apart
    assert fig.axes[0].get_ylabel() == "accuracy"  # the objective's, not held-out images'
    # three updates, three rounds: a linear locator would tick at 1.5 and 2.5
    ups = [{"iteration": i, "n_trained": i + 1, "controller/entropy": 1.0 - 0.1 * i,
            "replay/c": [0.5, 1.0], "replay/c_p50": 0.8, "screen/screened": 5,
            "critic/pick_tau": 0.1 * i, "knowledge/trust": 0.5, "knowledge/share": 0.2}
           for i in range(3)]
    evals = [SimpleNamespace(trained=True, train_seconds=1.0, counts=True, reward=r)
             for r in (0.1, 0.3, 0.2)]
    run = RunData(timed.exp, evals, ups, timed.summary, [])
    figs = [plot_best([run]), plot_entropy(run), plot_replay(run), plot_screening(run),
            plot_knowledge(run)]
    counted = [figs[0].axes[0], figs[1].axes[0], figs[2].axes[1], *figs[3].axes,
               figs[4].axes[0]]
    for ax in counted:
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks), (ax.get_xlabel(), ticks)
    assert plot_best([RunData(timed.exp, [], [], timed.summary, [])]) is None  # nothing yet


def test_bench_plot_keeps_every_strategy_visible():
    same = {"best": [0.1, 0.2, 0.2, 0.3]}  # random and REA agree all the way
    result = {"config": {"budget": 4, "bench": "proxy",
                         "task": {"dataset": "digits", "epochs": 1}},
              "runs": [{"strategy": s, "history": same} for s in ("fnas", "rea", "random")]}
    lines = plot_bench(result).axes[0].get_lines()[:3]
    assert [ln.get_label() for ln in lines] == ["fnas (n=1)", "rea (n=1)", "random (n=1)"]
    assert len({ln.get_linestyle() for ln in lines}) == 3
    assert len({ln.get_marker() for ln in lines}) == 3
    # the later curve lies on top, thinner: the one beneath shows around it
    assert lines[2].get_zorder() > lines[1].get_zorder()
    assert lines[2].get_linewidth() < lines[1].get_linewidth()


@pytest.mark.parametrize("signature, config, label, text, reward", [
    ("proxy|digits|val=0.2|...", {"task": {"dataset": "cifar10", "epochs": 1},
                                  "reward": {"metric": "latency", "target": 80.0}},
     "task", "cifar10, 1 epoch", "80 ms latency target (soft)"),
    ("objective:pkg.mod.make.<locals>.f@v2", {"objective": "objective:pkg.mod.make.<locals>.f@v2"},
     "objective", "f (pkg.mod.make.<locals>.f), version v2", None),
    ("macro|/data/nas-bench-macro_cifar10.json|noisy=False|", {"reward": {"metric": "macs",
                                                                         "target": 2e8}},
     "evaluator", "NAS-Bench-Macro table nas-bench-macro_cifar10.json",
     "200M multiply-adds target (soft)"),
    ("proxy|x", {"task": "damaged", "reward": {"target": "?!"}}, "task", "?, ? epochs",
     "? target ?!"),
])
def test_describe_run_from_the_record_alone(signature, config, label, text, reward):
    exp = SimpleNamespace(task_signature=signature, config=config, space_signature="s-1")
    d = describe_run(exp)
    assert (d.label, d.text, d.reward, d.signature) == (label, text, reward, signature)
