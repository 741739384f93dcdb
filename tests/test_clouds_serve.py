"""Training and serving on point clouds: the trainer on a cache of clouds, CloudEmbedding's methods, files, CLI."""

import warnings

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import wassembed
from wassembed.cli import main
from wassembed.data import make_shapes
from wassembed.errors import CacheMismatchError, InputError
from wassembed.exact import CloudSolver, precompute
from wassembed.learn._clouds import augment_clouds
from wassembed.nn import ModelConfig, pack_clouds
from wassembed.serve import BaseEmbedding, CloudEmbedding, OutOfDistributionWarning, WassersteinEmbedding

pytest.importorskip("geomloss", reason="the point-cloud reconstruction loss needs GeomLoss (the learn extra)")

TINY = dict(set_width=16, set_layers=2, hidden=(32,), embed_dim=8, decoder_points=8)


@pytest.fixture(scope="module")
def clouds():
    return make_shapes(90, seed=3, min_points=12, max_points=30)


@pytest.fixture(scope="module")
def trained(clouds, tmp_path_factory):
    """A tiny set model trained 3 epochs on 1,200 exact pairs among clouds 0–69 (70–89 unseen)."""
    root = tmp_path_factory.mktemp("cloud-model")
    precompute(clouds, root / "cache", pairs=1200, images="0:70", workers=1, progress=False)
    cfg = ModelConfig.preset("set", point_dim=3, max_points=30, coord_scale=1.0, **TINY)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # few held-out pairs: SmallDataWarning
        model = wassembed.train(root / "cache", model=cfg, epochs=3, progress=False, threads=1, seed=0,
                                augment="rot,flip")
    model.save(root / "model")
    precompute(clouds, root / "unseen", pairs=60, images="70:90", workers=1, progress=False, lot=False)
    return model, root


def _list(cs, idx):
    return [cs.cloud(int(i)) for i in idx]


def test_training_on_clouds_gives_a_calibrated_cloud_model(trained):
    model, _ = trained
    assert isinstance(model, CloudEmbedding) and model.point_dim == 3
    cal = model.calibration
    assert {"val_pred", "val_target", "latent_mean", "latent_whiten", "latent_scores"} <= set(cal)
    assert "pca_scores" not in cal and "train_recon" not in cal
    hist = model.info["training"]["history"]
    assert len(hist) == 3 and all(np.isfinite(h["train_loss"]) for h in hist)
    assert hist[-1]["train_loss"] < hist[0]["train_loss"]
    assert model.info["dataset"]["kind"] == "point_clouds"
    distilled = model.info["training"]["distillation"]  # precompute cached one CloudLOT solve per cloud
    assert distilled["used"] and distilled["images"] >= 50 and distilled["dim"] == 8


def test_every_form_of_clouds_gives_the_same_distances(trained, clouds):
    model, _ = trained
    idx = np.arange(70, 76)
    as_list = _list(clouds, idx)
    ref = model.distance(as_list[0], as_list)
    assert ref.shape == (6,) and ref.dtype == np.float64 and ref[0] == pytest.approx(0, abs=1e-6)
    sub = clouds.subset(idx)
    np.testing.assert_allclose(model.distance(sub.subset([0]), sub), ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.distance(as_list[0][0], [p for p, _ in as_list]), ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.distance(pack_clouds(sub)[:1], pack_clouds(sub)), ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.distance(as_list[0], tuple(as_list)), ref, rtol=1e-5, atol=1e-6)  # a tuple
    np.testing.assert_allclose(model.distance(as_list[0], tuple(as_list[:2])), ref[:2], rtol=1e-5, atol=1e-6)
    # a point split into two copies of half its weight, in another order: the same cloud
    p, w = as_list[1]
    split = (np.concatenate([p, p[:1]])[::-1], np.concatenate([w[:1] / 2, w[1:], w[:1] / 2])[::-1])
    assert model.distance(as_list[1], split)[0] == pytest.approx(0, abs=1e-5)


