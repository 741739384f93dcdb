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


def test_not_optimal_raises_naming_the_pair(digits):
    solver = ExactSolver(digits.ground_cost(2), num_iter_max=2)
    with pytest.raises(SolverError, match=r"exact solve of pair \(3, 7\) did not reach optimality.*iteration limit"):
        solver.solve_pairs(digits.weights, [3], [7])


def test_custom_cost_support():
    M = np.array([[0, 1, 5], [1, 0, 1], [5, 1, 0.0]])
    hs = HistogramSet.from_histograms([[1, 0, 0], [0, 0, 1]], cost=M)
    assert ExactSolver(hs.ground_cost(1), p=1).solve(hs.weights[0], hs.weights[1]) == pytest.approx(5.0)
