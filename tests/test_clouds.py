"""Point clouds: the PointCloudSet container, its data sets and the exact CloudSolver."""

import numpy as np
import ot
import pytest

from wassembed.data import SHAPE_NAMES, PointCloudSet, make_shapes, mnist_clouds
from wassembed.errors import InputError, SolverError
from wassembed.exact import CloudSolver, cloud_ground_cost


def _random_clouds(seed, n=6, d=2, low=3, high=12):
    rng = np.random.default_rng(seed)
    return [(rng.normal(size=(k, d)), rng.uniform(0.1, 1.0, size=k)) for k in rng.integers(low, high, size=n)]


def _emd2(cloud_a, cloud_b, p):
    (pa, wa), (pb, wb) = cloud_a, cloud_b
    M = ot.dist(pa, pb) if p == 2 else ot.dist(pa, pb, metric="euclidean")
    return ot.emd2(wa, wb, M)


# -- the container ----------------------------------------------------------------------------------
def test_from_clouds_layout_and_normalisation():
    cs = PointCloudSet.from_clouds([np.zeros((2, 3)), (np.ones((3, 3)), [1.0, 1.0, 2.0])], labels=[7, 8])
    assert (len(cs), cs.n, cs.d) == (2, 2, 3)
    assert cs.points.dtype == np.float64 and cs.points.shape == (5, 3)
    assert cs.offsets.dtype == np.int64 and cs.offsets.tolist() == [0, 2, 5]
    assert cs.sizes.tolist() == [2, 3]
    assert cs.weights.tolist() == [0.5, 0.5, 0.25, 0.25, 0.5]
    p, w = cs.cloud(1)
    assert p.shape == (3, 3) and w.sum() == pytest.approx(1.0)
    assert cs.labels.tolist() == [7, 8]


def test_direct_constructor_defaults_to_uniform_weights():
    cs = PointCloudSet(np.arange(8.0).reshape(4, 2), None, [0, 1, 4])
    assert cs.weights.tolist() == pytest.approx([1.0, 1 / 3, 1 / 3, 1 / 3])


@pytest.mark.parametrize("clouds, match", [
    ([np.array([[0.0, np.nan]])], "cloud 0 points holds NaN or inf"),
    ([np.zeros((2, 2)), (np.zeros((2, 2)), [1.0, np.inf])], "cloud 1 weights holds NaN or inf"),
    ([(np.zeros((2, 2)), [1.0, -0.5])], "cloud 0 weights are negative.*clip"),
    ([(np.zeros((2, 2)), [0.0, 0.0])], "cloud 0 weights are all zero"),
    ([np.zeros((0, 2))], "cloud 0 is empty"),
    ([np.zeros((2, 2)), np.zeros((2, 3))], "different dimensions.*d = 3 for cloud 1"),
    ([np.zeros(5)], r"wrong rank.*reshape\(-1, 1\).*reshape\(1, -1\)"),
    ([(np.zeros((3, 2)), [1.0, 1.0])], r"weights do not match.*expected shape \(3,\)"),
    ([], "bad clouds"),
    ([np.array([["a", "b"]])], "not a real numeric array"),
])
def test_from_clouds_rejects_bad_input(clouds, match):
    with pytest.raises(InputError, match=match):
        PointCloudSet.from_clouds(clouds)


@pytest.mark.parametrize("offsets, match", [
    ([1, 2, 4], "offsets do not span the points"),
    ([0, 2, 3], "offsets do not span the points"),
    ([0, 3, 2, 4], "offsets are not nondecreasing"),
    ([0, 2, 2, 4], "cloud 1 is empty"),
    ([0.0, 4.0], "bad offsets"),
])
def test_bad_offsets_are_refused(offsets, match):
    with pytest.raises(InputError, match=match):
        PointCloudSet(np.zeros((4, 2)), None, offsets)


def test_flat_input_is_validated():
    with pytest.raises(InputError, match="weights do not match the points"):
        PointCloudSet(np.zeros((4, 2)), np.ones(3), [0, 4])
    with pytest.raises(InputError, match="weights of cloud 1 are all zero"):
        PointCloudSet(np.zeros((4, 2)), [1.0, 1.0, 0.0, 0.0], [0, 2, 4])
    with pytest.raises(InputError, match="points have the wrong rank"):
        PointCloudSet(np.zeros(4), None, [0, 4])
    with pytest.raises(InputError, match="labels do not match the clouds"):
        PointCloudSet(np.zeros((4, 2)), None, [0, 2, 4], labels=[1, 2, 3])


def test_npz_round_trip_keeps_everything(tmp_path):
    cs = PointCloudSet.from_clouds(_random_clouds(0), labels=np.arange(6))
    path = tmp_path / "clouds.npz"
    cs.save(path)
    back = PointCloudSet.load(path)
    assert back.fingerprint() == cs.fingerprint()
    np.testing.assert_array_equal(back.points, cs.points)
    np.testing.assert_array_equal(back.weights, cs.weights)
    np.testing.assert_array_equal(back.offsets, cs.offsets)
    np.testing.assert_array_equal(back.labels, cs.labels)


