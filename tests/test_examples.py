"""Every script in examples/ runs end to end at a tiny size (as a user would run it: a subprocess).

The scripts run side by side (see ``example_runs``); each test checks its own script's output.
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from .conftest import BackgroundRun

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
TESTED = {"clustering.py", "knn_retrieval.py", "barycenters.py", "dask_precompute.py", "point_clouds.py"}


def example_run(name: str, *args, cwd: Path, timeout: int = 240) -> BackgroundRun:
    """One example script started in a subprocess, as a user would run it."""
    env = dict(os.environ, PYTHONWARNINGS="ignore::DeprecationWarning")
    return BackgroundRun([sys.executable, EXAMPLES / name, *args], cwd=cwd, env=env, timeout=timeout)


class _Failed:
    """Stands for a run that could not start: its test raises what stopped it."""

    def __init__(self, exc: BaseException):
        self.exc = exc

    def stdout(self) -> str:
        raise self.exc

    def kill(self) -> None:
        pass


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory, digits):
    """A 2-epoch model on 2,500 exact pairs among images 0:1400 (pairs only: the examples' serving is the
    point, not the distillation), saved like `wassembed demo` saves its model."""
    import wassembed
    from wassembed.exact import precompute

    d = tmp_path_factory.mktemp("examples-model")
    precompute(digits, d / "cache", pairs=2500, images="0:1400", sampling="blocks", block_size=16, workers=1,
               progress=False, lot=False)
    # one torch thread: it is trained while `example_runs` runs two examples on the cores
    model = wassembed.train(d / "cache", epochs=2, device="cpu", progress=False, threads=1)
    model.save(d / "model")
    return d / "model"


@pytest.fixture(scope="module")
def example_runs(request, tmp_path_factory):
    """The example runs of the tests selected in this session, all started at once: ``{test: (run, work)}``.

    Each example still runs alone in a fresh work folder, as a user would run it, and its test checks its
    output as before; only the waiting is shared. One after the other they left a core of a 2-core machine
    mostly idle (imports, one-thread torch models, Dask start-up and shutdown): the clustering and Dask
    examples start first, the two that serve ``tiny_model`` as soon as it is trained here meanwhile.
    """
    me = sys.modules[__name__]
    selected = {getattr(item, "originalname", None) for item in request.session.items
                if getattr(item, "module", None) is me}
    runs: dict = {}

    def start(test: str, script: str, *args) -> None:
        if test in selected:
            work = tmp_path_factory.mktemp(script.removesuffix(".py"))
            runs[test] = (example_run(script, "--tiny", *args, "--work", work, cwd=work), work)

    try:
        start("test_clustering_trains_its_own_model", "clustering.py")
        if importlib.util.find_spec("geomloss") is not None:  # the point-cloud model's reconstruction loss
            start("test_point_clouds", "point_clouds.py")
        if importlib.util.find_spec("distributed") is not None:
            start("test_dask_precompute", "dask_precompute.py")
        if selected & {"test_knn_retrieval", "test_barycenters"}:
            try:
                model = request.getfixturevalue("tiny_model")
            except Exception as exc:  # reported by the tests that need the model, not by the others
                runs.update({test: (_Failed(exc), None) for test in ("test_knn_retrieval", "test_barycenters")})
            else:
                start("test_knn_retrieval", "knn_retrieval.py", "--model", model)
                start("test_barycenters", "barycenters.py", "--model", model)
        yield runs
    finally:
        for run, _ in runs.values():  # a test that did not wait for its run (stopped early): no stray process
            run.kill()


def test_every_example_is_tested():
    scripts = {p.name for p in EXAMPLES.glob("*.py") if not p.name.startswith("_")}
    assert scripts == TESTED


def _cluster(D: np.ndarray) -> np.ndarray:
    from sklearn.cluster import AgglomerativeClustering

    return AgglomerativeClustering(n_clusters=10, metric="precomputed", linkage="average").fit_predict(D)


def test_clustering_trains_its_own_model(example_runs, digits):
    import ot
    from scipy.spatial.distance import pdist, squareform
    from sklearn.metrics import adjusted_rand_score

    import wassembed

    run, work = example_runs["test_clustering_trains_its_own_model"]  # clustering.py --tiny --work WORK
    out = run.stdout()
    aris = dict(re.findall(r"^(learned W2² \(model.pdist\)|exact W2² \(POT\)|squared Euclidean on pixels)\s+"
                           r"(-?[0-9.]+)$", out, flags=re.M))
    assert len(aris) == 3, out
    assert all(-1 <= float(v) <= 1 for v in aris.values())
    assert "60 unseen images (1400:1460), 1,770 pairs" in out
    # the printed ARIs are those of the exact matrix it cached and of the pixels, recomputed here
    X, y = digits.weights[1400:1460], digits.labels[1400:1460]
    t = wassembed.DistanceCache.open(work / "cache-all-pairs-1400-1460").read()
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


def test_knn_retrieval(example_runs):
    out = example_runs["test_knn_retrieval"][0].stdout()  # knn_retrieval.py --tiny --model TINY_MODEL --work WORK
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


def test_barycenters(example_runs, digits):
    """Per class (its first 5 training images x_i, P = mean of W2²(x_i, x_j) over all (i, j)): the printed pixel
    mean objective is the exact one, at most P (W2² is jointly convex); the model's is at least P / 4 (any
    histogram's is, by the triangle inequality of W2)."""
    import wassembed

    run, work = example_runs["test_barycenters"]  # barycenters.py --tiny --model TINY_MODEL --work WORK
    out = run.stdout()
    for name in ("barycenters.png", "interpolation.png", "principal_directions.png"):
        f = work / name
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


def test_dask_precompute(example_runs):
    pytest.importorskip("distributed")
    out = example_runs["test_dask_precompute"][0].stdout()  # dask_precompute.py --tiny --work WORK
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


@pytest.mark.skipif(importlib.util.find_spec("geomloss") is None, reason="point-cloud models need GeomLoss")
def test_point_clouds(example_runs, digits):
    """The tiny run: its figure, and barycenter objectives that respect the bound every cloud b obeys,
    mean_i W2²(b, x_i) >= P / 4 with P the mean W2² between the class's members (triangle inequality of W2),
    and a best member no worse than the average member."""
    from wassembed.data import mnist_clouds
    from wassembed.exact import CloudSolver

    run, work = example_runs["test_point_clouds"]
    out = run.stdout()
    assert (work / "cloud_barycenters.png").stat().st_size > 5000
    assert -1 <= float(re.search(r"Pearson r (-?[0-9.]+)", out).group(1)) <= 1
    assert re.search(r"(\d)/5 queries equal brute force", out), out
    clouds = mnist_clouds(digits.images(), seed=0, labels=digits.labels)
    solver = CloudSolver(2)
    rows = re.findall(r"^\s+(\d)\s+([0-9.]+)\s+([0-9.]+)\s+([0-9.]+)$", out, flags=re.M)
    assert [int(c) for c, *_ in rows] == list(range(10))
    for c, ours, pot, best in rows:
        members = np.flatnonzero(clouds.labels[:200] == int(c))[:5]
        P = np.mean([solver.solve(clouds.cloud(int(a)), clouds.cloud(int(b))) for a in members for b in members])
        assert min(float(ours), float(pot), float(best)) >= P / 4 - 1e-3
        assert float(best) <= P + 1e-3  # P is the average member's objective (diagonal included)
