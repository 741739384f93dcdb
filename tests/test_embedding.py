"""The served model: distances, matrices, kNN with exact re-ranking, error bars, OOD, geometry, bad input.

Models are built from tiny torch modules (no training): a random linear encoder on a 6×6 grid, and a
"quantile" encoder on a 1-D grid whose squared distances approximate W2² well (W2² between 1-D
distributions is the L2 distance between their quantile functions), so conformal bounds are tight.
"""

from __future__ import annotations

import pickle
import threading
import warnings

import numpy as np
import pytest
import torch
from scipy.spatial.distance import squareform

from wassembed.data import as_weights, make_ground_cost
from wassembed.errors import InputError
from wassembed.exact import ExactSolver
from wassembed.serve import (
    CalibrationWarning,
    DistanceEstimate,
    EvaluationWarning,
    Neighbors,
    OutOfDistributionWarning,
    RerankWarning,
    ServingWarning,
    WassersteinEmbedding,
)
from wassembed.serve._conformal import ConformalCalibrator, conformal_quantile

from .conftest import random_images

GRID = (6, 6)
K = 36


def _linear_model(p=2, calibration=None, seed=0):
    torch.manual_seed(seed)
    enc = torch.nn.Sequential(torch.nn.Linear(K, 8))
    dec = torch.nn.Sequential(torch.nn.Linear(8, K))
    return WassersteinEmbedding(enc, dec, config=None, p=p, grid=GRID, calibration=calibration)


@pytest.fixture(scope="module")
def emb():
    return _linear_model()


class Quantiles(torch.nn.Module):
    """φ(x) = quantile function of x at m levels / √m: ‖φ(a) − φ(b)‖² ≈ W2²(a, b) on a 1-D grid."""

    def __init__(self, m=400):
        super().__init__()
        self.register_buffer("t", (torch.arange(m, dtype=torch.float32) + 0.5) / m)

    def forward(self, x):
        cdf = torch.cumsum(x, 1)
        cdf = cdf / cdf[:, -1:]
        q = torch.searchsorted(cdf.contiguous(), self.t.expand(x.shape[0], -1).contiguous())
        return q.clamp_max(x.shape[1] - 1).float() / self.t.numel() ** 0.5


def _sparse_1d(n, k, seed):
    rng = np.random.default_rng(seed)
    X = rng.random((n, k)) * (rng.random((n, k)) < 0.3)
    X[np.arange(n), rng.integers(0, k, n)] += 1.0
    return X


@pytest.fixture(scope="module")
def quantile_model():
    """A good 1-D model with calibration pairs (estimate, exact) on 1×12 histograms."""
    k = 12
    torch.manual_seed(0)
    emb = WassersteinEmbedding(Quantiles(), torch.nn.Linear(400, k), config=None, p=2, grid=(1, k))
    V = _sparse_1d(400, k, seed=1)
    solver = ExactSolver(make_ground_cost(grid=(1, k), p=2), 2)
    w = as_weights(V)[0]
    i, j = np.arange(0, 400, 2), np.arange(1, 400, 2)
    emb.calibration = {"val_pred": emb.distance(V[i], V[j]).astype(np.float64),
                       "val_target": solver.solve_pairs(w, i, j)}
    return emb, solver


# -- distances and matrices ------------------------------------------------------------------------
def test_distance_is_squared_embedding_distance(emb):
    X, Y = random_images(7, 1), random_images(7, 2)
    Z1, Z2 = emb.embed(X), emb.embed(Y)
    assert Z1.shape == (7, 8) and Z1.dtype == np.float32
    np.testing.assert_allclose(emb.distance(X, Y), ((Z1 - Z2) ** 2).sum(1), rtol=1e-5)
    np.testing.assert_allclose(emb.distance(X, Y, root=True), np.sqrt(((Z1 - Z2) ** 2).sum(1)), rtol=1e-5)
    np.testing.assert_allclose(emb.distance(X, Y[:1]), ((Z1 - Z2[:1]) ** 2).sum(1), rtol=1e-5)  # broadcast


def test_p1_distance_is_the_norm():
    e1 = _linear_model(p=1)
    X, Y = random_images(5, 3), random_images(5, 4)
    Z1, Z2 = e1.embed(X), e1.embed(Y)
    np.testing.assert_allclose(e1.distance(X, Y), np.linalg.norm(Z1 - Z2, axis=1), rtol=1e-5)
    np.testing.assert_allclose(e1.distance(X, Y, root=True), e1.distance(X, Y))
    np.testing.assert_allclose(e1.cdist(X, Y), np.linalg.norm(Z1[:, None] - Z2[None], axis=2), rtol=1e-4)


