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
    """A 2-epoch model on 2,500 exact pairs among images 0:1400 (pairs only: the examples' serving is the
    point, not the distillation), saved like `wassembed demo` saves its model."""
    import wassembed
    from wassembed.exact import precompute

    d = tmp_path_factory.mktemp("examples-model")
    precompute(digits, d / "cache", pairs=2500, images="0:1400", sampling="blocks", block_size=16, workers=1,
               progress=False, lot=False)
    model = wassembed.train(d / "cache", epochs=2, device="cpu", progress=False)
    model.save(d / "model")
    return d / "model"


def test_every_example_is_tested():
    scripts = {p.name for p in EXAMPLES.glob("*.py") if not p.name.startswith("_")}
    assert scripts == TESTED


def _cluster(D: np.ndarray) -> np.ndarray:
    from sklearn.cluster import AgglomerativeClustering

    return AgglomerativeClustering(n_clusters=10, metric="precomputed", linkage="average").fit_predict(D)


def test_clustering_trains_its_own_model(tmp_path, digits):
    import ot
    from scipy.spatial.distance import pdist, squareform
    from sklearn.metrics import adjusted_rand_score

    import wassembed

    out = run_example("clustering.py", "--tiny", "--work", tmp_path, cwd=tmp_path)
    aris = dict(re.findall(r"^(learned W2² \(model.pdist\)|exact W2² \(POT\)|squared Euclidean on pixels)\s+"
                           r"(-?[0-9.]+)$", out, flags=re.M))
    assert len(aris) == 3, out
    assert all(-1 <= float(v) <= 1 for v in aris.values())
    assert "60 unseen images (1400:1460), 1,770 pairs" in out
    # the printed ARIs are those of the exact matrix it cached and of the pixels, recomputed here
    X, y = digits.weights[1400:1460], digits.labels[1400:1460]
    t = wassembed.DistanceCache.open(tmp_path / "cache-all-pairs-1400-1460").read()
    assert len(t) == 1770 and t.i.min() >= 1400 and t.j.max() < 1460
    M = np.array(digits.ground_cost(2))
    some = np.arange(0, 1770, 177)
    assert np.allclose(t.value[some], [ot.emd2(digits.weights[a], digits.weights[b], M)
                                       for a, b in zip(t.i[some], t.j[some])], rtol=1e-12)
    D = np.zeros((60, 60))
    D[t.i - 1400, t.j - 1400] = D[t.j - 1400, t.i - 1400] = t.value
    assert float(aris["exact W2² (POT)"]) == pytest.approx(adjusted_rand_score(y, _cluster(D)), abs=5e-4)
    pixels = adjusted_rand_score(y, _cluster(squareform(pdist(X, "sqeuclidean"))))
    assert float(aris["squared Euclidean on pixels"]) == pytest.approx(pixels, abs=5e-4)
    # the exact clustering of the digits is far better than chance even on 60 images
    assert float(aris["exact W2² (POT)"]) > 0.2


def test_knn_retrieval(tmp_path, tiny_model):
    out = run_example("knn_retrieval.py", "--tiny", "--model", tiny_model, "--work", tmp_path, cwd=tmp_path)
    rows = {name: (float(rc), int(n.replace(",", ""))) for name, rc, n in re.findall(
        r"^(embedding only|exact re-rank, adaptive \(level 0.99\)|exact re-rank, 20 candidates|brute force "
        r"\(precompute, exact\))\s+([0-9.]+)\s+([0-9,]+)\s", out, flags=re.M)}
    assert len(rows) == 4, out
    assert "5 unseen queries against 300 training images, k = 5" in out
    assert rows["brute force (precompute, exact)"] == (1.0, 5 * 300)  # every (query, reference) pair
    assert rows["exact re-rank, 20 candidates"][1] == 5 * 20  # exactly the 20 best estimates per query
    assert rows["embedding only"][1] == 0
    recall, solves = rows["exact re-rank, adaptive (level 0.99)"]
    assert 0 < solves <= 5 * 300 and (solves < 5 * 300 or recall == 1.0)  # solving everything is brute force
    for rc, _ in rows.values():  # a recall over 5 queries of k = 5 is a multiple of 1/25
        assert 0 <= rc <= 1 and abs(rc * 25 - round(rc * 25)) < 0.03


def test_barycenters(tmp_path, tiny_model, digits):
    """Per class (its first 5 training images x_i, P = mean of W2²(x_i, x_j) over all (i, j)): the printed pixel
    mean objective is the exact one, at most P (W2² is jointly convex); the model's is at least P / 4 (any
    histogram's is, by the triangle inequality of W2)."""
    import wassembed

    out = run_example("barycenters.py", "--tiny", "--model", tiny_model, "--work", tmp_path, cwd=tmp_path)
    for name in ("barycenters.png", "interpolation.png", "principal_directions.png"):
        f = tmp_path / name
        assert f.exists() and f.stat().st_size > 2000, name
    lines = re.findall(r"^\s+(\d)\s+([0-9.]+)\s+([0-9.]+)$", out, flags=re.M)
    assert [int(c) for c, _, _ in lines] == list(range(10))
    solver = wassembed.ExactSolver(np.array(digits.ground_cost(2)), 2)
    labels, W = digits.labels[:1400], digits.weights
    for c, pix, emb in lines:
        members = np.flatnonzero(labels == int(c))[:5]
        i, j = np.triu_indices(5, 1)
        P = 2 * solver.solve_pairs(W, members[i], members[j]).sum() / 25
        mean = W[members].mean(0)
        exact = np.mean(solver.solve_pairs(np.vstack([mean, W[members]]), np.zeros(5, np.int64), np.arange(1, 6)))
        assert float(pix) == pytest.approx(exact, abs=5e-4) and exact <= P * (1 + 1e-9), (c, pix, P)
        assert float(emb) >= P / 4 - 5e-4, (c, emb, P)


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
