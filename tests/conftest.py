"""Shared fixtures. Real MNIST images live in ../shared/data/mnist (never copied into the repository)."""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
MNIST_DIR = Path(os.environ.get("WASSEMBED_MNIST_DIR", ROOT.parent / "shared" / "data" / "mnist"))
MNIST_IMAGES = MNIST_DIR / "mnist-8k-images-idx3-ubyte.gz"


def _share_bytecode_between_subprocesses() -> None:
    """Let this process and the Python subprocesses of the suite cache bytecode, outside the work tree and venv.

    The suite starts over a hundred Python subprocesses (the console entry point, examples, README blocks,
    Dask workers). Where ``PYTHONDONTWRITEBYTECODE`` is set and the venv was installed without byte-compiling
    (``make`` installs with ``--no-compile``), each of them compiled torch, scipy, POT... from source again:
    ~4 s of CPU per process that imports torch, more than most of those tests do. Here this process and its
    subprocesses write their bytecode under one temporary ``PYTHONPYCACHEPREFIX`` (removed at exit, in the
    background: deleting thousands of fresh files can take seconds) and later imports reuse it. What the
    subprocesses run and print is unchanged (a first import still compiles, as before; test_package checks
    POT's compile-time warning with an explicit ``compile``). A prefix the user set, or an environment that
    already writes bytecode, is left alone.
    """
    if not os.environ.get("PYTHONDONTWRITEBYTECODE") or os.environ.get("PYTHONPYCACHEPREFIX"):
        return
    prefix = tempfile.mkdtemp(prefix="wassembed-tests-pycache-")
    atexit.register(_remove_in_background, prefix)
    os.environ["PYTHONPYCACHEPREFIX"] = prefix
    del os.environ["PYTHONDONTWRITEBYTECODE"]
    sys.pycache_prefix, sys.dont_write_bytecode = prefix, False  # this process's imports warm the cache too


def _remove_in_background(path: str) -> None:
    try:
        subprocess.Popen(["rm", "-rf", "--", path], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)
    except OSError:  # no rm: remove it now
        shutil.rmtree(path, ignore_errors=True)


_share_bytecode_between_subprocesses()


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module (``pytestmark = pytest.mark.usefixtures("one_torch_thread")``): on a
    shared 2-core machine, oversubscribed threads are many times slower; restored afterwards."""
    torch = pytest.importorskip("torch")
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(autouse=True)
def _pot_backend_env():
    """Undo what an in-process exact-stage command sets (POT_BACKEND_DISABLE_*), so that it does not leak into
    the environment of the subprocesses that later tests start."""
    from wassembed._deps import POT_EXACT_ONLY_ENV

    before = {k: os.environ.get(k) for k in POT_EXACT_ONLY_ENV}
    yield
    for k, v in before.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session")
def mnist_path() -> Path:
    if not MNIST_IMAGES.exists():
        pytest.skip(f"shared MNIST images not found at {MNIST_IMAGES} (set WASSEMBED_MNIST_DIR)")
    return MNIST_IMAGES


@pytest.fixture(scope="session")
def digits():
    from wassembed.data import load_dataset

    return load_dataset("digits")


@pytest.fixture(scope="session")
def small_digits(digits):
    return digits.subset(np.arange(60))


def content(path):
    """``(i, j, value)`` of every pair in the cache at ``path``."""
    from wassembed.exact import DistanceCache

    t = DistanceCache.open(path).read()
    return t.i, t.j, t.value


def same(a, b) -> bool:
    """Two :func:`content` tuples hold equal arrays."""
    return all(np.array_equal(x, y) for x, y in zip(a, b))


def shard_bytes(path) -> dict:
    """``{file name: bytes}`` of the cache's shards (byte-for-byte comparisons of two caches)."""
    return {f.name: f.read_bytes() for f in sorted((Path(path) / "shards").glob("*.npz"))}


