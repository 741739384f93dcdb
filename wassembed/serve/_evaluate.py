"""Accuracy of a trained model on the pairs of a distance cache it was not trained on."""

from __future__ import annotations

import os

import numpy as np

from ..errors import CacheMismatchError, InputError, explain
from ..exact import DistanceCache
from ..metrics import regression_metrics
from ..nn import LatentDistance
from ._embedding import BaseEmbedding
from ._load import load
from ._warnings import warn_unchecked_overlap

__all__ = ["evaluate"]


def evaluate(model: BaseEmbedding | str | os.PathLike, cache: DistanceCache | str | os.PathLike, *,
             batch_size: int = 4096) -> dict:
    """Metrics of ``model`` on the pairs of ``cache`` whose images were not used in training.

    Parameters
    ----------
    model : WassersteinEmbedding, CloudEmbedding or path
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
    model._check_data(data)  # CacheMismatchError unless the data is of the model's kind and support
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
    z = np.concatenate([np.asarray(model.embed(data.subset(used[s:s + batch_size])), dtype=np.float64)
                        for s in range(0, used.size, batch_size)])
    a, b = inv[:i.size], inv[i.size:]
    pred = LatentDistance(int(model.p)).paired(z[a], z[b])
    out = regression_metrics(pred, y)
    out["n_dropped"] = n_dropped
    out["dataset_fingerprint"] = cache.fingerprint
    return out
