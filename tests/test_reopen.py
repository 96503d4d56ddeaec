"""Issue 36: reopening a run names what this process lacks (its space made in Python, its
objective), instead of an "unknown space" that read like a damaged store; and ``module:attr``
finds a module in the current folder, as ``python -m`` does, from the ``fnas`` console script
too (which, unlike ``python -m fnas``, does not put the current folder on ``sys.path``)."""

import sys

import pytest

import fnas
from fnas.errors import ConfigError
from fnas.search import SPACES

SPACE = fnas.make_space("reopen-space", {"width": [16, 32, 64], "depth": [1, 2, 3]})


def f(arch):
    return arch["width"] / 64 + arch["depth"] / 10


def test_a_run_whose_space_this_process_lacks_says_what_to_pass(tmp_path, monkeypatch, capsys):
    from fnas.cli import main

    store = tmp_path / "s"
    fnas.create_search(store, "r", SPACE, f, budget=2, batch=2).optimize(progress=False)
    monkeypatch.delitem(SPACES, "reopen-space")  # a new process: the space is not registered
    with pytest.raises(ConfigError, match="run 'r' used space 'reopen-space', which is not "
                                          "registered in this process: pass space="):
        fnas.create_search(store, "r", objective=f, load_if_exists=True).optimize(
            budget=4, progress=False)
    assert main(["search", "--resume", "r", "--store", str(store)]) == 2
    err = capsys.readouterr().err
    assert "used space 'reopen-space'" in err and "command line cannot" in err
    # given the space object, it resumes (and is registered for the rest of the process)
    out = fnas.create_search(store, "r", SPACE, f, load_if_exists=True).optimize(
        budget=4, progress=False)
    assert out.experiment.budget == 4 and out.experiment.status == "done"


MODULE = """
import fnas
space = fnas.make_space("here-space", {"a": [0, 1, 2], "b": [0, 1]})
def score(arch):
    return 0.5 + 0.1 * arch["a"] + 0.05 * arch["b"]
"""


@pytest.fixture
def bench_here(tmp_path, monkeypatch):
    """A ``benchhere.py`` in the current folder, which is not on ``sys.path``."""
    (tmp_path / "benchhere.py").write_text(MODULE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", ".", str(tmp_path))])
    monkeypatch.delitem(sys.modules, "benchhere", raising=False)
    yield tmp_path
    sys.modules.pop("benchhere", None)
    SPACES.pop("benchhere:space", None)


def test_module_attr_is_found_in_the_current_folder(bench_here, capsys):
    from fnas.cli import main

    code = main(["bench", "--space", "benchhere:space", "--objective", "benchhere:score",
                 "--strategies", "random", "--seeds", "1", "--out", str(bench_here / "out")])
    assert code == 0, capsys.readouterr().err
    assert sys.path[0] == str(bench_here)  # put first, as python -m does, and only once
    from fnas.search.config import space_factory

    assert space_factory("benchhere:space")().name == "here-space"
    assert sys.path.count(str(bench_here)) == 1