def random_images(n, seed=0, grid=(6, 6)) -> np.ndarray:
    """``n`` random uint8 images of ``grid``, none all zero (pixel (0, 0) is at least 1)."""
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 256, (n, *grid)).astype(np.uint8)
    X[:, 0, 0] = 1
    return X


class BackgroundRun:
    """A command started in a subprocess now and waited for later (tests that start several at once share the
    cores); its output goes to files next to ``cwd``, so that runs side by side never block on a full pipe."""

    def __init__(self, cmd: list, *, cwd: Path, env: dict, timeout: float = 300):
        self.name, self.deadline = " ".join(map(str, cmd[:3])), time.monotonic() + timeout
        self.out, self.err = ((cwd.parent / f"{cwd.name}.{what}").open("w+") for what in ("stdout", "stderr"))
        self.proc = subprocess.Popen([str(c) for c in cmd], cwd=cwd, stdout=self.out, stderr=self.err, text=True,
                                     env=env)

    def result(self) -> tuple[int, str, str]:
        """Wait (killed past its deadline, raising TimeoutExpired); its exit status, stdout and stderr."""
        try:
            self.proc.wait(timeout=max(self.deadline - time.monotonic(), 0))
        except subprocess.TimeoutExpired:
            self.kill()
            raise
        texts = []
        for fh in (self.out, self.err):
            fh.seek(0)
            texts.append(fh.read())
            fh.close()
        return self.proc.returncode, texts[0], texts[1]

    def stdout(self) -> str:
        """:meth:`result`'s stdout, once the command exited 0."""
        rc, out, err = self.result()
        assert rc == 0, f"{self.name} exited {rc}\nstdout:\n{out}\nstderr:\n{err}"
        return out

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


# -- waiting on events, not on the clock ------------------------------------------------------------------
#: environment of a child whose progress the test follows: one plain line per update (``precompute: 80/3,000
#: pairs ...`` after each shard is written; ``epoch 3/24: ...`` after each training epoch) on a non-terminal
PROGRESS_LINES = {"WASSEMBED_PROGRESS_INTERVAL": "0"}


def read_until(stream, found, what: str) -> list[str]:
    """Read ``stream`` (a child's text pipe) line by line, blocking, until ``found(line)`` holds; the lines read.

    No clock: the call returns on the child's own report of the event. A child that ends (end of file) before
    reporting it fails the test, naming ``what`` and showing what it printed; a child that hangs is stopped by
    pytest-timeout like any hung test.
    """
    lines = []
    for line in iter(stream.readline, ""):
        lines.append(line.rstrip("\n"))
        if found(lines[-1]):
            return lines
    raise AssertionError(f"the child ended before {what}; it printed:\n" + "\n".join(lines[-20:]))


def progress_count(line: str, desc: str = "precompute") -> int | None:
    """Units done in a plain progress line of ``desc`` (``precompute: 1,200/3,000 pairs ...`` → 1200), else None.

    Examples
    --------
    >>> progress_count("precompute: 1,200/3,000 pairs (40.0 %), 900 pairs/s, ETA 2 s"), progress_count("x")
    (1200, None)
    """
    head = f"{desc}: "
    if not line.startswith(head):
        return None
    return int(line[len(head):].split("/", 1)[0].split(" ", 1)[0].replace(",", ""))


def wait_until(ready, what: str, *, proc=None, timeout: float = 300.0) -> None:
    """Wait until ``ready()`` holds: a file a child creates, workers that joined a scheduler (states with no
    stream to block on), checked every 10 ms.

    Fails naming ``what`` when ``proc`` (a ``Popen``) ended first, or after ``timeout`` s: a guard against a
    hang, far beyond any expected wait, never a timing assumption of the test.
    """
    deadline = time.monotonic() + timeout
    while not ready():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the child exited with {proc.returncode} before {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} after {timeout:g} s")
        time.sleep(0.01)


def run_cli(*args, check=False, timeout=300, **kw) -> subprocess.CompletedProcess:
    """Run the real console entry point in a subprocess."""
    proc = subprocess.run([sys.executable, "-m", "wassembed", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, **kw)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc
