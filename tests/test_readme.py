"""The README's code runs as written.

- every ```python block runs, in a fresh temporary directory, in a subprocess (as a user would paste it);
- every ```bash block preceded by ``<!-- readme-test: run -->`` runs there too, with this environment's
  ``wassembed`` on the PATH (the blocks run side by side: see ``block_runs``);
- every ``wassembed …`` command shown anywhere (blocks of README.md and docs/*.md, inline code of the README)
  names real subcommands whose ``--help`` works, and only options those subcommands have;
- every ``make`` target, ``pip install`` extra and example script named in the README exists.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from wassembed.cli import main

from .conftest import BackgroundRun

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
RUN_MARK = "<!-- readme-test: run -->"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)


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
    README, its inline code)."""
    found = []
    for lang in ("bash", "sh", "console"):
        for line_no, code, _ in blocks(path, lang):
            for line in shell_lines(code):
                m = re.search(r"(?:^|[\s/$])wassembed\s+(.*)$", line)
                if m and not line.lstrip().startswith(("pip", "import", "from")):
                    found.append((f"{path.name}:{line_no}", m.group(1)))
    if path == README:
        for m in re.finditer(r"`wassembed ([^`]+)`", path.read_text()):
            found.append((f"{path.name} inline", m.group(1)))
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
    assert len(blocks(README, "python")) >= 1
    assert any(run for _, _, run in blocks(README, "bash")), f"no bash block marked {RUN_MARK!r}"


PYTHON_BLOCKS = [(n, c) for n, c, _ in blocks(README, "python")]
SHELL_BLOCKS = [(n, c) for n, c, run in blocks(README, "bash") if run]
BLOCK_TIMEOUT = 300  # seconds, for each block, from its start


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


@pytest.fixture(scope="module")
def block_runs(request, tmp_path_factory):
    """Every README block selected in this session, all started at once, each in its own fresh directory.

    Why at once: the quick-start python block and the marked shell block each precompute the same caches and
    train the same 10-epoch model on one torch thread (the README's ``threads=1`` / ``--threads 1``), which
    leaves a core idle; run one after the other they were the two slowest tests of the suite (~100 s of a
    loaded 2-core machine). Started together they share the two cores and take about the time of the slower
    one. Each still runs as written, alone in a fresh directory (neither reuses the other's caches or model:
    ``wassembed train`` refuses an --out that holds a model, as the python block leaves it), and each test
    below checks its own block's exit status and shows its own output.
    """
    me = sys.modules[__name__]
    wanted = {"test_python_blocks_run": ("python", dict(PYTHON_BLOCKS)),
              "test_marked_shell_blocks_run": ("bash", dict(SHELL_BLOCKS))}
    runs: dict = {}
    for item in request.session.items:
        name = getattr(item, "originalname", None)
        if getattr(item, "module", None) is not me or name not in wanted or not hasattr(item, "callspec"):
            continue
        kind, codes = wanted[name]
        line = item.callspec.params["line"]
        if (kind, line) in runs or (kind == "bash" and _console_bindir() is None):
            continue
        runs[(kind, line)] = _start_block(kind, codes[line], tmp_path_factory.mktemp(f"readme-{kind}-{line}"))
    yield runs
    for run in runs.values():  # a test that did not wait for its block (stopped early): no stray process
        run.kill()


def _block_result(block_runs, kind: str, line: int, code: str, tmp_path: Path) -> tuple[int, str, str]:
    run = block_runs.get((kind, line)) or _start_block(kind, code, tmp_path)
    return run.result()


@pytest.mark.parametrize("line, code", PYTHON_BLOCKS)
def test_python_blocks_run(line, code, tmp_path, block_runs):
    rc, out, err = _block_result(block_runs, "python", line, code, tmp_path)
    assert rc == 0, f"README.md:{line} failed\n{out}\n{err[-3000:]}"


@pytest.mark.parametrize("line, code", SHELL_BLOCKS)
def test_marked_shell_blocks_run(line, code, tmp_path, block_runs):
    if _console_bindir() is None:
        pytest.skip(f"no wassembed console script beside {sys.executable}")
    rc, out, err = _block_result(block_runs, "bash", line, code, tmp_path)
    assert rc == 0, f"README.md:{line} failed\n{out}\n{err[-3000:]}"


COMMANDS = [c for path in (README, *DOCS) for c in wassembed_commands(path)]


def test_commands_were_found():
    assert sum(where.startswith("README") for where, _ in COMMANDS) >= 15


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
    text = README.read_text()
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
