"""Threads (issue 36): each local training runs on the torch threads the run's ``threads``
setting names (1 by default), in this process and in a worker, and the caller's setting is
restored after it; latency is timed on one thread and flagged when the machine is loaded; a
resumed search says where it resumes; every ``--help`` reads whole."""

import logging

import pytest
import torch

import fnas
import fnas.tasks.latency as latency
from fnas.errors import ConfigError
from fnas.search import SearchConfig
from fnas.space import resolve_arch
from fnas.strategies.settings import with_legacy_defaults
from fnas.tasks import RewardConfig, TaskConfig, run_rollout

from fast import TINY_TASK

SPACE = fnas.make_space("threads-toy", {"a": (0, 1, 2), "b": (0, 1, 2)})


def threads_seen(arch):
    """An objective that scores an architecture by the torch threads it ran on."""
    return {"accuracy": 0.5, "reward": float(torch.get_num_threads())}


@pytest.fixture
def two_threads():
    """The caller's torch setting is 2 threads (restored after the test)."""
    old = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(old)


def _seen(tmp_path, name, *, optimize=None, **settings):
    search = fnas.create_search(store=tmp_path / name, name=name, space=SPACE,
                                objective=threads_seen,
                                strategy="random", budget=2, batch=2, **settings)
    search.optimize(progress=False, **(optimize or {}))
    return {e.reward for e in search.trials()}


def test_a_local_objective_runs_on_the_threads_setting_and_the_callers_is_restored(
        tmp_path, two_threads):
    assert _seen(tmp_path, "default") == {1.0}  # one thread by default
    assert torch.get_num_threads() == 2  # restored
    assert _seen(tmp_path, "three", threads=3) == {3.0}
    assert _seen(tmp_path, "zero", threads=0) == {2.0}  # 0: the process's own setting
    assert _seen(tmp_path, "call", optimize={"threads": 3}) == {3.0}  # for this call
    assert torch.get_num_threads() == 2


def test_a_worker_process_runs_on_the_threads_setting(tmp_path):
    """A worker process (eval_isolation 'process': what eval_timeout uses) sets it too."""
    assert _seen(tmp_path, "w", threads=2, eval_isolation="process") == {2.0}


def test_the_threads_setting_is_checked_and_old_runs_resume_as_they_ran():
    assert SearchConfig().threads == 1
    for bad in (-1, 1.5, "2", True):
        with pytest.raises(ConfigError, match="threads="):
            SearchConfig(threads=bad)
    old = {k: v for k, v in SearchConfig().to_dict().items() if k != "threads"}
    assert SearchConfig.from_dict(with_legacy_defaults(old)).threads == 0  # torch's default
    assert SearchConfig.from_dict(old).threads == 1  # a file that leaves it out: the default


def test_fnas_train_runs_on_its_threads(tmp_path, two_threads):
    seen = []
    done = fnas.train("mnas_default", TaskConfig(**TINY_TASK, epochs=1), threads=3,
                      out=tmp_path / "m.safetensors",
                      on_epoch=lambda epoch, acc: seen.append(torch.get_num_threads()))
    assert done.ok and seen == [3] and torch.get_num_threads() == 2
    with pytest.raises(ConfigError, match="threads="):
        fnas.train("mnas_default", threads=-1)


def test_latency_is_timed_on_one_thread_and_reports_the_cpu_share(two_threads):
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.Flatten())
    seen = []
    model.register_forward_hook(lambda *a: seen.append(torch.get_num_threads()))
    lat = latency.time_forwards(model, (1, 8, 8), repeats=3, warmup=1)
    assert set(seen) == {1} and torch.get_num_threads() == 2
    assert lat.ms > 0 and 0 < lat.cpu_share <= 1
    assert latency.Latency(1.0, 0.5).loaded and "50% of a CPU" in latency.Latency(1.0, 0.5).note()
    assert not latency.Latency(1.0, 0.95).loaded and latency.Latency(1.0, 0.95).note() == ""
    assert not latency.Latency(1.0, None).loaded  # a GPU timing: no CPU share


def test_a_latency_timed_under_load_is_flagged_in_the_result_and_warned_once(monkeypatch,
                                                                           caplog):
    monkeypatch.setattr(latency, "LOADED_SHARE", 1.01)  # every timing reads as loaded
    monkeypatch.setattr(latency, "_warned", False)  # (another test may have warned already)
    task = TaskConfig(**{**TINY_TASK, "latency_repeats": 3}, epochs=1)
    with caplog.at_level(logging.WARNING, logger="fnas"):
        results = [run_rollout(resolve_arch("mnas_default", 8), task, RewardConfig(), s,
                               return_weights=False).result for s in (0, 1)]
    assert all(r.ok and r.message.startswith("latency measured under load") for r in results)
    warned = [r for r in caplog.records if "latency measured under load" in r.getMessage()]
    assert len(warned) == 1 and "\n" not in warned[0].getMessage()


def test_a_resumed_search_says_where_it_resumes(tmp_path, capsys):
    def stop_in_batch_1(ev):
        if (ev.iteration, ev.slot) == (1, 0):
            raise KeyboardInterrupt

    search = fnas.create_search(store=tmp_path, name="r", space=SPACE, objective=threads_seen,
                                strategy="random", budget=6, batch=2)
    with pytest.raises(KeyboardInterrupt):
        search.optimize(progress=False, callbacks=[stop_in_batch_1])
    capsys.readouterr()
    search.optimize(progress=True)
    err = capsys.readouterr().err
    assert "resuming run r at 3/6 architectures (1 recorded in its interrupted batch, reused)" \
        in err
    search.optimize(progress=True)  # finished: nothing to resume, nothing said
    assert "resuming" not in capsys.readouterr().err


@pytest.mark.parametrize("command", ["search", "bench", "train", "runs", "show", "report",
                                     "inspect", "export", "pool"])
def test_every_help_reads_whole(command, capsys):
    from fnas.cli import main

    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = capsys.readouterr().out
    assert text.count("(") == text.count(")"), command  # no "(Schaul et al" cut short
    assert " below" not in text  # nothing refers to a part that is not there