def test_every_estimate_comes_from_the_one_latent_distance():
    """distance, cdist, pdist and kneighbors all use ``distance_fn`` (LatentDistance, safe_sqrt for W1)."""
    from wassembed.nn import LatentDistance, safe_sqrt

    X, Y = random_images(9, 16), random_images(12, 17)
    for p in (1, 2):
        e = _linear_model(p=p)
        assert e.distance_fn == LatentDistance(p)
        ZX, ZY = torch.from_numpy(e.embed(X)), torch.from_numpy(e.embed(Y))
        np.testing.assert_array_equal(e.distance(X, Y[:9]), e.distance_fn.paired(ZX, ZY[:9]).numpy())
        sq = ((ZX[:, None] - ZY[None]) ** 2).sum(-1)
        D = e.cdist(X, Y)
        np.testing.assert_allclose(D, e.distance_fn.from_squared(sq).numpy(), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(e.cdist(X, Y, root=True), e.distance_fn.root(D), rtol=1e-6)
        full = e.cdist(X, X)
        np.fill_diagonal(full, 0)
        np.testing.assert_allclose(squareform(e.pdist(X)), full, rtol=1e-5, atol=1e-6 * full.max())
        val, idx = e.kneighbors(X, Y, k=4)
        np.testing.assert_array_equal(idx, np.argsort(D, axis=1, kind="stable")[:, :4])
        np.testing.assert_allclose(val, np.sort(D, axis=1)[:, :4], rtol=1e-6)
    e1 = _linear_model(p=1)
    assert e1.distance(X[:3], X[:3]).tolist() == [0.0, 0.0, 0.0]  # safe_sqrt: exact 0 where inputs meet
    assert float(safe_sqrt(torch.tensor([1e-14]))[0]) == pytest.approx(1e-8)  # below 1e-12: linear, not sqrt


def test_ood_score_is_the_training_reconstruction_kl(emb):
    from wassembed.nn import reconstruction_kl

    X = random_images(20, 18)
    x = torch.from_numpy(as_weights(X)[0]).float()
    with torch.no_grad():
        want = reconstruction_kl(emb.decoder(emb.encoder(x)), x).double().numpy()
    got = emb.ood_score(X, batch_size=7)  # other batches: float32 sums may differ in the last bits
    assert got.dtype == np.float64 and got.shape == (20,)
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_normalisation_matches_the_cache(emb):
    X = random_images(4, 5)
    w, _ = as_weights(X)
    np.testing.assert_allclose(emb.embed(X), emb.embed(w), rtol=1e-6)
    np.testing.assert_allclose(emb.embed(X), emb.embed(X.astype(np.float64) * 3.0), rtol=1e-6)


def test_cdist_equals_a_loop_over_distance(emb):
    A, B = random_images(9, 6), random_images(11, 7)
    D = emb.cdist(A, B)
    assert D.shape == (9, 11) and D.dtype == np.float64
    loop = np.array([[emb.distance(A[i:i + 1], B[j:j + 1])[0] for j in range(11)] for i in range(9)])
    np.testing.assert_allclose(D, loop, rtol=1e-4, atol=1e-5 * loop.max())


def test_results_do_not_depend_on_tile_size(emb):
    A, B = random_images(149, 8), random_images(1501, 9)
    ref = emb.cdist(A, B, tile_size=4096)
    D = emb.cdist(A, B, tile_size=33, batch_size=100)
    np.testing.assert_allclose(D, ref, rtol=1e-5, atol=1e-6 * ref.max())
    P = emb.pdist(A, tile_size=33)
    assert P.shape == (149 * 148 // 2,)
    np.testing.assert_allclose(P, emb.pdist(A, tile_size=4096), rtol=1e-5, atol=1e-6 * ref.max())
    full = emb.cdist(A, A)
    np.fill_diagonal(full, 0)
    np.testing.assert_allclose(squareform(P), full, rtol=1e-5, atol=1e-6 * ref.max())
    v1, i1 = emb.kneighbors(A[:40], B, k=7, tile_size=33)
    v2, i2 = emb.kneighbors(A[:40], B, k=7, tile_size=4096)
    np.testing.assert_array_equal(i1, i2)
    np.testing.assert_allclose(v1, v2, rtol=1e-5)


def test_pdist_of_two_and_one(emb):
    X = random_images(2, 10)
    np.testing.assert_allclose(emb.pdist(X), emb.distance(X[:1], X[1:]), rtol=1e-4)
    assert emb.pdist(X[:1]).shape == (0,)


def test_kneighbors_without_rerank_matches_cdist(emb):
    Q, R = random_images(6, 11), random_images(50, 12)
    val, idx = emb.kneighbors(Q, R, k=5)
    D = emb.cdist(Q, R)
    np.testing.assert_array_equal(idx, np.argsort(D, axis=1, kind="stable")[:, :5])
    np.testing.assert_allclose(val, np.sort(D, axis=1)[:, :5], rtol=1e-6)
    res = emb.kneighbors(Q, R, k=5)
    assert isinstance(res, Neighbors) and res.n_exact == 0 and not res.exact
    assert res.distances is res[0] and res.indices is res[1]  # scikit-learn's order: distances, indices
    back = pickle.loads(pickle.dumps(res))
    assert isinstance(back, Neighbors) and back.n_exact == 0 and not back.exact
    np.testing.assert_array_equal(back.indices, idx)
    assert repr(res).startswith("Neighbors(distances=")


def test_numpy_torch_parity(emb):
    X, Y = random_images(10, 13), random_images(10, 14)
    tX, tY = torch.from_numpy(X), torch.from_numpy(Y)
    for name, args in [("embed", (X,)), ("distance", (X, Y)), ("cdist", (X, Y)), ("pdist", (X,))]:
        a = getattr(emb, name)(*args)
        b = getattr(emb, name)(*(torch.from_numpy(x) for x in args))
        assert isinstance(a, np.ndarray) and isinstance(b, torch.Tensor) and b.device.type == "cpu"
        np.testing.assert_allclose(b.numpy(), a, rtol=1e-6)
    assert isinstance(emb.decode(torch.from_numpy(emb.embed(X))), torch.Tensor)
    tv, ti = emb.kneighbors(tX, tY, k=3)
    nv, ni = emb.kneighbors(X, Y, k=3)
    np.testing.assert_array_equal(ti.numpy(), ni)
    np.testing.assert_allclose(tv.numpy(), nv, rtol=1e-6)


def test_concurrent_calls_equal_serial_calls(emb):
    inputs = [random_images(64, 100 + t) for t in range(8)]
    serial = [(emb.embed(X, batch_size=16), emb.cdist(X, X, tile_size=17)) for X in inputs]
    results = [None] * 8

    def work(t):
        results[t] = (emb.embed(inputs[t], batch_size=16), emb.cdist(inputs[t], inputs[t], tile_size=17))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for (a, b), (c, d) in zip(serial, results):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)


def test_pickle_round_trip(emb):
    e2 = pickle.loads(pickle.dumps(emb))
    X = random_images(3, 15)
    np.testing.assert_array_equal(e2.embed(X), emb.embed(X))


# -- exact re-ranking ------------------------------------------------------------------------------
def _brute_force(solver, Q, R, k):
    wq, wr = as_weights(Q)[0], as_weights(R)[0]
    E = np.array([[solver.solve(a, b) for b in wr] for a in wq])
    idx = np.array([np.lexsort((np.arange(len(r)), r))[:k] for r in E])
    return idx, np.take_along_axis(E, idx, 1)


def test_exact_rerank_equals_brute_force(quantile_model):
    emb, solver = quantile_model
    Q, R = _sparse_1d(5, 12, seed=20), _sparse_1d(60, 12, seed=21)
    want_i, want_v = _brute_force(solver, Q, R, 4)
    res = emb.kneighbors(Q, R, k=4, exact_rerank=True, tile_size=2)
    np.testing.assert_array_equal(res.indices, want_i)
    np.testing.assert_allclose(res.distances, want_v, rtol=1e-12, atol=1e-12)
    assert res.exact and res.distances.dtype == np.float64
    assert 5 * 4 <= res.n_exact < 5 * 60, "the adaptive rule should skip most references with a good model"
    assert res.n_exact == int(res.n_exact_per_query.sum())
    full = emb.kneighbors(Q, R, k=4, exact_rerank=True, n_candidates=60)
    np.testing.assert_array_equal(full.indices, want_i)
    assert full.n_exact == 5 * 60
    few = emb.kneighbors(Q, R, k=4, exact_rerank=True, n_candidates=6)
    assert few.n_exact == 5 * 6
    idx, val = few  # unpacks like a pair


@pytest.mark.filterwarnings("ignore::wassembed.serve.RerankWarning")  # an untrained model: brute force is expected
def test_exact_rerank_with_a_poor_model_still_exact():
    """A random model: loose bounds make the rule solve (almost) everything, but the answer is exact."""
    X = random_images(30, 30)
    solver = ExactSolver(make_ground_cost(grid=GRID, p=2), 2)
    emb = _linear_model()
    w = as_weights(X)[0]
    i, j = np.arange(0, 30, 2), np.arange(1, 30, 2)
    emb.calibration = {"val_pred": emb.distance(X[i], X[j]).astype(np.float64),
                       "val_target": solver.solve_pairs(w, i, j)}
    Q, R = random_images(2, 31), random_images(25, 32)
    want_i, want_v = _brute_force(solver, Q, R, 3)
    res = emb.kneighbors(Q, R, k=3, exact_rerank=True)
    np.testing.assert_array_equal(res.indices, want_i)
    np.testing.assert_allclose(res.distances, want_v, rtol=1e-12)


# -- error bars ------------------------------------------------------------------------------------
def test_conformal_coverage_on_synthetic_pairs():
    rng = np.random.default_rng(0)

    def draw(n):
        y = rng.gamma(3.0, 3.0, n)
        return np.maximum(y * (1 + 0.1 * rng.standard_normal(n)) + 0.2 * rng.standard_normal(n), 0), y

    cal = ConformalCalibrator(*draw(2000))
    pred, target = draw(4000)
    for level in (0.8, 0.9, 0.95):
        slack = 3 * np.sqrt(level * (1 - level) / 4000) + 0.01
        assert cal.coverage(pred, target, level) >= level - slack
        lo = cal.lower_bound(pred, level)
        assert np.mean(target >= lo) >= level - slack
    assert cal.n_bins == 4
    small = pred <= np.quantile(pred, 0.25)  # conditional coverage on small estimates (Mondrian bins)
    assert cal.coverage(pred[small], target[small], 0.9) >= 0.9 - 3 * np.sqrt(0.09 / small.sum()) - 0.01
    grid = np.linspace(0, 60, 5001)
    assert np.all(np.diff(cal.lower_bound(grid, 0.99)) >= 0)  # monotone: the re-ranking relies on it
    lo, hi = cal.interval(np.array([0.5, 5.0, 50.0]), 0.9)
    w = hi - lo
    assert w[0] < w[1] < w[2]  # scale-aware: narrow for small distances
    assert conformal_quantile(np.ones(5), 0.99) == np.inf


def test_interval_coverage_of_the_served_model(quantile_model):
    emb, solver = quantile_model
    X, Y = _sparse_1d(300, 12, seed=40), _sparse_1d(300, 12, seed=41)
    wx, wy = as_weights(X)[0], as_weights(Y)[0]
    exact = np.array([solver.solve(a, b) for a, b in zip(wx, wy)])
    res = emb.interval(X, Y, 0.9)
    assert isinstance(res, DistanceEstimate) and res.level == 0.9
    assert np.all(res.lower <= res.estimate) and np.all(res.estimate <= res.upper)
    cover = np.mean((exact >= res.lower - 1e-6) & (exact <= res.upper + 1e-6))
    assert cover >= 0.9 - 3 * np.sqrt(0.09 / 300) - 0.02
    r2 = emb.interval(X, Y, 0.9, root=True)
    np.testing.assert_allclose(r2.upper, np.sqrt(res.upper), rtol=1e-6)
    t = emb.interval(torch.from_numpy(X), torch.from_numpy(Y), 0.9)
    assert isinstance(t.lower, torch.Tensor)
    np.testing.assert_array_equal(res.estimate, emb.distance(X, Y))  # distance: the estimates, one type
    with pytest.raises(TypeError, match="interval"):
        emb.distance(X, Y, interval=0.9)


# -- out of distribution ---------------------------------------------------------------------------
def test_ood_flags_unusual_inputs():
    emb = _linear_model()
    train = random_images(200, 50)
    emb.calibration = {"train_recon": emb.ood_score(train)}
    assert emb.is_ood(train).mean() <= 0.02
    diracs = np.zeros((5, *GRID))
    diracs[np.arange(5), [0, 5, 0, 5, 3], [0, 5, 5, 0, 2]] = 1.0
    assert emb.is_ood(diracs).all()
    with pytest.warns(OutOfDistributionWarning, match="out of distribution"):
        emb.distance(diracs, train[:5])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        emb.distance(diracs, train[:5], warn_ood=False)
        emb.distance(train[:5], train[5:10])  # typical inputs (usually) pass


# -- geometry --------------------------------------------------------------------------------------
def test_barycenter_interpolate_principal_directions(emb):
    X = random_images(12, 60)
    b = emb.barycenter(X)
    assert b.shape == GRID and abs(b.sum() - 1) < 1e-5  # a grid model decodes images
    np.testing.assert_allclose(emb.barycenter(X[:2], [1, 0]), emb.decode(emb.embed(X[:1]))[0], rtol=1e-5)
    path = emb.interpolate(X[0], X[1], steps=4)
    assert path.shape == (4, *GRID)
    np.testing.assert_allclose(path[0], emb.decode(emb.embed(X[:1]))[0], rtol=1e-5)
    np.testing.assert_allclose(path[-1], emb.decode(emb.embed(X[1:2]))[0], rtol=1e-5)
    pd = emb.principal_directions(X, n_components=2, scales=(-1.5, 0.0, 1.5))
    assert pd.histograms.shape == (2, 3, *GRID) and pd.components.shape == (2, 8)
    np.testing.assert_allclose(pd.histograms.sum((-2, -1)), 1, rtol=1e-5)
    np.testing.assert_allclose(pd.histograms[0, 1], emb.decode(pd.mean[None].astype(np.float32))[0], rtol=1e-5)
    assert pd.std[0] >= pd.std[1] and np.all(np.diff(pd.explained_variance_ratio) <= 0)


# -- bad input -------------------------------------------------------------------------------------
@pytest.mark.parametrize("bad, match", [
    (np.ones((3, 5, 5)), "wrong image size.*expected images of 6×6.*received 5×5.*fix"),
    (np.ones((3, 35)), "wrong number of bins.*expected 36"),
    (np.ones((2, 3, 6, 6)), "wrong rank.*fix"),
    (np.ones(35), r"wrong number of bins.*expected 36 bins per row.*one \(36,\).*received an array of shape \(35,\)"),
    (np.ones((5, 5)), r"wrong number of bins or the wrong image size.*images of 6×6.*one \(6, 6\).*shape \(5, 5\)"),
    (np.ones(()), "wrong rank.*fix"),
    (np.zeros((0, 6, 6)), "empty"),
    (np.where(np.eye(6)[None] > 0, np.nan, 1.0), "NaN"),
    (-np.ones((1, 6, 6)), "negative"),
    (np.stack([np.ones((6, 6)), np.zeros((6, 6))]), "all-zero rows.*row 1"),
    (np.array([["a"] * 36]), "not a numeric array"),
])
def test_bad_inputs_are_explained(emb, bad, match):
    for call in (lambda: emb.embed(bad), lambda: emb.distance(bad, bad), lambda: emb.cdist(bad, random_images(2)),
                 lambda: emb.kneighbors(bad, random_images(3), k=1)):
        with pytest.raises(InputError, match=match):
            call()


def test_bad_options_are_explained(emb):
    X = random_images(4, 70)
    with pytest.raises(InputError, match="k is larger than the reference set.*k <= 4.*received k = 5"):
        emb.kneighbors(X, X, k=5)
    with pytest.raises(InputError, match="bad k"):
        emb.kneighbors(X, X, k=0)
    with pytest.raises(InputError, match="different numbers of inputs.*4 and 3.*cdist"):
        emb.distance(X, X[:3])
    with pytest.raises(InputError, match="needs calibration pairs"):
        emb.interval(X, X, 0.9)
    with pytest.raises(InputError, match="needs calibration pairs.*n_candidates"):
        emb.kneighbors(X, X, k=1, exact_rerank=True)
    with pytest.raises(InputError, match="bad tile_size"):
        emb.cdist(X, X, tile_size=0)
    with pytest.raises(InputError, match="bad batch_size"):
        emb.embed(X, batch_size=-1)
    with pytest.raises(InputError, match="no out-of-distribution reference"):
        emb.is_ood(X)
    with pytest.raises(InputError, match="bad barycenter weights"):
        emb.barycenter(X, weights=[1, -1, 0, 0])
    with pytest.raises(InputError, match="does not fit the decoder"):
        emb.decode(np.zeros((2, 5), np.float32))
    with pytest.raises(InputError, match="too many principal directions"):
        emb.principal_directions(X, n_components=4)
    with pytest.raises(InputError, match="must be one input"):
        emb.interpolate(X[:2], X[0])
    with pytest.raises(InputError, match="unknown device"):
        emb.embed(X, device="tpu")
    cal = _linear_model(calibration={"val_pred": np.ones(50), "val_target": np.ones(50)})
    with pytest.raises(InputError, match="bad level.*strictly between 0 and 1"):
        cal.interval(X, X, 1.5)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_cuda_request_without_gpu_is_explained(emb):
    with pytest.raises(InputError, match="CUDA was requested but no GPU.*fix: use device='cpu'"):
        emb.embed(random_images(2), device="cuda")
    with pytest.raises(InputError, match="CUDA was requested"):
        _linear_model().to("cuda")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cpu_cuda_parity(quantile_model):
    emb = _linear_model()
    A, B = random_images(149, 80), random_images(301, 81)
    for name, args in [("embed", (A,)), ("distance", (A, B[:149])), ("cdist", (A, B)), ("pdist", (A,))]:
        cpu = getattr(emb, name)(*args, device="cpu")
        gpu = getattr(emb, name)(*args, device="cuda")
        assert isinstance(gpu, np.ndarray)
        np.testing.assert_allclose(gpu, cpu, rtol=1e-3, atol=1e-4 * float(np.max(cpu)))
    tg = emb.cdist(torch.from_numpy(A).cuda(), torch.from_numpy(B).cuda(), tile_size=33, device="cuda")
    assert tg.device.type == "cuda"
    np.testing.assert_allclose(tg.cpu().numpy(), emb.cdist(A, B), rtol=1e-3, atol=1e-4)
    qe, solver = quantile_model
    Q, R = _sparse_1d(4, 12, seed=90), _sparse_1d(40, 12, seed=91)
    on_gpu = qe.kneighbors(Q, R, k=3, exact_rerank=True, device="cuda")
    np.testing.assert_array_equal(on_gpu.indices, _brute_force(solver, Q, R, 3)[0])


def test_serve_benchmark_smoke(digits):
    """The benchmark runs end to end on a few 8×8 digits and reports every method."""
    import wassembed.nn  # noqa: F401  (an import error must fail, not skip)
    from wassembed.bench import format_serve_benchmark, run_serve_benchmark

    res = run_serve_benchmark(digits.subset(np.arange(60)), ["fast"], n_pairs=6, n_speed_pairs=20,
                              matrix_size=20, scaling_sizes=(8,), scaling_images=30, scaling_exact_pairs=3,
                              scaling_speed_pairs=10, threads=None)
    names = [r["method"] for r in res["rows"]]
    assert names[0].startswith("exact") and any("sinkhorn" in n for n in names) and any("cdist" in n for n in names)
    assert all(r["pairs_per_s"] > 0 for r in res["rows"]) and res["scaling"][0]["bins"] == 64
    assert "| method |" in format_serve_benchmark(res)


def test_conformal_high_levels_fall_back_to_fewer_bins():
    rng = np.random.default_rng(3)
    y = rng.gamma(3.0, 3.0, 3000)
    cal = ConformalCalibrator(y * (1 + 0.1 * rng.standard_normal(3000)), y)
    assert cal.n_bins == 5  # 1500 pairs after the split: 300 per bin support levels up to 300/301
    assert np.isfinite(cal.quantiles(0.9)).all() and cal.quantiles(0.9).size == 5
    # at 0.99 a 300-pair bin keeps (300 + 1)(1 - 0.99) = 3 scores beyond its quantile, fewer than 5: the finest
    # binning that keeps 5 has 3 bins of 500
    assert np.isfinite(cal.quantiles(0.99)).all() and cal.quantiles(0.99).size == 3
    assert cal.support(0.99) == (500, 3)
    q = cal.quantiles(0.999)  # too high for 300-pair bins: one pooled bin of 1500 pairs
    assert q.size == 1 and np.isfinite(q).all()
    assert np.all(cal.lower_bound(np.array([1.0, 10.0]), 0.999) > 0)


# -- one input, broadcast ----------------------------------------------------------------------------
def test_one_image_is_one_input_not_a_stack_of_rows():
    """The issue: on a 16×16 model, distance(X[0], X[1:4]) read the image X[0] as 16 histograms."""
    torch.manual_seed(0)
    m = WassersteinEmbedding(torch.nn.Linear(256, 4), torch.nn.Linear(4, 256), config=None, p=2, grid=(16, 16))
    X = random_images(4, 1, grid=(16, 16))
    want = m.distance(X[:1], X[1:4])
    assert want.shape == (3,)
    np.testing.assert_array_equal(m.distance(X[0], X[1:4]), want)  # one against many
    np.testing.assert_array_equal(m.distance(X[1:4], X[0]), want)
    np.testing.assert_array_equal(m.distance(X[0].reshape(-1), X[1:4]), want)  # one histogram (k,)
    assert m.distance(X[0], X[1]).shape == (1,)


def test_every_method_reads_a_single_input_as_a_batch_of_one():
    X, R = random_images(5, 90), random_images(12, 91)
    emb = _linear_model()
    emb.calibration = {"train_recon": emb.ood_score(R)}

    def like(t):
        return t.numpy() if isinstance(t, torch.Tensor) else t

    for one in (X[0], X[0].reshape(-1), torch.from_numpy(X[0])):
        np.testing.assert_array_equal(like(emb.embed(one)), emb.embed(X[:1]))
        np.testing.assert_array_equal(emb.histograms(one), emb.histograms(X[:1]))
        np.testing.assert_array_equal(like(emb.cdist(one, R)), emb.cdist(X[:1], R))
        np.testing.assert_array_equal(like(emb.cdist(R, one)), emb.cdist(R, X[:1]))
        np.testing.assert_array_equal(like(emb.ood_score(one)), emb.ood_score(X[:1]))
        np.testing.assert_array_equal(emb.is_ood(one), emb.is_ood(X[:1]))
        v1, i1 = emb.kneighbors(one, R, k=3)
        v2, i2 = emb.kneighbors(X[:1], R, k=3)
        np.testing.assert_array_equal(like(i1), i2)
        np.testing.assert_array_equal(like(v1), v2)
        np.testing.assert_array_equal(like(emb.kneighbors(X, one, k=1)[1]), np.zeros((5, 1), np.int64))
        np.testing.assert_array_equal(like(emb.barycenter(one)), emb.decode(emb.embed(X[:1]))[0])
        assert emb.pdist(one).shape == (0,)
    with pytest.raises(InputError, match="too many principal directions"):
        emb.principal_directions(X[0], n_components=1)


def test_single_histograms_on_supports_without_a_grid():
    k = 5
    coords = np.arange(2.0 * k).reshape(k, 2)
    torch.manual_seed(1)
    m = WassersteinEmbedding(torch.nn.Linear(k, 3), torch.nn.Linear(3, k), config=None, p=1, coords=coords)
    H = np.random.default_rng(2).random((4, k))
    np.testing.assert_array_equal(m.distance(H[0], H[1:]), m.distance(H[:1], H[1:]))
    assert m.embed(H[0]).shape == (1, 3) and m.cdist(H, H[2]).shape == (4, 1)
    with pytest.raises(InputError, match=r"wrong number of bins.*5 bins per row.*one \(5,\).*shape \(4,\)"):
        m.embed(H[0, :4])
    with pytest.raises(InputError, match=r"5 bins per row.*shape \(4, 4\)"):
        m.distance(H[:, :4], H)


# -- one dtype rule ------------------------------------------------------------------------------------
def test_every_distance_is_float64_and_network_outputs_float32(quantile_model):
    qe, _ = quantile_model
    Q, R = _sparse_1d(3, 12, seed=95), _sparse_1d(30, 12, seed=96)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ServingWarning)
        est = qe.interval(Q, R[:3], 0.9)
        outs = {"distance": qe.distance(Q, R[:3]), "distance root": qe.distance(Q, R[:3], root=True),
                "interval estimate": est.estimate, "interval lower": est.lower, "interval upper": est.upper,
                "cdist": qe.cdist(Q, R), "cdist root": qe.cdist(Q, R, root=True), "pdist": qe.pdist(R),
                "kneighbors distances": qe.kneighbors(Q, R, k=4).distances,
                "kneighbors exact distances": qe.kneighbors(Q, R, k=4, exact_rerank=True).distances,
                "kneighbors fixed distances": qe.kneighbors(Q, R, k=4, exact_rerank=True, n_candidates=8).distances}
    for name, v in outs.items():
        assert v.dtype == np.float64, name
    e = _linear_model()
    X = random_images(4, 97)
    assert e.ood_score(X).dtype == np.float64
    assert e.embed(X).dtype == np.float32 and e.decode(e.embed(X)).dtype == np.float32
    assert e.barycenter(X).dtype == np.float32 and e.interpolate(X[0], X[1], 3).dtype == np.float32
    tX = torch.from_numpy(X)
    assert e.cdist(tX, tX).dtype == torch.float64 and e.distance(tX, tX).dtype == torch.float64
    assert e.pdist(tX).dtype == torch.float64 and e.kneighbors(tX, tX, k=2).distances.dtype == torch.float64
    assert e.embed(tX).dtype == torch.float32
    # the float64 estimates are the float32 network's, unchanged
    Z = torch.from_numpy(e.embed(X))
    np.testing.assert_array_equal(e.distance(X, X[::-1]), e.distance_fn.paired(Z, Z.flip(0)).double().numpy())


