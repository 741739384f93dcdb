"""The grid path of the exact stage (3-partite network simplex in integers) against POT, its guards and fallbacks."""

from __future__ import annotations

import sys
import warnings

import numpy as np
import ot
import pytest

from wassembed.data import HistogramSet
from wassembed.errors import InputError, SolverError
from wassembed.exact import ExactSolver, LinearOT, _grid
from wassembed.exact._grid import GridSolver, MinCostFlowWarning
from wassembed.exact._rational import MAX_DENOMINATOR, dyadic_reference, rational_scales

from .conftest import MNIST_IMAGES


def _grid_coords(h, w):
    return np.stack(np.divmod(np.arange(h * w), w), axis=1)


def _pot(a, b, coords, metric="sqeuclidean"):
    ia, ib = np.flatnonzero(a), np.flatnonzero(b)
    M = ot.dist(coords[ia].astype(float), coords[ib].astype(float), metric=metric)
    return ot.emd2(a[ia], b[ib], M, numItermax=10_000_000)


def _compare(images, pairs, metric_ok=1e-12):
    """Grid path vs POT on ``pairs`` of integer ``images`` (n, H, W): the largest relative difference."""
    hs = HistogramSet.from_images(images)
    grid = ExactSolver(coords=hs.support_coords(), method="grid")
    pot = ExactSolver(hs.ground_cost(2), method="pot")
    i, j = pairs
    g = grid.solve_pairs(hs.weights, i, j)
    p = pot.solve_pairs(hs.weights, i, j)
    assert np.all(np.abs(g - p) <= metric_ok * np.maximum(np.abs(p), 1e-300) + 1e-15), np.max(np.abs(g - p))
    return g, p


def _edge_cases(rng, h, w, n):
    """Integer images with the awkward shapes: single pixels, identical copies, empty rows and columns, a lone
    row, a lone column, the full grid, huge counts."""
    out = []
    for _ in range(n):
        img = np.zeros((h, w), dtype=np.int64)
        kind = rng.integers(7)
        if kind == 0:  # one pixel
            img[rng.integers(h), rng.integers(w)] = rng.integers(1, 256)
        elif kind == 1:  # one row
            img[rng.integers(h)] = rng.integers(0, 3, w)
        elif kind == 2:  # one column
            img[:, rng.integers(w)] = rng.integers(0, 3, h)
        elif kind == 3:  # empty rows and columns
            keep = rng.random((h, 1)) < 0.4
            img = rng.integers(0, 256, (h, w)) * keep * (rng.random((1, w)) < 0.5)
        elif kind == 4:  # full grid
            img = rng.integers(1, 256, (h, w))
        elif kind == 5:  # huge counts (16-bit images)
            img = rng.integers(0, 65536, (h, w)) * (rng.random((h, w)) < 0.3)
        else:  # sparse
            img = rng.integers(0, 256, (h, w)) * (rng.random((h, w)) < 0.15)
        if img.sum() == 0:
            img[0, 0] = 1
        out.append(img)
    return np.stack(out)


