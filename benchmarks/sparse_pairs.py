"""A sparse-blocks plan with another number of partners than ``--sampling sparse`` (2), for ``--pairs-file``.

``sparse_pairs`` (the sampler of ``wassembed precompute --sampling sparse``) among images 0..N−1: inside random
groups of G images, each image paired with K random partners of its group, round after round, until the plan
holds PAIRS pairs; written as a ``.npy`` ``(PAIRS, 2)``. The 4-partner rows of docs/benchmarks.md ("Levers
measured on MNIST")::

    python benchmarks/sparse_pairs.py 6000 14000 64 4 sparse-14k.npy
    wassembed precompute $WASSEMBED_BENCH_DATA --out caches/mnist-train-sparse-14k --pairs-file sparse-14k.npy
    wassembed train caches/mnist-train-sparse-14k --out runs/sparse-14k --threads 1     # and --distill-epochs 0

``--tiny`` writes a plan of 100 pairs among 40 images to a temporary file (the smoke test).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np


def write_plan(n_images: int, n_pairs: int, group: int, partners: int, out) -> dict:
    """Write the plan to ``out`` (``.npy`` of ``(pairs, 2)`` image indices); its pairs and images."""
    from wassembed.exact._pairs import sparse_pairs

    i, j = sparse_pairs(np.arange(n_images), n_pairs, block_size=group, partners=partners, seed=0)
    np.save(out, np.stack([i, j], axis=1))
    return {"pairs": int(i.size), "images": int(np.unique(np.r_[i, j]).size)}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("n_images", nargs="?", type=int, help="N: images 0..N-1")
    ap.add_argument("n_pairs", nargs="?", type=int, help="PAIRS in the plan")
    ap.add_argument("group", nargs="?", type=int, help="G: images per group")
    ap.add_argument("partners", nargs="?", type=int, help="K: partners of each image per round")
    ap.add_argument("out", nargs="?", help="the plan, a .npy file")
    ap.add_argument("--tiny", action="store_true", help="100 pairs among 40 images, to a temporary file")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as work:
        if args.tiny:
            args.n_images, args.n_pairs, args.group, args.partners = 40, 100, 8, 4
            args.out = Path(work) / "plan.npy"
        elif args.out is None:
            ap.error("N PAIRS G K OUT are required (or --tiny)")
        out = write_plan(args.n_images, args.n_pairs, args.group, args.partners, args.out)
    print(f"{out['pairs']} pairs among {out['images']} images")
    return out


if __name__ == "__main__":
    main()