def test_cdist_pdist_and_torch_inputs_agree_with_paired_distances(trained, clouds):
    model, _ = trained
    A, B = _list(clouds, range(70, 75)), _list(clouds, range(75, 78))
    D = model.cdist(A, B)
    assert D.shape == (5, 3)
    for j in range(3):
        np.testing.assert_allclose(D[:, j], model.distance(A, B[j]), rtol=1e-4, atol=1e-5)
    P = model.pdist(A)
    np.testing.assert_allclose(P[0], model.distance(A[0], A[1])[0], rtol=1e-4, atol=1e-5)
    T = model.distance(torch.from_numpy(pack_clouds(clouds.subset(range(70, 75)))), A[0])
    assert isinstance(T, torch.Tensor) and T.dtype == torch.float64
    np.testing.assert_allclose(T.numpy(), model.distance(A, A[0]), rtol=1e-5, atol=1e-6)


def test_exact_reranking_with_every_candidate_equals_brute_force(trained, clouds):
    model, _ = trained
    Q, R = clouds.subset(range(70, 74)), clouds.subset(range(0, 40))
    got = model.kneighbors(Q, R, k=3, exact_rerank=True, n_candidates=40)
    solver = CloudSolver(2)
    for q in range(4):
        exact = np.array([solver.solve(Q.cloud(q), R.cloud(r)) for r in range(40)])
        np.testing.assert_array_equal(got.indices[q], np.argsort(exact, kind="stable")[:3])
        np.testing.assert_allclose(got.distances[q], np.sort(exact)[:3], rtol=1e-12)
    assert got.n_exact == 4 * 40


def test_decoded_geometry_is_packed_clouds(trained, clouds):
    model, _ = trained
    A = _list(clouds, range(70, 74))
    bar = model.barycenter(A)
    assert bar.shape == (8, 4) and bar[:, 3].sum() == pytest.approx(1, abs=1e-5) and (bar[:, 3] >= 0).all()
    path = model.interpolate(A[0], A[1], steps=3)
    assert path.shape == (3, 8, 4)
    np.testing.assert_allclose(path[:, :, 3].sum(1), 1, atol=1e-5)
    pd = model.principal_directions(A, n_components=2, scales=(-1.0, 1.0))
    assert pd.histograms.shape == (2, 2, 8, 4)
    dec = model.decode(model.embed(A))
    assert dec.shape == (4, 8, 4)
    assert model.embed(dec).shape == (4, 8)  # decoded clouds read back as packed clouds
    with pytest.raises(InputError, match="must be one input"):
        model.interpolate(A[:2], A[1])


def test_save_load_round_trip_and_wassembed_load(trained, clouds):
    model, root = trained
    back = wassembed.load(root / "model")
    assert isinstance(back, CloudEmbedding)
    A = [(p, w) for p, w in _list(clouds, range(70, 76))]
    np.testing.assert_array_equal(back.distance(A, A[::-1]), model.distance(A, A[::-1]))
    lo = back.interval(A, A[::-1], 0.5)
    assert (lo.lower <= lo.estimate).all() and (lo.estimate <= lo.upper).all()


def test_latent_ood_score_flags_far_clouds(trained, clouds):
    model, _ = trained
    A = _list(clouds, range(70, 80))
    far = [(p * 20 + 500.0, w) for p, w in A]
    assert model.is_ood(far).all()
    assert model.is_ood(A).mean() <= 0.3
    with pytest.warns(OutOfDistributionWarning, match="Mahalanobis"):
        model.distance(far, A)
    with pytest.raises(InputError, match="no 'pca' out-of-distribution reference"):
        model.ood_score(A, score="pca")


