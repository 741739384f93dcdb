"""Error bars calibrated on pairs of two unseen images, the out-of-distribution check's false alarms, and the
decoder phase of training.

- The split holds out the *last* images of the data to calibrate, and calibrates on pairs of two of them (the
  cache's and pairs solved exactly for the run), as test pairs of two images of a later range are drawn.
- On scikit-learn's digits, whose later images come from other writers, the intervals' coverage on pairs of
  two test images (1400:1797) is near every level; the earlier calibration (pairs mostly joining a held-out
  image and a training image, at random in the training range) covered 83 % at 90 %.
- On 16×16 blurred blobs the out-of-distribution flag's false alarms on new images of the same generator stay
  within 1.5× of ``1 − level`` (they were 19 % at level 0.9 with the held-out images alone as reference).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import wassembed
from wassembed.data import HistogramSet
from wassembed.exact import ExactSolver, PairTable, precompute
from wassembed.learn import TrainSettings
from wassembed.learn._calibration import cross_fitted
from wassembed.learn._split import calibration_pairs, split_images, split_pairs
from wassembed.serve._ood import ood_threshold

#: one torch thread (conftest): on a shared 2-core machine, oversubscribed threads are many times slower
pytestmark = pytest.mark.usefixtures("one_torch_thread")

LEVELS = (0.5, 0.7, 0.8, 0.9, 0.95, 0.99)


def blurred_blobs(n: int, size: int = 16, seed: int = 0) -> np.ndarray:
    """``n`` images ``(size, size)``: one to three Gaussian blobs of random place, width and weight, blurred, with
    pixels below 1e-3 of an image's peak set to zero."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    r, c = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    count = rng.integers(1, 4, n)
    img = np.zeros((n, size, size))
    for t in range(3):
        cy, cx = rng.uniform(3, size - 4, (2, n))[..., None, None]
        s = rng.uniform(0.7, 1.8, n)[:, None, None]
        weight = (rng.uniform(0.5, 1.0, n) * (t < count))[:, None, None]
        img += weight * np.exp(-((r - cy) ** 2 + (c - cx) ** 2) / (2 * s ** 2))
    img = gaussian_filter(img, (0, 0.7, 0.7))
    img[img < 1e-3 * img.max(axis=(1, 2), keepdims=True)] = 0
    return img


def test_split_holds_out_the_last_images_to_calibrate():
    used = np.arange(10, 310)
    sel, cal = split_images(used, 0.15, seed=3)
    assert cal.tolist() == list(range(280, 310))  # round(2/3 of 45) = 30: the last 30 images
    assert sel.size == 15 and np.isin(sel, used).all() and (sel < 280).all()
    again, _ = split_images(used, 0.15, seed=3)
    other, _ = split_images(used, 0.15, seed=4)
    assert np.array_equal(sel, again) and not np.array_equal(sel, other)  # seeded draw of the selection images


def test_calibration_pairs_join_two_calibration_images_and_are_exact(digits):
    images = np.arange(1380, 1400)
    cached = PairTable(np.array([3, 1380, 1385]), np.array([1381, 1390, 1399]), np.array([9.0, 0.5, 0.25]))
    cal, solved = calibration_pairs(cached, images, 60, digits, 2, seed=0)
    assert len(cal) == 60 and solved == 58  # the cache's two pairs among the images, then 58 new ones
    assert np.isin(cal.i, images).all() and np.isin(cal.j, images).all() and (cal.i < cal.j).all()
    assert len(np.unique(cal.i * 2000 + cal.j)) == 60
    keep = ~(((cal.i == 1380) & (cal.j == 1390)) | ((cal.i == 1385) & (cal.j == 1399)))
    exact = ExactSolver(digits.ground_cost(2)).solve_pairs(digits.weights, cal.i[keep], cal.j[keep])
    np.testing.assert_allclose(cal.value[keep], exact, rtol=1e-12)
    assert cal.value[~keep].tolist() == [0.5, 0.25]  # cached values are kept as they are
    every, solved = calibration_pairs(cached, images, 10 ** 6, digits, 2, seed=0)
    assert len(every) == 190 and solved == 188  # at most every pair of the 20 images
    none, solved = calibration_pairs(cached, images, 0, digits, 2, seed=0)
    assert len(none) == 2 and solved == 0  # calibration_pairs=0: the cache's only


def test_split_gives_each_pair_one_role(digits, tmp_path):
    precompute(digits, tmp_path / "c", pairs=3000, images="0:600", seed=0, workers=1, progress=False, lot=False)
    from wassembed.exact import DistanceCache

    pairs = split_pairs(DistanceCache.open(tmp_path / "c"), TrainSettings(calibration_pairs=500), seed=0)
    cal_images = pairs.calibration_images
    c, h = np.zeros(1797, bool), np.zeros(1797, bool)
    c[cal_images], h[pairs.val_images] = True, True
    assert cal_images.tolist() == list(pairs.all_images[-40:])  # round(2/3 of 60 held-out images)
    assert not (h[pairs.train.i] | h[pairs.train.j]).any()  # training pairs: no held-out image
    assert (h[pairs.val.i] | h[pairs.val.j]).all() and not (c[pairs.val.i] | c[pairs.val.j]).any()
    assert (c[pairs.calibration.i] & c[pairs.calibration.j]).all() and len(pairs.calibration) == 500
    touch = c[pairs.all.i] | c[pairs.all.j]
    both = c[pairs.all.i] & c[pairs.all.j]
    counts = pairs.counts()
    assert counts["dropped"] == int((touch & ~both).sum()) == pairs.dropped  # a calibration image and another
    assert counts["calibration_solved"] == 500 - int(both.sum())
    assert counts["train"] + counts["validation"] + counts["dropped"] + int(both.sum()) == 3000


