"""The package's shape: no import cycles under ``src/fnas`` and no upward imports (issue 19's
figure: 0), counting imports inside functions and those under ``if TYPE_CHECKING:`` too (issue
33: a type-only import is a dependency all the same); every module under 400 lines (issue 19's
other figure) and no package folder with more than 15 modules (issue 33); and the old import
paths of the modules that moved out of ``fnas.search`` still import the same modules."""

import ast
import importlib
from pathlib import Path

SRC = Path(__file__).parent.parent / "src" / "fnas"
LOWER = ("fnas.errors", "fnas._io", "fnas._limits", "fnas._config_build", "fnas.space",
         "fnas.nn", "fnas.tasks", "fnas.agent")
"""Layers that must not import the knowledge store, the strategies, the execution, the search,
the benchmark, the report, the API or the CLI (they sit above them)."""
UPPER = ("fnas.knowledge", "fnas.strategies", "fnas.execution", "fnas.search", "fnas.benchmark",
         "fnas.report", "fnas.api", "fnas.integration", "fnas.cli")
LAYERS = (
    ("fnas.errors", "fnas._io", "fnas._limits", "fnas._config_build"),
    ("fnas.space",),
    ("fnas.nn",),
    ("fnas.tasks",),
    ("fnas.agent",),
    ("fnas.knowledge",),
    ("fnas.strategies", "fnas.execution"),
    ("fnas.search",),
    ("fnas.benchmark",),
    ("fnas.report",),
    ("fnas.api", "fnas.integration"),
    ("fnas",),
    ("fnas.cli",),
    ("fnas.__main__",),
)
"""Every package's layer, lowest first: a module imports only from its own layer and those
below. A module's layer is that of the longest name here that it starts with (``fnas`` is
the root package alone: ``fnas.build``, ``fnas.create_search``... over the API)."""
MAX_MODULES = 15
"""Most modules (``.py`` files, ``__init__.py`` included) directly in one package folder."""
OLD_PATHS = {
    "fnas.search.strategy": "fnas.strategies.base",
    "fnas.search.random_search": "fnas.strategies.random_search",
    "fnas.search.rea": "fnas.strategies.rea",
    "fnas.search.ppo": "fnas.strategies.ppo",
    "fnas.search.screening": "fnas.strategies.fnas.screening",
    "fnas.search.screen_candidates": "fnas.strategies.fnas.candidates",
    "fnas.search.screen_config": "fnas.strategies.fnas.screen_config",
    "fnas.search.fnas_strategy": "fnas.strategies.fnas.veto",
    "fnas.search.fnas_config": "fnas.strategies.fnas.config",
    "fnas.search.fnas_state": "fnas.strategies.fnas.state",
    "fnas.search.evaluators": "fnas.execution.evaluators",
    "fnas.search.objective": "fnas.execution.objective",
    "fnas.search.identity": "fnas.execution.identity",
    "fnas.search.executors": "fnas.execution.executors",
    "fnas.search.jobs": "fnas.execution.jobs",
    "fnas.search.workers": "fnas.execution.workers",
    "fnas.search.worker_main": "fnas.execution.worker_main",
    "fnas.search.ray_net": "fnas.execution.ray_net",
    "fnas.search.ray_guard": "fnas.execution.ray_guard",
    "fnas.search.config_build": "fnas._config_build",
    "fnas.search.bench": "fnas.benchmark.harness",
    "fnas.search.bench_summary": "fnas.benchmark.summary",
    "fnas.search.bench_truth": "fnas.benchmark.truth",
    "fnas.report.bench_plot": "fnas.benchmark.plot",
    "fnas.report.export": "fnas.nn.export",
}
"""Issue 33's moves: old path -> new home (the old path is an alias of the same module)."""


def _modules():
    mods = {}
    for f in SRC.rglob("*.py"):
        parts = ("fnas",) + f.relative_to(SRC).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        mods[name] = f
    return mods


def _imports(tree: ast.AST, mods: dict) -> set[str]:
    out = set()
    for node in ast.walk(tree):  # every import: module level, in a function, type-only
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        out.update(n for n in names if n in mods)
    return out


def _graph():
    mods = _modules()
    return {m: _imports(ast.parse(f.read_text()), mods) - {m} for m, f in mods.items()}