def test_npz_without_weights_is_uniform_and_bad_files_say_so(tmp_path):
    np.savez(tmp_path / "a.npz", points=np.zeros((3, 2)), offsets=np.array([0, 1, 3]))
    assert PointCloudSet.load(tmp_path / "a.npz").weights.tolist() == [1.0, 0.5, 0.5]
    np.savez(tmp_path / "b.npz", images=np.zeros((1, 2, 2)))
    with pytest.raises(InputError, match="holds no point clouds"):
        PointCloudSet.load(tmp_path / "b.npz")
    (tmp_path / "c.npz").write_bytes(b"not a zip")
    with pytest.raises(InputError, match="cannot read"):
        PointCloudSet.load(tmp_path / "c.npz")


def test_fingerprint_is_stable_and_changes_with_the_data():
    clouds = _random_clouds(1)
    a = PointCloudSet.from_clouds(clouds, labels=np.zeros(6))
    b = PointCloudSet.from_clouds(clouds)
    assert a.fingerprint() == b.fingerprint() and len(a.fingerprint()) == 64  # labels ignored
    scaled = [(p, 4 * w) for p, w in clouds]  # same after normalisation (scaling by 4 is exact)
    assert PointCloudSet.from_clouds(scaled).fingerprint() == a.fingerprint()
    moved = [(p + (t == 2) * 1e-9, w) for t, (p, w) in enumerate(clouds)]
    reweighted = [(p, w * np.linspace(1, 2, w.size)) if t == 0 else (p, w) for t, (p, w) in enumerate(clouds)]
    fps = {a.fingerprint(), PointCloudSet.from_clouds(moved).fingerprint(),
           PointCloudSet.from_clouds(reweighted).fingerprint(), a.subset([1, 0, 2, 3, 4, 5]).fingerprint()}
    assert len(fps) == 4


def test_subset_and_padded():
    clouds = _random_clouds(2)
    cs = PointCloudSet.from_clouds(clouds, labels=np.arange(6) * 10)
    sub = cs.subset([4, 1, 4])
    assert sub.labels.tolist() == [40, 10, 40]
    for t, i in enumerate([4, 1, 4]):
        np.testing.assert_array_equal(sub.cloud(t)[0], cs.cloud(i)[0])
        np.testing.assert_array_equal(sub.cloud(t)[1], cs.cloud(i)[1])
    assert sub.fingerprint() == PointCloudSet.from_clouds([clouds[4], clouds[1], clouds[4]]).fingerprint()
    P, W, mask = cs.padded([0, 3])
    kmax = max(cs.sizes[0], cs.sizes[3])
    assert P.shape == (2, kmax, 2) and W.shape == (2, kmax) and mask.dtype == bool
    assert mask.sum(1).tolist() == [cs.sizes[0], cs.sizes[3]]
    np.testing.assert_allclose(W.sum(1), 1.0)
    assert (P[~mask] == 0).all() and (W[~mask] == 0).all()
    np.testing.assert_array_equal(P[1, :cs.sizes[3]], cs.cloud(3)[0])
    assert cs.padded([0], max_points=20)[0].shape == (1, 20, 2)
    with pytest.raises(InputError, match="bad max_points"):
        cs.padded([0], max_points=1)
    with pytest.raises(InputError, match="out of range"):
        cs.subset([6])


# -- data sets --------------------------------------------------------------------------------------
def test_mnist_clouds_points_jitter_and_weights():
    rng = np.random.default_rng(3)
    images = (rng.uniform(size=(3, 6, 5)) > 0.6) * rng.integers(1, 256, size=(3, 6, 5))
    images = images.astype(np.uint8)
    images[:, 0, 0] = 9  # no empty image
    cs = mnist_clouds(images, seed=1, labels=[0, 1, 2])
    assert cs.d == 2 and cs.sizes.tolist() == [int(np.count_nonzero(im)) for im in images]
    for i, im in enumerate(images):
        p, w = cs.cloud(i)
        r, c = np.nonzero(im)
        jitter = p - np.stack([r, c], axis=1)
        assert (jitter >= -0.5).all() and (jitter < 0.5).all()
        np.testing.assert_allclose(w, im[r, c] / im.sum())
    assert mnist_clouds(images, seed=1).fingerprint() == cs.fingerprint()
    assert mnist_clouds(images, seed=2).fingerprint() != cs.fingerprint()
    with pytest.raises(InputError, match="wrong rank"):
        mnist_clouds(images[0])


