"""Point clouds end to end: exact W2² cache, a set encoder trained on it, fast distances, exact kNN, barycenters.

The digits bundled with scikit-learn (8×8) become weighted point clouds, one point per nonzero pixel at its
(row, column) plus a uniform jitter in [-0.5, 0.5), weighted by intensity (``wassembed.data.mnist_clouds``):
clouds of 12–40 points that no longer share a grid. The script

1. caches exact W2² (``ot.emd2`` on the points' squared distances) for random pairs among clouds 0–1399 and,
   for testing, among clouds 1400–1796 (never seen in training);
2. trains a set encoder–decoder on the first cache (``wassembed.train``: DeepSets on the centred cloud with its
   exact mean appended, Sinkhorn reconstruction) and reports its accuracy on the unseen pairs and its speed
   against the exact solver;
3. finds the 5 nearest training clouds of unseen queries with exact re-ranking, checked against brute force;
4. decodes the barycenter of each class, ``ψ(mean φ(x_i))``, and scores it with the exact barycenter objective
   ``mean_i W2²(b, x_i)`` against POT's free-support barycenter (the exact-solver answer, same number of points)
   and against the best single member; writes ``cloud_barycenters.png``.

Run::

    python examples/point_clouds.py                # ~3 minutes on 2 CPU cores
    python examples/point_clouds.py --tiny         # seconds (numbers mean little)
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import ot

import wassembed
from wassembed.data import mnist_clouds
from wassembed.exact import CloudSolver, precompute


def parse(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiny", action="store_true", help="tiny sizes: runs in seconds (numbers mean little)")
    ap.add_argument("--work", default="examples-output/clouds", help="folder for caches, model and figure")
    ap.add_argument("--epochs", type=int, default=None, help="pair epochs [default: 15; 2 with --tiny]")
    ap.add_argument("--seed", type=int, default=0)
    return ap.parse_args(argv)


def objective(solver: CloudSolver, b, members) -> float:
    """The exact barycenter objective ``mean_i W2²(b, x_i)`` of a cloud ``b = (points, weights)``."""
    return float(np.mean([solver.solve(b, m) for m in members]))


def class_barycenters(model, clouds, train, per_class: int, solver: CloudSolver):
    """Per class: its members, the model's decoded barycenter, POT's free-support barycenter, and objectives."""
    from wassembed.nn import unpack_cloud

    rows = []
    for c in np.unique(clouds.labels[train]):
        idx = train[clouds.labels[train] == c][:per_class]
        members = [clouds.cloud(int(i)) for i in idx]
        ours = unpack_cloud(model.barycenter(members))
        m = ours[0].shape[0]
        start = members[0][0][np.linspace(0, members[0][0].shape[0] - 1, m).round().astype(int)]
        pot = (ot.lp.free_support_barycenter([p for p, _ in members], [w for _, w in members], start,
                                             numItermax=20), np.full(m, 1.0 / m))
        best = min(objective(solver, x, members) for x in members)
        rows.append((int(c), members, ours, pot, objective(solver, ours, members), objective(solver, pot, members),
                     best))
    return rows


def figure(rows, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, len(rows), figsize=(1.3 * len(rows), 4.2), squeeze=False)
    for col, (c, members, ours, pot, _, _, _) in enumerate(rows):
        for row, (pts, w) in enumerate((members[0], ours, pot)):
            ax = axes[row, col]
            ax.scatter(pts[:, 1], -pts[:, 0], s=400 * w, c="k", alpha=0.7, linewidths=0)
            ax.set_xlim(-1, 8), ax.set_ylim(-8, 1), ax.set_xticks([]), ax.set_yticks([])
        axes[0, col].set_title(str(c), fontsize=9)
    for row, label in enumerate(("a member", "ψ(mean φ)", "POT free\nsupport")):
        axes[row, 0].set_ylabel(label, fontsize=8)
    fig.suptitle("Class barycenters of digits as weighted point clouds (marker area ∝ weight)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv=None):
    args = parse(argv)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    digits = wassembed.load_dataset("digits")
    clouds = mnist_clouds(digits.images(), seed=args.seed, labels=digits.labels)
    print(f"{clouds.n} clouds in d = {clouds.d}, {clouds.sizes.min()}–{clouds.sizes.max()} points")
    n_train, n_test = (300, 100) if args.tiny else (8000, 1500)
    train_range, test_range = ("0:200", "1400:1500") if args.tiny else ("0:1400", "1400:1797")
    t = time.perf_counter()
    precompute(clouds, work / "train.cache", pairs=n_train, images=train_range, seed=args.seed, progress=False)
    precompute(clouds, work / "test.cache", pairs=n_test, images=test_range, seed=args.seed + 1, progress=False)
    exact_s = time.perf_counter() - t
    print(f"exact W2² of {n_train + n_test:,} pairs: {exact_s:.1f} s ({(n_train + n_test) / exact_s:,.0f} pairs/s)")

    model = wassembed.train(work / "train.cache", epochs=args.epochs or (2 if args.tiny else 15), threads=1,
                            seed=args.seed, progress=False)
    model.save(work / "model")
    ev = wassembed.evaluate(model, work / "test.cache")
    print(f"unseen pairs: Pearson r {ev['pearson']:.4f}, MSE {ev['mse']:.4f} pixel⁴, "
          f"mean relative error {ev['mean_relative_error']:.3f} ({ev['n_pairs']} pairs)")

    solver = CloudSolver(2)
    test, train = (np.arange(*map(int, r.split(":"))) for r in (test_range, train_range))
    rng = np.random.default_rng(args.seed)
    ia, ib = rng.choice(test, 1000), rng.choice(test, 1000)
    A, B = clouds.subset(ia), clouds.subset(ib)
    model.distance(A.subset(range(10)), B.subset(range(10)), warn_ood=False)  # warm-up
    t = time.perf_counter()
    est = model.distance(A, B, warn_ood=False)
    fast = time.perf_counter() - t
    t = time.perf_counter()
    exact = np.array([solver.solve(A.cloud(i), B.cloud(i)) for i in range(A.n)])
    slow = time.perf_counter() - t
    print(f"{A.n:,} new pairs: model {A.n / fast:,.0f} pairs/s, exact {A.n / slow:,.0f} pairs/s "
          f"(mean abs error {np.abs(est - exact).mean():.3f} pixel²)")
    t = time.perf_counter()
    D = model.cdist(clouds.subset(test), clouds.subset(train))
    print(f"all {D.size:,} distances unseen × training clouds: {time.perf_counter() - t:.2f} s "
          f"(exact: ~{D.size * slow / A.n:,.0f} s)")

    R, Q = clouds.subset(train), clouds.subset(test[:5])
    knn = model.kneighbors(Q, R, k=5, exact_rerank=True, n_candidates=50)
    brute = np.array([[solver.solve(Q.cloud(q), R.cloud(r)) for r in range(R.n)] for q in range(Q.n)])
    same = sum(set(knn.indices[q]) == set(np.argsort(brute[q], kind="stable")[:5]) for q in range(Q.n))
    print(f"5 nearest training clouds of 5 unseen queries: {knn.n_exact} exact solves instead of {brute.size}; "
          f"{same}/5 queries equal brute force")

    rows = class_barycenters(model, clouds, train, 5 if args.tiny else 30, solver)
    print("mean exact W2² from each barycenter to its class members (lower is better)")
    print(f"{'class':>5} {'ψ(mean φ)':>10} {'POT free-support':>17} {'best member':>12}")
    for c, _, _, _, ours, pot, best in rows:
        print(f"{c:>5} {ours:>10.3f} {pot:>17.3f} {best:>12.3f}")
    print(f"wrote {figure(rows, work / 'cloud_barycenters.png')}")


if __name__ == "__main__":
    main()
