"""SearchConfig's nested settings (issue 19): ``fnas``, ``rea`` and ``replay_cfg`` are typed
dataclasses like ``task``, ``reward`` and ``ppo``; built from a file, a stored run or a Python
caller's dict, field by field, with one-line errors naming the dotted key."""

import contextlib
import json
import re
import sqlite3
import sys
from pathlib import Path

import numpy as np
import pytest

from fnas.agent.buffer import ReplayConfig
from fnas.agent.ppo import PPOConfig
from fnas.cli import build_parser
from fnas.cli.search import config_from_args
from fnas.errors import ConfigError
from fnas.knowledge import Store
from fnas.search import (
    BenchConfig,
    REAConfig,
    SearchConfig,
    SyntheticEvaluator,
    resume_search,
    run_search,
)
from fnas.search.config_io import load_config, search_config_from_dict
from fnas.space import mnas_space
from fnas.strategies.fnas.screening import ScreenConfig
from fnas.strategies.fnas.veto import DecisionConfig, FNASConfig
from fnas.strategies.ppo import PPOStrategyConfig
from fnas.strategies.settings import with_legacy_defaults

README = Path(__file__).parent.parent / "docs" / "GUIDE.md"
SPACE = mnas_space(8)
TARGET = SPACE.encode(SPACE.decode(SPACE.sample(np.random.default_rng(5))))


def test_the_nested_settings_are_typed_and_a_dict_of_some_fields_still_works():
    given = SearchConfig(fnas={"acquisition": "ts", "screen": {"candidates": 64}},
                         rea={"population": 8, "sample": 4}, replay_cfg={"share": 0.25})
    typed = SearchConfig(fnas=FNASConfig(acquisition="ts", screen=ScreenConfig(candidates=64)),
                         rea=REAConfig(population=8, sample=4),
                         replay_cfg=ReplayConfig(share=0.25))
    assert given == typed
    assert isinstance(given.fnas.screen, ScreenConfig) and given.fnas.screen.candidates == 64
    assert given.fnas.screen.kappa == ScreenConfig().kappa  # the keys left out: defaults
    assert given.replay_cfg.share == 0.25
    assert SearchConfig().fnas == FNASConfig() and SearchConfig().rea == REAConfig()
    assert SearchConfig().replay_cfg == ReplayConfig()


def test_a_search_holds_the_chosen_strategys_settings_in_one_field():
    """Issue 33: one strategy config, of the class the strategy registered; the stored
    shape's tables feed it (its own, and those of its parts) and the others are checked but
    never held (a REA table in an fnas search was never read)."""
    cfg = SearchConfig(fnas={"acquisition": "ts"}, ppo={"lr": 1e-3}, replay_cfg={"share": 0.25},
                       rea={"population": 8, "sample": 4})
    assert cfg.strategy_config == FNASConfig(acquisition="ts", ppo=PPOConfig(lr=1e-3),
                                             replay_cfg=ReplayConfig(share=0.25))
    assert cfg.rea == REAConfig() and cfg.ppo.lr == 1e-3  # views of the old names
    assert cfg == SearchConfig(strategy_config={"acquisition": "ts", "ppo": {"lr": 1e-3},
                                                "replay_cfg": {"share": 0.25}})
    rea = SearchConfig(strategy="rea", rea={"population": 8, "sample": 4}, ppo={"lr": 1e-3})
    assert rea.strategy_config == REAConfig(8, 4) and rea.ppo == PPOConfig()
    ppo = SearchConfig(strategy="ppo", replay="on", ppo={"hidden": 32})
    assert ppo.strategy_config == PPOStrategyConfig(ppo=PPOConfig(hidden=32))
    assert SearchConfig(strategy="random").strategy_config is None
    with pytest.raises(ConfigError, match="takes no settings"):
        SearchConfig(strategy="random", strategy_config={"x": 1})
    with pytest.raises(ConfigError, match="must be a table of settings or a PPOStrategyConfig"):
        SearchConfig(strategy="ppo", strategy_config=FNASConfig())
    with pytest.raises(ConfigError, match=re.escape("config setting rea.sample")):
        SearchConfig(rea={"sample": 50})  # checked, although fnas does not read it


