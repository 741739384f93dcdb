"""Weighted point clouds of varying sizes: validation, normalisation, ``.npz`` files, padding, fingerprints.

A point cloud is a discrete measure :math:`\\mu_i = \\sum_{u=1}^{k_i} w_{iu} \\, \\delta_{x_{iu}}` with points
:math:`x_{iu} \\in \\mathbb{R}^d` (an array ``(k_i, d)``) and nonnegative weights summing to 1 (uniform when not
given). Clouds of one set share the dimension ``d`` and may differ in size ``k_i``. They are stored flat:
all points stacked in one ``(N, d)`` array, ``N = Σ k_i``, and cloud ``i`` is rows ``offsets[i]:offsets[i+1]``.

The interchange file is an ``.npz`` holding ``points`` (N, d) float, ``offsets`` (n + 1,) int, and optionally
``weights`` (N,) float (uniform per cloud when absent) and ``labels`` (n,). Needs numpy only.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
from numpy.typing import ArrayLike

from .._io import atomic_write
from ..errors import InputError, explain
from ._cloud_checks import _LIST_FIX, _RESHAPE_FIX, _check_finite, _float_array, _normalised, as_cloud
from ._dataset import POINT_CLOUDS, DataSet
from ._loaders import open_npz
from ._support import FINGERPRINT_VERSION, parse_p

__all__ = ["PointCloudSet", "as_cloud"]

@dataclass(frozen=True, eq=False)
class PointCloudSet(DataSet):
    """A set of ``n`` weighted point clouds in :math:`\\mathbb{R}^d`, stored flat (the kind ``"point_clouds"`` of
    :class:`DataSet`).

    Parameters
    ----------
    points : array-like, shape (N, d)
        All points, cloud after cloud (``N = Σ k_i``); stored as float64.
    weights : array-like, shape (N,), optional
        Nonnegative weights; each cloud's are divided by their sum. Uniform per cloud when omitted.
    offsets : array-like of int, shape (n + 1,)
        Cloud ``i`` is rows ``offsets[i]:offsets[i+1]``: starts at 0, increases strictly, ends at ``N``.
    labels : array-like, shape (n,), optional
        Class labels, carried along but not part of the fingerprint.

    Examples
    --------
    >>> cs = PointCloudSet.from_clouds([np.zeros((2, 3)), (np.ones((1, 3)), [5.0])])
    >>> len(cs), cs.d, cs.sizes.tolist(), cs.weights.tolist()
    (2, 3, [2, 1], [0.5, 0.5, 1.0])
    """

    kind: ClassVar[str] = POINT_CLOUDS
    noun: ClassVar[str] = "clouds"
    manifest_fields: ClassVar[dict] = {"name": str, "n": int, "d": int, "fingerprint": str}
    size_field: ClassVar[str] = "d"
    #: the name recorded in a cache's manifest
    name: ClassVar[str] = "point clouds"

    points: np.ndarray
    weights: np.ndarray | None = None
    offsets: np.ndarray | None = None
    labels: np.ndarray | None = None
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self):
        p = _float_array(self.points, "points", _LIST_FIX)
        if p.ndim != 2:
            fix = ("for n clouds of k points each ((n, k, d), or a list of clouds) use "
                   "PointCloudSet.from_clouds(clouds)") if p.ndim == 3 else _RESHAPE_FIX
            raise InputError(explain("points have the wrong rank", expected="an (N, d) array of all points",
                                     received=f"shape {p.shape}", fix=fix))
        _check_finite(p, "points")
        offsets = self._checked_offsets(p.shape[0])
        if self.weights is None:
            sizes = np.diff(offsets)
            w = np.repeat(1.0 / sizes, sizes)
        else:
            w = _float_array(self.weights, "weights")
            if w.shape != (p.shape[0],):
                raise InputError(explain("weights do not match the points", expected=f"shape ({p.shape[0]},)",
                                         received=f"shape {w.shape}", fix="one weight per point (row of points)"))
            w = _normalised(w, offsets, what="weights")
        object.__setattr__(self, "points", np.ascontiguousarray(p))
        object.__setattr__(self, "weights", np.ascontiguousarray(w))
        object.__setattr__(self, "offsets", offsets)
        if self.labels is not None:
            lab = np.asarray(self.labels)
            if lab.shape != (self.n,):
                raise InputError(explain("labels do not match the clouds", expected=f"shape ({self.n},)",
                                         received=f"shape {lab.shape}", fix="one label per cloud"))
            object.__setattr__(self, "labels", lab)

    def _checked_offsets(self, N: int) -> np.ndarray:
        if self.offsets is None:
            raise InputError(explain("a PointCloudSet needs offsets", expected="offsets (n + 1,): 0, k_0, ..., N",
                                     received="none", fix="pass offsets= or build it with from_clouds"))
        o = np.asarray(self.offsets)
        if o.ndim != 1 or o.size == 0 or not (np.issubdtype(o.dtype, np.integer) or o.size == 1 and o[0] == 0):
            raise InputError(explain("bad offsets", expected="a 1-D integer array (n + 1,) starting at 0",
                                     received=f"dtype {o.dtype}, shape {o.shape}", fix="pass np.cumsum([0, *sizes])"))
        o = o.astype(np.int64)
        if o[0] != 0 or o[-1] != N:
            raise InputError(explain("offsets do not span the points", expected=f"offsets[0] = 0 and offsets[-1] = {N}",
                                     received=f"{int(o[0])} and {int(o[-1])}", fix="pass np.cumsum([0, *sizes])"))
        steps = np.diff(o)
        if (steps < 0).any():
            i = int(np.flatnonzero(steps < 0)[0])
            raise InputError(explain("offsets are not nondecreasing", expected="offsets[i] <= offsets[i + 1]",
                                     received=f"{int(o[i])} then {int(o[i + 1])} at cloud {i}",
                                     fix="sort the clouds' rows and pass np.cumsum([0, *sizes])"))
        if (steps == 0).any():
            i = int(np.flatnonzero(steps == 0)[0])
            raise InputError(explain(f"cloud {i} is empty", expected="at least one point per cloud",
                                     received=f"offsets[{i}] = offsets[{i + 1}] = {int(o[i])}",
                                     fix="drop empty clouds; they are not distributions"))
        return np.ascontiguousarray(o)

    # -- constructors -------------------------------------------------------------------------------
    @classmethod
    def from_clouds(cls, clouds, labels: ArrayLike | None = None) -> PointCloudSet:
        """Validate a list of clouds, each ``(k_i, d)`` points or a ``(points, weights)`` tuple.

        Weights are normalised per cloud (uniform when a cloud is given as points alone); every cloud must have
        the same dimension ``d``.
        """
        if isinstance(clouds, np.ndarray) and clouds.ndim == 3:
            clouds = list(clouds)
        if not isinstance(clouds, (list, tuple)) or len(clouds) == 0:
            raise InputError(explain("bad clouds", expected="a non-empty list of (k, d) arrays or (points, weights)",
                                     received=type(clouds).__name__ if not isinstance(clouds, (list, tuple))
                                     else "an empty list", fix="pass [points_0, points_1, ...]"))
        parsed = [as_cloud(c, what=f"cloud {i}") for i, c in enumerate(clouds)]
        dims = [p.shape[1] for p, _ in parsed]
        if len(set(dims)) > 1:
            i = next(t for t, dim in enumerate(dims) if dim != dims[0])
            raise InputError(explain("clouds have different dimensions", expected=f"d = {dims[0]} (as cloud 0)",
                                     received=f"d = {dims[i]} for cloud {i}", fix="embed every cloud in one space"))
        offsets = np.concatenate([[0], np.cumsum([p.shape[0] for p, _ in parsed])]).astype(np.int64)
        return cls(np.concatenate([p for p, _ in parsed]), np.concatenate([w for _, w in parsed]), offsets,
                   labels=labels)

    @classmethod
    def load(cls, path: str | os.PathLike) -> PointCloudSet:
        """Read an ``.npz`` with ``points`` (N, d), ``offsets`` (n + 1,), optional ``weights`` (N,), ``labels``."""
        path = Path(path)
        with open_npz(path, fix="re-save it with PointCloudSet.save") as z:
            missing = {"points", "offsets"} - set(z.files)
            if missing:
                raise InputError(explain(f"{path} holds no point clouds",
                                         expected="arrays 'points' (N, d) and 'offsets' (n + 1,)",
                                         received=f"arrays {sorted(z.files)}", fix="save it with PointCloudSet.save"))
            return cls(z["points"], z["weights"] if "weights" in z.files else None, z["offsets"],
                       labels=z["labels"] if "labels" in z.files else None)

    def save(self, path: str | os.PathLike) -> None:
        """Write the set to ``path`` (an ``.npz``, written atomically) in the format :meth:`load` reads."""
        arrays = {"points": self.points, "weights": self.weights, "offsets": self.offsets}
        if self.labels is not None:
            arrays["labels"] = self.labels
        atomic_write(path, lambda fh: np.savez(fh, **arrays))

    # -- properties ---------------------------------------------------------------------------------
    @property
    def n(self) -> int:
        """Number of clouds."""
        return int(self.offsets.shape[0] - 1)

    @property
    def d(self) -> int:
        """Dimension of the points."""
        return int(self.points.shape[1])

    @property
    def sizes(self) -> np.ndarray:
        """Number of points ``k_i`` of each cloud, int64 ``(n,)``."""
        return np.diff(self.offsets)

    def __len__(self) -> int:
        return self.n

    def __repr__(self) -> str:
        sizes = self.sizes
        span = f"{int(sizes.min())}–{int(sizes.max())}" if self.n else "-"
        return (f"PointCloudSet(n={self.n}, d={self.d}, points={self.points.shape[0]}, sizes={span}, "
                f"labels={'yes' if self.labels is not None else 'no'}, fingerprint={self.fingerprint()[:12]}…)")

    def cloud(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Cloud ``i`` as ``(points (k_i, d), weights (k_i,))`` (views, not copies)."""
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)) or not -self.n <= i < self.n:
            raise InputError(explain("bad cloud index", expected=f"an integer in [0, {self.n})", received=repr(i),
                                     fix="pass a position in the set"))
        i = int(i) % self.n
        lo, hi = self.offsets[i], self.offsets[i + 1]
        return self.points[lo:hi], self.weights[lo:hi]

    def _rows(self, idx: np.ndarray) -> np.ndarray:
        """Flat row indices of the clouds ``idx``, cloud after cloud."""
        starts, sizes = self.offsets[idx], self.sizes[idx]
        shift = np.repeat(starts - np.concatenate([[0], np.cumsum(sizes)[:-1]]), sizes)
        return np.arange(int(sizes.sum()), dtype=np.int64) + shift

    def _indices(self, indices: ArrayLike) -> np.ndarray:
        idx = np.asarray(indices)
        if idx.ndim != 1 or not (np.issubdtype(idx.dtype, np.integer) or idx.size == 0):
            raise InputError(explain("bad cloud indices", expected="a 1-D array of integers",
                                     received=f"dtype {idx.dtype}, shape {idx.shape}", fix="pass e.g. [0, 3, 7]"))
        idx = idx.astype(np.int64)
        if idx.size and (idx.min() < -self.n or idx.max() >= self.n):
            raise InputError(explain("cloud indices out of range", expected=f"integers in [0, {self.n})",
                                     received=f"min {int(idx.min())}, max {int(idx.max())}",
                                     fix="index within the set"))
        return idx % max(self.n, 1)

    def subset(self, indices: ArrayLike) -> PointCloudSet:
        """A new set holding the clouds ``indices`` (in that order; repeats allowed)."""
        idx = self._indices(indices)
        rows = self._rows(idx)
        offsets = np.concatenate([[0], np.cumsum(self.sizes[idx])]).astype(np.int64)
        return PointCloudSet(self.points[rows], self.weights[rows], offsets,
                             labels=None if self.labels is None else self.labels[idx])

    def padded(self, indices: ArrayLike, max_points: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Clouds ``indices`` padded to a common size, for set encoders.

        Parameters
        ----------
        indices : array-like of int, shape (m,)
            Clouds to take.
        max_points : int, optional
            Pad to this many points (default: the largest of the chosen clouds); a larger cloud is an error.

        Returns
        -------
        P : ndarray, shape (m, kmax, d), float64
            Points, zero in the padding.
        W : ndarray, shape (m, kmax), float64
            Weights (each row sums to 1), zero in the padding.
        mask : ndarray, shape (m, kmax), bool
            True on real points.
        """
        idx = self._indices(indices)
        sizes = self.sizes[idx]
        kmax = int(sizes.max()) if sizes.size else 0
        if max_points is not None:
            if isinstance(max_points, bool) or not isinstance(max_points, (int, np.integer)) or max_points < kmax:
                raise InputError(explain("bad max_points", expected=f"an integer >= {kmax} (the largest cloud chosen)",
                                         received=repr(max_points), fix="raise max_points or subsample the clouds"))
            kmax = int(max_points)
        mask = np.arange(kmax)[None, :] < sizes[:, None]
        rows = self._rows(idx)
        P = np.zeros((idx.size, kmax, self.d))
        W = np.zeros((idx.size, kmax))
        P[mask] = self.points[rows]
        W[mask] = self.weights[rows]
        return P, W, mask

    def fingerprint(self, p: int = 2) -> str:
        """sha256 of the clouds (dimension, offsets, points, normalised weights); labels are ignored.

        Two sets with equal fingerprints give identical exact distances for either ``p`` (validated, not part
        of the digest: a cache of clouds stores its ``p`` beside the data).
        """
        parse_p(p)
        if "fp" not in self._cache:
            h = hashlib.sha256(FINGERPRINT_VERSION.encode())
            h.update(b"point-clouds")
            h.update(np.asarray([self.d], dtype=np.int64).tobytes())
            for arr, dtype in ((self.offsets, "<i8"), (self.points, "<f8"), (self.weights, "<f8")):
                h.update(np.ascontiguousarray(arr, dtype=dtype).tobytes())
            self._cache["fp"] = h.hexdigest()
        return self._cache["fp"]

    # -- the protocol's cost, network input and cache file (see DataSet) ------------------------------
    def describe(self) -> str:
        """``"40 clouds of 20–60 points in 3 dimensions"``."""
        sizes = self.sizes
        return f"{self.n} clouds of {int(sizes.min())}–{int(sizes.max())} points in {self.d} dimensions"

    @classmethod
    def describe_record(cls, record) -> str:
        """``"40 clouds of 20–60 points in 3 dimensions (1600 points)"``."""
        return (f"{record['n']} clouds of {record.get('k_min', '?')}–{record.get('k_max', '?')} points in "
                f"{record['d']} dimensions ({record.get('points', '?')} points)")

    def model_inputs(self) -> PointCloudSet:
        """The clouds themselves (a point-cloud model reads a PointCloudSet)."""
        return self

    def lot_defined(self, p: int) -> bool:
        """LOT targets (:class:`~wassembed.exact.CloudLOT`) need ``p = 2``."""
        return int(p) == 2

    def packed(self, indices: ArrayLike | None = None, max_points: int | None = None) -> np.ndarray:
        """The clouds ``indices`` (all when None) packed as float32 ``(m, kmax, d + 1)``: coordinates, then the
        weight (0 = padding; :meth:`padded`). The networks' input."""
        P, W, _ = self.padded(np.arange(self.n) if indices is None else indices, max_points)
        return np.concatenate([P, W[..., None]], axis=-1).astype(np.float32)

    def _record_sizes(self) -> dict:
        sizes = self.sizes
        return {"d": self.d, "points": int(self.points.shape[0]), "k_min": int(sizes.min()),
                "k_max": int(sizes.max())}

    def stored_arrays(self, p: int) -> dict[str, np.ndarray]:
        """The ragged arrays of the interchange format (:meth:`load` reads them) and ``p``: the fingerprint of
        clouds does not cover ``p``, so an edited ``p`` in a cache's manifest is still found."""
        arrays = {"points": self.points, "weights": self.weights, "offsets": self.offsets,
                  "p": np.asarray(p, dtype=np.int64)}
        if self.labels is not None:
            arrays["labels"] = self.labels
        return arrays

    @classmethod
    def stores(cls, arrays) -> bool:
        return "points" in arrays and "offsets" in arrays

    @classmethod
    def from_stored(cls, arrays, name: str, source: str = "data.npz") -> tuple[PointCloudSet, int]:
        p = arrays.get("p")
        if p is None or p.shape != () or not np.issubdtype(p.dtype, np.integer):
            raise InputError(explain(f"{source} holds point clouds without their p", expected="an integer array 'p'",
                                     received="nothing" if p is None else f"dtype {p.dtype}, shape {p.shape}",
                                     fix="restore data.npz from a copy of the cache"))
        return cls(arrays["points"], arrays.get("weights"), arrays["offsets"], labels=arrays.get("labels")), int(p)

    def stored_facts(self, p: int, stored_p: int | None) -> list[tuple[str, object]]:
        q = int(stored_p) if stored_p is not None else p
        quantity, cost = self.cost_names(q)
        return [("p", q), ("dataset.kind", self.kind), ("dataset.n", self.n),
                *((f"dataset.{k}", v) for k, v in self._record_sizes().items()), ("quantity", quantity),
                ("ground_cost", cost)]
