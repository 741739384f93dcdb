"""Validation of point clouds: numeric arrays, finite values, one cloud, weights normalised per cloud.

Shared by :class:`~wassembed.data.PointCloudSet` and the exact solver of clouds (:func:`as_cloud`). Needs numpy
only.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError, explain

__all__ = ["SUM_TOLERANCE", "as_cloud"]

#: a cloud whose weights sum to 1 within this tolerance is kept as given (so normalising is idempotent and a
#: saved set loads back bit for bit); any other cloud is divided by its sum
SUM_TOLERANCE = 1e-9

_RESHAPE_FIX = ("pass points as a (k, d) array: for k points on a line use points.reshape(-1, 1), "
                "for a single point in d dimensions use points.reshape(1, -1)")


#: the usual cause of ragged ``points``: a list of clouds given where all points, stacked, are expected
_LIST_FIX = ("for a list of clouds of different sizes ((k_i, d) arrays or (points, weights) tuples) use "
             "PointCloudSet.from_clouds(clouds); PointCloudSet(points, weights, offsets) takes all points stacked "
             "(N, d) with offsets; otherwise give every point the same d")


def _float_array(x, what: str, ragged_fix: str = "give every point the same d") -> np.ndarray:
    """``x`` as a float64 array, or InputError when it is not numeric (strings, ragged lists, complex)."""
    try:
        arr = np.asarray(x)
    except ValueError as exc:  # ragged nested lists
        raise InputError(explain(f"{what} is ragged", expected="rows of equal length",
                                 received=str(exc).split("\n")[0], fix=ragged_fix)) from None
    if arr.dtype == object or np.iscomplexobj(arr) or not (np.issubdtype(arr.dtype, np.number)
                                                           or arr.dtype == bool):
        raise InputError(explain(f"{what} is not a real numeric array", expected="an int or float array",
                                 received=f"dtype {arr.dtype}", fix="pass numbers"))
    return arr.astype(np.float64)


def _check_finite(arr: np.ndarray, what: str) -> None:
    if not np.isfinite(arr).all():
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise InputError(explain(f"{what} holds NaN or inf", expected="finite values",
                                 received=f"{arr[tuple(bad)]} at index {tuple(int(b) for b in bad)}",
                                 fix="drop or impute the non-finite entries"))


def as_cloud(cloud, *, what: str = "cloud") -> tuple[np.ndarray, np.ndarray]:
    """Validate one cloud and return ``(points (k, d), weights (k,))`` in float64, weights summing to 1.

    Parameters
    ----------
    cloud : array-like, shape (k, d), or tuple (points (k, d), weights (k,))
        Points alone (uniform weights) or a ``(points, weights)`` tuple; a tuple always means that pair.
    what : str
        Name of the cloud in error messages.

    Examples
    --------
    >>> p, w = as_cloud(([[0.0, 0.0], [1.0, 1.0]], [1, 3]))
    >>> p.shape, w.tolist()
    ((2, 2), [0.25, 0.75])
    """
    points, weights = cloud if isinstance(cloud, tuple) and len(cloud) == 2 else (cloud, None)
    p = _float_array(points, f"{what} points")
    if p.ndim != 2:
        raise InputError(explain(f"{what} points have the wrong rank", expected="a (k, d) array",
                                 received=f"shape {p.shape}", fix=_RESHAPE_FIX))
    if p.shape[0] == 0:
        raise InputError(explain(f"{what} is empty", expected="at least one point", received="shape " + str(p.shape),
                                 fix="drop empty clouds; they are not distributions"))
    _check_finite(p, f"{what} points")
    if weights is None:
        return p, np.full(p.shape[0], 1.0 / p.shape[0])
    w = _float_array(weights, f"{what} weights")
    if w.shape != (p.shape[0],):
        raise InputError(explain(f"{what} weights do not match its points", expected=f"shape ({p.shape[0]},)",
                                 received=f"shape {w.shape}", fix="one weight per point (row of points)"))
    return p, _normalised(w, np.array([0, w.shape[0]]), what=f"{what} weights", name_cloud=False)


def _normalised(w: np.ndarray, offsets: np.ndarray, *, what: str, name_cloud: bool = True) -> np.ndarray:
    """Check finite nonnegative weights with a positive sum per cloud; divide each cloud by its sum.

    ``what`` names the weights in messages; ``name_cloud`` adds which cloud of a set has no weight.
    """
    _check_finite(w, what)
    if (w < 0).any():
        row = int(np.flatnonzero(w < 0)[0])
        raise InputError(explain(f"{what} are negative", expected="nonnegative weights",
                                 received=f"{w[row]} at row {row}", fix="clip negative weights to 0"))
    sizes = np.diff(offsets)
    sums = np.add.reduceat(w, offsets[:-1]) if w.size else np.zeros(0)
    if (sums <= 0).any():
        i = int(np.flatnonzero(sums <= 0)[0])
        whose = f"{what} of cloud {i}" if name_cloud else what
        raise InputError(explain(f"{whose} are all zero", expected="a positive total weight",
                                 received=f"{sizes[i]} zero weights", fix="drop the cloud or give it weights"))
    if np.all(np.abs(sums - 1.0) <= SUM_TOLERANCE):
        return w
    scale = np.where(np.abs(sums - 1.0) <= SUM_TOLERANCE, 1.0, sums)
    return w / np.repeat(scale, sizes)
