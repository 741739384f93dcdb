"""Supports and validation of histograms: exponent ``p``, ground costs, ``as_weights``.

The default ground cost is the squared Euclidean distance between bin coordinates, ``c(x, y) = ‖x − y‖²``,
for which the optimal-transport cost is W2² (``p = 2``); ``p = 1`` uses ``c(x, y) = ‖x − y‖`` (W1).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from ..errors import InputError, explain

__all__ = ["as_weights", "ground_cost_name", "make_ground_cost", "parse_p"]


FINGERPRINT_VERSION = "wassembed-data-v1"


def parse_p(p: object) -> int:
    """Validate the transport exponent ``p`` (1 or 2) and return it as an int."""
    if isinstance(p, bool) or p not in (1, 2):
        raise InputError(explain("unsupported exponent p", expected="1 (W1) or 2 (W2², the default)",
                                 received=repr(p), fix="pass p=1 or p=2"))
    return int(p)


def ground_cost_name(p: int, explicit_cost: bool = False) -> str:
    """Name of the ground cost used for exponent ``p``: ``sqeuclidean``, ``euclidean`` or ``custom``."""
    if explicit_cost:
        return "custom"
    return "sqeuclidean" if parse_p(p) == 2 else "euclidean"


def _describe_rows(rows: np.ndarray, limit: int = 5) -> str:
    rows = np.asarray(rows).ravel()
    shown = ", ".join(str(int(r)) for r in rows[:limit])
    more = f" and {rows.size - limit} more" if rows.size > limit else ""
    return f"row{'s' if rows.size > 1 else ''} {shown}{more}"


def as_weights(X: ArrayLike, *, what: str = "input", grid: tuple[int, int] | None = None,
               k: int | None = None) -> tuple[np.ndarray, tuple[int, int] | None]:
    """Validate images or histograms and return float64 histograms summing to 1.

    Parameters
    ----------
    X : array-like, shape (n, H, W) or (n, k)
        Nonnegative finite images or histograms; each row must have a positive sum.
    what : str
        Name used in error messages (a file name, an argument name).
    grid : tuple (H, W), optional
        If given, images must have this shape and histograms ``H * W`` bins.
    k : int, optional
        If given (and ``grid`` is not), the required number of bins.

    Returns
    -------
    weights : ndarray, shape (n, k), float64
        Rows normalised to sum 1.
    grid : tuple (H, W) or None
        The grid shape when ``X`` was a stack of images (or ``grid`` was given).

    Examples
    --------
    >>> w, g = as_weights([[[0, 2], [0, 2]]])
    >>> w.tolist(), g
    ([[0.0, 0.5, 0.0, 0.5]], (2, 2))
    """
    try:
        arr = np.asarray(X)
    except ValueError as exc:  # ragged nested lists
        raise InputError(explain(f"{what} is ragged", expected="rows of equal length",
                                 received=str(exc).split("\n")[0],
                                 fix="pad or crop every image to the same shape")) from None
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise InputError(explain(f"{what} is not a numeric array", expected="an int or float array",
                                 received=f"dtype {arr.dtype}",
                                 fix="pass images (n, H, W) or histograms (n, k) of numbers of equal length"))
    if np.iscomplexobj(arr):
        raise InputError(explain(f"{what} is complex", expected="real weights", received=f"dtype {arr.dtype}",
                                 fix="pass the real part or the modulus"))
    if arr.size == 0:
        raise InputError(explain(f"{what} is empty", expected="at least one row with at least one bin",
                                 received=f"shape {arr.shape}", fix="pass a non-empty array"))
    if arr.ndim == 3:
        found_grid = (int(arr.shape[1]), int(arr.shape[2]))
        if grid is not None and tuple(grid) != found_grid:
            raise InputError(explain(f"{what} has the wrong image size", expected=f"images of {grid[0]}×{grid[1]}",
                                     received=f"{found_grid[0]}×{found_grid[1]}",
                                     fix="resample the images to the size the model or cache was built on"))
        arr = arr.reshape(arr.shape[0], -1)
    elif arr.ndim == 2:
        found_grid = tuple(grid) if grid is not None else None
        want = grid[0] * grid[1] if grid is not None else k
        if want is not None and arr.shape[1] != want:
            raise InputError(explain(f"{what} has the wrong number of bins", expected=f"{want} bins per row",
                                     received=f"{arr.shape[1]}",
                                     fix="pass data on the same support as the model or cache"))
    else:
        raise InputError(explain(f"{what} has the wrong rank", expected="images (n, H, W) or histograms (n, k)",
                                 received=f"an array of shape {arr.shape}",
                                 fix="for one image use X[None]; stack several images along axis 0"))
    if k is not None and grid is None and arr.shape[1] != k:
        raise InputError(explain(f"{what} has the wrong number of bins", expected=f"{k} bins per row",
                                 received=f"{arr.shape[1]}", fix="pass data on the same support"))
    w = arr.astype(np.float64, copy=True)
    bad = ~np.isfinite(w)
    if bad.any():
        rows = np.flatnonzero(bad.any(axis=1))
        raise InputError(explain(f"{what} has NaN or infinite values", expected="finite weights",
                                 received=f"non-finite values in {_describe_rows(rows)}",
                                 fix="drop or repair those rows"))
    neg = w < 0
    if neg.any():
        rows = np.flatnonzero(neg.any(axis=1))
        raise InputError(explain(f"{what} has negative weights", expected="nonnegative weights",
                                 received=f"negative values in {_describe_rows(rows)}",
                                 fix="clip at 0 or shift the data before normalising"))
    peak = w.max(axis=1)
    zero = peak <= 0
    if zero.any():
        rows = np.flatnonzero(zero)
        raise InputError(explain(f"{what} has all-zero rows", expected="every row with a positive sum",
                                 received=f"zero mass in {_describe_rows(rows)}",
                                 fix="drop empty images; they are not distributions"))
    w /= peak[:, None]  # first by the largest value: a row sum can overflow float64 even when values do not
    w /= w.sum(axis=1, keepdims=True)
    return w, found_grid


def _grid_coords(grid: tuple[int, int]) -> np.ndarray:
    H, W = grid
    r, c = np.meshgrid(np.arange(H), np.arange(W), indexing="ij")
    return np.stack([r.ravel(), c.ravel()], axis=1).astype(np.float64)


def make_ground_cost(*, grid: tuple[int, int] | None = None, coords: ArrayLike | None = None,
                     cost: ArrayLike | None = None, p: int = 2) -> np.ndarray:
    """The ``(k, k)`` float64 ground cost of a support, read-only.

    ``p = 2``: squared Euclidean distances between bin coordinates (integer pixel positions for a grid);
    ``p = 1``: Euclidean distances. An explicit ``cost`` is returned as given, whatever ``p``.

    Examples
    --------
    >>> make_ground_cost(grid=(1, 3), p=2)[0].tolist()
    [0.0, 1.0, 4.0]
    """
    p = parse_p(p)
    if cost is not None:
        M = np.array(cost, dtype=np.float64)
    else:
        x = _grid_coords(tuple(grid)) if grid is not None else np.asarray(coords, dtype=np.float64)
        d2 = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
        M = d2 if p == 2 else np.sqrt(d2)
    M.setflags(write=False)
    return M