# -- decoded shapes --------------------------------------------------------------------------------------
def test_decoded_histograms_have_the_shape_of_the_inputs():
    k = 7
    torch.manual_seed(3)
    m = WassersteinEmbedding(torch.nn.Linear(k, 3), torch.nn.Linear(3, k), config=None, p=2, cost=np.ones((k, k)))
    H = np.random.default_rng(4).random((6, k))
    assert m.barycenter(H).shape == (k,) and m.interpolate(H[0], H[1], 4).shape == (4, k)
    assert m.decode(m.embed(H)).shape == (6, k)
    assert m.principal_directions(H, 2, scales=(0.0, 1.0)).histograms.shape == (2, 2, k)
    e = _linear_model()
    X = random_images(6, 98)
    D = e.decode(e.embed(X))
    assert D.shape == (6, *GRID) and e.decode(e.embed(X)[0]).shape == (1, *GRID)
    np.testing.assert_allclose(D.sum((1, 2)), 1, rtol=1e-5)
    assert e.barycenter(X, weights=[1, 2, 0, 0, 0, 1]).shape == GRID
    assert isinstance(e.decode(torch.from_numpy(e.embed(X))), torch.Tensor)
    assert e.decode(torch.from_numpy(e.embed(X))).shape == (6, *GRID)


