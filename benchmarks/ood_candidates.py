"""Out-of-distribution candidates measured against the served scores: latent-space scores and other ``q``.

Latent candidates score embeddings ``Z (n, d)`` by their distance to the training images' embeddings: the
Mahalanobis distance under a Ledoit-Wolf shrunk covariance, or the squared latent distance to the ``j``-th
nearest training embedding (all of them, or a seeded subsample). Input-space candidates are the served
``"pca"`` score with other numbers ``q`` of principal directions. All are fitted on the training images and
calibrated, like the served scores, on the held-out images of the training cache's range (the images of
``--trained-on`` outside the model's training images). The table gives, for the served scores and each
candidate, the fraction flagged at ``--level`` on unseen images (false alarms), foreign images, the unseen
images inverted and uniform noise, the AUROC of unseen against foreign images, and the CPU microseconds per
image (``wassembed bench ood`` measures the served scores alone, with their cost in ``distance``). The
candidate rows of docs/benchmarks-serving.md ("Out-of-distribution scores")::

    python benchmarks/ood_candidates.py --data $WASSEMBED_BENCH_DATA --model runs/ood-mnist-e10 \
        --ood /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz --unseen 6000:8000 --trained-on 0:6000

``--tiny`` trains a small model on the bundled 8×8 digits and compares on random foreign images (the smoke
test).
"""

from __future__ import annotations

import argparse
import json
import tempfile

import numpy as np

#: (name, kind, parameter, reference subsample size or None for all): ``j``-th neighbour, or ``q``
CANDIDATES = (("latent Mahalanobis (Ledoit-Wolf)", "mahalanobis", 0, None),
              ("latent 1-NN, 1000 training embeddings", "knn", 1, 1000),
              ("latent 1-NN, all training embeddings", "knn", 1, None),
              ("latent 5-NN, all training embeddings", "knn", 5, None),
              ("input 'pca', q = 50", "pca", 50, None),
              ("input 'pca', q = 75", "pca", 75, None),
              ("input 'pca', q = 150", "pca", 150, None))


def _mahalanobis(Z_train: np.ndarray):
    """Squared Mahalanobis distance to the training embeddings' mean (Ledoit-Wolf covariance)."""
    from sklearn.covariance import ledoit_wolf

    mean = Z_train.mean(0)
    L = np.linalg.cholesky(np.linalg.inv(ledoit_wolf(Z_train)[0]))
    return lambda Z, W: (((Z - mean) @ L) ** 2).sum(1)


def _knn(Z_train: np.ndarray, j: int, m: int | None, seed: int):
    """Squared latent distance to the ``j``-th nearest of ``m`` training embeddings (all when None)."""
    import torch

    ref = Z_train if m is None or m >= len(Z_train) else \
        Z_train[np.random.default_rng(seed).choice(len(Z_train), m, replace=False)]
    R = torch.from_numpy(ref).float()

    def score(Z, W):
        D = torch.cdist(torch.from_numpy(Z).float(), R).square()
        return D.topk(j, dim=1, largest=False).values[:, -1].double().numpy()
    return score


def _pca(W_train: np.ndarray, q: int):
    """The served ``"pca"`` score with ``q`` principal directions."""
    import torch

    from wassembed.serve._ood import pca_reference, pca_scores

    ref = pca_reference(W_train, q)
    mean, basis = (torch.as_tensor(np.ascontiguousarray(ref[k]), dtype=torch.float32)
                   for k in ("pca_mean", "pca_basis"))
    return lambda Z, W: pca_scores(torch.from_numpy(W).float(), mean, basis).numpy()


def candidates(Z_train: np.ndarray, W_train: np.ndarray, *, seed: int = 0) -> list:
    """``[(name, score)]``: each ``score(Z (n, d), W (n, k)) -> (n,)`` float64 (larger = more unusual) of
    embeddings ``Z`` and histograms ``W`` of the same inputs, fitted on the training images' ``Z_train`` and
    ``W_train``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> Z, W = rng.normal(size=(60, 3)), rng.dirichlet(np.ones(4), 60)
    >>> [(name, fn(Z[:2], W[:2]).shape) for name, fn in candidates(Z, W)][0]
    ('latent Mahalanobis (Ledoit-Wolf)', (2,))
    """
    Z_train = np.asarray(Z_train, dtype=np.float64)
    build = {"mahalanobis": lambda j, m: _mahalanobis(Z_train), "knn": lambda j, m: _knn(Z_train, j, m, seed),
             "pca": lambda q, m: _pca(W_train, q)}
    return [(name, build[kind](par, m)) for name, kind, par, m in CANDIDATES]


