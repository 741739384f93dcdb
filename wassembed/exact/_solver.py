"""Exact optimal-transport costs with POT's network simplex.

For histograms :math:`a, b` on a support with ground cost :math:`M_{uv} = c(x_u, x_v)`,

.. math:: W_p^p(a, b) = \\min_{T \\ge 0,\\; T1 = a,\\; T^\\top 1 = b} \\langle T, M \\rangle ,

with :math:`c(x, y) = \\|x - y\\|^2` for ``p = 2`` (W2², the default) and :math:`c(x, y) = \\|x - y\\|` for
``p = 1``. This is exactly what ``ot.emd2(a, b, M)`` returns (POT returns :math:`W_p^p`, not :math:`W_p`).

Each problem is restricted to the bins where ``a`` or ``b`` is nonzero: mass never moves from or to an empty
bin, so the optimum is unchanged, and the sub-problem is much smaller (≈ 150 × 150 instead of 784 × 784
for MNIST digits). The cost sub-matrix is sliced from one cost computed once, never rebuilt per pair.

"Exact" means exact: a solve that POT reports as not optimal (iteration limit reached, infeasible,
unbounded) raises :class:`~wassembed.errors.SolverError`; it is never returned as a value.
"""


from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from ..data import parse_p
from ..errors import InputError, SolverError, explain

__all__ = ["DEFAULT_NUM_ITER_MAX", "ExactSolver"]

#: Network-simplex iteration limit. POT's own default (100,000) is too low for large grids; reaching
#: the limit is an error here, never a silent approximation.
DEFAULT_NUM_ITER_MAX = 10_000_000


class ExactSolver:
    """Exact :math:`W_p^p` between histograms sharing one ground cost.

    Parameters
    ----------
    M : ndarray, shape (k, k)
        Ground cost, float64 (e.g. ``HistogramSet.ground_cost(p)``).
    p : int, default 2
        Exponent the cost stands for (recorded; the value returned is always the optimal ``<T, M>``).
    num_iter_max : int
        Network-simplex iteration limit; reaching it raises :class:`SolverError`.

    Examples
    --------
    Two Diracs on a 1 × 3 grid, two pixels apart: :math:`W_2^2 = 2^2`.

    >>> from wassembed.data import make_ground_cost
    >>> solver = ExactSolver(make_ground_cost(grid=(1, 3), p=2))
    >>> solver.solve(np.array([1.0, 0, 0]), np.array([0, 0, 1.0]))
    4.0
    """

    def __init__(self, M: ArrayLike, p: int = 2, *, num_iter_max: int = DEFAULT_NUM_ITER_MAX):
        M = np.asarray(M, dtype=np.float64)
        if M.ndim != 2 or M.shape[0] != M.shape[1]:
            raise InputError(explain("bad ground cost", expected="a square (k, k) matrix",
                                     received=f"shape {M.shape}", fix="pass HistogramSet.ground_cost(p)"))
        self.M = np.ascontiguousarray(M)
        self.p = parse_p(p)
        self.num_iter_max = int(num_iter_max)

    @property
    def k(self) -> int:
        """Number of bins."""
        return int(self.M.shape[0])

    def solve(self, a: np.ndarray, b: np.ndarray, *, pair: tuple[int, int] | None = None) -> float:
        """Exact :math:`W_p^p(a, b)` for two histograms ``(k,)`` summing to 1.

        Parameters
        ----------
        a, b : ndarray, shape (k,)
            Nonnegative float64 weights summing to 1.
        pair : tuple, optional
            Identifies the pair in error messages (e.g. ``(i, j)``).

        Returns
        -------
        float
            The optimal transport cost.

        Raises
        ------
        SolverError
            If POT does not report an optimal solution.
        """
        import ot

        ia = np.flatnonzero(a)
        ib = np.flatnonzero(b)
        sub = self.M[np.ix_(ia, ib)]
        # A non-optimal result (iteration limit, infeasible, unbounded) is read from POT's log, not caught as a
        # warning: warnings.catch_warnings is process-wide, so under threads (the served model re-ranks
        # neighbours with exact solves from several threads) it records other threads' warnings as this
        # solve's failure, misses this solve's own, and can leave the warning filters altered for good.
        value, log = ot.emd2(a[ia], b[ib], sub, numItermax=self.num_iter_max, center_dual=False, log=True)
        who = f"pair {pair}" if pair is not None else "the pair"
        raise_unless_optimal(log, f"exact solve of {who}",
                             fix="raise num_iter_max (ExactSolver(..., num_iter_max=...)) or check that both "
                                 "histograms are finite, nonnegative and sum to 1")
        return float(value)

    def solve_pairs(self, weights: np.ndarray, i: ArrayLike, j: ArrayLike, *, offset: int = 0) -> np.ndarray:
        """Exact values for the pairs ``(weights[i[t]], weights[j[t]])``.

        Parameters
        ----------
        weights : ndarray, shape (n, k)
            Histograms (rows sum to 1).
        i, j : array-like of int, shape (m,)
            Row indices of the pairs.
        offset : int
            Added to ``i``/``j`` in error messages (when ``weights`` is a slice of a larger set).

        Returns
        -------
        ndarray, shape (m,), float64
        """
        i = np.asarray(i, dtype=np.int64)
        j = np.asarray(j, dtype=np.int64)
        out = np.empty(i.shape[0], dtype=np.float64)
        for t in range(i.shape[0]):
            a, b = int(i[t]), int(j[t])
            out[t] = self.solve(weights[a], weights[b], pair=(a + offset, b + offset))
        return out


def raise_unless_optimal(log: dict, what: str, *, fix: str) -> None:
    """Raise :class:`~wassembed.errors.SolverError` when POT's ``log`` (``log=True``) reports no optimum.

    ``what`` names the solve (``"exact solve of pair (3, 7)"``); ``fix`` says what to change.
    """
    problem = log.get("warning")
    if problem:
        status = "iteration limit reached" if "numItermax" in str(problem) else "not optimal"
        raise SolverError(explain(f"{what} did not reach optimality", expected="an optimal network-simplex solution",
                                  received=f"{status} ({problem})", fix=fix))