# -- warnings on small data ------------------------------------------------------------------------------
def test_error_bars_on_too_few_calibration_pairs_warn(quantile_model):
    qe, solver = quantile_model
    small = WassersteinEmbedding(qe.encoder, qe.decoder, config=None, p=2, grid=(1, 12),
                                 calibration={k: v[:41] for k, v in qe.calibration.items()})
    X, Y = _sparse_1d(5, 12, seed=99), _sparse_1d(5, 12, seed=100)
    with pytest.warns(CalibrationWarning, match=r"90 % error bars.*41 pairs of the model's 41 calibration pairs.*"
                      r"= 4\.2 pairs.*m >= 49.*fix: precompute more pairs or raise val_fraction.*at most 0\.88") as rec:
        r = small.interval(X, Y, 0.9)
    assert rec[0].filename == __file__ and isinstance(r, DistanceEstimate)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        small.interval(X, Y, 0.88)  # (41 + 1)(1 − 0.88) = 5.04
        qe.interval(X, Y, 0.9)  # 200 pairs (100 after choosing c): 10.1
    with pytest.warns(CalibrationWarning, match="99 % error bars.*100 pairs of the model's 200"):
        qe.interval(X, Y, 0.99)
    cal = ConformalCalibrator(np.arange(1.0, 42.0), np.arange(1.0, 42.0))
    assert cal.support(0.9) == (41, 1)
    y = np.random.default_rng(5).gamma(3.0, 3.0, 3000)
    assert ConformalCalibrator(y, y).support(0.9) == (300, 5)  # per-bin quantiles: the smallest bin counts
    assert ConformalCalibrator(y, y).support(0.999) == (1500, 1)  # fell back to one bin