def candidate_rows(emb, X, trained_on: str, sets: dict, ood_name: str, level: float, seed: int):
    """Rows of the candidates, calibrated on the held-out images of ``trained_on`` (outside the training
    images), and how many held-out images calibrated them."""
    from wassembed.bench._ood import _clocks, _score_row
    from wassembed.errors import InputError, explain
    from wassembed.exact._pairs import parse_range

    train = np.asarray(emb.calibration["train_images"], dtype=np.int64)
    held = np.setdiff1d(parse_range(trained_on, X.shape[0], what="trained_on"), train)
    if held.size < 20:
        raise InputError(explain("too few held-out images in --trained-on", expected="the image range of the "
                                 "model's training cache (images outside the training images calibrate)",
                                 received=f"{held.size} held-out images", fix="pass the --images range of the "
                                 "cache's precompute"))
    ZW = lambda V: (np.asarray(emb.embed(V), np.float64), emb.histograms(V))
    got, (Zh, Wh), rows = {s: ZW(v) for s, v in sets.items()}, ZW(X[held]), []
    unseen = next(iter(got.values()))
    for name, fn in candidates(*ZW(X[train]), seed=seed):
        thr = float(np.quantile(fn(Zh, Wh), level))
        t = _clocks(fn, *unseen)[2]
        rows.append(_score_row(name, "candidate", {s: fn(*zw) for s, zw in got.items()}, thr, t, len(unseen[0]),
                               ood_name))
    return rows, int(held.size)


def compare(images, model, ood_images, *, unseen: str, trained_on: str, ood_name: str = "foreign images",
            level: float = 0.99, seed: int = 0) -> dict:
    """The served scores and the candidates on the same image sets (``wassembed bench ood``'s detection
    table, with the candidate rows)."""
    from wassembed.bench._ood import _as_images, _load, _served_rows, _sets
    from wassembed.exact._pairs import parse_range

    emb, X, F = _load(model), _as_images(images), _as_images(ood_images)
    sets = _sets(X, parse_range(unseen, X.shape[0], what="unseen"), F, ood_name, seed)
    rows = _served_rows(emb, sets, ood_name, level)
    more, held = candidate_rows(emb, X, trained_on, sets, ood_name, level, seed)
    return {"level": level, "held_out": held, "sets": {s: len(v) for s, v in sets.items()}, "scores": rows + more}


def format_comparison(r: dict) -> str:
    """The detection table of :func:`compare` (the same table as ``wassembed bench ood``)."""
    from wassembed.bench._ood import detection_table

    return "\n".join([f"level {r['level']}; candidates calibrated on {r['held_out']} held-out images", "",
                      *detection_table(r["sets"], r["scores"])])


def _tiny(work: str):
    """A small model of the 8×8 digits (pairs among images 0–299), random foreign images, and the ranges."""
    import warnings

    import wassembed as we

    we.precompute("digits", f"{work}/c", pairs=600, images="0:300", workers=1, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = we.train(f"{work}/c", epochs=2, distill_epochs=1, val_fraction=0.3, threads=1, progress=False)
    foreign = np.random.default_rng(1).random((60, 8, 8)) ** 4
    return we.load_dataset("digits"), model, foreign, "1400:1500", "0:300"


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", help="the training distribution's images (those the model's training indexes)")
    ap.add_argument("--model", help="a trained model (path)")
    ap.add_argument("--ood", help="images of another distribution on the same grid")
    ap.add_argument("--unseen", help="index range A:B of --data the model never saw")
    ap.add_argument("--trained-on", help="the training cache's --images range (its held-out images calibrate)")
    ap.add_argument("--level", type=float, default=0.99, help="quantile of the held-out scores that flags [0.99]")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="print the result as JSON")
    ap.add_argument("--tiny", action="store_true", help="a small model of the 8×8 digits (the smoke test)")
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as work:
        if a.tiny:
            images, model, foreign, a.unseen, a.trained_on = _tiny(work)
            name = "noise**4"
        else:
            if not all((a.data, a.model, a.ood, a.unseen, a.trained_on)):
                ap.error("--data, --model, --ood, --unseen and --trained-on are required (or --tiny)")
            from wassembed.data import load_dataset

            images, model, foreign, name = load_dataset(a.data), a.model, load_dataset(a.ood), a.ood.rsplit("/")[-1]
        r = compare(images, model, foreign, unseen=a.unseen, trained_on=a.trained_on, ood_name=name, level=a.level,
                    seed=a.seed)
    print(json.dumps(r, default=float) if a.json else format_comparison(r))
    return r


if __name__ == "__main__":
    main()
