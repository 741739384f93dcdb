"""Active selection of the next pair solves: where a trained model and the cache's LOT estimate disagree most.

Candidates are random pairs among the cache's images with a LOT target, not in the cache yet. A fraction of
the ``N`` pairs written are the candidates with the largest ``|model − LOT| / LOT`` (LOT: the cached
embeddings with a·d + b fitted on the cache's pairs, no solve), the rest random among the others.
The measured rows of docs/benchmarks.md ("Levers measured on MNIST"):

    P="wassembed precompute $WASSEMBED_BENCH_DATA --images 0:6000"
    $P --out caches/mnist-train-7k-lot --pairs 7000
    wassembed train caches/mnist-train-7k-lot --out runs/al-r1 --threads 1
    python docs/select_pairs.py caches/mnist-train-7k-lot runs/al-r1 sel-7k.npy 7000 0.5
    python docs/select_pairs.py caches/mnist-train-7k-lot runs/al-r1 rand-7k.npy 7000 0.0
    cp -r caches/mnist-train-7k-lot caches/mnist-train-al-sel          # and al-rand with rand-7k.npy
    wassembed precompute $WASSEMBED_BENCH_DATA --out caches/mnist-train-al-sel --pairs-file sel-7k.npy --no-lot
    wassembed train caches/mnist-train-al-sel --out runs/al-sel --threads 1
    wassembed evaluate runs/al-sel caches/mnist-test-10k --json

usage: python docs/select_pairs.py CACHE MODEL OUT.npy N [UNCERTAIN_FRACTION (0.5)]
"""
import sys

import numpy as np

import wassembed
from wassembed.exact import DistanceCache, LinearOT
from wassembed.exact._teacher import read_lot_targets

cache, model = DistanceCache.open(sys.argv[1]), wassembed.load(sys.argv[2])
out, n, frac = sys.argv[3], int(sys.argv[4]), float(sys.argv[5]) if len(sys.argv) > 5 else 0.5
t, pairs, size = read_lot_targets(cache), cache.read(), cache.data.n
E = np.zeros((size, t.embedding.shape[1]))
E[t.index] = t.embedding
lot = LinearOT(cache.data, reference=t.reference)
fit = np.isin(pairs.i, t.index) & np.isin(pairs.j, t.index)
lot.fit_correction(E, pairs.i[fit], pairs.j[fit], pairs.value[fit])
rng = np.random.default_rng(123)
a, b = rng.choice(t.index, 300_000), rng.choice(t.index, 300_000)
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
print({"candidates": int(a.size), "selected": int(pick.size), "uncertain": k})