def test_to_dict_is_json_and_round_trips():
    cfg = SearchConfig(strategy="fnas", replay="on", replay_cfg={"sampling": "prioritized"},
                       fnas={"imagined": 3, "decision": {"tau": 0.5}}, ppo={"lr": 1e-3})
    d = json.loads(json.dumps(cfg.to_dict()))
    assert d["fnas"]["decision"]["tau"] == 0.5 and d["replay_cfg"]["sampling"] == "prioritized"
    assert d["fnas"]["screen"] == json.loads(json.dumps(ScreenConfig().__dict__))
    assert d["ppo"]["lr"] == 1e-3 and "strategy_config" not in d and "ppo" not in d["fnas"]
    assert d["rea"] == REAConfig().__dict__  # the stored shape: every table, as before
    assert search_config_from_dict(d) == cfg == SearchConfig.from_dict(d, strict=True)
    for other in (SearchConfig(strategy="ppo", ppo={"hidden": 32}), SearchConfig(strategy="rea"),
                  SearchConfig(strategy="random"), SearchConfig(fnas={"decision_rule": "veto"})):
        assert SearchConfig.from_dict(json.loads(json.dumps(other.to_dict()))) == other


STORED = json.loads((Path(__file__).parent / "data" / "stored_configs_8e641a7.json").read_text())


def test_configs_stored_before_one_strategy_config_load_with_their_meaning():
    """Runs recorded at commit 8e641a7 (settings side by side): each loads as the settings it
    ran with, and is stored again exactly as it was (the stored shape did not change), but
    for settings of a strategy the run did not use, which it never read."""
    # as a resume reads them: the settings added since take the values the runs ran with
    veto, ppo, rea = (with_legacy_defaults(json.loads(STORED["configs"][k]))
                      for k in ("veto", "ppo", "rea"))
    assert veto["fnas"]["screen"]["decompose"] is False and ppo["replay_cfg"]["per_decision"] \
        is False and ppo["replay_cfg"]["max_age"] is None  # replayed from every entry
    v = SearchConfig.from_dict(veto)
    assert v.strategy_config.decision_rule == "veto" and v.fnas.decision.tau == 0.3
    assert (v.fnas.critic_cfg.members, v.fnas.imagined, v.ppo.lr, v.replay_cfg.share) == \
        (3, 0, 0.001, 0.25)
    p = SearchConfig.from_dict(ppo)
    assert p.strategy_config == PPOStrategyConfig(
        PPOConfig(hidden=32), ReplayConfig(sampling="prioritized", per_decision=False,
                                           max_age=None))
    r = SearchConfig.from_dict(rea)
    assert r.strategy_config == REAConfig(12, 3)
    # the tables a run never read are stored as today's defaults (issue 34's new keys in them
    # take today's values, not the legacy ones)
    unused = {"rea": ("fnas", "replay_cfg"), "ppo": ("fnas", "rea")}
    for cfg, stored, name in ((v, veto, "veto"), (r, rea, "rea"), (p, ppo, "ppo")):
        got = cfg.to_dict()
        want = {k: x for k, x in stored.items() if k != "decision_signature"}
        for t in unused.get(name, ()):
            got.pop(t), want.pop(t)
        assert got == want
    assert p.to_dict()["rea"] == REAConfig().__dict__ != ppo["rea"]  # never read by ppo


