"""Linear optimal transport (wassembed.exact.LinearOT) against direct POT computations."""

import numpy as np
import ot
import pytest

from wassembed.data import HistogramSet
from wassembed.errors import InputError, SolverError
from wassembed.exact import LinearOT
from wassembed.exact._rational import dyadic_reference


def _random_hist(rng, n, k, zeros=0.3):
    w = rng.random((n, k)) * (rng.random((n, k)) > zeros)
    w[:, 0] += 0.1  # no empty row
    return w / w.sum(1, keepdims=True)


def _sqdist(a, b):
    return ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)


def test_embedding_equals_a_direct_pot_computation():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(12, 2))
    w = _random_hist(rng, 5, 12)
    lot = LinearOT(x).fit(w)
    e = lot.transform(w)
    r = dyadic_reference(w.mean(0))  # the default reference: the mean, rounded to multiples of 2**-24
    assert np.abs(r - w.mean(0)).max() <= 2.0 ** -24 and r.sum() == 1.0
    K = np.flatnonzero(r > 0)
    assert e.shape == (5, K.size * 2) and e.dtype == np.float64
    for i in range(5):
        ib = np.flatnonzero(w[i])
        G = ot.emd(r[K], w[i, ib], _sqdist(x[K], x[ib]), numItermax=10_000_000)
        T = G @ x[ib] / r[K][:, None]
        np.testing.assert_allclose(e[i], (np.sqrt(r[K])[:, None] * T).ravel(), rtol=0, atol=1e-10)


def test_distance_to_the_reference_plus_split_is_the_exact_w2():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(10, 3))
    w = _random_hist(rng, 6, 10)
    ref = _random_hist(rng, 1, 10)[0]
    lot = LinearOT(x, reference=ref).fit(w)
    e, split = lot.transform(w, return_split=True)
    exact = np.array([ot.emd2(ref, w[i], _sqdist(x, x), numItermax=10_000_000) for i in range(6)])
    to_ref = lot.distance(e, np.broadcast_to(lot.reference_embedding_, e.shape))
    np.testing.assert_allclose(to_ref + split, exact, rtol=0, atol=1e-10)
    assert (to_ref <= exact + 1e-12).all()