def test_rerank_that_degenerates_to_brute_force_warns(quantile_model):
    X = random_images(30, 30)
    solver = ExactSolver(make_ground_cost(grid=GRID, p=2), 2)
    poor = _linear_model()
    w = as_weights(X)[0]
    i, j = np.arange(0, 30, 2), np.arange(1, 30, 2)
    poor.calibration = {"val_pred": poor.distance(X[i], X[j]).astype(np.float64),
                        "val_target": solver.solve_pairs(w, i, j)}
    Q, R = random_images(2, 31), random_images(25, 32)
    with pytest.warns(RerankWarning, match=r"solved 50 of the 50 .*100 %, 25\.0 of 25 references per query.*"
                      r"level=0\.99.*fix: .*better-trained model.*lower level.*n_candidates=12") as rec:
        res = poor.kneighbors(Q, R, k=3, exact_rerank=True)
    assert rec[0].filename == __file__ and res.n_exact == 50
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        poor.kneighbors(Q, R, k=3, exact_rerank=True, n_candidates=25)  # a fixed budget is the caller's choice
        poor.kneighbors(Q, R[:10], k=3, exact_rerank=True)  # 2k of 10 candidates in the first round: no choice
        qe, _ = quantile_model
        good = qe.kneighbors(_sparse_1d(5, 12, seed=20), _sparse_1d(60, 12, seed=21), k=4, exact_rerank=True)
        assert good.n_exact <= 0.5 * 5 * 60


