"""Writes the models and the expected served values that tests/test_served_values.py compares against.

Run once, before an interface change, from the repository root:

    python tests/data/served/make_reference.py

It trains two small deterministic models (one thread, CPU): a grid model on the first 600 images of the
shared MNIST file (``../shared/data/mnist``) and a point-cloud model on synthetic 3-D shapes, saves them here,
and records what they serve on fixed inputs (``expected-mnist.npz``, ``expected-clouds.npz``). The test then
loads the saved models with the current code and requires the same values bit for bit.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))
MNIST = HERE.parents[3] / "shared" / "data" / "mnist" / "mnist-8k-images-idx3-ubyte.gz"


def served(model, X, Y, R, Q, clouds: bool) -> dict:
    """Every served value the test freezes, as numpy arrays."""
    out = {"embed": model.embed(X), "distance": model.distance(X, Y), "cdist": model.cdist(X, R),
           "pdist": model.pdist(X)}
    out["knn_values"], out["knn_indices"] = model.kneighbors(Q, R, k=3)
    out["rerank_values"], out["rerank_indices"] = model.kneighbors(Q, R, k=3, exact_rerank=True, n_candidates=6)
    iv = model.interval(X, Y, 0.9)
    out["interval_estimate"], out["interval_lower"], out["interval_upper"] = iv.estimate, iv.lower, iv.upper
    out["ood_score"] = model.ood_score(X)
    out["barycenter"] = model.barycenter(X.subset(range(5)) if clouds else X[:5])
    if not clouds:
        out["decode"] = model.decode(model.embed(X[:4]))
        out["interpolate"] = model.interpolate(X[0], X[1], steps=4)
    return {k: np.asarray(v) for k, v in out.items()}


def main() -> None:
    import torch

    import wassembed as we
    from wassembed.data import make_shapes
    from wassembed.nn import ModelConfig, suggest_coord_scale

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        hs = we.load_dataset(str(MNIST), limit=700)
        we.precompute(hs, f"{tmp}/m", pairs=3000, images="0:600", workers=1, progress=False)
        cfg = ModelConfig.preset("fast", grid=(28, 28), channels=(8, 16, 16), hidden=(32,), embed_dim=8)
        model = we.train(f"{tmp}/m", model=cfg, epochs=3, distill_epochs=3, seed=0, progress=False, device="cpu")
        model.save(HERE / "mnist-model")
        W = hs.weights
        np.savez(HERE / "expected-mnist.npz",
                 **served(model, W[600:620], W[620:640], W[640:700], W[600:604], clouds=False))
        shapes = make_shapes(160, seed=0, min_points=12, max_points=30)
        we.precompute(shapes, f"{tmp}/s", pairs=1500, images="0:120", workers=1, progress=False)
        ccfg = ModelConfig.preset("set", point_dim=3, max_points=int(shapes.sizes.max()), set_width=16,
                                  hidden=(32,), embed_dim=8, decoder_points=16, coord_scale=suggest_coord_scale(shapes))
        cm = we.train(f"{tmp}/s", model=ccfg, epochs=2, distill_epochs=2, seed=0, progress=False, device="cpu",
                      val_fraction=0.2)
        cm.save(HERE / "clouds-model")
        X, Y, R = shapes.subset(range(120, 130)), shapes.subset(range(130, 140)), shapes.subset(range(140, 160))
        np.savez(HERE / "expected-clouds.npz", **served(cm, X, Y, R, shapes.subset(range(120, 123)), clouds=True))


if __name__ == "__main__":
    main()