def test_make_shapes():
    cs = make_shapes(12, seed=4, min_points=50, max_points=80)
    assert len(cs) == 12 and cs.d == 3 and len(SHAPE_NAMES) == 4
    assert ((cs.sizes >= 50) & (cs.sizes <= 80)).all()
    assert sorted(np.bincount(cs.labels).tolist()) == [3, 3, 3, 3]
    p, w = cs.cloud(0)
    np.testing.assert_allclose(w, 1.0 / p.shape[0])
    assert make_shapes(12, seed=4, min_points=50, max_points=80).fingerprint() == cs.fingerprint()
    assert make_shapes(2, d=5, seed=0, max_points=60).d == 5
    with pytest.raises(InputError, match="max_points"):
        make_shapes(3, min_points=10, max_points=5)
    with pytest.raises(InputError, match="bad d"):
        make_shapes(3, d=2)


# -- the exact solver -------------------------------------------------------------------------------
@pytest.mark.parametrize("p", [1, 2])
def test_solver_equals_emd2_on_random_clouds(p):
    clouds = _random_clouds(5, n=5, d=3)
    cs = PointCloudSet.from_clouds(clouds)
    solver = CloudSolver(p)
    i, j = np.triu_indices(5, 1)
    got = solver.solve_pairs(cs, i, j)
    want = [_emd2(cs.cloud(a), cs.cloud(b), p) for a, b in zip(i, j)]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)
    assert solver.solve(clouds[0], clouds[1]) == pytest.approx(want[0], abs=1e-9)


@pytest.mark.parametrize("p", [1, 2])
@pytest.mark.parametrize("k", [5, 40])
def test_assignment_path_equals_emd2(p, k):
    rng = np.random.default_rng(k)
    a, b = rng.normal(size=(k, 2)), rng.normal(size=(k, 2)) + 1
    u = np.full(k, 1.0 / k)
    want = _emd2((a, u), (b, u), p)
    for mode in ("auto", "always", "never"):
        assert CloudSolver(p, assignment=mode).solve(a, b) == pytest.approx(want, abs=1e-9)


def test_solve_is_invariant_to_point_order_and_to_splitting_points():
    (pa, wa), (pb, wb) = _random_clouds(6, n=2, d=2)
    solver = CloudSolver()
    value = solver.solve((pa, wa), (pb, wb))
    perm = np.random.default_rng(0).permutation(pa.shape[0])
    assert solver.solve((pa[perm], wa[perm]), (pb, wb)) == pytest.approx(value, abs=1e-9)
    doubled = (np.repeat(pa, 2, axis=0), np.repeat(wa / 2, 2))
    assert solver.solve(doubled, (pb, wb)) == pytest.approx(value, abs=1e-9)
    assert solver.solve(doubled, (pa, wa)) == pytest.approx(0.0, abs=1e-12)


def test_zero_weight_points_and_ground_cost():
    a = (np.array([[0.0], [100.0]]), np.array([1.0, 0.0]))
    assert CloudSolver().solve(a, np.array([[3.0]])) == 9.0
    M = cloud_ground_cost([[0.0, 0.0], [1.0, 1.0]], [[3.0, 4.0]], p=1)
    np.testing.assert_allclose(M, ot.dist(np.array([[0.0, 0.0], [1.0, 1.0]]), np.array([[3.0, 4.0]]),
                                          metric="euclidean"))


def test_solver_rejects_bad_input():
    with pytest.raises(InputError, match="different dimensions"):
        CloudSolver().solve(np.zeros((2, 2)), np.zeros((2, 3)))
    with pytest.raises(InputError, match="bad assignment"):
        CloudSolver(assignment="sometimes")
    with pytest.raises(InputError, match="unsupported exponent"):
        CloudSolver(p=3)
    with pytest.raises(InputError, match="cloud b points have the wrong rank"):
        CloudSolver().solve(np.zeros((2, 2)), np.zeros(2))


@pytest.mark.filterwarnings("ignore:numItermax reached:UserWarning")  # the non-optimal solve is the point
def test_not_optimal_raises_solver_error():
    cs = PointCloudSet.from_clouds(_random_clouds(7, n=2, low=30, high=31))
    with pytest.raises(SolverError, match=r"exact solve of pair \(0, 1\) did not reach optimality"):
        CloudSolver(num_iter_max=1).solve_pairs(cs, [0], [1])


def test_a_list_of_clouds_given_to_the_constructor_points_to_from_clouds():
    """``PointCloudSet(list_of_clouds)``, a natural first try, names the constructor that takes a list."""
    ragged = [np.zeros((3, 2)), np.ones((5, 2))]
    with pytest.raises(InputError, match=r"points is ragged.*fix: .*use PointCloudSet\.from_clouds\(clouds\)"):
        PointCloudSet(ragged)
    with pytest.raises(InputError, match=r"points have the wrong rank.*fix: .*use PointCloudSet\.from_clouds"):
        PointCloudSet([np.zeros((3, 2)), np.ones((3, 2))])  # clouds of one size stack into (n, k, d)
    assert PointCloudSet.from_clouds(ragged).sizes.tolist() == [3, 5]  # what the message suggests works
