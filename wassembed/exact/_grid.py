"""Exact transport on integer 2-D coordinates with a separable cost: a 3-partite network simplex.

For bins at integer coordinates :math:`x = (u, v)` and a cost that is a sum over the two axes,
:math:`c(x, y) = f(u_x - u_y) + f(v_x - v_y)` (``f(t) = t^2``: W2² on a pixel grid; ``f(t) = |t|``: W1 with
the L1 cost), the optimal transport cost between histograms :math:`a` and :math:`b` equals the min-cost flow
on a 3-partite graph (Auricchio, Bassetti, Gualandi & Veneroni, NeurIPS 2018):

.. math:: (u, v) \\xrightarrow{\\; f(u - u') \\;} (u', v) \\xrightarrow{\\; f(v - v') \\;} (u', v') ,

sources = the bins of :math:`a`, sinks = the bins of :math:`b`, and one intermediate node per pair of a row
:math:`u'` of :math:`b` and a column :math:`v` of :math:`a`. A path from :math:`x` to :math:`y` costs exactly
:math:`c(x, y)` and every flow decomposes into such paths, so both problems have the same optimal value, and
any path decomposition of an optimal flow is an optimal transport plan. The graph has
:math:`n_a |U_b| + n_b |V_a|` arcs instead of :math:`n_a n_b` (``U_b`` the rows of ``b``, ``V_a`` the columns
of ``a``): on MNIST digits ~4,400 instead of ~20,000. Rows first or columns first, whichever gives fewer arcs.

**Exact in integers.** The network simplex (LEMON's, from the ``pylmcf`` package) runs on integer supplies
and costs. Histograms whose weights are rationals :math:`a = c_a / S_a` with integer counts (images of
integer pixel values, counts; found by :func:`rational_scales`) get supplies :math:`c_a S_b / g` and
:math:`c_b S_a / g` (:math:`g = \\gcd(S_a, S_b)`), total :math:`T = S_a S_b / g`; the integer optimum divided by
:math:`T` is the exact value, rounded once to float64. Every quantity is checked against int64 before any
work (:meth:`GridSolver.fits`), so overflow cannot happen: a pair whose supplies would not fit is left to POT
by :class:`~wassembed.exact.ExactSolver`, or refused with :class:`~wassembed.errors.InputError` when the grid
path was asked for explicitly. Weights that are not such rationals are never rounded: POT solves them.

A solve that LEMON does not report optimal raises :class:`~wassembed.errors.SolverError`. If ``pylmcf`` is not
installed or fails its self-test, :func:`lemon` warns once and returns None: callers then use POT.
"""

from __future__ import annotations

import warnings
from math import gcd

import numpy as np
from numpy.typing import ArrayLike

from ..errors import InputError, SolverError, WassembedWarning, explain
from ._rational import lattice_coords

__all__ = ["AXIS_COSTS", "GridSolver", "MinCostFlowWarning", "lemon"]

#: the separable costs offered: per-axis function of the integer coordinate difference
AXIS_COSTS = {"sqeuclidean": np.square, "cityblock": np.abs}

#: largest total supply and largest objective: LEMON's network simplex works in int64 with artificial arcs
#: costing 2**62; keeping flows, costs, potentials and the objective below 2**62 leaves a factor of 2 of headroom
_LIMIT = 1 << 62

_LEMON: list = []  # [module or None], filled on first use


class MinCostFlowWarning(WassembedWarning):
    """The min-cost-flow library is missing or broken: exact solves fall back to POT (same values, slower)."""


def lemon():
    """The ``pylmcf`` module once it has passed a self-test, or None (after one :class:`MinCostFlowWarning`).

    The self-test solves a small problem with a known optimum; a library that imports but answers wrongly
    is never used.
    """
    if not _LEMON:
        _LEMON.append(_load_lemon())
    return _LEMON[0]


