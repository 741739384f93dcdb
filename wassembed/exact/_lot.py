"""Linear optimal transport (LOT): one exact solve per histogram, then Euclidean distances.

Fix a reference measure :math:`\\sigma = \\sum_{k=1}^{K} r_k \\delta_{y_k}` (by default the mean of the fitted
histograms, restricted to its bins with mass > 0). For each histogram :math:`\\mu_i = \\sum_j w_{ij}
\\delta_{x_j}` solve one exact problem :math:`\\sigma \\to \\mu_i` with the squared Euclidean cost
:math:`\\|y_k - x_j\\|^2` (restricted to the nonzero bins of both), giving a plan :math:`G_i` of shape
:math:`K \\times k_i`, and take its barycentric projection

.. math:: T_i(y_k) = \\frac{1}{r_k} \\sum_j G_i[k, j]\\, x_j .

The embedding is :math:`e_i = (\\sqrt{r_k}\\, T_i(y_k))_{k}`, flattened to :math:`K d` numbers, and

.. math:: W_2^2(\\mu_i, \\mu_j) \\approx \\|e_i - e_j\\|^2 = \\sum_k r_k \\|T_i(y_k) - T_j(y_k)\\|^2

(Wang et al., IJCV 2013; Moosmüller & Cloninger, 2020). The approximation is exact when the maps compose,
e.g. for translated copies of one shape (a translation of the target does not change the optimal plans, so
:math:`T_j = T_i + t`; each problem is posed relative to the target's first nonzero bin, so translated
copies get the same plan even when the optimum is not unique).

With :math:`e_\\sigma = (\\sqrt{r_k}\\, y_k)_k` the reference's own embedding,

.. math:: W_2^2(\\sigma, \\mu_i) = \\|e_i - e_\\sigma\\|^2
          + \\sum_{k, j} G_i[k, j]\\, \\|x_j - T_i(y_k)\\|^2 ,

so :math:`\\|e_i - e_\\sigma\\|^2` equals :math:`W_2^2(\\sigma, \\mu_i)` exactly when the plan does not split
the mass of a reference point (it is a map, e.g. uniform measures with as many points), and is a lower
bound otherwise; :meth:`LinearOT.transform` can return the second term (the *split* term) per row.

Only ``p = 2`` (W2², squared Euclidean cost between coordinates) is defined; a support given only by a cost
matrix has no coordinates to average and is refused. A solve that is not reported optimal raises
:class:`~wassembed.errors.SolverError`, as in :class:`~wassembed.exact.ExactSolver`.

**Two exact paths**, as for pairs. On 2-D integer coordinates (pixel grids) each problem is solved on the
3-partite graph of :class:`~wassembed.exact.GridSolver` (a fraction of the arcs, integer arithmetic) when the
reference and the histogram are rationals with integer counts (:func:`~wassembed.exact.rational_scales`); the
barycentric map is read from the optimal flow, decomposed proportionally at each intermediate node (any path
decomposition of an optimal flow is an optimal plan). The default reference, the mean, is rounded to
multiples of :math:`2^{-24}` (:func:`dyadic_reference`: exactly representable, so every path sees the same
reference). Elsewhere POT's ``ot.emd`` gives the plan. Optimal plans need not be unique, so the two paths
can give different (equally optimal) maps for one histogram; translated copies get identical problems on
either path.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from .._results import Neighbors
from .._validation import check_pos_int
from ..data import HISTOGRAMS, DataSet, HistogramSet, as_dataset, as_weights, parse_p
from ..errors import InputError, explain
from ._grid import GridSolver, lemon
from ._rational import dyadic_reference, lattice_coords, rational_scales
from ._solver import DEFAULT_NUM_ITER_MAX, GRID_ARC_RATIO, GRID_MIN_ARCS, METHODS, raise_unless_optimal

__all__ = ["LinearOT"]

def _support_coords(support) -> np.ndarray:
    """Coordinates ``(k, d)`` of a HistogramSet's support or of a given array; refuses cost-only supports."""
    if isinstance(support, DataSet):
        support = as_dataset(support, "support", kind=HISTOGRAMS)
        if support.support_kind == "cost":
            raise InputError(explain("linear OT needs bin coordinates", expected="a grid or coords support",
                                     received="a support given only by a (k, k) cost matrix",
                                     fix="LOT averages coordinates (barycentric projection); build the "
                                         "HistogramSet with grid= or coords="))
        return np.asarray(support.support_coords(), dtype=np.float64)
    x = np.asarray(support, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0 or not np.isfinite(x).all():
        raise InputError(explain("bad coordinates for linear OT", expected="a finite (k, d) array",
                                 received=f"shape {x.shape}", fix="one coordinate row per bin, or a HistogramSet"))
    return x


class LinearOT:
    """Linear optimal-transport embedding: :math:`\\|e_i - e_j\\|^2 \\approx W_2^2(\\mu_i, \\mu_j)`.

    Parameters
    ----------
    support : ndarray, shape (k, d), or HistogramSet
        Bin coordinates, or a set whose support gives them (grid: integer pixel positions ``(r, c)``;
        coords: as given). A cost-only support raises :class:`InputError`.
    reference : "mean" or ndarray, shape (k,)
        ``"mean"``: the mean of the histograms passed to :meth:`fit`, rounded by :func:`dyadic_reference`; an
        array: that histogram (normalised). Only its bins with mass > 0 are kept (``K`` of them).
    p : int, default 2
        Transport exponent; only 2 is defined for LOT.
    method : {"auto", "grid", "pot"}
        As for :class:`~wassembed.exact.ExactSolver`: the grid path where it applies (``"auto"``), never
        (``"pot"``), or always (``"grid"``: :class:`InputError` where it cannot).
    num_iter_max : int
        POT's network-simplex iteration limit per solve; reaching it raises :class:`SolverError`.

    Attributes
    ----------
    reference_ : ndarray, shape (K,)
        Reference weights :math:`r_k` on its nonzero bins.
    reference_bins_ : ndarray, shape (K,), int
        Indices of those bins in the support.
    reference_embedding_ : ndarray, shape (K * d,)
        :math:`e_\\sigma = (\\sqrt{r_k} y_k)_k`: :math:`\\|e_i - e_\\sigma\\|^2 \\le W_2^2(\\sigma, \\mu_i)`.
    correction_ : tuple (a, b) or None
        Linear correction applied by :meth:`distance` and :meth:`cdist` (see :meth:`fit_correction`).

    Examples
    --------
    Two Diracs on a 1 × 3 grid, two pixels apart; the reference is their mean.

    >>> w = np.array([[1.0, 0, 0], [0, 0, 1.0]])
    >>> lot = LinearOT(np.array([[0.0], [1.0], [2.0]])).fit(w)
    >>> e = lot.transform(w)
    >>> e.shape
    (2, 2)
    >>> round(float(lot.distance(e[0], e[1])), 12)  # W2² = 2²
    4.0
    """

    def __init__(self, support: ArrayLike | HistogramSet, reference: str | ArrayLike = "mean", *, p: int = 2,
                 method: str = "auto", num_iter_max: int = DEFAULT_NUM_ITER_MAX):
        if parse_p(p) != 2:
            raise InputError(explain("linear OT is defined for p=2 only", expected="p=2 (W2²)",
                                     received=f"p={p}", fix="use p=2, or ExactSolver for W1"))
        if method not in METHODS:
            raise InputError(explain("unknown method", expected=" or ".join(repr(m) for m in METHODS),
                                     received=repr(method), fix='pass method="auto"'))
        self.coords = _support_coords(support)
        self.method = method
        self.num_iter_max = int(num_iter_max)
        lattice = lattice_coords(self.coords) if method != "pot" else None
        self._grid = GridSolver(lattice) if lattice is not None and lemon() is not None else None
        if method == "grid" and self._grid is None:
            raise InputError(explain("the grid path does not apply", expected="2-D integer coordinates and the "
                                     "min-cost-flow library pylmcf", received=f"coordinates of shape "
                                     f"{self.coords.shape}" + ("" if lattice is not None else ", not 2-D integers"),
                                     fix='use method="auto"'))
        self.correction_ = None
        self.reference_ = None
        if isinstance(reference, str):
            if reference != "mean":
                raise InputError(explain("unknown reference", expected='"mean" or a histogram of shape (k,)',
                                         received=repr(reference), fix='pass reference="mean"'))
            self.reference = "mean"
        else:
            r = np.asarray(reference)
            if r.ndim != 1:
                raise InputError(explain("bad reference histogram", expected=f"shape ({self.k},)",
                                         received=f"shape {r.shape}", fix="pass one histogram on the support"))
            self.reference = as_weights(r[None], what="reference", k=self.k)[0][0]
            self._set_reference(self.reference)

    @property
    def k(self) -> int:
        """Number of bins of the support."""
        return int(self.coords.shape[0])

    @property
    def dim(self) -> int:
        """Embedding length ``K * d`` (after fitting)."""
        self._check_fitted()
        return int(self.reference_.size * self.coords.shape[1])

    def _weights(self, X, what: str) -> np.ndarray:
        if isinstance(X, DataSet):
            X = as_dataset(X, what, kind=HISTOGRAMS).weights
        arr = np.asarray(X)
        if arr.ndim != 2 or arr.shape[1] != self.k:
            raise InputError(explain(f"{what} do not match the support", expected=f"histograms of shape (n, {self.k})",
                                     received=f"shape {arr.shape}", fix="pass histograms on the same support"))
        return as_weights(arr, what=what, k=self.k)[0]

    def _set_reference(self, r: np.ndarray) -> None:
        bins = np.flatnonzero(r > 0)
        self.reference_bins_ = bins
        self.reference_ = r[bins]
        self._y = self.coords[bins]
        self.reference_embedding_ = (np.sqrt(self.reference_)[:, None] * self._y).ravel()
        scale = int(rational_scales(r)) if self._grid is not None else 0
        self._ref_counts = np.rint(r * scale).astype(np.int64) if scale else None

    def _check_fitted(self) -> None:
        if self.reference_ is None:
            raise InputError(explain("LinearOT has no reference yet", expected="fit(weights) first",
                                     received='reference="mean" and no fit', fix="call .fit(weights)"))

    def fit(self, weights: ArrayLike | HistogramSet) -> LinearOT:
        """Set the reference (the mean of ``weights`` when ``reference="mean"``) and return self.

        Parameters
        ----------
        weights : ndarray, shape (n, k), or HistogramSet
            Histograms on the support.
        """
        w = self._weights(weights, "fit weights")
        if isinstance(self.reference, str):
            self._set_reference(dyadic_reference(w.mean(axis=0)))
        return self

    def _grid_pays(self, b: np.ndarray) -> bool:
        """Whether the grid path is taken for ``b`` (always with ``method="grid"``; by problem size with
        ``"auto"``, as for pairs: :data:`~wassembed.exact._solver.GRID_ARC_RATIO`)."""
        if self.method == "grid":
            return True
        ib = np.flatnonzero(b)
        bipartite = self.reference_bins_.size * ib.size
        return bipartite >= GRID_MIN_ARCS and bipartite >= GRID_ARC_RATIO * self._grid.arcs(self.reference_bins_,
                                                                                             ib)[1]

    def _solve_one(self, b: np.ndarray, row: int, scale: int = 0) -> tuple[np.ndarray, float]:
        """Embedding ``(K * d,)`` of one histogram and its split term (mass spread around T(y_k)).

        ``scale`` is the histogram's :func:`rational_scales` (0: not rational, POT solves it).
        """
        what = f"exact solve from the LOT reference to row {row}"
        if self._ref_counts is not None and scale and self._grid_pays(b):
            counts = np.rint(b * scale).astype(np.int64)
            total = scale // np.gcd(scale, int(self._ref_counts.sum())) * int(self._ref_counts.sum())
            if self._grid.fits(int(total)):
                _, T = self._grid.barycentric_map(self._ref_counts, counts, what=what)
                ib = np.flatnonzero(b)
                x, wb = self.coords[ib], b[ib]
                m = wb @ x  # Σ_kj G_kj ‖x_j − T_k‖² = Σ_j b_j ‖x_j − m‖² − Σ_k r_k ‖T_k − m‖² (any centre m)
                split = float(wb @ ((x - m) ** 2).sum(-1) - self.reference_ @ ((T - m) ** 2).sum(-1))
                return (np.sqrt(self.reference_)[:, None] * T).ravel(), max(split, 0.0)
        if self.method == "grid":
            raise InputError(explain(f"the grid path cannot solve row {row} exactly", expected="a reference and "
                                     "histograms that are rationals c/S of integer counts, supplies within int64",
                                     received="weights that are not, or too large supplies",
                                     fix='use method="auto" (POT solves them)'))
        import ot

        ib = np.flatnonzero(b)
        x = self.coords[ib]
        # Cost ‖y_k − (x_j − x_0)‖², x_0 the first nonzero bin: it differs from ‖y_k − x_j‖² by row and column
        # constants only (same optimal plans), and translated copies of one shape get bit-identical problems,
        # hence the same plan even when the optimum is not unique (common on integer grids).
        M = ((self._y[:, None, :] - (x - x[0])[None, :, :]) ** 2).sum(-1)
        G, log = ot.emd(self.reference_, b[ib], M, numItermax=self.num_iter_max, center_dual=False, log=True)
        raise_unless_optimal(log, what,
                             fix="raise num_iter_max (LinearOT(..., num_iter_max=...)) or check that the "
                                 "histograms are finite, nonnegative and sum to 1")
        T = (G @ x) / self.reference_[:, None]
        split = float((G * ((x[None, :, :] - T[:, None, :]) ** 2).sum(-1)).sum())
        return (np.sqrt(self.reference_)[:, None] * T).ravel(), split

    def transform(self, weights: ArrayLike | HistogramSet, *, return_split: bool = False):
        """LOT embeddings, one exact solve per row.

        Parameters
        ----------
        weights : ndarray, shape (n, k), or HistogramSet
            Histograms on the support.
        return_split : bool
            Also return the split terms ``(n,)``: :math:`\\|e_i - e_\\sigma\\|^2 + \\text{split}_i
            = W_2^2(\\sigma, \\mu_i)`.

        Returns
        -------
        ndarray, shape (n, K * d), float64
            (and the split terms, shape (n,), when ``return_split``)

        Raises
        ------
        SolverError
            If POT does not report an optimal solution for a row.
        """
        self._check_fitted()
        w = self._weights(weights, "weights")
        out = np.empty((w.shape[0], self.dim), dtype=np.float64)
        split = np.empty(w.shape[0], dtype=np.float64)
        scales = rational_scales(w) if self._ref_counts is not None else np.zeros(w.shape[0], dtype=np.int64)
        for t in range(w.shape[0]):
            out[t], split[t] = self._solve_one(w[t], t, int(scales[t]))
        return (out, split) if return_split else out

    def _correct(self, d: np.ndarray) -> np.ndarray:
        if self.correction_ is None:
            return d
        a, b = self.correction_
        return a * d + b

    def distance(self, ea: ArrayLike, eb: ArrayLike) -> np.ndarray:
        """Paired squared Euclidean distances ``‖ea[t] − eb[t]‖²`` (corrected once :meth:`fit_correction` ran).

        Parameters
        ----------
        ea, eb : ndarray, shape (m, K * d) or (K * d,)

        Returns
        -------
        ndarray, shape (m,) (or a scalar array for single embeddings)
        """
        ea = np.asarray(ea, dtype=np.float64)
        eb = np.asarray(eb, dtype=np.float64)
        if ea.shape != eb.shape or ea.shape[-1:] != (self.dim,):
            raise InputError(explain("embeddings do not match", expected=f"two arrays of equal shape (m, {self.dim})",
                                     received=f"shapes {ea.shape} and {eb.shape}", fix="pass outputs of transform"))
        return self._correct(((ea - eb) ** 2).sum(-1))

    def cdist(self, EA: ArrayLike, EB: ArrayLike) -> np.ndarray:
        """All squared Euclidean distances between rows of ``EA`` ``(m, K*d)`` and ``EB`` ``(l, K*d)``: ``(m, l)``.

        Corrected once :meth:`fit_correction` ran; uncorrected values are clipped at 0 (rounding).
        """
        EA = np.asarray(EA, dtype=np.float64)
        EB = np.asarray(EB, dtype=np.float64)
        if EA.ndim != 2 or EB.ndim != 2 or EA.shape[1] != self.dim or EB.shape[1] != self.dim:
            raise InputError(explain("embeddings do not match", expected=f"arrays of shape (m, {self.dim})",
                                     received=f"shapes {EA.shape} and {EB.shape}", fix="pass outputs of transform"))
        d = (EA ** 2).sum(1)[:, None] + (EB ** 2).sum(1)[None, :] - 2.0 * EA @ EB.T
        return self._correct(np.maximum(d, 0.0))

    def fit_correction(self, e: ArrayLike, i: ArrayLike, j: ArrayLike, exact_values: ArrayLike) -> LinearOT:
        """Fit :math:`W_2^2 \\approx a\\, \\|e_i - e_j\\|^2 + b` by least squares on exact training pairs.

        Parameters
        ----------
        e : ndarray, shape (n, K * d)
            Embeddings (from :meth:`transform`).
        i, j : array-like of int, shape (m,)
            Row indices of the training pairs (m ≥ 2).
        exact_values : array-like, shape (m,)
            Exact :math:`W_2^2` of those pairs (e.g. ``ExactSolver.solve_pairs``).

        Returns
        -------
        self, with ``correction_ = (a, b)``
        """
        e = np.asarray(e, dtype=np.float64)
        i = np.asarray(i, dtype=np.int64)
        j = np.asarray(j, dtype=np.int64)
        y = np.asarray(exact_values, dtype=np.float64)
        if i.shape != j.shape or i.shape != y.shape or i.ndim != 1 or i.size < 2:
            raise InputError(explain("bad correction pairs", expected="i, j, exact_values of equal shape (m,), m ≥ 2",
                                     received=f"shapes {i.shape}, {j.shape}, {y.shape}",
                                     fix="one exact value per pair"))
        if not np.isfinite(y).all():
            raise InputError(explain("exact values are not finite", expected="finite W2² values",
                                     received="NaN or inf", fix="drop those pairs"))
        saved, self.correction_ = self.correction_, None
        try:
            d = self.distance(e[i], e[j])
        finally:
            self.correction_ = saved
        A = np.stack([d, np.ones_like(d)], axis=1)
        (a, b), *_ = np.linalg.lstsq(A, y, rcond=None)
        self.correction_ = (float(a), float(b))
        return self

    def kneighbors(self, EQ: ArrayLike, ER: ArrayLike, k: int = 10, *, tile_size: int = 4096) -> Neighbors:
        """The ``k`` nearest rows of ``ER`` to each row of ``EQ`` in LOT distance (tiles of queries, GEMM each).

        Parameters
        ----------
        EQ : ndarray, shape (m, K * d)
            Query embeddings (from :meth:`transform`).
        ER : ndarray, shape (l, K * d)
            Reference embeddings.
        k : int
            Neighbours per query (at most ``l``).
        tile_size : int
            Queries per tile: memory is ``tile_size × l`` distances, never ``m × l``.

        Returns
        -------
        Neighbors
            Unpacks as ``distances, indices`` (scikit-learn's order): ``distances (m, k)`` estimated
            :math:`W_2^2` (corrected once :meth:`fit_correction` ran), ascending; ``indices (m, k)`` int64 rows
            of ``ER``.

        Examples
        --------
        >>> lot = LinearOT(np.array([[0.0], [1.0], [2.0]])).fit(np.eye(3))
        >>> E = lot.transform(np.eye(3))
        >>> lot.kneighbors(E[:1], E, k=2).indices.tolist()
        [[0, 1]]
        """
        EQ = np.asarray(EQ, dtype=np.float64)
        ER = np.asarray(ER, dtype=np.float64)
        if not 1 <= int(k) <= ER.shape[0]:
            raise InputError(explain("bad k", expected=f"1 ≤ k ≤ {ER.shape[0]} (the references)", received=str(k),
                                     fix="ask for fewer neighbours"))
        k, tile = int(k), check_pos_int("tile_size", tile_size)
        dist = np.empty((EQ.shape[0], k))
        idx = np.empty((EQ.shape[0], k), dtype=np.int64)
        for s in range(0, EQ.shape[0], tile):
            d = self.cdist(EQ[s:s + tile], ER)
            part = np.argpartition(d, k - 1, axis=1)[:, :k]
            order = np.take_along_axis(d, part, 1).argsort(1, kind="stable")
            idx[s:s + tile] = np.take_along_axis(part, order, 1)
            dist[s:s + tile] = np.take_along_axis(d, idx[s:s + tile], 1)
        return Neighbors(dist, idx)
