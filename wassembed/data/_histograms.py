"""Histogram sets: loading, validation, normalisation, ground costs and fingerprints.

A histogram is a nonnegative weight vector summing to 1 over a support of ``k`` bins. The support is
either a pixel grid ``(H, W)`` (bin ``r * W + c`` sits at integer coordinates ``(r, c)``), explicit
coordinates ``(k, d)``, or an explicit ground-cost matrix ``(k, k)``. Images become histograms by dividing
by their pixel sum, in float64.

The default ground cost is the squared Euclidean distance between bin coordinates, ``c(x, y) = ‖x − y‖²``,
for which the optimal-transport cost is W2² (``p = 2``); ``p = 1`` uses ``c(x, y) = ‖x − y‖`` (W1).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
from numpy.typing import ArrayLike

from ..errors import InputError, explain
from ._dataset import HISTOGRAMS, DataSet, quantity_name
from ._support import (
    FINGERPRINT_VERSION,
    _grid_coords,
    as_weights,
    ground_cost_name,
    make_ground_cost,
    parse_p,
)

__all__ = ["HistogramSet"]


@dataclass(frozen=True, eq=False)
class HistogramSet(DataSet):
    """A set of ``n`` histograms on one support of ``k`` bins (the kind ``"histograms"`` of :class:`DataSet`).

    Parameters
    ----------
    weights : ndarray, shape (n, k), float64
        Nonnegative rows summing to 1 (use :meth:`from_images` or :meth:`from_histograms` to build one
        from raw data; they validate and normalise).
    grid : tuple (H, W), optional
        Pixel grid; bin ``r * W + c`` is at integer coordinates ``(r, c)``.
    coords : ndarray, shape (k, d), optional
        Explicit bin coordinates (when there is no grid).
    cost : ndarray, shape (k, k), optional
        Explicit ground-cost matrix (overrides coordinates; the exponent ``p`` is then a declaration).
    labels : ndarray, shape (n,), optional
        Class labels, carried along but not part of the fingerprint.
    name : str
        Where the data came from.

    Examples
    --------
    >>> hs = HistogramSet.from_images(np.eye(3)[None] + 0.0)
    >>> hs.n, hs.k, hs.grid
    (1, 9, (3, 3))
    >>> float(hs.ground_cost(2)[0, 8])  # from pixel (0, 0) to (2, 2): 2² + 2²
    8.0
    """

    kind: ClassVar[str] = HISTOGRAMS
    noun: ClassVar[str] = "histograms"
    manifest_fields: ClassVar[dict] = {"name": str, "n": int, "k": int, "support": str, "fingerprint": str}
    size_field: ClassVar[str] = "k"

    weights: np.ndarray
    grid: tuple[int, int] | None = None
    coords: np.ndarray | None = None
    cost: np.ndarray | None = None
    labels: np.ndarray | None = None
    name: str = "array"
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self):
        w = self.weights
        if not isinstance(w, np.ndarray) or w.ndim != 2 or w.dtype != np.float64:
            raise InputError(explain("HistogramSet.weights must be a float64 (n, k) array",
                                     received=f"{type(w).__name__} {getattr(w, 'shape', '')}",
                                     fix="build it with HistogramSet.from_images or from_histograms"))
        supports = sum(x is not None for x in (self.grid, self.coords, self.cost))
        if supports == 0:
            raise InputError(explain("histograms need a support",
                                     expected="a grid (H, W), coords (k, d) or cost (k, k)",
                                     received="none", fix="pass grid=, coords= or cost="))
        k = w.shape[1]
        if self.grid is not None:
            object.__setattr__(self, "grid", (int(self.grid[0]), int(self.grid[1])))
            if self.grid[0] * self.grid[1] != k:
                raise InputError(explain("grid does not match the number of bins", expected=f"H*W = {k}",
                                         received=f"grid {self.grid}", fix="pass the images' own shape"))
        if self.coords is not None:
            c = np.asarray(self.coords, dtype=np.float64)
            if c.ndim != 2 or c.shape[0] != k or not np.isfinite(c).all():
                raise InputError(explain("bad coords", expected=f"finite array of shape ({k}, d)",
                                         received=f"shape {c.shape}", fix="one coordinate row per bin"))
            object.__setattr__(self, "coords", c)
        if self.cost is not None:
            M = np.asarray(self.cost, dtype=np.float64)
            if M.shape != (k, k) or not np.isfinite(M).all() or (M < 0).any():
                raise InputError(explain("bad ground cost", expected=f"finite nonnegative array of shape ({k}, {k})",
                                         received=f"shape {M.shape}", fix="pass a (k, k) cost matrix"))
            object.__setattr__(self, "cost", M)
        if self.labels is not None:
            lab = np.asarray(self.labels)
            if lab.shape != (w.shape[0],):
                raise InputError(explain("labels do not match the histograms", expected=f"shape ({w.shape[0]},)",
                                         received=f"shape {lab.shape}", fix="one label per histogram"))
            object.__setattr__(self, "labels", lab)

    # -- constructors -------------------------------------------------------------------------------
    @classmethod
    def from_images(cls, images: ArrayLike, *, labels: ArrayLike | None = None, name: str = "array") -> HistogramSet:
        """Validate images ``(n, H, W)`` and normalise each to a histogram on the pixel grid."""
        arr = np.asarray(images) if not isinstance(images, np.ndarray) else images
        if getattr(arr, "ndim", None) != 3:
            raise InputError(explain(f"{name} has the wrong rank", expected="images (n, H, W)",
                                     received=f"shape {getattr(arr, 'shape', '?')}",
                                     fix="for one image use X[None]"))
        w, grid = as_weights(arr, what=name)
        return cls(w, grid=grid, labels=labels, name=name)

    @classmethod
    def from_histograms(cls, weights: ArrayLike, *, grid: tuple[int, int] | None = None,
                        coords: ArrayLike | None = None, cost: ArrayLike | None = None,
                        labels: ArrayLike | None = None, name: str = "array") -> HistogramSet:
        """Validate histograms ``(n, k)`` on a given support and normalise them."""
        w, _ = as_weights(weights, what=name, grid=tuple(grid) if grid is not None else None)
        return cls(w, grid=grid, coords=coords, cost=cost, labels=labels, name=name)

    # -- properties ---------------------------------------------------------------------------------
    @property
    def n(self) -> int:
        """Number of histograms."""
        return int(self.weights.shape[0])

    @property
    def k(self) -> int:
        """Number of bins."""
        return int(self.weights.shape[1])

    @property
    def support_kind(self) -> str:
        """``"grid"``, ``"coords"`` or ``"cost"``."""
        if self.cost is not None:
            return "cost"
        return "grid" if self.grid is not None else "coords"

    def __len__(self) -> int:
        return self.n

    def __repr__(self) -> str:
        """One short line (never the arrays): sizes, support, name, labels and the fingerprint's prefix.

        Examples
        --------
        >>> HistogramSet.from_images(np.eye(3)[None] + 0.0, name="eye")  # doctest: +ELLIPSIS
        HistogramSet(n=1, k=9, support=grid 3×3, name='eye', labels=no, fingerprint=...…)
        """
        if self.grid is not None:
            support = f"grid {self.grid[0]}×{self.grid[1]}"
        elif self.cost is not None:
            support = f"cost {self.k}×{self.k}"
        else:
            support = f"coords {self.coords.shape[0]}×{self.coords.shape[1]}"
        return (f"HistogramSet(n={self.n}, k={self.k}, support={support}, name={self.name!r}, "
                f"labels={'yes' if self.labels is not None else 'no'}, fingerprint={self.fingerprint(2)[:12]}…)")

    def describe(self) -> str:
        """``"60 histograms of 64 bins"``."""
        return f"{self.n} histograms of {self.k} bins"

    @classmethod
    def describe_record(cls, record) -> str:
        """``"60 histograms × 64 bins (grid 8×8)"``."""
        grid = record.get("grid")
        return (f"{record['n']} histograms × {record['k']} bins ({record['support']}"
                + (f" {grid[0]}×{grid[1]}" if grid else "") + ")")

    def model_inputs(self) -> np.ndarray:
        """Images ``(n, H, W)`` on a grid (so a grid mismatch is reported as such), histograms ``(n, k)``
        otherwise."""
        return self.images() if self.grid is not None else self.weights

    def images(self) -> np.ndarray:
        """The histograms reshaped to ``(n, H, W)`` (grid supports only)."""
        if self.grid is None:
            raise InputError(explain("these histograms have no grid", expected="a grid support",
                                     received=self.support_kind, fix="use .weights instead"))
        return self.weights.reshape(self.n, *self.grid)

    def subset(self, index: ArrayLike) -> HistogramSet:
        """A new set holding the rows ``index`` (same support)."""
        idx = np.asarray(index)
        return HistogramSet(self.weights[idx], grid=self.grid, coords=self.coords, cost=self.cost,
                            labels=None if self.labels is None else self.labels[idx], name=self.name)

    def support_coords(self) -> np.ndarray | None:
        """Bin coordinates ``(k, d)``: integer pixel positions for a grid, the given coords, or None."""
        if self.grid is not None:
            return _grid_coords(self.grid)
        return self.coords

    def ground_cost(self, p: int = 2) -> np.ndarray:
        """The ``(k, k)`` float64 ground cost for exponent ``p`` (cached per p).

        ``p = 2``: squared Euclidean distances between bin coordinates; ``p = 1``: Euclidean distances.
        An explicit ``cost`` is returned as given, whatever ``p``.
        """
        key = ("cost", parse_p(p))
        if key not in self._cache:
            self._cache[key] = make_ground_cost(grid=self.grid, coords=self.coords, cost=self.cost, p=p)
        return self._cache[key]

    def support_digest(self) -> str:
        """sha256 of the support alone (grid shape, coords or cost)."""
        h = hashlib.sha256(FINGERPRINT_VERSION.encode())
        h.update(self.support_kind.encode())
        if self.grid is not None:
            h.update(np.asarray(self.grid, dtype=np.int64).tobytes())
        if self.coords is not None:
            h.update(np.ascontiguousarray(self.coords).tobytes())
        if self.cost is not None:
            h.update(np.ascontiguousarray(self.cost).tobytes())
        return h.hexdigest()

    def fingerprint(self, p: int = 2) -> str:
        """sha256 of the weights, the support and the cost settings (``p``, ground-cost name).

        Two sets with equal fingerprints give identical exact distances; labels and name are ignored.
        """
        p = parse_p(p)
        key = ("fp", p)
        if key not in self._cache:
            h = hashlib.sha256(FINGERPRINT_VERSION.encode())
            h.update(np.asarray(self.weights.shape, dtype=np.int64).tobytes())
            h.update(np.ascontiguousarray(self.weights).tobytes())
            h.update(self.support_digest().encode())
            h.update(f"p={p};cost={ground_cost_name(p, self.cost is not None)}".encode())
            self._cache[key] = h.hexdigest()
        return self._cache[key]

    # -- the protocol's cost, network input and cache file (see DataSet) ------------------------------
    def cost_names(self, p: int) -> tuple[str, str]:
        """``(quantity, ground cost)`` of ``p``; ``("ot_cost", "custom")`` for an explicit cost."""
        custom = self.cost is not None
        return quantity_name(p, custom), ground_cost_name(p, custom)

    @classmethod
    def record_cost_names(cls, record, p: int) -> tuple[str, str]:
        custom = record.get("support") == "cost"
        return quantity_name(p, custom), ground_cost_name(p, custom)

    def lot_defined(self, p: int) -> bool:
        """LOT targets need ``p = 2`` and bin coordinates (a grid or ``coords``)."""
        return int(p) == 2 and (self.grid is not None or self.coords is not None)

    def packed(self, indices: ArrayLike | None = None) -> np.ndarray:
        """The histograms ``indices`` (all when None) as float32 ``(m, k)``: the networks' input."""
        w = self.weights if indices is None else self.weights[np.asarray(indices)]
        return w.astype(np.float32)

    def _record_sizes(self) -> dict:
        return {"k": self.k, "support": self.support_kind, "grid": list(self.grid) if self.grid is not None else None}

    def stored_arrays(self, p: int) -> dict[str, np.ndarray]:
        """:meth:`to_arrays` (the fingerprint covers ``p``, so ``p`` is not stored)."""
        return self.to_arrays()

    @classmethod
    def stores(cls, arrays) -> bool:
        return "weights" in arrays and "points" not in arrays

    @classmethod
    def from_stored(cls, arrays, name: str, source: str = "data.npz") -> tuple[HistogramSet, None]:
        return cls.from_arrays(arrays, name=name), None

    def stored_facts(self, p: int, stored_p: int | None) -> list[tuple[str, object]]:
        quantity, cost = self.cost_names(p)
        return [("dataset.kind", self.kind), ("dataset.n", self.n), ("dataset.k", self.k),
                ("dataset.support", self.support_kind), ("dataset.grid", self._record_sizes()["grid"]),
                ("quantity", quantity), ("ground_cost", cost)]

    @classmethod
    def record_problems(cls, record) -> list[tuple[str, str, str]]:
        if record["support"] not in ("grid", "coords", "cost"):
            return [("dataset.support", "grid, coords or cost", repr(record["support"]))]
        return []

    # -- persistence (used by the cache) ------------------------------------------------------------
    def to_arrays(self) -> dict[str, np.ndarray]:
        """Arrays that :meth:`from_arrays` turns back into an equal set."""
        out = {"weights": self.weights}
        if self.grid is not None:
            out["grid"] = np.asarray(self.grid, dtype=np.int64)
        if self.coords is not None:
            out["coords"] = self.coords
        if self.cost is not None:
            out["cost"] = self.cost
        if self.labels is not None:
            out["labels"] = self.labels
        return out

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], name: str = "array") -> HistogramSet:
        """Inverse of :meth:`to_arrays` (no re-normalisation: weights are taken as stored)."""
        grid = tuple(int(x) for x in arrays["grid"]) if "grid" in arrays else None
        return cls(np.asarray(arrays["weights"], dtype=np.float64), grid=grid,
                   coords=arrays["coords"] if "coords" in arrays else None,
                   cost=arrays["cost"] if "cost" in arrays else None,
                   labels=arrays["labels"] if "labels" in arrays else None, name=name)


