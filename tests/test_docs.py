"""The README and docs/*.md speak as the project's documentation: no one machine's paths, no development
sessions, no first person; every figure comes with a command a reader can run from a clone."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

#: (what is wrong, pattern): paths of one machine, the development process, first person singular
FORBIDDEN = [
    ("an absolute path of one machine", re.compile(r"/work/|/tmp/|/home/\w|/Users/\w")),
    ("a folder beside one clone", re.compile(r"\.\./shared/")),
    ("the development session", re.compile(r"\bsessions?\b", re.I)),
    ("the lead", re.compile(r"\bthe lead\b|\blead's\b", re.I)),
    ("a task or issue of the development", re.compile(r"\bthis (task|issue)\b|\bissue \d", re.I)),
    ("first person singular", re.compile(r"\bI\b|\bI'(?:m|ve|d)\b|\b[Mm]y\b")),
]


def test_pages_exist():
    assert len(PAGES) >= 6 and all(p.exists() for p in PAGES)


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.name)
def test_docs_speak_of_the_project(path):
    found = [f"{path.name}:{n}: {what}: {line.strip()[:100]}" for n, line in enumerate(path.read_text().splitlines(), 1)
             for what, pattern in FORBIDDEN if pattern.search(line)]
    assert not found, "\n".join(found)


def test_the_first_person_check_ignores_lowercase_indices():
    """``(i, j)`` pairs and ``i < j`` are not first person: the pattern must match "I" as a word only."""
    pattern = dict((w, p) for w, p in FORBIDDEN)["first person singular"]
    assert pattern.search("so I trained one") and pattern.search("my run")
    assert not pattern.search("unique pairs with `i < j`, PairTable(i, j, value)")
