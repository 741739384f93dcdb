"""Active selection of the next pair solves: where a trained model and the cache's LOT estimate disagree most.

Candidates are random pairs among the cache's images with a LOT target, not in the cache yet. A fraction of
the ``N`` pairs written are the candidates with the largest ``|model − LOT| / LOT`` (LOT: the cached
embeddings with a·d + b fitted on the cache's pairs, no solve), the rest random among the others.
The measured rows of docs/benchmarks.md ("Levers measured on MNIST")::

    P="wassembed precompute $WASSEMBED_BENCH_DATA --images 0:6000"
    $P --out caches/mnist-train-7k-lot --pairs 7000
    wassembed train caches/mnist-train-7k-lot --out runs/al-r1 --threads 1
    python benchmarks/select_pairs.py caches/mnist-train-7k-lot runs/al-r1 sel-7k.npy 7000 0.5
    python benchmarks/select_pairs.py caches/mnist-train-7k-lot runs/al-r1 rand-7k.npy 7000 0.0
    cp -r caches/mnist-train-7k-lot caches/mnist-train-al-sel          # and al-rand with rand-7k.npy
    wassembed precompute $WASSEMBED_BENCH_DATA --out caches/mnist-train-al-sel --pairs-file sel-7k.npy --no-lot
    wassembed train caches/mnist-train-al-sel --out runs/al-sel --threads 1
    wassembed evaluate runs/al-sel caches/mnist-test-10k --json

Usage: ``python benchmarks/select_pairs.py CACHE MODEL OUT.npy N [UNCERTAIN_FRACTION (0.5)]``. ``--tiny`` makes a
small cache and model of the bundled 8×8 digits in a temporary folder and selects 50 pairs (the smoke test).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np


def select_pairs(cache_path, model_path, out, n: int, frac: float = 0.5, candidates: int = 300_000) -> dict:
    """Write ``n`` pairs to ``out`` (``.npy`` ``(n, 2)``), ``round(frac n)`` of them the most uncertain."""
    import wassembed
    from wassembed.exact import DistanceCache, LinearOT
    from wassembed.exact._teacher import read_lot_targets

    cache, model = DistanceCache.open(cache_path), wassembed.load(model_path)
    t, pairs, size = read_lot_targets(cache), cache.read(), cache.data.n
    E = np.zeros((size, t.embedding.shape[1]))
    E[t.index] = t.embedding
    lot = LinearOT(cache.data, reference=t.reference)
    fit = np.isin(pairs.i, t.index) & np.isin(pairs.j, t.index)
    lot.fit_correction(E, pairs.i[fit], pairs.j[fit], pairs.value[fit])
    rng = np.random.default_rng(123)
    a, b = rng.choice(t.index, candidates), rng.choice(t.index, candidates)
    a, b = np.minimum(a, b), np.maximum(a, b)
    key = np.unique(a[a != b] * size + b[a != b])
    key = key[~np.isin(key, pairs.i * size + pairs.j)]  # not solved yet
    a, b = key // size, key % size
    X = cache.data.weights
    lot_estimate = lot.distance(E[a], E[b])
    score = np.abs(model.distance(X[a], X[b], warn_ood=False) - lot_estimate) / np.maximum(lot_estimate, 1e-9)
    k = int(round(frac * n))
    top = np.argsort(-score)[:k]
    pick = np.concatenate([top, rng.choice(np.setdiff1d(np.arange(a.size), top), n - k, replace=False)])
    np.save(out, np.stack([a[pick], b[pick]], 1))
    return {"candidates": int(a.size), "selected": int(pick.size), "uncertain": k}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("cache", nargs="?", help="a cache with per-image LOT targets")
    ap.add_argument("model", nargs="?", help="a model trained on it")
    ap.add_argument("out", nargs="?", help="the pairs, a .npy file for precompute --pairs-file")
    ap.add_argument("n", nargs="?", type=int, help="pairs to write")
    ap.add_argument("frac", nargs="?", type=float, default=0.5, help="fraction chosen by uncertainty [0.5]")
    ap.add_argument("--tiny", action="store_true", help="a small cache and model of the 8×8 digits (the smoke test)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as work:
        if args.tiny:
            from _tiny import digits_caches, digits_model

            args.cache = digits_caches(work)[0]
            args.model, args.out, args.n = digits_model(work, args.cache), Path(work) / "sel.npy", 50
        elif args.n is None:
            ap.error("CACHE MODEL OUT N are required (or --tiny)")
        out = select_pairs(args.cache, args.model, args.out, args.n, args.frac,
                           candidates=3_000 if args.tiny else 300_000)
    print(out)
    return out


if __name__ == "__main__":
    main()
