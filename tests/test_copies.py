"""Elastic copies with their own LOT targets: the copies, their cache files, and the distillation's use of them."""

from __future__ import annotations

import numpy as np
import pytest

from wassembed.data import HistogramSet, elastic_copies, load_dataset
from wassembed.errors import InputError
from wassembed.exact import DistanceCache, LinearOT, PairTable, precompute
from wassembed.exact._teacher import compute_lot_targets, read_lot_targets

from .conftest import random_images


def test_copies_are_integer_seeded_per_image_and_copy():
    X = random_images(6, grid=(10, 10))
    a = elastic_copies(X, 3, alpha=8.0, sigma=2.0, seed=4)
    assert a.shape == (18, 10, 10) and a.dtype == np.int64 and (a >= 0).all() and (a.sum((1, 2)) > 0).all()
    assert not np.array_equal(a[0], X[0]) and not np.array_equal(a[0], a[1])
    parts = np.concatenate([elastic_copies(X[:2], 3, alpha=8.0, sigma=2.0, seed=4),
                            elastic_copies(X[2:], 3, alpha=8.0, sigma=2.0, seed=4, ids=np.arange(2, 6))])
    np.testing.assert_array_equal(parts, a)  # in chunks (with the images' ids): the same copies
    np.testing.assert_array_equal(elastic_copies(X, 2, alpha=8.0, sigma=2.0, seed=4), a.reshape(6, 3, 10, 10)[:, :2]
                                  .reshape(12, 10, 10))  # fewer copies: the first ones
    assert not np.array_equal(elastic_copies(X, 1, alpha=8.0, sigma=2.0, seed=5), a[::3])
    with pytest.raises(InputError, match="bad images for elastic copies"):
        elastic_copies(X.reshape(6, -1), 2)
    with pytest.raises(InputError, match="bad copies"):
        elastic_copies(X, 0)


def test_copies_targets_are_the_copies_lot_embeddings_and_grow_without_recomputing(tmp_path):
    hs = load_dataset("digits", limit=50)
    c = DistanceCache.create(tmp_path / "c", hs)
    r = compute_lot_targets(c, np.arange(30), progress=False, chunk_size=16, copies=2, copy_alpha=5.0, copy_sigma=2.0)
    assert (r["computed"], r["copies_computed"]) == (90, 60)
    t = read_lot_targets(c)
    cp = t.copies
    assert len(cp) == 60 and cp.source.tolist() == np.repeat(np.arange(30), 2).tolist()
    assert cp.copy.tolist() == [0, 1] * 30
    # each copy: the elastic copy of the image's integer pixels, solved against the cache's reference
    from wassembed.exact._rational import rational_scales

    counts = np.rint(hs.weights[:30] * rational_scales(hs.weights[:30])[:, None]).reshape(30, 8, 8)
    want = elastic_copies(counts, 2, alpha=5.0, sigma=2.0, seed=0).reshape(60, -1)
    np.testing.assert_allclose(cp.weights, want / want.sum(1, keepdims=True), rtol=0, atol=1e-15)
    direct = LinearOT(hs, reference=t.reference).transform(cp.weights)
    np.testing.assert_allclose(cp.embedding, direct, rtol=1e-6, atol=1e-5)
    again = compute_lot_targets(c, np.arange(30), progress=False, chunk_size=16, copies=3, copy_alpha=5.0,
                                copy_sigma=2.0, workers=2)
    assert (again["computed"], again["copies_computed"]) == (30, 30)  # only copy number 2 is new
    grown = read_lot_targets(c).copies
    keep = grown.copy < 2
    np.testing.assert_array_equal(grown.embedding[keep], cp.embedding)


def test_copies_need_images_on_a_grid(tmp_path):
    rng = np.random.default_rng(0)
    hs = HistogramSet.from_histograms(rng.integers(1, 9, (20, 12)) / 1.0, coords=rng.normal(size=(12, 2)))
    c = DistanceCache.create(tmp_path / "c", hs)
    with pytest.raises(InputError, match="elastic copies need images on a grid.*lot_copies=0"):
        compute_lot_targets(c, np.arange(10), progress=False, copies=1)
    with pytest.raises(InputError, match="lot_copies"):
        precompute(load_dataset("digits", limit=20), tmp_path / "d", pairs=10, workers=1, progress=False,
                   lot_copies=-1)


