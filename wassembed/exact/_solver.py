"""Exact optimal-transport costs: a separable network simplex on grids, POT's network simplex elsewhere.

For histograms :math:`a, b` on a support with ground cost :math:`M_{uv} = c(x_u, x_v)`,

.. math:: W_p^p(a, b) = \\min_{T \\ge 0,\\; T1 = a,\\; T^\\top 1 = b} \\langle T, M \\rangle ,

with :math:`c(x, y) = \\|x - y\\|^2` for ``p = 2`` (W2², the default) and :math:`c(x, y) = \\|x - y\\|` for
``p = 1``. This is exactly what ``ot.emd2(a, b, M)`` returns (POT returns :math:`W_p^p`, not :math:`W_p`).

Two exact paths give this value:

- **the grid path** (:class:`~wassembed.exact.GridSolver`): W2² on 2-D integer coordinates (pixel grids) is
  a separable cost, so the problem is a min-cost flow on a 3-partite graph with far fewer arcs, solved in
  integers by LEMON's network simplex (``pylmcf``). It applies to histograms whose weights are rationals
  :math:`c / S` with integer counts (images of integer pixels divided by their sum: uint8 IDX, counts; see
  :func:`~wassembed.exact.rational_scales`) and whose supplies fit int64: the value is the exact rational
  optimum rounded once to float64.
- **POT** (``ot.emd2``) everywhere else: float weights that are not such rationals, cost matrices,
  coordinates off an integer 2-D lattice, ``p = 1``, or when ``pylmcf`` is missing (one warning).

Both return the same values within float64 rounding (tests compare them to 1e-12 relative on 10,000+
pairs). POT's problem is restricted to the bins where ``a`` or ``b`` is nonzero: mass never moves from or to
an empty bin, so the optimum is unchanged, and the sub-problem is much smaller (≈ 150 × 150 instead of
784 × 784 for MNIST digits).

"Exact" means exact: a solve that is not reported optimal (POT: iteration limit reached, infeasible,
unbounded; LEMON: infeasible, unbounded) raises :class:`~wassembed.errors.SolverError`; it is never
returned as a value.
"""


from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from ..data import parse_p
from ..errors import InputError, SolverError, explain
from ._grid import GridSolver, lemon
from ._rational import lattice_coords, rational_scales

__all__ = ["DEFAULT_NUM_ITER_MAX", "METHODS", "ExactSolver"]

#: Network-simplex iteration limit of POT. POT's own default (100,000) is too low for large grids; reaching
#: the limit is an error here, never a silent approximation.
DEFAULT_NUM_ITER_MAX = 10_000_000

#: how :class:`ExactSolver` chooses its path
METHODS = ("auto", "grid", "pot")

#: largest support whose full ground cost is built for POT's rows (4,096 bins: 128 MB of float64)
_FULL_COST_MAX_BINS = 4096

#: ``method="auto"`` takes the grid path when the bipartite problem has at least GRID_MIN_ARCS arcs and
#: GRID_ARC_RATIO times the arcs of the 3-partite one. Measured on random integer images from 6×6 to 24×24 (one
#: thread): below either, POT is as fast or faster (fixed costs dominate: 0.8× on the 8×8 digits, 32 nonzero
#: bins; 0.77–0.84× on full 6×6 grids); MNIST (ratio ~3.7, ~20,000 arcs) runs 1.7× faster on the grid path.
GRID_MIN_ARCS = 4096
GRID_ARC_RATIO = 2.5