def test_the_two_paths_agree_on_ten_thousand_pairs_of_several_data_sets():
    """≥ 10,000 pairs: digits, awkward grids with the edge cases (single pixels, identical images, empty rows
    and columns), MNIST when present; values within 1e-12 relative of POT's."""
    rng = np.random.default_rng(0)
    count = 0
    from sklearn.datasets import load_digits

    imgs = load_digits().images.astype(np.int64)  # the bundled digits: integer pixels 0..16
    i, j = rng.integers(0, len(imgs), (2, 6000))
    _compare(imgs, (i, j))
    count += i.size
    for h, w, n, m in ((5, 9, 120, 1500), (13, 7, 120, 1500), (1, 17, 60, 300), (16, 1, 60, 300),
                       (11, 11, 100, 800)):
        imgs = _edge_cases(rng, h, w, n)
        i, j = rng.integers(0, n, (2, m))
        i[: m // 20] = j[: m // 20]  # identical images: value 0
        g, _ = _compare(imgs, (i, j))
        assert np.all(g[: m // 20] == 0.0)
        count += m
    if MNIST_IMAGES.exists():
        from wassembed.data import read_idx

        imgs = read_idx(MNIST_IMAGES)[:300]
        i, j = rng.integers(0, 300, (2, 300))
        _compare(imgs, (i, j))
        count += 300
    assert count >= 10_000


def test_rational_scales_finds_the_pixel_sums_and_nothing_else():
    rng = np.random.default_rng(1)
    imgs = rng.integers(0, 256, (50, 64)) * (rng.random((50, 64)) < 0.4)
    imgs[:, 0] += 1
    w = imgs / imgs.sum(1, keepdims=True)
    g = np.gcd.reduce(imgs, axis=1)
    np.testing.assert_array_equal(rational_scales(w), imgs.sum(1) // g)  # the smallest S: sum / gcd
    noisy = w.copy()
    noisy[:, 0] += 1e-12  # not a rational of denominator ≤ 2**26 within float64 rounding
    assert (rational_scales(noisy / noisy.sum(1, keepdims=True)) == 0).all()
    assert (rational_scales(rng.dirichlet(np.ones(20), 10)) == 0).all()  # float weights
    assert int(rational_scales(np.array([1.0, 0.0]))) == 1
    big = np.array([1.0, MAX_DENOMINATOR + 12.0])  # denominator beyond the limit
    assert int(rational_scales(big / big.sum())) == 0


def test_float_weights_go_to_pot_and_the_grid_method_refuses_them():
    rng = np.random.default_rng(2)
    coords = _grid_coords(4, 5)
    w = rng.dirichlet(np.ones(20), 6)
    auto = ExactSolver(coords=coords)
    assert auto.grid is not None  # the grid path exists, but these rows are not rationals: POT solves them
    v = auto.solve_pairs(w, np.arange(3), np.arange(3, 6))
    np.testing.assert_array_equal(v, [_pot(w[a], w[b], coords) for a, b in zip(range(3), range(3, 6))])
    with pytest.raises(InputError, match=r"the grid path cannot solve pair \(0, 3\) exactly.*method=\"auto\""):
        ExactSolver(coords=coords, method="grid").solve_pairs(w, [0], [3])
    with pytest.raises(InputError, match=r"grid path does not apply.*p=2.*p=1"):
        ExactSolver(coords=coords, p=1, method="grid")
    with pytest.raises(InputError, match="2-D integer coordinates"):
        ExactSolver(coords=coords + 0.5, method="grid")
    assert ExactSolver(coords=coords, p=1).grid is None and ExactSolver(coords=coords + 0.5).grid is None


def test_the_largest_grid_cannot_overflow():
    """256² with 16-bit counts: objectives beyond int64 are still exact (Python's integers sum them); counts
    whose total supply passes 2**62 are refused by the grid solver (ExactSolver never gives it such counts:
    denominators up to 2**26 make totals below 2**52; larger ones are POT's); a support too large for int64
    potentials is refused at once."""
    rng = np.random.default_rng(3)
    coords = _grid_coords(256, 256)
    solver = GridSolver(coords)
    for _ in range(5):
        ca, cb = np.zeros(256 * 256, np.int64), np.zeros(256 * 256, np.int64)
        ca[rng.choice(ca.size, 25, replace=False)] = rng.integers(1, 65536, 25)
        cb[rng.choice(cb.size, 25, replace=False)] = rng.integers(1, 65536, 25)
        value = solver.solve_counts(ca, cb)
        want = _pot(ca / ca.sum(), cb / cb.sum(), coords)
        assert abs(value - want) <= 1e-12 * want
    # coprime masses near 2**31.5: a total supply beyond 2**62
    ca, cb = np.zeros(256 * 256, np.int64), np.zeros(256 * 256, np.int64)
    ca[[0, 4464]] = [3_000_000_019, 1]
    cb[[5, 65535]] = [3_000_000_036, 1]
    assert not solver.fits(int(ca.sum()) * int(cb.sum()))
    with pytest.raises(InputError, match=r"supplies too large.*method='auto'"):
        solver.solve_counts(ca, cb)
    a, b = ca / ca.sum(), cb / cb.sum()
    assert rational_scales(np.stack([a, b])).tolist() == [0, 0]  # denominators beyond 2**26: POT's rows
    assert ExactSolver(coords=coords).solve(a, b) == _pot(a, b, coords)
    with pytest.raises(InputError, match="grid too large for exact integer arithmetic"):
        GridSolver(np.array([[0, 0], [2 ** 30, 0]]))


def test_a_missing_or_broken_library_falls_back_to_pot_with_one_warning(monkeypatch):
    coords = _grid_coords(3, 3)
    a, b = np.eye(9)[0], np.eye(9)[8]
    for breakage in ("missing", "wrong answers"):
        monkeypatch.setattr(_grid, "_LEMON", [])
        if breakage == "missing":
            monkeypatch.setitem(sys.modules, "pylmcf", None)
        else:
            import pylmcf

            monkeypatch.setattr(pylmcf.Graph, "total_cost", lambda self: 123)
        with pytest.warns(MinCostFlowWarning, match="pylmcf is unavailable.*POT instead") as rec:
            solver = ExactSolver(coords=coords)
            LinearOT(coords)
        assert len(rec) == 1 and solver.grid is None
        assert solver.solve(a, b) == 8.0
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # warned once: not again
            ExactSolver(coords=coords).solve(a, b)
        with pytest.raises(InputError, match="pylmcf"):
            ExactSolver(coords=coords, method="grid")
        monkeypatch.undo()
    monkeypatch.setattr(_grid, "_LEMON", [])  # the real library again, for the next tests


def test_a_solve_lemon_does_not_report_optimal_raises(monkeypatch):
    import pylmcf

    assert _grid.lemon() is pylmcf  # loaded (its self-test passed) before the breakage below

    def unbounded(self):
        raise RuntimeError("Solver failed: problem is UNBOUNDED")

    monkeypatch.setattr(pylmcf.Graph, "solve", unbounded)
    with pytest.raises(SolverError, match=r"exact solve of pair \(0, 1\) did not reach optimality.*UNBOUNDED"):
        ExactSolver(coords=_grid_coords(2, 2), method="grid").solve_pairs(np.eye(4), [0], [1])


def test_the_l1_cost_is_separable_too():
    rng = np.random.default_rng(4)
    coords = _grid_coords(6, 7)
    solver = GridSolver(coords, axis_cost="cityblock")
    for _ in range(30):
        ca, cb = (rng.integers(0, 5, 42) * (rng.random(42) < 0.5) for _ in range(2))
        ca[0] += 1
        cb[1] += 1
        want = _pot(ca / ca.sum(), cb / cb.sum(), coords, metric="cityblock")
        assert solver.solve_counts(ca, cb) == pytest.approx(want, rel=1e-12)


def _translated(rng, H=14, W=14):
    shape = rng.integers(0, 9, (4, 5)) * (rng.random((4, 5)) > 0.3)
    shape[0, 0] += 3
    shifts = [(0, 0), (1, 3), (5, 2), (9, 8), (3, 7)]
    images = np.zeros((len(shifts), H, W), dtype=np.int64)
    for t, (dr, dc) in enumerate(shifts):
        images[t, dr:dr + 4, dc:dc + 5] = shape
    return images


def test_lot_on_the_grid_path_keeps_translated_copies_exact():
    """Integer images: the grid path (no POT) gives exact distances between translated copies."""
    hs = HistogramSet.from_images(_translated(np.random.default_rng(5)))
    lot = LinearOT(hs, method="grid").fit(hs)
    e = lot.transform(hs)
    i, j = np.triu_indices(hs.n, 1)
    exact = ExactSolver(hs.ground_cost(2), method="pot").solve_pairs(hs.weights, i, j)
    np.testing.assert_allclose(lot.distance(e[i], e[j]), exact, rtol=0, atol=1e-9)


def test_lot_maps_on_the_grid_path_are_optimal_plans():
    """‖e − e_σ‖² + split = W2²(σ, μ) holds for any optimal plan: the grid path's maps satisfy it, and they
    give the same distances as POT's within the non-uniqueness of optimal plans."""
    rng = np.random.default_rng(6)
    imgs = rng.integers(0, 256, (12, 9, 9)) * (rng.random((12, 9, 9)) < 0.4)
    imgs[:, 4, 4] += 1
    hs = HistogramSet.from_images(imgs)
    grid = LinearOT(hs, method="grid").fit(hs)
    e, split = grid.transform(hs, return_split=True)
    r = np.zeros(hs.k)
    r[grid.reference_bins_] = grid.reference_
    np.testing.assert_array_equal(r, dyadic_reference(hs.weights.mean(0)))
    coords = hs.support_coords()
    exact = np.array([_pot(r, hs.weights[t], coords) for t in range(hs.n)])
    to_ref = grid.distance(e, np.broadcast_to(grid.reference_embedding_, e.shape))
    np.testing.assert_allclose(to_ref + split, exact, rtol=0, atol=1e-9)
    pot = LinearOT(hs, method="pot").fit(hs)
    ep, splitp = pot.transform(hs, return_split=True)
    np.testing.assert_allclose(pot.distance(ep, np.broadcast_to(pot.reference_embedding_, ep.shape)) + splitp,
                               exact, rtol=0, atol=1e-9)
    with pytest.raises(InputError, match="grid path cannot solve row 0 exactly"):
        LinearOT(hs, method="grid").fit(hs).transform(rng.dirichlet(np.ones(hs.k), 2))
    with pytest.raises(InputError, match="grid path does not apply"):
        LinearOT(coords + 0.25, method="grid")
