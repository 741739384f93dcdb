"""The result of every nearest-neighbour query of the package (numpy only: the exact stage returns it too).

:class:`Neighbors` is what :meth:`WassersteinEmbedding.kneighbors <wassembed.serve.WassersteinEmbedding.kneighbors>`,
:meth:`ReferenceIndex.kneighbors <wassembed.index.ReferenceIndex.kneighbors>` and
:meth:`LinearOT.kneighbors <wassembed.exact.LinearOT.kneighbors>` return, and what ``wassembed knn --json``
prints: scikit-learn's order, ``distances, indices``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["Neighbors"]


class Neighbors(tuple):
    """The ``k`` nearest references of each query: unpacks as ``distances, indices`` (scikit-learn's order).

    Parameters
    ----------
    distances : array, shape (nq, k), float64
        Each query's ``k`` smallest distances, ascending (ties by index): embedding estimates, or exact values
        when ``exact``. Numpy, or a torch tensor for torch queries.
    indices : array, shape (nq, k), int64
        Rows of the references, in the order of ``distances``.
    n_exact_per_query : array-like, shape (nq,), optional
        Exact solves spent on each query (zeros when omitted).
    exact : bool
        Whether ``distances`` are exact transport costs (after exact re-ranking).

    Attributes
    ----------
    distances, indices : arrays, shape (nq, k)
        The two items.
    n_exact_per_query : ndarray, shape (nq,), int64
    n_exact : int
        Total exact solves spent.
    exact : bool

    Examples
    --------
    >>> nb = Neighbors(np.array([[0.5, 2.0]]), np.array([[3, 1]]))
    >>> dist, ind = nb  # as scikit-learn's ``kneighbors(return_distance=True)``
    >>> ind.tolist(), nb.distances.tolist(), nb.n_exact, nb.exact
    ([[3, 1]], [[0.5, 2.0]], 0, False)
    """

    def __new__(cls, distances, indices, n_exact_per_query=None, exact: bool = False):
        self = super().__new__(cls, (distances, indices))
        nq = len(indices)
        self.n_exact_per_query = (np.zeros(nq, dtype=np.int64) if n_exact_per_query is None
                                  else np.asarray(n_exact_per_query, dtype=np.int64))
        self.exact = bool(exact)
        return self

    def __getnewargs__(self):
        return (self[0], self[1], self.n_exact_per_query, self.exact)

    distances = property(lambda self: self[0], doc="(nq, k) distances, ascending")
    indices = property(lambda self: self[1], doc="(nq, k) rows of the references")

    @property
    def n_exact(self) -> int:
        """Total number of exact solves spent."""
        return int(self.n_exact_per_query.sum())

    def __repr__(self) -> str:
        return (f"Neighbors(distances={self[0]!r}, indices={self[1]!r}, n_exact={self.n_exact}, "
                f"exact={self.exact})")
