"""Wasserstein barycenters, interpolation and principal directions with a learned embedding.

In the embedding, a W2 barycenter is approximated by decoding the weighted mean of the embeddings,
``ψ(Σ αᵢ φ(xᵢ))`` (``model.barycenter``); an interpolation decodes ``ψ((1−t)φ(a) + tφ(b))``
(``model.interpolate``); principal directions decode ``ψ(mean ± s·σ·v)`` along the PCA axes of the
embeddings (``model.principal_directions``).

Since a W2 barycenter ``b`` of images ``x₁…xₙ`` minimises ``(1/n) Σ W2²(b, xᵢ)``, this objective, computed
exactly with ``wassembed.ExactSolver``, tells how good a candidate is. The script prints it for the
model's barycenter and for the pixel-wise mean, per class, and writes three figures to ``--work``.

Run::

    python examples/barycenters.py --model demo-output/model
    python examples/barycenters.py --tiny
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from _common import TEST_IMAGES, TRAIN_IMAGES, base_parser, get_model, image_range

import wassembed
from wassembed.demo import plots


def barycenter_objective(solver, b: np.ndarray, X: np.ndarray) -> float:
    """Mean exact W2² from the histogram ``b`` (k,) or image (H, W) to each row of ``X`` (n, k)."""
    b = np.maximum(np.asarray(b, dtype=np.float64), 0).reshape(-1)
    W = np.vstack([b / b.sum(), X])
    n = X.shape[0]
    return float(np.mean(solver.solve_pairs(W, np.zeros(n, dtype=np.int64), np.arange(1, n + 1))))


def main(argv=None):
    ap = base_parser(__doc__.splitlines()[0])
    ap.add_argument("--per-class", type=int, default=None, help="images per class [default: 50]")
    args = ap.parse_args(argv)
    hs = wassembed.load_dataset("digits")
    model = get_model(hs, args)
    out = Path(args.work)
    H, W = hs.grid
    train = image_range(TRAIN_IMAGES, hs.n)
    n_per = args.per_class or (5 if args.tiny else 50)
    solver = wassembed.ExactSolver(hs.ground_cost(2), 2)

    # class barycenters
    classes = np.unique(hs.labels[train])
    rows = {"pixel mean": [], "ψ(mean φ)": []}
    print(f"mean exact W2² from the barycenter to the {n_per} images of each class (lower is better)")
    print(f"{'class':>5} {'pixel mean':>11} {'embedding':>10}")
    for c in classes:
        Xc = hs.weights[train[hs.labels[train] == c][:n_per]]
        pix = Xc.mean(0)
        emb = np.asarray(model.barycenter(Xc), dtype=np.float64)
        rows["pixel mean"].append(pix.reshape(H, W))
        rows["ψ(mean φ)"].append(emb.reshape(H, W))
        print(f"{c:>5} {barycenter_objective(solver, pix, Xc):>11.3f} {barycenter_objective(solver, emb, Xc):>10.3f}")
    f1 = plots.barycenter_figure([str(c) for c in classes], {k: np.stack(v) for k, v in rows.items()},
                                 out / "barycenters.png", title="Class barycenters")

    # a weighted barycenter of three unseen images, and an interpolation between two of them
    test = image_range(TEST_IMAGES, hs.n)
    a, b, c = (int(test[hs.labels[test] == d][0]) for d in (0, 1, 7))
    weighted = np.asarray(model.barycenter(hs.weights[[a, b, c]], weights=[0.5, 0.25, 0.25]))
    path = np.asarray(model.interpolate(hs.weights[a], hs.weights[c], steps=7))
    ts = np.linspace(0, 1, 7)
    f2 = plots.image_rows(
        [np.stack([*hs.weights[[a, b, c]].reshape(3, H, W), weighted]), path],
        out / "interpolation.png", row_labels=["inputs, weighted barycenter", f"path from {a} to {c}"],
        titles=[[f"a = {a}", f"b = {b}", f"c = {c}", "bary. ½ ¼ ¼"], [f"t = {t:.2g}" for t in ts]],
        title="Weighted barycenter of three unseen images, and the interpolation ψ((1−t)φ(a) + tφ(c))")

    # principal directions of one class
    X2 = hs.weights[train[hs.labels[train] == 2]]
    pd = model.principal_directions(X2, n_components=3)
    f3 = plots.principal_directions_figure(np.asarray(pd.histograms), pd.scales, out / "principal_directions.png",
                                           explained=pd.explained_variance_ratio, row_prefix="class 2, ",
                                           grid=(H, W), title="Principal directions of the embedding")
    print(f"explained variance of the first 3 directions (class 2): "
          f"{', '.join(f'{v:.2f}' for v in pd.explained_variance_ratio)}")
    print("figures:", ", ".join(str(f) for f in (f1, f2, f3)))


if __name__ == "__main__":
    main()
