"""Inputs of a point-cloud model: clouds in any accepted form, validated once, read as packed batches.

A point-cloud model (:class:`~wassembed.serve.CloudEmbedding`, ``point_dim = d``) accepts, for every method:

* a :class:`~wassembed.data.PointCloudSet` of dimension ``d``;
* a list (or tuple) of clouds, each ``(k_i, d)`` points (uniform weights) or a ``(points, weights)`` tuple;
* one cloud: a ``(k, d)`` array or a ``(points (k, d), weights (k,))`` tuple (a batch of one);
* a 3-D array or tensor: ``(n, k, d)`` is ``n`` uniform clouds of ``k`` points; ``(n, kmax, d + 1)`` is
  ``n`` packed clouds (:func:`wassembed.nn.pack_clouds`, or the model's ``decode``: coordinates, then the
  weight, rows of weight 0 are padding). The two never collide: the last axis is ``d`` or ``d + 1``.

Validation and normalisation are those of :class:`~wassembed.data.PointCloudSet` (expected / received / fix).
Torch in, torch out on the input's device; anything else gives numpy.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from ..data import POINT_CLOUDS, DataSet, PointCloudSet, as_dataset
from ..errors import InputError, explain, param

__all__ = ["CloudInputs", "as_clouds", "prepare_clouds"]


def _forms(d: int) -> str:
    return (f"a PointCloudSet of dimension {d}; a list of clouds ((k_i, {d}) points or (points, weights) "
            f"tuples); one cloud (k, {d}) or (points, weights); (n, k, {d}) uniform clouds; or (n, kmax, {d + 1}) "
            "packed clouds")


def _from_array(a: np.ndarray, d: int, what: str) -> PointCloudSet:
    """A 2-D array (one cloud) or a 3-D array (uniform or packed clouds) as a set."""
    if a.ndim == 2:
        return PointCloudSet.from_clouds([a])
    if a.ndim == 3 and a.shape[2] == d + 1:
        w = a[..., d]
        if not np.isfinite(w).all() or (w < 0).any() or not (w.sum(1) > 0).all():
            raise InputError(explain(f"bad packed clouds {what}", expected="finite nonnegative weights in the last "
                                     "channel, a positive total per cloud", received="a row with NaN, a negative "
                                     "or no weight", fix="pass pack_clouds(...) or decode(...) output"))
        return PointCloudSet.from_clouds([(r[r[:, d] > 0, :d], r[r[:, d] > 0, d]) for r in a])
    if a.ndim == 3:
        return PointCloudSet.from_clouds(list(a))
    raise InputError(explain(f"bad clouds {what}", expected=_forms(d), received=f"an array of shape {a.shape}",
                             fix="pass a list of (k, d) arrays or a PointCloudSet"))


def _rank(a) -> int:
    """``np.ndim(a)``, or -1 for a ragged sequence (e.g. a ``(points, weights)`` tuple)."""
    try:
        return int(np.ndim(a))
    except ValueError:
        return -1


def as_clouds(X, what: str, d: int) -> tuple[PointCloudSet, torch.device | None]:
    """``(clouds, like)``: ``X`` (any form of the module docstring) as a validated set of dimension ``d``, and
    the torch device of a tensor input (None otherwise).

    Examples
    --------
    >>> cs, like = as_clouds([np.zeros((3, 2)), (np.ones((2, 2)), [1.0, 3.0])], "X", 2)
    >>> cs.n, cs.sizes.tolist(), like
    (2, [3, 2], None)
    >>> as_clouds(np.zeros((5, 2)), "X", 2)[0].n  # one cloud
    1
    """
    like, what = X.device if isinstance(X, torch.Tensor) else None, param(what)
    if isinstance(X, torch.Tensor):
        X = X.detach().to("cpu", torch.float64).numpy()
    if isinstance(X, DataSet):
        cs = as_dataset(X, what, kind=POINT_CLOUDS)
    elif isinstance(X, tuple) and len(X) == 2 and _rank(X[1]) == 1 and _rank(X[0]) == 2:
        cs = PointCloudSet.from_clouds([X])  # one (points, weights) cloud
    elif isinstance(X, (list, tuple)):
        cs = PointCloudSet.from_clouds(list(X))
    elif isinstance(X, np.ndarray):
        cs = _from_array(X, d, what)
    else:
        raise InputError(explain(f"bad clouds {what}", expected=_forms(d), received=type(X).__name__,
                                 fix="pass a list of (k, d) arrays or a PointCloudSet"))
    if cs.d != d:
        raise InputError(explain(f"clouds {what} have the wrong dimension", expected=f"points in {d} dimensions "
                                 "(the model's point_dim)", received=f"d = {cs.d}",
                                 fix="pass clouds of the data the model was trained on"))
    return cs, like


class CloudInputs:
    """Validated clouds read as packed float32 batches ``(b, kmax_b, d + 1)`` on a device (each batch padded
    to its own largest cloud). ``like``: the device of a tensor input, None for numpy."""

    __slots__ = ("clouds", "like", "what")

    def __init__(self, clouds: PointCloudSet, like, what: str):
        self.clouds, self.like, self.what = clouds, like, what

    @property
    def n(self) -> int:
        """Number of clouds."""
        return self.clouds.n

    def batches(self, dev: torch.device, batch_size: int, **_) -> Iterator[torch.Tensor]:
        """Packed float32 clouds on ``dev``, ``batch_size`` at a time."""
        for s in range(0, self.n, batch_size):
            P, W, _mask = self.clouds.padded(np.arange(s, min(s + batch_size, self.n)))
            yield torch.from_numpy(np.concatenate([P, W[..., None]], axis=-1).astype(np.float32)).to(dev)


def prepare_clouds(X, what: str, d: int) -> CloudInputs:
    """``X`` validated (:func:`as_clouds`) and ready to be read in batches; a :class:`CloudInputs` passes."""
    if isinstance(X, CloudInputs):
        return X
    return CloudInputs(*as_clouds(X, what, d), what)
