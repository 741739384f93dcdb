"""A sparse-blocks plan with another number of partners than `--sampling sparse` (2), for `--pairs-file`.

`wassembed.exact.sparse_pairs` among images 0..N−1: inside random groups of G images, each image paired with
K random partners of its group, round after round, until the plan holds PAIRS pairs; written as a ``.npy``
``(PAIRS, 2)``. The 4-partner rows of docs/benchmarks.md ("Levers measured on MNIST"):

    python docs/sparse_pairs.py 6000 14000 64 4 sparse-14k.npy
    wassembed precompute $WASSEMBED_BENCH_DATA --out caches/mnist-train-sparse-14k --pairs-file sparse-14k.npy
    wassembed train caches/mnist-train-sparse-14k --out runs/sparse-14k --threads 1     # and --distill-epochs 0

usage: python docs/sparse_pairs.py N PAIRS G K OUT.npy
"""
import sys

import numpy as np

from wassembed.exact._pairs import sparse_pairs

n_img, n_pairs, group, partners = map(int, sys.argv[1:5])
i, j = sparse_pairs(np.arange(n_img), n_pairs, block_size=group, partners=partners, seed=0)
np.save(sys.argv[5], np.stack([i, j], axis=1))
print(f"{i.size} pairs among {np.unique(np.r_[i, j]).size} images")
