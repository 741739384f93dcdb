"""Linear optimal transport for point clouds: one exact solve per cloud against a reference cloud.

The point-cloud counterpart of :class:`~wassembed.exact.LinearOT`. The reference is a cloud
:math:`\\sigma = \\sum_{u=1}^{m} a_u \\delta_{y_u}` with uniform weights :math:`a_u = 1/m`, by default a
free-support Wasserstein barycenter of (up to :data:`MAX_FIT_CLOUDS`) fitted clouds
(``ot.lp.free_support_barycenter``). For each cloud :math:`\\mu_i = \\sum_v w_{iv} \\delta_{x_{iv}}` one exact
problem :math:`\\sigma \\to \\mu_i` (``ot.emd``, squared Euclidean cost) gives a plan :math:`G_i` ``(m, k_i)``
and the barycentric map :math:`T_i(y_u) = \\frac{1}{a_u} \\sum_v G_i[u, v] x_{iv}`; the embedding is

.. math:: e_i = (\\sqrt{a_u}\\, T_i(y_u))_u \\in \\mathbb{R}^{m d}, \\qquad
          W_2^2(\\mu_i, \\mu_j) \\approx \\|e_i - e_j\\|^2 .

Since :math:`\\sum_u a_u T_i(y_u)` is the mean :math:`\\bar x_i` of the cloud, the embedding splits exactly into
the mean and a centred part (:func:`split_mean`): :math:`\\|e_i - e_j\\|^2 = \\|\\bar x_i - \\bar x_j\\|^2 +
\\|e^c_i - e^c_j\\|^2`, as :math:`W_2^2` itself does. The split term
:math:`W_2^2(\\sigma, \\mu_i) - \\|e_i - e_\\sigma\\|^2 \\ge 0` is returned on request, as for histograms.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from ..data import POINT_CLOUDS, PointCloudSet, as_dataset
from ..errors import InputError, explain
from ._solver import DEFAULT_NUM_ITER_MAX, raise_unless_optimal

__all__ = ["MAX_FIT_CLOUDS", "CloudLOT", "split_mean"]

#: most clouds the default reference (a free-support barycenter) is fitted on, evenly spaced
MAX_FIT_CLOUDS = 200


def split_mean(E: np.ndarray, d: int, weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(centred, means)`` of LOT embeddings ``E (n, m d)`` of a reference with weights ``a (m,)`` (uniform
    when None): :math:`\\bar x_i = \\sum_u \\sqrt{a_u} e_{iu}` and :math:`e^c_{iu} = e_{iu} - \\sqrt{a_u} \\bar x_i`.

    Examples
    --------
    >>> E = np.sqrt(0.5) * np.array([[1.0, 1.0, 3.0, 1.0]])  # two reference points of weight 1/2 sent to
    >>> c, m = split_mean(E, 2)                                 # (1, 1) and (3, 1)
    >>> np.round(m, 6).tolist(), np.round(c, 6).tolist()
    ([[2.0, 1.0]], [[-0.707107, -0.0, 0.707107, -0.0]])
    """
    n = E.shape[0]
    m = E.shape[1] // d
    a = np.full(m, 1.0 / m) if weights is None else np.asarray(weights, dtype=np.float64)
    e = E.reshape(n, m, d).astype(np.float64)
    means = (np.sqrt(a)[None, :, None] * e).sum(1)
    centred = e - np.sqrt(a)[None, :, None] * means[:, None, :]
    return centred.reshape(n, m * d), means


