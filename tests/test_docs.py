"""The README, docs/*.md and the user guide (docs/guide/*.md) speak as the project's documentation: no one
machine's paths, no development sessions, no first person; every figure comes with a command a reader can run
from a clone. The README stays short, links resolve, and the design page's list of public names is the code's."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
GUIDE = sorted((ROOT / "docs" / "guide").glob("*.md"))
DESIGN = ROOT / "docs" / "design.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md")), *GUIDE]
#: the pages this project's README work keeps in step with the code: links and named files checked
OWN_PAGES = [README, DESIGN, *GUIDE]
#: lines the README may have: what it is, install, two commands, quick start, point clouds, figures, changes
#: and links; the how-to material lives in the guide
README_MAX_LINES = 150

#: (what is wrong, pattern): paths of one machine, the development process, first person singular
FORBIDDEN = [
    ("an absolute path of one machine", re.compile(r"/work/|/tmp/|/home/\w|/Users/\w")),
    ("a folder beside one clone", re.compile(r"\.\./shared/")),
    ("the development session", re.compile(r"\bsessions?\b", re.I)),
    ("the lead", re.compile(r"\bthe lead\b|\blead's\b", re.I)),
    ("a task or issue of the development", re.compile(r"\bthis (task|issue)\b|\bissue \d", re.I)),
    ("first person singular", re.compile(r"\bI\b|\bI'(?:m|ve|d)\b|\b[Mm]y\b")),
]


def _name(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def test_pages_exist():
    assert len(PAGES) >= 14 and all(p.exists() for p in PAGES)
    assert (ROOT / "docs" / "guide" / "README.md") in GUIDE and len(GUIDE) >= 8


@pytest.mark.parametrize("path", PAGES, ids=_name)
def test_docs_speak_of_the_project(path):
    found = [f"{_name(path)}:{n}: {what}: {line.strip()[:100]}"
             for n, line in enumerate(path.read_text().splitlines(), 1)
             for what, pattern in FORBIDDEN if pattern.search(line)]
    assert not found, "\n".join(found)


def test_the_first_person_check_ignores_lowercase_indices():
    """``(i, j)`` pairs and ``i < j`` are not first person: the pattern must match "I" as a word only."""
    pattern = dict((w, p) for w, p in FORBIDDEN)["first person singular"]
    assert pattern.search("so I trained one") and pattern.search("my run")
    assert not pattern.search("unique pairs with `i < j`, PairTable(i, j, value)")


def test_the_readme_stays_short():
    n = len(README.read_text().splitlines())
    assert n <= README_MAX_LINES, f"README.md has {n} lines (at most {README_MAX_LINES}): move how-to to docs/guide/"


LINK = re.compile(r"\]\(([^)\s]+)\)")


@pytest.mark.parametrize("path", OWN_PAGES, ids=_name)
def test_links_and_named_files_exist(path):
    """Relative links lead to files of the clone, and the scripts and data files its code names exist (a
    reader reruns them from a clone)."""
    text = path.read_text()
    links = [t.split("#", 1)[0] for t in LINK.findall(text) if not re.match(r"[a-z]+:", t) and not t.startswith("#")]
    missing = [t for t in links if t and not (path.parent / t).exists()]
    named = set(re.findall(r"(?<![\w/])((?:examples|benchmarks|data)/[a-z_][a-z0-9_-]*\.(?:py|npz|npy|txt))\b", text))
    missing += [f for f in sorted(named) if not (ROOT / f).exists()]
    assert not missing, f"{_name(path)}: {missing}"


def _design_table() -> dict[str, list[str]]:
    """The design page's table of public names: module -> names, in the order written."""
    rows = re.findall(r"^\| `(wassembed[\w.]*)` \| (.+) \|$", DESIGN.read_text(), flags=re.M)
    return {module: re.findall(r"`([^`]+)`", names) for module, names in rows}


def test_the_design_page_lists_the_public_names_of_the_code():
    """docs/design.md's table of public names equals each module's ``__all__`` (names and order), for the
    package and every subpackage: it cannot go stale."""
    pytest.importorskip("torch")
    table = _design_table()
    subpackages = sorted(p.parent.name for p in (ROOT / "wassembed").glob("*/__init__.py"))
    expected = ["wassembed", *(f"wassembed.{s}" for s in subpackages)]
    assert set(expected) <= set(table), f"docs/design.md lists no public names of {sorted(set(expected) - set(table))}"
    for module, names in table.items():
        assert names == list(importlib.import_module(module).__all__), (
            f"docs/design.md's public names of {module} differ from its __all__: "
            f"{names} != {list(importlib.import_module(module).__all__)}")


def test_the_design_table_reader_sees_rows():
    assert _design_table()["wassembed.index"] == ["ReferenceIndex", "build_index", "open_index"]