@pytest.fixture(scope="module")
def digit_caches(digits, tmp_path_factory):
    d = tmp_path_factory.mktemp("coverage")
    precompute(digits, d / "train", pairs=20000, images="0:1400", sampling="blocks", block_size=64, seed=0,
               workers=1, progress=False, lot=False)
    precompute(digits, d / "test", pairs=3000, images="1400:1797", seed=1, workers=1, progress=False, lot=False)
    return d


def test_coverage_on_pairs_of_two_unseen_digits(digits, digit_caches):
    """Measured with this setup over training seeds 0-3: within 4 points at levels 0.8 to 0.99 (seed 0 within
    1.6 at every level); the calibration of before (pairs mostly joining a held-out and a training image, at
    random in 0:1400) covered 72.8 / 83.3 / 89.2 / 97.4 % at 0.8 / 0.9 / 0.95 / 0.99 with seed 0."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", wassembed.learn.SmallDataWarning)
        model = wassembed.train(digit_caches / "train", model="mlp", epochs=15, val_fraction=0.2, progress=False,
                                seed=0, threads=1)
    tr = model.info["training"]
    assert tr["calibration_source"].startswith("pairs of two held-out calibration images")
    used = np.unique(np.r_[wassembed.DistanceCache.open(digit_caches / "train").read().i,
                           wassembed.DistanceCache.open(digit_caches / "train").read().j]).size  # ~640 in blocks
    assert tr["split"]["calibration_images"] == round(2 / 3 * round(0.2 * used)) and tr["calibration_pairs"] == 2000
    test = wassembed.DistanceCache.open(digit_caches / "test").read()
    W = digits.weights
    for level in LEVELS:
        est = model.interval(W[test.i], W[test.j], level, warn_ood=False)
        coverage = float(np.mean((test.value >= est.lower) & (test.value <= est.upper)))
        assert coverage >= level - 0.06, (level, coverage)
        if level >= 0.8:
            assert abs(coverage - level) <= 0.04, (level, coverage)


def test_false_alarms_on_blurred_blobs(tmp_path):
    """New images of the generator a model was trained on are flagged at about 1 − level (within 1.5×, and not
    never); uniform noise always. Measured over four generator seeds: 8.9-10.6 % at 0.9, 3.4-6.2 % at 0.95,
    0.2-1.1 % at 0.99; with the held-out images alone as reference (130 of them): 18.8 / 10.5 / 3.7 %."""
    blobs = HistogramSet.from_images(blurred_blobs(4000, seed=0), name="blobs")
    precompute(blobs, tmp_path / "c", pairs=1000, images="0:1000", seed=0, workers=1, progress=False, lot=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", wassembed.learn.SmallDataWarning)
        model = wassembed.train(tmp_path / "c", model="mlp", epochs=1, calibration_pairs=100, progress=False,
                                seed=0, threads=1)
    assert model.calibration["pca_scores"].size > 800  # the held-out images and the cross-fitted training images
    new = blobs.weights[1000:]
    for level in (0.9, 0.95, 0.99):
        rate = float(np.mean(model.is_ood(new, level=level)))
        assert rate <= 1.5 * (1 - level), (level, rate)
        if level < 0.99:
            assert rate >= (1 - level) / 2, (level, rate)
    assert model.is_ood(np.random.default_rng(1).random((50, 16, 16))).all()


def test_ood_threshold_is_the_conformal_rank():
    scores = np.arange(1.0, 1001.0)
    assert ood_threshold({"train_recon": scores}, 0.99) == 991.0  # ceil(1001 * 0.99) = 991st smallest
    assert ood_threshold({"train_recon": scores}, 0.9) == 901.0
    assert ood_threshold({"train_recon": scores[:50]}, 0.99) == 50.0  # too few for the level: the largest


def test_cross_fitted_scores_come_from_references_that_never_saw_them():
    x = np.arange(100.0)
    seen = []

    def fit(rows):
        seen.append(set(rows.tolist()))
        return x[rows].mean()

    out = cross_fitted(fit, lambda rows, m: x[rows] - m, 100, folds=4)
    assert len(seen) == 4 and all(len(s) == 75 for s in seen)
    assert out[:25].tolist() == (x[:25] - x[25:].mean()).tolist()  # contiguous folds: 0-24 against 25-99


def test_decoder_phase_changes_the_decoder_only(digits, tmp_path):
    precompute(digits, tmp_path / "c", pairs=2000, images="0:300", seed=0, workers=1, progress=False, lot=False)
    kw = dict(model="mlp", epochs=2, progress=False, seed=0, threads=1, calibration_pairs=300)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", wassembed.learn.SmallDataWarning)
        plain = wassembed.train(tmp_path / "c", **kw)
        fitted = wassembed.train(tmp_path / "c", decoder_epochs=30, **kw)
    X = digits.weights[1000:1100]
    np.testing.assert_array_equal(plain.embed(X), fitted.embed(X))  # the encoder is frozen: same distances
    phase = fitted.info["training"]["decoder_phase"]
    assert plain.info["training"]["decoder_phase"] is None and phase["epochs"] == 30
    assert phase["final_loss"] < 0.7 * phase["first_loss"]
    kl = lambda m: float(np.mean(m.ood_score(X, score="reconstruction")))  # KL of unseen images' reconstructions
    assert kl(fitted) < 0.8 * kl(plain)