def test_the_veto_rule_is_named_by_decision_rule_and_off_still_says_it():
    veto = SearchConfig(fnas={"decision_rule": "veto"})
    assert veto == SearchConfig(fnas={"acquisition": "off"}) == \
        SearchConfig(strategy_config=FNASConfig(decision_rule="veto"))
    assert (veto.fnas.acquisition, veto.to_dict()["fnas"]["acquisition"]) == ("off", "off")
    assert "decision_rule" not in veto.to_dict()["fnas"]  # stored in its old spelling
    assert veto.with_settings({"fnas": {"acquisition": "ts"}}).fnas.decision_rule == "screen"
    assert veto.with_settings({"fnas": {"decision_rule": "screen"}}).fnas.acquisition == "ucb"
    ts = SearchConfig(fnas={"acquisition": "ts"})
    assert ts.with_settings({"fnas": {"decision_rule": "veto"}}) == veto
    assert ts.with_settings({"fnas": {"decision_rule": "screen"}}) == ts
    for bad in ({"decision_rule": "veto", "acquisition": "ts"},
                {"decision_rule": "screen", "acquisition": "off"}):
        with pytest.raises(ConfigError, match=r"^config settings fnas: decision_rule=.* "
                                              "contradict each other"):
            SearchConfig(fnas=bad)
    with pytest.raises(ConfigError, match="decision_rule='greedy'"):
        SearchConfig(fnas={"decision_rule": "greedy"})
    with pytest.raises(ConfigError, match="has no acquisition"):
        FNASConfig(decision_rule="veto", acquisition="ei")


def test_a_new_strategy_keeps_the_settings_the_two_share():
    fnas = SearchConfig(ppo={"lr": 1e-3}, replay_cfg={"share": 0.25}, fnas={"imagined": 1})
    ppo = fnas.with_settings({"strategy": "ppo"})
    assert ppo.strategy_config == PPOStrategyConfig(PPOConfig(lr=1e-3), ReplayConfig(share=0.25))
    back = ppo.with_settings({"strategy": "fnas"})
    assert back.ppo.lr == 1e-3 and back.fnas.imagined is None  # ppo never held fnas's


def test_a_strategy_registered_with_its_settings_class_is_stored_under_strategy_config():
    from dataclasses import dataclass

    from fnas.strategies import STRATEGIES, config_class, register_strategy
    from fnas.strategies.random_search import RandomSearch

    @dataclass(frozen=True)
    class Knobs:
        width: int = 3
        """How wide."""
        ppo: PPOConfig = PPOConfig()
        """A controller, fed by the stored shape's ``ppo`` table."""

    register_strategy("knobs", lambda space, cfg: RandomSearch(space, cfg.seed), config=Knobs)
    try:
        assert config_class("knobs") is Knobs
        cfg = SearchConfig(strategy="knobs", strategy_config={"width": 5}, ppo={"lr": 1e-3})
        assert cfg.strategy_config == Knobs(5, PPOConfig(lr=1e-3))
        d = cfg.to_dict()
        assert d["strategy_config"] == {"width": 5} and d["ppo"]["lr"] == 1e-3
        assert SearchConfig.from_dict(json.loads(json.dumps(d)), strict=True) == cfg
        with pytest.raises(ConfigError, match=re.escape("config setting strategy_config.width")):
            SearchConfig(strategy="knobs", strategy_config={"width": "x"})
        with pytest.raises(ConfigError, match="must be a dataclass"):
            register_strategy("bad", lambda space, cfg: None, config=dict)
    finally:
        for registry in ("STRATEGIES", "CAPABILITIES", "STRATEGY_CONFIGS"):
            getattr(__import__("fnas.strategies.registry", fromlist=[registry]),
                    registry).pop("knobs", None)
    assert "knobs" not in STRATEGIES


BAD = [
    ({"fnas": {"screen": {"kappa": "high"}}}, "config setting fnas.screen.kappa='high': "
                                             "expected float"),
    ({"fnas": {"screen": {"kappa": -1.0}}}, "config setting fnas.screen.kappa: "),
    ({"fnas": {"screen": {"kapa": 1}}}, "unknown config setting(s) ['fnas.screen.kapa']"),
    ({"fnas": {"screen": 3}}, "config setting fnas.screen must be a table of settings, got int"),
    ({"fnas": {"decision": {"tau": 5.0}}}, "config setting fnas.decision.tau: "),
    ({"fnas": {"critic_cfg": {"members": 1}}}, "config setting fnas.critic_cfg.members: "),
    ({"fnas": {"critic": "yes"}}, "config setting fnas.critic='yes': expected bool"),
    ({"fnas": {"imagined": 2.5}}, "config setting fnas.imagined=2.5: expected int | None"),
    ({"fnas": {"acquisition": "best"}}, "config setting fnas.acquisition: "),
    ({"rea": {"sample": 30}}, "config setting rea.sample: rea sample=30 exceeds population=20"),
    ({"rea": {"population": 12, "sample": 16}}, "config settings rea: "),
    ({"rea": {"size": 3}}, "unknown config setting(s) ['rea.size']"),
    ({"replay_cfg": {"share": 1.0}}, "config setting replay_cfg.share: "),
    ({"replay_cfg": {"correction": 1}}, "config setting replay_cfg.correction=1: expected bool"),
    ({"replay_cfg": [0.5]}, "config setting replay_cfg must be a table of settings"),
]


