"""Nearest-neighbour retrieval of unseen digits: embedding search, then exact re-ranking.

For each query (a test image the model never saw), find its k nearest training images under W2²:

1. ``model.kneighbors(Q, R, k)``: embedding estimates only (one matrix product per tile);
2. ``model.kneighbors(Q, R, k, exact_rerank=True)``: candidates in order of estimate are re-scored with the
   exact solver until conformal lower bounds rule out every other reference (adaptive, ``level=0.99``);
3. ``n_candidates=m``: exactly the ``m`` best-estimated references are re-scored (fixed cost);
4. brute force: every query-reference pair solved exactly, through ``precompute(..., against=...)``.

It prints recall@k against brute force, the exact solves each method spent, their times, and the k-NN
classification accuracy of the queries.

Run::

    python examples/knn_retrieval.py --model demo-output/model
    python examples/knn_retrieval.py --tiny
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from _common import TEST_IMAGES, TRAIN_IMAGES, base_parser, get_model, image_range

import wassembed
from wassembed.exact import precompute


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean fraction of the true k nearest found, over queries."""
    return float(np.mean([len(set(f.tolist()) & set(t.tolist())) / truth.shape[1] for f, t in zip(found, truth)]))


def main(argv=None):
    ap = base_parser(__doc__.splitlines()[0])
    ap.add_argument("--queries", type=int, default=None, help="number of test images queried [default: 30]")
    ap.add_argument("-k", type=int, default=5)
    args = ap.parse_args(argv)
    hs = wassembed.load_dataset("digits")
    model = get_model(hs, args)
    nq = args.queries or (5 if args.tiny else 30)
    rng = np.random.default_rng(args.seed)
    q = np.sort(rng.choice(image_range(TEST_IMAGES, hs.n), nq, replace=False))
    ref = image_range(TRAIN_IMAGES, hs.n)
    if args.tiny:
        ref = ref[:300]
    Q, R, k = hs.weights[q], hs.weights[ref], args.k

    # brute force through the cache: every (query, reference) pair, exact
    t0 = time.perf_counter()
    cache = Path(args.work) / f"cache-knn-{nq}-{ref.size}-{args.seed}"
    precompute(hs, cache, images=q, against=ref, progress=False, lot=False)  # exact values only: no training
    t = wassembed.DistanceCache.open(cache).read()
    t_brute = time.perf_counter() - t0
    qpos = {int(g): a for a, g in enumerate(q)}
    rpos = {int(g): a for a, g in enumerate(ref)}
    D = np.full((nq, ref.size), np.nan)
    for i, j, v in zip(t.i.tolist(), t.j.tolist(), t.value.tolist()):  # pairs are stored with i < j
        if i in qpos and j in rpos:
            D[qpos[i], rpos[j]] = v
        else:
            D[qpos[j], rpos[i]] = v
    truth = np.argsort(D, axis=1, kind="stable")[:, :k]

    rows = []
    t0 = time.perf_counter()
    _, idx = model.kneighbors(Q, R, k=k)  # (distances, indices), as scikit-learn
    rows.append(("embedding only", recall(np.asarray(idx), truth), 0, time.perf_counter() - t0))
    t0 = time.perf_counter()
    res = model.kneighbors(Q, R, k=k, exact_rerank=True)
    rows.append(("exact re-rank, adaptive (level 0.99)", recall(np.asarray(res.indices), truth), res.n_exact,
                 time.perf_counter() - t0))
    t0 = time.perf_counter()
    res20 = model.kneighbors(Q, R, k=k, exact_rerank=True, n_candidates=4 * k)
    rows.append((f"exact re-rank, {4 * k} candidates", recall(np.asarray(res20.indices), truth), res20.n_exact,
                 time.perf_counter() - t0))
    rows.append(("brute force (precompute, exact)", 1.0, int(D.size), t_brute))

    print(f"{nq} unseen queries against {ref.size} training images, k = {k}")
    print(f"{'method':<38} {'recall@k':>8} {'exact solves':>13} {'seconds':>8}")
    for name, rc, n, s in rows:
        print(f"{name:<38} {rc:>8.3f} {n:>13,} {s:>8.3f}")
    labels = hs.labels
    vote = lambda ii: np.array([np.bincount(labels[ref][r]).argmax() for r in ii])
    print(f"k-NN classification accuracy of the queries: embedding {np.mean(vote(np.asarray(idx)) == labels[q]):.3f}, "
          f"re-ranked {np.mean(vote(np.asarray(res.indices)) == labels[q]):.3f}, "
          f"exact {np.mean(vote(truth) == labels[q]):.3f}")


if __name__ == "__main__":
    main()