def _evaluation_cache(tmp_path, seed):
    from wassembed.data import HistogramSet
    from wassembed.exact import DistanceCache, precompute

    hs = HistogramSet.from_images(random_images(12, seed).astype(np.float64), name=f"eval{seed}")
    precompute(hs, tmp_path / f"c{seed}", pairs=30, workers=1, progress=False)
    return DistanceCache.open(tmp_path / f"c{seed}")


def test_evaluate_on_other_data_warns_that_overlap_is_unchecked(tmp_path):
    from wassembed.nn import ModelConfig, build_decoder, build_encoder
    from wassembed.serve import evaluate

    cache = _evaluation_cache(tmp_path, 1)
    cfg = ModelConfig.preset("fast", grid=GRID, embed_dim=8)

    def model(fingerprint):
        info = {} if fingerprint is None else {"dataset_fingerprint": fingerprint}
        return WassersteinEmbedding(build_encoder(cfg, seed=1), build_decoder(cfg, seed=1), config=cfg, p=2,
                                    grid=GRID, info=info, calibration={"train_images": np.array([0, 1])})

    with pytest.warns(EvaluationWarning, match=rf"cannot check .*overlap with the training images.*cache "
                      rf"{cache.fingerprint[:12]}.*training data 0123456789ab.*no pair was dropped.*fix: evaluate "
                      r"on a cache of images the model never saw.*images=") as rec:
        m = evaluate(model("0123456789abcdef"), cache)
    assert rec[0].filename == __file__ and m["n_dropped"] == 0 and m["n_pairs"] == 30
    with pytest.warns(EvaluationWarning, match="training data none recorded"):
        evaluate(model(None), cache)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = evaluate(model(cache.fingerprint), cache)  # the same data: pairs touching images 0, 1 are dropped
    assert m["n_dropped"] > 0