@pytest.mark.parametrize("d, message", BAD, ids=lambda x: str(x)[:40])
def test_a_bad_nested_setting_is_one_line_naming_its_key(d, message):
    for make in (search_config_from_dict, lambda d: SearchConfig(**d)):
        with pytest.raises(ConfigError) as e:
            make(d)
        assert str(e.value).startswith(message) and "\n" not in str(e.value), str(e.value)


def test_range_errors_keep_the_class_reason():
    with pytest.raises(ConfigError, match=r"^config setting fnas\.decision\.tau_min: decision "
                                          r"tau_min=2\.0 is out of range: expected in \(0, "
                                          r"tau_max\]$"):
        search_config_from_dict({"fnas": {"decision": {"tau_min": 2.0}}})
    with pytest.raises(ConfigError, match="out of range: expected >= 2"):
        DecisionConfig(min_real=1)


def test_a_stored_config_with_old_keys_loads_and_a_users_file_may_not_have_them():
    stored = {"fnas": {"screen": {"candidates": 32, "retired_knob": 1}, "gone": True},
              "rea": {}, "replay_cfg": {"share": 0.25, "old": 0},
              "decision_signature": "abc"}
    cfg = SearchConfig.from_dict(stored)  # a stored run's config: not strict
    assert cfg.fnas.screen.candidates == 32 and cfg.replay_cfg.share == 0.25
    assert cfg.rea == REAConfig()
    with pytest.raises(ConfigError, match=re.escape("['decision_signature']")):
        search_config_from_dict(stored)
    with pytest.raises(ConfigError, match=re.escape("['fnas.gone']")):
        search_config_from_dict({"fnas": stored["fnas"]})
    with pytest.raises(ConfigError, match=re.escape("['fnas.screen.retired_knob']")):
        search_config_from_dict({"fnas": {"screen": stored["fnas"]["screen"]}})


def test_with_settings_changes_only_the_keys_given():
    cfg = SearchConfig(fnas={"acquisition": "ei", "screen": {"candidates": 64, "mutants": 8}})
    new = cfg.with_settings({"fnas": {"screen": {"kappa": 1.0}}, "budget": 9})
    assert (new.fnas.acquisition, new.fnas.screen.candidates, new.fnas.screen.mutants) == \
        ("ei", 64, 8)
    assert (new.fnas.screen.kappa, new.budget) == (1.0, 9) and cfg.fnas.screen.kappa == 0.5
    assert cfg.with_settings({}) == cfg
    with pytest.raises(ConfigError, match=r"unknown config setting\(s\) \['fnas.kappa'\]"):
        cfg.with_settings({"fnas": {"kappa": 1.0}})


def test_a_benchmarks_fnas_settings_are_checked_before_it_runs():
    with pytest.raises(ConfigError, match=re.escape("['fnas.imagine']")):
        BenchConfig(bench="real", fnas={"imagine": 2})
    assert BenchConfig(bench="real", fnas={"imagined": 2}).fnas == {"imagined": 2}


@pytest.mark.skipif(sys.version_info < (3, 11), reason="TOML needs tomllib")
def test_the_readmes_toml_example_loads_with_its_nested_tables(tmp_path):
    block = re.search(r"```toml\n(.*?)```", README.read_text(), re.S)
    assert block, "README.md has no TOML config example"
    f = tmp_path / "c.toml"
    f.write_text(block.group(1))
    cfg = load_config(f)
    assert cfg.fnas.screen != ScreenConfig() and cfg.replay_cfg != ReplayConfig()
    assert cfg.to_dict()["fnas"]["screen"] == cfg.fnas.screen.__dict__


