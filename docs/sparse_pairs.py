"""Sparse blocks: a pair plan whose pairs share images like blocks, but each image has only a few partners.

Rounds of a random partition of images 0..N−1 into groups of G; inside its group each image is paired with
K partners drawn at random (duplicates skipped), until the plan holds PAIRS pairs. The file is a ``.npy``
``(PAIRS, 2)`` for ``wassembed precompute --pairs-file``. The rows of docs/benchmarks.md ("Levers measured
on MNIST"):

    python docs/sparse_pairs.py 6000 14000 64 2 sparse2-14k.npy
    wassembed precompute $WASSEMBED_BENCH_DATA --out caches/mnist-train-sparse2-14k --pairs-file sparse2-14k.npy
    wassembed train caches/mnist-train-sparse2-14k --out runs/sparse2-14k --threads 1
    wassembed evaluate runs/sparse2-14k caches/mnist-test-10k --json

(and K = 4 with ``sparse-14k``, with and without ``--distill-epochs 0``).

usage: python docs/sparse_pairs.py N PAIRS G K OUT.npy
"""
import sys

import numpy as np

n_img, n_pairs, G, K, out = *map(int, sys.argv[1:5]), sys.argv[5]
rng = np.random.default_rng(0)
seen, pairs, rounds = set(), [], 0
while len(pairs) < n_pairs:
    perm = rng.permutation(n_img)
    for g in range(0, n_img - G + 1, G):
        group = perm[g:g + G]
        for a in group:
            for b in rng.choice(group[group != a], K, replace=False):
                key = (int(min(a, b)), int(max(a, b)))
                if key not in seen:
                    seen.add(key)
                    pairs.append(key)
    rounds += 1
np.save(out, np.array(pairs[:n_pairs], dtype=np.int64))
print(f"{min(len(pairs), n_pairs)} pairs, {rounds} rounds")