def _load_lemon():
    try:
        import pylmcf

        # 2 units from node 0 to node 3: via 1 (cost 1 + 1) or via 2 (cost 5 + 0), capacity 1 on 0 -> 1
        g = pylmcf.Graph(4, np.array([0, 0, 1, 2], np.int32), np.array([1, 2, 3, 3], np.int32))
        g.set_node_supply(np.array([2, 0, 0, -2], np.int64))
        g.set_edge_capacities(np.array([1, 5, 5, 5], np.int64))
        g.set_edge_costs(np.array([1, 5, 1, 0], np.int64))
        g.solve()
        if int(g.total_cost()) != 7 or g.result().tolist() != [1, 1, 1, 1]:
            raise RuntimeError(f"self-test: cost {g.total_cost()} instead of 7")
        return pylmcf
    except Exception as exc:  # not installed, no wheel for this platform, or a broken build
        warnings.warn(f"the min-cost-flow library pylmcf is unavailable ({type(exc).__name__}: {exc}); exact "
                      "solves on grids use POT instead (same values, slower); fix: pip install 'pylmcf>=1.3'",
                      MinCostFlowWarning, stacklevel=3)
        return None


class GridSolver:
    """Exact optimal transport between integer histograms on 2-D integer coordinates (separable cost).

    Parameters
    ----------
    coords : ndarray, shape (k, 2)
        Integer coordinates of the bins (``HistogramSet.support_coords()`` of a grid: ``(row, column)``).
    axis_cost : {"sqeuclidean", "cityblock"}
        :math:`f` per axis: :math:`c(x, y) = \\|x - y\\|^2` (W2², the default) or :math:`\\|x - y\\|_1` (W1, L1
        cost).

    Raises
    ------
    InputError
        Coordinates that are not 2-D integers, or a support so large that even one unit of mass per bin
        could overflow LEMON's int64 potentials (a grid side beyond ~29,000).

    Examples
    --------
    Two pixels of a 3 × 3 grid, one at (0, 0), one at (2, 1): :math:`W_2^2 = 2^2 + 1^2`.

    >>> coords = np.stack(np.divmod(np.arange(9), 3), axis=1)
    >>> GridSolver(coords).solve_counts(np.eye(9, dtype=np.int64)[0], np.eye(9, dtype=np.int64)[7])
    5.0
    """

    def __init__(self, coords: ArrayLike, *, axis_cost: str = "sqeuclidean"):
        x = lattice_coords(coords)
        if x is None:
            raise InputError(explain("the grid solver needs 2-D integer coordinates", expected="an integer (k, 2) "
                                     "array, e.g. pixel positions", received=f"shape {np.shape(coords)}",
                                     fix="use ExactSolver (POT) for other supports"))
        if axis_cost not in AXIS_COSTS:
            raise InputError(explain("unknown axis_cost", expected=" or ".join(AXIS_COSTS), received=repr(axis_cost),
                                     fix='pass axis_cost="sqeuclidean" (W2²)'))
        self.coords = np.ascontiguousarray(x)
        self.axis_cost = axis_cost
        self._f = AXIS_COSTS[axis_cost]
        low = self.coords.min(axis=0)
        span = self.coords.max(axis=0) - low
        self.max_cost = int(self._f(span).sum())
        self._low = low
        self._idx = self.coords - low  # coordinates from 0: the graph's tables are indexed by them
        # W2² problems are solved with the target translated by at most the span (centroids aligned), so arcs
        # cost at most f(2 span) per axis; LEMON's potentials are sums of arc costs along tree paths
        self._shifted = axis_cost == "sqeuclidean"
        self._arc_cost_max = int(self._f(2 * span).sum()) if self._shifted else self.max_cost
        nodes = 3 * self.coords.shape[0]
        if (self._arc_cost_max + 1) * nodes >= _LIMIT:
            raise InputError(explain("grid too large for exact integer arithmetic",
                                     expected="(largest arc cost + 1) × 3 × bins < 2**62", received=f"largest arc "
                                     f"cost {self._arc_cost_max} on {self.coords.shape[0]} bins",
                                     fix="resample the images to a smaller grid, or solve with POT "
                                         "(ExactSolver(..., method='pot'))"))

    @property
    def k(self) -> int:
        """Number of bins."""
        return int(self.coords.shape[0])

    def fits(self, total: int) -> bool:
        """Whether a problem with this total supply keeps its flows within int64 (the objective is summed in
        Python's integers when it could overflow)."""
        return 0 < total < _LIMIT

    # -- the graph --------------------------------------------------------------------------------------
    def _graph(self, src: np.ndarray, sup: np.ndarray, dst: np.ndarray, dem: np.ndarray, axis: int,
               shift: np.ndarray | None = None):
        """Arrays of the 3-partite graph from bins ``src`` (supplies ``sup``) to bins ``dst`` (demands ``dem``).

        The first layer moves along ``axis`` (0: rows first). ``shift`` (2,), integers, is subtracted from the
        sinks' coordinates in the costs (an equivalent problem: see :meth:`barycentric_map`). Sinks are renumbered
        in order of their coordinate along ``axis``. Returns the arcs (sorted by start, then end, as LEMON's static
        graph wants them), their costs, the supplies, and what the barycentric map needs.
        """
        ps, pt = self._idx[src], self._idx[dst]
        us, vs = ps[:, axis], ps[:, 1 - axis]
        if shift is not None:  # moving the sources by +shift is moving the sinks by -shift: costs see differences
            us, vs = us + shift[axis], vs + shift[1 - axis]
        order = np.argsort(pt[:, axis], kind="stable")
        ut, vt, dem = pt[order, axis], pt[order, 1 - axis], dem[order]
        # the rows of the sinks and the columns of the sources present: integers, one table each
        mark = np.zeros(int(ut[-1]) + 1, dtype=np.int32)
        mark[ut] = 1
        U, upos = np.flatnonzero(mark), (np.cumsum(mark) - 1)[ut]
        low = int(vs.min())
        mark = np.zeros(int(vs.max()) - low + 1, dtype=np.int32)
        mark[vs - low] = 1
        V, vpos = np.flatnonzero(mark) + low, (np.cumsum(mark) - 1)[vs - low]
        na, nb, nu, nv = src.size, dst.size, U.size, V.size
        mids = nu * nv
        f = self._f
        # layer 1: source s -> mid (U[q], vs[s]) for every q; ends increase with q for each s (sorted arcs)
        s1 = np.repeat(np.arange(na, dtype=np.int32), nu)
        e1 = (na + (np.arange(nu, dtype=np.int32) * nv)[None, :] + vpos[:, None].astype(np.int32)).ravel()
        c1 = f(us[:, None] - U[None, :]).ravel()
        # layer 2: mid (U[q], V[m]) -> every sink of row U[q]; mids in id order, their sinks consecutive
        g = np.bincount(upos, minlength=nu)
        sizes = np.repeat(g, nv)
        mid = np.repeat(np.arange(mids, dtype=np.int32), sizes)
        first = np.repeat(np.cumsum(g) - g, nv)  # first sink (in sorted order) of each mid's row
        sink = (np.arange(mid.size, dtype=np.int32) - np.repeat((np.cumsum(sizes) - sizes).astype(np.int32), sizes)
                + np.repeat(first.astype(np.int32), sizes))
        c2 = f(V[mid % nv] - vt[sink])
        starts = np.concatenate([s1, na + mid])
        ends = np.concatenate([e1, (na + mids) + sink])
        costs = np.concatenate([c1, c2]).astype(np.int64)
        supply = np.zeros(na + mids + nb, dtype=np.int64)
        supply[:na] = sup
        supply[na + mids:] = -dem
        return starts, ends, costs, supply, (na, nu, nv, U, vpos, vt, mid, sink, s1.size)

    def _solve(self, starts, ends, costs, supply, total: int, what: str):
        pylmcf = lemon()
        if pylmcf is None:
            raise SolverError(explain(f"{what}: the grid solver needs pylmcf", expected="pylmcf installed",
                                      received="it is unavailable (see the warning)",
                                      fix="pip install 'pylmcf>=1.3', or use ExactSolver(..., method='pot')"))
        g = pylmcf.Graph(int(supply.size), starts, ends)
        g.set_node_supply(supply)
        g.set_edge_capacities(np.full(starts.size, total, dtype=np.int64))
        g.set_edge_costs(costs)
        try:
            g.solve()
        except RuntimeError as exc:  # LEMON reports INFEASIBLE or UNBOUNDED: never a value
            raise SolverError(explain(f"{what} did not reach optimality", expected="an optimal network-simplex "
                                      "solution", received=str(exc), fix="check that both histograms are finite, "
                                      "nonnegative and of equal mass")) from None
        return g

    def _check_total(self, total: int, what: str) -> None:
        if not self.fits(total):
            raise InputError(explain(f"{what}: supplies too large for exact integer arithmetic",
                                     expected="a total supply S_a S_b / gcd(S_a, S_b) < 2**62",
                                     received=f"total supply {total}",
                                     fix="use method='auto', which solves such pairs with POT"))

    def _centroid(self, bins: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """floor(centroid + 1/2) of integer counts on ``bins``, per axis, in exact integer arithmetic."""
        total = int(counts.sum())
        x = self._idx[bins]
        return np.array([(2 * int(counts @ x[:, d]) + total) // (2 * total) for d in (0, 1)], dtype=np.int64)

    def arcs(self, src: np.ndarray, dst: np.ndarray) -> tuple[int, int]:
        """``(axis, arcs)``: the orientation with fewer arcs (0: rows first) and its number of arcs, for the
        problem from bins ``src`` to bins ``dst`` (the bipartite problem has ``src.size * dst.size``)."""
        ps, pt = self._idx[src], self._idx[dst]
        n = [np.count_nonzero(np.bincount(x)) for x in (ps[:, 0], ps[:, 1], pt[:, 0], pt[:, 1])]
        rows_first, cols_first = src.size * n[2] + dst.size * n[1], src.size * n[3] + dst.size * n[0]
        return (0, rows_first) if rows_first <= cols_first else (1, cols_first)

    def _axis(self, src, dst) -> int:
        return self.arcs(src, dst)[0]

    # -- public solves ----------------------------------------------------------------------------------
    def supplies(self, ca: np.ndarray, cb: np.ndarray):
        """``(bins of a, supplies, bins of b, demands, total)`` for integer count vectors ``ca``, ``cb``."""
        ia = np.flatnonzero(ca)
        ib = np.flatnonzero(cb)
        sa, sb = int(ca[ia].sum()), int(cb[ib].sum())
        g = gcd(sa, sb)
        return ia, ca[ia] * (sb // g), ib, cb[ib] * (sa // g), sa // g * sb

    def solve_counts(self, ca: ArrayLike, cb: ArrayLike, *, what: str = "exact solve of the pair") -> float:
        """Exact optimal cost between the histograms ``ca / ca.sum()`` and ``cb / cb.sum()``.

        Parameters
        ----------
        ca, cb : ndarray, shape (k,), integer
            Nonnegative counts, each with a positive sum.
        what : str
            Names the solve in error messages.

        Returns
        -------
        float
            The optimal cost, correctly rounded from the exact rational value.

        Raises
        ------
        InputError
            Counts whose supplies would overflow int64 (see :meth:`fits`).
        SolverError
            If LEMON does not report an optimal solution.
        """
        ca = np.asarray(ca, dtype=np.int64)
        cb = np.asarray(cb, dtype=np.int64)
        ia, sa, ib, sb, total = self.supplies(ca, cb)
        self._check_total(total, what)
        axis = self._axis(ia, ib)
        # W2²: b translated to a's centroid, an equivalent problem (costs change by 2 s·(x − y) + ‖s‖² per unit,
        # whose total is fixed by the supplies) on which the network simplex runs faster (Fashion-MNIST: ~10 %)
        shift = self._centroid(ib, cb[ib]) - self._centroid(ia, ca[ia]) if self._shifted else None
        starts, ends, costs, supply, _ = self._graph(ia, sa, ib, sb, axis, shift)
        g = self._solve(starts, ends, costs, supply, total, what)
        if total * (int(costs.max()) + 1) < _LIMIT:
            cost = int(g.total_cost())
        else:  # the objective could overflow int64: summed exactly in Python's integers
            flow = g.result()
            nz = np.flatnonzero(flow)
            cost = sum(int(f) * int(c) for f, c in zip(flow[nz], costs[nz]))
        if shift is not None:
            exact = object if total * (int(self._idx.max()) + 1) >= _LIMIT else np.int64  # no int64 overflow
            moved = self._idx[ia].T.astype(exact) @ sa.astype(exact) - self._idx[ib].T.astype(exact) @ sb.astype(
                exact)  # Σ supply·x − Σ demand·y, per axis
            cost -= sum(2 * int(shift[d]) * int(moved[d]) + int(shift[d]) ** 2 * total for d in (0, 1))
        return cost / total  # Python's int / int: correctly rounded

    def barycentric_map(self, cr: ArrayLike, cb: ArrayLike, *, what: str = "exact solve from the reference"):
        """Barycentric projection of an optimal plan from ``cr`` (the reference) to ``cb``.

        The optimal flow is decomposed proportionally at each intermediate node (any path decomposition of an
        optimal flow is an optimal plan). The problem is posed with the target translated so that its centroid
        (rounded down from exact integer sums) meets the reference's: the costs then differ from the original
        ones by constants per source, per sink, per row of intermediate nodes (their total inflow is the
        target's mass in that row) and per column (their total outflow is the reference's mass in that column),
        so the optimal flows are the same, and translated copies of one target get identical problems, hence
        identical plans. (Aligned centroids also keep the network simplex as fast as on the original costs.)

        Parameters
        ----------
        cr, cb : ndarray, shape (k,), integer
            Counts of the reference and of the target.

        Returns
        -------
        bins : ndarray, shape (K,), int64
            The reference's nonzero bins.
        T : ndarray, shape (K, 2), float64
            :math:`T(y_k) = \\frac{1}{r_k} \\sum_j G[k, j]\\, x_j` for each of them.
        """
        cr = np.asarray(cr, dtype=np.int64)
        cb = np.asarray(cb, dtype=np.int64)
        ir, sr, ib, sb, total = self.supplies(cr, cb)
        self._check_total(total, what)
        rel = self._centroid(ib, cb[ib]) - self._centroid(ir, cr[ir])
        axis = self._axis(ir, ib)
        starts, ends, costs, supply, (na, nu, nv, U, vpos, vt, mid, sink, n1) = self._graph(
            ir, sr, ib, sb, axis, rel)
        flow = self._solve(starts, ends, costs, supply, total, what).result().astype(np.float64)
        f1 = flow[:n1].reshape(na, nu)  # source k -> mid (U[q], column of k)
        out = np.bincount(mid, weights=flow[n1:], minlength=nu * nv)
        vsum = np.bincount(mid, weights=flow[n1:] * vt[sink], minlength=nu * nv)
        vmean = np.divide(vsum, out, out=np.zeros_like(vsum), where=out > 0)
        mass = f1.sum(axis=1)
        T = np.empty((na, 2))
        T[:, axis] = f1 @ U / mass
        T[:, 1 - axis] = (f1 * vmean[(np.arange(nu) * nv)[None, :] + vpos[:, None]]).sum(axis=1) / mass
        return ir, T + self._low
