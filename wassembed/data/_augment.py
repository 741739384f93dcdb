"""Elastic copies of images: new training inputs that keep integer pixels (each gets its own exact solve).

A copy is the image resampled along a smooth random displacement field (Simard, Steinkraus & Platt, ICDAR
2003): uniform noise in [-1, 1] per pixel and per axis, smoothed by a Gaussian of ``sigma`` pixels, times
``alpha`` pixels; the image is read bilinearly at the displaced positions and rounded to integers, so a
copy of integer pixels is again a histogram of integer counts (the exact stage's grid path solves it in
integers). Unlike the exact symmetries of training (shifts, flips: they keep every W2² between images),
a deformation changes the distances: a copy needs its own exact solve before it can be a target.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from ..errors import InputError, explain

__all__ = ["elastic_copies", "elastic_copy"]


def elastic_copies(images: ArrayLike, copies: int, *, alpha: float = 6.0, sigma: float = 4.0,
                   seed: int = 0, ids: ArrayLike | None = None) -> np.ndarray:
    """``copies`` elastic deformations of each image, rounded to integer pixels.

    Parameters
    ----------
    images : ndarray, shape (n, H, W)
        Nonnegative images (integer pixels keep integer copies).
    copies : int
        Copies per image.
    alpha, sigma : float
        Scale (pixels) and smoothness (Gaussian standard deviation, pixels) of the displacement field.
    seed : int
        Seeds the fields: the same arguments give the same copies.
    ids : array-like of int, shape (n,), optional
        One number per image (its index in a data set, say; default ``0 .. n-1``): copy ``c`` of image ``i``
        depends on ``seed``, ``ids[i]``, ``c`` and the image only, so copies made in chunks, or more copies
        made later, are the same.

    Returns
    -------
    ndarray, shape (n * copies, H, W), int64
        Copy ``c`` of image ``i`` at row ``i * copies + c``. A copy that would lose all its mass (a field
        pushing everything off the grid) is the image itself.

    Examples
    --------
    >>> img = np.zeros((1, 9, 9), dtype=np.uint8)
    >>> img[0, 3:6, 3:6] = 200
    >>> out = elastic_copies(img, 2, alpha=20.0, sigma=2.0)
    >>> out.shape, out.dtype, bool(out.sum() > 0)
    ((2, 9, 9), dtype('int64'), True)
    >>> bool((elastic_copies(img, 3, alpha=20.0, sigma=2.0)[:2] == out).all())  # more copies: the same first ones
    True
    """
    x = np.asarray(images)
    if x.ndim != 3 or not np.isfinite(x).all() or (x < 0).any():
        raise InputError(explain("bad images for elastic copies", expected="nonnegative finite images (n, H, W)",
                                 received=f"shape {x.shape}", fix="pass images, not histograms"))
    if isinstance(copies, bool) or int(copies) < 1:
        raise InputError(explain("bad copies", expected="a positive integer", received=repr(copies),
                                 fix="e.g. copies=3"))
    n = x.shape[0]
    ids = np.arange(n) if ids is None else np.asarray(ids)
    if ids.shape != (n,):
        raise InputError(explain("bad ids", expected=f"one per image, shape ({n},)", received=f"shape {ids.shape}",
                                 fix="pass the images' indices"))
    k = int(copies)
    out = np.empty((n * k, *x.shape[1:]), dtype=np.int64)
    for i in range(n):
        for c in range(k):
            out[i * k + c] = elastic_copy(x[i], alpha=alpha, sigma=sigma, seed=(int(seed), int(ids[i]), c))
    return out


def elastic_copy(image: np.ndarray, *, alpha: float, sigma: float, seed) -> np.ndarray:
    """One elastic copy of one image ``(H, W)`` (see :func:`elastic_copies`); ``seed`` seeds its field."""
    from scipy.ndimage import gaussian_filter, map_coordinates

    h, w = image.shape
    rng = np.random.default_rng(seed)
    img = np.asarray(image, dtype=np.float64)
    rows, cols = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64), indexing="ij")
    dr = gaussian_filter(rng.uniform(-1, 1, (h, w)), sigma, mode="constant") * alpha
    dc = gaussian_filter(rng.uniform(-1, 1, (h, w)), sigma, mode="constant") * alpha
    moved = np.rint(map_coordinates(img, [rows + dr, cols + dc], order=1, mode="constant", cval=0.0))
    return (moved if moved.sum() > 0 else img).astype(np.int64)
