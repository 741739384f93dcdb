"""The README's and the user guide's code runs as written.

- every ```python block of README.md and docs/guide/*.md runs, in a fresh temporary directory, in a subprocess
  (as a user would paste it);
- every ```bash block of those pages preceded by ``<!-- readme-test: run -->`` runs there too, with this
  environment's ``wassembed`` on the PATH (the blocks run side by side: see ``block_runs``);
- every ``wassembed …`` command shown anywhere (blocks of README.md, docs/*.md and docs/guide/*.md, inline code
  of the README and the guide) names real subcommands whose ``--help`` works, and only options those
  subcommands have;
- every ``make`` target, ``pip install`` extra and example script named in the README or the guide exists.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
import time
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from wassembed.cli import main

from .conftest import BackgroundRun

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
GUIDE = sorted((ROOT / "docs" / "guide").glob("*.md"))
#: pages whose python blocks and marked shell blocks run, and whose inline `wassembed …` code is checked
RUN_PAGES = [README, *GUIDE]
RUN_MARK = "<!-- readme-test: run -->"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)


def page_name(path: Path) -> str:
    """``path`` relative to the clone (``README.md``, ``docs/guide/pairs.md``): what messages and test ids show."""
    return path.relative_to(ROOT).as_posix()


def blocks(path: Path, lang: str) -> list[tuple[int, str, bool]]:
    """``(line, code, marked to run)`` of each fenced block of ``lang`` in ``path``."""
    text = path.read_text()
    out = []
    for m in FENCE.finditer(text):
        if m.group(1) == lang:
            before = text[:m.start()].rstrip("\n").rsplit("\n", 1)[-1]
            out.append((text.count("\n", 0, m.start()) + 1, m.group(2), before.strip() == RUN_MARK))
    return out


def shell_lines(code: str) -> list[str]:
    """Logical lines of a shell block: comments dropped, ``\\`` and indented continuations joined."""
    lines: list[str] = []
    for raw in code.splitlines():
        line = raw.split(" #", 1)[0].rstrip() if not raw.lstrip().startswith("#") else ""
        if not line:
            continue
        if lines and (lines[-1].endswith("\\") or raw[:1].isspace()):
            lines[-1] = lines[-1].rstrip("\\").rstrip() + " " + line.strip()
        else:
            lines.append(line)
    return lines


def wassembed_commands(path: Path) -> list[tuple[str, str]]:
    """``(where, command line)`` of each ``wassembed`` command in the shell blocks of ``path`` (and, for the
    README and the guide's pages, their inline code)."""
    found = []
    for lang in ("bash", "sh", "console"):
        for line_no, code, _ in blocks(path, lang):
            for line in shell_lines(code):
                m = re.search(r"(?:^|[\s/$])wassembed\s+(.*)$", line)
                if m and not line.lstrip().startswith(("pip", "import", "from")):
                    found.append((f"{page_name(path)}:{line_no}", m.group(1)))
    if path in RUN_PAGES:
        for m in re.finditer(r"`wassembed ([^`]+)`", path.read_text()):
            found.append((f"{page_name(path)} inline", m.group(1)))
    return found


def _resolve(words: list[str]) -> list[tuple[list[str], click.Command]]:
    """The subcommand paths named by the leading words (``a|b`` gives one path per alternative); [] when a
    word after a group is not one of its subcommands."""
    paths: list[tuple[list[str], click.Command]] = [([], main)]
    for word in words:
        if not all(isinstance(cmd, click.Group) for _, cmd in paths):
            break
        nxt = []
        for names, group in paths:
            with click.Context(group) as ctx:
                for alt in word.split("|"):
                    sub = group.get_command(ctx, alt)
                    if sub is None:
                        return []
                    nxt.append(([*names, alt], sub))
        paths = nxt
    return paths


def _options(cmd: click.Command) -> set[str]:
    """Options of ``cmd``; for a group, those of any of its subcommands (``wassembed bench … --data``)."""
    opts = {o for p in cmd.params for o in (*p.opts, *p.secondary_opts)} | {"--help", "-h"}
    if isinstance(cmd, click.Group):
        with click.Context(cmd) as ctx:
            for name in cmd.list_commands(ctx):
                opts |= _options(cmd.get_command(ctx, name))
    return opts


def test_readme_has_the_blocks_this_test_runs():
    """The README shows the quick start in Python and on the command line, and point clouds; the guide's pages
    carry the longer examples, which run here too; the README links every page of the guide."""
    assert len(blocks(README, "python")) >= 2  # the quick start and point clouds
    assert any(run for _, _, run in blocks(README, "bash")), f"no bash block of README.md marked {RUN_MARK!r}"
    assert len(GUIDE) >= 8 and (ROOT / "docs" / "guide" / "README.md") in GUIDE
    with_python = [page_name(p) for p in GUIDE if blocks(p, "python")]
    assert len(with_python) >= 6, with_python
    assert any(run for p in GUIDE for _, _, run in blocks(p, "bash")), f"no bash block of the guide marked {RUN_MARK!r}"
    readme, index = README.read_text(), (ROOT / "docs" / "guide" / "README.md").read_text()
    for page in GUIDE:
        assert f"(docs/guide/{page.name})" in readme, f"README.md does not link {page_name(page)}"
        assert page.name == "README.md" or f"]({page.name})" in index, f"the guide's index does not link {page.name}"


PYTHON_BLOCKS = [(f"{page_name(p)}:{n}", c) for p in RUN_PAGES for n, c, _ in blocks(p, "python")]
SHELL_BLOCKS = [(f"{page_name(p)}:{n}", c) for p in RUN_PAGES for n, c, run in blocks(p, "bash") if run]
BLOCK_TIMEOUT = 300  # seconds, for each block, from its start
#: blocks running at once: a few more than one, since each spends part of its time starting Python and torch
BLOCK_SLOTS = 3


def _console_bindir() -> Path | None:
    bindir = Path(sys.executable).parent
    return bindir if (bindir / "wassembed").exists() else None


def _start_block(kind: str, code: str, cwd: Path) -> BackgroundRun:
    """Start one block as a user would paste it."""
    if kind == "python":
        cmd, env = [sys.executable, "-c", code], dict(os.environ, PYTHONWARNINGS="ignore")
    else:
        bindir = _console_bindir()
        cmd = ["bash", "-euo", "pipefail", "-c", code]
        env = dict(os.environ, PATH=f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}", PYTHONWARNINGS="ignore")
    return BackgroundRun(cmd, cwd=cwd, env=env, timeout=BLOCK_TIMEOUT)


class _BlockRuns:
    """The selected blocks, started in the order of the tests, at most :data:`BLOCK_SLOTS` at a time: the next one
    starts whenever a running one has ended (checked while any test waits). Each block's time limit runs from its
    own start; a block past it is killed, so that it cannot hold a slot."""

    def __init__(self, specs: list[tuple[tuple[str, str], str, str, Path]]):
        self.pending = list(specs)  # (key, kind, code, cwd)
        self.runs: dict[tuple[str, str], BackgroundRun] = {}
        self._fill()

    def _fill(self) -> None:
        for run in self.runs.values():  # a block past its time limit gives its slot up (its test then fails)
            if run.proc.poll() is None and time.monotonic() > run.deadline:
                run.kill()
        running = sum(run.proc.poll() is None for run in self.runs.values())
        while self.pending and running < BLOCK_SLOTS:
            key, kind, code, cwd = self.pending.pop(0)
            self.runs[key] = _start_block(kind, code, cwd)
            running += 1

    def __contains__(self, key) -> bool:
        return key in self.runs or any(spec[0] == key for spec in self.pending)

    def result(self, key: tuple[str, str]) -> tuple[int, str, str]:
        while key not in self.runs or (self.runs[key].proc.poll() is None
                                       and time.monotonic() < self.runs[key].deadline):
            self._fill()
            time.sleep(0.05)
        out = self.runs[key].result()  # past its time limit: killed (TimeoutExpired, or exit status -9)
        self._fill()
        return out

    def kill(self) -> None:
        self.pending.clear()
        for run in self.runs.values():
            run.kill()


@pytest.fixture(scope="module")
def block_runs(request, tmp_path_factory):
    """Every README and guide block selected in this session, started side by side, each in its own fresh
    directory.

    Why side by side: the quick-start python block and the marked shell block each precompute the same caches
    and train the same 10-epoch model on one torch thread, which leaves a core idle, and the guide's blocks
    spend much of their time starting Python and torch; run one after the other they would be the slowest
    tests of the suite. Started a few at a time (:class:`_BlockRuns`) they share the two cores. Each still runs
    as written, alone in a fresh directory (none reuses another's caches or model: ``wassembed train`` refuses
    an --out that holds a model, as the python block leaves it), and each test below checks its own block's
    exit status and shows its own output.
    """
    me = sys.modules[__name__]
    wanted = {"test_python_blocks_run": ("python", dict(PYTHON_BLOCKS)),
              "test_marked_shell_blocks_run": ("bash", dict(SHELL_BLOCKS))}
    specs: list = []
    for item in request.session.items:
        name = getattr(item, "originalname", None)
        if getattr(item, "module", None) is not me or name not in wanted or not hasattr(item, "callspec"):
            continue
        kind, codes = wanted[name]
        where = item.callspec.params["where"]
        if any(spec[0] == (kind, where) for spec in specs) or (kind == "bash" and _console_bindir() is None):
            continue
        folder = tmp_path_factory.mktemp(f"{kind}-{re.sub(r'[^A-Za-z0-9]+', '-', where)}")
        specs.append(((kind, where), kind, codes[where], folder))
    runs = _BlockRuns(specs)
    yield runs
    runs.kill()  # a test that did not wait for its block (stopped early): no stray process


def _block_result(block_runs, kind: str, where: str, code: str, tmp_path: Path) -> tuple[int, str, str]:
    if (kind, where) in block_runs:
        return block_runs.result((kind, where))
    return _start_block(kind, code, tmp_path).result()


@pytest.mark.parametrize("where, code", PYTHON_BLOCKS, ids=[w for w, _ in PYTHON_BLOCKS])
def test_python_blocks_run(where, code, tmp_path, block_runs):
    rc, out, err = _block_result(block_runs, "python", where, code, tmp_path)
    assert rc == 0, f"{where} failed\n{out}\n{err[-3000:]}"


@pytest.mark.parametrize("where, code", SHELL_BLOCKS, ids=[w for w, _ in SHELL_BLOCKS])
def test_marked_shell_blocks_run(where, code, tmp_path, block_runs):
    if _console_bindir() is None:
        pytest.skip(f"no wassembed console script beside {sys.executable}")
    rc, out, err = _block_result(block_runs, "bash", where, code, tmp_path)
    assert rc == 0, f"{where} failed\n{out}\n{err[-3000:]}"


COMMANDS = [c for path in (README, *DOCS, *GUIDE) for c in wassembed_commands(path)]


def test_commands_were_found():
    """The README shows the quick start's commands; the guide shows every command (its command-line page)."""
    assert sum(where.startswith("README.md") for where, _ in COMMANDS) >= 6
    assert sum(where.startswith("docs/guide/") for where, _ in COMMANDS) >= 30
    shown = {command.split()[0] for where, command in COMMANDS if where.startswith("docs/guide/")}
    with click.Context(main) as ctx:
        assert set(main.list_commands(ctx)) <= shown, set(main.list_commands(ctx)) - shown


@pytest.mark.parametrize("where, command", COMMANDS)
def test_every_command_shown_exists_with_its_options(where, command):
    words = [w.strip("[]") for w in shlex.split(command.replace("…", ""), posix=True)]
    words = [w for w in words if w]
    paths = _resolve([w for w in words if not w.startswith("-")][:3])
    assert paths, f"{where}: `wassembed {command}`: no such command"
    used = {w.split("=", 1)[0] for w in words if re.fullmatch(r"--?[A-Za-z][\w-]*(=.*)?", w)}
    for names, cmd in paths:
        r = CliRunner().invoke(main, [*names, "--help"])
        assert r.exit_code == 0, f"{where}: `wassembed {' '.join(names)} --help` failed: {r.output}"
        unknown = used - _options(cmd)
        assert not unknown, f"{where}: `wassembed {' '.join(names)}` has no option {sorted(unknown)}"


def test_make_targets_extras_and_examples_named_in_the_readme_exist():
    """... and in the guide (the examples' table is on its demo page)."""
    text = "\n".join(p.read_text() for p in RUN_PAGES)
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([\w-]+):", makefile, flags=re.M))
    named = set(re.findall(r"(?:^|`)make ([\w-]+)", text, flags=re.M))
    assert named and named <= targets, named - targets
    tomllib = pytest.importorskip("tomllib")
    extras = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"])
    wanted = {e for group in re.findall(r"wassembed\[([\w,]+)\]", text) for e in group.split(",")}
    assert wanted and wanted <= extras, wanted - extras
    scripts = set(re.findall(r"python (examples/\w+\.py)", text))
    assert scripts and all((ROOT / s).exists() for s in scripts), scripts
