"""Cluster unseen digits with a precomputed distance matrix: learned W2² vs exact W2² vs pixels.

The model's ``pdist`` gives all pairwise W2² estimates of the test images in milliseconds; the exact matrix
of the same images is computed with ``precompute(..., pairs="all")``. Each matrix goes to scikit-learn's
``AgglomerativeClustering(metric="precomputed", linkage="average")``, and the clusters are compared with
the true digit labels by the adjusted Rand index (ARI: 1 = identical partitions, 0 = chance).

Run::

    python examples/clustering.py                        # trains a model first (~1 min on 2 cores)
    python examples/clustering.py --model demo-output/model
    python examples/clustering.py --tiny                 # seconds, 60 images
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from _common import TEST_IMAGES, base_parser, get_model, image_range
from scipy.spatial.distance import pdist, squareform
from sklearn.cluster import AgglomerativeClustering
from sklearn.metrics import adjusted_rand_score

import wassembed
from wassembed.exact import precompute
from wassembed.metrics import regression_metrics


def cluster(D: np.ndarray, n_clusters: int) -> np.ndarray:
    """Average-linkage clusters of a square distance matrix ``D``."""
    return AgglomerativeClustering(n_clusters=n_clusters, metric="precomputed",
                                   linkage="average").fit_predict(D)


def main(argv=None):
    ap = base_parser(__doc__.splitlines()[0])
    ap.add_argument("--images", default=None, help=f"test images to cluster [default: {TEST_IMAGES}]")
    args = ap.parse_args(argv)
    hs = wassembed.load_dataset("digits")
    images = args.images or ("1400:1460" if args.tiny else TEST_IMAGES)
    idx = image_range(images, hs.n)
    X, y = hs.weights[idx], hs.labels[idx]
    n_clusters = len(np.unique(y))
    model = get_model(hs, args)

    # learned distances: one call, condensed (scipy pdist order)
    t0 = time.perf_counter()
    d_model = np.asarray(model.pdist(X), dtype=np.float64)
    t_model = time.perf_counter() - t0

    # exact distances of the same images, through the cache (resumable, parallel)
    t0 = time.perf_counter()
    cache = Path(args.work) / f"cache-all-pairs-{images.replace(':', '-')}"
    precompute(hs, cache, pairs="all", images=images, progress=False, lot=False)  # exact matrix, no training
    table = wassembed.DistanceCache.open(cache).read()
    t_exact = time.perf_counter() - t0
    pos = {int(g): a for a, g in enumerate(idx)}
    D_exact = np.zeros((idx.size, idx.size))
    a, b = np.array([pos[int(i)] for i in table.i]), np.array([pos[int(j)] for j in table.j])
    D_exact[a, b] = D_exact[b, a] = table.value
    d_exact = squareform(D_exact, checks=False)

    d_pixels = pdist(X, "sqeuclidean")  # baseline: squared Euclidean distance between pixel histograms

    m = regression_metrics(d_model, d_exact)
    print(f"{idx.size} unseen images ({images}), {d_exact.size:,} pairs, {n_clusters} clusters, "
          "average linkage")
    print(f"model pdist: {t_model:.3f} s; exact (precompute, all pairs): {t_exact:.1f} s; "
          f"Pearson r(model, exact) = {m['pearson']:.4f}, relative MSE = {m['relative_mse']:.4f}")
    print(f"{'distance matrix':<32} {'ARI vs labels':>13}")
    for name, d in (("learned W2² (model.pdist)", d_model), ("exact W2² (POT)", d_exact),
                    ("squared Euclidean on pixels", d_pixels)):
        labels = cluster(squareform(d), n_clusters)
        print(f"{name:<32} {adjusted_rand_score(y, labels):>13.3f}")
    agree = adjusted_rand_score(cluster(squareform(d_exact), n_clusters), cluster(squareform(d_model), n_clusters))
    print(f"ARI between the exact and the learned clusterings: {agree:.3f}")


if __name__ == "__main__":
    main()
