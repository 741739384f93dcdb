"""Out-of-distribution scores measured against the served ones (``wassembed bench ood --trained-on``).

Latent candidates score embeddings ``Z (n, d)`` by their distance to the training images' embeddings: the
Mahalanobis distance under a Ledoit-Wolf shrunk covariance, or the squared latent distance to the ``j``-th
nearest training embedding (all of them, or a seeded subsample). Input-space candidates are the served
``"pca"`` score with other numbers ``q`` of principal directions. All are fitted on the training images; the
benchmark calibrates each on held-out images, as the served scores are.
"""

from __future__ import annotations

import numpy as np

__all__ = ["CANDIDATES", "candidates"]

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

    from ..serve._ood import pca_reference, pca_scores

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
