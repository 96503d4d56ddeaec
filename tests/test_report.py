"""``fnas report``: a self-contained HTML file for a real tiny run, and runs compared."""

import base64
import json
import subprocess
import sys
from html.parser import HTMLParser

import pytest

from fnas.knowledge import Store
from fnas.report.html import best_so_far, load_run, pareto_front
from fnas.search import SearchConfig, run_search
from fnas.tasks import RewardConfig, TaskConfig

from fast import TINY_TASK, cli_in_process

# a real search in a module fixture, reports in subprocesses; one xdist worker builds the fixture
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("report")]

TASK = TaskConfig(**TINY_TASK, epochs=1)  # real trainings on 100 images (tests/fast.py)
PNG = b"\x89PNG\r\n\x1a\n"


class Page(HTMLParser):
    """Collects images, headings, external references and checks tags are balanced."""

    VOID = {"meta", "img", "br", "hr", "link", "input"}

    def __init__(self):
        super().__init__()
        self.images, self.h2, self.external, self.stack, self.errors = [], [], [], [], []
        self._in_h2 = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.images.append(a)
        for k in ("src", "href"):
            if a.get(k, "").startswith(("http:", "https:", "//")):
                self.external.append(a[k])
        if tag == "h2":
            self._in_h2 = True
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if tag == "h2":
            self._in_h2 = False
        if not self.stack or self.stack.pop() != tag:
            self.errors.append(tag)

    def handle_data(self, data):
        if self._in_h2:
            self.h2.append(data.strip())


def parse(path):
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    page.close()
    assert not page.errors and not page.stack, (page.errors, page.stack)
    assert not page.external, page.external  # opens offline
    for img in page.images:  # every plot embedded, and a real PNG
        src = img["src"]
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1]).startswith(PNG)
    return page


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    s = Store(root)
    reward = RewardConfig(metric="macs", target=2e6)
    # fnas: critic, pool and replay on; a short warm-up so that it screens from update 3
    run_search(s, SearchConfig(budget=10, batch=2, task=TASK, reward=reward, seed=0,
                               fnas={"screen": {"n_init": 4, "candidates": 64}}),
               name="full", progress=False)
    run_search(s, SearchConfig(strategy="random", budget=4, batch=2, task=TASK, reward=reward,
                               seed=1), name="rand", progress=False)
    yield s
    s.close()


def fnas(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "fnas.cli", *args], capture_output=True,
                          text=True, timeout=300, cwd=cwd)


def test_report_of_a_real_run_is_self_contained_html(store, tmp_path):
    out = tmp_path / "r.html"
    p = fnas("report", "full", "--store", str(store.root), "--out", str(out))
    assert p.returncode == 0, p.stderr
    assert str(out) in p.stdout
    page = parse(out)
    for section in ("Best-so-far reward", "Accuracy against cost", "Top architectures",
                    "Policy entropy", "Screening", "Critic", "Knowledge pool", "Replay buffer",
                    "Config"):
        assert section in page.h2, (section, page.h2)
    alts = {i["alt"] for i in page.images}
    assert {"best so far", "pareto", "entropy", "screening", "critic", "pool", "replay"} <= alts
    n = sum(u["screen/screened"] for u in load_run(store, "full").updates)
    assert n > 0 and f"screened {n:.0f}, trained 10" in out.read_text()
    text = out.read_text()
    run = load_run(store, "full")
    assert run.top[0].arch in text  # the best architecture's block string, in the table
    assert json.dumps(run.exp.config["reward"]["target"]) in text  # the config
    assert "target T = 2" in text or "T" in text
    # a proxy-task run is described as one, and its networks can be exported
    assert "search of task digits, 1 epoch;" in text and "2M multiply-adds target" in text
    assert "architecture (block string)" in text and "fnas export full:1" in text