def test_distance_to_the_reference_is_exact_when_the_plan_is_a_map():
    """Uniform measures on as many points: the optimal plan is a permutation, no mass is split."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=(16, 2))
    ref = np.r_[np.ones(8), np.zeros(8)] / 8
    w = np.zeros((4, 16))
    for i in range(4):
        w[i, rng.permutation(16)[:8]] = 1 / 8
    lot = LinearOT(x, reference=ref)
    e, split = lot.transform(w, return_split=True)
    exact = np.array([ot.emd2(ref, w[i], _sqdist(x, x)) for i in range(4)])
    to_ref = lot.distance(e, np.broadcast_to(lot.reference_embedding_, e.shape))
    np.testing.assert_allclose(to_ref, exact, rtol=0, atol=1e-10)
    np.testing.assert_allclose(split, 0.0, atol=1e-12)


def test_translated_copies_of_one_shape_give_exact_distances():
    rng = np.random.default_rng(3)
    H = W = 12
    shape = rng.random((4, 4)) * (rng.random((4, 4)) > 0.3)
    shape[0, 0] += 0.2
    shifts = [(0, 0), (1, 3), (5, 2), (8, 8), (3, 7)]
    images = np.zeros((len(shifts), H, W))
    for t, (dr, dc) in enumerate(shifts):
        images[t, dr:dr + 4, dc:dc + 4] = shape
    hs = HistogramSet.from_images(images)
    lot = LinearOT(hs).fit(hs)
    e = lot.transform(hs)
    i, j = np.triu_indices(len(shifts), 1)
    M = hs.ground_cost(2)
    exact = np.array([ot.emd2(hs.weights[a], hs.weights[b], M, numItermax=10_000_000) for a, b in zip(i, j)])
    np.testing.assert_allclose(lot.distance(e[i], e[j]), exact, rtol=0, atol=1e-9)
    np.testing.assert_allclose(lot.cdist(e, e)[i, j], exact, rtol=0, atol=1e-9)


def test_cdist_matches_paired_distances():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(9, 2))
    w = _random_hist(rng, 7, 9)
    lot = LinearOT(x).fit(w)
    e = lot.transform(w)
    D = lot.cdist(e[:3], e[3:])
    a, b = np.meshgrid(np.arange(3), np.arange(3, 7), indexing="ij")
    np.testing.assert_allclose(D, lot.distance(e[a.ravel()], e[b.ravel()]).reshape(3, 4), atol=1e-10)


def test_kneighbors_in_blocks_equals_a_full_sort_of_cdist():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(8, 2))
    w = _random_hist(rng, 30, 8)
    lot = LinearOT(x).fit(w)
    e = lot.transform(w)
    lot.fit_correction(e, np.arange(10), np.arange(10, 20), rng.uniform(1, 2, 10))
    d, idx = lot.kneighbors(e[:7], e[7:], k=4, tile_size=3)  # scikit-learn's order: distances, indices
    full = lot.cdist(e[:7], e[7:])
    np.testing.assert_array_equal(idx, np.argsort(full, axis=1, kind="stable")[:, :4])
    np.testing.assert_allclose(d, np.sort(full, axis=1)[:, :4])
    with pytest.raises(InputError, match="bad k"):
        lot.kneighbors(e[:2], e[7:], k=24)


@pytest.mark.filterwarnings("ignore:numItermax reached:UserWarning")  # the non-optimal solve is the point
def test_a_non_optimal_solve_raises_solver_error():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(40, 2))
    w = _random_hist(rng, 3, 40, zeros=0.0)
    lot = LinearOT(x, num_iter_max=2).fit(w)
    with pytest.raises(SolverError, match="did not reach optimality"):
        lot.transform(w)


def test_bad_inputs_raise_input_errors():
    x = np.arange(6.0).reshape(3, 2)
    cost_only = HistogramSet.from_histograms(np.eye(3), cost=np.ones((3, 3)) - np.eye(3))
    with pytest.raises(InputError, match="needs bin coordinates"):
        LinearOT(cost_only)
    with pytest.raises(InputError, match="p=2 only"):
        LinearOT(x, p=1)
    with pytest.raises(InputError, match="unsupported exponent"):
        LinearOT(x, p=3)
    with pytest.raises(InputError, match="do not match the support"):
        LinearOT(x).fit(np.ones((2, 4)))
    with pytest.raises(InputError, match="wrong number of bins|bad reference"):
        LinearOT(x, reference=np.ones(4))
    with pytest.raises(InputError, match="bad coordinates"):
        LinearOT(np.arange(3.0))
    with pytest.raises(InputError, match="unknown reference"):
        LinearOT(x, reference="median")
    with pytest.raises(InputError, match="no reference yet"):
        LinearOT(x).transform(np.eye(3))
    lot = LinearOT(x).fit(np.eye(3))
    with pytest.raises(InputError, match="embeddings do not match"):
        lot.distance(np.zeros((2, 6)), np.zeros((3, 6)))
    with pytest.raises(InputError, match="bad correction pairs"):
        lot.fit_correction(np.zeros((3, 6)), [0, 1], [1], [1.0, 2.0])


def test_the_correction_fit_recovers_a_known_line():
    rng = np.random.default_rng(6)
    x = rng.normal(size=(10, 2))
    w = _random_hist(rng, 20, 10)
    lot = LinearOT(x).fit(w)
    e = lot.transform(w)
    i, j = np.triu_indices(20, 1)
    raw = lot.distance(e[i], e[j])
    lot.fit_correction(e, i, j, 1.7 * raw + 0.25)
    a, b = lot.correction_
    assert a == pytest.approx(1.7, abs=1e-10) and b == pytest.approx(0.25, abs=1e-10)
    np.testing.assert_allclose(lot.distance(e[i], e[j]), 1.7 * raw + 0.25, atol=1e-10)
    np.testing.assert_allclose(lot.cdist(e, e)[i, j], 1.7 * raw + 0.25, atol=1e-9)
