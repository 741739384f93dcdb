"""Accuracy of a trained model on the pairs of a distance cache it was not trained on."""

from __future__ import annotations

import os

import numpy as np

from ..data import PointCloudSet
from ..errors import CacheMismatchError, InputError, explain
from ..exact import DistanceCache
from ..metrics import regression_metrics
from ..nn import LatentDistance
from ._cloud_model import CloudEmbedding
from ._embedding import WassersteinEmbedding
from ._load import load
from ._warnings import warn_unchecked_overlap

__all__ = ["evaluate"]


def _check_support(model, data) -> None:
    """:class:`CacheMismatchError` unless the cache's data are of the model's kind and support."""
    if isinstance(model, CloudEmbedding) or isinstance(data, PointCloudSet):
        got = f"point clouds in {data.d} dimensions" if isinstance(data, PointCloudSet) else "histograms"
        want = f"point clouds in {model.point_dim} dimensions" if isinstance(model, CloudEmbedding) else "histograms"
        if got != want:
            raise CacheMismatchError(explain("the cache and the model hold different data", expected=want,
                                             received=got, fix="evaluate on a cache of the model's kind of data"))
        return
    grid = tuple(model.grid) if model.grid is not None else None
    dgrid = tuple(data.grid) if data.grid is not None else None
    if grid != dgrid or data.k != model.config.k:
        raise CacheMismatchError(explain("the cache and the model have different supports",
                                         expected=f"grid {grid}, {model.config.k} bins",
                                         received=f"grid {dgrid}, {data.k} bins",
                                         fix="evaluate on a cache of data on the model's grid"))


def evaluate(model: WassersteinEmbedding | str | os.PathLike, cache: DistanceCache | str | os.PathLike, *,
             batch_size: int = 4096) -> dict:
    """Metrics of ``model`` on the pairs of ``cache`` whose images were not used in training.

    Parameters
    ----------
    model : WassersteinEmbedding or path
        A model or the directory of a saved one. Needs ``.p``, ``.info`` (``dataset_fingerprint``),
        ``.calibration["train_images"]`` and ``.embed(weights (n, k)) -> (n, d)``; estimates are the
        :class:`~wassembed.nn.LatentDistance` of ``p`` between embeddings (as in training and serving).
    cache : DistanceCache or path
        Cache with stored data on the model's support and the same ``p``.
    batch_size : int
        Images embedded per call.

    Returns
    -------
    dict
        :func:`regression_metrics` plus ``n_dropped`` (pairs touching training images, dropped only when the
        cache holds the model's training data) and ``dataset_fingerprint`` (of the evaluation cache).

    Warns
    -----
    EvaluationWarning
        When the cache holds other data than the model's training data (their fingerprints differ, or the
        model records none): images the model trained on cannot be recognised, so no pair is dropped and the
        metrics may be optimistic. Evaluate on a cache of images the model never saw, built from the same
        data with ``precompute(..., images=)`` of an unseen range.
    """
    if isinstance(cache, (str, os.PathLike)):
        cache = DistanceCache.open(cache)
    if isinstance(model, (str, os.PathLike)):
        model = load(model)
    data = cache.data
    if int(cache.p) != int(model.p):
        raise CacheMismatchError(explain("the cache and the model use different exponents p",
                                         expected=f"p={model.p} (the model's)", received=f"p={cache.p}",
                                         fix="evaluate on a cache computed with the model's p"))
    _check_support(model, data)
    table = cache.read()
    i, j, y = table.i, table.j, table.value
    info = model.info or {}
    n_dropped = 0
    if info.get("dataset_fingerprint") == cache.fingerprint:
        train_images = np.asarray((model.calibration or {}).get("train_images", np.zeros(0, np.int64)))
        seen = np.zeros(data.n, dtype=bool)
        seen[train_images[train_images < data.n]] = True
        keep = ~(seen[i] | seen[j])
        n_dropped = int((~keep).sum())
        i, j, y = i[keep], j[keep], y[keep]
    else:
        warn_unchecked_overlap(cache.fingerprint, info.get("dataset_fingerprint"), stacklevel=3)
    if i.size < 2:
        raise InputError(explain("too few unseen pairs in the evaluation cache", expected="at least 2 pairs",
                                 received=f"{i.size} pairs ({n_dropped} dropped as they touch training images)",
                                 fix="evaluate on a cache of images the model was not trained on"))
    used, inv = np.unique(np.concatenate([i, j]), return_inverse=True)
    rows = (lambda u: data.subset(u)) if isinstance(data, PointCloudSet) else (lambda u: data.weights[u])
    z = np.concatenate([np.asarray(model.embed(rows(used[s:s + batch_size])), dtype=np.float64)
                        for s in range(0, used.size, batch_size)])
    a, b = inv[:i.size], inv[i.size:]
    pred = LatentDistance(int(model.p)).paired(z[a], z[b])
    out = regression_metrics(pred, y)
    out["n_dropped"] = n_dropped
    out["dataset_fingerprint"] = cache.fingerprint
    return out