def _cycles(graph):
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out, n = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = n[0]
        n[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles():
    assert _cycles(_graph()) == []  # a package importing its submodules counts too


def test_no_upward_imports():
    bad = sorted((m, t) for m, ts in _graph().items() for t in ts
                 if m.startswith(LOWER) and t.startswith(UPPER))
    assert bad == []


def _prefix(module: str) -> str:
    """The longest name of LAYERS that ``module`` is or is inside."""
    return max((p for layer in LAYERS for p in layer
                if module == p or module.startswith(p + ".")), key=len)


def _layer(module: str) -> int:
    """The index of ``module``'s layer in LAYERS."""
    return next(i for i, layer in enumerate(LAYERS) if _prefix(module) in layer)


def test_every_package_has_a_layer():
    assert [m for m in _modules() if _prefix(m) == "fnas"] == ["fnas"]  # a new one: add it


def test_no_module_imports_a_layer_above_its_own():
    bad = sorted((m, t) for m, ts in _graph().items() for t in ts if _layer(t) > _layer(m))
    assert bad == []  # e.g. the search imports neither the benchmark nor the report


def test_the_checker_finds_a_cycle_and_an_upward_import():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    tree = ast.parse("from fnas.search.loop import x\nif TYPE_CHECKING:\n"
                     "    from fnas.cli import y\ndef f():\n    import fnas.api\n")
    mods = {"fnas.search.loop": 0, "fnas.cli": 0, "fnas.api": 0}
    assert _imports(tree, mods) == {"fnas.search.loop", "fnas.cli", "fnas.api"}
    assert _layer("fnas.search.loop") < _layer("fnas.benchmark.plot") < _layer("fnas.cli")


def test_no_package_holds_more_than_15_modules():
    big = sorted((len(list(d.glob("*.py"))), str(d.relative_to(SRC.parent)))
                 for d in [SRC, *SRC.rglob("*")] if d.is_dir() and (d / "__init__.py").exists()
                 and len(list(d.glob("*.py"))) > MAX_MODULES)
    assert big == []  # a subpackage counts on its own (fnas/strategies/fnas)


def test_old_import_paths_are_the_moved_modules():
    for old, new in OLD_PATHS.items():
        assert importlib.import_module(old) is importlib.import_module(new), old
        assert not (SRC.parent / (old.replace(".", "/") + ".py")).exists(), old  # no shim file
    import fnas.search
    from fnas.benchmark.harness import BENCHMARKS, BenchConfig, run_bench
    from fnas.execution import evaluators
    assert fnas.search.evaluators is evaluators  # as an attribute too
    assert (fnas.search.BENCHMARKS, fnas.search.BenchConfig, fnas.search.run_bench) == (
        BENCHMARKS, BenchConfig, run_bench)


def test_every_module_is_under_400_lines():
    long = sorted((len(f.read_text().splitlines()), m) for m, f in _modules().items()
                  if len(f.read_text().splitlines()) >= 400)
    assert long == []  # STYLE.md point 7 (Optuna): files stay under about 400 lines


def test_fingerprints_hash_the_moved_modules_under_their_old_names():
    from fnas.execution.evaluators import ProxyEvaluator
    from fnas.execution.identity import HASHED_AS, fingerprint

    assert {new: HASHED_AS[new] for new in OLD_PATHS.values()} == {
        new: old for old, new in OLD_PATHS.items()}
    before = type(ProxyEvaluator)("ProxyEvaluator", (), {"__module__": "fnas.search.evaluators"})

    def holding(x):
        return lambda arch: x

    assert fingerprint(holding(ProxyEvaluator)) == fingerprint(holding(before))  # its cache


STRATEGY_NAMES = frozenset({"fnas", "ppo", "rea", "random"})
"""The built-in strategies' names."""
REGISTRY = "fnas.strategies.registry"
"""The one module allowed to tell strategies apart by name (it registers them)."""


def _name_checks(tree: ast.AST) -> list[int]:
    """Lines comparing something with a strategy's name: ``x == "fnas"``, ``x != "ppo"``,
    ``x in ("fnas", "rea")``, ``case "fnas":``. A name as the left operand of ``in`` is a key
    looked up in a mapping (``"fnas" in meta``), not a check of which strategy runs."""

    def names(node: ast.AST | None) -> bool:
        if isinstance(node, ast.Constant):
            return node.value in STRATEGY_NAMES
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            return any(names(e) for e in node.elts)
        return False

    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            for op, (a, b) in zip(node.ops, zip(sides, sides[1:], strict=False), strict=True):
                if (isinstance(op, (ast.Eq, ast.NotEq)) and (names(a) or names(b))) or \
                        (isinstance(op, (ast.In, ast.NotIn)) and names(b) and
                         not isinstance(b, ast.Constant)):
                    out.append(node.lineno)
        elif isinstance(node, ast.MatchValue) and names(node.value):
            out.append(node.value.lineno)
    return out


def test_no_strategy_name_checks_outside_the_registry():
    """Issue 33's figure: the loop, the config and the CLI ask a strategy's capabilities and
    its registered settings class, never its name (0 checks outside the registry)."""
    found = {m: lines for m, f in _modules().items() if m != REGISTRY
             if (lines := _name_checks(ast.parse(f.read_text())))}
    assert found == {}


def test_the_name_check_finder_finds_each_form():
    code = ('if cfg.strategy == "fnas": pass\nif s in ("ppo", "rea"): pass\n'
            'if "fnas" in meta: pass\nif name != "random": pass\n'
            'match s:\n    case "rea":\n        pass\n')
    assert _name_checks(ast.parse(code)) == [1, 2, 4, 6]
