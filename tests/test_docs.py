"""The start page reads in a minute, the results page starts with its table, and committed
results name no machine's paths (STYLE.md point 14). Text checks only: no search runs."""
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BENCHMARKS = ROOT / "docs" / "BENCHMARKS.md"
RESULTS = ROOT / "benchmarks" / "results"
# the two commands after cloning; CI (.ci/run) runs the second
COMMANDS = ('pip install -e ".[mnist]" && fnas search',
            'pip install -e ".[dev]" && python -m pytest -n 2')
ABSOLUTE = re.compile(r"(?<![\w.])/(work|tmp|root|home|Users)/")


def _slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    return {_slug(m) for m in re.findall(r"^#{1,6} (.+)$", text, flags=re.M)}


def test_readme_is_short_and_starts_with_the_two_commands():
    lines = README.read_text().splitlines()
    assert len(lines) <= 80, f"README.md has {len(lines)} lines (at most 80)"
    first = "\n".join(lines[:40])
    for command in COMMANDS:
        assert command in first, f"README.md's first 40 lines lack {command!r}"


def test_readme_links_to_sections_that_exist():
    text = README.read_text()
    for doc, anchor in re.findall(r"\]\((docs/[\w.]+\.md)#([\w-]+)\)", text):
        assert anchor in _anchors(ROOT / doc), f"README.md links to {doc}#{anchor}: no such heading"


def test_benchmarks_page_starts_with_its_results_table():
    text = BENCHMARKS.read_text()
    first_section = text.split("\n## ", 2)[1]
    assert first_section.startswith("Results"), "docs/BENCHMARKS.md's first section is not Results"
    header = next(line for line in first_section.splitlines() if line.startswith("|"))
    cells = [c.strip().lower() for c in header.strip("|").split("|")]
    assert {"result", "figure", "command", "json"} <= set(cells), header
    rows = [line for line in first_section.splitlines() if line.startswith("|")][2:]
    assert rows and all(line.count("|") == header.count("|") for line in rows)


def test_committed_results_name_no_absolute_path():
    found = []

    def walk(value, where):
        if isinstance(value, dict):
            for k, v in value.items():
                walk(k, where)
                walk(v, where)
        elif isinstance(value, list):
            for v in value:
                walk(v, where)
        elif isinstance(value, str) and ABSOLUTE.search(value):
            found.append(f"{where}: {value[:80]}")

    # the scripts' work folders (git-ignored: *_work, quick) are not committed results
    files = sorted(p for p in RESULTS.rglob("*.json")
                   if not any(d.endswith("_work") or d == "quick" for d in p.parent.parts))
    assert files
    for path in files:
        walk(json.loads(path.read_text()), path.relative_to(ROOT))
    assert found == [], "absolute paths in committed results:\n" + "\n".join(found[:10])
