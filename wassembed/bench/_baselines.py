"""The per-pair baselines of the serving benchmark, timed: exact OT, Sinkhorn and sliced Wasserstein (POT).

Each takes float64 histograms ``w (n, k)`` and index arrays ``i, j`` of the pairs, and returns the values
with the seconds spent.
"""

from __future__ import annotations

import time
import warnings

import numpy as np

__all__ = ["exact_values", "grid_coords", "sinkhorn_values", "sliced_values", "timed"]


def timed(fn, *args, **kw):
    """``(fn(*args, **kw), seconds)``."""
    t = time.perf_counter()
    out = fn(*args, **kw)
    return out, time.perf_counter() - t


def grid_coords(grid) -> np.ndarray:
    """Pixel coordinates ``(H W, 2)`` float64 of a grid, row-major (the bins' order)."""
    coords = np.stack(np.meshgrid(np.arange(grid[0]), np.arange(grid[1]), indexing="ij"), -1).reshape(-1, 2)
    return coords.astype(np.float64)


def exact_values(w, i, j, M, max_seconds):
    """Exact W2² of the pairs (:class:`~wassembed.exact.ExactSolver`), stopping after ``max_seconds``
    (when not None, and at least 5 pairs were solved)."""
    from ..exact import ExactSolver

    solver = ExactSolver(M, 2)
    vals, t0 = [], time.perf_counter()
    for a, b in zip(i, j):
        vals.append(solver.solve(w[a], w[b]))
        if max_seconds is not None and time.perf_counter() - t0 > max_seconds and len(vals) >= 5:
            break
    return np.array(vals), time.perf_counter() - t0


def sinkhorn_values(w, i, j, M, reg, num_iter):
    """``ot.sinkhorn2`` on the nonzero bins of each pair: ``(values, seconds, pairs not converged)``."""
    import ot

    vals, not_converged = [], 0
    t0 = time.perf_counter()
    for a, b in zip(i, j):
        ia, ib = np.flatnonzero(w[a]), np.flatnonzero(w[b])
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            vals.append(float(ot.sinkhorn2(w[a][ia], w[b][ib], M[np.ix_(ia, ib)], reg, numItermax=num_iter)))
        not_converged += any("converge" in str(c.message).lower() for c in caught)
    return np.array(vals), time.perf_counter() - t0, not_converged


def sliced_values(w, i, j, coords, n_projections, seed):
    """Squared ``ot.sliced_wasserstein_distance`` between the weighted clouds of nonzero pixels."""
    import ot

    vals, t0 = [], time.perf_counter()
    for a, b in zip(i, j):
        ia, ib = np.flatnonzero(w[a]), np.flatnonzero(w[b])
        sw = ot.sliced_wasserstein_distance(coords[ia], coords[ib], w[a][ia], w[b][ib],
                                            n_projections=n_projections, seed=seed)
        vals.append(float(sw) ** 2)
    return np.array(vals), time.perf_counter() - t0