class ExactSolver:
    """Exact :math:`W_p^p` between histograms sharing one support.

    Parameters
    ----------
    M : ndarray, shape (k, k), optional
        Ground cost, float64 (e.g. ``HistogramSet.ground_cost(p)``). May be omitted when ``coords`` are given:
        POT's sub-problems then take their costs from the coordinates.
    p : int, default 2
        Exponent the cost stands for: 2 with the squared Euclidean cost (W2²), 1 with the Euclidean cost.
    coords : ndarray, shape (k, d), optional
        Bin coordinates (``HistogramSet.support_coords()``). 2-D integer coordinates with ``p = 2`` enable
        the grid path.
    method : {"auto", "grid", "pot"}
        ``"auto"``: the grid path for every pair it solves exactly, POT for the others; ``"pot"``: always
        POT; ``"grid"``: the grid path or :class:`~wassembed.errors.InputError` (coordinates, weights or
        supplies it cannot take).
    num_iter_max : int
        POT's network-simplex iteration limit; reaching it raises :class:`SolverError` (LEMON has none).

    Examples
    --------
    Two Diracs on a 1 × 3 grid, two pixels apart: :math:`W_2^2 = 2^2`.

    >>> from wassembed.data import make_ground_cost
    >>> solver = ExactSolver(make_ground_cost(grid=(1, 3), p=2))
    >>> solver.solve(np.array([1.0, 0, 0]), np.array([0, 0, 1.0]))
    4.0

    The same on the grid path (given the pixel coordinates):

    >>> coords = np.array([[0, 0], [0, 1], [0, 2]])
    >>> ExactSolver(coords=coords, method="grid").solve(np.array([1.0, 0, 0]), np.array([0, 0, 1.0]))
    4.0
    """

    def __init__(self, M: ArrayLike | None = None, p: int = 2, *, coords: ArrayLike | None = None,
                 method: str = "auto", num_iter_max: int = DEFAULT_NUM_ITER_MAX):
        if method not in METHODS:
            raise InputError(explain("unknown method", expected=" or ".join(repr(m) for m in METHODS),
                                     received=repr(method), fix='pass method="auto"'))
        self.p = parse_p(p)
        self.method = method
        self.num_iter_max = int(num_iter_max)
        self.coords = None if coords is None else np.asarray(coords, dtype=np.float64)
        if M is None and self.coords is None:
            raise InputError(explain("no support", expected="a ground cost M (k, k) or coordinates coords (k, d)",
                                     received="neither", fix="pass HistogramSet.ground_cost(p) or "
                                                             "HistogramSet.support_coords()"))
        if M is not None:
            M = np.asarray(M, dtype=np.float64)
            if M.ndim != 2 or M.shape[0] != M.shape[1] or (self.coords is not None and M.shape[0] != len(self.coords)):
                raise InputError(explain("bad ground cost", expected="a square (k, k) matrix matching coords",
                                         received=f"shape {M.shape}", fix="pass HistogramSet.ground_cost(p)"))
            M = np.ascontiguousarray(M)
        self.M = M
        self.grid = self._grid_solver()

    @classmethod
    def for_support(cls, *, grid: tuple[int, int] | None = None, coords: ArrayLike | None = None,
                    cost: ArrayLike | None = None, p: int = 2, method: str = "auto",
                    num_iter_max: int = DEFAULT_NUM_ITER_MAX) -> ExactSolver:
        """The solver of a support given as a :class:`~wassembed.data.HistogramSet` gives it (one of ``grid``,
        ``coords`` or ``cost``): the grid path where it applies, with the full ground cost for POT's rows
        unless the support is too large for one (more than 4,096 bins: those rows take their costs from the
        coordinates).

        Examples
        --------
        >>> s = ExactSolver.for_support(grid=(1, 3))
        >>> s.grid is not None, s.solve(np.array([1.0, 0, 0]), np.array([0, 0, 1.0]))
        (True, 4.0)
        """
        from ..data import make_ground_cost

        if cost is not None:
            return cls(cost, p, method=method, num_iter_max=num_iter_max)
        xy = coords if grid is None else np.stack(np.divmod(np.arange(grid[0] * grid[1]), grid[1]), axis=1)
        k = len(xy) if xy is not None else 0
        M = make_ground_cost(grid=grid, coords=coords, p=p) if k <= _FULL_COST_MAX_BINS else None
        return cls(M, p, coords=xy, method=method, num_iter_max=num_iter_max)

    def _grid_solver(self) -> GridSolver | None:
        """The grid path's solver, or None (raises for ``method="grid"`` when it cannot exist)."""
        lattice = None if self.coords is None else lattice_coords(self.coords)
        problem = None
        if self.method == "pot":
            return None
        if lattice is None:
            problem = "2-D integer coordinates (a pixel grid)", "no coordinates" if self.coords is None else \
                f"coordinates of shape {self.coords.shape}, not 2-D integers"
        elif self.p != 2:
            problem = "p=2 (W2², a separable cost)", f"p={self.p} (the Euclidean cost is not separable)"
        elif lemon() is None:
            problem = "the min-cost-flow library pylmcf", "it is unavailable (see the warning)"
        if problem is None:
            return GridSolver(lattice)
        if self.method == "grid":
            raise InputError(explain("the grid path does not apply", expected=problem[0], received=problem[1],
                                     fix='use method="auto" (POT where the grid path does not apply)'))
        return None

    @property
    def k(self) -> int:
        """Number of bins."""
        return int(self.M.shape[0] if self.M is not None else self.coords.shape[0])

    def _cost(self, ia: np.ndarray, ib: np.ndarray) -> np.ndarray:
        if self.M is not None:
            return self.M[np.ix_(ia, ib)]
        d = self.coords[ia][:, None, :] - self.coords[ib][None, :, :]
        sq = (d * d).sum(-1)
        return sq if self.p == 2 else np.sqrt(sq)

    def _pot(self, a: np.ndarray, b: np.ndarray, who: str) -> float:
        import ot

        ia = np.flatnonzero(a)
        ib = np.flatnonzero(b)
        # A non-optimal result (iteration limit, infeasible, unbounded) is read from POT's log, not caught as a
        # warning: warnings.catch_warnings is process-wide, so under threads (the served model re-ranks
        # neighbours with exact solves from several threads) it records other threads' warnings as this
        # solve's failure, misses this solve's own, and can leave the warning filters altered for good.
        value, log = ot.emd2(a[ia], b[ib], self._cost(ia, ib), numItermax=self.num_iter_max, center_dual=False,
                             log=True)
        raise_unless_optimal(log, f"exact solve of {who}",
                             fix="raise num_iter_max (ExactSolver(..., num_iter_max=...)) or check that both "
                                 "histograms are finite, nonnegative and sum to 1")
        return float(value)

    def _solve(self, a: np.ndarray, b: np.ndarray, sa: int, sb: int, who: str) -> float:
        """One pair, with the rational scales of its two rows (0: not rational)."""
        if self.grid is not None:
            if sa and sb:
                if self.method == "auto":  # small problems: POT's fixed costs are lower (GRID_ARC_RATIO)
                    ia, ib = np.flatnonzero(a), np.flatnonzero(b)
                    bipartite = ia.size * ib.size
                    if bipartite < GRID_MIN_ARCS or bipartite < GRID_ARC_RATIO * self.grid.arcs(ia, ib)[1]:
                        return self._pot(a, b, who)
                ca, cb = np.rint(a * sa).astype(np.int64), np.rint(b * sb).astype(np.int64)
                total = sa // np.gcd(sa, sb) * sb
                if self.grid.fits(int(total)):
                    return self.grid.solve_counts(ca, cb, what=f"exact solve of {who}")
                problem = f"supplies too large for int64 (total {total})"
            else:
                problem = "weights that are not rationals c/S with integer counts (S ≤ 2**26)"
            if self.method == "grid":
                raise InputError(explain(f"the grid path cannot solve {who} exactly", expected="rational weights "
                                         "c/S of integer counts whose supplies fit int64", received=problem,
                                         fix='use method="auto" (POT solves such pairs)'))
        return self._pot(a, b, who)

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
            If the solver does not report an optimal solution.
        """
        who = f"pair {pair}" if pair is not None else "the pair"
        sa, sb = (int(s) for s in rational_scales(np.stack([a, b]))) if self.grid is not None else (0, 0)
        return self._solve(a, b, sa, sb, who)

    def solve_pairs(self, weights: np.ndarray, i: ArrayLike, j: ArrayLike, *, offset: int = 0,
                    scales: np.ndarray | None = None) -> np.ndarray:
        """Exact values for the pairs ``(weights[i[t]], weights[j[t]])``.

        Parameters
        ----------
        weights : ndarray, shape (n, k)
            Histograms (rows sum to 1).
        i, j : array-like of int, shape (m,)
            Row indices of the pairs.
        offset : int
            Added to ``i``/``j`` in error messages (when ``weights`` is a slice of a larger set).
        scales : ndarray, shape (n,), int64, optional
            :func:`~wassembed.exact.rational_scales` of ``weights`` when already known (computed for the rows
            used otherwise).

        Returns
        -------
        ndarray, shape (m,), float64
        """
        i = np.asarray(i, dtype=np.int64)
        j = np.asarray(j, dtype=np.int64)
        if self.grid is None:
            scales = np.zeros(weights.shape[0], dtype=np.int64)
        elif scales is None:
            rows = np.union1d(i, j)
            scales = np.zeros(weights.shape[0], dtype=np.int64)
            scales[rows] = rational_scales(weights[rows])
        out = np.empty(i.shape[0], dtype=np.float64)
        for t in range(i.shape[0]):
            a, b = int(i[t]), int(j[t])
            out[t] = self._solve(weights[a], weights[b], int(scales[a]), int(scales[b]),
                                 f"pair {(a + offset, b + offset)}")
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
