"""The package's shape: no import cycles under ``src/fnas`` and no upward imports (issue 19's
figure: 0), counting imports inside functions too (only ``if TYPE_CHECKING:`` blocks are
annotations, not imports); and every module under 400 lines (issue 19's other figure)."""

import ast
from pathlib import Path

SRC = Path(__file__).parent.parent / "src" / "fnas"
LOWER = ("fnas.errors", "fnas._io", "fnas.space", "fnas.nn", "fnas.tasks", "fnas.agent")
"""Layers that must not import the search, the knowledge store, the report, the API or the
CLI (they sit above them)."""
UPPER = ("fnas.search", "fnas.knowledge", "fnas.report", "fnas.api", "fnas.cli")


def _modules():
    mods = {}
    for f in SRC.rglob("*.py"):
        parts = ("fnas",) + f.relative_to(SRC).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        mods[name] = f
    return mods


def _imports(tree: ast.AST, mods: dict) -> set[str]:
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for b in node.body for n in ast.walk(b))
    out = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
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


def test_the_checker_finds_a_cycle_and_an_upward_import():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    tree = ast.parse("from fnas.search.loop import x\nif TYPE_CHECKING:\n"
                     "    from fnas.cli import y\n")
    assert _imports(tree, {"fnas.search.loop": 0, "fnas.cli": 0}) == {"fnas.search.loop"}


def test_every_module_is_under_400_lines():
    long = sorted((len(f.read_text().splitlines()), m) for m, f in _modules().items()
                  if len(f.read_text().splitlines()) >= 400)
    assert long == []  # STYLE.md point 7 (Optuna): files stay under about 400 lines
