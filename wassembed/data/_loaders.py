"""Loaders: IDX files (MNIST's format), ``.npy``/``.npz`` arrays (histograms, or ragged point clouds) and the
built-in ``digits``."""

from __future__ import annotations

import contextlib
import gzip
import os
import struct
import tokenize
import zipfile
import zlib
from pathlib import Path

import numpy as np

from .._validation import check_pos_int
from ..errors import InputError, explain
from ._dataset import DataSet
from ._histograms import HistogramSet

__all__ = ["DAMAGED_FILE_ERRORS", "load_dataset", "open_npz"]


# -- loaders ----------------------------------------------------------------------------------------
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | os.PathLike) -> np.ndarray:
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
        problem = f"IDX file {path} is truncated" if len(body) < need else f"IDX file {path} has trailing bytes"
        raise InputError(explain(problem,
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


def load_dataset(path_or_name: str | os.PathLike, *, limit: int | None = None):
    """Load a histogram set (or a point-cloud set) from a file or a built-in name.

    Parameters
    ----------
    path_or_name : str or path
        ``"digits"`` (scikit-learn's bundled 8×8 digits, the embedded default); an IDX file (``.gz`` or
        raw, MNIST's format; a sibling ``labels-idx1`` file is picked up); a ``.npy`` of images
        ``(n, H, W)``; a ``.npz`` holding ``images`` ``(n, H, W)`` or ``histograms`` ``(n, k)`` with one
        of ``grid`` ``(2,)``, ``coords`` ``(k, d)``, ``cost`` ``(k, k)``, and optionally ``labels``; or a
        ragged ``.npz`` of point clouds holding ``points`` ``(N, d)`` and ``offsets`` ``(n + 1,)``, optionally
        ``weights`` ``(N,)`` and ``labels`` ``(n,)`` (the format of :meth:`PointCloudSet.save`).
    limit : int, optional
        Keep only the first ``limit`` histograms (or clouds).

    Returns
    -------
    HistogramSet or PointCloudSet
        A :class:`PointCloudSet` for a ragged ``.npz`` (or when given one), a :class:`HistogramSet` otherwise.

    Examples
    --------
    >>> hs = load_dataset("digits")
    >>> hs.n, hs.grid
    (1797, (8, 8))
    """
    if not isinstance(path_or_name, (DataSet, str, os.PathLike)):
        raise InputError(explain("bad data argument", expected="a path, 'digits', a HistogramSet or a PointCloudSet",
                                 received=f"{type(path_or_name).__name__} {path_or_name!r}"[:80],
                                 fix="pass the path of an IDX, .npy or .npz file"))
    if isinstance(path_or_name, DataSet):
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
        limit = check_pos_int("limit", limit, example=100)
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


@contextlib.contextmanager
def open_npz(path: Path, fix: str = "re-save it with numpy.savez"):
    """The archive ``np.load(path)``, closed on exit; damage found while its members are read (numpy reads
    them lazily) becomes one :class:`~wassembed.errors.InputError` naming the file, with ``fix``."""
    z = _np_load(path)
    try:
        yield z
    except InputError:
        raise
    except DAMAGED_FILE_ERRORS as exc:
        raise InputError(explain(f"cannot read {path}", expected="a valid .npz archive without pickled objects",
                                 received=f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
                                 fix=fix)) from None
    finally:
        z.close()


def _load_npz(path: Path):
    with open_npz(path) as z:
        return _npz_to_set(z, path)


def _npz_to_set(z, path: Path):
    keys = set(z.files)
    labels = z["labels"] if "labels" in keys else None
    if "points" in keys and "offsets" in keys:  # ragged point clouds (PointCloudSet.save)
        from . import PointCloudSet

        return PointCloudSet(z["points"], z["weights"] if "weights" in keys else None, z["offsets"], labels=labels)
    if "images" in keys:
        return HistogramSet.from_images(z["images"], labels=labels, name=path.name)
    hkey = "histograms" if "histograms" in keys else "weights" if "weights" in keys else None
    if hkey is None:
        if len(keys) == 1:
            arr = z[next(iter(keys))]
            if arr.ndim == 3:
                return HistogramSet.from_images(arr, name=path.name)
        raise InputError(explain(f"{path} holds no images or histograms",
                                 expected="an array named 'images' (n, H, W) or 'histograms' (n, k), or "
                                          "point clouds: 'points' (N, d) and 'offsets' (n + 1,)",
                                 received=f"arrays {sorted(keys)}", fix="rename the array"))
    grid = tuple(int(x) for x in z["grid"]) if "grid" in keys else None
    coords = z["coords"] if "coords" in keys else None
    cost = z["cost"] if "cost" in keys else None
    return HistogramSet.from_histograms(z[hkey], grid=grid, coords=coords, cost=cost, labels=labels,
                                        name=path.name)

