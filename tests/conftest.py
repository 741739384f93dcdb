"""Shared fixtures. Real MNIST images live in ../shared/data/mnist (never copied into the repository)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
MNIST_DIR = Path(os.environ.get("WASSEMBED_MNIST_DIR", ROOT.parent / "shared" / "data" / "mnist"))
MNIST_IMAGES = MNIST_DIR / "mnist-8k-images-idx3-ubyte.gz"


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


def run_cli(*args, check=False, timeout=300, **kw) -> subprocess.CompletedProcess:
    """Run the real console entry point in a subprocess."""
    proc = subprocess.run([sys.executable, "-m", "wassembed", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, **kw)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc
