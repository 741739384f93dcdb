"""LOT at the solves of a cache: its cached per-image embeddings, a·d + b fitted on its pairs, scored on test pairs.

The LOT rows of docs/benchmarks.md ("Accuracy per exact solve")::

    python benchmarks/lot_row.py caches/mnist-train-14k-lot caches/mnist-test-10k

The training cache holds per-image LOT targets (``wassembed precompute`` makes them by default); each unseen
image of the test cache costs one exact LOT solve. ``--tiny`` makes two small caches of the bundled 8×8 digits
in a temporary folder and runs on them (the smoke test).
"""

from __future__ import annotations

import argparse
import json
import tempfile

import numpy as np


def lot_row(train_path, test_path) -> dict:
    """Metrics of LOT (cached embeddings, a·d + b fitted on the training pairs) on the test cache's pairs."""
    from wassembed.exact import DistanceCache, LinearOT
    from wassembed.exact._teacher import read_lot_targets
    from wassembed.metrics import regression_metrics

    train, test = DistanceCache.open(train_path), DistanceCache.open(test_path)
    t, pairs, tp = read_lot_targets(train), train.read(), test.read()
    lot = LinearOT(train.data, reference=t.reference)            # the cache's reference: the mean of its images
    E = np.zeros((train.data.n, t.embedding.shape[1]))
    E[t.index] = t.embedding                                      # cached: one exact solve per training image
    fit = np.isin(pairs.i, t.index) & np.isin(pairs.j, t.index)  # training pairs whose images have an embedding
    lot.fit_correction(E, pairs.i[fit], pairs.j[fit], pairs.value[fit])
    new = np.union1d(tp.i, tp.j)
    F = np.zeros((test.data.n, E.shape[1]))
    F[new] = lot.transform(test.data.weights[new])                # one exact solve per unseen image
    return ({"images": len(t), "fit_pairs": int(fit.sum()), "correction": lot.correction_}
            | regression_metrics(lot.distance(F[tp.i], F[tp.j]), tp.value))


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("train_cache", nargs="?", help="a cache with per-image LOT targets")
    ap.add_argument("test_cache", nargs="?", help="a cache of pairs among unseen images")
    ap.add_argument("--tiny", action="store_true", help="small caches of the 8×8 digits (the smoke test)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as work:
        if args.tiny:
            from _tiny import digits_caches

            args.train_cache, args.test_cache = digits_caches(work)
        elif not args.test_cache:
            ap.error("TRAIN_CACHE and TEST_CACHE are required (or --tiny)")
        row = lot_row(args.train_cache, args.test_cache)
    print(json.dumps(row, default=float))
    return row


if __name__ == "__main__":
    main()