class CloudLOT:
    """LOT embeddings of point clouds (see the module docstring).

    Parameters
    ----------
    reference : ndarray (m, d), optional
        The reference points (uniform weights). Default: fitted by :meth:`fit`.
    n_points : int
        ``m``, points of the fitted reference.
    num_iter_max : int
        Network-simplex iteration limit of each solve; reaching it raises
        :class:`~wassembed.errors.SolverError`.
    seed : int
        Seeds the reference's initial points.

    Examples
    --------
    >>> cs = PointCloudSet.from_clouds([np.array([[0.0, 0.0], [1.0, 0.0]]), np.array([[0.0, 2.0], [1.0, 2.0]])])
    >>> lot = CloudLOT(n_points=2).fit(cs)
    >>> E = lot.transform(cs)
    >>> round(float(((E[0] - E[1]) ** 2).sum()), 6)  # a translation by (0, 2): W2² = 4, exactly
    4.0
    """

    def __init__(self, reference: ArrayLike | None = None, *, n_points: int = 64,
                 num_iter_max: int = DEFAULT_NUM_ITER_MAX, seed: int = 0):
        self.n_points, self.num_iter_max, self.seed = int(n_points), int(num_iter_max), int(seed)
        self.reference_ = None
        if reference is not None:
            r = np.asarray(reference, dtype=np.float64)
            if r.ndim != 2 or r.shape[0] < 1 or not np.isfinite(r).all():
                raise InputError(explain("bad LOT reference", expected="finite points (m, d)",
                                         received=f"shape {r.shape}", fix="pass a (m, d) array or call fit"))
            self.reference_ = r

    @property
    def weights(self) -> np.ndarray:
        """The reference's weights ``(m,)`` (uniform)."""
        self._check_fitted()
        return np.full(self.reference_.shape[0], 1.0 / self.reference_.shape[0])

    def _check_fitted(self) -> None:
        if self.reference_ is None:
            raise InputError(explain("CloudLOT has no reference yet", expected="fit(clouds) first or a reference",
                                     received="neither", fix="call .fit(clouds)"))

    def fit(self, clouds: PointCloudSet) -> CloudLOT:
        """Fit the reference (a free-support barycenter of up to :data:`MAX_FIT_CLOUDS` clouds) unless given."""
        import ot

        if self.reference_ is not None:
            return self
        take = np.unique(np.linspace(0, clouds.n - 1, min(clouds.n, MAX_FIT_CLOUDS)).round().astype(np.int64))
        parts = [clouds.cloud(int(i)) for i in take]
        rng = np.random.default_rng(self.seed)
        pts = np.concatenate([p for p, _ in parts])
        start = pts[rng.choice(pts.shape[0], self.n_points, replace=pts.shape[0] < self.n_points)]
        start = start + rng.normal(0.0, 1e-3 * (pts.std() or 1.0), start.shape)  # distinct points
        self.reference_ = ot.lp.free_support_barycenter([p for p, _ in parts], [w for _, w in parts], start,
                                                        numItermax=10)
        return self

    def transform(self, clouds: PointCloudSet, *, return_split: bool = False):
        """LOT embeddings ``(n, m d)`` float64, one exact solve per cloud (and the split terms ``(n,)``)."""
        import ot

        self._check_fitted()
        clouds = as_dataset(clouds, "clouds for CloudLOT", kind=POINT_CLOUDS)
        if clouds.d != self.reference_.shape[1]:
            raise InputError(explain("bad clouds for CloudLOT", expected=f"a PointCloudSet in "
                                     f"{self.reference_.shape[1]} dimensions", received=repr(clouds)[:80],
                                     fix="pass clouds of the reference's dimension"))
        a, y = self.weights, self.reference_
        out = np.empty((clouds.n, a.size * y.shape[1]))
        split = np.empty(clouds.n)
        for i in range(clouds.n):
            x, w = clouds.cloud(i)
            G, log = ot.emd(a, w, ot.dist(y, x), numItermax=self.num_iter_max, center_dual=False, log=True)
            raise_unless_optimal(log, f"exact solve from the LOT reference to cloud {i}",
                                 fix="raise num_iter_max (CloudLOT(..., num_iter_max=...))")
            T = (G @ x) / a[:, None]
            out[i] = (np.sqrt(a)[:, None] * T).ravel()
            split[i] = float((G * ((x[None, :, :] - T[:, None, :]) ** 2).sum(-1)).sum())
        return (out, split) if return_split else out
