"""A hang fails the run: the suite's two guards, tried on tiny test files that hang in a subprocess.

``make test`` once hung for 10 minutes in a Dask test and still exited 0: pytest-timeout's alarm (SIGALRM)
fired inside a Dask client's finaliser, run by the garbage collector, where Python swallows exceptions. The
project now uses pytest-timeout's thread method (``pyproject.toml``) and ``make suite`` runs pytest under an
outer ``timeout`` (the Makefile). Each case runs pytest with the project's own configuration on a file that
hangs, with the limits made small, and checks the exit code.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytest.importorskip("pytest_timeout")

#: a test that sleeps past its limit
SLEEPS = """
import time


def test_sleeps_past_the_limit():
    time.sleep(60)
"""

#: a test whose garbage collection runs a finaliser that hangs (the incident: a Dask client's cleanup)
HANGS_IN_FINALISER = """
import gc
import time


class Stuck:
    def __del__(self):
        time.sleep(60)  # a finaliser that never returns in time


def test_finaliser_hangs_during_garbage_collection():
    s = Stuck()
    s.cycle = s  # a reference cycle: freed by the garbage collector, not when the name goes
    del s
    gc.collect()
"""

#: a test that passes but leaves a non-daemon thread: the interpreter hangs at exit, after every test
HANGS_AT_EXIT = """
import threading
import time


def test_passes_but_the_process_cannot_exit():
    threading.Thread(target=time.sleep, args=(600,), name="never-joined").start()
"""


def _pytest(tmp_path: Path, source: str, *options: str) -> subprocess.CompletedProcess:
    """Run pytest on ``source`` with the project's configuration (pyproject.toml) and a 1 s test limit."""
    test = tmp_path / "test_hang.py"
    test.write_text(textwrap.dedent(source))
    cmd = [sys.executable, "-m", "pytest", "-q", "-c", str(ROOT / "pyproject.toml"), "--rootdir", str(tmp_path),
           "-p", "no:cacheprovider", "-o", "timeout=1", *options, str(test)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=tmp_path)


def test_a_test_past_its_limit_fails_the_run(tmp_path):
    t = time.monotonic()
    proc = _pytest(tmp_path, SLEEPS)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert "Timeout" in out and "test_sleeps_past_the_limit" in out  # the stacks of the hung run are shown
    assert time.monotonic() - t < 60


def test_a_hang_in_a_finaliser_fails_the_run(tmp_path):
    """The incident's shape: with the project's method the run fails; with SIGALRM (pytest-timeout's default
    on Linux, the method of the incident) the same hang passes with exit code 0."""
    proc = _pytest(tmp_path, HANGS_IN_FINALISER)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert "Timeout" in out and "__del__" in out
    alarm = _pytest(tmp_path, HANGS_IN_FINALISER, "-o", "timeout_method=signal")
    assert alarm.returncode == 0 and "1 passed" in alarm.stdout, alarm.stdout + alarm.stderr


@pytest.mark.skipif(not (shutil.which("make") and shutil.which("timeout")), reason="needs make and coreutils' timeout")
def test_make_suite_fails_a_run_that_hangs_after_its_tests(tmp_path):
    """``make suite`` (what ``make test`` runs after the lint) with a 4 s limit on the whole run: pytest passes
    its one test, then cannot exit; the outer guard dumps the stacks and the run fails."""
    test = tmp_path / "test_hang.py"
    test.write_text(textwrap.dedent(HANGS_AT_EXIT))
    args = f"-c {ROOT / 'pyproject.toml'} --rootdir {tmp_path} -p no:cacheprovider {test}"
    cmd = ["make", "-s", "--no-print-directory", "-C", str(ROOT), "suite", f"BIN={Path(sys.executable).parent}",
           "SUITE_LIMIT=4", f"PYTEST_ARGS={args}"]
    t = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=dict(os.environ, MAKEFLAGS=""))
    out = proc.stdout + proc.stderr
    assert "1 passed" in proc.stdout, out  # the test itself passed: only the outer guard can fail this run
    assert proc.returncode != 0, out
    assert "never-joined" in out or "most recent call first" in out  # faulthandler's dump of the stuck threads
    assert 4 <= time.monotonic() - t < 60