def test_the_distillation_uses_the_copies_of_training_images_only(tmp_path):
    from wassembed.learn._distill import distill_targets

    hs = load_dataset("digits", limit=80)
    r = precompute(hs, tmp_path / "c", pairs=300, workers=1, progress=False, lot_copies=2)
    assert r.lot_copies_computed == 2 * r.lot_requested and r.lot_computed == 3 * r.lot_requested
    cache = DistanceCache.open(tmp_path / "c")
    t = read_lot_targets(cache)
    train_images = np.arange(0, 80, 2)
    pairs = cache.read()
    keep = np.isin(pairs.i, train_images) & np.isin(pairs.j, train_images)
    train = PairTable(pairs.i[keep], pairs.j[keep], pairs.value[keep])
    d = distill_targets(t, train_images, train, 10)
    assert d.n_copies == 2 * d.images.size and d.copy_targets.shape == (d.n_copies, 10)
    assert set(t.copies.source[np.isin(t.copies.source, train_images)]) == set(d.images)
    # the copies' targets are their own embeddings on the originals' axes, with the same scale
    E = t.embedding[t.rows(d.images)].astype(np.float64)
    centre = E.mean(0)
    _, _, vt = np.linalg.svd(E - centre, full_matrices=False)
    mine = t.copies.embedding[np.isin(t.copies.source, train_images)].astype(np.float64)
    want = np.sqrt(d.scale) * (mine - centre) @ vt[:10].T
    np.testing.assert_allclose(np.abs(d.copy_targets), np.abs(want), rtol=1e-4, atol=1e-4)  # axes up to sign


def test_auto_copies_where_the_data_has_few_integer_images_on_grids_of_16_pixels_or_more():
    from wassembed.exact._copies import COPIES_MAX, auto_copies, deformation

    digits = load_dataset("digits", limit=100)
    assert auto_copies(digits, 100) == 0  # 8×8: no copies
    mnist_like = HistogramSet.from_images(random_images(50, grid=(28, 28)))
    assert auto_copies(mnist_like, 8000) == 2 and auto_copies(mnist_like, 7600) == COPIES_MAX == 3
    assert auto_copies(mnist_like, 24_000) == 0 and auto_copies(mnist_like, 100) == COPIES_MAX
    # copies come once the plan holds 90 % of the images it draws from: before that, more pairs add images
    assert auto_copies(mnist_like, 44, available=50) == 0 and auto_copies(mnist_like, 45, available=50) == 3
    floats = HistogramSet.from_images(random_images(50, grid=(28, 28)) + np.pi)
    assert auto_copies(floats, 5000) == 0  # not integer pixels: a copy could not be solved exactly
    assert deformation((28, 28)) == (6.0, 4.0) and deformation((56, 56)) == (12.0, 8.0)
    assert deformation((28, 28), 3.0) == (3.0, 4.0)


def test_targets_of_images_without_pairs_teach_the_student_and_count_as_trained_on(tmp_path):
    import wassembed as we

    hs = load_dataset("digits", limit=120)
    precompute(hs, tmp_path / "c", pairs=600, images="0:80", workers=1, progress=False, lot_copies=0)
    compute_lot_targets(DistanceCache.open(tmp_path / "c"), range(120), progress=False)    # targets on 80:120 too
    model = we.train(tmp_path / "c", epochs=1, distill_epochs=1, progress=False, seed=0)
    seen = set(model.calibration["train_images"].tolist())
    assert set(range(80, 120)) <= seen  # evaluate drops pairs that touch them
    assert model.info["training"]["distillation"]["images"] >= 40 + 60  # the 40 and most pair images


def test_auto_copies_follow_the_plans_coverage_of_the_images_it_draws_from(tmp_path):
    images = random_images(40, grid=(16, 16))
    images[images < 200] = 0  # sparse images: cheap exact solves
    images[:, 0, 0] = 1
    hs = HistogramSet.from_images(images)
    few = precompute(hs, tmp_path / "few", pairs=4, images="0:30", workers=1, progress=False)
    assert few.lot_requested <= 8 and few.lot_copies_computed == 0  # 8 of 30 images at most: pairs first
    most = precompute(hs, tmp_path / "most", pairs=300, images="0:30", workers=1, progress=False)
    assert most.lot_requested == 30 and most.lot_copies_computed == 3 * 30  # all 30 of 0:30: copies
    narrow = precompute(hs, tmp_path / "narrow", pairs=300, images="0:30", workers=1, progress=False,
                        lot_images="0:10")
    assert narrow.lot_requested == 10 and narrow.lot_copies_computed == 3 * 10  # coverage within lot_images
