"""Every script in examples/ runs end to end at a tiny size (as a user would run it: a subprocess)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
TESTED = {"clustering.py", "knn_retrieval.py", "barycenters.py", "dask_precompute.py"}


def run_example(name: str, *args, cwd: Path, timeout: int = 240) -> str:
    env = dict(os.environ, PYTHONWARNINGS="ignore::DeprecationWarning")
    proc = subprocess.run([sys.executable, str(EXAMPLES / name), *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env=env)
    assert proc.returncode == 0, f"{name} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc.stdout


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory, digits):
    """A 2-epoch model on 2,500 exact pairs among images 0:1400, saved like `wassembed demo` saves its model."""
    import wassembed
    from wassembed.exact import precompute

    d = tmp_path_factory.mktemp("examples-model")
    precompute(digits, d / "cache", pairs=2500, images="0:1400", sampling="blocks", block_size=16, workers=1,
               progress=False)
    model = wassembed.train(d / "cache", epochs=2, device="cpu", progress=False)
    model.save(d / "model")
    return d / "model"


def test_every_example_is_tested():
    scripts = {p.name for p in EXAMPLES.glob("*.py") if not p.name.startswith("_")}
    assert scripts == TESTED


def test_clustering_trains_its_own_model(tmp_path):
    out = run_example("clustering.py", "--tiny", "--work", tmp_path, cwd=tmp_path)
    aris = dict(re.findall(r"^(learned W2² \(model.pdist\)|exact W2² \(POT\)|squared Euclidean on pixels)\s+"
                           r"(-?[0-9.]+)$", out, flags=re.M))
    assert len(aris) == 3, out
    assert all(-1 <= float(v) <= 1 for v in aris.values())
    # the exact clustering of the digits is far better than chance even on 60 images
    assert float(aris["exact W2² (POT)"]) > 0.2
    assert "60 unseen images (1400:1460), 1,770 pairs" in out


def test_knn_retrieval(tmp_path, tiny_model):
    out = run_example("knn_retrieval.py", "--tiny", "--model", tiny_model, "--work", tmp_path, cwd=tmp_path)
    rows = dict(re.findall(r"^(embedding only|exact re-rank, adaptive \(level 0.99\)|brute force \(precompute, "
                           r"exact\))\s+([0-9.]+)\s", out, flags=re.M))
    assert len(rows) == 3, out
    assert float(rows["brute force (precompute, exact)"]) == 1.0
    assert 0 <= float(rows["embedding only"]) <= 1
    assert "5 unseen queries against 300 training images, k = 5" in out


def test_barycenters(tmp_path, tiny_model):
    out = run_example("barycenters.py", "--tiny", "--model", tiny_model, "--work", tmp_path, cwd=tmp_path)
    for name in ("barycenters.png", "interpolation.png", "principal_directions.png"):
        f = tmp_path / name
        assert f.exists() and f.stat().st_size > 2000, name
    lines = re.findall(r"^\s+(\d)\s+([0-9.]+)\s+([0-9.]+)$", out, flags=re.M)
    assert [int(c) for c, _, _ in lines] == list(range(10))
    assert all(float(a) > 0 and float(b) > 0 for _, a, b in lines)


def test_dask_precompute(tmp_path):
    pytest.importorskip("distributed")
    out = run_example("dask_precompute.py", "--tiny", "--work", tmp_path, cwd=tmp_path)
    assert "Dask (2 workers): 600 pairs" in out
    assert "rerun: 600 already cached, 0 computed" in out
    assert "same pairs: True; max |difference| of values: 0.0e+00" in out


def test_examples_output_identical_to_library(tmp_path, tiny_model, digits):
    """The clustering example's learned matrix is the model's pdist (no hidden preprocessing)."""
    from scipy.spatial.distance import squareform

    import wassembed

    model = wassembed.load(tiny_model)
    X = digits.weights[1400:1410]
    D = squareform(np.asarray(model.pdist(X), dtype=np.float64))
    C = np.asarray(model.cdist(X, X), dtype=np.float64)
    np.testing.assert_allclose(D, C - np.diag(np.diag(C)), rtol=1e-4, atol=1e-4)
