"""Histogram sets: loading, validation, normalisation, ground costs and fingerprints.

A histogram is a nonnegative weight vector summing to 1 over a support of ``k`` bins. The support is
either a pixel grid ``(H, W)`` (bin ``r * W + c`` sits at integer coordinates ``(r, c)``), explicit
coordinates ``(k, d)``, or an explicit ground-cost matrix ``(k, k)``. Images become histograms by dividing
by their pixel sum, in float64.

The default ground cost is the squared Euclidean distance between bin coordinates, ``c(x, y) = ‖x − y‖²``,
for which the optimal-transport cost is W2² (``p = 2``); ``p = 1`` uses ``c(x, y) = ‖x − y‖`` (W1).
"""

from __future__ import annotations

import gzip
import hashlib
import tokenize
import zipfile
import zlib
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import InputError, explain

__all__ = ["HistogramSet", "load_dataset", "as_weights", "ground_cost_name", "make_ground_cost", "parse_p"]

FINGERPRINT_VERSION = "wassembed-data-v1"


def parse_p(p) -> int:
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


def as_weights(X, *, what: str = "input", grid: tuple[int, int] | None = None,
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


def make_ground_cost(*, grid=None, coords=None, cost=None, p: int = 2) -> np.ndarray:
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


@dataclass(frozen=True, eq=False)
class HistogramSet:
    """A set of ``n`` histograms on one support of ``k`` bins.

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
            raise InputError(explain("histograms need a support", expected="a grid (H, W), coords (k, d) or cost (k, k)",
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
    def from_images(cls, images, *, labels=None, name: str = "array") -> "HistogramSet":
        """Validate images ``(n, H, W)`` and normalise each to a histogram on the pixel grid."""
        arr = np.asarray(images) if not isinstance(images, np.ndarray) else images
        if getattr(arr, "ndim", None) != 3:
            raise InputError(explain(f"{name} has the wrong rank", expected="images (n, H, W)",
                                     received=f"shape {getattr(arr, 'shape', '?')}",
                                     fix="for one image use X[None]"))
        w, grid = as_weights(arr, what=name)
        return cls(w, grid=grid, labels=labels, name=name)

    @classmethod
    def from_histograms(cls, weights, *, grid=None, coords=None, cost=None, labels=None,
                        name: str = "array") -> "HistogramSet":
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

    def images(self) -> np.ndarray:
        """The histograms reshaped to ``(n, H, W)`` (grid supports only)."""
        if self.grid is None:
            raise InputError(explain("these histograms have no grid", expected="a grid support",
                                     received=self.support_kind, fix="use .weights instead"))
        return self.weights.reshape(self.n, *self.grid)

    def subset(self, index) -> "HistogramSet":
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
    def from_arrays(cls, arrays, name: str = "array") -> "HistogramSet":
        """Inverse of :meth:`to_arrays` (no re-normalisation: weights are taken as stored)."""
        grid = tuple(int(x) for x in arrays["grid"]) if "grid" in arrays else None
        return cls(np.asarray(arrays["weights"], dtype=np.float64), grid=grid,
                   coords=arrays["coords"] if "coords" in arrays else None,
                   cost=arrays["cost"] if "cost" in arrays else None,
                   labels=arrays["labels"] if "labels" in arrays else None, name=name)


# -- loaders ----------------------------------------------------------------------------------------
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path) -> np.ndarray:
    """Read an IDX file (MNIST's format), gzip-compressed or raw.

    Raises :class:`~wassembed.errors.InputError` naming the file when the header is invalid or the file is
    truncated.
    """
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(2)
        opener = gzip.open if head == b"\x1f\x8b" else open
        with opener(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(explain(f"cannot read IDX file {path}", received=str(exc),
                                 fix="check that the file is complete (re-download it)")) from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise InputError(explain(f"{path} is not an IDX file", expected="magic 0x0000 + type byte + rank",
                                 received=raw[:4].hex() or "an empty file",
                                 fix="pass MNIST-style idx3-ubyte files (.gz or raw), .npy or .npz"))
    ndim = raw[3]
    if len(raw) < 4 + 4 * ndim:
        raise InputError(explain(f"IDX file {path} is truncated", expected=f"a {4 + 4 * ndim}-byte header",
                                 received=f"{len(raw)} bytes", fix="re-download or re-export the file"))
    dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    need = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    body = raw[4 + 4 * ndim:]
    if len(body) != need:
        raise InputError(explain(f"IDX file {path} is truncated" if len(body) < need else f"IDX file {path} has trailing bytes",
                                 expected=f"{need} data bytes for shape {tuple(dims)}", received=f"{len(body)}",
                                 fix="re-download or re-export the file"))
    return np.frombuffer(body, dtype=dtype).reshape(dims).astype(dtype.newbyteorder("="))


def _idx_labels_for(path: Path):
    name = path.name
    for a, b in (("images-idx3", "labels-idx1"), ("images.idx3", "labels.idx1")):
        if a in name:
            cand = path.with_name(name.replace(a, b))
            if cand.exists():
                lab = read_idx(cand)
                return lab
    return None


def load_digits_set() -> HistogramSet:
    """scikit-learn's bundled digits (1,797 images of 8×8, no download) as histograms."""
    from sklearn.datasets import load_digits

    d = load_digits()
    return HistogramSet.from_images(d.images.astype(np.float64), labels=d.target.astype(np.int64),
                                    name="digits")


def load_dataset(path_or_name, *, limit: int | None = None) -> HistogramSet:
    """Load a histogram set from a file or a built-in name.

    Parameters
    ----------
    path_or_name : str or path
        ``"digits"`` (scikit-learn's bundled 8×8 digits, the embedded default); an IDX file (``.gz`` or
        raw, MNIST's format; a sibling ``labels-idx1`` file is picked up); a ``.npy`` of images
        ``(n, H, W)``; or a ``.npz`` holding ``images`` ``(n, H, W)`` or ``histograms`` ``(n, k)`` with one
        of ``grid`` ``(2,)``, ``coords`` ``(k, d)``, ``cost`` ``(k, k)``, and optionally ``labels``.
    limit : int, optional
        Keep only the first ``limit`` histograms.

    Returns
    -------
    HistogramSet

    Examples
    --------
    >>> hs = load_dataset("digits")
    >>> hs.n, hs.grid
    (1797, (8, 8))
    """
    if not isinstance(path_or_name, (HistogramSet, str, os.PathLike)):
        raise InputError(explain("bad data argument", expected="a path, 'digits' or a HistogramSet",
                                 received=f"{type(path_or_name).__name__} {path_or_name!r}"[:80],
                                 fix="pass the path of an IDX, .npy or .npz file"))
    if isinstance(path_or_name, HistogramSet):
        hs = path_or_name
    elif str(path_or_name) == "digits":
        hs = load_digits_set()
    else:
        path = Path(path_or_name)
        if not path.exists():
            raise InputError(explain(f"no such data file: {path}", expected="an existing file or 'digits'",
                                     received=str(path), fix="check the path"))
        if path.is_dir():
            raise InputError(explain(f"{path} is a directory", expected="a data file (.npy, .npz, IDX)",
                                     received="a directory", fix="name the file inside it"))
        name = path.name
        suffix = name.lower()
        if suffix.endswith(".npy"):
            arr = _np_load(path)
            if getattr(arr, "ndim", 0) != 3:
                raise InputError(explain(f"{path} has the wrong rank", expected="images (n, H, W) in a .npy",
                                         received=f"shape {getattr(arr, 'shape', '?')}",
                                         fix="save histograms (n, k) in an .npz with grid, coords or cost"))
            hs = HistogramSet.from_images(arr, name=name)
        elif suffix.endswith(".npz"):
            hs = _load_npz(path)
        elif "idx" in suffix or suffix.endswith(".gz") or suffix.endswith("ubyte"):
            arr = read_idx(path)
            if arr.ndim != 3:
                raise InputError(explain(f"{path} has the wrong rank", expected="an idx3 file of images (n, H, W)",
                                         received=f"shape {arr.shape}", fix="pass the images file, not the labels"))
            labels = _idx_labels_for(path)
            if labels is not None and labels.shape != (arr.shape[0],):
                labels = None
            hs = HistogramSet.from_images(arr, labels=labels, name=name)
        else:
            raise InputError(explain(f"unknown data format: {path}",
                                     expected="'digits', .npy, .npz or an IDX file (…-idx3-ubyte[.gz])",
                                     received=f"suffix {''.join(path.suffixes) or '(none)'}",
                                     fix="convert the data to .npy images (n, H, W)"))
    if limit is not None:
        if limit < 1:
            raise InputError(explain("bad limit", expected="a positive number", received=str(limit),
                                     fix="pass limit >= 1"))
        hs = hs.subset(np.arange(min(limit, hs.n)))
    return hs


#: what numpy, zipfile and zlib raise on damaged .npy/.npz files
DAMAGED_FILE_ERRORS = (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile, zlib.error, tokenize.TokenError,
                       NotImplementedError, SyntaxError, TypeError)


def _np_load(path: Path):
    try:
        return np.load(path, allow_pickle=False)
    except DAMAGED_FILE_ERRORS as exc:
        raise InputError(explain(f"cannot read {path}", expected="a valid numpy file without pickled objects",
                                 received=str(exc).split("\n")[0], fix="re-save it with numpy.save/savez")) from None


def _load_npz(path: Path) -> HistogramSet:
    z = _np_load(path)
    try:
        return _npz_to_set(z, path)
    except InputError:
        raise
    except DAMAGED_FILE_ERRORS as exc:  # members are read lazily: damage shows up here
        raise InputError(explain(f"cannot read {path}", expected="a valid .npz archive without pickled objects",
                                 received=f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
                                 fix="re-save it with numpy.savez")) from None
    finally:
        z.close()


def _npz_to_set(z, path: Path) -> HistogramSet:
    keys = set(z.files)
    labels = z["labels"] if "labels" in keys else None
    if "images" in keys:
        return HistogramSet.from_images(z["images"], labels=labels, name=path.name)
    hkey = "histograms" if "histograms" in keys else "weights" if "weights" in keys else None
    if hkey is None:
        if len(keys) == 1:
            arr = z[next(iter(keys))]
            if arr.ndim == 3:
                return HistogramSet.from_images(arr, name=path.name)
        raise InputError(explain(f"{path} holds no images or histograms",
                                 expected="an array named 'images' (n, H, W) or 'histograms' (n, k)",
                                 received=f"arrays {sorted(keys)}", fix="rename the array"))
    grid = tuple(int(x) for x in z["grid"]) if "grid" in keys else None
    coords = z["coords"] if "coords" in keys else None
    cost = z["cost"] if "cost" in keys else None
    return HistogramSet.from_histograms(z[hkey], grid=grid, coords=coords, cost=cost, labels=labels,
                                        name=path.name)


def file_sha256(path: os.PathLike | str, chunk: int = 1 << 20) -> str:
    """sha256 hex digest of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while True:
            b = fh.read(chunk)
            if not b:
                break
            h.update(b)
    return h.hexdigest()