def test_refusals_say_what_to_do(trained, clouds, small_digits, tmp_path):
    model, _ = trained
    with pytest.raises(InputError, match="wrong dimension"):
        model.distance(np.zeros((5, 2)), np.zeros((4, 2)))
    # siblings, not a subclass refusing its parent's methods: a cloud model has no histogram methods at all
    assert not hasattr(model, "histograms") and not hasattr(model, "ground_cost")
    assert isinstance(model, BaseEmbedding) and not isinstance(model, WassersteinEmbedding)
    with pytest.raises(InputError, match="point-cloud model"):
        wassembed.build_index(model, clouds, tmp_path / "ix")
    precompute(small_digits, tmp_path / "hist", pairs=20, workers=1, progress=False, lot=False)
    with pytest.raises(CacheMismatchError, match="different data"):
        wassembed.evaluate(model, tmp_path / "hist")


def test_evaluate_on_unseen_clouds(trained, clouds):
    model, root = trained
    out = wassembed.evaluate(model, root / "unseen")
    assert out["n_pairs"] == 60 and out["n_dropped"] == 0 and -1 <= out["pearson"] <= 1


def test_bench_clouds_rows(trained):
    from wassembed.bench._clouds import format_clouds_benchmark, run_clouds_benchmark
    from wassembed.exact import DistanceCache

    model, root = trained
    r = run_clouds_benchmark(root / "cache", root / "unseen", [root / "model"], lot_points=8, speed_pairs=20)
    lot, ours = r["rows"]
    tr, te = DistanceCache.open(root / "cache").read(), DistanceCache.open(root / "unseen").read()
    clouds = np.unique(np.concatenate([tr.i, tr.j, te.i, te.j]))
    assert lot["solves"] == clouds.size + 1200  # one per cloud, and the pairs of the correction
    ev = wassembed.evaluate(model, root / "unseen")
    assert ours["pearson"] == pytest.approx(ev["pearson"]) and ours["mse"] == pytest.approx(ev["mse"])
    assert ours["solves"] == 1200 + np.unique(np.concatenate([tr.i, tr.j])).size
    assert -1 <= lot["pearson"] <= 1 and lot["pairs_per_cpu_s"] > 0 and r["exact"]["pairs_per_cpu_s"] > 0
    assert "| LOT (CloudLOT, 8 reference points) |" in format_clouds_benchmark(r)


@pytest.mark.parametrize("ops", [["rot"], ["flip"], ["shift"], ["rot", "flip", "shift"]])
def test_rigid_motions_of_a_batch_leave_exact_w2sq_unchanged(clouds, ops):
    x = torch.from_numpy(pack_clouds(clouds.subset(range(3)))).double()
    solver = CloudSolver(2)

    def cloud(t, i):
        keep = t[i, :, 3] > 0
        return t[i, keep, :3].numpy(), t[i, keep, 3].numpy()

    moved = 0
    for seed in range(4):  # "flip" reflects half of the batches
        y = augment_clouds(x, ops, 2.0, np.random.default_rng(seed))
        for i, j in ((0, 1), (1, 2)):
            assert solver.solve(cloud(y, i), cloud(y, j)) == pytest.approx(solver.solve(cloud(x, i), cloud(x, j)),
                                                                            rel=1e-9)
        np.testing.assert_array_equal(y[..., 3], x[..., 3])
        moved += not torch.allclose(x, y)
    assert moved >= 1


def test_cli_serves_ragged_npz(trained, clouds, tmp_path):
    _, root = trained
    q = tmp_path / "q.npz"
    clouds.subset(range(70, 80)).save(q)
    run = lambda *a: CliRunner().invoke(main, [str(x) for x in a], catch_exceptions=False)
    r = run("embed", root / "model", q, "--out", tmp_path / "e.npy")
    assert r.exit_code == 0 and np.load(tmp_path / "e.npy").shape == (10, 8), r.output
    assert run("distance", root / "model", q, q, "--out", tmp_path / "d.npy").exit_code == 0
    assert np.allclose(np.load(tmp_path / "d.npy"), 0, atol=1e-5)
    r = run("knn", root / "model", q, q, "-k", "2", "--exact-rerank", "--n-candidates", "10")
    rows = [line.split("\t") for line in r.stdout.strip().splitlines() if line[:1].isdigit()]
    assert r.exit_code == 0 and [row[2] for row in rows if row[1] == "0"] == [str(i) for i in range(10)]
