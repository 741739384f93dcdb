import numpy as np
import ot
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wassembed.data import HistogramSet, make_ground_cost
from wassembed.errors import SolverError
from wassembed.exact import ExactSolver

G = (8, 8)
SOLVER2 = ExactSolver(make_ground_cost(grid=G, p=2), p=2)
SOLVER1 = ExactSolver(make_ground_cost(grid=G, p=1), p=1)


def dirac(r, c, grid=G):
    a = np.zeros(grid[0] * grid[1])
    a[r * grid[1] + c] = 1.0
    return a


@st.composite
def small_images(draw, size=4):
    vals = draw(st.lists(st.integers(0, 9), min_size=size * size, max_size=size * size))
    img = np.array(vals, dtype=float).reshape(size, size)
    if img.sum() == 0:
        img[0, 0] = 1.0
    return img


def on_grid(img, r0, c0, grid=G):
    out = np.zeros(grid)
    out[r0:r0 + img.shape[0], c0:c0 + img.shape[1]] = img
    return (out / out.sum()).ravel()


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 7), st.integers(0, 7), st.integers(0, 7), st.integers(0, 7))
def test_two_diracs(r1, c1, r2, c2):
    d2 = (r1 - r2) ** 2 + (c1 - c2) ** 2
    assert SOLVER2.solve(dirac(r1, c1), dirac(r2, c2)) == pytest.approx(d2, abs=1e-12)
    assert SOLVER1.solve(dirac(r1, c1), dirac(r2, c2)) == pytest.approx(np.sqrt(d2), abs=1e-12)


@settings(max_examples=40, deadline=None)
@given(small_images(), st.integers(0, 4), st.integers(0, 4), st.integers(0, 4), st.integers(0, 4))
def test_translation_gives_squared_shift(img, r0, c0, r1, c1):
    a, b = on_grid(img, r0, c0), on_grid(img, r1, c1)
    assert SOLVER2.solve(a, b) == pytest.approx((r1 - r0) ** 2 + (c1 - c0) ** 2, abs=1e-9)


@settings(max_examples=30, deadline=None)
@given(small_images(), small_images(), small_images(), st.sampled_from([SOLVER1, SOLVER2]))
def test_metric_properties(x, y, z, solver):
    a, b, c = on_grid(x, 0, 0), on_grid(y, 2, 3), on_grid(z, 4, 1)
    assert solver.solve(a, a) == pytest.approx(0.0, abs=1e-12)
    assert solver.solve(a, b) == pytest.approx(solver.solve(b, a), abs=1e-9)
    root = (lambda v: np.sqrt(max(v, 0.0))) if solver.p == 2 else (lambda v: v)  # triangle holds for W_p
    assert root(solver.solve(a, c)) <= root(solver.solve(a, b)) + root(solver.solve(b, c)) + 1e-7


def test_equals_pot_full_problem(digits):
    M = digits.ground_cost(2)
    solver = ExactSolver(M)
    rng = np.random.default_rng(0)
    w = digits.weights
    diffs = []
    for _ in range(40):
        i, j = rng.choice(digits.n, 2, replace=False)
        diffs.append(abs(solver.solve(w[i], w[j]) - ot.emd2(w[i], w[j], M)))
    assert max(diffs) <= 1e-9


def test_equals_pot_full_problem_on_mnist(mnist_path):
    from wassembed.data import load_dataset

    hs = load_dataset(mnist_path, limit=30)
    M = hs.ground_cost(2)
    solver = ExactSolver(M)
    vals = solver.solve_pairs(hs.weights, np.arange(0, 10), np.arange(10, 20))
    full = [ot.emd2(hs.weights[i], hs.weights[i + 10], M) for i in range(10)]
    assert np.max(np.abs(vals - full)) <= 1e-9
    assert 2 < vals.mean() < 40  # pixel² units, mean W2² between MNIST digits ≈ 11


@pytest.mark.filterwarnings("ignore:numItermax reached:UserWarning")  # the non-optimal solve is the point
def test_not_optimal_raises_naming_the_pair(digits):
    solver = ExactSolver(digits.ground_cost(2), num_iter_max=2)
    with pytest.raises(SolverError, match=r"exact solve of pair \(3, 7\) did not reach optimality.*iteration limit"):
        solver.solve_pairs(digits.weights, [3], [7])


def test_custom_cost_support():
    M = np.array([[0, 1, 5], [1, 0, 1], [5, 1, 0.0]])
    hs = HistogramSet.from_histograms([[1, 0, 0], [0, 0, 1]], cost=M)
    assert ExactSolver(hs.ground_cost(1), p=1).solve(hs.weights[0], hs.weights[1]) == pytest.approx(5.0)


def test_precompute_on_the_shipped_non_grid_set(tmp_path):
    from pathlib import Path

    from wassembed.data import load_dataset
    from wassembed.exact import DistanceCache, precompute, verify

    path = Path(__file__).resolve().parents[1] / "data" / "point-histograms.npz"
    r = precompute(path, tmp_path / "c", pairs=400, images="0:500", workers=1, progress=False, chunk_size=100)
    assert r.computed == 400 and r.total_in_cache == 400
    cache = DistanceCache.open(tmp_path / "c")
    assert cache.data.support_kind == "coords" and cache.manifest["dataset"]["support"] == "coords"
    t = cache.read()
    assert t.j.max() < 500 and (t.value > 0).all()
    hs = load_dataset(path)
    ref = ExactSolver(hs.ground_cost(2)).solve_pairs(hs.weights, t.i[:20], t.j[:20])
    np.testing.assert_array_equal(t.value[:20], ref)
    assert verify(tmp_path / "c")["ok"]


def test_solves_in_threads_ignore_other_threads_warnings(digits):
    """Solves run from several threads (exact re-ranking in the served model) while another thread warns:
    no solve may take that warning for its own failure, and each value stays exact."""
    import threading
    import warnings

    hs = digits.subset(np.arange(24))
    solver = ExactSolver(hs.ground_cost(2))
    i, j = np.triu_indices(24, 1)
    want = solver.solve_pairs(hs.weights, i, j)
    stop = threading.Event()
    errors, results = [], {}

    def spam():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            while not stop.is_set():
                warnings.warn("another thread's warning", UserWarning, stacklevel=1)

    def solve(t):
        try:
            results[t] = solver.solve_pairs(hs.weights, i, j)
        except Exception as exc:  # any failure is reported below
            errors.append(exc)

    noise = threading.Thread(target=spam)
    noise.start()
    workers = [threading.Thread(target=solve, args=(t,)) for t in range(3)]
    try:
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    finally:
        stop.set()
        noise.join()
    assert not errors, errors[0]
    for values in results.values():
        np.testing.assert_array_equal(values, want)