def test_show_describes_the_proxy_task(store, capsys):
    from fnas.cli import main

    assert main(["show", "full", "--store", str(store.root)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "task      digits, 1 epoch" in out and "reward    2M multiply-adds target (soft)" in out
    assert not any(line.startswith("objective") for line in out)


def test_report_without_critic_pool_or_replay_says_so(store, tmp_path):
    out = tmp_path / "rand.html"
    p = fnas("report", "rand", "--store", str(store.root), "--out", str(out))
    assert p.returncode == 0, p.stderr
    page = parse(out)
    text = out.read_text()
    assert "knowledge pool was off" in text and "Replay was off" in text
    assert "keeps no policy" in text
    assert {i["alt"] for i in page.images} == {"best so far", "pareto"}


def test_compare_puts_runs_on_the_same_axes(store, tmp_path):
    p = fnas("report", "--compare", "full", "rand", "--store", str(store.root), cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    out = tmp_path / "fnas-compare.html"
    page = parse(out)
    text = out.read_text()
    assert "2 runs compared" in text and "full" in text and "rand" in text
    assert {i["alt"] for i in page.images} == {"best so far", "pareto"}


def test_report_bad_input_is_one_line(store, tmp_path, capsys):
    cases = [(["report", "ghost", "--store", str(store.root)], "ghost"),
             (["report", "--store", str(store.root)], "name one run"),
             (["report", "full", "--compare", "rand", "--store", str(store.root)], "not both"),
             (["report", "full", "--store", str(tmp_path / "none")], "no fnas store"),
             (["report", "full", "--store", str(store.root), "--out",
               str(tmp_path / "no" / "dir" / "r.html")], "cannot write")]
    for i, (args, needle) in enumerate(cases):
        if i == 0:  # one as the program; the others through the same main() in this process
            p = fnas(*args)
            code, err = p.returncode, p.stderr
        else:
            code, _, err = cli_in_process(capsys, *args)
        assert code == 2, (args, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and needle in lines[0], (args, err)


def test_best_so_far_and_pareto_front(store):
    run = load_run(store, "full")
    n, secs, best = best_so_far(run)
    assert len(best) >= 2 and all(b2 >= b1 for b1, b2 in zip(best, best[1:], strict=False))
    assert n[-1] == run.summary["trained"] and best[-1] == pytest.approx(
        run.summary["best_reward"])
    assert all(s2 >= s1 for s1, s2 in zip(secs, secs[1:], strict=False))
    pts = [(1.0, 0.5), (2.0, 0.4), (2.0, 0.7), (3.0, 0.6), (4.0, 0.9), (0.5, 0.1)]
    assert pareto_front(pts) == [(0.5, 0.1), (1.0, 0.5), (2.0, 0.7), (4.0, 0.9)]


def test_plots_are_figures_outside_pyplot(store, tmp_path):
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    from fnas import report

    full, rand = load_run(store, "full"), load_run(store, "rand")
    per_run = (report.plot_entropy, report.plot_critic, report.plot_screening,
               report.plot_pool, report.plot_replay)
    figs = [report.plot_best([full, rand]), report.plot_pareto([full]),
            *(f(full) for f in per_run)]
    assert all(isinstance(f, Figure) for f in figs)
    assert all(f(rand) is None for f in per_run)  # random search: nothing of these to plot
    assert report.figure_png(figs[0]).startswith(PNG)
    figs[1].savefig(tmp_path / "pareto.svg")  # any format matplotlib writes
    assert (tmp_path / "pareto.svg").read_text().lstrip().startswith("<?xml")
    result = {"config": {"budget": 4, "bench": "proxy", "task": {"dataset": "digits",
                                                                 "epochs": 1}},
              "runs": [{"strategy": s, "history": {"best": [0.1 * i, 0.2 * i, 0.3]}}
                       for s in ("ppo", "random") for i in (1, 2)]}
    assert isinstance(report.plot_bench(result), Figure)
    assert isinstance(report.plot_bench(result, str(tmp_path / "b.png")), Figure)
    assert (tmp_path / "b.png").read_bytes().startswith(PNG)
    assert plt.get_fignums() == []  # nothing left open in pyplot
