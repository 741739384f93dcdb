"""Histograms as integers: rational weights with integer counts, dyadic references, lattice coordinates.

Exact solves in integer arithmetic (:class:`~wassembed.exact.GridSolver`) need integer supplies. Images of
integer pixel values divided by their sum are rationals :math:`c / S`; :func:`rational_scales` finds
:math:`S` from the float64 weights (never rounding weights that are not such rationals), and
:func:`dyadic_reference` rounds a reference measure of our own choosing (LOT's mean) to multiples of
:math:`2^{-24}`, exactly representable in float64.
"""

from __future__ import annotations

from fractions import Fraction
from math import gcd

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["MAX_DENOMINATOR", "REFERENCE_BITS", "dyadic_reference", "lattice_coords", "rational_scales"]

#: largest denominator :func:`rational_scales` recognises: any two fractions with denominators up to 2**26
#: differ by more than twice float64's rounding of weights <= 1, so the rational a weight stands for is unique
MAX_DENOMINATOR = 1 << 26

def rational_scales(weights: ArrayLike, *, max_denominator: int = MAX_DENOMINATOR) -> np.ndarray:
    """For each histogram, the integer :math:`S` with :math:`w S` integral, or 0 when there is none.

    A row qualifies when integer counts :math:`c` with :math:`\\sum c = S \\le` ``max_denominator`` reproduce
    it within float64 rounding, :math:`|c_i / S - w_i| \\le 4\\,\\mathrm{ulp}(w_i)`: the weights are then the
    rational histogram :math:`c / S` (as for images of integer pixel values divided by their sum), and exact
    solves use the counts. The smallest such :math:`S` is returned.

    Parameters
    ----------
    weights : ndarray, shape (n, k) or (k,)
        Nonnegative float64 histograms summing to 1.
    max_denominator : int
        Largest :math:`S` considered (at most :data:`MAX_DENOMINATOR`).

    Returns
    -------
    ndarray, shape (n,) or (), int64
        :math:`S` per row (0: not a rational histogram of denominator ``<= max_denominator``).

    Examples
    --------
    >>> rational_scales(np.array([[1, 2, 0, 1], [1, 1, 1, 1]]) / np.array([[4], [4]]))
    array([4, 4])
    >>> int(rational_scales(np.array([np.pi - 3, 4 - np.pi])))
    0
    """
    w = np.asarray(weights, dtype=np.float64)
    one = w.ndim == 1
    w2 = np.atleast_2d(w)
    limit = min(int(max_denominator), MAX_DENOMINATOR)
    out = np.zeros(w2.shape[0], dtype=np.int64)
    for r in range(w2.shape[0]):
        out[r] = _row_scale(w2[r], limit)
    return out.reshape(()) if one else out


def _row_scale(w: np.ndarray, limit: int) -> int:
    nz = w[w > 0]
    if nz.size == 0 or not np.isfinite(nz).all():
        return 0
    d = 1
    probe = float(nz.min())
    for _ in range(8):  # each round adds the denominator of one weight not yet integral; rarely more than 2
        den = Fraction(probe).limit_denominator(limit).denominator
        d = d * den // gcd(d, den)
        if d > limit:
            return 0
        scaled = nz * d
        counts = np.rint(scaled)
        bad = np.abs(scaled - counts) > 1e-6 * np.maximum(scaled, 1.0)
        if not bad.any():
            if counts.min() < 1 or int(counts.sum()) != d:
                return 0
            if np.any(np.abs(counts / d - nz) > 4 * np.spacing(nz)):
                return 0
            return d
        probe = float(nz[np.argmax(bad)])
    return 0


#: the default (mean) reference is rounded to multiples of 2**-REFERENCE_BITS
REFERENCE_BITS = 24


def dyadic_reference(r: ArrayLike, bits: int = REFERENCE_BITS) -> np.ndarray:
    """A histogram rounded to multiples of :math:`2^{-\\mathrm{bits}}`, exactly representable in float64.

    Every bin with mass keeps at least one unit; the remaining units go by largest remainder, so the result
    sums to exactly 1. The change is at most :math:`2^{-\\mathrm{bits}}` per bin (plus the units given to
    bins below one unit).

    Parameters
    ----------
    r : ndarray, shape (k,)
        Nonnegative weights summing to 1.
    bits : int
        Precision: the denominator is ``2**bits`` (at most 52).

    Returns
    -------
    ndarray, shape (k,), float64

    Examples
    --------
    >>> dyadic_reference(np.array([1 / 3, 2 / 3, 0.0]), bits=4).tolist()
    [0.3125, 0.6875, 0.0]
    """
    r = np.asarray(r, dtype=np.float64)
    total = 1 << int(bits)
    scaled = r / r.sum() * total
    counts = np.floor(scaled).astype(np.int64)
    counts[(r > 0) & (counts == 0)] = 1
    short = total - int(counts.sum())
    if short > 0:
        counts[np.argsort(-(scaled - np.floor(scaled)), kind="stable")[:short]] += 1
    elif short < 0:  # more bins below one unit than units left over: take them from the largest bins
        for b in np.argsort(-counts, kind="stable")[:-short]:
            counts[b] -= 1
    return counts / total


def lattice_coords(coords: ArrayLike) -> np.ndarray | None:
    """``coords`` as int64 when they are 2-D and integer-valued (a pixel grid or part of one), else None."""
    x = np.asarray(coords)
    if x.ndim != 2 or x.shape[1] != 2 or x.shape[0] == 0:
        return None
    if np.issubdtype(x.dtype, np.integer):
        return x.astype(np.int64)
    if not np.isfinite(x).all() or np.any(x != np.rint(x)) or np.abs(x).max() >= 2 ** 31:
        return None
    return x.astype(np.int64)