@pytest.mark.skipif(sys.version_info < (3, 11), reason="TOML needs tomllib")
def test_cli_nested_settings_from_a_file_set_and_the_flags(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text('strategy = "fnas"\n[fnas]\nacquisition = "ts"\n[fnas.screen]\n'
                 'candidates = 64\nkappa = 1.0\n[replay_cfg]\nshare = 0.25\n')

    def config(*argv):
        return config_from_args(build_parser().parse_args(["search", *argv]))

    cfg = config("--config", str(f), "--set", "fnas.screen.kappa=2.0", "--set",
                 "fnas.screen.policy=frozen", "--candidates", "32", "--set",
                 "fnas.screen.candidates=16", "--set", "replay_cfg.correction=false",
                 "--replay-capacity", "64", "--set", "reward.target=3", "--epochs", "2")
    s = cfg.fnas.screen
    assert (cfg.fnas.acquisition, s.candidates, s.kappa, s.policy) == ("ts", 32, 2.0, "frozen")
    assert cfg.replay_cfg == ReplayConfig(share=0.25, correction=False, capacity=64)
    assert (cfg.reward.target, cfg.task.epochs) == (3, 2)
    assert config("--target-macs", "5", "--set", "reward.target=3").reward.target == 5e6
    assert config("--set", "task.image_size=20").task.image_size == 20
    sized = config("--task", "mnist5k", "--image-size", "14", "--set", "task.image_size=20")
    assert (sized.task.dataset, sized.task.image_size) == ("mnist5k", 14)  # the flag wins
    for argv, needle in ((["--set", "fnas.screen.kapa=1"], "['fnas.screen.kapa']"),
                         (["--set", "rea.sample=x"], "rea.sample='x': expected int"),
                         (["--set", "kappa"], "expected KEY=VALUE"),
                         (["--set", "fnas=1", "--set", "fnas.critic=false"], "fnas was given")):
        with pytest.raises(ConfigError) as e:
            config(*argv)
        assert needle in str(e.value) and "\n" not in str(e.value), str(e.value)


SCREEN = {"screen": {"n_init": 4, "candidates": 16, "mutants": 4, "imagined_batch": 8},
          "critic_cfg": {"members": 2, "steps": 10}}  # small: a quick test


def _search(store, name, stop_after=None):
    cfg = SearchConfig(strategy="fnas", budget=8, batch=4, seed=3, knowledge="none",
                       pool="off", replay_cfg={"share": 0.25}, fnas=SCREEN)
    return run_search(store, cfg, name=name, evaluator=SyntheticEvaluator(SPACE, TARGET),
                      space=SPACE, progress=False, stop_after=stop_after)


def _results(store, name):
    return [(e.iteration, e.slot, e.arch_key, e.reward)
            for e in store.evaluations(store.get_experiment(name).id)]


@pytest.mark.slow
def test_a_run_stored_with_dict_settings_resumes_as_an_uninterrupted_run(tmp_path):
    """A store written before the settings were typed holds them as the dicts given (``{}``
    for defaults), perhaps with keys this version no longer has: the run resumes, unchanged."""
    store = Store(tmp_path / "s")
    _search(store, "old", stop_after=1)
    config = store.get_experiment("old").config
    assert config["fnas"]["screen"]["kappa"] == ScreenConfig().kappa  # now: every setting
    config.update(fnas={**SCREEN, "screen": {**SCREEN["screen"], "retired_knob": 1}},
                  rea={}, replay_cfg={"share": 0.25})
    with contextlib.closing(sqlite3.connect(store.path, isolation_level=None)) as db:
        db.execute("UPDATE experiments SET config=? WHERE name='old'", (json.dumps(config),))
    out = resume_search(store, "old", evaluator=SyntheticEvaluator(SPACE, TARGET), space=SPACE,
                        progress=False)
    assert out.experiment.status == "done"
    whole = Store(tmp_path / "u")
    _search(whole, "whole")
    assert _results(store, "old") == _results(whole, "whole") and len(_results(whole, "whole")) == 8
