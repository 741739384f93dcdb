"""Which reference measure makes the best LOT teacher? Unseen images, a·d + b fitted on half their pairs.

For the first IMAGES images of the test cache's pairs, one exact LOT solve each against each reference (the
mean of the training cache's images 0–5,999, the mean blurred by a 1-pixel Gaussian, the mean's upper half
of bins, the uniform measure on the grid); pairs among them split in halves: the correction is fitted on
one, scored on the other; then the average of two references' squared distances. Printed figures are in
docs/benchmarks.md ("Levers measured on MNIST")::

    python benchmarks/lot_references.py caches/mnist-train-14k-lot caches/mnist-test-10k 1000

``--tiny`` runs on two small caches of the bundled 8×8 digits made in a temporary folder (the smoke test).
"""

from __future__ import annotations

import argparse
import tempfile
from itertools import combinations

import numpy as np


def compare_references(train_path, test_path, images: int = 1000) -> dict:
    """Metrics of each reference (and of each pair of references) on the second half of the unseen pairs."""
    from scipy.ndimage import gaussian_filter

    from wassembed.exact import DistanceCache, LinearOT
    from wassembed.metrics import regression_metrics

    train, test = DistanceCache.open(train_path), DistanceCache.open(test_path)
    tp = test.read()
    imgs = np.union1d(tp.i, tp.j)[:images]
    keep = np.isin(tp.i, imgs) & np.isin(tp.j, imgs)
    pi, pj, pv = tp.i[keep], tp.j[keep], tp.value[keep]
    half = np.arange(pi.size) % 2 == 0
    W, mean = test.data.weights, train.data.weights[:6000].mean(0)
    H, Wd = test.data.grid
    refs = {"mean": mean, "mean-blur1": gaussian_filter(mean.reshape(H, Wd), 1.0).ravel(),
            "uniform": np.ones(W.shape[1]), "mean-upper-half": np.where(mean > np.median(mean[mean > 0]), mean, 0)}
    show = lambda m: {k: round(m[k], 4) for k in ("pearson", "mse", "mean_relative_error")}
    E, out = {}, {}
    for name, r in refs.items():
        lot = LinearOT(test.data, reference=r / r.sum())
        E[name] = np.zeros((W.shape[0], lot.dim))
        E[name][imgs] = lot.transform(W[imgs])
        lot.fit_correction(E[name], pi[half], pj[half], pv[half])
        out[name] = show(regression_metrics(lot.distance(E[name][pi[~half]], E[name][pj[~half]]), pv[~half]))
    for a, b in combinations(refs, 2):
        d = (((E[a][pi] - E[a][pj]) ** 2).sum(1) + ((E[b][pi] - E[b][pj]) ** 2).sum(1)) / 2
        coef = np.linalg.lstsq(np.c_[d[half], np.ones(half.sum())], pv[half], rcond=None)[0]
        out[f"{a} + {b}"] = show(regression_metrics(coef[0] * d[~half] + coef[1], pv[~half]))
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("train_cache", nargs="?", help="the training cache (its images' mean is the default reference)")
    ap.add_argument("test_cache", nargs="?", help="a cache of pairs among unseen images")
    ap.add_argument("images", nargs="?", type=int, default=1000, help="unseen images solved [1000]")
    ap.add_argument("--tiny", action="store_true", help="small caches of the 8×8 digits (the smoke test)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as work:
        if args.tiny:
            from _tiny import digits_caches

            (args.train_cache, args.test_cache), args.images = digits_caches(work), 60
        elif not args.test_cache:
            ap.error("TRAIN_CACHE and TEST_CACHE are required (or --tiny)")
        out = compare_references(args.train_cache, args.test_cache, args.images)
    for name, metrics in out.items():
        print(name, metrics)
    return out


if __name__ == "__main__":
    main()
